#include "agent/http/http1_parser.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/http/parse_transcript.h"

// Framing, streaming, pipelining and protocol switches.
namespace nodemesh::http {
namespace {

using parse_test::Mode;
using parse_test::Outcome;
using parse_test::Parse;
using parse_test::ParseAllWays;
using parse_test::Recorder;

TEST(Http1ParserTest, SimpleGetWithCaseInsensitiveLookup) {
  struct Capture : Http1Visitor {
    void OnHeaders(const MessageHead& h) override {
      host = std::string(h.headers.Get("HOST").value_or("-"));
      accept = std::string(h.headers.Get("accept").value_or("-"));
      missing = h.headers.Has("x-missing");
      count = h.headers.size();
    }
    void OnBody(std::string_view) override {}
    void OnMessageComplete() override { done = true; }
    std::string host, accept;
    bool missing = true, done = false;
    size_t count = 0;
  } cap;
  Http1Parser p(Mode::kRequest, &cap);
  std::string_view req =
      "GET /healthz?x=1 HTTP/1.1\r\nHost: a.b\r\nAccept:  \t*/* \t\r\n\r\n";
  EXPECT_EQ(p.Feed(req), req.size());
  EXPECT_TRUE(cap.done);
  EXPECT_EQ(cap.host, "a.b");
  EXPECT_EQ(cap.accept, "*/*");  // OWS trimmed
  EXPECT_FALSE(cap.missing);
  EXPECT_EQ(cap.count, 2u);
  EXPECT_FALSE(p.message_in_progress());
}

TEST(Http1ParserTest, ContentLengthBody) {
  Outcome o = ParseAllWays(Mode::kRequest,
                           "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: "
                           "11\r\n\r\nhello world");
  EXPECT_EQ(o.log,
            "begin\nrequest POST /x 1.1 framing=length/11\n  Host: h\n"
            "  Content-Length: 11\nbody[hello world]\ndone\n");
}

TEST(Http1ParserTest, BodyIsStreamedNotBuffered) {
  Recorder rec;
  Http1Parser p(Mode::kRequest, &rec);
  p.Feed("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nab");
  EXPECT_EQ(rec.body_slices, 1);
  EXPECT_TRUE(p.message_in_progress());
  p.Feed("cd");
  p.Feed("ef");
  EXPECT_EQ(rec.body_slices, 3);
  EXPECT_EQ(rec.messages, 1);
}

TEST(Http1ParserTest, ChunkedWithExtensionsAndTrailers) {
  Outcome o = ParseAllWays(
      Mode::kRequest,
      "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n"
      "6 ; quoted=\"a b\"\r\n world\r\n"
      "0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n");
  EXPECT_EQ(o.log,
            "begin\nrequest POST /up 1.1 framing=chunked\n  Host: h\n"
            "  Transfer-Encoding: chunked\nbody[hello world]\n"
            "trailers\n  X-Checksum: abc\n  X-Other: 1\ndone\n");
}

TEST(Http1ParserTest, ChunkedWithoutTrailersAndUppercaseHex) {
  Outcome o = ParseAllWays(Mode::kRequest,
                           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
                           "gzip, CHUNKED\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n");
  EXPECT_EQ(o.error_status, 0) << o.log;
  EXPECT_NE(o.log.find("body[0123456789]\ndone\n"), std::string::npos) << o.log;
}

TEST(Http1ParserTest, PipelinedRequestsAllParsed) {
  std::string in =
      "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
      "\r\n"  // a stray CRLF between requests is tolerated
      "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "1\r\nz\r\n0\r\n\r\n"
      "GET /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  Outcome o = ParseAllWays(Mode::kRequest, in);
  EXPECT_EQ(o.consumed, in.size());
  EXPECT_EQ(o.error_status, 0) << o.log;
  EXPECT_EQ(o.log,
            "begin\nrequest GET /a 1.1 framing=none\n  Host: h\ndone\n"
            "begin\nrequest POST /b 1.1 framing=length/3\n  Host: h\n"
            "  Content-Length: 3\nbody[abc]\ndone\n"
            "begin\nrequest POST /c 1.1 framing=chunked\n  Host: h\n"
            "  Transfer-Encoding: chunked\nbody[z]\ndone\n"
            "begin\nrequest GET /d 1.1 framing=none close\n  Host: h\n"
            "  Connection: close\ndone\n");
}

TEST(Http1ParserTest, KeepAliveFollowsVersionAndConnection) {
  auto keep_alive = [](std::string_view req) {
    Recorder rec;
    Http1Parser p(Mode::kRequest, &rec);
    p.Feed(req);
    EXPECT_FALSE(p.has_error()) << p.status();
    return rec.last_head_keep_alive;
  };
  EXPECT_TRUE(keep_alive("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_FALSE(
      keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n"));
  EXPECT_FALSE(keep_alive("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(keep_alive("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_FALSE(keep_alive(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n"));
}

TEST(Http1ParserTest, ExpectContinueExposedAndPauseWorks) {
  Recorder rec;
  Http1Parser p(Mode::kRequest, &rec);
  rec.parser = &p;
  rec.pause_on_headers = true;
  std::string_view head =
      "PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
      "Expect: 100-Continue\r\n\r\n";
  std::string in = std::string(head) + "data";
  size_t n = p.Feed(in);
  EXPECT_EQ(n, head.size());  // stopped right after the head
  EXPECT_TRUE(p.paused());
  EXPECT_NE(rec.log().find("expect-continue"), std::string::npos);
  p.Resume();
  EXPECT_EQ(p.Feed(std::string_view(in).substr(n)), 4u);
  EXPECT_EQ(rec.messages, 1);
  // HTTP/1.0 clients do not wait for 100 Continue.
  Outcome o = ParseAllWays(Mode::kRequest,
                           "PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(o.log.find("expect-continue"), std::string::npos);
}

TEST(Http1ParserTest, PauseOnBodilessMessageDefersCompletion) {
  Recorder rec;
  Http1Parser p(Mode::kRequest, &rec);
  rec.parser = &p;
  rec.pause_on_headers = true;
  EXPECT_EQ(p.Feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 27u);
  EXPECT_EQ(rec.messages, 0);
  EXPECT_TRUE(p.message_in_progress());
  p.Resume();
  EXPECT_EQ(p.Feed(""), 0u);
  EXPECT_EQ(rec.messages, 1);
}

TEST(Http1ParserTest, UpgradeRequestStopsAtTunnelBytes) {
  std::string head =
      "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
      "Upgrade: websocket\r\n\r\n";
  Outcome o = ParseAllWays(Mode::kRequest, head + "\x81\x05hello");
  EXPECT_TRUE(o.upgraded);
  EXPECT_EQ(o.consumed, head.size());
  EXPECT_NE(o.log.find("upgrade"), std::string::npos);

  // Declined: Resume() goes back to HTTP for the next request.
  Recorder rec;
  Http1Parser p(Mode::kRequest, &rec);
  std::string both = head + "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  size_t n = p.Feed(both);
  ASSERT_TRUE(p.upgraded());
  p.Resume();
  EXPECT_FALSE(p.upgraded());
  EXPECT_EQ(p.Feed(std::string_view(both).substr(n)), both.size() - n);
  EXPECT_EQ(rec.messages, 2);

  // Upgrade without "Connection: upgrade" is not an upgrade.
  Outcome plain =
      ParseAllWays(Mode::kRequest,
                   "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_FALSE(plain.upgraded);
}

TEST(Http1ParserTest, ConnectReportedAsTunnel) {
  std::string head = "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n";
  Outcome o = ParseAllWays(Mode::kRequest, head + "raw");
  EXPECT_TRUE(o.upgraded);
  EXPECT_EQ(o.consumed, head.size());
  EXPECT_NE(o.log.find("request CONNECT db:5432 1.1 framing=none connect"),
            std::string::npos)
      << o.log;
}

TEST(Http1ParserTest, ResponseWithContentLengthAndChunked) {
  Outcome o =
      ParseAllWays(Mode::kResponse,
                   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
                   "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
                   "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(o.error_status, 0) << o.log;
  EXPECT_EQ(o.log,
            "begin\nresponse 200 OK 1.1 framing=length/2\n"
            "  Content-Length: 2\nbody[hi]\ndone\n"
            "begin\nresponse 201 Created 1.1 framing=chunked\n"
            "  Transfer-Encoding: chunked\nbody[abc]\ntrailers\n  X-T: 1\n"
            "done\n"
            "begin\nresponse 404  1.1 framing=none\n  Content-Length: 0\n"
            "done\n");
}

TEST(Http1ParserTest, HeadResponseHasNoBodyDespiteLength) {
  Outcome o = ParseAllWays(Mode::kResponse,
                           "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
                           "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
                           false, {"HEAD", "GET"});
  EXPECT_EQ(o.error_status, 0) << o.log;
  EXPECT_EQ(o.log,
            "begin\nresponse 200 OK 1.1 framing=none\n"
            "  Content-Length: 10\ndone\n"
            "begin\nresponse 200 OK 1.1 framing=length/3\n"
            "  Content-Length: 3\nbody[abc]\ndone\n");
}

TEST(Http1ParserTest, NoBodyFor204And304AndInterim1xx) {
  Outcome o = ParseAllWays(
      Mode::kResponse,
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
      "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n",
      false, {"GET", "GET", "HEAD"});
  EXPECT_EQ(o.error_status, 0) << o.log;
  // 100 did not consume an entry: the third final response answers HEAD.
  EXPECT_EQ(o.log,
            "begin\nresponse 100 Continue 1.1 framing=none\ndone\n"
            "begin\nresponse 204 No Content 1.1 framing=none\n"
            "  Content-Length: 5\ndone\n"
            "begin\nresponse 304 Not Modified 1.1 framing=none\n"
            "  Transfer-Encoding: chunked\ndone\n"
            "begin\nresponse 200 OK 1.1 framing=none\n"
            "  Content-Length: 1\ndone\n");
}

TEST(Http1ParserTest, CloseDelimitedResponse) {
  std::string in =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
      "all of this until the end";
  Outcome o = ParseAllWays(Mode::kResponse, in, /*eof=*/true);
  EXPECT_EQ(o.error_status, 0);
  EXPECT_EQ(o.log,
            "begin\nresponse 200 OK 1.1 framing=close close\n"
            "  Content-Type: text/plain\nbody[all of this until the end]\n"
            "done\n");
  // Without the close, the message is not complete.
  Outcome open = Parse(Mode::kResponse, in);
  EXPECT_EQ(open.log.find("done"), std::string::npos);
  // A non-chunked final coding is also read until close.
  Outcome gz = ParseAllWays(
      Mode::kResponse,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b", true);
  EXPECT_NE(gz.log.find("framing=close"), std::string::npos);
}

TEST(Http1ParserTest, SwitchingProtocolsAndConnectResponsesTunnel) {
  std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\n"
      "Connection: upgrade\r\n\r\n";
  Outcome o = ParseAllWays(Mode::kResponse, head + "frames");
  EXPECT_TRUE(o.upgraded);
  EXPECT_EQ(o.consumed, head.size());
  std::string ok = "HTTP/1.1 200 Connection established\r\n\r\n";
  Outcome c = ParseAllWays(Mode::kResponse, ok + "tls", false, {"CONNECT"});
  EXPECT_TRUE(c.upgraded);
  EXPECT_EQ(c.consumed, ok.size());
  EXPECT_NE(c.log.find("connect"), std::string::npos);
}

TEST(Http1ParserTest, ResetReusesParser) {
  Recorder rec;
  Http1Parser p(Mode::kRequest, &rec);
  p.Feed("GARBAGE\r\n\r\n");
  ASSERT_TRUE(p.has_error());
  p.Reset();
  EXPECT_FALSE(p.has_error());
  std::string_view ok = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  EXPECT_EQ(p.Feed(ok), ok.size());
  EXPECT_EQ(rec.messages, 1);
}

TEST(Http1ParserTest, HeadSplitAcrossFeedsIsCopiedOnce) {
  // Views handed to OnHeaders must stay intact when the head arrived in
  // pieces (they then point into the parser's own buffer).
  struct Capture : Http1Visitor {
    void OnHeaders(const MessageHead& h) override {
      value = std::string(h.headers.Get("x-long").value_or(""));
      target = std::string(h.target);
    }
    void OnBody(std::string_view) override {}
    void OnMessageComplete() override {}
    std::string value, target;
  } cap;
  Http1Parser p(Mode::kRequest, &cap);
  std::string long_value(5000, 'v');
  std::string in =
      "GET /some/target HTTP/1.1\r\nHost: h\r\nX-Long: " + long_value +
      "\r\n\r\n";
  for (size_t i = 0; i < in.size(); i += 333) {
    std::string slice = in.substr(i, 333);  // freed after each Feed
    ASSERT_EQ(p.Feed(slice), slice.size());
  }
  EXPECT_EQ(cap.value, long_value);
  EXPECT_EQ(cap.target, "/some/target");
}

}  // namespace
}  // namespace nodemesh::http
