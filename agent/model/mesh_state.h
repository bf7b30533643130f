#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

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

using ResourceMap = std::map<ResourceId, std::shared_ptr<const Resource>>;

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
