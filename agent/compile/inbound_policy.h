#pragma once

// Inbound enforcement, compiled: which listening ports of which local
// workloads the kernel guards (nm_inbound). A virtual node listener with tls
// mode STRICT admits only the agent's connections, so that dialling a
// workload directly cannot bypass the proxy's mTLS and authorization;
// PERMISSIVE admits everyone and has direct connections counted apart;
// DISABLED or no tls puts nothing in the map.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "agent/model/snapshot.h"
#include "agent/workload/workload.h"
#include "nodemesh/abi.h"

namespace nodemesh::compile {

// (workload cgroup id, listening port in host order) -> entry.
using InboundPolicy = std::map<std::pair<uint64_t, uint16_t>, nm_inbound>;

// For every local workload with a cgroup, each listener of its virtual node
// with tls mode STRICT or PERMISSIVE, on the port the workload serves that
// listener on (WorkloadPort). Two listeners on one workload port: STRICT
// wins, with a warning. `node_id` gives (mesh, virtual node) -> workload id.
InboundPolicy CompileInboundPolicy(
    const model::Snapshot& snapshot,
    const std::map<std::string, workload::Workload>& workloads,
    const std::function<uint32_t(const std::string&, const std::string&)>&
        node_id,
    std::vector<std::string>* warnings);

// "strict", "permissive"; "" for anything else.
const char* InboundModeName(uint32_t mode);

}  // namespace nodemesh::compile
