#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "agent/admin/admin_server.h"
#include "agent/api/resource_store.h"
#include "agent/api/sigv4.h"

namespace nodemesh::api {

// The App Mesh control-plane API (restJson, 2019-01-25) on the admin
// address, so `aws appmesh ... --endpoint-url http://<admin>` and Terraform
// work unchanged: Create/Describe/Update/Delete/List for the seven kinds,
// ListTagsForResource, TagResource and UntagResource. Requests are
// authenticated per ApiAuthConfig, then served from a ResourceStore.
// Runs on the admin loop thread.
class AppMeshApi {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  // Reads the credentials file when one is configured; fails if it is
  // unreadable or holds no keys.
  static absl::StatusOr<std::unique_ptr<AppMeshApi>> Create(
      ResourceStore* store, const ApiAuthConfig& auth);

  AppMeshApi(ResourceStore* store, ApiAuthConfig auth,
             std::optional<CredentialSet> credentials);

  AppMeshApi(const AppMeshApi&) = delete;
  AppMeshApi& operator=(const AppMeshApi&) = delete;

  // Serves every path under /v20190125/ on `server`. This object must
  // outlive the server's use of it.
  void Register(admin::AdminServer* server);

  // One request, as the admin server hands it over.
  admin::AdminResponse Serve(const admin::AdminRequest& req);

  // For tests: the time SigV4 dates are checked against.
  void set_clock(Clock clock) { clock_ = std::move(clock); }

 private:
  // Auth verdict; nullopt means go ahead.
  std::optional<admin::AdminResponse> Authenticate(
      const admin::AdminRequest& req) const;

  ResourceStore* const store_;
  const ApiAuthConfig auth_;
  const std::optional<CredentialSet> credentials_;
  Clock clock_;
};

}  // namespace nodemesh::api
