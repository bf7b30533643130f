#include "agent/http/http1_writer.h"

#include <string>
#include <vector>

#include "agent/http/http1_parser.h"
#include "gtest/gtest.h"

namespace nodemesh::http {
namespace {

TEST(Http1WriterTest, ResponseWithBody) {
  std::string out = "previous";  // appends, never overwrites
  const HeaderField fields[] = {{"Content-Type", "application/json"},
                                {"Connection", "close"}};
  AppendResponse(200, fields, "{\"ok\":true}", &out);
  EXPECT_EQ(out,
            "previousHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            "Connection: close\r\nContent-Length: 11\r\n\r\n{\"ok\":true}");
}

TEST(Http1WriterTest, HeadResponseAnnouncesLengthWithoutBody) {
  std::string out;
  AppendResponse(404, {}, "missing", &out, /*omit_body=*/true);
  EXPECT_EQ(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 7\r\n\r\n");
}

TEST(Http1WriterTest, HeadWithoutLengthAndUnknownReason) {
  std::string out;
  AppendResponseHead(599, {}, std::nullopt, &out);
  EXPECT_EQ(out, "HTTP/1.1 599 Unknown\r\n\r\n");
  EXPECT_EQ(ReasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(ReasonPhrase(413), "Content Too Large");
}

TEST(Http1WriterTest, InvalidFieldsAreNeverWritten) {
  // Dropped in release builds; debug builds treat it as a bug (DFATAL).
  EXPECT_FALSE(IsValidHeaderName(""));
  EXPECT_FALSE(IsValidHeaderName("X Y"));
  EXPECT_FALSE(IsValidHeaderName("X:Y"));
  EXPECT_TRUE(IsValidHeaderName("X-Request-Id"));
  EXPECT_FALSE(IsValidHeaderValue("a\r\nInjected: 1"));
  EXPECT_FALSE(IsValidHeaderValue(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidHeaderValue(" padded"));
  EXPECT_TRUE(IsValidHeaderValue("text/plain; charset=utf-8"));
  EXPECT_TRUE(IsValidHeaderValue(""));
#ifdef NDEBUG
  std::string out;
  const HeaderField fields[] = {{"X-Bad", "a\r\nInjected: 1"}, {"X-Ok", "1"}};
  AppendResponseHead(200, fields, 0, &out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nX-Ok: 1\r\nContent-Length: 0\r\n\r\n");
#endif
}

TEST(Http1WriterTest, HopByHopHeaders) {
  for (const char* h : {"Connection", "keep-alive", "Proxy-Connection", "TE",
                        "Transfer-Encoding", "upgrade", "Trailer"}) {
    EXPECT_TRUE(IsHopByHopHeader(h)) << h;
  }
  EXPECT_FALSE(IsHopByHopHeader("Content-Length"));
  EXPECT_FALSE(IsHopByHopHeader("Trailers"));
  HeaderList headers;
  headers.Add("Connection", "keep-alive, X-Session-Hint");
  headers.Add("connection", "x-other");
  EXPECT_TRUE(IsHopByHopHeader("x-session-hint", headers));
  EXPECT_TRUE(IsHopByHopHeader("X-Other", headers));
  EXPECT_FALSE(IsHopByHopHeader("X-Session", headers));
  EXPECT_EQ(headers.Count("CONNECTION"), 2u);
}

TEST(Http1WriterTest, HopByHopFieldsWithManyConnectionLines) {
  HeaderList headers;
  for (const char* v : {"a", "b", "c", "d", "e, f"})
    headers.Add("Connection", v);
  HopByHopFields hop(headers);
  for (const char* h : {"A", "d", "e", "F", "te"})
    EXPECT_TRUE(hop.Contains(h)) << h;
  EXPECT_FALSE(hop.Contains("g"));
  EXPECT_FALSE(hop.Contains("content-type"));
}

TEST(Http1WriterTest, ListElementsTrimmedAndEmptySkipped) {
  std::vector<std::string> seen;
  ForEachListElement(" a ,, b\t,c, ", [&](std::string_view e) {
    seen.emplace_back(e);
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c"}));
}

// What the writer produces, the parser reads back unchanged.
class Collect : public Http1Visitor {
 public:
  void OnHeaders(const MessageHead& h) override {
    line = std::string(h.method) + " " + std::string(h.target) + " " +
           std::to_string(h.status_code);
    for (const HeaderField& f : h.headers) {
      fields += std::string(f.name) + "=" + std::string(f.value) + ";";
    }
  }
  void OnBody(std::string_view d) override { body += d; }
  void OnTrailers(const HeaderList& t) override {
    for (const HeaderField& f : t) {
      trailers += std::string(f.name) + "=" + std::string(f.value) + ";";
    }
  }
  void OnMessageComplete() override { ++done; }
  std::string line, fields, body, trailers;
  int done = 0;
};

TEST(Http1WriterTest, ChunkedRequestRoundTripsThroughParser) {
  std::string out;
  const HeaderField fields[] = {{"Host", "svc"},
                                {"Transfer-Encoding", "chunked"}};
  AppendRequestHead("POST", "/v1/items", fields, std::nullopt, &out);
  AppendChunk("hello ", &out);
  AppendChunk("", &out);  // must not end the body
  AppendChunk(std::string(300, 'x'), &out);
  const HeaderField trailers[] = {{"X-Sum", "42"}};
  AppendLastChunk(trailers, &out);

  Collect c;
  Http1Parser p(Http1Parser::Mode::kRequest, &c);
  ASSERT_EQ(p.Feed(out), out.size()) << p.status();
  EXPECT_EQ(c.done, 1);
  EXPECT_EQ(c.line, "POST /v1/items 0");
  EXPECT_EQ(c.fields, "Host=svc;Transfer-Encoding=chunked;");
  EXPECT_EQ(c.body, "hello " + std::string(300, 'x'));
  EXPECT_EQ(c.trailers, "X-Sum=42;");
}

TEST(Http1WriterTest, ResponseRoundTripsThroughParser) {
  std::string out;
  const HeaderField fields[] = {{"Content-Type", "text/plain"}};
  AppendResponse(503, fields, "draining", &out);
  Collect c;
  Http1Parser p(Http1Parser::Mode::kResponse, &c);
  ASSERT_EQ(p.Feed(out), out.size()) << p.status();
  EXPECT_EQ(c.done, 1);
  EXPECT_EQ(c.line, "  503");
  EXPECT_EQ(c.body, "draining");
}

}  // namespace
}  // namespace nodemesh::http
