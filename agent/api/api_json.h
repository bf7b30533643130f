#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "agent/api/resource_store.h"
#include "agent/model/resource.h"

namespace nodemesh::api {

// The App Mesh restJson shapes (service model 2019-01-25) for the seven
// kinds, written and read with RapidJSON.

// The plural that names a kind's collection in URLs and List answers:
// "meshes", "virtualNodes", "routes", ...
std::string_view CollectionKey(model::ResourceKind kind);
// The ARN's word for a kind: "mesh", "virtualNode", "route", ...
std::string_view ArnKind(model::ResourceKind kind);

// The bare XxxData structure (the HTTP payload of Create/Describe/Update/
// Delete): names, spec, metadata, status.
std::string RenderData(const StoredResource& r);
// {"<collection>": [XxxRef...], "nextToken"?}.
std::string RenderList(model::ResourceKind kind, const ListPage& page);
// {"tags": [{"key","value"}...], "nextToken"?} for tags[begin, end).
std::string RenderTags(const Tags& tags, size_t begin, size_t end,
                       const std::string& next_token);

// The body of a Create or Update call.
struct WriteBody {
  std::string name;       // Create: the NameKey member; empty on Update
  std::string spec_json;  // compact; "{}" when an optional spec is absent
  Tags tags;              // Create only
};
// `operation` (e.g. "CreateVirtualNode") prefixes error messages.
absl::StatusOr<WriteBody> ParseWriteBody(std::string_view body,
                                         model::ResourceKind kind, bool create,
                                         std::string_view operation);
// TagResource's {"tags": [...]} and UntagResource's {"tagKeys": [...]}.
absl::StatusOr<Tags> ParseTagResourceBody(std::string_view body);
absl::StatusOr<std::vector<std::string>> ParseUntagResourceBody(
    std::string_view body);

// "arn:aws:appmesh:us-west-2:123456789012:mesh/shop/virtualNode/front" ->
// VirtualNode shop/front. Region and account are not checked.
absl::StatusOr<model::ResourceId> ResourceIdFromArn(std::string_view arn);

}  // namespace nodemesh::api
