#include "agent/api/api_json.h"

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "agent/model/json.h"

namespace nodemesh::api {
namespace {

using model::ResourceKind;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void Member(Writer& w, std::string_view key, std::string_view value) {
  Str(w, key);
  Str(w, value);
}

// meshName, the parent's name (Routes, GatewayRoutes) and the own name; a
// Mesh's own name is its meshName.
void Names(Writer& w, const model::ResourceId& id) {
  Member(w, "meshName", id.mesh);
  if (std::string_view pk = model::ParentKey(id.kind); !pk.empty()) {
    Member(w, pk, id.parent);
  }
  if (id.kind != ResourceKind::kMesh)
    Member(w, model::NameKey(id.kind), id.name);
}

std::string Finish(const rapidjson::StringBuffer& buf) {
  return std::string(buf.GetString(), buf.GetSize());
}

// The member `key` of object `v`, or null. (RapidJSON 1.1's member
// iterators trip clang's C++20 -Wambiguous-reversed-operator, so this code
// never compares them itself.)
const rapidjson::Value* Field(const rapidjson::Value& v, std::string_view key) {
  std::string k(key);
  return v.HasMember(k.c_str()) ? &v[k.c_str()] : nullptr;
}

absl::StatusOr<rapidjson::Document> ParseObject(std::string_view body,
                                                std::string_view operation) {
  rapidjson::Document doc;
  std::string_view text = body.empty() ? std::string_view("{}") : body;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(
        std::string(operation) + ": request body is not JSON (" +
        rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
        std::to_string(doc.GetErrorOffset()) + ")");
  }
  if (!doc.IsObject()) {
    return absl::InvalidArgumentError(std::string(operation) +
                                      ": request body must be a JSON object");
  }
  return doc;
}

absl::StatusOr<Tags> ParseTagList(const rapidjson::Value& v,
                                  std::string_view operation) {
  if (!v.IsArray()) {
    return absl::InvalidArgumentError(std::string(operation) +
                                      ": tags must be a list");
  }
  Tags tags;
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    const rapidjson::Value& t = v[i];
    std::string where =
        std::string(operation) + ": tags[" + std::to_string(i) + "]";
    if (!t.IsObject() || !t.HasMember("key") || !t["key"].IsString()) {
      return absl::InvalidArgumentError(
          where + " must be {\"key\": ..., \"value\": ...}");
    }
    std::string value;
    if (const rapidjson::Value* v = Field(t, "value")) {
      if (!v->IsString()) {
        return absl::InvalidArgumentError(where + ".value must be a string");
      }
      value.assign(v->GetString(), v->GetStringLength());
    }
    tags.emplace_back(
        std::string(t["key"].GetString(), t["key"].GetStringLength()),
        std::move(value));
  }
  return tags;
}

}  // namespace

std::string_view CollectionKey(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::kMesh:
      return "meshes";
    case ResourceKind::kVirtualService:
      return "virtualServices";
    case ResourceKind::kVirtualRouter:
      return "virtualRouters";
    case ResourceKind::kRoute:
      return "routes";
    case ResourceKind::kVirtualNode:
      return "virtualNodes";
    case ResourceKind::kVirtualGateway:
      return "virtualGateways";
    case ResourceKind::kGatewayRoute:
      return "gatewayRoutes";
  }
  return "";
}

std::string_view ArnKind(ResourceKind kind) {
  return kind == ResourceKind::kMesh ? std::string_view("mesh")
                                     : model::DescribeKey(kind);
}

std::string RenderData(const StoredResource& r) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Names(w, r.id);
  Str(w, "spec");
  const std::string& spec = r.spec_json.empty() ? "{}" : r.spec_json;
  w.RawValue(spec.data(), spec.size(), rapidjson::kObjectType);
  Str(w, "metadata");
  w.StartObject();
  Member(w, "arn", r.metadata.arn);
  Str(w, "createdAt");
  w.Double(r.metadata.created_at);
  Str(w, "lastUpdatedAt");
  w.Double(r.metadata.last_updated_at);
  Member(w, "meshOwner", r.metadata.mesh_owner);
  Member(w, "resourceOwner", r.metadata.resource_owner);
  Member(w, "uid", r.metadata.uid);
  Str(w, "version");
  w.Int64(r.metadata.version);
  w.EndObject();
  Str(w, "status");
  w.StartObject();
  Member(w, "status", r.status);
  w.EndObject();
  w.EndObject();
  return Finish(buf);
}

std::string RenderList(ResourceKind kind, const ListPage& page) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Str(w, CollectionKey(kind));
  w.StartArray();
  for (const StoredResource& r : page.items) {
    w.StartObject();
    Member(w, "arn", r.metadata.arn);
    Str(w, "createdAt");
    w.Double(r.metadata.created_at);
    Str(w, "lastUpdatedAt");
    w.Double(r.metadata.last_updated_at);
    Names(w, r.id);
    Member(w, "meshOwner", r.metadata.mesh_owner);
    Member(w, "resourceOwner", r.metadata.resource_owner);
    Str(w, "version");
    w.Int64(r.metadata.version);
    w.EndObject();
  }
  w.EndArray();
  if (!page.next_token.empty()) Member(w, "nextToken", page.next_token);
  w.EndObject();
  return Finish(buf);
}

std::string RenderTags(const Tags& tags, size_t begin, size_t end,
                       const std::string& next_token) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Str(w, "tags");
  w.StartArray();
  for (size_t i = begin; i < end && i < tags.size(); ++i) {
    w.StartObject();
    Member(w, "key", tags[i].first);
    Member(w, "value", tags[i].second);
    w.EndObject();
  }
  w.EndArray();
  if (!next_token.empty()) Member(w, "nextToken", next_token);
  w.EndObject();
  return Finish(buf);
}

absl::StatusOr<WriteBody> ParseWriteBody(std::string_view body,
                                         ResourceKind kind, bool create,
                                         std::string_view operation) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body, operation);
  if (!doc.ok()) return doc.status();
  WriteBody out;
  const std::string op(operation);
  if (create) {
    std::string_view key = model::NameKey(kind);
    const rapidjson::Value* name = Field(*doc, key);
    if (name == nullptr || !name->IsString() || name->GetStringLength() == 0) {
      return absl::InvalidArgumentError(op + ": " + std::string(key) +
                                        " is required (a non-empty string)");
    }
    out.name.assign(name->GetString(), name->GetStringLength());
    if (const rapidjson::Value* t = Field(*doc, "tags")) {
      absl::StatusOr<Tags> tags = ParseTagList(*t, operation);
      if (!tags.ok()) return tags.status();
      out.tags = std::move(*tags);
    }
  }
  const rapidjson::Value* spec = Field(*doc, "spec");
  if (spec == nullptr) {
    if (kind != ResourceKind::kMesh) {
      return absl::InvalidArgumentError(op + ": spec is required");
    }
    out.spec_json = "{}";
    return out;
  }
  if (!spec->IsObject()) {
    return absl::InvalidArgumentError(op + ": spec must be a JSON object");
  }
  rapidjson::StringBuffer buf;
  Writer w(buf);
  spec->Accept(w);
  out.spec_json = Finish(buf);
  return out;
}

absl::StatusOr<Tags> ParseTagResourceBody(std::string_view body) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body, "TagResource");
  if (!doc.ok()) return doc.status();
  const rapidjson::Value* tags = Field(*doc, "tags");
  if (tags == nullptr) {
    return absl::InvalidArgumentError("TagResource: tags is required");
  }
  return ParseTagList(*tags, "TagResource");
}

absl::StatusOr<std::vector<std::string>> ParseUntagResourceBody(
    std::string_view body) {
  absl::StatusOr<rapidjson::Document> doc = ParseObject(body, "UntagResource");
  if (!doc.ok()) return doc.status();
  const rapidjson::Value* list = Field(*doc, "tagKeys");
  if (list == nullptr || !list->IsArray()) {
    return absl::InvalidArgumentError(
        "UntagResource: tagKeys is required (a list of strings)");
  }
  std::vector<std::string> keys;
  for (const rapidjson::Value& k : list->GetArray()) {
    if (!k.IsString()) {
      return absl::InvalidArgumentError(
          "UntagResource: tagKeys must hold strings");
    }
    keys.emplace_back(k.GetString(), k.GetStringLength());
  }
  return keys;
}

absl::StatusOr<model::ResourceId> ResourceIdFromArn(std::string_view arn) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError("resourceArn " + std::string(arn) + ": " +
                                      why);
  };
  // arn:partition:service:region:account:resource
  std::string_view rest = arn;
  for (int i = 0; i < 5; ++i) {
    size_t colon = rest.find(':');
    if (colon == std::string_view::npos) {
      return bad("not an ARN (arn:aws:appmesh:<region>:<account>:mesh/...)");
    }
    if (i == 0 && rest.substr(0, colon) != "arn") return bad("not an ARN");
    if (i == 2 && rest.substr(0, colon) != "appmesh") {
      return bad("not an App Mesh ARN");
    }
    rest.remove_prefix(colon + 1);
  }
  std::vector<std::string> parts;
  while (true) {
    size_t slash = rest.find('/');
    parts.emplace_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  for (const std::string& p : parts) {
    if (p.empty()) return bad("empty name in the resource path");
  }
  if (parts.size() < 2 || parts[0] != "mesh") {
    return bad("resource must start with mesh/<meshName>");
  }
  model::ResourceId id;
  id.mesh = parts[1];
  if (parts.size() == 2) {
    id.kind = ResourceKind::kMesh;
    id.name = parts[1];
    return id;
  }
  for (ResourceKind k : model::AllKinds()) {
    if (k == ResourceKind::kMesh || ArnKind(k) != parts[2]) continue;
    if (parts.size() == 4) {
      if (k == ResourceKind::kRoute || k == ResourceKind::kGatewayRoute) break;
      id.kind = k;
      id.name = parts[3];
      return id;
    }
    if (parts.size() == 6 && (k == ResourceKind::kVirtualRouter ||
                              k == ResourceKind::kVirtualGateway)) {
      ResourceKind child = k == ResourceKind::kVirtualRouter
                               ? ResourceKind::kRoute
                               : ResourceKind::kGatewayRoute;
      if (parts[4] != ArnKind(child)) break;
      id.kind = child;
      id.parent = parts[3];
      id.name = parts[5];
      return id;
    }
    break;
  }
  return bad("unknown resource path; expected mesh/<mesh>[/<kind>/<name>]");
}

}  // namespace nodemesh::api
