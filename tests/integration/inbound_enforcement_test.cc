// Inbound enforcement with a real agent: a workload whose virtual node
// listener has tls STRICT can be reached only through the agent (its
// marked sockets); a direct dial is dropped in the kernel and counted.
// PERMISSIVE admits both and counts them apart; DISABLED or no tls leaves
// the port alone.

#include <chrono>
#include <filesystem>
#include <fstream>
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

constexpr uint16_t kApiPort = 8443;
constexpr char kApiAddress[] = "127.0.0.41";

// The api virtual node: registry endpoints, one http listener with `tls`
// (null: none).
json ApiNode(const json& tls) {
  json listener = {{"portMapping", {{"port", kApiPort}, {"protocol", "http"}}}};
  if (!tls.is_null()) listener["tls"] = tls;
  return {{"meshName", "m"},
          {"virtualNodeName", "api"},
          {"spec", {{"listeners", json::array({listener})}}}};
}

json Tls(const std::string& mode) {
  return {{"mode", mode},
          {"certificate",
           {{"file",
             {{"certificateChain", "/etc/nodemesh-test/api.pem"},
              {"privateKey", "/etc/nodemesh-test/api.key"}}}}}};
}

// api behind api.m.local; client may call it.
json Model(const json& tls) {
  return json::array(
      {{{"meshName", "m"},
        {"spec", {{"egressFilter", {{"type", "ALLOW_ALL"}}}}}},
       ApiNode(tls),
       {{"meshName", "m"},
        {"virtualNodeName", "client"},
        {"spec",
         {{"listeners",
           {{{"portMapping", {{"port", 9000}, {"protocol", "http"}}}}}},
          {"backends",
           {{{"virtualService", {{"virtualServiceName", "api.m.local"}}}}}}}}},
       appmesh::ServiceByNode("api.m.local", "api")});
}

// What connect() does from a plain process in the node's namespace (outside
// the workload cgroups), with SO_MARK `mark` when non-zero: "ok",
// "timeout", or the errno's name. A dropped SYN is a timeout.
constexpr char kDial[] =
    "/usr/bin/python3 -c \"import socket,errno,sys\n"
    "s=socket.socket()\n"
    "m=int(sys.argv[3],0)\n"
    "if m: s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, m)\n"
    "s.settimeout(2)\n"
    "try:\n"
    "  s.connect((sys.argv[1], int(sys.argv[2]))); print('ok')\n"
    "except socket.timeout:\n"
    "  print('timeout')\n"
    "except OSError as e:\n"
    "  print(errno.errorcode.get(e.errno, e))\" ";

class InboundEnforcementTest : public ::testing::Test {
 protected:
  void StartWith(const json& tls) {
    ASSERT_TRUE(node_.Start(Model(tls)));
    node_.AddWorkloadUpstreams("m", "api", {{"api", kApiPort, kApiAddress}});
  }

  std::string Dial(uint32_t mark) {
    return node_.Run(
        absl::StrCat(kDial, kApiAddress, " ", kApiPort, " ", mark));
  }

  // The kernel's counters of the api node for `mode`.
  datapath::InboundTotals Counters(uint32_t mode) {
    auto maps = datapath::DatapathMaps::Open(node_.pin_dir());
    EXPECT_TRUE(maps.ok()) << maps.status();
    if (!maps.ok()) return {};
    auto c = maps->ReadInboundCounters();
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) return {};
    datapath::InboundTotals sum;
    for (const auto& [key, t] : *c) {
      if (key.second != mode) continue;
      sum.via_agent += t.via_agent;
      sum.direct_admitted += t.direct_admitted;
      sum.direct_refused += t.direct_refused;
    }
    return sum;
  }

  size_t InboundEntries() {
    auto maps = datapath::DatapathMaps::Open(node_.pin_dir());
    if (!maps.ok()) return 0;
    auto n = maps->CountEntries("nm_inbound");
    return n.ok() ? *n : 0;
  }

  // Through the agent: a workload of `client` calls api.m.local.
  std::string CallThroughAgent() {
    return node_.RunAsWorkload(
        "m", "client",
        absl::StrCat("curl -s --max-time 10 -o /dev/null -w '%{http_code}' "
                     "http://api.m.local:",
                     kApiPort, "/"));
  }

  // Rewrites the model and waits until nm_inbound holds `entries`.
  bool Reload(const json& model, size_t entries) {
    std::ofstream(node_.config_dir() + "/model.json.tmp") << model.dump(2);
    std::filesystem::rename(node_.config_dir() + "/model.json.tmp",
                            node_.config_dir() + "/model.json");
    for (int i = 0; i < 100; ++i) {
      if (InboundEntries() == entries) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  ProxyNode node_;
};

TEST_F(InboundEnforcementTest, StrictRefusesDirectDialsAndAdmitsTheAgent) {
  StartWith(Tls("STRICT"));
  ASSERT_EQ(InboundEntries(), 1u);

  // A plain process dialling the workload's address: its SYN is dropped.
  EXPECT_EQ(Dial(0), "timeout\n");
  // A wrong mark is no better.
  EXPECT_EQ(Dial(0x1234), "timeout\n");
  datapath::InboundTotals c = Counters(NM_INBOUND_STRICT);
  // Two refused connections, whatever their SYN retransmissions.
  EXPECT_EQ(c.direct_refused, 2u);

  // A socket carrying the agent's mark is admitted.
  EXPECT_EQ(Dial(NM_DEFAULT_AGENT_MARK), "ok\n");
  EXPECT_EQ(Counters(NM_INBOUND_STRICT).via_agent, c.via_agent + 1);

  // The mesh path: a client workload through the agent's proxy.
  uint64_t before = Counters(NM_INBOUND_STRICT).via_agent;
  EXPECT_EQ(CallThroughAgent(), "200");
  c = Counters(NM_INBOUND_STRICT);
  EXPECT_GE(c.via_agent, before + 1);
  EXPECT_EQ(c.direct_refused, 2u);

  std::string metrics = node_.Metrics();
  EXPECT_EQ(MetricSum(metrics, "nodemesh_bpf_inbound_connections_total",
                      {"virtual_node=\"api\"", "mode=\"strict\"",
                       "path=\"direct\"", "verdict=\"refused\""}),
            2u)
      << metrics;
  EXPECT_EQ(MetricSum(metrics, "nodemesh_bpf_inbound_connections_total",
                      {"virtual_node=\"api\"", "mode=\"strict\"",
                       "path=\"agent\"", "verdict=\"admitted\""}),
            c.via_agent);
  EXPECT_EQ(MetricSum(metrics, "nodemesh_inbound_ports", {"mode=\"strict\""}),
            1u);

  // The map prints named fields.
  std::string dump = node_.Run(
      absl::StrCat("bpftool map dump pinned ", node_.pin_dir(), "/nm_inbound"));
  EXPECT_TRUE(absl::StrContains(dump, "\"cgroup_id\"")) << dump;
  EXPECT_TRUE(absl::StrContains(dump, absl::StrCat("\"port\": ", kApiPort)))
      << dump;
  EXPECT_TRUE(absl::StrContains(dump, "\"mode\": 1")) << dump;
}

TEST_F(InboundEnforcementTest, PermissiveAdmitsDirectDialsAndCountsThemApart) {
  StartWith(Tls("PERMISSIVE"));
  ASSERT_EQ(InboundEntries(), 1u);
  EXPECT_EQ(Dial(0), "ok\n");
  EXPECT_EQ(Dial(0), "ok\n");
  EXPECT_EQ(CallThroughAgent(), "200");
  datapath::InboundTotals c = Counters(NM_INBOUND_PERMISSIVE);
  EXPECT_EQ(c.direct_admitted, 2u);
  EXPECT_GE(c.via_agent, 1u);
  EXPECT_EQ(c.direct_refused, 0u);
  std::string metrics = node_.Metrics();
  EXPECT_EQ(MetricSum(metrics, "nodemesh_bpf_inbound_connections_total",
                      {"virtual_node=\"api\"", "mode=\"permissive\"",
                       "path=\"direct\"", "verdict=\"admitted\""}),
            2u)
      << metrics;
}

TEST_F(InboundEnforcementTest, ModeChangesTakeEffectAndDisabledLeavesThePort) {
  StartWith(Tls("DISABLED"));
  EXPECT_EQ(InboundEntries(), 0u);
  EXPECT_EQ(Dial(0), "ok\n");

  // Hot reload to STRICT: the same running workload is now guarded.
  ASSERT_TRUE(Reload(Model(Tls("STRICT")), 1));
  EXPECT_EQ(Dial(0), "timeout\n");
  EXPECT_EQ(CallThroughAgent(), "200");

  // No tls at all: the entry goes, direct dials work again.
  ASSERT_TRUE(Reload(Model(nullptr), 0));
  EXPECT_EQ(Dial(0), "ok\n");
  EXPECT_EQ(Counters(NM_INBOUND_STRICT).direct_refused, 1u);
  EXPECT_EQ(Counters(NM_INBOUND_PERMISSIVE).direct_admitted, 0u);
}

}  // namespace
}  // namespace nodemesh::testing
