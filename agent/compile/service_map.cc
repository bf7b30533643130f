#include "agent/compile/service_map.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace nodemesh::compile {
namespace {

using model::ResourceKind;

bool AttributesMatch(
    const std::vector<model::AwsCloudMapInstanceAttribute>& wanted,
    const std::map<std::string, std::string>& have) {
  for (const auto& a : wanted) {
    auto it = have.find(a.key);
    if (it == have.end() || it->second != a.value) return false;
  }
  return true;
}

nm_backend ToBackend(const net::SocketAddress& a) {
  datapath::ServiceAddress sa = datapath::ServiceAddress::From(a);
  nm_backend b{};
  std::memcpy(b.addr, sa.addr, sizeof(b.addr));
  b.port = htons(sa.port);
  return b;
}

bool DropAll(const model::Snapshot& snap, const std::string& mesh) {
  auto it = snap.resources.find(
      model::ResourceIdView(ResourceKind::kMesh, mesh, "", mesh));
  if (it == snap.resources.end()) return true;  // App Mesh's default
  const auto& spec = std::get<model::MeshSpec>(it->second->spec);
  return !spec.egress_filter ||
         spec.egress_filter->type == model::EgressFilterType::kDropAll;
}

}  // namespace

std::optional<uint16_t> WorkloadPort(const workload::Workload& w,
                                     uint16_t listener_port) {
  if (w.ports.empty() ||
      std::find(w.ports.begin(), w.ports.end(), listener_port) != w.ports.end())
    return listener_port;
  if (w.ports.size() == 1) return w.ports[0];
  return std::nullopt;
}

absl::flat_hash_map<std::string, const model::AwsCloudMapServiceDiscovery*>
CloudMapIndex(const ProxyConfig& config) {
  absl::flat_hash_map<std::string, const model::AwsCloudMapServiceDiscovery*>
      out;
  for (const Cluster& c : config.clusters) {
    if (c.cloud_map)
      out[absl::StrCat(c.mesh, "/", c.virtual_node)] = &*c.cloud_map;
  }
  return out;
}

std::vector<RegisteredEndpoint> ClusterEndpoints(
    const Cluster& cluster,
    const std::map<std::string, workload::Workload>& workloads,
    const absl::flat_hash_map<
        std::string, const model::AwsCloudMapServiceDiscovery*>& cloud_map_of) {
  std::vector<RegisteredEndpoint> out;
  for (const auto& [id, w] : workloads) {
    if (w.mesh != cluster.mesh) continue;
    bool member = w.virtual_node == cluster.virtual_node;
    if (!member && cluster.cloud_map) {
      // An instance of the same Cloud Map service, registered through
      // another virtual node that discovers by that service too.
      auto it = cloud_map_of.find(absl::StrCat(w.mesh, "/", w.virtual_node));
      member =
          it != cloud_map_of.end() &&
          it->second->namespace_name == cluster.cloud_map->namespace_name &&
          it->second->service_name == cluster.cloud_map->service_name &&
          AttributesMatch(cluster.cloud_map->attributes, w.attributes);
    }
    if (!member) continue;
    auto port = WorkloadPort(w, cluster.port);
    if (!port) continue;
    auto addr = net::SocketAddress::FromIpPort(w.address, *port);
    if (!addr.ok()) continue;
    // A workload both registered and declared in cluster/workloads.json
    // is one endpoint, not two (DESIGN: never double-counted).
    if (std::any_of(out.begin(), out.end(), [&](const RegisteredEndpoint& e) {
          return e.address == *addr;
        }))
      continue;
    out.push_back({*addr, w.local()});
  }
  return out;
}

ServiceMapContents CompileServiceMap(const ServiceMapInputs& in,
                                     std::vector<std::string>* warnings) {
  ServiceMapContents out;
  const ProxyConfig& config = *in.proxy;
  auto cloud_map_of = CloudMapIndex(config);

  for (const VirtualHost& h : config.virtual_hosts) {
    auto vip = in.vips->find(absl::StrCat(h.mesh, "/", h.virtual_service));
    if (vip == in.vips->end()) continue;
    std::string name = absl::AsciiStrToLower(h.virtual_service);
    // The first mesh wins (virtual hosts are in mesh order).
    out.dns_names.emplace(name, vip->second.address);
    ServiceMapEntry e;
    e.label = absl::StrCat(h.mesh, "/", h.virtual_service, ":", h.port);
    e.address = datapath::ServiceAddress::FromIpv4(vip->second.address, h.port,
                                                   IPPROTO_TCP);
    e.value.service_id = vip->second.service_id;
    e.value.action = NM_ACTION_PROXY;
    // DIRECT: one TCP route to one target whose endpoints all run here
    // with no TLS to terminate: nothing for the proxy to do.
    if (h.is_tcp() && h.tcp_routes.size() == 1 &&
        h.tcp_routes[0].targets.size() == 1) {
      const Cluster& c = config.clusters[h.tcp_routes[0].targets[0].cluster];
      auto eps = ClusterEndpoints(c, *in.workloads, cloud_map_of);
      bool all_local =
          !eps.empty() && std::all_of(eps.begin(), eps.end(),
                                      [](const auto& ep) { return ep.local; });
      if (all_local && !c.tls) {
        e.value.action = NM_ACTION_DIRECT;
        for (const auto& ep : eps) e.backends.push_back(ToBackend(ep.address));
        e.value.backend_count = static_cast<uint16_t>(
            std::min<size_t>(e.backends.size(), UINT16_MAX));
        ++out.direct_services;
      }
    }
    out.services.push_back(std::move(e));
  }

  // Workloads and what DROP_ALL lets them reach: their backends.
  for (const auto& [id, w] : *in.workloads) {
    if (!w.local() || w.cgroup_id == 0) continue;
    uint32_t wid = in.node_id(w.mesh, w.virtual_node);
    nm_workload v{};
    v.workload_id = wid;
    bool drop_all = DropAll(*in.snapshot, w.mesh);
    if (drop_all) v.flags |= NM_WORKLOAD_EGRESS_DROP_ALL;
    out.workloads[w.cgroup_id] = v;
    if (!drop_all) continue;
    auto node = in.snapshot->resources.find(model::ResourceIdView(
        ResourceKind::kVirtualNode, w.mesh, "", w.virtual_node));
    if (node == in.snapshot->resources.end()) {
      if (warnings)
        warnings->push_back(absl::StrCat(
            "workload ", id, ": virtual node ", w.mesh, "/", w.virtual_node,
            " is not in the model; under DROP_ALL it reaches no service"));
      continue;
    }
    const auto& spec = std::get<model::VirtualNodeSpec>(node->second->spec);
    for (const model::Backend& b : spec.backends) {
      if (!b.virtual_service) continue;
      auto vip = in.vips->find(
          absl::StrCat(w.mesh, "/", b.virtual_service->virtual_service_name));
      if (vip == in.vips->end()) continue;
      out.policy[{wid, vip->second.service_id}] = NM_POLICY_ALLOW;
    }
  }
  return out;
}

}  // namespace nodemesh::compile
