// One node end to end, as a user runs it: workloads started with
// `nodemeshctl run` call virtual services by name; the mesh DNS answers with
// VIPs, connect4 steers to the proxy (or DIRECT to a local endpoint), the
// proxy routes by App Mesh rules to registered endpoints, and the counters
// in /metrics and the pinned maps say what happened. Real curl and wrk run
// inside workload cgroups.

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/datapath/datapath_maps.h"
#include "gtest/gtest.h"
#include "tests/integration/proxy_fixture.h"

namespace nodemesh::testing {
namespace {

using nlohmann::json;

json Mesh(const std::string& egress) {
  return {{"meshName", "m"}, {"spec", {{"egressFilter", {{"type", egress}}}}}};
}

// A virtual node whose endpoints come from the workload registry (no
// service discovery in its spec).
json RegistryNode(const std::string& name, uint16_t port,
                  const std::string& protocol = "http",
                  std::vector<std::string> backends = {}) {
  json spec = {{"listeners",
                {{{"portMapping", {{"port", port}, {"protocol", protocol}}}}}}};
  json b = json::array();
  for (const auto& s : backends)
    b.push_back({{"virtualService", {{"virtualServiceName", s}}}});
  if (!b.empty()) spec["backends"] = b;
  return {{"meshName", "m"}, {"virtualNodeName", name}, {"spec", spec}};
}

// The shop of the demo, in miniature: product v1/v2 weighted 90/10 behind
// a router, a TCP inventory service (DIRECT), and a service the client has
// no backend for.
json ShopModel(const std::string& egress) {
  return json::array(
      {Mesh(egress),
       RegistryNode("client", 9000, "http",
                    {"product.m.local", "inventory.m.local"}),
       RegistryNode("product-v1", 8080), RegistryNode("product-v2", 8080),
       appmesh::Router("product-router", 8080),
       appmesh::Route("product-router", "split",
                      {{"httpRoute",
                        {{"match", {{"prefix", "/"}}},
                         {"action", appmesh::Targets({{"product-v1", 90},
                                                      {"product-v2", 10}})}}}}),
       appmesh::ServiceByRouter("product.m.local", "product-router"),
       RegistryNode("inventory", 7000, "tcp"),
       appmesh::ServiceByNode("inventory.m.local", "inventory"),
       RegistryNode("other", 8090),
       appmesh::ServiceByNode("other.m.local", "other")});
}

int Count(const std::string& text, const std::string& line) {
  int n = 0;
  for (absl::string_view l : absl::StrSplit(text, '\n'))
    if (l == line) ++n;
  return n;
}

class NodeE2eTest : public ::testing::Test {
 protected:
  void StartShop(const std::string& egress = "DROP_ALL") {
    ASSERT_TRUE(node_.Start(ShopModel(egress)));
    v1_ = node_.AddWorkloadUpstreams("m", "product-v1",
                                     {{"product-v1", 8080, "127.0.0.11"}});
    v2_ = node_.AddWorkloadUpstreams("m", "product-v2",
                                     {{"product-v2", 8080, "127.0.0.12"}});
    node_.AddWorkloadUpstreams("m", "inventory",
                               {{"inventory", 7000, "127.0.0.21"}});
    node_.AddWorkloadUpstreams("m", "other", {{"other", 8090, "127.0.0.31"}});
    ASSERT_EQ(v1_->port("product-v1"), 8080);
  }

  std::vector<uint64_t> BpfStats() {
    auto maps = datapath::DatapathMaps::Open(node_.pin_dir());
    EXPECT_TRUE(maps.ok()) << maps.status();
    if (!maps.ok()) return std::vector<uint64_t>(NM_STAT_MAX, 0);
    auto s = maps->ReadStats();
    return s.ok() ? *s : std::vector<uint64_t>(NM_STAT_MAX, 0);
  }

  ProxyNode node_;
  Upstreams* v1_ = nullptr;
  Upstreams* v2_ = nullptr;
};

TEST_F(NodeE2eTest, NamesResolveWeightsHoldAndMetricsCountEveryRequest) {
  StartShop();
  std::string hosts =
      node_.RunAsWorkload("m", "client", "getent hosts product.m.local");
  EXPECT_TRUE(absl::StartsWith(hosts, "127.128.")) << hosts;
  // 200 requests on one keep-alive connection: one worker, whose smooth
  // weighted round robin is exact over every 10 requests.
  std::string out = node_.RunAsWorkload(
      "m", "client", "curl -s 'http://product.m.local:8080/[1-200]'");
  int v1 = Count(out, "product-v1"), v2 = Count(out, "product-v2");
  EXPECT_EQ(v1 + v2, 200) << out;
  EXPECT_NEAR(v1, 180, 10);  // tolerance: 5% of the requests
  std::string metrics = node_.Metrics();
  const std::vector<std::string> base = {"source_virtual_node=\"client\"",
                                         "virtual_service=\"product.m.local\"",
                                         "code=\"200\""};
  auto with = [&](const std::string& target) {
    auto l = base;
    l.push_back("target_virtual_node=\"" + target + "\"");
    return l;
  };
  EXPECT_EQ(MetricSum(metrics, "nodemesh_requests_total", with("product-v1")),
            static_cast<uint64_t>(v1))
      << metrics;
  EXPECT_EQ(MetricSum(metrics, "nodemesh_requests_total", with("product-v2")),
            static_cast<uint64_t>(v2));
  EXPECT_EQ(MetricSum(metrics, "nodemesh_request_duration_seconds_count",
                      {"source_virtual_node=\"client\""}),
            200u);
  // Each reply body is "product-vN\n": 11 bytes.
  EXPECT_EQ(MetricSum(metrics, "nodemesh_response_bytes_total",
                      {"source_virtual_node=\"client\""}),
            200u * 11);
  EXPECT_EQ(MetricSum(metrics, "nodemesh_upstream_endpoints",
                      {"virtual_node=\"product-v1\"", "health=\"healthy\""}),
            1u);
  // The kernel's counters carry the same names: one connection, rewritten.
  EXPECT_EQ(MetricSum(metrics, "nodemesh_bpf_service_rewrites_total",
                      {"source_virtual_node=\"client\"",
                       "virtual_service=\"product.m.local\""}),
            1u)
      << metrics;
  EXPECT_GT(MetricSum(metrics, "process_resident_memory_bytes", {}), 0u);
  // The kernel saw the caller as workload "client" calling the service.
  std::string maps = node_.Run(
      absl::StrCat(NODEMESH_CTL_BIN, " --agent=http://", node_.admin(),
                   " --bpf_pin_dir=", node_.pin_dir(), " maps"));
  EXPECT_TRUE(absl::StrContains(maps, "(m/client) -> service")) << maps;
  EXPECT_TRUE(absl::StrContains(maps, "(m/product.m.local)  PROXY")) << maps;
}

TEST_F(NodeE2eTest, DirectPathBypassesTheProxy) {
  StartShop();
  std::string before = node_.Metrics();
  uint64_t proxied_before =
      MetricSum(before, "nodemesh_downstream_connections_total", {});
  uint64_t direct_before = BpfStats()[NM_STAT_DIRECT_REWRITES];
  std::string out = node_.RunAsWorkload(
      "m", "client",
      "for i in $(seq 20); do curl -s http://inventory.m.local:7000/; done");
  EXPECT_EQ(Count(out, "inventory"), 20) << out;
  EXPECT_EQ(BpfStats()[NM_STAT_DIRECT_REWRITES] - direct_before, 20u);
  EXPECT_EQ(
      MetricSum(node_.Metrics(), "nodemesh_downstream_connections_total", {}),
      proxied_before);
  std::string maps = node_.Run(
      absl::StrCat(NODEMESH_CTL_BIN, " --agent=http://", node_.admin(),
                   " --bpf_pin_dir=", node_.pin_dir(), " maps"));
  EXPECT_TRUE(absl::StrContains(
      maps, "(m/inventory.m.local)  DIRECT -> [\"127.0.0.21:7000\"]"))
      << maps;
}

TEST_F(NodeE2eTest, KilledEndpointsRequestsAreRetriedElsewhere) {
  StartShop();
  // A second endpoint of product-v1, declared in cluster/workloads.json
  // (an endpoint some other launcher runs), then killed.
  auto extra = std::make_unique<Upstreams>(
      node_.netns_fd(),
      std::vector<Upstreams::Spec>{{"product-v1b", 8080, "127.0.0.13"}});
  std::filesystem::create_directories(node_.config_dir() + "/cluster");
  std::ofstream(node_.config_dir() + "/cluster/workloads.json")
      << json::array({{{"mesh", "m"},
                       {"virtualNode", "product-v1"},
                       {"address", "127.0.0.13"},
                       {"ports", {8080}}}})
             .dump();
  bool both = false;
  for (int i = 0; i < 100 && !both; ++i) {
    json clusters = node_.AdminJson("/clusters");
    for (const auto& c : clusters["clusters"])
      if (c.value("name", "") == "m/product-v1:8080" &&
          c["endpoints"].size() == 2)
        both = true;
    if (!both) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(both) << node_.AdminJson("/clusters").dump(2);
  extra->Kill();
  uint64_t retries_before =
      MetricSum(node_.Metrics(), "nodemesh_retries_total", {});
  std::string out =
      node_.RunAsWorkload("m", "client",
                          "curl -s -o /dev/null -w '%{http_code}\\n' "
                          "'http://product.m.local:8080/[1-100]'");
  EXPECT_EQ(Count(out, "200"), 100) << out;
  EXPECT_GT(MetricSum(node_.Metrics(), "nodemesh_retries_total", {}),
            retries_before);
}

// What connect() says, from a Python client in the workload: "ok", or the
// errno's name.
constexpr char kConnectProbe[] =
    "/usr/bin/python3 -c \"import socket,errno,sys\n"
    "s=socket.socket()\n"
    "s.settimeout(3)\n"
    "try:\n"
    "  s.connect((sys.argv[1], int(sys.argv[2]))); print('ok')\n"
    "except OSError as e:\n"
    "  print(errno.errorcode.get(e.errno, e))\" ";

TEST_F(NodeE2eTest, EgressFilterDropAllRefusesAndAllowAllLetsThrough) {
  StartShop("DROP_ALL");
  uint64_t refusals = BpfStats()[NM_STAT_POLICY_REFUSALS];
  // Not among the client's backends: refused in connect() itself.
  EXPECT_EQ(
      node_.RunAsWorkload("m", "client",
                          std::string(kConnectProbe) + "other.m.local 8090"),
      "EPERM\n");
  // Outside the mesh and off the host: refused too.
  EXPECT_EQ(node_.RunAsWorkload("m", "client",
                                std::string(kConnectProbe) + "198.18.0.9 80"),
            "EPERM\n");
  EXPECT_EQ(BpfStats()[NM_STAT_POLICY_REFUSALS] - refusals, 2u);
  // A backend still works.
  EXPECT_EQ(node_.RunAsWorkload("m", "client",
                                "curl -s http://product.m.local:8080/x -H "
                                "'x-status: 200' -o /dev/null -w "
                                "'%{http_code}'"),
            "200");

  // ALLOW_ALL (hot reload): other services go through the proxy, and other
  // destinations are left alone (here: no route in this namespace).
  std::ofstream(node_.config_dir() + "/model.json")
      << ShopModel("ALLOW_ALL").dump(2);
  std::string probe;
  for (int i = 0; i < 100; ++i) {
    probe = node_.RunAsWorkload(
        "m", "client", std::string(kConnectProbe) + "other.m.local 8090");
    if (probe == "ok\n") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(probe, "ok\n");
  EXPECT_EQ(
      node_.RunAsWorkload("m", "client", "curl -s http://other.m.local:8090/"),
      "other\n");
  EXPECT_EQ(node_.RunAsWorkload("m", "client",
                                std::string(kConnectProbe) + "198.18.0.9 80"),
            "ENETUNREACH\n");
}

TEST_F(NodeE2eTest, RegistrationsAndVipsSurviveARestart) {
  StartShop();
  std::string vip_before =
      node_.RunAsWorkload("m", "client", "getent hosts product.m.local");
  ASSERT_EQ(node_.agent().Terminate(), 0);
  AgentProcess second(node_.netns_fd(), node_.Flags());
  ASSERT_TRUE(second.WaitReadyLine());
  ASSERT_TRUE(second.WaitHealthy(node_.admin()));
  EXPECT_EQ(node_.RunAsWorkload("m", "client", "getent hosts product.m.local"),
            vip_before);
  // The four servers (short-lived clients may still be listed until their
  // cgroup is swept).
  json workloads = node_.AdminJson("/workloads");
  int servers = 0;
  for (const auto& w : workloads["workloads"])
    if (w.value("virtualNode", "") != "client") ++servers;
  EXPECT_EQ(servers, 4) << workloads.dump(2);
  std::string out = node_.RunAsWorkload(
      "m", "client", "curl -s 'http://product.m.local:8080/[1-10]'");
  EXPECT_EQ(Count(out, "product-v1") + Count(out, "product-v2"), 10) << out;
}

// Names outside the mesh go to the host's resolver (here one the test runs,
// named with --dns_upstreams); mesh names never leave the agent.
TEST_F(NodeE2eTest, OtherNamesAreForwardedToTheHostsResolver) {
  ASSERT_TRUE(
      node_.Start(ShopModel("DROP_ALL"), {"--dns_upstreams=127.0.0.53:53"}));
  std::string pid = node_.Run(absl::StrCat(
      "sh -c '/usr/bin/python3 ", NODEMESH_DNS_UPSTREAM,
      " 127.0.0.53 53 outside.example 198.18.9.9 >/dev/null 2>&1 & echo $!'"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::string out = node_.RunAsWorkload(
      "m", "client",
      "getent hosts outside.example; getent hosts product.m.local; "
      "getent hosts missing.example || echo missing");
  node_.Run("kill " + pid);
  EXPECT_TRUE(absl::StrContains(out, "198.18.9.9      outside.example")) << out;
  EXPECT_TRUE(absl::StrContains(out, "127.128.")) << out;
  EXPECT_TRUE(absl::StrContains(out, "missing")) << out;
  std::string metrics = node_.Metrics();
  EXPECT_GE(MetricSum(metrics, "nodemesh_dns_queries_total",
                      {"outcome=\"forwarded\""}),
            2u);
  EXPECT_GE(
      MetricSum(metrics, "nodemesh_dns_queries_total", {"outcome=\"mesh\""}),
      1u);
}

// The mutating endpoints are on a Unix socket only root can open; bad
// registrations get a 400 naming the field, and are counted.
TEST_F(NodeE2eTest, AdminSocketIsRootOnlyAndRefusesBadRegistrations) {
  ASSERT_TRUE(node_.Start(ShopModel("DROP_ALL")));
  struct stat st {};
  ASSERT_EQ(::stat(node_.admin_socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600);
  std::string curl = "curl -s --unix-socket " + node_.admin_socket() + " ";
  int rc = 0;
  node_.Run("setpriv --reuid=65534 --regid=65534 --clear-groups " + curl +
                "-X POST localhost/workloads -d '{}'",
            &rc);
  EXPECT_NE(rc, 0);  // permission denied on connect
  std::string bad =
      node_.Run(curl +
                "-w ' %{http_code}' -X POST localhost/workloads -d "
                "'{\"mesh\":\"m\",\"virtualNode\":\"client\",\"ports\":[0]}'");
  EXPECT_TRUE(absl::StrContains(bad, "ports")) << bad;
  EXPECT_TRUE(absl::EndsWith(bad, " 400")) << bad;
  EXPECT_EQ(MetricSum(node_.Metrics(),
                      "nodemesh_workload_registrations_refused_total", {}),
            1u);
  json made = json::parse(
      node_.Run(curl + "-X POST localhost/workloads -d "
                       "'{\"mesh\":\"m\",\"virtualNode\":\"client\"}'"),
      nullptr, false);
  ASSERT_TRUE(made.is_object());
  std::string id = made.value("id", "");
  ASSERT_FALSE(id.empty()) << made.dump();
  EXPECT_TRUE(std::filesystem::is_directory(made.value("cgroup", "")));
  EXPECT_EQ(made["ports"], json::array({9000}));  // the node's listener port
  EXPECT_EQ(node_.Run(curl +
                      "-o /dev/null -w '%{http_code}' -X DELETE "
                      "localhost/workloads/" +
                      id),
            "200");
  EXPECT_FALSE(std::filesystem::exists(made.value("cgroup", "")));
  EXPECT_FALSE(absl::StrContains(node_.AdminJson("/workloads").dump(), id));
}

// A pod-style workload lives in its own network namespace (a veth to the
// node): the agent opens an outbound listener and a DNS socket inside it,
// so names resolve and connects are steered there as on the node.
TEST_F(NodeE2eTest, PodWorkloadsAreServedInsideTheirNamespace) {
  StartShop();
  NetnsScope pod;
  std::string pod_path = pod.path();
  std::string tag = std::to_string(::getpid() % 100000);
  int rc = -1;
  node_.Run(
      absl::StrCat("sh -c 'ip link add nmv", tag, " type veth peer name nmp",
                   tag, " && ip link set nmp", tag, " netns ", pod_path,
                   " && ip addr add "
                   "198.18.7.1/30 dev nmv",
                   tag, " && ip link set nmv", tag, " up'"),
      &rc);
  ASSERT_EQ(rc, 0);
  RunCommand(absl::StrCat("nsenter --net=", pod_path,
                          " sh -c 'ip addr add 198.18.7.2/30 dev nmp", tag,
                          " && ip link set nmp", tag, " up'"),
             &rc);
  ASSERT_EQ(rc, 0);
  std::vector<std::string> wrapper = {NODEMESH_CTL_BIN,
                                      "run",
                                      "--admin_socket=" + node_.admin_socket(),
                                      "--mesh=m",
                                      "--virtual-node=product-v1",
                                      "--address=198.18.7.2",
                                      "--netns=" + pod_path,
                                      "--"};
  Upstreams in_pod(node_.netns_fd(), {{"product-v1-pod", 8080, "198.18.7.2"}},
                   wrapper);
  ASSERT_EQ(in_pod.port("product-v1-pod"), 8080);
  std::string out = node_.Run(absl::StrCat(
      NODEMESH_CTL_BIN, " run --admin_socket=", node_.admin_socket(),
      " --mesh=m --virtual-node=client --netns=", pod_path,
      " -- sh -c \"getent hosts product.m.local; curl -s "
      "'http://product.m.local:8080/[1-40]'\""));
  EXPECT_TRUE(absl::StrContains(out, "127.128.")) << out;
  int v1 = Count(out, "product-v1"), v1_pod = Count(out, "product-v1-pod"),
      v2 = Count(out, "product-v2");
  EXPECT_EQ(v1 + v1_pod + v2, 40) << out;
  EXPECT_GT(v1_pod, 0) << out;  // the endpoint inside the pod serves too
  EXPECT_EQ(v2, 4);
  EXPECT_TRUE(
      absl::StrContains(node_.AdminJson("/workloads").dump(), pod_path));
}

// DESIGN's lifecycle: a new agent takes the listeners over while the old
// one drains, and wrk, running all along, sees no failed request.
TEST_F(NodeE2eTest, RestartUnderWrkFailsNoRequest) {
  StartShop();
  std::string wrk_out;
  std::thread wrk([&] {
    wrk_out = node_.RunAsWorkload(
        "m", "client", "wrk -t1 -c4 -d6s http://product.m.local:8080/ 2>&1");
  });
  std::this_thread::sleep_for(std::chrono::seconds(2));
  AgentProcess second(node_.netns_fd(), node_.Flags());
  bool up = second.WaitReadyLine() && second.WaitHealthy(node_.admin());
  int old_exit = node_.agent().Terminate();
  wrk.join();
  ASSERT_TRUE(up);
  EXPECT_EQ(old_exit, 0);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(wrk_out, m, std::regex(R"((\d+) requests in)")))
      << wrk_out;
  EXPECT_GT(std::stoul(m[1]), 100u) << wrk_out;
  EXPECT_FALSE(absl::StrContains(wrk_out, "Socket errors")) << wrk_out;
  EXPECT_FALSE(absl::StrContains(wrk_out, "Non-2xx")) << wrk_out;
  // The new agent serves.
  EXPECT_EQ(node_.RunAsWorkload("m", "client",
                                "curl -s -o /dev/null -w '%{http_code}' "
                                "http://product.m.local:8080/"),
            "200");
}

}  // namespace
}  // namespace nodemesh::testing
