#include "agent/http/h2_translate.h"

#include <string>
#include <utility>
#include <vector>

#include "agent/http/http1_parser.h"
#include "gtest/gtest.h"

namespace nodemesh::http {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

Fields Copy(std::span<const HeaderField> fields) {
  Fields out;
  for (const HeaderField& f : fields) {
    out.emplace_back(std::string(f.name), std::string(f.value));
  }
  return out;
}

H2HeaderBlock Request(std::string_view method, std::string_view path,
                      std::string_view authority = "svc.local") {
  H2HeaderBlock b;
  b.method = method;
  b.scheme = "http";
  b.authority = authority;
  b.path = path;
  return b;
}

// What our HTTP/1.1 parser makes of a translated request head.
class ParsedHead : public Http1Visitor {
 public:
  explicit ParsedHead(std::string_view bytes)
      : parser_(Http1Parser::Mode::kRequest, this) {
    parser_.Feed(bytes);
  }
  void OnHeaders(const MessageHead& head) override {
    seen = true;
    framing = head.framing;
    content_length = head.content_length;
    upgrade = head.upgrade;
  }
  void OnBody(std::string_view) override {}
  void OnMessageComplete() override { complete = true; }
  bool ok() const { return !parser_.has_error(); }

  bool seen = false;
  bool complete = false;
  bool upgrade = false;
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;

 private:
  Http1Parser parser_;
};

TEST(AppendH1Request, GetWithoutBody) {
  H2HeaderBlock b = Request("GET", "/items?page=2");
  b.headers.Add("accept", "*/*");
  std::string out = "previous";
  bool chunked = true;
  ASSERT_TRUE(AppendH1Request(b, /*end_stream=*/true, {}, &out, &chunked));
  EXPECT_FALSE(chunked);
  EXPECT_EQ(out,
            "previousGET /items?page=2 HTTP/1.1\r\nhost: svc.local\r\n"
            "accept: */*\r\n\r\n");
  ParsedHead p(out.substr(8));
  EXPECT_TRUE(p.ok());
  EXPECT_TRUE(p.complete);
}

TEST(AppendH1Request, PostWithContentLengthKeepsIt) {
  H2HeaderBlock b = Request("POST", "/upload");
  b.headers.Add("content-type", "text/plain");
  b.headers.Add("content-length", "11");
  std::string out;
  bool chunked = true;
  ASSERT_TRUE(AppendH1Request(b, /*end_stream=*/false, {}, &out, &chunked));
  EXPECT_FALSE(chunked);
  EXPECT_EQ(out,
            "POST /upload HTTP/1.1\r\nhost: svc.local\r\n"
            "content-type: text/plain\r\ncontent-length: 11\r\n\r\n");
  ParsedHead p(out);
  EXPECT_TRUE(p.ok());
  EXPECT_EQ(p.framing, BodyFraming::kContentLength);
  EXPECT_EQ(p.content_length, 11u);
}

TEST(AppendH1Request, ContentLengthWrittenPlainly) {
  // nghttp2 accepts any run of digits; our parser refuses more than 19.
  H2HeaderBlock b = Request("POST", "/upload");
  const std::string zeros = std::string(25, '0') + "5";
  b.headers.Add("content-length", zeros);
  std::string out;
  bool chunked = true;
  ASSERT_TRUE(AppendH1Request(b, false, {}, &out, &chunked));
  EXPECT_FALSE(chunked);
  EXPECT_EQ(out,
            "POST /upload HTTP/1.1\r\nhost: svc.local\r\n"
            "content-length: 5\r\n\r\n");
  ParsedHead p(out);
  EXPECT_TRUE(p.ok());
  EXPECT_EQ(p.content_length, 5u);
}

TEST(AppendH1Request, ConnectIsATunnelWithoutContent) {
  H2HeaderBlock b = Request("CONNECT", "", "db.svc:5432");
  b.scheme = {};
  std::string out;
  bool chunked = true;
  ASSERT_TRUE(AppendH1Request(b, false, {}, &out, &chunked));
  EXPECT_FALSE(chunked);
  EXPECT_EQ(out, "CONNECT db.svc:5432 HTTP/1.1\r\nhost: db.svc:5432\r\n\r\n");
  ParsedHead p(out);
  EXPECT_TRUE(p.ok());

  // A length would be a body our HTTP/1.1 side refuses (RFC 9110 9.3.6).
  b.headers.Add("content-length", "5");
  out.clear();
  EXPECT_FALSE(AppendH1Request(b, false, {}, &out, &chunked));
}

TEST(AppendH1Request, PostWithoutLengthIsChunked) {
  H2HeaderBlock b = Request("POST", "/helloworld.Greeter/SayHello");
  b.headers.Add("content-type", "application/grpc");
  b.headers.Add("te", "trailers");  // hop-by-hop on HTTP/1.1
  std::string out;
  bool chunked = false;
  ASSERT_TRUE(AppendH1Request(b, /*end_stream=*/false, {}, &out, &chunked));
  EXPECT_TRUE(chunked);
  EXPECT_EQ(out,
            "POST /helloworld.Greeter/SayHello HTTP/1.1\r\nhost: svc.local\r\n"
            "content-type: application/grpc\r\n"
            "transfer-encoding: chunked\r\n\r\n");
  ParsedHead p(out);
  EXPECT_TRUE(p.ok());
  EXPECT_EQ(p.framing, BodyFraming::kChunked);
}

TEST(AppendH1Request, ExtendedConnectBecomesWebsocketUpgrade) {
  H2HeaderBlock b = Request("CONNECT", "/chat");
  b.protocol = "websocket";
  b.headers.Add("sec-websocket-version", "13");
  b.headers.Add("sec-websocket-key", "from-the-client");  // ours replaces it
  std::string out;
  bool chunked = true;
  ASSERT_TRUE(AppendH1Request(b, /*end_stream=*/false,
                              "dGhlIHNhbXBsZSBub25jZQ==", &out, &chunked));
  EXPECT_FALSE(chunked);  // the bytes after the head are the tunnel's
  EXPECT_EQ(out,
            "GET /chat HTTP/1.1\r\nhost: svc.local\r\n"
            "sec-websocket-version: 13\r\n"
            "connection: upgrade\r\nupgrade: websocket\r\n"
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
  ParsedHead p(out);
  EXPECT_TRUE(p.ok());
  EXPECT_TRUE(p.upgrade);
}

TEST(AppendH1Request, HostFromTheHostFieldWithoutAuthority) {
  H2HeaderBlock b = Request("GET", "/", "");
  b.headers.Add("host", "legacy.local");
  std::string out;
  bool chunked;
  ASSERT_TRUE(AppendH1Request(b, true, {}, &out, &chunked));
  EXPECT_EQ(out, "GET / HTTP/1.1\r\nhost: legacy.local\r\n\r\n");
}

TEST(AppendH1Request, MissingHostIsRefused) {
  H2HeaderBlock b = Request("GET", "/", "");
  std::string out;
  bool chunked;
  EXPECT_FALSE(AppendH1Request(b, true, {}, &out, &chunked));
  H2HeaderBlock no_path = Request("GET", "");
  EXPECT_FALSE(AppendH1Request(no_path, true, {}, &out, &chunked));
  H2HeaderBlock no_method = Request("", "/");
  EXPECT_FALSE(AppendH1Request(no_method, true, {}, &out, &chunked));
}

TEST(H2ResponseFields, HopByHopDroppedStatusFirstNamesAsGiven) {
  MessageHead head;
  head.status_code = 404;
  head.headers.Add("Content-Type", "text/plain");
  head.headers.Add("connection", "keep-alive, X-Hop");
  head.headers.Add("x-hop", "1");
  head.headers.Add("Keep-Alive", "timeout=5");
  head.headers.Add("Transfer-Encoding", "chunked");
  head.headers.Add("x-request-id", "abc");
  char status[4];
  std::vector<HeaderField> out;
  H2ResponseFields(head, status, &out);
  // The codec lowercases names when it sends them; these pass unchanged.
  EXPECT_EQ(Copy(out), (Fields{{":status", "404"},
                               {"Content-Type", "text/plain"},
                               {"x-request-id", "abc"}}));
}

TEST(H2ResponseFields, SwitchingProtocolsBecomes200) {
  MessageHead head;
  head.status_code = 101;
  head.headers.Add("connection", "upgrade");
  head.headers.Add("upgrade", "websocket");
  head.headers.Add("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  head.headers.Add("sec-websocket-protocol", "chat");
  char status[4];
  std::vector<HeaderField> out;
  H2ResponseFields(head, status, &out);
  EXPECT_EQ(Copy(out),
            (Fields{{":status", "200"}, {"sec-websocket-protocol", "chat"}}));
}

TEST(H2RequestFields, GrpcGetsTeTrailersBack) {
  MessageHead head;
  head.method = "POST";
  head.target = "/helloworld.Greeter/SayHello";
  head.headers.Add("Host", "greeter:50051");
  head.headers.Add("content-type", "application/grpc+proto");
  head.headers.Add("Connection", "keep-alive");
  head.headers.Add("grpc-timeout", "1S");
  std::vector<HeaderField> out;
  H2RequestFields(head, &out);
  EXPECT_EQ(Copy(out), (Fields{{":method", "POST"},
                               {":scheme", "http"},
                               {":authority", "greeter:50051"},
                               {":path", "/helloworld.Greeter/SayHello"},
                               {"content-type", "application/grpc+proto"},
                               {"grpc-timeout", "1S"},
                               {"te", "trailers"}}));

  MessageHead plain;
  plain.method = "GET";
  plain.target = "/";
  plain.headers.Add("host", "svc");
  plain.headers.Add("te", "trailers");  // hop-by-hop: not passed on
  H2RequestFields(plain, &out);
  EXPECT_EQ(Copy(out), (Fields{{":method", "GET"},
                               {":scheme", "http"},
                               {":authority", "svc"},
                               {":path", "/"}}));
}

H2HeaderBlock Response(int status) {
  H2HeaderBlock b;
  b.status = status;
  return b;
}

TEST(H1ResponseHead, EndedWithTheHeadIsLengthZero) {
  H2HeaderBlock b = Response(200);
  b.headers.Add("grpc-status", "0");
  MessageHead out;
  H1ResponseHead(b, /*end_stream=*/true, /*head_request=*/false, &out);
  EXPECT_EQ(out.status_code, 200);
  EXPECT_EQ(out.framing, BodyFraming::kContentLength);
  EXPECT_EQ(out.content_length, 0u);
  EXPECT_EQ(Copy(out.headers.fields()), (Fields{{"grpc-status", "0"}}));
}

TEST(H1ResponseHead, ContentLengthFieldFramesTheBody) {
  H2HeaderBlock b = Response(200);
  b.headers.Add("content-length", "42");
  MessageHead out;
  H1ResponseHead(b, false, false, &out);
  EXPECT_EQ(out.framing, BodyFraming::kContentLength);
  EXPECT_EQ(out.content_length, 42u);
}

TEST(H1ResponseHead, OtherwiseChunked) {
  H2HeaderBlock b = Response(200);
  b.headers.Add("content-type", "application/grpc");
  MessageHead out;
  H1ResponseHead(b, false, false, &out);
  EXPECT_EQ(out.framing, BodyFraming::kChunked);
}

// gRPC's status is a trailer: with a content-length the HTTP/1.1 side could
// not carry it, so such a response is chunked there (the bench found a gRPC
// server that sends both).
TEST(H1ResponseHead, GrpcWithContentLengthIsChunkedToKeepItsTrailers) {
  H2HeaderBlock b = Response(200);
  b.headers.Add("content-type", "application/grpc+proto");
  b.headers.Add("content-length", "15");
  MessageHead out;
  H1ResponseHead(b, false, false, &out);
  EXPECT_EQ(out.framing, BodyFraming::kChunked);
  H2HeaderBlock announced = Response(200);
  announced.headers.Add("content-length", "15");
  announced.headers.Add("trailer", "x-checksum");
  H1ResponseHead(announced, false, false, &out);
  EXPECT_EQ(out.framing, BodyFraming::kChunked);
}

TEST(H1ResponseHead, HeadAnd204HaveNoBody) {
  H2HeaderBlock b = Response(200);
  b.headers.Add("content-length", "42");
  MessageHead out;
  H1ResponseHead(b, true, /*head_request=*/true, &out);
  EXPECT_EQ(out.framing, BodyFraming::kNone);
  H1ResponseHead(Response(204), false, false, &out);
  EXPECT_EQ(out.framing, BodyFraming::kNone);
  H1ResponseHead(Response(304), true, false, &out);
  EXPECT_EQ(out.framing, BodyFraming::kNone);
}

}  // namespace
}  // namespace nodemesh::http
