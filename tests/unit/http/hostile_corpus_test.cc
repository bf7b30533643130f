#include "tests/unit/http/hostile_corpus.h"

#include <set>
#include <string>
#include <string_view>

#include "agent/http/http1_parser.h"
#include "gtest/gtest.h"

// Every hostile request is rejected with the expected status, however the
// bytes arrive, and never completes a message.
namespace nodemesh::http {
namespace {

using testing::HostileRequest;
using testing::kHostileRequests;
using testing::OversizedRequests;

class CountingVisitor : public Http1Visitor {
 public:
  void OnHeaders(const MessageHead& /*head*/) override { ++heads; }
  void OnBody(std::string_view data) override { body_bytes += data.size(); }
  void OnMessageComplete() override { ++completes; }

  int heads = 0;
  size_t body_bytes = 0;
  int completes = 0;
};

struct Rejection {
  int status = 0;
  std::string reason;
  int completes = 0;
};

// Feeds `bytes` in slices of `step` bytes (0 = whole), stopping where the
// parser stops, as a connection would.
Rejection FeedRequest(std::string_view bytes, size_t step) {
  CountingVisitor visitor;
  Http1Parser parser(Http1Parser::Mode::kRequest, &visitor);
  if (step == 0) step = bytes.size();
  size_t pos = 0;
  while (pos < bytes.size() && !parser.has_error()) {
    const std::string_view slice = bytes.substr(pos, step);
    const size_t n = parser.Feed(slice);
    pos += n;
    if (n < slice.size()) break;
  }
  Rejection out;
  out.completes = visitor.completes;
  if (parser.has_error()) {
    out.status = parser.error().status;
    out.reason = std::string(parser.error().reason);
  }
  return out;
}

void ExpectRejected(std::string_view bytes, int expected_status) {
  const Rejection whole = FeedRequest(bytes, 0);
  EXPECT_EQ(whole.status, expected_status) << "reason: " << whole.reason;
  EXPECT_EQ(whole.completes, 0);
  for (size_t step : {size_t{1}, size_t{7}}) {
    const Rejection split = FeedRequest(bytes, step);
    EXPECT_EQ(split.status, expected_status)
        << "step " << step << ", reason: " << split.reason;
    // The same error, not merely the same status, wherever the input splits.
    EXPECT_EQ(split.reason, whole.reason) << "step " << step;
    EXPECT_EQ(split.completes, 0) << "step " << step;
  }
}

class HostileCorpusTest : public ::testing::TestWithParam<HostileRequest> {};

TEST_P(HostileCorpusTest, Rejected) {
  const HostileRequest& req = GetParam();
  SCOPED_TRACE(::testing::PrintToString(std::string(req.bytes)));
  ExpectRejected(req.bytes, req.expected_status);
}

INSTANTIATE_TEST_SUITE_P(
    Requests, HostileCorpusTest, ::testing::ValuesIn(kHostileRequests),
    [](const ::testing::TestParamInfo<HostileRequest>& info) {
      return std::string(info.param.name);
    });

TEST(HostileCorpusTableTest, NamesUniqueAndCasesComplete) {
  std::set<std::string> names;
  for (const HostileRequest& req : kHostileRequests) {
    EXPECT_TRUE(names.insert(req.name).second) << "duplicate " << req.name;
    EXPECT_FALSE(req.bytes.empty()) << req.name;
  }
  for (const auto& req : OversizedRequests()) {
    EXPECT_TRUE(names.insert(req.name).second) << "duplicate " << req.name;
  }
  EXPECT_GE(names.size(), 60u);
}

TEST(HostileCorpusTableTest, OversizedRequestsRejected) {
  for (const auto& req : OversizedRequests()) {
    SCOPED_TRACE(req.name);
    ExpectRejected(req.bytes, req.expected_status);
  }
}

// The corpus only means something if a well-formed request of the same
// shape is accepted: the error comes from the hostile part.
TEST(HostileCorpusTableTest, WellFormedControlsAccepted) {
  for (std::string_view ok : {
           std::string_view("GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
           std::string_view("POST / HTTP/1.1\r\nHost: h\r\n"
                            "Content-Length: 5\r\n\r\nhello"),
           std::string_view("POST / HTTP/1.1\r\nHost: h\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n"
                            "5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
           std::string_view("GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
       }) {
    SCOPED_TRACE(::testing::PrintToString(std::string(ok)));
    CountingVisitor visitor;
    Http1Parser parser(Http1Parser::Mode::kRequest, &visitor);
    EXPECT_EQ(parser.Feed(ok), ok.size());
    EXPECT_FALSE(parser.has_error()) << parser.error().reason;
    EXPECT_EQ(visitor.completes, 1);
  }
}

}  // namespace
}  // namespace nodemesh::http
