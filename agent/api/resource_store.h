#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/admin/admin_server.h"
#include "agent/model/resource.h"

namespace nodemesh::api {

using Tags = std::vector<std::pair<std::string, std::string>>;

// What App Mesh reports about a resource besides its spec.
struct ResourceMetadata {
  std::string arn;
  std::string uid;
  std::string mesh_owner;
  std::string resource_owner;
  int64_t version = 1;
  double created_at = 0;  // epoch seconds
  double last_updated_at = 0;
};

struct StoredResource {
  model::ResourceId id;
  std::string spec_json;  // the API-shape "spec" object as JSON text
  Tags tags;
  ResourceMetadata metadata;
  std::string status = "ACTIVE";  // "DELETED" in a Delete answer
};

struct ListPage {
  std::vector<StoredResource> items;
  std::string next_token;  // empty on the last page
};

// Where the App Mesh API keeps its resources. The agent's store validates
// specs, persists under <config_dir>/api/ and refuses names that user files
// already define; tests use an in-memory one.
//
// Status codes map to App Mesh errors (see ApiErrorFromStatus):
// InvalidArgument -> BadRequestException 400, NotFound -> NotFoundException
// 404, AlreadyExists -> ConflictException 409, FailedPrecondition ->
// ResourceInUseException 409, ResourceExhausted -> LimitExceededException
// 400, Unavailable -> ServiceUnavailableException 503, PermissionDenied ->
// ForbiddenException 403, others InternalServerErrorException 500.
//
// Called on the admin loop thread only.
class ResourceStore {
 public:
  virtual ~ResourceStore() = default;

  virtual absl::StatusOr<StoredResource> Create(const model::ResourceId& id,
                                                std::string spec_json,
                                                Tags tags) = 0;
  // Replaces the spec; bumps version and lastUpdatedAt.
  virtual absl::StatusOr<StoredResource> Update(const model::ResourceId& id,
                                                std::string spec_json) = 0;
  // Returns the resource as it was, with status "DELETED".
  virtual absl::StatusOr<StoredResource> Delete(
      const model::ResourceId& id) = 0;
  virtual absl::StatusOr<StoredResource> Describe(
      const model::ResourceId& id) const = 0;
  // Resources of `kind` in `mesh` (under `parent` for Routes and
  // GatewayRoutes; mesh is ignored for kMesh), in a stable order. `limit` is
  // 1..100; `next_token` is empty or a token from an earlier page.
  virtual absl::StatusOr<ListPage> List(
      model::ResourceKind kind, const std::string& mesh,
      const std::string& parent, int limit,
      const std::string& next_token) const = 0;
  // Replaces all tags (TagResource / UntagResource merge before calling).
  virtual absl::StatusOr<StoredResource> ReplaceTags(
      const model::ResourceId& id, Tags tags) = 0;
};

// An App Mesh error: HTTP status, the error code the AWS SDKs read from the
// x-amzn-ErrorType header, and the message.
struct ApiError {
  int http_status = 500;
  std::string type;
  std::string message;
};

ApiError ApiErrorFromStatus(const absl::Status& status);

// {"message": "..."} with x-amzn-ErrorType, as restJson services answer.
admin::AdminResponse ErrorResponse(const ApiError& error);
inline admin::AdminResponse ErrorResponse(const absl::Status& status) {
  return ErrorResponse(ApiErrorFromStatus(status));
}

}  // namespace nodemesh::api
