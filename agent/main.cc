// nodemesh-agent: the per-host agent. Only wiring lives here.
#include <iostream>

#include "agent/agent.h"
#include "agent/agent_config.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "nodemesh-agent: loads the nodemesh datapath and serves the node's "
      "mesh traffic");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);

  auto config = nodemesh::AgentConfigFromFlags();
  if (!config.ok()) {
    std::cerr << "nodemesh-agent: " << config.status().message() << "\n";
    return 2;
  }
  nodemesh::Agent agent(*config);
  absl::Status status = config->cleanup ? agent.Cleanup() : agent.Run();
  if (!status.ok()) {
    std::cerr << "nodemesh-agent: " << status.message() << "\n";
    return 2;
  }
  return 0;
}
