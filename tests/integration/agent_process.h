#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace nodemesh::testing {

// Runs a command and returns its stdout (stderr goes to the test log).
std::string RunCommand(const std::string& command, int* exit_code = nullptr);
// One word for sh, whatever it holds (quotes, CR and LF included).
std::string ShellQuote(const std::string& s);

// The real nodemesh-agent binary, started in a network namespace (by fd)
// with the given flags; SIGKILLed on destruction if still running.
class AgentProcess {
 public:
  // With `hosts_file`, the agent runs in a mount namespace of its own where
  // that file is /etc/hosts (names for dns service discovery in tests).
  AgentProcess(int netns_fd, std::vector<std::string> flags,
               const std::string& hosts_file = "");
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  pid_t pid() const { return pid_; }
  // GET on the admin address through curl inside the agent's namespace;
  // returns the body, or "" with *status 0 when nothing answered.
  std::string Get(const std::string& admin_address, const std::string& path,
                  int* status = nullptr) const;
  // Polls /healthz until it answers 200.
  bool WaitHealthy(const std::string& admin_address,
                   int timeout_ms = 15000) const;
  // Waits for the agent's "ready" line (printed once it listens), so a test
  // knows this agent, not another on the same port, is serving.
  bool WaitReadyLine(int timeout_ms = 15000) const;
  // SIGTERM, then the exit status (-1: did not exit within the timeout).
  int Terminate(int timeout_ms = 15000);
  // Waits for exit without a signal (for commands such as --cleanup).
  int WaitExit(int timeout_ms = 15000);
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  std::string netns_path_;
  std::string log_path_;
};

}  // namespace nodemesh::testing
