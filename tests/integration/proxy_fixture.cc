#include "tests/integration/proxy_fixture.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace nodemesh::testing {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

Upstreams::Upstreams(int netns_fd, std::vector<Spec> specs,
                     std::vector<std::string> wrapper,
                     const std::string& server,
                     std::vector<std::string> server_args) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return;
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::setns(netns_fd, CLONE_NEWNET) != 0) _exit(121);
    ::dup2(out[1], 1);
    std::vector<std::string> args = wrapper;
    args.push_back("/usr/bin/python3");
    args.push_back(server);
    if (server != NODEMESH_UPSTREAM_SERVER) args.push_back("serve");
    for (std::string& a : server_args) args.push_back(std::move(a));
    // One process per host: the script binds all its servers to one.
    args.push_back("--host");
    args.push_back(specs.empty() ? "127.0.0.1" : specs.front().host);
    for (const Spec& s : specs) {
      args.push_back("--name");
      args.push_back(s.name);
      args.push_back("--port");
      args.push_back(std::to_string(s.port));
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(out[1]);
  std::string text;
  auto deadline = Clock::now() + std::chrono::seconds(15);
  while (ports_.size() < specs.size() && Clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, 100) != 1) continue;
    char buf[512];
    ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = text.find('\n')) != std::string::npos) {
      std::vector<std::string> f = absl::StrSplit(text.substr(0, nl), ' ');
      text.erase(0, nl + 1);
      uint32_t port = 0;
      if (f.size() == 3 && f[0] == "ready" && absl::SimpleAtoi(f[2], &port))
        ports_[f[1]] = static_cast<uint16_t>(port);
    }
  }
  ::close(out[0]);
  if (ports_.size() < specs.size())
    ADD_FAILURE() << "upstream_server.py did not get ready";
}

Upstreams::~Upstreams() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

ProxyNode::ProxyNode()
    : name_(UniqueName("proxy")),
      parent_(Cgroup2Mount() + "/" + name_),
      pin_dir_("/sys/fs/bpf/" + name_),
      admin_(absl::StrCat("127.0.0.1:", PickPort())),
      config_dir_("/tmp/" + name_ + "-config"),
      outbound_port_(PickPort()) {
  parent_scope_ = std::make_unique<CgroupScope>(parent_);
}

ProxyNode::~ProxyNode() {
  agent_.reset();
  upstreams_.clear();
  std::vector<std::string> flags = Flags();
  flags.push_back("--cleanup");
  for (int attempt = 0; attempt < 2; ++attempt) {
    AgentProcess cleanup(-1, flags);
    int status = cleanup.WaitExit(30000);
    if (status == 0) break;
    std::ifstream log(cleanup.log_path());
    std::stringstream ss;
    ss << log.rdbuf();
    ADD_FAILURE() << "--cleanup exited " << status << ":\n" << ss.str();
  }
  std::filesystem::remove_all(config_dir_);
  std::filesystem::remove(config_dir_ + ".hosts");
  std::filesystem::remove_all(state_dir());
}

std::vector<std::string> ProxyNode::Flags() const {
  return {"--cgroup_root=" + workloads_cgroup(),
          "--agent_cgroup=" + parent_ + "/agent",
          "--bpf_pin_dir=" + pin_dir_,
          "--admin_address=" + admin_,
          "--config_dir=" + config_dir_,
          "--outbound_port=" + std::to_string(outbound_port_),
          "--gateway_address=127.0.0.1",
          "--api_auth=none",
          "--workers=2",
          "--drain_seconds=2"};
}

void Upstreams::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

Upstreams* ProxyNode::AddWorkloadUpstreams(const std::string& mesh,
                                           const std::string& vn,
                                           std::vector<Upstreams::Spec> specs) {
  std::string host = specs.empty() ? "127.0.0.1" : specs.front().host;
  std::vector<std::string> wrapper = {NODEMESH_CTL_BIN,
                                      "run",
                                      "--admin_socket=" + admin_socket(),
                                      "--mesh=" + mesh,
                                      "--virtual-node=" + vn,
                                      "--address=" + host,
                                      "--"};
  upstreams_.push_back(
      std::make_unique<Upstreams>(ns_.fd(), std::move(specs), wrapper));
  return upstreams_.back().get();
}

std::string ProxyNode::RunAsWorkload(const std::string& mesh,
                                     const std::string& vn,
                                     const std::string& command,
                                     int* exit_code) const {
  return Run(
      absl::StrCat(NODEMESH_CTL_BIN, " run --admin_socket=", admin_socket(),
                   " --mesh=", mesh, " --virtual-node=", vn, " -- sh -c ",
                   ShellQuote(command)),
      exit_code);
}

Upstreams* ProxyNode::AddUpstreams(std::vector<Upstreams::Spec> specs) {
  upstreams_.push_back(std::make_unique<Upstreams>(ns_.fd(), std::move(specs)));
  return upstreams_.back().get();
}

Upstreams* ProxyNode::AddGrpcUpstreams(std::vector<Upstreams::Spec> specs,
                                       std::vector<std::string> server_args) {
  upstreams_.push_back(std::make_unique<Upstreams>(
      ns_.fd(), std::move(specs), std::vector<std::string>{},
      NODEMESH_GRPC_PEER, std::move(server_args)));
  return upstreams_.back().get();
}

std::string ProxyNode::GrpcCall(const std::string& args, int* exit_code) const {
  return Run(absl::StrCat("/usr/bin/python3 ", NODEMESH_GRPC_PEER, " call ",
                          args, " 2>&1"),
             exit_code);
}

bool ProxyNode::Start(const nlohmann::json& model,
                      std::vector<std::string> extra_flags) {
  std::filesystem::create_directories(config_dir_);
  if (!model.is_null())
    std::ofstream(config_dir_ + "/model.json") << model.dump(2);
  std::vector<std::string> flags = Flags();
  flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
  std::string hosts_file;
  if (!hosts_.empty()) {
    hosts_file = config_dir_ + ".hosts";
    std::ofstream(hosts_file) << "127.0.0.1 localhost\n" << hosts_ << "\n";
  }
  started_flags_ = std::move(flags);
  started_hosts_file_ = hosts_file;
  return StartAgent();
}

bool ProxyNode::StartAgent() {
  agent_ = std::make_unique<AgentProcess>(ns_.fd(), started_flags_,
                                          started_hosts_file_);
  if (agent_->WaitReadyLine() && agent_->WaitHealthy(admin_)) return true;
  std::ifstream log(agent_->log_path());
  std::stringstream ss;
  ss << log.rdbuf();
  ADD_FAILURE() << "agent did not start:\n" << ss.str();
  return false;
}

void ProxyNode::KillAgent() {
  if (agent_ == nullptr || agent_->pid() <= 0) return;
  ::kill(agent_->pid(), SIGKILL);
  agent_->WaitExit();
}

bool ProxyNode::RestartAgent() { return StartAgent(); }

std::string ProxyNode::Run(const std::string& command, int* exit_code) const {
  // The namespace by this process's fd, not the agent's pid: agents come
  // and go (restart tests) while the namespace stays.
  return RunCommand(absl::StrCat("nsenter --net=", ns_.path(), " ", command),
                    exit_code);
}

std::string ProxyNode::Curl(const std::string& args, int* exit_code) const {
  return Run("curl -s --max-time 20 " + args, exit_code);
}

nlohmann::json ProxyNode::UpstreamStats(uint16_t port,
                                        const std::string& host) const {
  return nlohmann::json::parse(
      Curl(absl::StrCat("http://", host, ":", port, "/__stats")), nullptr,
      false);
}

nlohmann::json ProxyNode::AdminJson(const std::string& path) const {
  return nlohmann::json::parse(
      Run(absl::StrCat("curl -s --max-time 5 http://", admin_, path)), nullptr,
      false);
}

std::string ProxyNode::Metrics() const {
  return Run(absl::StrCat("curl -s --max-time 5 http://", admin_, "/metrics"));
}

RawClient::RawClient(const NetnsScope& netns, uint16_t port) {
  NetnsScope::Enter in(netns);
  fd_ = Connect(absl::StrCat("127.0.0.1:", port));
}

RawResponse RawClient::Exchange(std::string_view bytes, int timeout_ms) {
  RawResponse r;
  if (!fd_.valid() || !WriteAll(fd_.get(), bytes.data(), bytes.size()))
    return r;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t head_end = std::string::npos;
  size_t need = std::string::npos;
  while (Clock::now() < deadline) {
    if (head_end == std::string::npos) {
      head_end = buffered_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        r.head = buffered_.substr(0, head_end);
        std::vector<std::string> first = absl::StrSplit(r.head, ' ');
        if (first.size() >= 2) (void)absl::SimpleAtoi(first[1], &r.status);
        need = 0;
        for (absl::string_view line : absl::StrSplit(r.head, "\r\n")) {
          auto colon = line.find(':');
          if (colon == line.npos) continue;
          std::string name(line.substr(0, colon));
          for (char& c : name) c = static_cast<char>(std::tolower(c));
          if (name == "content-length")
            (void)absl::SimpleAtoi(line.substr(colon + 1), &need);
        }
      }
    }
    if (head_end != std::string::npos &&
        buffered_.size() >= head_end + 4 + need) {
      r.body = buffered_.substr(head_end + 4, need);
      buffered_.erase(0, head_end + 4 + need);
      return r;
    }
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 50) != 1) continue;
    char buf[16384];
    ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    buffered_.append(buf, static_cast<size_t>(n));
  }
  r.status = 0;
  return r;
}

bool RawClient::ClosedWithin(int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 50) != 1) continue;
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n <= 0) return true;
  }
  return false;
}

RawResponse RawExchange(const NetnsScope& netns, uint16_t port,
                        std::string_view bytes, int close_wait_ms) {
  RawClient c(netns, port);
  RawResponse r = c.Exchange(bytes);
  r.closed = c.ClosedWithin(close_wait_ms);
  return r;
}

}  // namespace nodemesh::testing
