#include "agent/proxy/access_log.h"

#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace nodemesh::proxy {
namespace {

using std::chrono::milliseconds;
using std::chrono::system_clock;

// 2016-04-15T20:17:00.310Z
system_clock::time_point Start() {
  return system_clock::time_point(milliseconds(1460751420310LL));
}

std::string Hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

class AccessLogTest : public ::testing::Test {
 protected:
  // Every field set; headers captured under `table_`.
  AccessLogEntry Full() {
    request_.Clear();
    request_.Add("User-Agent", "curl/7.88.1");
    request_.Add("X-Forwarded-For", "10.0.0.9");
    request_.Add("x-request-id", "from-client");
    request_.Add("X-Custom", "abcdefghij");
    response_.Clear();
    response_.Add("Content-Type", "text/plain");
    response_.Add("x-envoy-upstream-service-time", "7");
    trailers_.Clear();
    trailers_.Add("grpc-status", "0");
    captured_.Reset(table_);
    captured_.Capture(table_, HeaderSource::kRequest, request_);
    captured_.Capture(table_, HeaderSource::kResponse, response_);
    captured_.Capture(table_, HeaderSource::kTrailer, trailers_);
    AccessLogEntry e;
    e.start_time = Start();
    e.method = "POST";
    e.path = "/api/v1/locations?x=1";
    e.authority = "locations.m.local:8080";
    e.scheme = "http";
    e.protocol = "HTTP/1.1";
    e.response_code = 204;
    e.response_code_details = "via_upstream";
    e.bytes_received = 154;
    e.bytes_sent = 0;
    e.duration_ms = 226;
    e.request_duration_ms = 3;
    e.response_duration_ms = 100;
    e.upstream_host = "10.0.2.1:80";
    e.upstream_cluster = "m/locations:80";
    e.route_name = "main";
    e.downstream_remote_address = "10.0.35.28:51000";
    e.downstream_remote_address_without_port = "10.0.35.28";
    e.downstream_local_address = "127.0.0.1:15001";
    e.connection_id = 42;
    e.request_id = "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2";
    e.forwarded_for = "10.0.0.9, 10.0.35.28";
    e.headers = &captured_;
    return e;
  }

  std::string Text(const std::string& format, const AccessLogEntry& e) {
    auto f = AccessLogFormat::Text(format, &table_, &warnings_);
    // Headers are captured after compiling: the table knows their slots.
    AccessLogEntry entry = e;
    if (entry.headers != nullptr) entry = Recapture(entry);
    std::string out;
    f->Append(entry, table_, &out);
    return out;
  }

  nlohmann::json Json(
      const std::vector<std::pair<std::string, std::string>>& fields,
      const AccessLogEntry& e, std::string* raw = nullptr) {
    auto f = AccessLogFormat::Json(fields, &table_, &warnings_);
    AccessLogEntry entry = e;
    if (entry.headers != nullptr) entry = Recapture(entry);
    std::string out;
    f->Append(entry, table_, &out);
    if (raw != nullptr) *raw = out;
    EXPECT_EQ(out.back(), '\n');
    EXPECT_EQ(out.find('\n'), out.size() - 1);
    return nlohmann::json::parse(out);
  }

  AccessLogEntry Recapture(AccessLogEntry e) {
    captured_.Reset(table_);
    captured_.Capture(table_, HeaderSource::kRequest, request_);
    captured_.Capture(table_, HeaderSource::kResponse, response_);
    captured_.Capture(table_, HeaderSource::kTrailer, trailers_);
    e.headers = &captured_;
    return e;
  }

  AccessLogHeaderTable table_;
  CapturedHeaders captured_;
  http::HeaderList request_, response_, trailers_;
  std::vector<std::string> warnings_;
};

TEST_F(AccessLogTest, DefaultFormatMatchesEnvoysExample) {
  AccessLogEntry e = Full();
  e.forwarded_for = "10.0.35.28";
  e.request_id = "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2";
  e.path = "/api/v1/locations";
  e.authority = "locations";
  e.upstream_host = "10.0.2.1:80";
  request_.Clear();
  request_.Add("user-agent", "nsq2http");
  response_.Clear();
  response_.Add("x-envoy-upstream-service-time", "100");
  EXPECT_EQ(Text(std::string(kDefaultAccessLogFormat), e),
            "[2016-04-15T20:17:00.310Z] \"POST /api/v1/locations HTTP/1.1\" "
            "204 - 154 0 226 100 \"10.0.35.28\" \"nsq2http\" "
            "\"cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2\" \"locations\" "
            "\"10.0.2.1:80\"\n");
  EXPECT_TRUE(warnings_.empty());
}

TEST_F(AccessLogTest, EveryOperatorInText) {
  AccessLogEntry e = Full();
  e.response_flags =
      kFlagUpstreamConnectFailure | kFlagUpstreamRetryLimitExceeded;
  e.upstream_transport_failure_reason = "connection_failure";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"%START_TIME%", "2016-04-15T20:17:00.310Z"},
      {"%REQ(:METHOD)%", "POST"},
      {"%REQ(:PATH)%", "/api/v1/locations?x=1"},
      {"%REQ(:AUTHORITY)%", "locations.m.local:8080"},
      {"%REQ(:SCHEME)%", "http"},
      {"%REQ(USER-AGENT)%", "curl/7.88.1"},
      {"%REQ(user-agent)%", "curl/7.88.1"},
      {"%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "/api/v1/locations?x=1"},
      {"%REQ(X-CUSTOM?:PATH)%", "abcdefghij"},
      {"%REQ(X-CUSTOM):4%", "abcd"},
      {"%REQ(X-MISSING)%", "-"},
      {"%REQ(X-REQUEST-ID)%", "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"},
      {"%REQ(X-FORWARDED-FOR)%", "10.0.0.9, 10.0.35.28"},
      {"%RESP(CONTENT-TYPE)%", "text/plain"},
      {"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "7"},
      {"%RESP(USER-AGENT)%", "-"},
      {"%TRAILER(GRPC-STATUS)%", "0"},
      {"%TRAILER(CONTENT-TYPE)%", "-"},
      {"%RESPONSE_CODE%", "204"},
      {"%RESPONSE_FLAGS%", "UF,URX"},
      {"%RESPONSE_CODE_DETAILS%", "via_upstream"},
      {"%BYTES_RECEIVED%", "154"},
      {"%BYTES_SENT%", "0"},
      {"%DURATION%", "226"},
      {"%REQUEST_DURATION%", "3"},
      {"%RESPONSE_DURATION%", "100"},
      {"%UPSTREAM_HOST%", "10.0.2.1:80"},
      {"%UPSTREAM_CLUSTER%", "m/locations:80"},
      {"%DOWNSTREAM_REMOTE_ADDRESS%", "10.0.35.28:51000"},
      {"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "10.0.35.28"},
      {"%DOWNSTREAM_LOCAL_ADDRESS%", "127.0.0.1:15001"},
      {"%PROTOCOL%", "HTTP/1.1"},
      {"%UPSTREAM_TRANSPORT_FAILURE_REASON%", "connection_failure"},
      {"%ROUTE_NAME%", "main"},
      {"%REQUESTED_SERVER_NAME%", "-"},
      {"%CONNECTION_ID%", "42"},
      {"%HOSTNAME%", Hostname()},
  };
  for (const auto& [format, want] : cases) {
    EXPECT_EQ(Text(format, e), want + "\n") << format;
  }
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
}

TEST_F(AccessLogTest, ARequestIdTheClientSentIsUsedWhenNoneWasGenerated) {
  AccessLogEntry e = Full();
  e.request_id = {};
  e.forwarded_for = {};
  EXPECT_EQ(Text("%REQ(X-REQUEST-ID)% %REQ(X-FORWARDED-FOR)%", e),
            "from-client 10.0.0.9\n");
}

TEST_F(AccessLogTest, MissingValuesPrintDashInText) {
  AccessLogEntry e;  // nothing known: a TCP connection that never connected
  std::string format;
  for (std::string op : {"START_TIME",
                         "REQ(:METHOD)",
                         "REQ(USER-AGENT)",
                         "RESP(X)",
                         "TRAILER(X)",
                         "RESPONSE_CODE",
                         "RESPONSE_CODE_DETAILS",
                         "BYTES_RECEIVED",
                         "BYTES_SENT",
                         "DURATION",
                         "REQUEST_DURATION",
                         "RESPONSE_DURATION",
                         "UPSTREAM_HOST",
                         "UPSTREAM_CLUSTER",
                         "DOWNSTREAM_REMOTE_ADDRESS",
                         "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
                         "DOWNSTREAM_LOCAL_ADDRESS",
                         "PROTOCOL",
                         "UPSTREAM_TRANSPORT_FAILURE_REASON",
                         "ROUTE_NAME",
                         "REQUESTED_SERVER_NAME",
                         "CONNECTION_ID"}) {
    format += "%" + op + "% ";
  }
  std::string line = Text(format, e);
  std::string want;
  for (int i = 0; i < 22; ++i) want += "- ";
  EXPECT_EQ(line, want + "\n");
  // No flags is "-" too.
  EXPECT_EQ(Text("%RESPONSE_FLAGS%", e), "-\n");
}

TEST_F(AccessLogTest, StartTimeFormats) {
  AccessLogEntry e;
  e.start_time = Start() + std::chrono::microseconds(123);  // .310123
  EXPECT_EQ(Text("%START_TIME(%Y/%m/%d %H:%M:%S)%", e),
            "2016/04/15 20:17:00\n");
  EXPECT_EQ(Text("%START_TIME(%s)%", e), "1460751420\n");
  EXPECT_EQ(Text("%START_TIME(%s.%3f)%", e), "1460751420.310\n");
  EXPECT_EQ(Text("%START_TIME(%s.%6f)%", e), "1460751420.310123\n");
  EXPECT_EQ(Text("%START_TIME(%f)%", e), "310123000\n");
  EXPECT_EQ(Text("%START_TIME(%H:%M:%E3S)%", e), "20:17:00.310\n");
  EXPECT_EQ(Text("%START_TIME(%Y-%m-%dT%H:%M:%S%z)%", e),
            "2016-04-15T20:17:00+0000\n");
  EXPECT_EQ(Text("%START_TIME(100%%)%", e), "100%\n");
}

TEST_F(AccessLogTest, LiteralsAndUnknownOperators) {
  AccessLogEntry e = Full();
  // Text around and between operators, adjacent operators, a lone %.
  EXPECT_EQ(Text("code=%RESPONSE_CODE%%PROTOCOL% 100% done\n", e),
            "code=204HTTP/1.1 100% done\n");
  EXPECT_TRUE(warnings_.empty());
  // Unknown operators print "-" with a warning; broken ones stay text.
  EXPECT_EQ(Text("%DYNAMIC_METADATA(x)% %UPSTREAM_LOCAL_ADDRESS%", e), "- -\n");
  EXPECT_EQ(warnings_.size(), 2u);
  warnings_.clear();
  EXPECT_EQ(Text("%REQ(USER-AGENT %RESPONSE_CODE%", e),
            "%REQ(USER-AGENT 204\n");
  EXPECT_EQ(warnings_.size(), 1u);
  warnings_.clear();
  EXPECT_EQ(Text("%REQ% %REQ()%", e), "- -\n");
  EXPECT_EQ(warnings_.size(), 2u);
}

TEST_F(AccessLogTest, JsonValuesAreTyped) {
  AccessLogEntry e = Full();
  nlohmann::json j = Json({{"start", "%START_TIME%"},
                           {"method", "%REQ(:METHOD)%"},
                           {"path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"},
                           {"code", "%RESPONSE_CODE%"},
                           {"flags", "%RESPONSE_FLAGS%"},
                           {"rx", "%BYTES_RECEIVED%"},
                           {"tx", "%BYTES_SENT%"},
                           {"duration", "%DURATION%"},
                           {"conn", "%CONNECTION_ID%"},
                           {"ua", "%REQ(USER-AGENT)%"},
                           {"trailer", "%TRAILER(grpc-status)%"},
                           {"missing", "%REQ(X-MISSING)%"},
                           {"sni", "%REQUESTED_SERVER_NAME%"},
                           {"unknown", "%FILTER_STATE(x)%"},
                           {"mixed", "%REQ(:METHOD)% %RESPONSE_CODE% %REQ(X)%"},
                           {"literal", "just text"}},
                          e);
  EXPECT_EQ(j["start"], "2016-04-15T20:17:00.310Z");
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["path"], "/api/v1/locations?x=1");
  EXPECT_EQ(j["code"], 204);
  EXPECT_TRUE(j["code"].is_number_integer());
  EXPECT_EQ(j["flags"], "-");
  EXPECT_EQ(j["rx"], 154);
  EXPECT_EQ(j["tx"], 0);
  EXPECT_EQ(j["duration"], 226);
  EXPECT_EQ(j["conn"], 42);
  EXPECT_EQ(j["ua"], "curl/7.88.1");
  EXPECT_EQ(j["trailer"], "0");
  EXPECT_TRUE(j["missing"].is_null());
  EXPECT_TRUE(j["sni"].is_null());
  EXPECT_TRUE(j["unknown"].is_null());
  EXPECT_EQ(j["mixed"], "POST 204 -");
  EXPECT_EQ(j["literal"], "just text");
  EXPECT_EQ(warnings_.size(), 1u);  // FILTER_STATE
}

TEST_F(AccessLogTest, JsonKeepsKeyOrderAndEscapes) {
  AccessLogEntry e = Full();
  e.path = "/a\"b\\c\x01";
  std::string raw;
  nlohmann::json j =
      Json({{"z", "%REQ(:PATH)%"}, {"a\"key", "%RESPONSE_CODE%"}}, e, &raw);
  EXPECT_EQ(raw, "{\"z\":\"/a\\\"b\\\\c\\u0001\",\"a\\\"key\":204}\n");
  EXPECT_EQ(j["z"], "/a\"b\\c\x01");
}

TEST_F(AccessLogTest, JsonMissingValuesAreNull) {
  AccessLogEntry e;
  nlohmann::json j = Json({{"code", "%RESPONSE_CODE%"},
                           {"host", "%UPSTREAM_HOST%"},
                           {"duration", "%DURATION%"},
                           {"start", "%START_TIME%"}},
                          e);
  for (const auto& [k, v] : j.items()) EXPECT_TRUE(v.is_null()) << k;
}

TEST_F(AccessLogTest, JsonDuplicateKeyKeepsTheLastValue) {
  AccessLogEntry e = Full();
  nlohmann::json j =
      Json({{"k", "%RESPONSE_CODE%"}, {"k", "%REQ(:METHOD)%"}}, e);
  EXPECT_EQ(j.size(), 1u);
  EXPECT_EQ(j["k"], "POST");
  EXPECT_EQ(warnings_.size(), 1u);
}

TEST_F(AccessLogTest, HeadersCapturedUnderAnotherConfigAreNotRead) {
  AccessLogEntry e = Full();
  auto f = AccessLogFormat::Text("%REQ(USER-AGENT)%", &table_, &warnings_);
  e = Recapture(e);
  AccessLogHeaderTable other;
  other.Slot(HeaderSource::kRequest, "user-agent");
  std::string out;
  f->Append(e, other, &out);
  EXPECT_EQ(out, "-\n");
}

TEST_F(AccessLogTest, LocalReasonsMapToEnvoyFlags) {
  AccessLogEntry e;
  auto flags = [&](LocalReason r) {
    e.response_flags = ReasonResponseFlags(r);
    return Text("%RESPONSE_FLAGS%", e);
  };
  EXPECT_EQ(flags(LocalReason::kNoRoute), "NR\n");
  EXPECT_EQ(flags(LocalReason::kNoHealthyUpstream), "UH\n");
  EXPECT_EQ(flags(LocalReason::kConnectFailure), "UF\n");
  EXPECT_EQ(flags(LocalReason::kUpstreamReset), "UC\n");
  EXPECT_EQ(flags(LocalReason::kRequestTimeout), "UT\n");
  EXPECT_EQ(flags(LocalReason::kPerTryTimeout), "UT\n");
  EXPECT_EQ(flags(LocalReason::kIdleTimeout), "SI\n");
  EXPECT_EQ(flags(LocalReason::kOverflow), "UO\n");
  EXPECT_EQ(flags(LocalReason::kBadRequest), "DPE\n");
  EXPECT_EQ(flags(LocalReason::kBadResponse), "UPE\n");
  EXPECT_EQ(ReasonCodeDetails(LocalReason::kNoRoute), "route_not_found");
}

}  // namespace
}  // namespace nodemesh::proxy
