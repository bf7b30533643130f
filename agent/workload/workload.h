#pragma once

// A workload: processes (one cgroup) that run as one App Mesh virtual node on
// this node, or an endpoint declared for another node or launcher.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace nodemesh::workload {

// What a launcher asks for (POST /workloads, the DESIGN contract).
struct WorkloadRequest {
  std::string mesh;
  std::string virtual_node;
  std::string address;          // "" : 127.0.0.1
  std::vector<uint16_t> ports;  // empty: the virtual node's listener ports
  std::string cgroup;           // "" : the agent creates one
  std::string netns;            // "" : the node's network namespace
  std::map<std::string, std::string> attributes;

  // Reads the request body; an error names the field.
  static absl::StatusOr<WorkloadRequest> FromJson(const nlohmann::json& j);
};

struct Workload {
  std::string id;
  std::string mesh;
  std::string virtual_node;
  std::string address = "127.0.0.1";
  std::vector<uint16_t> ports;
  std::string cgroup;      // absolute path; "" for declared endpoints
  uint64_t cgroup_id = 0;  // what bpf_get_current_cgroup_id() returns
  std::string netns;
  std::map<std::string, std::string> attributes;
  std::string node;            // "" : this node
  std::string origin = "api";  // api | file | etcd (another node's)
  bool owns_cgroup = false;    // created by the agent; removed at the end
  bool populated = false;      // has held a process: ends when it empties
  int64_t registered_at = 0;   // unix seconds

  bool local() const { return node.empty(); }
  nlohmann::json ToJson() const;
  static absl::StatusOr<Workload> FromJson(const nlohmann::json& j);
};

}  // namespace nodemesh::workload
