#pragma once

// Specs of Mesh, VirtualService and VirtualRouter (API 2019-01-25).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/model/types_common.h"

namespace nodemesh::model {

// "ALLOW_ALL" | "DROP_ALL".
enum class EgressFilterType { kAllowAll, kDropAll };
std::string_view EnumName(EgressFilterType v);

struct EgressFilter {
  EgressFilterType type = EgressFilterType::kDropAll;
  friend bool operator==(const EgressFilter&, const EgressFilter&) = default;
};

struct MeshServiceDiscovery {
  std::optional<IpPreference> ip_preference;  // "ipPreference"
  friend bool operator==(const MeshServiceDiscovery&,
                         const MeshServiceDiscovery&) = default;
};

struct MeshSpec {
  std::optional<EgressFilter> egress_filter;  // App Mesh default DROP_ALL
  std::optional<MeshServiceDiscovery> service_discovery;

  // Paths (relative to spec, e.g. "egressFilter.type") of the values that
  // ApplyDefaults() filled in; never encoded.
  std::vector<std::string> defaulted_fields;
  friend bool operator==(const MeshSpec&, const MeshSpec&) = default;
};

struct VirtualNodeServiceProvider {
  std::string virtual_node_name;  // "virtualNodeName", len 1..255
  friend bool operator==(const VirtualNodeServiceProvider&,
                         const VirtualNodeServiceProvider&) = default;
};

struct VirtualRouterServiceProvider {
  std::string virtual_router_name;  // "virtualRouterName", len 1..255
  friend bool operator==(const VirtualRouterServiceProvider&,
                         const VirtualRouterServiceProvider&) = default;
};

// Union: exactly one of virtualNode | virtualRouter.
struct VirtualServiceProvider {
  std::optional<VirtualNodeServiceProvider> virtual_node;
  std::optional<VirtualRouterServiceProvider> virtual_router;
  friend bool operator==(const VirtualServiceProvider&,
                         const VirtualServiceProvider&) = default;
};

struct VirtualServiceSpec {
  std::optional<VirtualServiceProvider> provider;  // absent: no provider yet
  std::vector<std::string> defaulted_fields;
  friend bool operator==(const VirtualServiceSpec&,
                         const VirtualServiceSpec&) = default;
};

struct VirtualRouterListener {
  PortMapping port_mapping;  // "portMapping"
  friend bool operator==(const VirtualRouterListener&,
                         const VirtualRouterListener&) = default;
};

struct VirtualRouterSpec {
  std::vector<VirtualRouterListener> listeners;
  std::vector<std::string> defaulted_fields;
  friend bool operator==(const VirtualRouterSpec&,
                         const VirtualRouterSpec&) = default;
};

}  // namespace nodemesh::model
