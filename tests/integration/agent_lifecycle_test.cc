// The real nodemesh-agent binary: start, attach where it should and nowhere
// else, SIGTERM leaves the datapath working, a new agent adopts it,
// --cleanup removes everything; and it refuses to start with one clear line.

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/agent_process.h"
#include "tests/integration/fixtures.h"

namespace nodemesh::testing {
namespace {

std::set<std::string> AttachedPrograms(const std::string& cgroup) {
  auto j = nlohmann::json::parse(RunCommand("bpftool -j cgroup show " + cgroup),
                                 nullptr, false);
  std::set<std::string> names;
  if (j.is_array())
    for (const auto& p : j) names.insert(p.value("name", ""));
  return names;
}

net::UniqueFd AcceptWithin(int fd, int timeout_ms = 10000) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return net::UniqueFd();
  return net::UniqueFd(::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
}

bool PingPong(int fd, char c) {
  char back = 0;
  return WriteAll(fd, &c, 1) && ReadAll(fd, &back, 1) && back == c;
}

// A workload client: connects to the VIP, then echoes bytes until EOF.
int EchoClient() {
  auto fd = Connect("127.10.9.1:7000");
  if (!fd.valid()) return 10;
  char c;
  while (::recv(fd.get(), &c, 1, 0) == 1)
    if (!WriteAll(fd.get(), &c, 1)) return 11;
  return 0;
}

class AgentLifecycleTest : public ::testing::Test {
 protected:
  AgentLifecycleTest()
      : name_(UniqueName("life")),
        parent_(Cgroup2Mount() + "/" + name_),
        pin_dir_("/sys/fs/bpf/" + name_),
        admin_(absl::StrCat("127.0.0.1:", PickPort())),
        config_dir_("/tmp/" + name_ + "-config") {}
  ~AgentLifecycleTest() override {
    // Whatever the test did, nothing stays pinned or attached.
    AgentProcess cleanup(-1, Flags({"--cleanup"}));
    cleanup.WaitExit();
    std::filesystem::remove_all(config_dir_);
  }

  std::vector<std::string> Flags(std::vector<std::string> extra = {}) const {
    std::vector<std::string> f = {
        "--cgroup_root=" + workloads(),
        "--agent_cgroup=" + agent_cgroup(),
        "--bpf_pin_dir=" + pin_dir_,
        "--admin_address=" + admin_,
        "--config_dir=" + config_dir_,
        "--outbound_port=" + std::to_string(PickPort()),
        "--drain_seconds=2"};
    f.insert(f.end(), extra.begin(), extra.end());
    return f;
  }
  std::string workloads() const { return parent_.path() + "/workloads"; }
  std::string agent_cgroup() const { return parent_.path() + "/agent"; }
  std::string ReadyField(const AgentProcess& a, const std::string& field) {
    auto j = nlohmann::json::parse(a.Get(admin_, "/ready"), nullptr, false);
    if (!j.is_object()) return "";
    return j["components"]["datapath"].value(field, "");
  }

  std::string name_;
  CgroupScope parent_;
  std::string pin_dir_;
  std::string admin_;
  std::string config_dir_;
  NetnsScope ns_;
};

TEST_F(AgentLifecycleTest, StopLeavesDatapathWorkingAndRestartAdoptsIt) {
  auto agent = std::make_unique<AgentProcess>(ns_.fd(), Flags());
  ASSERT_TRUE(agent->WaitHealthy(admin_))
      << RunCommand("cat " + agent->log_path());
  EXPECT_EQ(ReadyField(*agent, "pin_state"), "created");

  // Attached under --cgroup_root and --agent_cgroup, and nowhere else.
  EXPECT_EQ(AttachedPrograms(workloads()),
            (std::set<std::string>{"nm_connect4", "nm_connect6", "nm_sendmsg4",
                                   "nm_sendmsg6", "nm_recvmsg4", "nm_recvmsg6",
                                   "nm_getpeername4", "nm_getpeername6",
                                   "nm_sockops", "nm_ingress"}));
  EXPECT_EQ(AttachedPrograms(agent_cgroup()),
            (std::set<std::string>{"nm_sockops", "nm_getsockopt"}));
  EXPECT_TRUE(AttachedPrograms(Cgroup2Mount()).empty());
  EXPECT_TRUE(AttachedPrograms(parent_.path()).empty());

  int status = 0;
  std::string metrics = agent->Get(admin_, "/metrics", &status);
  EXPECT_EQ(status, 200);
  EXPECT_NE(metrics.find("nodemesh_bpf_proxy_rewrites_total"),
            std::string::npos);

  // A DIRECT service whose endpoint the test serves.
  const uint16_t endpoint_port = PickPort();
  net::UniqueFd endpoint;
  {
    NetnsScope::Enter in(ns_);
    endpoint = Listen(absl::StrCat("127.0.0.1:", endpoint_port));
  }
  auto maps = datapath::DatapathMaps::Open(pin_dir_);
  ASSERT_TRUE(maps.ok()) << maps.status();
  auto vip = datapath::ServiceAddress::Parse("127.10.9.1:7000");
  auto backend = datapath::ServiceAddress::Parse(
      absl::StrCat("127.0.0.1:", endpoint_port));
  nm_backend b{};
  std::memcpy(b.addr, backend->addr, 16);
  b.port = htons(endpoint_port);
  ASSERT_TRUE(maps->WriteBackends(61, {b}, 0).ok());
  ASSERT_TRUE(maps->UpsertService(*vip, {61, NM_ACTION_DIRECT, 0, 1}).ok());

  CgroupScope app(workloads() + "/app");
  ChildProcess before(app.path(), ns_.fd(), EchoClient);
  auto conn = AcceptWithin(endpoint.get());
  ASSERT_TRUE(conn.valid());
  EXPECT_TRUE(PingPong(conn.get(), 'a'));

  EXPECT_EQ(agent->Terminate(), 0) << RunCommand("cat " + agent->log_path());
  agent.reset();

  // The connection made before goes on; new connects are still steered.
  EXPECT_TRUE(PingPong(conn.get(), 'b'));
  ChildProcess after(app.path(), ns_.fd(), EchoClient);
  auto conn2 = AcceptWithin(endpoint.get());
  ASSERT_TRUE(conn2.valid()) << "datapath stopped steering without the agent";
  EXPECT_TRUE(PingPong(conn2.get(), 'c'));
  auto svc = maps->LookupService(*vip);
  ASSERT_TRUE(svc.ok() && svc->has_value());

  // A new agent adopts the pins as they are.
  AgentProcess second(ns_.fd(), Flags());
  ASSERT_TRUE(second.WaitHealthy(admin_))
      << RunCommand("cat " + second.log_path());
  EXPECT_EQ(ReadyField(second, "pin_state"), "adopted");
  // The maps are the agent's: it reconciles them with its model and
  // registry, so the entry this test wrote by hand (in no model) is gone,
  // while the connection made through it goes on.
  svc = maps->LookupService(*vip);
  ASSERT_TRUE(svc.ok());
  EXPECT_FALSE(svc->has_value());
  EXPECT_TRUE(PingPong(conn2.get(), 'd'));
  EXPECT_EQ(AttachedPrograms(workloads()).size(), 10u);
  EXPECT_EQ(second.Terminate(), 0);

  // Decommissioning: nothing attached, nothing pinned.
  AgentProcess cleanup(-1, Flags({"--cleanup"}));
  EXPECT_EQ(cleanup.WaitExit(), 0) << RunCommand("cat " + cleanup.log_path());
  EXPECT_TRUE(AttachedPrograms(workloads()).empty());
  EXPECT_TRUE(AttachedPrograms(agent_cgroup()).empty());
  EXPECT_FALSE(std::filesystem::exists(pin_dir_));
  conn.Reset();
  conn2.Reset();
}

TEST_F(AgentLifecycleTest, NewAgentBesideOldTakesAdminListenerOver) {
  AgentProcess first(ns_.fd(), Flags());
  ASSERT_TRUE(first.WaitHealthy(admin_))
      << RunCommand("cat " + first.log_path());
  AgentProcess second(ns_.fd(), Flags());
  ASSERT_TRUE(second.WaitReadyLine()) << RunCommand("cat " + second.log_path());
  // Both bound the same port (SO_REUSEPORT); the old one leaves, the new one
  // answers every request from then on.
  EXPECT_EQ(first.Terminate(), 0);
  for (int i = 0; i < 20; ++i) {
    int status = 0;
    second.Get(admin_, "/healthz", &status);
    ASSERT_EQ(status, 200) << "request " << i;
  }
  EXPECT_EQ(second.Terminate(), 0);
}

TEST_F(AgentLifecycleTest, RefusesToStartWithOneLineNamingTheCause) {
  // A pin dir that is not on a bpf filesystem.
  std::vector<std::string> flags = Flags();
  for (auto& f : flags)
    if (f.rfind("--bpf_pin_dir=", 0) == 0) f = "--bpf_pin_dir=/tmp/" + name_;
  AgentProcess bad_pins(ns_.fd(), flags);
  EXPECT_EQ(bad_pins.WaitExit(), 2);
  std::string log = RunCommand("cat " + bad_pins.log_path());
  EXPECT_NE(log.find("not on a bpf filesystem"), std::string::npos) << log;

  // Not root.
  int rc = 0;
  std::string out = RunCommand(
      absl::StrCat("setpriv --reuid=65534 --regid=65534 --clear-groups ",
                   NODEMESH_AGENT_BIN, " --bpf_pin_dir=", pin_dir_,
                   " --cgroup_root=", workloads(),
                   " --agent_cgroup=", agent_cgroup(), " 2>&1"),
      &rc);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("must run as root"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

}  // namespace
}  // namespace nodemesh::testing
