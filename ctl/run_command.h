#pragma once

#include <map>
#include <string>
#include <vector>

namespace nodemesh::ctl {

struct RunOptions {
  std::string admin_socket;  // "unix:<path>"
  std::string mesh;
  std::string virtual_node;
  std::string address;
  std::string netns;
  std::vector<int> ports;
  std::map<std::string, std::string> attributes;
};

// `nodemeshctl run`: registers a workload with the agent, moves this process
// into the cgroup the agent made (and into the network namespace, when
// given), then execs `command`, so its output and exit status are the
// command's own. Returns only on failure (exit status for main).
int RunWorkload(const RunOptions& options,
                const std::vector<std::string>& command);

// `nodemeshctl workloads`: the agent's workloads, one line each.
int PrintWorkloads(const std::string& agent);

}  // namespace nodemesh::ctl
