#pragma once

// The spec of every App Mesh resource kind (API 2019-01-25), as decoded by
// json_codec.h. Tags, names and the request envelope are not part of a spec.

#include <variant>

#include "agent/model/resource.h"
#include "agent/model/types_common.h"        // IWYU pragma: export
#include "agent/model/types_gateway.h"       // IWYU pragma: export
#include "agent/model/types_mesh.h"          // IWYU pragma: export
#include "agent/model/types_route.h"         // IWYU pragma: export
#include "agent/model/types_virtual_node.h"  // IWYU pragma: export

namespace nodemesh::model {

// The alternative's index equals static_cast<int>(ResourceKind).
using AnySpec =
    std::variant<MeshSpec, VirtualServiceSpec, VirtualRouterSpec, RouteSpec,
                 VirtualNodeSpec, VirtualGatewaySpec, GatewayRouteSpec>;

// The kind whose spec `spec` holds.
inline ResourceKind KindOf(const AnySpec& spec) {
  return static_cast<ResourceKind>(spec.index());
}

// The paths ApplyDefaults() filled in, whatever the kind.
const std::vector<std::string>& DefaultedFields(const AnySpec& spec);

}  // namespace nodemesh::model
