#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/datapath/datapath_maps.h"

namespace nodemesh::datapath {

struct DatapathOptions {
  std::string pin_dir;       // --bpf_pin_dir
  std::string cgroup_root;   // --cgroup_root: workloads
  std::string agent_cgroup;  // --agent_cgroup: the agent (proxy) itself
  nm_config config{};        // written into nm_config on every start
};

// How Open() found the pins.
enum class PinState {
  kCreated,   // nothing was pinned: loaded and attached afresh
  kAdopted,   // the same object was pinned and attached: nothing loaded
  kUpgraded,  // another build was pinned: new programs swapped into the
              // pinned links atomically, maps kept
};

const char* PinStateName(PinState state);

// The kernel half of nodemesh, loaded from the generated skeleton: programs
// attached to the two cgroups through bpf_links that are pinned beside the
// maps, so the datapath outlives the agent (SIGTERM leaves it working) and a
// new agent adopts it with no gap.
class Datapath {
 public:
  // Checks what the kernel must offer (one line naming what is missing),
  // mounts bpffs if needed, creates both cgroups, loads or adopts the pins,
  // attaches, and writes options.config.
  static absl::StatusOr<std::unique_ptr<Datapath>> Open(
      const DatapathOptions& options);

  // Detaches every link pinned under pin_dir and removes every pin and the
  // directory itself. Works whether or not an agent still runs.
  static absl::Status Cleanup(const std::string& pin_dir);

  // Root, BTF, and the program and map types we need: an error naming the
  // first thing missing.
  static absl::Status CheckKernel();

  DatapathMaps& maps() { return maps_; }
  const DatapathMaps& maps() const { return maps_; }
  PinState pin_state() const { return pin_state_; }
  // (attach point, program) pairs, e.g. ("cgroup_root", "nm_connect4").
  const std::vector<std::pair<std::string, std::string>>& attachments() const {
    return attachments_;
  }

 private:
  Datapath(DatapathMaps maps, PinState state,
           std::vector<std::pair<std::string, std::string>> attachments)
      : maps_(std::move(maps)),
        pin_state_(state),
        attachments_(std::move(attachments)) {}

  DatapathMaps maps_;
  PinState pin_state_;
  std::vector<std::pair<std::string, std::string>> attachments_;
};

// A stable id of the BPF object this binary carries (FNV-1a of its ELF).
uint64_t BpfBuildId();

}  // namespace nodemesh::datapath
