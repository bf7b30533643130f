#pragma once

#include <string>

#include "agent/model/json.h"
#include "agent/model/resource.h"
#include "agent/model/snapshot.h"

namespace nodemesh::model {

// /config_dump: the snapshot being served, every resource in the App Mesh
// API shape (as describe-* prints it) with the defaults nodemesh applied
// listed per resource, plus where each came from and the warnings.
std::string ConfigDumpJson(const Snapshot& snapshot);

// One resource in the API shape: {"meshName", "<kind>Name", "spec", "tags"?}.
void ResourceToApiJson(const Resource& r, rapidjson::Value* out,
                       rapidjson::Document::AllocatorType& alloc);

}  // namespace nodemesh::model
