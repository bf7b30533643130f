// The tunnel's tables: which endpoints are on other nodes and through
// which tunnel, identities (default and sds-named), the backends
// allow-list, listener validation and client policies.

#include "agent/compile/tunnel_config.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/compile/proxy_config_test_util.h"

namespace nodemesh::compile {
namespace {

constexpr char kFront[] = "spiffe://cluster.local/ns/m/vn/front";
constexpr char kBack[] = "spiffe://cluster.local/custom/back";
constexpr char kOther[] = "spiffe://cluster.local/ns/m/vn/other";

json VirtualNode(const std::string& name, json spec) {
  return {{"meshName", "m"}, {"virtualNodeName", name}, {"spec", spec}};
}

json Model() {
  json tls_listener = {
      {"portMapping", {{"port", 9000}, {"protocol", "http"}}},
      {"tls",
       {{"mode", "STRICT"},
        {"certificate", {{"sds", {{"secretName", kBack}}}}},
        {"validation",
         {{"trust", {{"sds", {{"secretName", "bundle"}}}}},
          {"subjectAlternativeNames", {{"match", {{"exact", {kFront}}}}}}}}}}};
  json client_policy = {
      {"tls",
       {{"validation",
         {{"trust", {{"sds", {{"secretName", "bundle"}}}}},
          {"subjectAlternativeNames", {{"match", {{"exact", {kBack}}}}}}}}}}};
  return json::array(
      {{{"meshName", "m"}, {"spec", json::object()}},
       VirtualNode("back", {{"listeners", {tls_listener}}}),
       VirtualNode(
           "front",
           {{"listeners",
             {{{"portMapping", {{"port", 8080}, {"protocol", "http"}}}}}},
            {"backends",
             {{{"virtualService",
                {{"virtualServiceName", "back.m.local"},
                 {"clientPolicy", client_policy}}}}}}}),
       VirtualNode(
           "other",
           {{"listeners",
             {{{"portMapping", {{"port", 8081}, {"protocol", "http"}}}}}}}),
       {{"meshName", "m"},
        {"virtualServiceName", "back.m.local"},
        {"spec",
         {{"provider", {{"virtualNode", {{"virtualNodeName", "back"}}}}}}}}});
}

workload::Workload W(const std::string& vn, const std::string& address,
                     const std::string& node, uint64_t cgroup_id) {
  workload::Workload w;
  w.id = vn + "@" + address;
  w.mesh = "m";
  w.virtual_node = vn;
  w.address = address;
  w.node = node;
  w.cgroup_id = cgroup_id;
  return w;
}

class TunnelConfigTest : public ::testing::Test {
 protected:
  std::shared_ptr<const TunnelConfig> CompileWith(
      const std::map<std::string, workload::Workload>& workloads) {
    TempConfigDir dir;
    dir.Write("model.json", Model().dump());
    auto r = model::SnapshotBuilder(dir.path()).Build(nullptr);
    for (const auto& d : r.diagnostics.items()) ADD_FAILURE() << d.ToString();
    if (!r.snapshot) return nullptr;
    snapshot_ = r.snapshot;
    std::vector<std::string> proxy_warnings;
    proxy_ = CompileProxyConfig(*snapshot_, {}, &labels_, &proxy_warnings);
    TunnelInputs in;
    in.snapshot = snapshot_.get();
    in.proxy = proxy_.get();
    in.workloads = &workloads;
    in.nodes = &nodes_;
    in.node_name = "n1";
    in.node_id = [](const std::string&, const std::string& vn) {
      return vn == "front" ? 1u : vn == "back" ? 2u : 3u;
    };
    warnings_.clear();
    return CompileTunnelConfig(in, &warnings_);
  }

  std::vector<ClusterNode> nodes_ = {
      {"n1", "198.18.1.1", 15008, {"198.18.1.0/24"}},
      {"n2", "198.18.2.1", 15009, {"198.18.2.0/24"}}};
  std::shared_ptr<const model::Snapshot> snapshot_;
  std::shared_ptr<const ProxyConfig> proxy_;
  LabelInterner labels_;
  std::vector<std::string> warnings_;
};

TEST_F(TunnelConfigTest, RemoteEndpointsGoThroughTheirNodesTunnel) {
  auto t = CompileWith({{"a", W("front", "198.18.1.1", "", 11)},
                        {"b", W("back", "198.18.2.1", "n2", 0)}});
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->remote.size(), 1u);
  const RemoteEndpoint& r = t->remote.at("198.18.2.1:9000");
  EXPECT_EQ(r.tunnel.ToString(), "198.18.2.1:15009");
  EXPECT_EQ(r.node, "n2");
  EXPECT_EQ(r.identity, kBack) << "the sds secret names the identity";
  EXPECT_EQ(t->workload_identity.at(1), kFront);
  ASSERT_EQ(t->local.size(), 1u) << "front's own listener";
  EXPECT_EQ(t->local.at("198.18.1.1:8080").identity, kFront);
  EXPECT_TRUE(t->local.at("198.18.1.1:8080").allowed.empty())
      << "no virtual node lists front as a backend";
  // Only identities this node acts as are minted.
  EXPECT_EQ(t->identities, std::vector<std::string>({kFront}));
}

TEST_F(TunnelConfigTest, AnUnknownNodeIsWarnedAboutAndLeftOut) {
  auto t = CompileWith({{"b", W("back", "198.18.3.1", "n3", 0)}});
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->remote.empty());
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_NE(warnings_[0].find("'n3'"), std::string::npos) << warnings_[0];
}

TEST_F(TunnelConfigTest, LocalTargetsCarryValidationAndTheBackendsAllowList) {
  auto t = CompileWith({{"b", W("back", "198.18.1.1", "", 12)}});
  ASSERT_NE(t, nullptr);
  const LocalTarget& target = t->local.at("198.18.1.1:9000");
  EXPECT_EQ(target.identity, kBack);
  EXPECT_EQ(target.mode, model::TlsMode::kStrict);
  EXPECT_TRUE(target.validate);
  EXPECT_EQ(target.sans, std::vector<std::string>({kFront}));
  EXPECT_EQ(target.trust, nullptr) << "sds trust is the mesh's CA bundle";
  EXPECT_TRUE(target.allowed.contains(kFront));
  EXPECT_FALSE(target.allowed.contains(kOther)) << "other lists no backend";
}

TEST_F(TunnelConfigTest, ClientPolicyAppliesPerCallerTargetAndPort) {
  auto t = CompileWith({{"a", W("front", "198.18.1.1", "", 11)}});
  ASSERT_NE(t, nullptr);
  const ClientTlsPolicy* p = t->ClientPolicy(kFront, kBack, 9000);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->sans, std::vector<std::string>({kBack}));
  EXPECT_EQ(t->ClientPolicy(kFront, kBack, 9001), nullptr);
  EXPECT_EQ(t->ClientPolicy(kOther, kBack, 9000), nullptr);
}

TEST(ClusterNodesTest, ParsesAndNamesTheBadField) {
  auto ok = ParseClusterNodes(json::parse(
      R"([{"name":"n1","address":"198.18.1.1","tunnelPort":15008,
           "workloadCidrs":["198.18.1.0/24"]},
          {"name":"n2","address":"fd00::2"}])"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[1].tunnel_port, 15008) << "the default";
  auto bad = ParseClusterNodes(
      json::parse(R"([{"name":"n1","address":"198.18.1.1","tunnelPort":0}])"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("nodes.json[0].tunnelPort"),
            std::string::npos)
      << bad.status();
  bad = ParseClusterNodes(json::parse(R"([{"name":"n1","address":"nope"}])"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("address"), std::string::npos);
}

}  // namespace
}  // namespace nodemesh::compile
