#pragma once

#include <map>
#include <string>

#include "agent/api/resource_store.h"
#include "agent/model/model_source.h"

namespace nodemesh::api {

// The App Mesh API's resources as agent-owned files under
// <config_dir>/api/, one per resource in the describe-* shape (with its
// metadata), beside the user's own files. In cluster mode those "files" are
// etcd keys (model::ModelSource::UseExternal): a write is then a
// compare-and-swap on the key's revision, and a stale one fails with
// ConflictException. Every write is validated against
// the whole model before it is made (model::ModelSource::Apply), so the API
// can never install a state the config dir would reject, and it is live when
// the call returns. A resource that a user's file defines cannot be changed
// through the API: ConflictException names the file.
class ConfigDirStore : public ResourceStore {
 public:
  // `account` goes into ARNs and owners (App Mesh's 12-digit account id).
  ConfigDirStore(model::ModelSource* model, std::string account,
                 std::string region);

  absl::StatusOr<StoredResource> Create(const model::ResourceId& id,
                                        std::string spec_json,
                                        Tags tags) override;
  absl::StatusOr<StoredResource> Update(const model::ResourceId& id,
                                        std::string spec_json) override;
  absl::StatusOr<StoredResource> Delete(const model::ResourceId& id) override;
  absl::StatusOr<StoredResource> Describe(
      const model::ResourceId& id) const override;
  absl::StatusOr<ListPage> List(model::ResourceKind kind,
                                const std::string& mesh,
                                const std::string& parent, int limit,
                                const std::string& next_token) const override;
  absl::StatusOr<StoredResource> ReplaceTags(const model::ResourceId& id,
                                             Tags tags) override;

  // Where the API keeps a resource, relative to the config dir.
  static std::string FileFor(const model::ResourceId& id);

 private:
  // The resource, or NotFound; FailedPrecondition-free checks only.
  absl::StatusOr<std::shared_ptr<const model::Resource>> Find(
      const model::ResourceId& id) const;
  // Conflict when a user's file defines the resource.
  absl::Status RequireApiOwned(const model::Resource& r) const;
  absl::Status RequireParents(const model::ResourceId& id) const;
  // Validates and writes one resource file; returns the stored view.
  absl::StatusOr<StoredResource> Write(const model::ResourceId& id,
                                       const std::string& spec_json,
                                       const Tags& tags,
                                       const ResourceMetadata& metadata);
  StoredResource View(const model::Resource& r) const;
  ResourceMetadata MetadataOf(const model::Resource& r) const;
  std::string Arn(const model::ResourceId& id) const;

  model::ModelSource* model_;
  std::string account_, region_;
  // Metadata of API-owned resources, kept with them in their files and
  // cached here after the first read.
  // (content hash, metadata): a resource changed elsewhere is read again.
  mutable std::map<model::ResourceId, std::pair<uint64_t, ResourceMetadata>>
      metadata_;
};

}  // namespace nodemesh::api
