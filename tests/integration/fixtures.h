#pragma once

// RAII fixtures for integration tests that touch the kernel: each test gets
// its own cgroups, network namespace, pin dir and ports, and everything is
// removed in destructors, also when an assertion fails midway. Names start
// with "nmtest-" so the suite's leak check can find anything left behind.

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/datapath/datapath.h"
#include "agent/net/unique_fd.h"

namespace nodemesh::testing {

// A unique "nmtest-<pid>-<n>" name.
std::string UniqueName(const std::string& what);

// A cgroup v2 directory created under the cgroup2 mount (or a parent); on
// destruction its processes are killed (cgroup.kill) and it is removed.
class CgroupScope {
 public:
  explicit CgroupScope(const std::string& path);
  ~CgroupScope();
  CgroupScope(const CgroupScope&) = delete;
  CgroupScope& operator=(const CgroupScope&) = delete;
  const std::string& path() const { return path_; }
  uint64_t id() const;

 private:
  std::string path_;
};

// A fresh network namespace with only lo (up), no routes: a redirect that
// fails gets ENETUNREACH instead of leaving the machine.
class NetnsScope {
 public:
  NetnsScope();
  ~NetnsScope() = default;
  int fd() const { return fd_.get(); }
  // This process's handle on the namespace, for `nsenter --net=` and
  // `ip ... netns`: valid while this object lives.
  std::string path() const;

  // Runs the calling thread inside the namespace until destroyed; sockets
  // created meanwhile belong to it.
  class Enter {
   public:
    explicit Enter(const NetnsScope& ns);
    ~Enter();

   private:
    net::UniqueFd previous_;
  };

 private:
  net::UniqueFd fd_;
};

// Moves this test process into a cgroup for its lifetime (sockets created
// meanwhile belong to that cgroup, as the agent's do) and back out after.
class ProcessInCgroup {
 public:
  explicit ProcessInCgroup(const std::string& path);
  ~ProcessInCgroup();

 private:
  std::string previous_;
};

// A forked child that joins `cgroup` and `netns`, then runs fn; its return
// value is the exit status. Killed if still running on destruction.
class ChildProcess {
 public:
  ChildProcess(const std::string& cgroup, int netns_fd,
               std::function<int()> fn);
  ~ChildProcess();
  // Exit status, or -1 on timeout / abnormal end.
  int Wait(int timeout_ms = 20000);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// The real datapath loaded into a private pin dir, attached to a private
// workload cgroup and agent cgroup, with this process moved into the agent
// cgroup (it plays the proxy). Cleaned up in reverse.
class DatapathScope {
 public:
  explicit DatapathScope(nm_config config, bool enter_agent_cgroup = true);
  ~DatapathScope();

  datapath::DatapathMaps& maps() { return datapath_->maps(); }
  const std::string& pin_dir() const { return pin_dir_; }
  const CgroupScope& workloads() const { return *workloads_; }
  const CgroupScope& agent() const { return *agent_; }
  // A workload cgroup under the root, registered with this workload id.
  std::string AddWorkload(uint32_t workload_id, uint32_t flags);

 private:
  std::string name_;
  std::string pin_dir_;
  std::unique_ptr<CgroupScope> parent_, workloads_, agent_;
  std::vector<std::unique_ptr<CgroupScope>> workload_leaves_;
  std::unique_ptr<ProcessInCgroup> in_agent_;
  std::unique_ptr<datapath::Datapath> datapath_;
};

// The cgroup2 mount point (aborts the test binary if there is none).
std::string Cgroup2Mount();

// A file's bytes ("" when it cannot be read).
std::string ReadFile(const std::string& path);

// A pseudo-random port in [20000, 60000) for tests in their own netns.
uint16_t PickPort();

// Socket helpers that fail loudly. Addresses as "127.0.0.1:80", "[::1]:80".
net::UniqueFd Listen(const std::string& address, int backlog = 128);
// Returns the fd, or an invalid fd with errno set.
net::UniqueFd Connect(const std::string& address,
                      const std::string& bind_address = "");
bool WriteAll(int fd, const void* data, size_t len);
bool ReadAll(int fd, void* data, size_t len);
std::string AddressOf(const sockaddr_storage& ss);

// The sum of a Prometheus family's samples (in /metrics text) whose labels
// contain all of `labels` (each as `name="value"`); 0 when none.
uint64_t MetricSum(const std::string& text, const std::string& family,
                   const std::vector<std::string>& labels);

}  // namespace nodemesh::testing
