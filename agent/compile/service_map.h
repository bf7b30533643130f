#pragma once

// The datapath half of compilation: which service addresses connect4
// rewrites and how (nm_services, nm_backends), which cgroups are which
// workloads (nm_workloads), what DROP_ALL lets each reach (nm_policy), and the
// names the mesh DNS answers. Built on the main thread from the proxy's
// compiled tables, the VIPs and the workload registry.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/compile/proxy_config.h"
#include "agent/datapath/datapath_maps.h"
#include "agent/dns/vip_allocator.h"
#include "agent/model/snapshot.h"
#include "agent/net/socket.h"
#include "agent/workload/workload.h"
#include "nodemesh/abi.h"

namespace nodemesh::compile {

// The port a workload serves a listener port on: the listener's own when
// the workload lists it (or lists none), else the workload's single port.
std::optional<uint16_t> WorkloadPort(const workload::Workload& w,
                                     uint16_t listener_port);

// An endpoint of a cluster from the workload registry.
struct RegisteredEndpoint {
  net::SocketAddress address;
  bool local = false;  // on this node
};

// The registered endpoints of `cluster`: workloads registered for its
// virtual node, and for awsCloudMap the instances of its namespace and
// service whose attributes match. `cloud_map_of` maps "mesh/vn" to the
// awsCloudMap discovery of that virtual node (where it has one).
std::vector<RegisteredEndpoint> ClusterEndpoints(
    const Cluster& cluster,
    const std::map<std::string, workload::Workload>& workloads,
    const absl::flat_hash_map<
        std::string, const model::AwsCloudMapServiceDiscovery*>& cloud_map_of);

// "mesh/vn" -> its awsCloudMap discovery, from the compiled clusters.
absl::flat_hash_map<std::string, const model::AwsCloudMapServiceDiscovery*>
CloudMapIndex(const ProxyConfig& config);

struct ServiceMapEntry {
  datapath::ServiceAddress address;
  nm_service value{};
  std::vector<nm_backend> backends;  // DIRECT only
  std::string label;                 // "mesh/service:port", for logs
};

struct ServiceMapContents {
  std::vector<ServiceMapEntry> services;
  std::map<uint64_t, nm_workload> workloads;  // by cgroup id
  std::map<std::pair<uint32_t, uint32_t>, nm_policy_verdict> policy;
  // Mesh DNS: virtual service name -> VIP (host order). A name in several
  // meshes answers with the first mesh's VIP (by mesh name).
  absl::flat_hash_map<std::string, uint32_t> dns_names;
  size_t direct_services = 0;
};

struct ServiceMapInputs {
  const model::Snapshot* snapshot = nullptr;
  const ProxyConfig* proxy = nullptr;
  const std::map<std::string, dns::Vip>* vips = nullptr;  // "mesh/vs"
  const std::map<std::string, workload::Workload>* workloads = nullptr;
  // (mesh, virtual node) -> workload_id.
  std::function<uint32_t(const std::string&, const std::string&)> node_id;
};

ServiceMapContents CompileServiceMap(const ServiceMapInputs& in,
                                     std::vector<std::string>* warnings);

}  // namespace nodemesh::compile
