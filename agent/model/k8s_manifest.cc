#include "agent/model/k8s_manifest.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <charconv>
#include <cmath>
#include <utility>

namespace nodemesh::model {
namespace {

using Alloc = rapidjson::Document::AllocatorType;

// Deep enough for any App Mesh spec (about 10 levels); stops a hostile file
// from recursing the converter off the stack.
constexpr int kMaxDepth = 64;

constexpr std::string_view kAppMeshGroup = "appmesh.k8s.aws";
constexpr std::string_view kAppMeshVersion = "v1beta2";
constexpr std::array<std::string_view, 6> kAppMeshKinds = {
    "Mesh",        "VirtualService", "VirtualRouter",
    "VirtualNode", "VirtualGateway", "GatewayRoute"};

struct ConvertError {
  std::string path;  // relative to the node converted
  std::string message;
};

std::optional<bool> CoreBool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

bool IsCoreNull(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

// YAML 1.2 core schema integers: [-+]?[0-9]+, 0x[0-9a-fA-F]+, 0o[0-7]+.
bool SetInt(const std::string& s, rapidjson::Value* out) {
  std::string_view v = s;
  bool negative = false;
  int base = 10;
  if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
    negative = v[0] == '-';
    v.remove_prefix(1);
  } else if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'o')) {
    base = v[1] == 'x' ? 16 : 8;
    v.remove_prefix(2);
  }
  if (v.empty()) return false;
  uint64_t magnitude = 0;
  auto [ptr, ec] =
      std::from_chars(v.data(), v.data() + v.size(), magnitude, base);
  if (ec != std::errc() || ptr != v.data() + v.size()) return false;
  if (!negative) {
    if (magnitude <= static_cast<uint64_t>(INT64_MAX))
      out->SetInt64(static_cast<int64_t>(magnitude));
    else
      out->SetUint64(magnitude);
    return true;
  }
  if (magnitude > static_cast<uint64_t>(INT64_MAX) + 1) return false;
  out->SetInt64(magnitude == static_cast<uint64_t>(INT64_MAX) + 1
                    ? INT64_MIN
                    : -static_cast<int64_t>(magnitude));
  return true;
}

// YAML 1.2 core floats; .inf and .nan have no JSON form and stay strings.
bool SetFloat(const std::string& s, rapidjson::Value* out) {
  bool digit = false;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-') {
      return false;
    }
  }
  if (!digit) return false;
  std::string_view v = s;
  if (v[0] == '+') v.remove_prefix(1);
  double d = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec != std::errc() || ptr != v.data() + v.size() || !std::isfinite(d))
    return false;
  out->SetDouble(d);
  return true;
}

void ScalarToJson(const YAML::Node& node, rapidjson::Value* out, Alloc& a) {
  const std::string& s = node.Scalar();
  const std::string& tag = node.Tag();
  constexpr std::string_view kCore = "tag:yaml.org,2002:";
  // "?" is yaml-cpp's tag for a plain (unquoted) scalar: only those are
  // resolved to null, bool or a number; quoted scalars are strings.
  bool plain = tag == "?";
  if (plain || tag == std::string(kCore) + "null") {
    if (IsCoreNull(s)) {
      out->SetNull();
      return;
    }
  }
  if (plain || tag == std::string(kCore) + "bool") {
    if (auto b = CoreBool(s)) {
      out->SetBool(*b);
      return;
    }
  }
  if (plain || tag == std::string(kCore) + "int") {
    if (SetInt(s, out)) return;
  }
  if (plain || tag == std::string(kCore) + "float") {
    if (SetFloat(s, out)) return;
  }
  out->SetString(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
}

bool ToJson(const YAML::Node& node, rapidjson::Value* out, Alloc& a, int depth,
            ConvertError* err) {
  if (depth > kMaxDepth) {
    *err = {"", "nested deeper than " + std::to_string(kMaxDepth) + " levels"};
    return false;
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out->SetNull();
      return true;
    case YAML::NodeType::Scalar:
      ScalarToJson(node, out, a);
      return true;
    case YAML::NodeType::Sequence: {
      out->SetArray();
      size_t i = 0;
      for (const auto& item : node) {
        rapidjson::Value v;
        if (!ToJson(item, &v, a, depth + 1, err)) {
          err->path = "[" + std::to_string(i) + "]" + err->path;
          return false;
        }
        out->PushBack(v, a);
        ++i;
      }
      return true;
    }
    case YAML::NodeType::Map: {
      out->SetObject();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          *err = {
              "",
              "a mapping key is a list or mapping; keys must be plain strings"};
          return false;
        }
        const std::string& key = kv.first.Scalar();
        rapidjson::Value v;
        if (!ToJson(kv.second, &v, a, depth + 1, err)) {
          err->path = "." + key + err->path;
          return false;
        }
        // A repeated key: the last one wins, as in Kubernetes' decoder.
        if (out->HasMember(key.c_str())) {
          (*out)[key.c_str()] = v;
        } else {
          out->AddMember(rapidjson::Value(key.c_str(), a).Move(), v, a);
        }
      }
      return true;
    }
  }
  return true;
}

std::string ScalarOr(const YAML::Node& node, std::string fallback = "") {
  if (node && node.IsScalar()) return node.Scalar();
  return fallback;
}

int LineOf(const YAML::Node& node) {
  YAML::Mark m = node.Mark();
  return m.line >= 0 ? m.line + 1 : 0;
}

// Labels and selector values are strings in Kubernetes; take a scalar's text
// as written (`version: 1` is the label "1").
bool ReadStringMap(const YAML::Node& node, const std::string& path,
                   K8sLabels* out, std::string* bad_path) {
  if (!node || node.IsNull()) return true;
  if (!node.IsMap()) {
    *bad_path = path;
    return false;
  }
  for (const auto& kv : node) {
    std::string key = ScalarOr(kv.first);
    if (!kv.second.IsScalar() && !kv.second.IsNull()) {
      *bad_path = path + "." + key;
      return false;
    }
    (*out)[key] = kv.second.IsNull() ? "" : kv.second.Scalar();
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

std::optional<LabelSelector> ReadSelector(const YAML::Node& spec,
                                          const std::string& field,
                                          const SourceLocation& where,
                                          const std::string& who,
                                          Diagnostics* diags) {
  const YAML::Node node = spec[field];
  if (!node || node.IsNull()) return std::nullopt;
  std::string path = "spec." + field;
  if (!node.IsMap()) {
    diags->Error(where, "", path,
                 who +
                     ": a label selector is a mapping with matchLabels "
                     "and/or matchExpressions");
    return std::nullopt;
  }
  LabelSelector sel;
  std::string bad;
  if (!ReadStringMap(node["matchLabels"], path + ".matchLabels",
                     &sel.match_labels, &bad)) {
    diags->Error(where, "", bad,
                 who + ": matchLabels maps label keys to string values");
    return std::nullopt;
  }
  const YAML::Node exprs = node["matchExpressions"];
  if (!exprs || exprs.IsNull()) return sel;
  if (!exprs.IsSequence()) {
    diags->Error(where, "", path + ".matchExpressions",
                 who +
                     ": matchExpressions is a list of {key, operator, "
                     "values}");
    return std::nullopt;
  }
  for (size_t i = 0; i < exprs.size(); ++i) {
    const YAML::Node e = exprs[i];
    std::string epath = path + ".matchExpressions[" + std::to_string(i) + "]";
    LabelSelector::Requirement req;
    req.key = ScalarOr(e["key"]);
    std::string op = ScalarOr(e["operator"]);
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
    if (const YAML::Node values = e["values"]; values && values.IsSequence()) {
      for (const auto& v : values) req.values.push_back(ScalarOr(v));
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
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(yaml_text);
  } catch (const YAML::Exception& e) {
    SourceLocation where{file_for_messages, -1,
                         e.mark.line >= 0 ? e.mark.line + 1 : 0};
    diags->Error(where, "", "",
                 "not valid YAML: " + e.msg +
                     "; fix the syntax there (nothing of this file was "
                     "loaded)");
    return false;
  } catch (const std::exception& e) {
    diags->Error({file_for_messages, -1, 0}, "", "",
                 std::string("not valid YAML: ") + e.what());
    return false;
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    if (!docs[i] || docs[i].IsNull()) continue;  // empty document
    SourceLocation where{file_for_messages,
                         docs.size() > 1 ? static_cast<int>(i) : -1,
                         LineOf(docs[i])};
    try {
      AddObject(docs[i], where, diags);
    } catch (const YAML::Exception& e) {
      // Node access does not throw on well-formed trees; keep the promise
      // that nothing escapes this boundary anyway.
      diags->Error(where, "", "", "cannot read this document: " + e.msg);
    }
  }
  return true;
}

void K8sObjectSet::AddObject(const YAML::Node& node,
                             const SourceLocation& where, Diagnostics* diags) {
  if (!node.IsMap()) {
    diags->Warning(where, "", "",
                   "not a Kubernetes object (a mapping with apiVersion and "
                   "kind); skipped");
    return;
  }
  std::string api_version = ScalarOr(node["apiVersion"]);
  std::string kind = ScalarOr(node["kind"]);
  if (api_version.empty() || kind.empty()) {
    diags->Warning(where, "", "",
                   "document has no apiVersion or kind, so it is not a "
                   "Kubernetes object; skipped");
    return;
  }
  // kubectl's `kind: List` (what `kubectl get -o yaml` prints).
  if (kind == "List" && node["items"] && node["items"].IsSequence()) {
    for (const auto& item : node["items"]) {
      SourceLocation item_where = where;
      item_where.line = LineOf(item);
      AddObject(item, item_where, diags);
    }
    return;
  }
  const YAML::Node metadata = node["metadata"];
  std::string name, ns;
  K8sLabels labels;
  if (metadata && metadata.IsMap()) {
    name = ScalarOr(metadata["name"]);
    ns = ScalarOr(metadata["namespace"]);
    std::string bad;
    if (!ReadStringMap(metadata["labels"], "metadata.labels", &labels, &bad)) {
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
  const YAML::Node spec = node["spec"];
  if (spec && !spec.IsNull()) {
    if (!spec.IsMap()) {
      diags->Error(where, "", "spec", who + ": spec must be a mapping");
      return;
    }
    ConvertError err;
    if (!ToJson(spec, &obj.spec, obj.spec.GetAllocator(), 0, &err)) {
      diags->Error(where, "", "spec" + err.path, who + ": " + err.message);
      return;
    }
    if (const YAML::Node ref = spec["meshRef"]; ref && ref.IsMap())
      obj.mesh_ref = ScalarOr(ref["name"]);
    if (kind == "VirtualNode" || kind == "VirtualGateway")
      obj.pod_selector = ReadSelector(spec, "podSelector", where, who, diags);
    if (kind == "Mesh" || kind == "VirtualGateway")
      obj.namespace_selector =
          ReadSelector(spec, "namespaceSelector", where, who, diags);
    if (kind == "VirtualGateway")
      obj.gateway_route_selector =
          ReadSelector(spec, "gatewayRouteSelector", where, who, diags);
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
