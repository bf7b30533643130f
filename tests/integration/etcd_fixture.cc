#include "tests/integration/etcd_fixture.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/net/unique_fd.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/agent_process.h"
#include "tests/integration/fixtures.h"

namespace nodemesh::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kEtcd[] = "/usr/bin/etcd";
constexpr char kEtcdctl[] = "/usr/bin/etcdctl";

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit ", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return absl::StrCat("signal ", strsignal(WTERMSIG(status)));
  return absl::StrCat("status ", status);
}

}  // namespace

EtcdServer::EtcdServer(Options options)
    : options_(std::move(options)), dir_("/tmp/" + UniqueName("etcd")) {
  if (options_.netns_path.empty() && options_.netns_fd >= 0)
    options_.netns_path =
        absl::StrCat("/proc/", ::getpid(), "/fd/", options_.netns_fd);
  if (options_.client_port == 0) options_.client_port = PickPort();
  while (options_.peer_port == 0 || options_.peer_port == options_.client_port)
    options_.peer_port = PickPort();
  std::filesystem::create_directories(dir_);
}

EtcdServer::~EtcdServer() {
  Kill();
  // NMTEST_KEEP_LOGS=1 keeps the log (beside the directory, which goes).
  if (::getenv("NMTEST_KEEP_LOGS") != nullptr) {
    std::error_code ec;
    std::filesystem::copy_file(
        log_path(), dir_ + ".log",
        std::filesystem::copy_options::overwrite_existing, ec);
    if (!ec)
      fprintf(stderr, "fixture: etcd's log kept in %s.log\n", dir_.c_str());
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  if (ec)
    fprintf(stderr, "fixture: cannot remove %s: %s\n", dir_.c_str(),
            ec.message().c_str());
}

std::string EtcdServer::endpoint() const {
  const bool v6 = absl::StrContains(options_.ip, ':');
  return absl::StrCat("http://", v6 ? "[" : "", options_.ip, v6 ? "]" : "", ":",
                      options_.client_port);
}

bool EtcdServer::Start(int timeout_ms) {
  Reap();
  if (pid_ > 0) return true;
  if (options_.netns_path.empty() && !absl::StartsWith(options_.ip, "127.")) {
    ADD_FAILURE() << "EtcdServer: " << options_.ip
                  << " in the test's own network namespace: use an address "
                     "in 127.0.0.0/8 there, or give etcd a namespace";
    return false;
  }
  net::UniqueFd netns;
  if (!options_.netns_path.empty()) {
    netns.Reset(::open(options_.netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns.valid()) {
      ADD_FAILURE() << "EtcdServer: cannot open the network namespace "
                    << options_.netns_path << ": " << strerror(errno);
      return false;
    }
  }

  // Everything the child needs is made before fork(): it only calls
  // async-signal-safe functions before exec.
  const std::string host = absl::StrContains(options_.ip, ':')
                               ? "[" + options_.ip + "]"
                               : options_.ip;
  const std::string client = endpoint();
  const std::string peer =
      absl::StrCat("http://", host, ":", options_.peer_port);
  std::vector<std::string> args = {
      kEtcd,
      "--name=" + options_.name,
      "--data-dir=" + data_dir(),
      "--listen-client-urls=" + client,
      "--advertise-client-urls=" + client,
      "--listen-peer-urls=" + peer,
      "--initial-advertise-peer-urls=" + peer,
      "--initial-cluster=" + options_.name + "=" + peer,
      "--initial-cluster-state=new",  // ignored once the data dir has a WAL
      "--logger=zap",
      "--log-level=warn"};
  // etcd takes ETCD_* variables as flags: none of the test's may reach it.
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e)
    if (!absl::StartsWith(*e, "ETCD")) env.emplace_back(*e);
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  net::UniqueFd log(::open(log_path().c_str(),
                           O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  net::UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!log.valid() || !devnull.valid()) {
    ADD_FAILURE() << "EtcdServer: cannot open " << log_path() << ": "
                  << strerror(errno);
    return false;
  }
  const std::string banner =
      absl::StrCat("---- nmtest: ", absl::StrJoin(args, " "), "\n");
  (void)!::write(log.get(), banner.data(), banner.size());

  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) {
    pid_ = -1;
    ADD_FAILURE() << "EtcdServer: fork: " << strerror(errno);
    return false;
  }
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(122);  // the test died meanwhile
    if (netns.valid() && ::setns(netns.get(), CLONE_NEWNET) != 0) _exit(121);
    ::dup2(devnull.get(), 0);
    ::dup2(log.get(), 1);
    ::dup2(log.get(), 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }

  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (Healthy()) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      ADD_FAILURE() << "etcd at " << client << " exited ("
                    << DescribeStatus(status) << ") before it was healthy; "
                    << log_path() << " ends:\n"
                    << LogTail();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "etcd at " << client << " was not healthy within "
                << timeout_ms << " ms; " << log_path() << " ends:\n"
                << LogTail();
  Kill();
  return false;
}

void EtcdServer::Reap() {
  if (pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == pid_) pid_ = -1;
}

bool EtcdServer::running() const {
  if (pid_ <= 0) return false;
  // WNOWAIT: look, but leave the child for Reap(), Stop() or Kill().
  siginfo_t info{};
  if (::waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
    return false;
  return info.si_pid == 0;
}

bool EtcdServer::Stop(int timeout_ms) {
  Reap();
  if (pid_ <= 0) return true;
  ::kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "etcd did not exit within " << timeout_ms
                << " ms of SIGTERM; killed. " << log_path() << " ends:\n"
                << LogTail();
  Kill();
  return false;
}

void EtcdServer::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

bool EtcdServer::Restart() {
  // Started again even when it had to be killed: a kill loses nothing
  // either (etcd syncs its WAL before it answers a write).
  const bool stopped = Stop();
  return Start() && stopped;
}

std::string EtcdServer::LogTail(int lines) const {
  std::vector<std::string> all =
      absl::StrSplit(ReadFile(log_path()), '\n', absl::SkipEmpty());
  const size_t from =
      all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  std::string out;
  for (size_t i = from; i < all.size(); ++i)
    absl::StrAppend(&out, all[i], "\n");
  return out;
}

std::string EtcdServer::Run(const std::string& command, int* exit_code) const {
  if (options_.netns_path.empty()) return RunCommand(command, exit_code);
  return RunCommand(absl::StrCat("nsenter --net=", options_.netns_path,
                                 " sh -c ", ShellQuote(command)),
                    exit_code);
}

std::string EtcdServer::Etcdctl(const std::string& args, int* exit_code) const {
  // env -i: an ETCDCTL_ENDPOINTS in the test's environment would clash
  // with --endpoints (etcdctl refuses both).
  return Run(absl::StrCat("/usr/bin/env -i ETCDCTL_API=3 ", kEtcdctl,
                          " --endpoints=", endpoint(),
                          " --dial-timeout=2s --command-timeout=5s ", args),
             exit_code);
}

bool EtcdServer::Healthy() const {
  return absl::StrContains(
      Run(absl::StrCat("curl -s --max-time 2 ", endpoint(), "/health")),
      "\"health\":\"true\"");
}

bool EtcdServer::Put(const std::string& key, const std::string& value) const {
  int code = -1;
  std::string out = Etcdctl(
      absl::StrCat("put -- ", ShellQuote(key), " ", ShellQuote(value)), &code);
  if (code == 0 && out == "OK\n") return true;
  ADD_FAILURE() << "etcdctl put " << key << " exited " << code << ": " << out
                << "\n"
                << log_path() << " ends:\n"
                << LogTail();
  return false;
}

std::optional<std::string> EtcdServer::Get(const std::string& key) const {
  auto kvs = Range(key, false);
  auto it = kvs.find(key);
  if (it == kvs.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, std::string> EtcdServer::GetPrefix(
    const std::string& prefix) const {
  return Range(prefix, true);
}

std::map<std::string, std::string> EtcdServer::Range(const std::string& key,
                                                     bool prefix) const {
  int code = -1;
  std::string out =
      Etcdctl(absl::StrCat("get -w json ", prefix ? "--prefix " : "", "-- ",
                           ShellQuote(key)),
              &code);
  std::map<std::string, std::string> kvs;
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  if (code != 0 || !j.is_object()) {
    ADD_FAILURE() << "etcdctl get " << key << " exited " << code << ": " << out
                  << "\n"
                  << log_path() << " ends:\n"
                  << LogTail();
    return kvs;
  }
  // etcdctl -w json: keys and values in base64; an empty value is left out.
  for (const nlohmann::json& kv : j.value("kvs", nlohmann::json::array())) {
    std::string k, v;
    if (!absl::Base64Unescape(kv.value("key", ""), &k) ||
        !absl::Base64Unescape(kv.value("value", ""), &v)) {
      ADD_FAILURE() << "etcdctl get " << key << ": bad base64 in " << out;
      continue;
    }
    kvs[k] = v;
  }
  return kvs;
}

int EtcdServer::Delete(const std::string& key) const {
  int code = -1;
  std::string out = Etcdctl("del -- " + ShellQuote(key), &code);
  int deleted = -1;
  if (code != 0 ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(out), &deleted)) {
    ADD_FAILURE() << "etcdctl del " << key << " exited " << code << ": " << out
                  << "\n"
                  << log_path() << " ends:\n"
                  << LogTail();
    return -1;
  }
  return deleted;
}

}  // namespace nodemesh::testing
