#pragma once

// Makes explicit the values App Mesh applied without being asked, so the
// compiler and /config_dump see one complete spec. Every value filled in is
// recorded by its path relative to the spec (e.g.
// "httpRoute.timeout.perRequest") in the spec's defaulted_fields; values the
// user wrote are never changed. Idempotent.
//
// Cross-resource defaults (a node's ipPreference inherited from its mesh)
// are the compiler's, not this file's.

#include "agent/model/types.h"

namespace nodemesh::model {

void ApplyDefaults(AnySpec* spec);

void ApplyDefaults(MeshSpec* spec);
void ApplyDefaults(VirtualServiceSpec* spec);
void ApplyDefaults(VirtualRouterSpec* spec);
void ApplyDefaults(RouteSpec* spec);
void ApplyDefaults(VirtualNodeSpec* spec);
void ApplyDefaults(VirtualGatewaySpec* spec);
void ApplyDefaults(GatewayRouteSpec* spec);

// The per-request timeout App Mesh used when none was set (15 s).
inline constexpr Duration kDefaultPerRequestTimeout = {15, DurationUnit::kS};
// maxPendingRequests of an http connection pool when unset.
inline constexpr int32_t kDefaultMaxPendingRequests = 2147483647;

}  // namespace nodemesh::model
