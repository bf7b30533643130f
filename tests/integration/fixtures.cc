#include "tests/integration/fixtures.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/datapath/kernel_fs.h"
#include "agent/net/socket.h"
#include "gtest/gtest.h"

namespace nodemesh::testing {
namespace {

void Die(const std::string& what) {
  fprintf(stderr, "fixture: %s: %s\n", what.c_str(), strerror(errno));
  abort();
}

net::SocketAddress ParseOrDie(const std::string& text) {
  auto addr = net::SocketAddress::Parse(text);
  if (!addr.ok()) Die("bad address " + text);
  return *addr;
}

}  // namespace

std::string UniqueName(const std::string& what) {
  static std::atomic<int> n{0};
  return absl::StrCat("nmtest-", ::getpid(), "-", n++, "-", what);
}

std::string Cgroup2Mount() {
  auto m = datapath::FindCgroup2Mount();
  if (!m.ok()) Die("no cgroup2 mount");
  return *m;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint16_t PickPort() {
  static std::mt19937 rng(std::random_device{}());
  return static_cast<uint16_t>(20000 + rng() % 40000);
}

CgroupScope::CgroupScope(const std::string& path) : path_(path) {
  std::filesystem::create_directories(path_);
}

uint64_t CgroupScope::id() const { return *datapath::CgroupId(path_); }

CgroupScope::~CgroupScope() {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return;
  { std::ofstream(path_ + "/cgroup.kill") << "1"; }
  for (int i = 0; i < 200; ++i) {
    std::ifstream events(path_ + "/cgroup.events");
    std::string line;
    bool populated = false;
    while (std::getline(events, line))
      if (line == "populated 1") populated = true;
    if (!populated) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Children first (depth-first), then the directory itself.
  std::vector<std::string> dirs;
  for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
       it != std::filesystem::recursive_directory_iterator(); ++it)
    if (it->is_directory()) dirs.push_back(it->path().string());
  std::sort(dirs.rbegin(), dirs.rend());
  for (const auto& d : dirs) ::rmdir(d.c_str());
  if (::rmdir(path_.c_str()) != 0)
    fprintf(stderr, "fixture: cannot remove cgroup %s: %s\n", path_.c_str(),
            strerror(errno));
}

NetnsScope::NetnsScope() {
  net::UniqueFd previous(
      ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!previous.valid()) Die("open netns");
  if (::unshare(CLONE_NEWNET) != 0) Die("unshare(CLONE_NEWNET)");
  fd_.Reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  // lo up: 127.0.0.1 and ::1 exist from here on.
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) Die("SIOCGIFFLAGS lo");
  ifr.ifr_flags |= IFF_UP;
  if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) Die("SIOCSIFFLAGS lo");
  ::close(s);
  if (::setns(previous.get(), CLONE_NEWNET) != 0) Die("setns back");
}

std::string NetnsScope::path() const {
  return absl::StrCat("/proc/", ::getpid(), "/fd/", fd_.get());
}

NetnsScope::Enter::Enter(const NetnsScope& ns)
    : previous_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
  if (::setns(ns.fd(), CLONE_NEWNET) != 0) Die("setns into test netns");
}

NetnsScope::Enter::~Enter() {
  if (::setns(previous_.get(), CLONE_NEWNET) != 0) Die("setns back");
}

ProcessInCgroup::ProcessInCgroup(const std::string& path) {
  previous_ = Cgroup2Mount() + *datapath::ProcessCgroup(::getpid());
  if (!datapath::MoveToCgroup(path, ::getpid()).ok()) Die("move to " + path);
}

ProcessInCgroup::~ProcessInCgroup() {
  if (!datapath::MoveToCgroup(previous_, ::getpid()).ok())
    Die("move back to " + previous_);
}

ChildProcess::ChildProcess(const std::string& cgroup, int netns_fd,
                           std::function<int()> fn) {
  pid_ = ::fork();
  if (pid_ < 0) Die("fork");
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!cgroup.empty() && !datapath::MoveToCgroup(cgroup, ::getpid()).ok())
      _exit(120);
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) _exit(121);
    _exit(fn());
  }
}

int ChildProcess::Wait(int timeout_ms) {
  if (pid_ <= 0) return -1;
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

DatapathScope::DatapathScope(nm_config config, bool enter_agent_cgroup)
    : name_(UniqueName("dp")) {
  parent_ = std::make_unique<CgroupScope>(Cgroup2Mount() + "/" + name_);
  workloads_ = std::make_unique<CgroupScope>(parent_->path() + "/workloads");
  agent_ = std::make_unique<CgroupScope>(parent_->path() + "/agent");
  pin_dir_ = "/sys/fs/bpf/" + name_;
  datapath::DatapathOptions options{pin_dir_, workloads_->path(),
                                    agent_->path(), config};
  auto dp = datapath::Datapath::Open(options);
  if (!dp.ok()) {
    // Thrown, not aborted: the cgroups made so far are removed on unwind,
    // and GoogleTest reports the failure.
    datapath::Datapath::Cleanup(pin_dir_).IgnoreError();
    throw std::runtime_error("loading the datapath: " + dp.status().ToString());
  }
  datapath_ = std::move(*dp);
  if (enter_agent_cgroup)
    in_agent_ = std::make_unique<ProcessInCgroup>(agent_->path());
}

std::string DatapathScope::AddWorkload(uint32_t workload_id, uint32_t flags) {
  auto leaf = std::make_unique<CgroupScope>(
      absl::StrCat(workloads_->path(), "/wl", workload_leaves_.size()));
  nm_workload w{workload_id, flags};
  if (!maps().UpsertWorkload(leaf->id(), w).ok()) Die("register workload");
  std::string path = leaf->path();
  workload_leaves_.push_back(std::move(leaf));
  return path;
}

DatapathScope::~DatapathScope() {
  in_agent_.reset();
  datapath_.reset();
  if (auto s = datapath::Datapath::Cleanup(pin_dir_); !s.ok())
    fprintf(stderr, "fixture: cleanup: %s\n", s.ToString().c_str());
  workload_leaves_.clear();
  agent_.reset();
  workloads_.reset();
  parent_.reset();
}

net::UniqueFd Listen(const std::string& address, int backlog) {
  net::SocketAddress addr = ParseOrDie(address);
  net::UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), addr.addr(), addr.addr_len()) != 0)
    Die("bind " + address);
  if (::listen(fd.get(), backlog) != 0) Die("listen " + address);
  return fd;
}

net::UniqueFd Connect(const std::string& address,
                      const std::string& bind_address) {
  net::SocketAddress addr = ParseOrDie(address);
  net::UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!bind_address.empty()) {
    net::SocketAddress local = ParseOrDie(bind_address);
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), local.addr(), local.addr_len()) != 0)
      return net::UniqueFd();
  }
  if (::connect(fd.get(), addr.addr(), addr.addr_len()) != 0) {
    int err = errno;
    fd.Reset();
    errno = err;
  }
  return fd;
}

bool WriteAll(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= n;
  }
  return true;
}

bool ReadAll(int fd, void* data, size_t len) {
  char* p = static_cast<char*>(data);
  while (len > 0) {
    ssize_t n = ::recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= n;
  }
  return true;
}

std::string AddressOf(const sockaddr_storage& ss) {
  socklen_t len =
      ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  auto addr = net::SocketAddress::FromSockaddr(
      reinterpret_cast<const sockaddr*>(&ss), len);
  return addr.ok() ? addr->ToString() : "<unspecified>";
}

uint64_t MetricSum(const std::string& text, const std::string& family,
                   const std::vector<std::string>& labels) {
  uint64_t sum = 0;
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(l, family + "{") &&
        !absl::StartsWith(l, family + " "))
      continue;
    bool all = true;
    for (const auto& want : labels)
      if (!absl::StrContains(l, want)) all = false;
    if (!all) continue;
    uint64_t v = 0;
    if (absl::SimpleAtoi(l.substr(l.rfind(' ') + 1), &v)) sum += v;
  }
  return sum;
}

}  // namespace nodemesh::testing
