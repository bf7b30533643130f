// A real etcd for multi-node tests (etcd_fixture.h): in a private network
// namespace it keeps what was put across a restart and a kill, answers
// etcdctl and the HTTP/JSON gateway from inside that namespace only, says
// why when it cannot start, and leaves no process or file behind. As a
// cluster's store (ClusterScope::Options::etcd) it runs on the fabric's
// bridge, every node reaches it, and the model lands under the agreed keys.

#include "tests/integration/etcd_fixture.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/agent_process.h"
#include "tests/integration/cluster_fixture.h"
#include "tests/integration/fixtures.h"

namespace nodemesh::testing {
namespace {

using nlohmann::json;

// The etcd's address in its private namespace (on lo: no link, no route
// beyond the namespace).
constexpr char kIp[] = "198.18.200.1";

// The test failures `fn` reports, intercepted (the test itself does not
// fail from them).
std::vector<std::string> FailuresOf(const std::function<void()>& fn) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::
            INTERCEPT_ONLY_CURRENT_THREAD,
        &results);
    fn();
  }
  std::vector<std::string> messages;
  messages.reserve(results.size());
  for (int i = 0; i < results.size(); ++i)
    messages.push_back(results.GetTestPartResult(i).message());
  return messages;
}

// True once `fn` is, polling for up to `seconds`.
bool Eventually(const std::function<bool()>& fn, int seconds = 20) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fn()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return fn();
}

bool ProcessGone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

class EtcdServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int code = -1;
    std::string out =
        Run(absl::StrCat("ip addr add ", kIp, "/32 dev lo 2>&1"), &code);
    ASSERT_EQ(code, 0) << out;
    // Nothing routed out of the namespace.
    ASSERT_EQ(Run("ip -4 route show"), "");
  }

  EtcdServer::Options InNamespace() const {
    EtcdServer::Options options;
    options.netns_fd = ns_.fd();
    options.ip = kIp;
    return options;
  }
  std::string Run(const std::string& command, int* exit_code = nullptr) const {
    return RunCommand(absl::StrCat("nsenter --net=", ns_.path(), " sh -c ",
                                   ShellQuote(command)),
                      exit_code);
  }
  // curl inside the namespace.
  std::string Curl(const std::string& args, int* exit_code = nullptr) const {
    return Run("curl -s --max-time 5 " + args, exit_code);
  }

  NetnsScope ns_;
};

TEST_F(EtcdServerTest, KeepsWhatWasPutAcrossARestart) {
  EtcdServer etcd(InNamespace());
  EXPECT_FALSE(etcd.running());
  ASSERT_TRUE(etcd.Start());
  EXPECT_TRUE(etcd.running());
  EXPECT_EQ(etcd.endpoint(),
            absl::StrCat("http://", kIp, ":", etcd.client_port()));
  EXPECT_NE(etcd.client_port(), 2379);
  EXPECT_NE(etcd.peer_port(), 2380);
  EXPECT_TRUE(absl::StartsWith(etcd.data_dir(), "/tmp/nmtest-"))
      << etcd.data_dir();
  EXPECT_TRUE(std::filesystem::is_directory(etcd.data_dir() + "/member/wal"))
      << etcd.data_dir();
  EXPECT_TRUE(absl::StrContains(Curl(etcd.endpoint() + "/health"),
                                "\"health\":\"true\""));

  // Values with quotes and spaces, and one that looks like a flag.
  const std::string a =
      R"({"meshName":"m","spec":{"note":"it's \"quoted\", and spaced"}})";
  const std::string b = "--looks-like-a-flag";
  ASSERT_TRUE(etcd.Put("/nodemesh/test/a", a));
  ASSERT_TRUE(etcd.Put("/nodemesh/test/b", b));
  EXPECT_EQ(etcd.Get("/nodemesh/test/a"), a);
  EXPECT_EQ(etcd.Get("/nodemesh/test/b"), b);
  EXPECT_EQ(etcd.Get("/nodemesh/test/none"), std::nullopt);
  int code = -1;
  EXPECT_EQ(etcd.Etcdctl("get --print-value-only /nodemesh/test/a", &code),
            a + "\n");
  EXPECT_EQ(code, 0);
  EXPECT_EQ(etcd.GetPrefix("/nodemesh/test/"),
            (std::map<std::string, std::string>{{"/nodemesh/test/a", a},
                                                {"/nodemesh/test/b", b}}));

  const pid_t first = etcd.pid();
  ASSERT_TRUE(etcd.Restart());
  EXPECT_NE(etcd.pid(), first);
  EXPECT_TRUE(ProcessGone(first));
  EXPECT_EQ(etcd.Get("/nodemesh/test/a"), a);
  EXPECT_EQ(etcd.Get("/nodemesh/test/b"), b);
  EXPECT_EQ(etcd.Delete("/nodemesh/test/b"), 1);
  EXPECT_EQ(etcd.Delete("/nodemesh/test/b"), 0);
  EXPECT_EQ(etcd.Get("/nodemesh/test/b"), std::nullopt);

  // Both starts are in the log, and nothing below warn (--log-level=warn).
  const std::string log = ReadFile(etcd.log_path());
  size_t starts = 0;
  for (size_t at = 0; (at = log.find("---- nmtest: ", at)) != log.npos; ++at)
    ++starts;
  EXPECT_EQ(starts, 2u) << log;
  EXPECT_FALSE(absl::StrContains(log, "\"level\":\"info\"")) << log;
}

TEST_F(EtcdServerTest, KilledItIsUnreachableAndStartedAgainItHasTheData) {
  EtcdServer etcd(InNamespace());
  ASSERT_TRUE(etcd.Start());
  ASSERT_TRUE(etcd.Put("/nodemesh/test/kept", "before the kill"));

  const pid_t pid = etcd.pid();
  etcd.Kill();
  EXPECT_FALSE(etcd.running());
  EXPECT_TRUE(ProcessGone(pid));
  EXPECT_FALSE(etcd.Healthy());
  int code = -1;
  Curl(etcd.endpoint() + "/health", &code);
  EXPECT_EQ(code, 7) << "curl: expected 'connection refused'";
  etcd.Etcdctl("get --command-timeout=1s /nodemesh/test/kept", &code);
  EXPECT_NE(code, 0);

  ASSERT_TRUE(etcd.Start());
  EXPECT_TRUE(etcd.running());
  EXPECT_EQ(etcd.Get("/nodemesh/test/kept"), "before the kill");
  EXPECT_TRUE(etcd.Put("/nodemesh/test/after", "after"));
  EXPECT_EQ(etcd.Get("/nodemesh/test/after"), "after");

  // Stop() is SIGTERM: etcd goes at once, and Stop() again has nothing to
  // do.
  EXPECT_TRUE(etcd.Stop());
  EXPECT_FALSE(etcd.running());
  EXPECT_TRUE(etcd.Stop());
}

// The HTTP/JSON gateway (etcd 3.4 serves it by default): keys and values
// base64, int64 fields as JSON strings.
TEST_F(EtcdServerTest, TheJsonGatewayAnswersRange) {
  EtcdServer etcd(InNamespace());
  ASSERT_TRUE(etcd.Start());
  ASSERT_TRUE(etcd.Put("/nodemesh/gw/x", R"({"x":1})"));
  ASSERT_TRUE(etcd.Put("/nodemesh/gw/y", R"({"y":2})"));
  ASSERT_TRUE(etcd.Put("/nodemesh/other", "no"));

  auto range = [&](const json& request) {
    int code = -1;
    std::string out =
        Curl(absl::StrCat("-X POST ", etcd.endpoint(), "/v3/kv/range -d ",
                          ShellQuote(request.dump())),
             &code);
    EXPECT_EQ(code, 0) << out;
    return json::parse(out, nullptr, false);
  };
  auto decode = [](const json& field) {
    std::string out;
    EXPECT_TRUE(absl::Base64Unescape(field.get<std::string>(), &out));
    return out;
  };

  json one = range({{"key", absl::Base64Escape("/nodemesh/gw/x")}});
  ASSERT_TRUE(one.is_object()) << one;
  EXPECT_EQ(one.value("count", ""), "1") << one.dump();
  ASSERT_EQ(one["kvs"].size(), 1u) << one.dump();
  EXPECT_EQ(decode(one["kvs"][0]["key"]), "/nodemesh/gw/x");
  EXPECT_EQ(decode(one["kvs"][0]["value"]), R"({"x":1})");

  // A prefix: range_end is the prefix with its last byte plus one.
  json prefix = range({{"key", absl::Base64Escape("/nodemesh/gw/")},
                       {"range_end", absl::Base64Escape("/nodemesh/gw0")}});
  EXPECT_EQ(prefix.value("count", ""), "2") << prefix.dump();
  std::set<std::string> keys;
  for (const json& kv : prefix["kvs"]) keys.insert(decode(kv["key"]));
  EXPECT_EQ(keys, (std::set<std::string>{"/nodemesh/gw/x", "/nodemesh/gw/y"}));
}

TEST_F(EtcdServerTest, GoneItLeavesNoProcessAndNoFiles) {
  pid_t pid = -1;
  std::string dir, endpoint;
  {
    EtcdServer etcd(InNamespace());
    ASSERT_TRUE(etcd.Start());
    ASSERT_TRUE(etcd.Put("/nodemesh/test/k", "v"));
    pid = etcd.pid();
    dir = etcd.dir();
    endpoint = etcd.endpoint();
    EXPECT_TRUE(std::filesystem::exists(dir));
  }  // destroyed while running, as when a test fails midway
  EXPECT_TRUE(ProcessGone(pid));
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
  int code = -1;
  Curl(endpoint + "/health", &code);
  EXPECT_NE(code, 0);
}

TEST_F(EtcdServerTest, AStartThatFailsSaysWhyFromTheLog) {
  // The client port is taken inside the namespace.
  net::UniqueFd taken;
  {
    NetnsScope::Enter in(ns_);
    taken = Listen(absl::StrCat(kIp, ":0"));
  }
  sockaddr_in bound{};
  socklen_t len = sizeof(bound);
  ASSERT_EQ(
      ::getsockname(taken.get(), reinterpret_cast<sockaddr*>(&bound), &len), 0);
  EtcdServer::Options options = InNamespace();
  options.client_port = ntohs(bound.sin_port);
  EtcdServer etcd(options);
  bool started = true;
  auto failures = FailuresOf([&] { started = etcd.Start(); });
  EXPECT_FALSE(started);
  EXPECT_FALSE(etcd.running());
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_TRUE(absl::StrContains(failures[0], "address already in use"))
      << failures[0];
  EXPECT_TRUE(absl::StrContains(failures[0], etcd.log_path())) << failures[0];
}

// Without a namespace etcd runs in the test's own, on loopback only.
TEST(EtcdServerOwnNamespaceTest, RunsOnLoopbackAndRefusesOtherAddresses) {
  EtcdServer::Options options;  // 127.0.0.1, random ports
  EtcdServer etcd(options);
  ASSERT_TRUE(etcd.Start());
  ASSERT_TRUE(etcd.Put("/nodemesh/test/own", "ns"));
  EXPECT_EQ(etcd.Get("/nodemesh/test/own"), "ns");

  EtcdServer::Options outside;
  outside.ip = "198.18.0.9";
  EtcdServer refused(outside);
  bool started = true;
  auto failures = FailuresOf([&] { started = refused.Start(); });
  EXPECT_FALSE(started);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_TRUE(absl::StrContains(failures[0], "127.0.0.0/8")) << failures[0];
}

// ---------------------------------------------------------------------------
// The cluster's etcd

// One resource of every kind (mesh "m").
json EveryKind() {
  return json::array(
      {appmesh::Mesh(), appmesh::Node("back", 9000),
       appmesh::Router("rt", 9000),
       appmesh::Route("rt", "r1",
                      {{"httpRoute",
                        {{"match", {{"prefix", "/"}}},
                         {"action", appmesh::Targets({{"back", 1}})}}}}),
       appmesh::ServiceByRouter("back.m.local", "rt"),
       appmesh::Gateway("gw", 8443),
       appmesh::GatewayRoute("gw", "g1", "/", "back.m.local")});
}

TEST(EtcdModelKeyTest, EveryKindHasItsKey) {
  const json model = EveryKind();
  std::vector<std::string> keys;
  for (const json& r : model) keys.push_back(ClusterScope::EtcdModelKey(r));
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "/nodemesh/model/m/Mesh/m",
                      "/nodemesh/model/m/VirtualNode/back",
                      "/nodemesh/model/m/VirtualRouter/rt",
                      "/nodemesh/model/m/Route/rt/r1",
                      "/nodemesh/model/m/VirtualService/back.m.local",
                      "/nodemesh/model/m/VirtualGateway/gw",
                      "/nodemesh/model/m/GatewayRoute/gw/g1",
                  }));
  EXPECT_EQ(ClusterScope::EtcdModelKey(
                appmesh::ServiceByNode("near.m.local", "near")),
            "/nodemesh/model/m/VirtualService/near.m.local");
  // Not resources.
  EXPECT_EQ(ClusterScope::EtcdModelKey(json::object()), "");
  EXPECT_EQ(ClusterScope::EtcdModelKey(model), "");
  EXPECT_EQ(ClusterScope::EtcdModelKey({{"virtualNodeName", "x"}}), "");
  EXPECT_EQ(ClusterScope::EtcdModelKey({{"meshName", "m"}, {"routeName", "r"}}),
            "");  // no router
  // What a key segment must not hold is percent-encoded.
  EXPECT_EQ(ClusterScope::EtcdModelKey(
                {{"meshName", "m"}, {"virtualNodeName", ".a/b c"}}),
            "/nodemesh/model/m/VirtualNode/%2Ea%2Fb%20c");
  EXPECT_EQ(
      ClusterScope::EtcdModelKey({{"meshName", "m"}, {"virtualNodeName", 7}}),
      "");
}

TEST(ClusterScopeEtcdTest, FilesModeHasNoEtcd) {
  ClusterScope cluster(1);
  for (const std::string& flag : cluster.AgentFlags(1)) {
    EXPECT_FALSE(absl::StrContains(flag, "etcd")) << flag;
    EXPECT_FALSE(absl::StartsWith(flag, "--node_address")) << flag;
    EXPECT_FALSE(absl::StartsWith(flag, "--lease_ttl")) << flag;
  }
  EXPECT_EQ(cluster.etcd(), nullptr);
}

// Needs no agent: the fabric's etcd comes up on the bridge, every node
// reaches it (curl and etcdctl from the node's namespace), the model lands
// under the agreed keys, and the agents would be told where to look.
TEST(ClusterScopeEtcdTest, TheFabricsEtcdIsReachableFromEveryNode) {
  pid_t pid = -1;
  std::string dir;
  {
    ClusterScope::Options options;
    options.etcd = true;
    options.tls = false;
    ClusterScope cluster(2, options);
    ASSERT_TRUE(cluster.StartFabric());
    EtcdServer* etcd = cluster.etcd();
    ASSERT_NE(etcd, nullptr);
    ASSERT_TRUE(etcd->running());
    pid = etcd->pid();
    dir = etcd->dir();
    const std::string endpoint = "http://198.18.0.100:23790";
    EXPECT_EQ(etcd->endpoint(), endpoint);

    for (int k = 1; k <= 2; ++k) {
      ProxyNode& node = cluster.Node(k);
      EXPECT_TRUE(absl::StrContains(
          node.Run("curl -s --max-time 5 " + endpoint + "/health"),
          "\"health\":\"true\""))
          << "from n" << k;
      // etcdctl from the node: what one node puts, the fabric holds.
      const std::string key = absl::StrCat("/nodemesh/test/from-n", k);
      int code = -1;
      std::string out = node.Run(
          absl::StrCat("env -i ETCDCTL_API=3 etcdctl --endpoints=", endpoint,
                       " --dial-timeout=2s put ", key, " n", k),
          &code);
      EXPECT_EQ(code, 0) << out;
      EXPECT_EQ(etcd->Get(key), absl::StrCat("n", k));
      // The node's only route is still the cluster's /15.
      std::string routes = node.Run("ip -4 route show");
      EXPECT_TRUE(absl::StartsWith(routes, "198.18.0.0/15 dev eth0 ") &&
                  routes.find('\n') == routes.size() - 1)
          << routes;
    }

    const json model = EveryKind();
    ASSERT_TRUE(cluster.PutModel(model));
    std::map<std::string, std::string> stored =
        etcd->GetPrefix("/nodemesh/model/");
    ASSERT_EQ(stored.size(), model.size());
    for (const json& r : model) {
      const std::string key = ClusterScope::EtcdModelKey(r);
      ASSERT_TRUE(stored.count(key)) << key;
      EXPECT_EQ(json::parse(stored[key]), r) << key;
    }
    // Changed later: one resource replaced, one gone.
    json node = appmesh::Node("back", 9001);
    ASSERT_TRUE(cluster.PutModel(node));
    EXPECT_EQ(
        json::parse(etcd->Get("/nodemesh/model/m/VirtualNode/back").value()),
        node);
    EXPECT_TRUE(cluster.DeleteResource("/nodemesh/model/m/Route/rt/r1"));
    EXPECT_FALSE(cluster.DeleteResource("/nodemesh/model/m/Route/rt/r1"));
    EXPECT_EQ(etcd->GetPrefix("/nodemesh/model/").size(), model.size() - 1);
    // Something that is not a resource is refused, naming it.
    bool put = true;
    auto failures = FailuresOf([&] {
      put = cluster.PutModel(json::array({{{"spec", 1}}}));
    });
    EXPECT_FALSE(put);
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_TRUE(absl::StrContains(failures[0], "not an App Mesh resource"))
        << failures[0];

    std::vector<std::string> flags = cluster.AgentFlags(2);
    for (const std::string& want :
         {"--etcd_endpoints=" + endpoint,
          std::string("--node_address=198.18.2.1"),
          std::string("--lease_ttl=3"), std::string("--node_name=n2")}) {
      EXPECT_NE(std::find(flags.begin(), flags.end(), want), flags.end())
          << want;
    }
  }
  EXPECT_TRUE(ProcessGone(pid));
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
}

// The agents in etcd mode: they learn each other, the workloads and the
// model from etcd alone, and follow the model as it changes there.
TEST(ClusterScopeEtcdTest, AgentsLearnTheClusterAndTheModelFromEtcd) {
  ClusterScope::Options options;
  options.etcd = true;
  ClusterScope cluster(2, options);
  cluster.AddWorkload(2, "m", "back", 9000);
  // front calls the virtual services it lists as backends (the target's
  // agent checks that too).
  auto front = [](const std::vector<std::string>& backends) {
    json b = json::array();
    for (const std::string& s : backends)
      b.push_back({{"virtualService", {{"virtualServiceName", s}}}});
    return json{{"meshName", "m"},
                {"virtualNodeName", "front"},
                {"spec",
                 {{"listeners",
                   {{{"portMapping", {{"port", 8080}, {"protocol", "http"}}}}}},
                  {"backends", b}}}};
  };
  const json model = json::array(
      {appmesh::Mesh(),
       front({"back.m.local"}),
       {{"meshName", "m"},
        {"virtualNodeName", "back"},
        {"spec",
         {{"listeners",
           {{{"portMapping", {{"port", 9000}, {"protocol", "http"}}}}}}}}},
       appmesh::ServiceByNode("back.m.local", "back")});
  ASSERT_TRUE(cluster.Start(model));
  for (int k = 1; k <= 2; ++k) {
    const std::string config = cluster.Node(k).config_dir();
    EXPECT_FALSE(std::filesystem::exists(config + "/cluster")) << config;
    EXPECT_FALSE(std::filesystem::exists(config + "/model.json")) << config;
  }
  auto call = [&](const std::string& service) {
    return cluster.RunAsWorkload(
        1, "m", "front",
        absl::StrCat("curl -s --max-time 5 http://", service, ":9000/"));
  };
  // What n1's agent knows, for failure messages.
  auto n1 = [&] {
    return absl::StrCat(
        "n1 /ready: ", cluster.Node(1).AdminJson("/ready").dump(),
        "\nn1 /workloads: ", cluster.Node(1).AdminJson("/workloads").dump(),
        "\netcd: ", cluster.etcd()->Etcdctl("get --prefix --keys-only /"));
  };

  // n1 learns n2's workload through etcd alone, and reaches it.
  EXPECT_TRUE(Eventually([&] {
    const json known = cluster.Node(1).AdminJson("/workloads");
    for (const json& w : known.value("workloads", json::array()))
      if (w.value("node", "") == "n2") return true;
    return false;
  })) << n1();
  std::string answer;
  EXPECT_TRUE(Eventually([&] {
    answer = call("back.m.local");
    return answer == "back@n2\n";
  })) << answer
      << "\n"
      << n1();

  // The model changes in etcd: a virtual service put (then front updated
  // to list it) is served; front updated back and the service deleted, it
  // is gone.
  const json again = appmesh::ServiceByNode("again.m.local", "back");
  EXPECT_NE(call("again.m.local"), "back@n2\n");
  ASSERT_TRUE(cluster.PutModel(
      json::array({again, front({"back.m.local", "again.m.local"})})));
  EXPECT_TRUE(Eventually([&] {
    answer = call("again.m.local");
    return answer == "back@n2\n";
  })) << answer
      << "\n"
      << n1();
  ASSERT_TRUE(cluster.PutModel(front({"back.m.local"})));
  ASSERT_TRUE(cluster.DeleteResource(ClusterScope::EtcdModelKey(again)));
  EXPECT_TRUE(Eventually([&] { return call("again.m.local") != "back@n2\n"; }));
  EXPECT_EQ(call("back.m.local"), "back@n2\n");
}

}  // namespace
}  // namespace nodemesh::testing
