#include "agent/model/k8s_manifest.h"

#include <array>
#include <charconv>
#include <cmath>
#include <utility>

#include "agent/model/yaml_reader.h"

namespace nodemesh::model {
namespace {

using Alloc = rapidjson::Document::AllocatorType;

constexpr std::string_view kAppMeshGroup = "appmesh.k8s.aws";
constexpr std::string_view kAppMeshVersion = "v1beta2";
constexpr std::array<std::string_view, 6> kAppMeshKinds = {
    "Mesh",        "VirtualService", "VirtualRouter",
    "VirtualNode", "VirtualGateway", "GatewayRoute"};

using Value = rapidjson::Value;

const Value* Member(const Value* obj, const char* key) {
  if (!obj || !obj->IsObject()) return nullptr;
  auto it = obj->FindMember(key);
  return it == obj->MemberEnd() ? nullptr : &it->value;
}

bool IsNullOrAbsent(const Value* v) { return !v || v->IsNull(); }

// A scalar's text as written: labels and names are strings in Kubernetes,
// so `version: 1` is "1".
std::string ScalarOr(const Value* v, std::string fallback = "") {
  if (!v) return fallback;
  if (v->IsString()) return std::string(v->GetString(), v->GetStringLength());
  if (v->IsBool()) return v->GetBool() ? "true" : "false";
  if (v->IsNumber()) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    v->Accept(w);
    return std::string(sb.GetString(), sb.GetSize());
  }
  return fallback;
}

bool IsScalar(const Value& v) { return !v.IsObject() && !v.IsArray(); }

// Labels and selector values are strings in Kubernetes; take a scalar's text
// as written (`version: 1` is the label "1").
bool ReadStringMap(const Value* node, const std::string& path, K8sLabels* out,
                   std::string* bad_path) {
  if (IsNullOrAbsent(node)) return true;
  if (!node->IsObject()) {
    *bad_path = path;
    return false;
  }
  for (const auto& kv : node->GetObject()) {
    std::string key(kv.name.GetString(), kv.name.GetStringLength());
    if (!IsScalar(kv.value)) {
      *bad_path = path + "." + key;
      return false;
    }
    (*out)[key] = ScalarOr(&kv.value);
  }
  return true;
}

// Prefix for messages about an object before it has an App Mesh name.
std::string Describe(const std::string& kind, const std::string& ns,
                     const std::string& name) {
  std::string out = kind + " ";
  if (!ns.empty()) out += ns + "/";
  return out + (name.empty() ? "(unnamed)" : name);
}

std::optional<LabelSelector> ReadSelector(const Value& spec,
                                          const std::string& field,
                                          const SourceLocation& where,
                                          const std::string& who,
                                          Diagnostics* diags) {
  const Value* node = Member(&spec, field.c_str());
  if (IsNullOrAbsent(node)) return std::nullopt;
  std::string path = "spec." + field;
  if (!node->IsObject()) {
    diags->Error(where, "", path,
                 who +
                     ": a label selector is a mapping with matchLabels "
                     "and/or matchExpressions");
    return std::nullopt;
  }
  LabelSelector sel;
  std::string bad;
  if (!ReadStringMap(Member(node, "matchLabels"), path + ".matchLabels",
                     &sel.match_labels, &bad)) {
    diags->Error(where, "", bad,
                 who + ": matchLabels maps label keys to string values");
    return std::nullopt;
  }
  const Value* exprs = Member(node, "matchExpressions");
  if (IsNullOrAbsent(exprs)) return sel;
  if (!exprs->IsArray()) {
    diags->Error(where, "", path + ".matchExpressions",
                 who +
                     ": matchExpressions is a list of {key, operator, "
                     "values}");
    return std::nullopt;
  }
  for (rapidjson::SizeType i = 0; i < exprs->Size(); ++i) {
    const Value* e = &(*exprs)[i];
    std::string epath = path + ".matchExpressions[" + std::to_string(i) + "]";
    LabelSelector::Requirement req;
    req.key = ScalarOr(Member(e, "key"));
    std::string op = ScalarOr(Member(e, "operator"));
    using Op = LabelSelector::Requirement::Operator;
    if (op == "In") {
      req.op = Op::kIn;
    } else if (op == "NotIn") {
      req.op = Op::kNotIn;
    } else if (op == "Exists") {
      req.op = Op::kExists;
    } else if (op == "DoesNotExist") {
      req.op = Op::kDoesNotExist;
    } else {
      diags->Error(where, "", epath + ".operator",
                   who + ": operator \"" + op +
                       "\" is not In, NotIn, Exists or DoesNotExist");
      return std::nullopt;
    }
    if (req.key.empty()) {
      diags->Error(where, "", epath + ".key", who + ": key is required");
      return std::nullopt;
    }
    if (const Value* values = Member(e, "values");
        values && values->IsArray()) {
      for (const auto& v : values->GetArray())
        req.values.push_back(ScalarOr(&v));
    }
    bool set_op = req.op == Op::kIn || req.op == Op::kNotIn;
    if (set_op == req.values.empty()) {
      diags->Error(where, "", epath + ".values",
                   who + (set_op ? ": In and NotIn need at least one value"
                                 : ": Exists and DoesNotExist take no values"));
      return std::nullopt;
    }
    sel.match_expressions.push_back(std::move(req));
  }
  return sel;
}

// Is `key` at `pos` a mapping key (YAML `key:` or JSON `"key":`)?
bool IsKeyAt(std::string_view text, size_t pos, size_t len) {
  if (pos > 0) {
    char before = text[pos - 1];
    if (before != ' ' && before != '\t' && before != '\n' && before != '\r' &&
        before != '"' && before != '\'' && before != '{' && before != ',')
      return false;
  }
  size_t end = pos + len;
  if (end < text.size() && (text[end] == '"' || text[end] == '\'')) ++end;
  while (end < text.size() && (text[end] == ' ' || text[end] == '\t')) ++end;
  return end < text.size() && text[end] == ':';
}

bool HasKey(std::string_view text, std::string_view key) {
  for (size_t pos = text.find(key); pos != std::string_view::npos;
       pos = text.find(key, pos + 1)) {
    if (IsKeyAt(text, pos, key.size())) return true;
  }
  return false;
}

}  // namespace

bool LabelSelector::Matches(const K8sLabels& labels) const {
  for (const auto& [k, v] : match_labels) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  for (const auto& req : match_expressions) {
    auto it = labels.find(req.key);
    bool has = it != labels.end();
    bool in = false;
    if (has) {
      for (const auto& v : req.values) in = in || v == it->second;
    }
    switch (req.op) {
      case Requirement::Operator::kIn:
        if (!in) return false;
        break;
      case Requirement::Operator::kNotIn:
        if (in) return false;
        break;
      case Requirement::Operator::kExists:
        if (!has) return false;
        break;
      case Requirement::Operator::kDoesNotExist:
        if (has) return false;
        break;
    }
  }
  return true;
}

std::string K8sOrigin::ToString() const {
  return Describe(kind, namespace_name, name);
}

bool LooksLikeKubernetes(std::string_view text) {
  return HasKey(text, "apiVersion") && HasKey(text, "kind");
}

K8sObjectSet::K8sObjectSet(K8sOptions options) : options_(std::move(options)) {}

bool K8sObjectSet::AddFile(const std::string& file_for_messages,
                           const std::string& yaml_text, Diagnostics* diags) {
  std::vector<YamlDocument> docs;
  YamlError error;
  if (!ReadYamlDocuments(yaml_text, &docs, &error)) {
    diags->Error({file_for_messages, -1, error.line}, "", "",
                 "not valid YAML: " + error.message +
                     "; fix the syntax there (nothing of this file was "
                     "loaded)");
    return false;
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    if (docs[i].doc.IsNull()) continue;  // empty document
    SourceLocation where{file_for_messages,
                         docs.size() > 1 ? static_cast<int>(i) : -1,
                         docs[i].line};
    AddObject(docs[i].doc, where, diags);
  }
  return true;
}

void K8sObjectSet::AddObject(const rapidjson::Value& node,
                             const SourceLocation& where, Diagnostics* diags) {
  if (!node.IsObject()) {
    diags->Warning(where, "", "",
                   "not a Kubernetes object (a mapping with apiVersion and "
                   "kind); skipped");
    return;
  }
  std::string api_version = ScalarOr(Member(&node, "apiVersion"));
  std::string kind = ScalarOr(Member(&node, "kind"));
  if (api_version.empty() || kind.empty()) {
    diags->Warning(where, "", "",
                   "document has no apiVersion or kind, so it is not a "
                   "Kubernetes object; skipped");
    return;
  }
  // kubectl's `kind: List` (what `kubectl get -o yaml` prints).
  if (const Value* items = Member(&node, "items");
      kind == "List" && items && items->IsArray()) {
    for (const auto& item : items->GetArray()) AddObject(item, where, diags);
    return;
  }
  const Value* metadata = Member(&node, "metadata");
  std::string name, ns;
  K8sLabels labels;
  if (metadata && metadata->IsObject()) {
    name = ScalarOr(Member(metadata, "name"));
    ns = ScalarOr(Member(metadata, "namespace"));
    std::string bad;
    if (!ReadStringMap(Member(metadata, "labels"), "metadata.labels", &labels,
                       &bad)) {
      diags->Error(
          where, "", bad,
          Describe(kind, ns, name) + ": labels map keys to string values");
    }
  }
  std::string group = api_version.substr(0, api_version.find('/'));
  std::string version = api_version.find('/') == std::string::npos
                            ? ""
                            : api_version.substr(api_version.find('/') + 1);

  if (api_version == "v1" && kind == "Namespace") {
    if (name.empty()) {
      diags->Error(where, "", "metadata.name",
                   "Namespace: metadata.name is required");
      return;
    }
    namespaces_[name] = Namespace{std::move(labels), where};
    return;
  }
  if (group != kAppMeshGroup) {
    diags->Note(where, "",
                Describe(kind, ns, name) + ": not an App Mesh object (" +
                    api_version + "); skipped");
    return;
  }
  if (version != kAppMeshVersion) {
    diags->Warning(where, "", "apiVersion",
                   Describe(kind, ns, name) + ": " + api_version +
                       " is not supported, only appmesh.k8s.aws/v1beta2 "
                       "(v1beta1 is the legacy controller's different "
                       "shape); skipped");
    return;
  }
  if (kind == "BackendGroup") {
    diags->Note(where, "",
                Describe(kind, ns, name) +
                    ": BackendGroup is Kubernetes-only and has no App Mesh "
                    "API resource; skipped");
    return;
  }
  bool known = false;
  for (auto k : kAppMeshKinds) known = known || k == kind;
  if (!known) {
    diags->Warning(where, "", "kind",
                   Describe(kind, ns, name) +
                       ": not an appmesh.k8s.aws/v1beta2 kind; skipped");
    return;
  }
  if (name.empty()) {
    diags->Error(where, "", "metadata.name",
                 Describe(kind, ns, name) + ": metadata.name is required");
    return;
  }
  if (kind == "Mesh") {
    ns.clear();  // cluster-scoped: a namespace there is ignored
  } else if (ns.empty()) {
    ns = options_.default_namespace;
  }
  std::string who = Describe(kind, ns, name);

  Object obj;
  obj.kind = kind;
  obj.namespace_name = ns;
  obj.name = name;
  obj.labels = std::move(labels);
  obj.where = where;
  obj.spec.SetObject();
  const Value* spec = Member(&node, "spec");
  if (!IsNullOrAbsent(spec)) {
    if (!spec->IsObject()) {
      diags->Error(where, "", "spec", who + ": spec must be a mapping");
      return;
    }
    obj.spec.CopyFrom(*spec, obj.spec.GetAllocator());
    if (const Value* ref = Member(spec, "meshRef"); ref && ref->IsObject())
      obj.mesh_ref = ScalarOr(Member(ref, "name"));
    if (kind == "VirtualNode" || kind == "VirtualGateway")
      obj.pod_selector = ReadSelector(*spec, "podSelector", where, who, diags);
    if (kind == "Mesh" || kind == "VirtualGateway")
      obj.namespace_selector =
          ReadSelector(*spec, "namespaceSelector", where, who, diags);
    if (kind == "VirtualGateway")
      obj.gateway_route_selector =
          ReadSelector(*spec, "gatewayRouteSelector", where, who, diags);
  }

  auto key = std::make_tuple(kind, ns, name);
  if (auto it = index_.find(key); it != index_.end()) {
    diags->Note(where, "",
                who + ": replaces the definition at " +
                    objects_[it->second].where.ToString());
    objects_[it->second] = std::move(obj);
    return;
  }
  index_.emplace(std::move(key), objects_.size());
  objects_.push_back(std::move(obj));
}

}  // namespace nodemesh::model
