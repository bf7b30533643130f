// Endpoint health with a real agent and real upstreams: outlier detection
// ejects an endpoint that answers 5xx and takes it back after its time;
// active health checks take a dead endpoint out of rotation and put it back
// when it serves again.

#include <chrono>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/proxy_fixture.h"

namespace nodemesh::testing {
namespace {

using appmesh::GatewayRoute;
using appmesh::Node;
using appmesh::Route;
using appmesh::Router;
using appmesh::Targets;
using nlohmann::json;

class ProxyOutlierTest : public ::testing::Test {
 protected:
  // Virtual node "app" on `port` of app.test, which resolves to 127.0.0.1
  // and 127.0.0.2 (ENDPOINTS), reached through a gateway.
  void StartWith(const json& listener_extra) {
    node_.SetHosts("127.0.0.1 app.test\n127.0.0.2 app.test");
    json model = {
        appmesh::Mesh(),
        Node("app", port_, "app.test", "http", listener_extra, "ENDPOINTS"),
        Router("r", 8080),
        Route("r", "main",
              {{"httpRoute",
                {{"match", {{"prefix", "/"}}},
                 {"action", Targets({{"app", 1}})}}}}),
        appmesh::ServiceByRouter("svc.m.local", "r"),
        appmesh::Gateway("gw", gw_port_),
        GatewayRoute("gw", "all", "/", "svc.m.local")};
    ASSERT_TRUE(node_.Start(model));
    ASSERT_TRUE(WaitFor([&] { return Health().size() == 2; }, 5000));
  }
  // Endpoint address -> health, from /clusters.
  std::map<std::string, std::string> Health() {
    std::map<std::string, std::string> out;
    json c = node_.AdminJson("/clusters");
    if (!c.is_object() || c["clusters"].empty()) return out;
    for (const json& e : c["clusters"][0]["endpoint_health"])
      out[e["address"].get<std::string>()] = e["health"].get<std::string>();
    return out;
  }
  std::string HealthOf(const std::string& host) {
    auto h = Health();
    auto it = h.find(absl::StrCat(host, ":", port_));
    return it == h.end() ? "" : it->second;
  }
  template <typename F>
  bool WaitFor(F done, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return done();
  }
  // `n` requests through the gateway; how many got a 200.
  int Send(int n, const std::string& args = "") {
    int ok = 0;
    for (int i = 0; i < n; ++i) {
      std::string code =
          node_.Curl(absl::StrCat("-o /dev/null -w '%{http_code}' ", args,
                                  " http://127.0.0.1:", gw_port_, "/a"));
      ok += code == "200" ? 1 : 0;
    }
    return ok;
  }
  int Requests(const std::string& host) {
    json s = node_.UpstreamStats(port_, host);
    return s.is_object() ? s["requests"].get<int>() : -1;
  }
  void ResetStats(const std::string& host) {
    node_.Curl(absl::StrCat("-X POST http://", host, ":", port_, "/__reset"));
  }

  ProxyNode node_;
  uint16_t gw_port_ = PickPort();
  uint16_t port_ = PickPort();
};

TEST_F(ProxyOutlierTest, EndpointAnswering5xxIsEjectedAndComesBack) {
  node_.AddUpstreams({{"good", port_, "127.0.0.1"}});
  node_.AddUpstreams({{"bad", port_, "127.0.0.2"}});
  StartWith({{"outlierDetection",
              {{"maxServerErrors", 3},
               {"interval", {{"unit", "s"}, {"value", 10}}},
               {"baseEjectionDuration", {{"unit", "ms"}, {"value", 2000}}},
               {"maxEjectionPercent", 50}}}});
  EXPECT_EQ(HealthOf("127.0.0.2"), "healthy");
  // Only "bad" fails these; it is ejected after its third 5xx.
  Send(30, "-H 'x-fail-upstream: bad'");
  ASSERT_TRUE(
      WaitFor([&] { return HealthOf("127.0.0.2") == "ejected"; }, 2000));
  EXPECT_EQ(HealthOf("127.0.0.1"), "healthy");  // the cap: one of two
  std::string metrics = node_.Metrics();
  EXPECT_TRUE(absl::StrContains(
      metrics, absl::StrCat("nodemesh_outlier_ejections_total{mesh=\"m\","
                            "virtual_node=\"app\",port=\"",
                            port_, "\"} 1")))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics, absl::StrCat("nodemesh_upstream_endpoints{mesh=\"m\","
                            "virtual_node=\"app\",port=\"",
                            port_, "\",health=\"ejected\"} 1")));
  // Ejected: no request reaches it.
  ResetStats("127.0.0.2");
  EXPECT_EQ(Send(20), 20);
  EXPECT_EQ(Requests("127.0.0.2"), 0);
  // Back after the ejection time (2 s; the proxy looks every 100 ms).
  ASSERT_TRUE(
      WaitFor([&] { return HealthOf("127.0.0.2") == "healthy"; }, 4000));
  EXPECT_EQ(Send(20), 20);
  EXPECT_GT(Requests("127.0.0.2"), 0);
}

TEST_F(ProxyOutlierTest, HealthChecksTakeADeadEndpointOutAndBackIn) {
  node_.AddUpstreams({{"one", port_, "127.0.0.1"}});
  Upstreams* two = node_.AddUpstreams({{"two", port_, "127.0.0.2"}});
  // App Mesh's minimums: a 5 s interval, 2 s timeout, thresholds of 2.
  StartWith({{"healthCheck",
              {{"protocol", "http"},
               {"path", "/health"},
               {"intervalMillis", 5000},
               {"timeoutMillis", 2000},
               {"healthyThreshold", 2},
               {"unhealthyThreshold", 2}}}});
  EXPECT_EQ(HealthOf("127.0.0.2"), "healthy");  // healthy until shown not
  two->Kill();
  // Two failed checks: within 2 intervals (plus a check in flight).
  ASSERT_TRUE(
      WaitFor([&] { return HealthOf("127.0.0.2") == "unhealthy"; }, 16000));
  EXPECT_EQ(HealthOf("127.0.0.1"), "healthy");
  EXPECT_EQ(Send(20), 20);  // none to the dead one
  std::string metrics = node_.Metrics();
  EXPECT_TRUE(absl::StrContains(
      metrics, absl::StrCat("nodemesh_upstream_endpoints{mesh=\"m\","
                            "virtual_node=\"app\",port=\"",
                            port_, "\",health=\"unhealthy\"} 1")))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics, absl::StrCat("nodemesh_health_checks_total{mesh=\"m\","
                            "virtual_node=\"app\",port=\"",
                            port_, "\",result=\"failure\"}")));
  // Serving again: two passed checks bring it back.
  node_.AddUpstreams({{"two", port_, "127.0.0.2"}});
  ASSERT_TRUE(
      WaitFor([&] { return HealthOf("127.0.0.2") == "healthy"; }, 16000));
  EXPECT_EQ(Send(20), 20);
  EXPECT_GT(Requests("127.0.0.2"), 0);
}

// gRPC health checks (grpc.health.v1.Health/Check over HTTP/2): an endpoint
// whose server says NOT_SERVING leaves rotation and comes back when it
// serves again; the calls meanwhile all reach the other one.
TEST_F(ProxyOutlierTest, GrpcHealthChecksFollowTheServingStatus) {
  node_.AddGrpcUpstreams({{"one", port_, "127.0.0.1"}});
  node_.AddGrpcUpstreams({{"two", port_, "127.0.0.2"}});
  node_.SetHosts("127.0.0.1 app.test\n127.0.0.2 app.test");
  json check = {{"healthCheck",
                 {{"protocol", "grpc"},
                  {"intervalMillis", 5000},
                  {"timeoutMillis", 2000},
                  {"healthyThreshold", 2},
                  {"unhealthyThreshold", 2}}}};
  json model = {appmesh::Mesh(),
                Node("app", port_, "app.test", "grpc", check, "ENDPOINTS"),
                appmesh::ServiceByNode("app.m.local", "app")};
  ASSERT_TRUE(node_.Start(model));
  ASSERT_TRUE(WaitFor([&] { return Health().size() == 2; }, 5000));
  auto direct = [&](const std::string& host, const std::string& args) {
    return node_.GrpcCall(
        absl::StrCat("--target ", host, ":", port_, " ", args));
  };
  EXPECT_EQ(direct("127.0.0.2", "--method SetHealth --data 0"),
            "msg ok\nstatus OK\n");
  ASSERT_TRUE(
      WaitFor([&] { return HealthOf("127.0.0.2") == "unhealthy"; }, 16000));
  EXPECT_EQ(HealthOf("127.0.0.1"), "healthy");
  std::string calls = node_.GrpcCall(
      absl::StrCat("--target 127.0.0.1:", node_.outbound_port(),
                   " --authority app.m.local:", port_, " --repeat 10"));
  std::string want;
  for (int i = 0; i < 10; ++i) want += "msg one:hello\nstatus OK\n";
  EXPECT_EQ(calls, want);
  EXPECT_EQ(direct("127.0.0.2", "--method SetHealth --data 1"),
            "msg ok\nstatus OK\n");
  ASSERT_TRUE(
      WaitFor([&] { return HealthOf("127.0.0.2") == "healthy"; }, 16000));
  std::string metrics = node_.Metrics();
  EXPECT_TRUE(absl::StrContains(
      metrics, absl::StrCat("nodemesh_health_checks_total{mesh=\"m\","
                            "virtual_node=\"app\",port=\"",
                            port_, "\",result=\"failure\"}")))
      << metrics;
}

}  // namespace
}  // namespace nodemesh::testing
