// POST /workloads bodies: what a launcher may ask for, and a clear error
// naming the field for everything else; the state file's entries round-trip.

#include "agent/workload/workload.h"
#include "gtest/gtest.h"

namespace nodemesh::workload {
namespace {

using nlohmann::json;

TEST(WorkloadRequestTest, ReadsEveryField) {
  auto r = WorkloadRequest::FromJson(json::parse(R"({
    "mesh": "shop", "virtualNode": "product-v1", "address": "fd00::7",
    "ports": [8080, 9090], "cgroup": "/sys/fs/cgroup/nodemesh/x",
    "netns": "/var/run/netns/pod", "attributes": {"version": "v1"}})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mesh, "shop");
  EXPECT_EQ(r->virtual_node, "product-v1");
  EXPECT_EQ(r->address, "fd00::7");
  EXPECT_EQ(r->ports, (std::vector<uint16_t>{8080, 9090}));
  EXPECT_EQ(r->netns, "/var/run/netns/pod");
  EXPECT_EQ(r->attributes.at("version"), "v1");
}

TEST(WorkloadRequestTest, NamesTheBadField) {
  struct Case {
    const char* body;
    const char* field;
  } cases[] = {
      {R"([1])", "object"},
      {R"({"virtualNode": "a"})", "mesh"},
      {R"({"mesh": "m"})", "virtualNode"},
      {R"({"mesh": "m", "virtualNode": "a/b"})", "virtualNode"},
      {R"({"mesh": "m", "virtualNode": "a", "address": "host.local"})",
       "address"},
      {R"({"mesh": "m", "virtualNode": "a", "ports": [0]})", "ports"},
      {R"({"mesh": "m", "virtualNode": "a", "ports": [70000]})", "ports"},
      {R"({"mesh": "m", "virtualNode": "a", "ports": "80"})", "ports"},
      {R"({"mesh": "m", "virtualNode": "a", "attributes": {"k": 1}})",
       "attributes.k"},
      {R"({"mesh": 5, "virtualNode": "a"})", "mesh"},
  };
  for (const Case& c : cases) {
    auto r = WorkloadRequest::FromJson(json::parse(c.body));
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_NE(r.status().message().find(c.field), std::string::npos)
        << c.body << " -> " << r.status().message();
  }
}

TEST(WorkloadTest, StateEntriesRoundTrip) {
  Workload w;
  w.id = "product-v1-3";
  w.mesh = "shop";
  w.virtual_node = "product-v1";
  w.address = "127.0.0.51";
  w.ports = {8080};
  w.cgroup = "/sys/fs/cgroup/nodemesh/product-v1-3";
  w.cgroup_id = 4242;
  w.attributes = {{"version", "v1"}};
  w.owns_cgroup = true;
  w.populated = true;
  w.registered_at = 1700000000;
  auto back = Workload::FromJson(w.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->ToJson(), w.ToJson());
  EXPECT_FALSE(Workload::FromJson(json::parse(R"({"id": "x"})")).ok());
}

}  // namespace
}  // namespace nodemesh::workload
