#include "agent/api/config_dir_store.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "agent/api/api_json.h"
#include "agent/model/config_dump.h"
#include "agent/model/json.h"
#include "agent/model/json_codec.h"

namespace nodemesh::api {
namespace {

using model::Resource;
using model::ResourceId;
using model::ResourceKind;

constexpr char kApiDir[] = "api/";

double Now() {
  return std::chrono::duration<double>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A name as a path segment: App Mesh names may hold characters a path must
// not ('/', a leading '.'); those are percent-encoded.
std::string Segment(const std::string& name) {
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c) || c == '-' || c == '_' || (c == '.' && !out.empty())) {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string NewUid() {
  static std::mt19937_64 rng(std::random_device{}());
  char buf[37];
  uint64_t a = rng(), b = rng();
  std::snprintf(
      buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx",
      static_cast<uint32_t>(a >> 32), static_cast<uint32_t>(a >> 16) & 0xffff,
      static_cast<uint32_t>(a) & 0xffff, static_cast<uint32_t>(b >> 48),
      static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

rapidjson::Value Str(const std::string& s,
                     rapidjson::Document::AllocatorType& a) {
  return rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()),
                          a);
}

std::string Errors(const std::vector<model::Diagnostic>& errors) {
  std::string out;
  size_t shown = 0;
  for (const auto& d : errors) {
    if (shown++ == 5) {
      out += "; and " + std::to_string(errors.size() - 5) + " more";
      break;
    }
    if (!out.empty()) out += "; ";
    // The API's caller knows the resource; keep field and message.
    out +=
        (d.field_path.empty() ? d.resource : d.field_path) + ": " + d.message;
  }
  return out;
}

}  // namespace

ConfigDirStore::ConfigDirStore(model::ModelSource* model, std::string account,
                               std::string region)
    : model_(model), account_(std::move(account)), region_(std::move(region)) {}

std::string ConfigDirStore::FileFor(const ResourceId& id) {
  std::string path = std::string(kApiDir) + Segment(id.mesh) + "/" +
                     std::string(model::KindName(id.kind)) + "/";
  if (!id.parent.empty()) path += Segment(id.parent) + "/";
  return path + Segment(id.name) + ".json";
}

std::string ConfigDirStore::Arn(const ResourceId& id) const {
  std::string a =
      "arn:aws:appmesh:" + region_ + ":" + account_ + ":mesh/" + id.mesh;
  if (id.kind == ResourceKind::kMesh) return a;
  if (id.kind == ResourceKind::kRoute) a += "/virtualRouter/" + id.parent;
  if (id.kind == ResourceKind::kGatewayRoute)
    a += "/virtualGateway/" + id.parent;
  return a + "/" + std::string(ArnKind(id.kind)) + "/" + id.name;
}

absl::StatusOr<std::shared_ptr<const Resource>> ConfigDirStore::Find(
    const ResourceId& id) const {
  auto snap = model_->current();
  auto it = snap->resources.find(id);
  if (it == snap->resources.end())
    return absl::NotFoundError(id.ToString() + " not found");
  return it->second;
}

absl::Status ConfigDirStore::RequireApiOwned(const Resource& r) const {
  if (r.where.file.rfind(kApiDir, 0) == 0) return absl::OkStatus();
  if (r.implicit)
    return absl::AlreadyExistsError(
        r.id.ToString() +
        " exists implicitly (resources in the config dir "
        "name it); define it in the config dir to change it");
  return absl::AlreadyExistsError(
      r.id.ToString() + " is defined by the config dir file " +
      r.where.ToString() + "; change it there, not through the API");
}

absl::Status ConfigDirStore::RequireParents(const ResourceId& id) const {
  if (id.kind == ResourceKind::kMesh) return absl::OkStatus();
  if (auto m = Find({ResourceKind::kMesh, id.mesh, "", id.mesh}); !m.ok())
    return m.status();
  if (id.kind == ResourceKind::kRoute)
    if (auto r = Find({ResourceKind::kVirtualRouter, id.mesh, "", id.parent});
        !r.ok())
      return r.status();
  if (id.kind == ResourceKind::kGatewayRoute)
    if (auto g = Find({ResourceKind::kVirtualGateway, id.mesh, "", id.parent});
        !g.ok())
      return g.status();
  return absl::OkStatus();
}

ResourceMetadata ConfigDirStore::MetadataOf(const Resource& r) const {
  // Cached per content: in cluster mode another agent may change it.
  if (auto it = metadata_.find(r.id);
      it != metadata_.end() && it->second.first == r.content_hash)
    return it->second.second;
  ResourceMetadata m;
  m.arn = Arn(r.id);
  m.mesh_owner = m.resource_owner = account_;
  m.created_at = m.last_updated_at =
      std::chrono::duration<double>(
          model_->current()->built_at.time_since_epoch())
          .count();
  char uid[17];
  std::snprintf(uid, sizeof(uid), "%016llx",
                static_cast<unsigned long long>(r.content_hash));
  m.uid = uid;
  // An API-owned file keeps its metadata beside the spec.
  if (r.where.file.rfind(kApiDir, 0) == 0) {
    std::string text = model_->ReadModelFile(r.where.file).value_or("");
    rapidjson::Document doc;
    doc.Parse(text.c_str(), text.size());
    if (doc.IsObject() && doc.MemberCount() == 1 &&
        doc.MemberBegin()->value.IsObject()) {
      const auto& inner = doc.MemberBegin()->value;
      auto md = inner.FindMember("metadata");
      if (md != inner.MemberEnd() && md->value.IsObject()) {
        const auto& v = md->value;
        if (v.HasMember("uid") && v["uid"].IsString())
          m.uid = v["uid"].GetString();
        if (v.HasMember("version") && v["version"].IsInt64())
          m.version = v["version"].GetInt64();
        if (v.HasMember("createdAt") && v["createdAt"].IsNumber())
          m.created_at = v["createdAt"].GetDouble();
        if (v.HasMember("lastUpdatedAt") && v["lastUpdatedAt"].IsNumber())
          m.last_updated_at = v["lastUpdatedAt"].GetDouble();
      }
    }
    metadata_[r.id] = {r.content_hash, m};
  }
  return m;
}

StoredResource ConfigDirStore::View(const Resource& r) const {
  StoredResource out;
  out.id = r.id;
  rapidjson::Document doc;
  rapidjson::Value spec;
  model::EncodeSpec(r.spec, &spec, doc.GetAllocator());
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  spec.Accept(w);
  out.spec_json.assign(sb.GetString(), sb.GetSize());
  out.tags = r.tags;
  out.metadata = MetadataOf(r);
  return out;
}

absl::StatusOr<StoredResource> ConfigDirStore::Write(
    const ResourceId& id, const std::string& spec_json, const Tags& tags,
    const ResourceMetadata& metadata) {
  rapidjson::Document spec;
  spec.Parse(spec_json.c_str(), spec_json.size());
  if (spec.HasParseError() || !spec.IsObject())
    return absl::InvalidArgumentError("spec must be a JSON object");
  // The describe-* shape, which the config dir loader reads back as is.
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  rapidjson::Value inner(rapidjson::kObjectType);
  inner.AddMember("meshName", Str(id.mesh, a), a);
  if (!model::ParentKey(id.kind).empty())
    inner.AddMember(Str(std::string(model::ParentKey(id.kind)), a),
                    Str(id.parent, a), a);
  if (id.kind != ResourceKind::kMesh)
    inner.AddMember(Str(std::string(model::NameKey(id.kind)), a),
                    Str(id.name, a), a);
  inner.AddMember("spec", rapidjson::Value(spec, a), a);
  if (!tags.empty()) {
    rapidjson::Value t(rapidjson::kArrayType);
    for (const auto& [k, v] : tags) {
      rapidjson::Value tag(rapidjson::kObjectType);
      tag.AddMember("key", Str(k, a), a);
      tag.AddMember("value", Str(v, a), a);
      t.PushBack(tag, a);
    }
    inner.AddMember("tags", t, a);
  }
  rapidjson::Value md(rapidjson::kObjectType);
  md.AddMember("uid", Str(metadata.uid, a), a);
  md.AddMember("version", metadata.version, a);
  md.AddMember("createdAt", metadata.created_at, a);
  md.AddMember("lastUpdatedAt", metadata.last_updated_at, a);
  inner.AddMember("metadata", md, a);
  doc.AddMember(Str(std::string(model::DescribeKey(id.kind)), a), inner, a);
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.SetIndent(' ', 2);
  doc.Accept(w);

  // Where the resource is kept already (etcd keys may be named freely),
  // else where the API puts new ones.
  std::string file = FileFor(id);
  if (auto existing = Find(id);
      existing.ok() && (*existing)->where.file.rfind(kApiDir, 0) == 0)
    file = (*existing)->where.file;
  auto result = model_->Apply({{file, std::string(sb.GetString()) + "\n"}});
  if (!result.commit_error.ok()) return result.commit_error;
  if (!result.write_error.empty())
    return absl::UnavailableError(result.write_error);
  if (!result.snapshot)
    return absl::InvalidArgumentError(Errors(result.errors));
  auto it = result.snapshot->resources.find(id);
  if (it == result.snapshot->resources.end())
    return absl::InternalError(id.ToString() + " missing after the write");
  metadata_[id] = {it->second->content_hash, metadata};
  return View(*it->second);
}

absl::StatusOr<StoredResource> ConfigDirStore::Create(const ResourceId& id,
                                                      std::string spec_json,
                                                      Tags tags) {
  if (auto existing = Find(id); existing.ok()) {
    if (auto s = RequireApiOwned(**existing); !s.ok()) return s;
    return absl::AlreadyExistsError(id.ToString() + " already exists");
  }
  if (auto s = RequireParents(id); !s.ok()) return s;
  ResourceMetadata m;
  m.arn = Arn(id);
  m.uid = NewUid();
  m.mesh_owner = m.resource_owner = account_;
  m.created_at = m.last_updated_at = Now();
  return Write(id, spec_json, tags, m);
}

absl::StatusOr<StoredResource> ConfigDirStore::Update(const ResourceId& id,
                                                      std::string spec_json) {
  auto existing = Find(id);
  if (!existing.ok()) return existing.status();
  if (auto s = RequireApiOwned(**existing); !s.ok()) return s;
  ResourceMetadata m = MetadataOf(**existing);
  ++m.version;
  m.last_updated_at = Now();
  return Write(id, spec_json, (*existing)->tags, m);
}

absl::StatusOr<StoredResource> ConfigDirStore::ReplaceTags(const ResourceId& id,
                                                           Tags tags) {
  auto existing = Find(id);
  if (!existing.ok()) return existing.status();
  if (auto s = RequireApiOwned(**existing); !s.ok()) return s;
  StoredResource now = View(**existing);
  return Write(id, now.spec_json, tags, now.metadata);
}

absl::StatusOr<StoredResource> ConfigDirStore::Delete(const ResourceId& id) {
  auto existing = Find(id);
  if (!existing.ok()) return existing.status();
  if (auto s = RequireApiOwned(**existing); !s.ok()) return s;
  auto snap = model_->current();
  // App Mesh refuses to delete what others live in.
  size_t children = 0;
  for (const auto& [other, r] : snap->resources) {
    if (other == id) continue;
    if (id.kind == ResourceKind::kMesh && other.mesh == id.mesh && !r->implicit)
      ++children;
    if ((id.kind == ResourceKind::kVirtualRouter ||
         id.kind == ResourceKind::kVirtualGateway) &&
        other.mesh == id.mesh && other.parent == id.name &&
        (other.kind == ResourceKind::kRoute) ==
            (id.kind == ResourceKind::kVirtualRouter))
      ++children;
  }
  if (children > 0)
    return absl::FailedPreconditionError(id.ToString() + " still holds " +
                                         std::to_string(children) +
                                         " resource(s); delete them first");
  StoredResource gone = View(**existing);
  auto result = model_->Apply({{(*existing)->where.file, std::nullopt}});
  if (!result.commit_error.ok()) return result.commit_error;
  if (!result.write_error.empty())
    return absl::UnavailableError(result.write_error);
  if (!result.snapshot)
    return absl::FailedPreconditionError(
        id.ToString() + " is in use: " + Errors(result.errors));
  metadata_.erase(id);
  gone.status = "DELETED";
  return gone;
}

absl::StatusOr<StoredResource> ConfigDirStore::Describe(
    const ResourceId& id) const {
  auto r = Find(id);
  if (!r.ok()) return r.status();
  return View(**r);
}

absl::StatusOr<ListPage> ConfigDirStore::List(
    ResourceKind kind, const std::string& mesh, const std::string& parent,
    int limit, const std::string& next_token) const {
  auto snap = model_->current();
  ListPage page;
  // In name order; the token is the name to continue after.
  for (const Resource* r : model::SortedResources(snap->resources)) {
    const ResourceId& id = r->id;
    if (id.kind != kind) continue;
    if (kind != ResourceKind::kMesh && (id.mesh != mesh || id.parent != parent))
      continue;
    if (!next_token.empty() && id.name <= next_token) continue;
    if (static_cast<int>(page.items.size()) == limit) {
      page.next_token = page.items.back().id.name;
      break;
    }
    page.items.push_back(View(*r));
  }
  return page;
}

}  // namespace nodemesh::api
