// The datapath half of compilation: VIP entries per virtual service port,
// DIRECT only where the kernel may bypass the proxy, DROP_ALL policy from
// the backends, and awsCloudMap endpoints picked by attributes.

#include "agent/compile/service_map.h"

#include <arpa/inet.h>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/model/model_test_util.h"

namespace nodemesh::compile {
namespace {

using nlohmann::json;

json Node(const std::string& name, int port, const std::string& protocol,
          json extra = json::object()) {
  json spec = {{"listeners",
                {{{"portMapping", {{"port", port}, {"protocol", protocol}}}}}}};
  spec.update(extra);
  return {{"meshName", "m"}, {"virtualNodeName", name}, {"spec", spec}};
}

json Service(const std::string& name, const std::string& node) {
  return {
      {"meshName", "m"},
      {"virtualServiceName", name},
      {"spec", {{"provider", {{"virtualNode", {{"virtualNodeName", node}}}}}}}};
}

workload::Workload Wl(const std::string& id, const std::string& vn,
                      const std::string& address, uint64_t cgroup,
                      const std::string& node = "") {
  workload::Workload w;
  w.id = id;
  w.mesh = "m";
  w.virtual_node = vn;
  w.address = address;
  w.cgroup_id = cgroup;
  w.node = node;
  return w;
}

class ServiceMapTest : public ::testing::Test {
 protected:
  ServiceMapContents Compile(const json& model) {
    model::TempConfigDir dir;
    dir.Write("model.json", model.dump());
    auto r = model::SnapshotBuilder(dir.path()).Build(nullptr);
    EXPECT_NE(r.snapshot, nullptr);
    for (const auto& d : r.diagnostics.items())
      if (d.severity == model::Diagnostic::Severity::kError)
        ADD_FAILURE() << d.ToString();
    snapshot_ = r.snapshot;
    std::vector<std::string> warnings;
    proxy_ = CompileProxyConfig(*snapshot_, {}, &labels_, &warnings);
    uint32_t next = 1;
    for (const auto& h : proxy_->virtual_hosts) {
      std::string key = h.mesh + "/" + h.virtual_service;
      if (!vips_.count(key)) {
        vips_[key] = dns::Vip{(127u << 24) | (128u << 16) | next, next};
        ++next;
      }
    }
    ServiceMapInputs in;
    in.snapshot = snapshot_.get();
    in.proxy = proxy_.get();
    in.vips = &vips_;
    in.workloads = &workloads_;
    in.node_id = [](const std::string&, const std::string& vn) {
      return vn == "client" ? 7u : 8u;
    };
    return CompileServiceMap(in, &warnings);
  }
  const ServiceMapEntry* Find(const ServiceMapContents& c,
                              const std::string& label) {
    for (const auto& e : c.services)
      if (e.label == label) return &e;
    return nullptr;
  }

  LabelInterner labels_;
  std::shared_ptr<const model::Snapshot> snapshot_;
  std::shared_ptr<const ProxyConfig> proxy_;
  std::map<std::string, dns::Vip> vips_;
  std::map<std::string, workload::Workload> workloads_;
};

json Shop(const std::string& egress, json db_extra = json::object()) {
  return json::array(
      {{{"meshName", "m"}, {"spec", {{"egressFilter", {{"type", egress}}}}}},
       Node("client", 9000, "http",
            {{"backends",
              {{{"virtualService", {{"virtualServiceName", "web.m"}}}}}}}),
       Node("web", 8080, "http"),
       Service("web.m", "web"),
       Node("db", 5432, "tcp", db_extra),
       Service("db.m", "db")});
}

TEST_F(ServiceMapTest, ProxyEntriesDirectForLocalTcpAndDnsNames) {
  workloads_["db-1"] = Wl("db-1", "db", "127.0.0.21", 0);
  auto c = Compile(Shop("DROP_ALL"));
  const ServiceMapEntry* web = Find(c, "m/web.m:8080");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->value.action, NM_ACTION_PROXY);
  EXPECT_EQ(web->address.port, 8080);
  EXPECT_EQ(web->value.service_id, vips_["m/web.m"].service_id);
  const ServiceMapEntry* db = Find(c, "m/db.m:5432");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->value.action, NM_ACTION_DIRECT);
  ASSERT_EQ(db->backends.size(), 1u);
  EXPECT_EQ(db->value.backend_count, 1);
  EXPECT_EQ(ntohs(db->backends[0].port), 5432);
  EXPECT_EQ(db->backends[0].addr[15], 21);
  EXPECT_EQ(c.direct_services, 1u);
  EXPECT_EQ(c.dns_names.at("web.m"), vips_["m/web.m"].address);
}

TEST_F(ServiceMapTest, NoDirectWithARemoteEndpointOrTls) {
  workloads_["db-1"] = Wl("db-1", "db", "127.0.0.21", 0);
  workloads_["db-2"] = Wl("db-2", "db", "198.18.0.5", 0, "node-b");
  auto c = Compile(Shop("DROP_ALL"));
  EXPECT_EQ(Find(c, "m/db.m:5432")->value.action, NM_ACTION_PROXY);
  workloads_.erase("db-2");
  json listener = {
      {"portMapping", {{"port", 5432}, {"protocol", "tcp"}}},
      {"tls",
       {{"mode", "STRICT"},
        {"certificate",
         {{"file",
           {{"certificateChain", "/c.pem"}, {"privateKey", "/k.pem"}}}}}}}};
  json tls = {{"listeners", json::array({listener})}};
  c = Compile(Shop("DROP_ALL", tls));
  EXPECT_EQ(Find(c, "m/db.m:5432")->value.action, NM_ACTION_PROXY);
}

TEST_F(ServiceMapTest, DropAllAllowsExactlyTheBackends) {
  workloads_["client-1"] = Wl("client-1", "client", "127.0.0.1", 1001);
  auto c = Compile(Shop("DROP_ALL"));
  ASSERT_EQ(c.workloads.count(1001), 1u);
  EXPECT_EQ(c.workloads[1001].workload_id, 7u);
  EXPECT_TRUE(c.workloads[1001].flags & NM_WORKLOAD_EGRESS_DROP_ALL);
  ASSERT_EQ(c.policy.size(), 1u);
  EXPECT_EQ(c.policy.begin()->first,
            std::make_pair(7u, vips_["m/web.m"].service_id));
  c = Compile(Shop("ALLOW_ALL"));
  EXPECT_FALSE(c.workloads[1001].flags & NM_WORKLOAD_EGRESS_DROP_ALL);
  EXPECT_TRUE(c.policy.empty());
}

TEST_F(ServiceMapTest, CloudMapSelectsInstancesByAttributes) {
  auto cloud = [](const std::string& version) {
    json attrs = json::array();
    if (!version.empty())
      attrs.push_back({{"key", "version"}, {"value", version}});
    return json{{"serviceDiscovery",
                 {{"awsCloudMap",
                   {{"namespaceName", "shop.local"},
                    {"serviceName", "product"},
                    {"attributes", attrs}}}}}};
  };
  json model = json::array({{{"meshName", "m"}, {"spec", json::object()}},
                            Node("product-v1", 8080, "http", cloud("v1")),
                            Node("product-any", 8080, "http", cloud(""))});
  auto a = Wl("a", "product-v1", "127.0.0.31", 0);
  a.attributes["version"] = "v1";
  auto b = Wl("b", "product-any", "127.0.0.32", 0);
  b.attributes["version"] = "v2";
  workloads_["a"] = a;
  workloads_["b"] = b;
  Compile(model);
  auto index = CloudMapIndex(*proxy_);
  for (const Cluster& cl : proxy_->clusters) {
    auto eps = ClusterEndpoints(cl, workloads_, index);
    if (cl.virtual_node == "product-v1") {
      // Its own workload; b has version v2.
      ASSERT_EQ(eps.size(), 1u);
      EXPECT_EQ(eps[0].address.ToString(), "127.0.0.31:8080");
    } else {
      // No attribute filter: every instance of shop.local/product.
      EXPECT_EQ(eps.size(), 2u);
    }
  }
}

TEST_F(ServiceMapTest, AWorkloadRegisteredAndDeclaredIsOneEndpoint) {
  json model = json::array({{{"meshName", "m"}, {"spec", json::object()}},
                            Node("api", 8080, "http")});
  workloads_["api-1"] = Wl("api-1", "api", "198.18.1.1", 0);
  auto declared = Wl("file:n1/api/198.18.1.1", "api", "198.18.1.1", 0);
  declared.origin = "file";
  workloads_[declared.id] = declared;
  workloads_["api-2"] = Wl("api-2", "api", "198.18.1.2", 0);
  Compile(model);
  ASSERT_EQ(proxy_->clusters.size(), 1u);
  auto eps =
      ClusterEndpoints(proxy_->clusters[0], workloads_, CloudMapIndex(*proxy_));
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0].address.ToString(), "198.18.1.1:8080");
  EXPECT_EQ(eps[1].address.ToString(), "198.18.1.2:8080");
}

}  // namespace
}  // namespace nodemesh::compile
