#include "agent/model/api_json_loader.h"

#include <algorithm>
#include <array>

#include "agent/model/json.h"
#include "agent/model/yaml_reader.h"

namespace nodemesh::model {
namespace {

// Keys that describe-* adds around a spec; never warned about.
constexpr std::array<std::string_view, 3> kDescribeOnlyKeys = {
    "metadata", "status", "clientToken"};

// Which kind an object in the create shape is, from its name keys: the most
// specific key wins (a Route also carries virtualRouterName and meshName).
std::optional<ResourceKind> KindFromNameKeys(const rapidjson::Value& obj) {
  static constexpr std::array<ResourceKind, 7> kByPrecedence = {
      ResourceKind::kRoute,         ResourceKind::kGatewayRoute,
      ResourceKind::kVirtualNode,   ResourceKind::kVirtualService,
      ResourceKind::kVirtualRouter, ResourceKind::kVirtualGateway,
      ResourceKind::kMesh};
  for (ResourceKind k : kByPrecedence) {
    std::string_view key = NameKey(k);
    if (obj.HasMember(rapidjson::StringRef(key.data(), key.size()))) return k;
  }
  return std::nullopt;
}

std::string StringMember(const rapidjson::Value& obj, std::string_view key) {
  auto it = obj.FindMember(rapidjson::StringRef(key.data(), key.size()));
  if (it == obj.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

void AddResource(const rapidjson::Value& obj, const SourceLocation& where,
                 const ApiJsonFallback& fallback,
                 std::vector<ApiShapeResource>* out, Diagnostics* diags) {
  if (!obj.IsObject()) {
    diags->Error(where, "", "",
                 "expected a JSON object (an App Mesh resource)");
    return;
  }
  // describe-* output: {"virtualNode": {...}} -> the inner object.
  if (obj.MemberCount() == 1 && !obj.HasMember("spec")) {
    const auto& only = *obj.MemberBegin();
    for (ResourceKind k : AllKinds()) {
      if (DescribeKey(k) == std::string_view(only.name.GetString()) &&
          only.value.IsObject()) {
        AddResource(only.value, where, fallback, out, diags);
        return;
      }
    }
  }
  auto kind = fallback.set ? std::optional<ResourceKind>(fallback.id.kind)
                           : KindFromNameKeys(obj);
  if (!kind) {
    diags->Error(where, "", "",
                 "no resource name: an App Mesh resource needs meshName and "
                 "its own name key (virtualNodeName, routeName, ...), as "
                 "`aws appmesh create-*` takes it");
    return;
  }
  ResourceId id;
  id.kind = *kind;
  id.name = StringMember(obj, NameKey(*kind));
  id.mesh =
      *kind == ResourceKind::kMesh ? id.name : StringMember(obj, "meshName");
  if (!ParentKey(*kind).empty())
    id.parent = StringMember(obj, ParentKey(*kind));
  // A CLI input file often carries only some names (the rest come from
  // command-line flags): the caller's fill the gaps.
  if (fallback.set) {
    if (id.name.empty()) id.name = fallback.id.name;
    if (id.mesh.empty()) id.mesh = fallback.id.mesh;
    if (id.parent.empty()) id.parent = fallback.id.parent;
  }
  if (id.name.empty() || id.mesh.empty() ||
      (!ParentKey(id.kind).empty() && id.parent.empty())) {
    diags->Error(where, id.ToString(), "",
                 std::string("names must be non-empty strings: ") +
                     std::string(NameKey(id.kind)) + ", meshName" +
                     (ParentKey(id.kind).empty()
                          ? std::string()
                          : ", " + std::string(ParentKey(id.kind))));
    return;
  }
  // create-mesh takes no spec; every other kind needs one.
  const bool spec_optional = id.kind == ResourceKind::kMesh;
  if (obj.HasMember("spec") ? !obj["spec"].IsObject() : !spec_optional) {
    diags->Error(where, id.ToString(), "spec",
                 "spec is missing or not an object");
    return;
  }
  ApiShapeResource r;
  r.id = id;
  r.where = where;
  r.doc.SetObject();
  auto& alloc = r.doc.GetAllocator();
  for (const auto& m : obj.GetObject()) {
    std::string_view key(m.name.GetString(), m.name.GetStringLength());
    if (std::find(kDescribeOnlyKeys.begin(), kDescribeOnlyKeys.end(), key) !=
        kDescribeOnlyKeys.end())
      continue;
    r.doc.AddMember(rapidjson::Value(m.name, alloc),
                    rapidjson::Value(m.value, alloc), alloc);
  }
  // Names from the caller fill what a spec-only file lacks.
  auto set_name = [&](std::string_view key, const std::string& value) {
    if (value.empty() ||
        r.doc.HasMember(rapidjson::StringRef(key.data(), key.size())))
      return;
    r.doc.AddMember(rapidjson::Value(key.data(), key.size(), alloc),
                    rapidjson::Value(value.c_str(), alloc), alloc);
  };
  if (!r.doc.HasMember("spec"))
    r.doc.AddMember("spec", rapidjson::Value(rapidjson::kObjectType), alloc);
  set_name("meshName", id.mesh);
  set_name(NameKey(id.kind), id.name);
  if (!ParentKey(id.kind).empty()) set_name(ParentKey(id.kind), id.parent);
  out->push_back(std::move(r));
}

}  // namespace

void ParseApiShapeText(std::string_view text, bool yaml,
                       const SourceLocation& where,
                       const ApiJsonFallback& fallback,
                       std::vector<ApiShapeResource>* out, Diagnostics* diags) {
  rapidjson::Document doc;
  if (yaml) {
    std::vector<YamlDocument> docs;
    YamlError error;
    if (!ReadYamlDocuments(text, &docs, &error)) {
      SourceLocation at = where;
      at.line = error.line;
      diags->Error(at, "", "", "YAML: " + error.message);
      return;
    }
    for (size_t i = 0; i < docs.size(); ++i) {
      if (docs[i].doc.IsNull()) continue;
      SourceLocation at = where;
      at.document = docs.size() > 1 ? static_cast<int>(i) : -1;
      at.line = docs[i].line;
      AddResource(docs[i].doc, at, fallback, out, diags);
    }
    return;
  }
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError()) {
    // Line of the error offset, for the message.
    SourceLocation at = where;
    at.line = 1 + static_cast<int>(std::count(
                      text.begin(), text.begin() + doc.GetErrorOffset(), '\n'));
    diags->Error(at, "", "",
                 std::string("JSON: ") +
                     rapidjson::GetParseError_En(doc.GetParseError()));
    return;
  }
  if (doc.IsArray()) {
    for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
      SourceLocation at = where;
      at.document = static_cast<int>(i);
      AddResource(doc[i], at, fallback, out, diags);
    }
    return;
  }
  AddResource(doc, where, fallback, out, diags);
}

}  // namespace nodemesh::model
