#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/model/resource.h"
#include "agent/model/types.h"

namespace nodemesh::model {

// One decoded resource, immutable once built; snapshots share the ones that
// did not change.
struct Resource {
  ResourceId id;
  AnySpec spec;  // defaults applied
  SourceLocation where;
  std::string spec_path = "spec";  // where the spec is in the source file
  std::vector<std::pair<std::string, std::string>> tags;
  uint64_t content_hash = 0;  // of the resource as written
  bool implicit = false;      // a Mesh created because none was defined
};

struct ResourceIdHash {
  size_t operator()(const ResourceIdView& v) const {
    std::hash<std::string_view> h;
    size_t out = h(v.name);
    out = out * 1099511628211ULL ^ h(v.parent);
    out = out * 1099511628211ULL ^ h(v.mesh);
    return out * 31 + static_cast<size_t>(v.kind);
  }
};

// Keys are views into the mapped Resource's own id (see ResourceIdView):
// insert with Insert(), never with a view of anything else. Unordered:
// validation looks up every reference of every resource on each reload;
// what users see in order (/config_dump, List) is sorted there.
using ResourceMap =
    absl::flat_hash_map<ResourceIdView, std::shared_ptr<const Resource>,
                        ResourceIdHash>;

// The map's entries sorted by id, for output that must be stable.
std::vector<const Resource*> SortedResources(const ResourceMap& map);

// Adds `r` keyed by its own id; false (and nothing added) if the id is taken.
inline std::pair<ResourceMap::iterator, bool> Insert(
    ResourceMap* map, std::shared_ptr<const Resource> r) {
  ResourceIdView key(r->id);
  return map->emplace(key, std::move(r));
}

// Creates a Mesh for every mesh name that resources use but no Mesh object
// defines, with a warning (DESIGN: "created implicitly, with a warning").
void AddImplicitMeshes(ResourceMap* resources, Diagnostics* diags);

// App Mesh's cross-resource rules over a whole state: references that must
// resolve (providers, route parents and targets, backends, gateway route
// parents and targets) and listener port and protocol consistency (a route
// whose targets listen on another port or protocol is an error here, not a
// silent blackhole as in App Mesh). Field-level rules are the decoder's.
void ValidateReferences(const ResourceMap& resources, Diagnostics* diags);

}  // namespace nodemesh::model
