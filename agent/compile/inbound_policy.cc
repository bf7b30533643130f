#include "agent/compile/inbound_policy.h"

#include "absl/strings/str_cat.h"
#include "agent/compile/service_map.h"

namespace nodemesh::compile {

const char* InboundModeName(uint32_t mode) {
  switch (mode) {
    case NM_INBOUND_STRICT:
      return "strict";
    case NM_INBOUND_PERMISSIVE:
      return "permissive";
  }
  return "";
}

InboundPolicy CompileInboundPolicy(
    const model::Snapshot& snapshot,
    const std::map<std::string, workload::Workload>& workloads,
    const std::function<uint32_t(const std::string&, const std::string&)>&
        node_id,
    std::vector<std::string>* warnings) {
  InboundPolicy out;
  for (const auto& [id, w] : workloads) {
    if (!w.local() || w.cgroup_id == 0) continue;
    auto node = snapshot.resources.find(model::ResourceIdView(
        model::ResourceKind::kVirtualNode, w.mesh, "", w.virtual_node));
    if (node == snapshot.resources.end()) continue;
    const auto& spec = std::get<model::VirtualNodeSpec>(node->second->spec);
    for (const model::Listener& l : spec.listeners) {
      if (!l.tls) continue;
      uint8_t mode = l.tls->mode == model::TlsMode::kStrict ? NM_INBOUND_STRICT
                     : l.tls->mode == model::TlsMode::kPermissive
                         ? NM_INBOUND_PERMISSIVE
                         : 0;
      if (mode == 0) continue;
      uint16_t listener_port = static_cast<uint16_t>(l.port_mapping.port);
      auto port = WorkloadPort(w, listener_port);
      if (!port) {
        if (warnings)
          warnings->push_back(absl::StrCat(
              "workload ", id, ": serves none of its ports as listener port ",
              listener_port, " of ", w.mesh, "/", w.virtual_node,
              "; nothing to enforce there"));
        continue;
      }
      nm_inbound value{};
      value.mode = mode;
      value.workload_id = node_id(w.mesh, w.virtual_node);
      auto [it, inserted] = out.emplace(std::pair{w.cgroup_id, *port}, value);
      if (inserted || it->second.mode == mode) continue;
      if (warnings)
        warnings->push_back(absl::StrCat(
            "workload ", id, ": port ", *port,
            " serves listeners of different tls modes; STRICT applies"));
      it->second.mode = NM_INBOUND_STRICT;
    }
  }
  return out;
}

}  // namespace nodemesh::compile
