#include "agent/model/config_dump.h"

#include <chrono>

#include "agent/model/json.h"
#include "agent/model/json_codec.h"
#include "agent/model/types.h"

namespace nodemesh::model {
namespace {

rapidjson::Value Str(const std::string& s,
                     rapidjson::Document::AllocatorType& alloc) {
  return rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()),
                          alloc);
}

rapidjson::Value Str(std::string_view s,
                     rapidjson::Document::AllocatorType& alloc) {
  return rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()),
                          alloc);
}

}  // namespace

void ResourceToApiJson(const Resource& r, rapidjson::Value* out,
                       rapidjson::Document::AllocatorType& alloc) {
  out->SetObject();
  out->AddMember("meshName", Str(r.id.mesh, alloc), alloc);
  if (r.id.kind != ResourceKind::kMesh) {
    if (!ParentKey(r.id.kind).empty())
      out->AddMember(Str(ParentKey(r.id.kind), alloc), Str(r.id.parent, alloc),
                     alloc);
    out->AddMember(Str(NameKey(r.id.kind), alloc), Str(r.id.name, alloc),
                   alloc);
  }
  rapidjson::Value spec;
  EncodeSpec(r.spec, &spec, alloc);
  out->AddMember("spec", spec, alloc);
  if (!r.tags.empty()) {
    rapidjson::Value tags(rapidjson::kArrayType);
    for (const auto& [k, v] : r.tags) {
      rapidjson::Value t(rapidjson::kObjectType);
      t.AddMember("key", Str(k, alloc), alloc);
      t.AddMember("value", Str(v, alloc), alloc);
      tags.PushBack(t, alloc);
    }
    out->AddMember("tags", tags, alloc);
  }
}

std::string ConfigDumpJson(const Snapshot& s) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& alloc = doc.GetAllocator();
  doc.AddMember("version", s.version, alloc);
  doc.AddMember("hash", Str(s.HashText(), alloc), alloc);
  doc.AddMember(
      "builtAt",
      std::chrono::duration<double>(s.built_at.time_since_epoch()).count(),
      alloc);
  doc.AddMember("files", static_cast<uint64_t>(s.files), alloc);
  rapidjson::Value resources(rapidjson::kArrayType);
  for (const Resource* r : SortedResources(s.resources)) {
    const ResourceId& id = r->id;
    rapidjson::Value entry(rapidjson::kObjectType);
    entry.AddMember("kind", Str(KindName(id.kind), alloc), alloc);
    rapidjson::Value api;
    ResourceToApiJson(*r, &api, alloc);
    entry.AddMember("resource", api, alloc);
    rapidjson::Value defaults(rapidjson::kArrayType);
    for (const auto& path : DefaultedFields(r->spec))
      defaults.PushBack(Str("spec." + path, alloc), alloc);
    entry.AddMember("defaultsApplied", defaults, alloc);
    entry.AddMember("source", Str(r->where.ToString(), alloc), alloc);
    if (r->implicit) entry.AddMember("implicit", true, alloc);
    resources.PushBack(entry, alloc);
  }
  doc.AddMember("resources", resources, alloc);
  rapidjson::Value warnings(rapidjson::kArrayType);
  for (const auto& d : s.warnings)
    if (d.severity == Diagnostic::Severity::kWarning)
      warnings.PushBack(Str(d.ToString(), alloc), alloc);
  doc.AddMember("warnings", warnings, alloc);
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.SetIndent(' ', 2);
  doc.Accept(w);
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

}  // namespace nodemesh::model
