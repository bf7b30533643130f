#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "agent/model/k8s_manifest.h"
#include "agent/model/resource.h"

namespace nodemesh::model {

// Reads App Mesh resources in the API shape from JSON (or YAML of the same
// shape) text, in every form users have them:
//   - as `aws appmesh create-*` takes it: {"meshName", "virtualNodeName",
//     "spec", "tags"?};
//   - as `describe-*` prints it: {"virtualNode": {..., "metadata", "status"}};
//   - a JSON array of either.
// The kind comes from the name keys present. A spec-only file ({"spec": ...},
// as most walkthrough files are) needs the kind and names from the caller:
// `fallback` (kind set) supplies them; without it such a file is an error.
struct ApiJsonFallback {
  bool set = false;
  ResourceId id;
};

void ParseApiShapeText(std::string_view text, bool yaml,
                       const SourceLocation& where,
                       const ApiJsonFallback& fallback,
                       std::vector<ApiShapeResource>* out, Diagnostics* diags);

}  // namespace nodemesh::model
