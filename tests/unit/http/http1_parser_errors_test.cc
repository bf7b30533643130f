#include <string>
#include <vector>

#include "agent/http/http1_parser.h"
#include "gtest/gtest.h"
#include "tests/unit/http/parse_transcript.h"

// Rejections: smuggling shapes, limits, versions, truncation.
namespace nodemesh::http {
namespace {

using parse_test::Mode;
using parse_test::Outcome;
using parse_test::Parse;
using parse_test::ParseAllWays;
using parse_test::Recorder;
using parse_test::RequestError;

TEST(Http1ParserErrorsTest, SmugglingShapesRejectedWith400) {
  const char* kBad[] = {
      // Content-Length together with Transfer-Encoding, either order.
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
      "Transfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
      "Content-Length: 3\r\n\r\n",
      // Differing Content-Lengths, as two lines or one list.
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
      "Content-Length: 4\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\n",
      // Content-Length that is not a plain number.
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ,\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n"
      "\r\n",
      // Transfer-Encoding other than chunked last.
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
      "Transfer-Encoding: identity\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n"
      "\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
      // Whitespace before the colon.
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 3\r\n\r\nabc",
      // obs-fold, and whitespace before the first field.
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  continued\r\n\r\n",
      "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
      // Bare CR and bare LF.
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r2\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n",
      "GET / HTTP/1.1\nHost: h\r\n\r\n",
      "\rGET / HTTP/1.1\r\nHost: h\r\n\r\n",
      // Invalid token characters in names and methods.
      "GET / HTTP/1.1\r\nHost: h\r\nX(A): 1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX\x01Y: 1\r\n\r\n",
      "G\"ET / HTTP/1.1\r\nHost: h\r\n\r\n",
      "GE\x7fT / HTTP/1.1\r\nHost: h\r\n\r\n",
      // Control characters in values, malformed request lines.
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n",
      "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
      "GET /\r\n\r\n",
      "GET / http/1.1\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.10\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
      // Host missing or repeated.
      "GET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      // Chunk framing errors.
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0x5\r\nhello\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "-1\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhelloXX0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5 \r\nhello\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\nhello\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "11111111111111111\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;a\x01\r\nhello\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\nX : y\r\n\r\n",
      // CONNECT with a body.
      "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nContent-Length: 5\r\n\r\n",
  };
  for (std::string_view bad : kBad) {
    SCOPED_TRACE(testing::PrintToString(std::string(bad)));
    EXPECT_EQ(RequestError(bad), 400);
  }
}

TEST(Http1ParserErrorsTest, NulInsideValueRejected) {
  // The literal above stops at NUL; build it explicitly.
  std::string req("GET / HTTP/1.1\r\nHost: h\r\nX-A: a");
  req.push_back('\0');
  req += "z\r\n\r\n";
  EXPECT_EQ(RequestError(req), 400);
}

TEST(Http1ParserErrorsTest, IdenticalContentLengthsAccepted) {
  Outcome o = ParseAllWays(Mode::kRequest,
                           "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
                           "Content-Length: 2, 2\r\n\r\nok");
  EXPECT_EQ(o.error_status, 0) << o.log;
  EXPECT_NE(o.log.find("body[ok]"), std::string::npos);
}

TEST(Http1ParserErrorsTest, ErrorCarriesReasonAndStopsParsing) {
  Recorder rec;
  Http1Parser p(Mode::kRequest, &rec);
  std::string_view bad =
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
      "Transfer-Encoding: chunked\r\n\r\nGET / HTTP/1.1\r\n";
  EXPECT_LT(p.Feed(bad), bad.size());
  ASSERT_TRUE(p.has_error());
  EXPECT_EQ(p.error().status, 400);
  EXPECT_EQ(p.error().reason, "both Content-Length and Transfer-Encoding");
  EXPECT_FALSE(p.status().ok());
  EXPECT_NE(std::string(p.status().message()).find("Transfer-Encoding"),
            std::string::npos);
  EXPECT_EQ(p.Feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 0u);
  EXPECT_EQ(rec.messages, 0);
}

TEST(Http1ParserErrorsTest, HeaderSectionOverLimitIs431) {
  std::string big = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " +
                    std::string(size_t{61} * 1024, 'a') + "\r\n\r\n";
  EXPECT_EQ(RequestError(big), 431);
  // Never terminated: the limit still applies while bytes trickle in.
  std::string endless = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " +
                        std::string(size_t{70} * 1024, 'a');
  EXPECT_EQ(Parse(Mode::kRequest, endless, 1000).error_status, 431);
  // Just under the limit is fine.
  std::string fits = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ";
  fits += std::string(size_t{60} * 1024 - fits.size() - 4, 'a') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), 60u * 1024);
  EXPECT_EQ(RequestError(fits), 0);
  // Configurable.
  Http1ParserOptions small;
  small.max_header_bytes = 64;
  EXPECT_EQ(Parse(Mode::kRequest,
                  "GET / HTTP/1.1\r\nHost: h\r\nX-A: " + std::string(40, 'b') +
                      "\r\n\r\n",
                  0, false, {}, small)
                .error_status,
            431);
}

TEST(Http1ParserErrorsTest, TooManyFieldsIs431) {
  std::string req = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 100; ++i) req += "X-" + std::to_string(i) + ": v\r\n";
  req += "\r\n";
  EXPECT_EQ(RequestError(req), 431);
}

TEST(Http1ParserErrorsTest, UnsupportedVersionIs505) {
  EXPECT_EQ(RequestError("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
  EXPECT_EQ(RequestError("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), 505);
  // 1.x above 1.1 is served as 1.1.
  Outcome o = ParseAllWays(Mode::kRequest, "GET / HTTP/1.2\r\nHost: h\r\n\r\n");
  EXPECT_EQ(o.error_status, 0);
  EXPECT_NE(o.log.find(" 1.1 "), std::string::npos);
}

TEST(Http1ParserErrorsTest, TruncatedBodyAtEofIsAnError) {
  Outcome o = ParseAllWays(Mode::kResponse,
                           "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                           /*eof=*/true);
  EXPECT_EQ(o.error_status, 502);
  Outcome r = Parse(Mode::kRequest, "GET / HTTP/1.1\r\nHo", 0, true);
  EXPECT_EQ(r.error_status, 400);
  Outcome clean =
      Parse(Mode::kRequest, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, true);
  EXPECT_EQ(clean.error_status, 0);
}

TEST(Http1ParserErrorsTest, BadResponsesMapTo502) {
  for (std::string_view bad : {
           std::string_view("HTTP/1.1 2000 OK\r\n\r\n"),
           std::string_view("HTTP/1.1 20 OK\r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
                            "Content-Length: 2\r\n\r\n"),
           std::string_view("HTTP/2 200 OK\r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"),
       }) {
    SCOPED_TRACE(std::string(bad));
    EXPECT_EQ(ParseAllWays(Mode::kResponse, bad).error_status, 502);
  }
}

}  // namespace
}  // namespace nodemesh::http
