// What the pins hold: named fields for bpftool, and adoption by a second
// loader.

#include <arpa/inet.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/agent_process.h"
#include "tests/integration/fixtures.h"

namespace nodemesh::testing {
namespace {

nm_config TestConfig() {
  nm_config c{};
  c.outbound_port = PickPort();
  c.agent_mark = NM_DEFAULT_AGENT_MARK;
  return c;
}

// bpftool -j prints BTF-formatted entries under "formatted" (or inline).
nlohmann::json FormattedEntries(const std::string& pinned_map) {
  int rc = 0;
  std::string out = RunCommand("bpftool -j map dump pinned " + pinned_map, &rc);
  EXPECT_EQ(rc, 0) << out;
  auto j = nlohmann::json::parse(out, nullptr, false);
  EXPECT_TRUE(j.is_array()) << out;
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& e : j)
    entries.push_back(e.contains("formatted") ? e["formatted"] : e);
  return entries;
}

TEST(PinsTest, BpftoolDumpPrintsNamedFields) {
  DatapathScope dp(TestConfig(), false);
  auto addr = datapath::ServiceAddress::Parse("127.10.4.1:80");
  ASSERT_TRUE(addr.ok());
  ASSERT_TRUE(dp.maps().UpsertService(*addr, {42, NM_ACTION_PROXY, 0, 0}).ok());

  auto services = FormattedEntries(dp.pin_dir() + "/nm_services");
  ASSERT_EQ(services.size(), 1u) << services.dump();
  const auto& key = services[0]["key"];
  const auto& value = services[0]["value"];
  EXPECT_TRUE(key.contains("addr") && key.contains("port") &&
              key.contains("protocol"))
      << key.dump();
  EXPECT_EQ(value["service_id"], 42) << value.dump();
  EXPECT_EQ(value["action"], NM_ACTION_PROXY);
  EXPECT_EQ(key["port"], htons(80));  // BTF prints the raw network-order u16

  auto config = FormattedEntries(dp.pin_dir() + "/nm_config");
  ASSERT_EQ(config.size(), 1u);
  EXPECT_TRUE(config[0]["value"].contains("outbound_port"));
  EXPECT_TRUE(config[0]["value"].contains("sockmap"));
}

TEST(PinsTest, SecondLoaderAdoptsPinsAndKeepsContents) {
  nm_config config = TestConfig();
  DatapathScope dp(config, false);
  auto addr = datapath::ServiceAddress::Parse("127.10.4.2:80");
  ASSERT_TRUE(addr.ok());
  ASSERT_TRUE(dp.maps().UpsertService(*addr, {43, NM_ACTION_PROXY, 0, 0}).ok());

  datapath::DatapathOptions again{dp.pin_dir(), dp.workloads().path(),
                                  dp.agent().path(), config};
  auto second = datapath::Datapath::Open(again);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->pin_state(), datapath::PinState::kAdopted);
  auto svc = (*second)->maps().LookupService(*addr);
  ASSERT_TRUE(svc.ok() && svc->has_value());
  EXPECT_EQ((*svc)->service_id, 43u);
  // Still one program per hook on each cgroup: nothing attached twice.
  std::string tree =
      RunCommand("bpftool -j cgroup show " + dp.workloads().path());
  auto progs = nlohmann::json::parse(tree, nullptr, false);
  ASSERT_TRUE(progs.is_array()) << tree;
  EXPECT_EQ(progs.size(), 10u) << tree;  // connect, sendmsg, recvmsg,
                                         // getpeername x2, sockops, ingress
}

}  // namespace
}  // namespace nodemesh::testing
