#pragma once

// A ResourceStore in memory, for the API tests only: no spec validation, no
// persistence; enough parent/child rules to produce every error shape.

#include <map>
#include <string>
#include <utility>

#include "agent/api/api_json.h"
#include "agent/api/resource_store.h"

namespace nodemesh::api::testing {

class MemoryResourceStore : public ResourceStore {
 public:
  absl::StatusOr<StoredResource> Create(const model::ResourceId& id,
                                        std::string spec_json,
                                        Tags tags) override {
    if (absl::Status st = CheckParents(id); !st.ok()) return st;
    if (items_.count(id) != 0) {
      return absl::AlreadyExistsError(id.ToString() + " already exists");
    }
    StoredResource r;
    r.id = id;
    r.spec_json = std::move(spec_json);
    r.tags = std::move(tags);
    r.metadata.arn = Arn(id);
    r.metadata.uid = "uid-" + std::to_string(++uid_);
    r.metadata.mesh_owner = r.metadata.resource_owner = "111122223333";
    r.metadata.created_at = r.metadata.last_updated_at = Now();
    items_[id] = r;
    return r;
  }

  absl::StatusOr<StoredResource> Update(const model::ResourceId& id,
                                        std::string spec_json) override {
    auto it = items_.find(id);
    if (it == items_.end()) return NotFound(id);
    it->second.spec_json = std::move(spec_json);
    it->second.metadata.version++;
    it->second.metadata.last_updated_at = Now();
    return it->second;
  }

  absl::StatusOr<StoredResource> Delete(const model::ResourceId& id) override {
    auto it = items_.find(id);
    if (it == items_.end()) return NotFound(id);
    for (const auto& [other, r] : items_) {
      if (other == id || other.mesh != id.mesh) continue;
      bool child = id.kind == model::ResourceKind::kMesh ||
                   (other.parent == id.name &&
                    ((id.kind == model::ResourceKind::kVirtualRouter &&
                      other.kind == model::ResourceKind::kRoute) ||
                     (id.kind == model::ResourceKind::kVirtualGateway &&
                      other.kind == model::ResourceKind::kGatewayRoute)));
      if (child) {
        return absl::FailedPreconditionError(id.ToString() + " still has " +
                                             other.ToString() +
                                             "; delete it first");
      }
    }
    StoredResource r = std::move(it->second);
    items_.erase(it);
    r.status = "DELETED";
    return r;
  }

  absl::StatusOr<StoredResource> Describe(
      const model::ResourceId& id) const override {
    auto it = items_.find(id);
    if (it == items_.end()) return NotFound(id);
    return it->second;
  }

  absl::StatusOr<ListPage> List(model::ResourceKind kind,
                                const std::string& mesh,
                                const std::string& parent, int limit,
                                const std::string& next_token) const override {
    if (kind != model::ResourceKind::kMesh) {
      model::ResourceId m{model::ResourceKind::kMesh, mesh, "", mesh};
      if (items_.count(m) == 0) return NotFound(m);
    }
    ListPage page;
    bool started = next_token.empty();
    for (const auto& [id, r] : items_) {
      if (id.kind != kind || (kind != model::ResourceKind::kMesh &&
                              (id.mesh != mesh || id.parent != parent))) {
        continue;
      }
      if (!started) {
        started = id.name == next_token;
        continue;
      }
      if (static_cast<int>(page.items.size()) == limit) {
        page.next_token = page.items.back().id.name;
        break;
      }
      page.items.push_back(r);
    }
    if (!started) return absl::InvalidArgumentError("invalid nextToken");
    return page;
  }

  absl::StatusOr<StoredResource> ReplaceTags(const model::ResourceId& id,
                                             Tags tags) override {
    auto it = items_.find(id);
    if (it == items_.end()) return NotFound(id);
    it->second.tags = std::move(tags);
    return it->second;
  }

  size_t size() const { return items_.size(); }

 private:
  static absl::Status NotFound(const model::ResourceId& id) {
    return absl::NotFoundError(id.ToString() + " not found");
  }

  static std::string Arn(const model::ResourceId& id) {
    std::string a = "arn:aws:appmesh:us-west-2:111122223333:mesh/" + id.mesh;
    if (id.kind == model::ResourceKind::kMesh) return a;
    if (id.kind == model::ResourceKind::kRoute) {
      a += "/virtualRouter/" + id.parent;
    } else if (id.kind == model::ResourceKind::kGatewayRoute) {
      a += "/virtualGateway/" + id.parent;
    }
    return a + "/" + std::string(ArnKind(id.kind)) + "/" + id.name;
  }

  absl::Status CheckParents(const model::ResourceId& id) const {
    if (id.kind == model::ResourceKind::kMesh) return absl::OkStatus();
    model::ResourceId m{model::ResourceKind::kMesh, id.mesh, "", id.mesh};
    if (items_.count(m) == 0) return NotFound(m);
    if (id.kind == model::ResourceKind::kRoute ||
        id.kind == model::ResourceKind::kGatewayRoute) {
      model::ResourceId p{id.kind == model::ResourceKind::kRoute
                              ? model::ResourceKind::kVirtualRouter
                              : model::ResourceKind::kVirtualGateway,
                          id.mesh, "", id.parent};
      if (items_.count(p) == 0) return NotFound(p);
    }
    return absl::OkStatus();
  }

  double Now() { return 1714557600.0 + ++tick_; }

  std::map<model::ResourceId, StoredResource> items_;
  int uid_ = 0;
  int tick_ = 0;
};

}  // namespace nodemesh::api::testing
