// Inbound enforcement, compiled: which (cgroup, port) the kernel guards and
// how, from listener tls modes and the local workloads.

#include "agent/compile/inbound_policy.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/model/model_test_util.h"

namespace nodemesh::compile {
namespace {

using nlohmann::json;

json Listener(int port, const std::string& mode) {
  json l = {{"portMapping", {{"port", port}, {"protocol", "http"}}}};
  if (!mode.empty())
    l["tls"] = {
        {"mode", mode},
        {"certificate",
         {{"file",
           {{"certificateChain", "/c.pem"}, {"privateKey", "/k.pem"}}}}}};
  return l;
}

json Node(const std::string& name, json listeners) {
  return {{"meshName", "m"},
          {"virtualNodeName", name},
          {"spec", {{"listeners", std::move(listeners)}}}};
}

workload::Workload Wl(const std::string& vn, uint64_t cgroup,
                      std::vector<uint16_t> ports = {},
                      const std::string& node = "") {
  workload::Workload w;
  w.id = vn + "-" + std::to_string(cgroup);
  w.mesh = "m";
  w.virtual_node = vn;
  w.cgroup_id = cgroup;
  w.ports = std::move(ports);
  w.node = node;
  return w;
}

class InboundPolicyTest : public ::testing::Test {
 protected:
  InboundPolicy Compile(const json& nodes) {
    json model = json::array({{{"meshName", "m"}, {"spec", json::object()}}});
    for (const auto& n : nodes) model.push_back(n);
    model::TempConfigDir dir;
    dir.Write("model.json", model.dump());
    auto r = model::SnapshotBuilder(dir.path()).Build(nullptr);
    EXPECT_NE(r.snapshot, nullptr);
    for (const auto& d : r.diagnostics.items())
      if (d.severity == model::Diagnostic::Severity::kError)
        ADD_FAILURE() << d.ToString();
    warnings_.clear();
    return CompileInboundPolicy(
        *r.snapshot, workloads_,
        [](const std::string&, const std::string& vn) {
          return vn == "api" ? 5u : 6u;
        },
        &warnings_);
  }

  std::map<std::string, workload::Workload> workloads_;
  std::vector<std::string> warnings_;
};

TEST_F(InboundPolicyTest, StrictAndPermissiveListenersOfLocalWorkloads) {
  workloads_["a"] = Wl("api", 101);
  workloads_["b"] = Wl("web", 102);
  auto p = Compile(
      json::array({Node("api", json::array({Listener(8443, "STRICT")})),
                   Node("web", json::array({Listener(8080, "PERMISSIVE")}))}));
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p.at({101, 8443}).mode, NM_INBOUND_STRICT);
  EXPECT_EQ(p.at({101, 8443}).workload_id, 5u);
  EXPECT_EQ(p.at({102, 8080}).mode, NM_INBOUND_PERMISSIVE);
  EXPECT_EQ(p.at({102, 8080}).workload_id, 6u);
}

TEST_F(InboundPolicyTest, DisabledNoTlsRemoteAndCgrouplessGetNothing) {
  workloads_["a"] = Wl("api", 101);
  workloads_["r"] = Wl("web", 0, {}, "node-b");  // another node's
  workloads_["d"] = Wl("web", 0);                // declared, no cgroup
  auto p = Compile(json::array(
      {Node("api",
            json::array({Listener(8443, "DISABLED"), Listener(9000, "")})),
       Node("web", json::array({Listener(8080, "STRICT")}))}));
  EXPECT_TRUE(p.empty());
}

TEST_F(InboundPolicyTest, TheWorkloadsOwnPortAndStrictWinsAPortConflict) {
  // One port for the listener 8443: served on 9443.
  workloads_["a"] = Wl("api", 101, {9443});
  auto p = Compile(
      json::array({Node("api", json::array({Listener(8443, "STRICT")}))}));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p.count({101, 9443}), 1u);
  // Two listeners on the workload's single port: STRICT, with a warning.
  p = Compile(
      json::array({Node("api", json::array({Listener(8443, "PERMISSIVE"),
                                            Listener(8444, "STRICT")}))}));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p.at({101, 9443}).mode, NM_INBOUND_STRICT);
  EXPECT_EQ(warnings_.size(), 1u);
  // Several ports, none the listener's: nothing to enforce, said so.
  workloads_["a"] = Wl("api", 101, {1, 2});
  p = Compile(
      json::array({Node("api", json::array({Listener(8443, "STRICT")}))}));
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(warnings_.size(), 1u);
}

}  // namespace
}  // namespace nodemesh::compile
