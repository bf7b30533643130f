// Connection pools (a listener's connectionPool): an http pool's
// maxConnections and maxPendingRequests with real slow requests, and a tcp
// pool's maxConnections refusing a tcpRoute connection.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/datapath/datapath_maps.h"
#include "gtest/gtest.h"
#include "tests/integration/proxy_fixture.h"

namespace nodemesh::testing {
namespace {

using nlohmann::json;

TEST(ProxyPoolTest, HttpRequestsWaitForTheOneConnectionThenOverflow) {
  ProxyNode node;
  Upstreams* up = node.AddUpstreams({{"app"}});
  const uint16_t gw = PickPort();
  json pool = {
      {"connectionPool",
       {{"http", {{"maxConnections", 1}, {"maxPendingRequests", 1}}}}}};
  json model = {
      appmesh::Mesh(),
      appmesh::Node("app", up->port("app"), "127.0.0.1", "http", pool),
      appmesh::ServiceByNode("svc.m.local", "app"), appmesh::Gateway("gw", gw),
      appmesh::GatewayRoute("gw", "all", "/", "svc.m.local")};
  // One worker: the node-wide limits are that worker's own.
  ASSERT_TRUE(node.Start(model, {"--workers=1"}));
  // Three slow requests at once: one is served, one waits for its
  // connection, one finds the queue full.
  std::string out = node.Run(absl::StrCat(
      "sh -c 'for i in 1 2 3; do curl -s -o /dev/null --max-time 20 "
      "-H \"x-delay-ms: 1000\" -w \"%{http_code} "
      "%header{x-nodemesh-reason}\\n\" "
      "http://127.0.0.1:",
      gw, "/slow & done; wait'"));
  std::vector<std::string> lines =
      absl::StrSplit(out, '\n', absl::SkipWhitespace());
  int ok = 0, overflow = 0;
  for (const std::string& l : lines) {
    if (l == "200 ") ++ok;
    if (l == "503 overflow") ++overflow;
  }
  EXPECT_EQ(ok, 2) << out;
  EXPECT_EQ(overflow, 1) << out;
  json stats = node.UpstreamStats(up->port("app"));
  EXPECT_EQ(stats["requests"], 2) << stats.dump();
  EXPECT_EQ(stats["max_in_flight"], 1) << stats.dump();
  // The proxy's one connection, and the one asking for these stats.
  EXPECT_EQ(stats["connections"], 2) << stats.dump();

  std::string metrics = node.Metrics();
  const std::string labels = absl::StrCat(
      "mesh=\"m\",virtual_node=\"app\",port=\"", up->port("app"), "\"");
  EXPECT_TRUE(absl::StrContains(
      metrics, absl::StrCat("nodemesh_upstream_overflow_total{", labels,
                            ",kind=\"pending\"} 1")))
      << metrics;
  // Both requests that found the connection busy.
  EXPECT_TRUE(absl::StrContains(
      metrics, absl::StrCat("nodemesh_upstream_overflow_total{", labels,
                            ",kind=\"connections\"} 2")))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics,
      absl::StrCat("nodemesh_upstream_pending_requests{", labels, "} 0")))
      << metrics;
  json proxy = node.AdminJson("/stats")["proxy"];
  EXPECT_EQ(proxy["local_replies"]["overflow"], 1) << proxy.dump();
}

// Curl lines "CODE REASON" of `n` concurrent slow requests to `url`.
std::string ConcurrentSlow(const ProxyNode& node, int n, int delay_ms,
                           const std::string& url) {
  return node.Run(absl::StrCat(
      "sh -c 'for i in $(seq ", n,
      "); do curl -s -o /dev/null --max-time 20 -H \"x-delay-ms: ", delay_ms,
      "\" -w \"%{http_code} %header{x-nodemesh-reason}\\n\" ", url,
      " & done; wait'"));
}

int CountLines(const std::string& out, const std::string& line) {
  int n = 0;
  for (absl::string_view l : absl::StrSplit(out, '\n')) n += l == line ? 1 : 0;
  return n;
}

TEST(ProxyPoolTest, WaitingRequestsKeepTheirTimeout) {
  ProxyNode node;
  Upstreams* up = node.AddUpstreams({{"app"}});
  const uint16_t gw = PickPort();
  json listener = {
      {"connectionPool",
       {{"http", {{"maxConnections", 1}, {"maxPendingRequests", 5}}}}},
      {"timeout",
       {{"http", {{"perRequest", {{"unit", "ms"}, {"value", 600}}}}}}}};
  json model = {
      appmesh::Mesh(),
      appmesh::Node("app", up->port("app"), "127.0.0.1", "http", listener),
      appmesh::ServiceByNode("svc.m.local", "app"), appmesh::Gateway("gw", gw),
      appmesh::GatewayRoute("gw", "all", "/", "svc.m.local")};
  ASSERT_TRUE(node.Start(model, {"--workers=1"}));
  // One request holds the connection past the timeout; the other waits
  // and times out in the queue, never reaching the upstream.
  std::string out =
      ConcurrentSlow(node, 2, 3000, absl::StrCat("http://127.0.0.1:", gw, "/"));
  EXPECT_EQ(CountLines(out, "504 request_timeout"), 2) << out;
  EXPECT_EQ(node.UpstreamStats(up->port("app"))["requests"], 1);
  json pools = node.AdminJson("/stats")["proxy"]["pools"];
  ASSERT_EQ(pools.size(), 1u) << pools.dump();
  EXPECT_EQ(pools[0]["pending_requests"], 0) << pools.dump();
  EXPECT_EQ(pools[0]["overflow_connections"], 1) << pools.dump();
  EXPECT_EQ(pools[0]["overflow_pending"], 0) << pools.dump();
}

// grpc (and http2) maxRequests caps the streams in flight: of two
// concurrent slow calls one is served, the other refused at once as gRPC
// RESOURCE_EXHAUSTED (the overflow's gRPC form).
TEST(ProxyPoolTest, GrpcListenerMaxRequestsCapsConcurrentCalls) {
  ProxyNode node;
  Upstreams* up = node.AddGrpcUpstreams({{"app"}});
  json pool = {{"connectionPool", {{"grpc", {{"maxRequests", 1}}}}}};
  json model = {
      appmesh::Mesh(),
      appmesh::Node("app", up->port("app"), "127.0.0.1", "grpc", pool),
      appmesh::ServiceByNode("svc.m.local", "app")};
  ASSERT_TRUE(node.Start(model, {"--workers=1"}));
  std::string call =
      absl::StrCat("--target 127.0.0.1:", node.outbound_port(),
                   " --authority svc.m.local:", up->port("app"), " ");
  EXPECT_EQ(node.GrpcCall(call + "--parallel 2 --metadata x-delay-ms=1000"),
            "status OK\nstatus RESOURCE_EXHAUSTED the proxy is over a limit\n");
  std::string metrics = node.Metrics();
  EXPECT_TRUE(absl::StrContains(
      metrics, absl::StrCat("nodemesh_upstream_overflow_total{mesh=\"m\","
                            "virtual_node=\"app\",port=\"",
                            up->port("app"), "\",kind=\"requests\"} 1")))
      << metrics;
  // The slot is free again.
  EXPECT_EQ(node.GrpcCall(call + "--data x"), "msg app:x\nstatus OK\n");
}

TEST(ProxyPoolTest, TcpConnectionBeyondMaxConnectionsIsRefused) {
  ProxyNode node;
  Upstreams* up = node.AddUpstreams({{"db"}});
  json pool = {{"connectionPool", {{"tcp", {{"maxConnections", 1}}}}}};
  json model = {appmesh::Mesh(),
                appmesh::Node("db", up->port("db"), "127.0.0.1", "tcp", pool),
                appmesh::Router("tr", 7010, "tcp"),
                appmesh::Route("tr", "bytes",
                               {{"tcpRoute",
                                 {{"action", appmesh::Targets({{"db", 1}})}}}}),
                appmesh::ServiceByRouter("db.m.local", "tr")};
  ASSERT_TRUE(node.Start(model, {"--workers=1"}));
  auto maps = datapath::DatapathMaps::Open(node.pin_dir());
  ASSERT_TRUE(maps.ok()) << maps.status();
  auto vip = datapath::ServiceAddress::Parse("127.10.0.10:7010");
  ASSERT_TRUE(vip.ok());
  nm_service svc{};
  svc.service_id = 9;
  svc.action = NM_ACTION_PROXY;
  ASSERT_TRUE(maps->UpsertService(*vip, svc).ok());
  CgroupScope workload(node.workloads_cgroup() + "/wl");

  ChildProcess client(workload.path(), node.netns_fd(), [] {
    constexpr std::string_view kRequest = "GET / HTTP/1.1\r\nHost: db\r\n\r\n";
    // One HTTP exchange over the tcpRoute; 0 bytes when it was refused.
    auto exchange = [&](int fd) -> std::string {
      if (!WriteAll(fd, kRequest.data(), kRequest.size())) return "";
      std::string got;
      char buf[4096];
      while (got.find("\r\n\r\n") == std::string::npos) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 3000) != 1) return got;
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) return got;
        got.append(buf, static_cast<size_t>(n));
      }
      return got;
    };
    auto first = Connect("127.10.0.10:7010");
    if (!first.valid()) return 10;
    if (exchange(first.get()).rfind("HTTP/1.1 200", 0) != 0) return 11;
    // The first is still open: the second is closed without a byte.
    auto second = Connect("127.10.0.10:7010");
    if (!second.valid()) return 12;
    if (!exchange(second.get()).empty()) return 13;
    // Once the first closes, a connection gets through again.
    first.Reset();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto third = Connect("127.10.0.10:7010");
    if (!third.valid()) return 14;
    if (exchange(third.get()).rfind("HTTP/1.1 200", 0) != 0) return 15;
    return 0;
  });
  EXPECT_EQ(client.Wait(30000), 0);
  std::string metrics = node.Metrics();
  EXPECT_TRUE(absl::StrContains(
      metrics,
      absl::StrCat("nodemesh_upstream_overflow_total{mesh=\"m\",virtual_node="
                   "\"db\",port=\"",
                   up->port("db"), "\",kind=\"connections\"} 1")))
      << metrics;
  json stats = node.UpstreamStats(up->port("db"));
  EXPECT_EQ(stats["requests"], 2) << stats.dump();
}

}  // namespace
}  // namespace nodemesh::testing
