#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/workload/workload.h"

namespace nodemesh::workload {

struct RegistryOptions {
  std::string state_dir;    // --state_dir: workloads.json lives here
  std::string cgroup_root;  // --cgroup_root: agent-made cgroups go below
  // A cgroup that has never held a process ends its registration after
  // this long (the launcher died between registering and moving in).
  std::chrono::seconds unpopulated_grace{60};
};

// The workloads of this node and the endpoints declared for others, with
// the numeric ids the datapath keys them by. Main thread only. Every change
// is written to <state_dir>/workloads.json (write, fsync, rename) before it
// is acknowledged, so registrations survive an agent restart.
class WorkloadRegistry {
 public:
  explicit WorkloadRegistry(RegistryOptions options);

  // Reads the state file; a registration whose cgroup is gone is dropped.
  absl::Status Load();

  // Registers a workload: validates, creates its cgroup under cgroup_root
  // when the request names none, persists. `ports_of_node` gives the
  // virtual node's listener ports (the default for `ports`).
  absl::StatusOr<Workload> Add(const WorkloadRequest& request,
                               const std::vector<uint16_t>& ports_of_node);
  // Ends a registration (its agent-made cgroup is removed when empty).
  absl::Status Remove(const std::string& id);

  // Endpoints declared in <config_dir>/cluster/workloads.json; replaces the
  // previous set. Not persisted: the file is the truth.
  void SetDeclared(std::vector<Workload> declared);

  // Ends registrations whose cgroup emptied (or never filled within the
  // grace). Returns true when anything changed.
  bool Sweep();

  // Registered and declared, by id.
  const std::map<std::string, Workload>& workloads() const { return all_; }
  // A stable number per (mesh, virtual node), > 0: the datapath's
  // workload_id. Every workload's virtual node has one (allocated when it
  // is registered, declared or loaded, and persisted); 0 for others.
  uint32_t VirtualNodeId(const std::string& mesh, const std::string& vn) const {
    auto it = vn_ids_.find(mesh + "/" + vn);
    return it == vn_ids_.end() ? 0 : it->second;
  }
  // The reverse, for labels: id -> "mesh/virtual node".
  const std::map<uint32_t, std::pair<std::string, std::string>>&
  virtual_node_names() const {
    return vn_names_;
  }

  // Called after every change (main thread).
  void Subscribe(std::function<void()> cb) {
    subscribers_.push_back(std::move(cb));
  }
  uint64_t generation() const { return generation_; }

 private:
  absl::Status Save() const;
  // Gives (mesh, vn) an id if it has none; true when it got one now (the
  // caller saves).
  bool AllocateId(const std::string& mesh, const std::string& vn);
  void Changed();
  void Rebuild();
  static bool CgroupPopulated(const std::string& path, bool* exists);
  static bool CgroupHasRun(const std::string& path);

  RegistryOptions options_;
  std::map<std::string, Workload> registered_;
  std::map<std::string, Workload> declared_;
  std::map<std::string, Workload> all_;
  std::map<std::string, uint32_t> vn_ids_;  // "mesh/vn" -> id
  std::map<uint32_t, std::pair<std::string, std::string>> vn_names_;
  uint64_t next_id_ = 1;
  uint64_t generation_ = 0;
  std::vector<std::function<void()>> subscribers_;
};

}  // namespace nodemesh::workload
