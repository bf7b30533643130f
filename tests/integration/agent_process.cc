#include "tests/integration/agent_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace nodemesh::testing {

std::string RunCommand(const std::string& command, int* exit_code) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0)
    out.append(buf.data(), n);
  int status = ::pclose(p);
  if (exit_code) *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

AgentProcess::AgentProcess(int netns_fd, std::vector<std::string> flags,
                           const std::string& hosts_file) {
  static int n = 0;
  log_path_ = absl::StrCat("/tmp/nmtest-agent-", ::getpid(), "-", n++, ".log");
  // State and the control socket default to machine-wide paths; tests keep
  // theirs beside their pin dir, so a restart within a test finds its state
  // and two tests never share it.
  auto has = [&flags](const std::string& name) {
    for (const auto& f : flags)
      if (f.rfind(name + "=", 0) == 0) return true;
    return false;
  };
  std::string pins = "default";
  for (const auto& f : flags)
    if (f.rfind("--bpf_pin_dir=", 0) == 0) pins = f.substr(f.rfind('/') + 1);
  std::string state = absl::StrCat("/tmp/nmtest-state-", pins);
  if (!has("--state_dir")) flags.push_back("--state_dir=" + state);
  if (!has("--admin_socket"))
    flags.push_back(absl::StrCat("--admin_socket=", state, "/agent.sock"));
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) _exit(121);
    if (!hosts_file.empty() &&
        (::unshare(CLONE_NEWNS) != 0 ||
         ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
         ::mount(hosts_file.c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) !=
             0)) {
      _exit(122);
    }
    int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> argv;
    std::string bin = NODEMESH_AGENT_BIN;
    argv.push_back(bin.data());
    for (auto& f : flags) argv.push_back(f.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    _exit(127);
  }
  netns_path_ = absl::StrCat("/proc/", pid_, "/ns/net");
}

AgentProcess::~AgentProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  // NMTEST_KEEP_LOGS=1 keeps the agent's log for a failure to be read.
  if (::getenv("NMTEST_KEEP_LOGS") == nullptr) ::unlink(log_path_.c_str());
}

std::string AgentProcess::Get(const std::string& admin_address,
                              const std::string& path, int* status) const {
  // A real client, run in the agent's network namespace.
  std::string out = RunCommand(
      absl::StrCat("nsenter --net=", netns_path_,
                   " curl -s --max-time 5 -w '\\n%{http_code}' http://",
                   admin_address, path, " 2>/dev/null"));
  auto nl = out.rfind('\n');
  int code = 0;
  if (nl != std::string::npos) {
    (void)absl::SimpleAtoi(out.substr(nl + 1), &code);
    out.resize(nl);
  }
  if (status) *status = code;
  return out;
}

bool AgentProcess::WaitHealthy(const std::string& admin_address,
                               int timeout_ms) const {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    Get(admin_address, "/healthz", &status);
    if (status == 200) return true;
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

bool AgentProcess::WaitReadyLine(int timeout_ms) const {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream log(log_path_);
    std::string line;
    while (std::getline(log, line))
      if (line.rfind("nodemesh-agent ready", 0) == 0) return true;
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int AgentProcess::WaitExit(int timeout_ms) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

int AgentProcess::Terminate(int timeout_ms) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  return WaitExit(timeout_ms);
}

}  // namespace nodemesh::testing
