#pragma once

#include <memory>

#include "absl/status/status.h"
#include "agent/agent_config.h"

namespace nodemesh {

// Wires the agent's parts together on the main (control) thread: the
// datapath, the admin endpoint, and the lifecycle (SIGTERM drains and exits
// 0 leaving the datapath pinned).
class Agent {
 public:
  explicit Agent(AgentConfig config) : config_(std::move(config)) {}

  // Runs until SIGTERM or SIGINT, then drains. An error means the agent
  // could not start; its message names the cause.
  absl::Status Run();

  // --cleanup: detach and unpin everything, remove the agent's cgroups when
  // they are empty.
  absl::Status Cleanup();

 private:
  AgentConfig config_;
};

}  // namespace nodemesh
