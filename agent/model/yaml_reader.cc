#include "agent/model/yaml_reader.h"

#include <yaml.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>

namespace nodemesh::model {
namespace {

using Alloc = rapidjson::Document::AllocatorType;

// Bounds for hostile input: nesting depth, and nodes produced per document
// (aliases included).
constexpr int kMaxDepth = 64;
constexpr size_t kMaxNodes = 1 << 20;

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

// YAML 1.2 core schema for a plain (unquoted, untagged) scalar.
void TypePlainScalar(const std::string& s, rapidjson::Value* out, Alloc& a) {
  if (IsCoreNull(s)) {
    out->SetNull();
    return;
  }
  if (auto b = CoreBool(s)) {
    out->SetBool(*b);
    return;
  }
  if (SetInt(s, out) || SetFloat(s, out)) return;
  out->SetString(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a);
}

class Builder {
 public:
  Builder(yaml_parser_t* parser, YamlError* error)
      : parser_(parser), error_(error) {}

  // Reads the next event; false (error set) on a parse error.
  bool Next(yaml_event_t* ev) {
    if (!yaml_parser_parse(parser_, ev)) {
      error_->message = parser_->problem ? parser_->problem : "invalid YAML";
      if (parser_->context)
        error_->message =
            std::string(parser_->context) + ": " + error_->message;
      error_->line = static_cast<int>(parser_->problem_mark.line) + 1;
      return false;
    }
    return true;
  }

  // Builds the node that starts with `ev` (consumed) into `out`.
  bool Node(yaml_event_t* ev, rapidjson::Value* out, Alloc& a, int depth) {
    if (depth > kMaxDepth) return Fail(ev, "nested too deeply");
    if (++nodes_ > kMaxNodes) return Fail(ev, "too many nodes");
    const char* anchor = nullptr;
    switch (ev->type) {
      case YAML_ALIAS_EVENT: {
        auto it =
            anchors_.find(reinterpret_cast<const char*>(ev->data.alias.anchor));
        if (it == anchors_.end()) return Fail(ev, "unknown alias");
        nodes_ += it->second.second;
        if (nodes_ > kMaxNodes) return Fail(ev, "aliases expand too far");
        out->CopyFrom(*it->second.first, a);
        yaml_event_delete(ev);
        return true;
      }
      case YAML_SCALAR_EVENT: {
        anchor = reinterpret_cast<const char*>(ev->data.scalar.anchor);
        std::string value(reinterpret_cast<const char*>(ev->data.scalar.value),
                          ev->data.scalar.length);
        const char* tag = reinterpret_cast<const char*>(ev->data.scalar.tag);
        bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                     !(tag && std::string_view(tag) == YAML_STR_TAG);
        if (plain)
          TypePlainScalar(value, out, a);
        else
          out->SetString(value.c_str(),
                         static_cast<rapidjson::SizeType>(value.size()), a);
        break;
      }
      case YAML_SEQUENCE_START_EVENT: {
        anchor = reinterpret_cast<const char*>(ev->data.sequence_start.anchor);
        std::string name = anchor ? anchor : "";
        size_t first = nodes_;
        yaml_event_delete(ev);
        out->SetArray();
        for (;;) {
          yaml_event_t item;
          if (!Next(&item)) return false;
          if (item.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&item);
            break;
          }
          rapidjson::Value v;
          if (!Node(&item, &v, a, depth + 1)) return false;
          out->PushBack(v, a);
        }
        Remember(name, *out, first, a);
        return true;
      }
      case YAML_MAPPING_START_EVENT: {
        anchor = reinterpret_cast<const char*>(ev->data.mapping_start.anchor);
        std::string name = anchor ? anchor : "";
        size_t first = nodes_;
        yaml_event_delete(ev);
        out->SetObject();
        for (;;) {
          yaml_event_t key_ev;
          if (!Next(&key_ev)) return false;
          if (key_ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&key_ev);
            break;
          }
          rapidjson::Value key;
          if (!Node(&key_ev, &key, a, depth + 1)) return false;
          if (!key.IsString()) {
            // Keys that are numbers or booleans are their text; complex
            // keys have no JSON form.
            if (key.IsObject() || key.IsArray()) {
              error_->message = "a mapping key must be a scalar";
              return false;
            }
            rapidjson::StringBuffer sb;
            rapidjson::Writer<rapidjson::StringBuffer> w(sb);
            key.Accept(w);
            key.SetString(sb.GetString(),
                          static_cast<rapidjson::SizeType>(sb.GetSize()), a);
          }
          yaml_event_t value_ev;
          if (!Next(&value_ev)) return false;
          rapidjson::Value value;
          if (!Node(&value_ev, &value, a, depth + 1)) return false;
          // A repeated key: the later value wins, as in most loaders.
          // (Compared through const iterators: clang rejects RapidJSON
          // 1.1.0's non-const iterator != under C++20.)
          const rapidjson::Value& view = *out;
          if (view.HasMember(key))
            (*out)[key] = value;
          else
            out->AddMember(key, value, a);
        }
        Remember(name, *out, first, a);
        return true;
      }
      default:
        return Fail(ev, "unexpected YAML event");
    }
    if (anchor) Remember(anchor, *out, nodes_ - 1, a);
    yaml_event_delete(ev);
    return true;
  }

 private:
  bool Fail(yaml_event_t* ev, const char* why) {
    error_->message = why;
    error_->line = static_cast<int>(ev->start_mark.line) + 1;
    yaml_event_delete(ev);
    return false;
  }

  void Remember(const std::string& name, const rapidjson::Value& v,
                size_t first_node, Alloc& a) {
    if (name.empty()) return;
    auto copy = std::make_shared<rapidjson::Document>();
    copy->CopyFrom(v, copy->GetAllocator());
    (void)a;
    anchors_[name] = {copy, nodes_ - first_node};
  }

  yaml_parser_t* parser_;
  YamlError* error_;
  size_t nodes_ = 0;
  std::map<std::string, std::pair<std::shared_ptr<rapidjson::Document>, size_t>>
      anchors_;
};

}  // namespace

bool ReadYamlDocuments(std::string_view text, std::vector<YamlDocument>* out,
                       YamlError* error) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) {
    error->message = "cannot initialize the YAML parser";
    return false;
  }
  std::unique_ptr<yaml_parser_t, void (*)(yaml_parser_t*)> guard(
      &parser, yaml_parser_delete);
  yaml_parser_set_input_string(
      &parser, reinterpret_cast<const unsigned char*>(text.data()),
      text.size());
  Builder builder(&parser, error);
  for (;;) {
    yaml_event_t ev;
    if (!builder.Next(&ev)) return false;
    yaml_event_type_t type = ev.type;
    if (type == YAML_STREAM_END_EVENT) {
      yaml_event_delete(&ev);
      return true;
    }
    if (type != YAML_DOCUMENT_START_EVENT) {
      yaml_event_delete(&ev);
      continue;  // stream start, document end
    }
    yaml_event_delete(&ev);
    yaml_event_t root;
    if (!builder.Next(&root)) return false;
    YamlDocument d;
    d.line = static_cast<int>(root.start_mark.line) + 1;
    if (root.type == YAML_DOCUMENT_END_EVENT) {  // an empty document
      yaml_event_delete(&root);
      continue;
    }
    if (!builder.Node(&root, &d.doc, d.doc.GetAllocator(), 0)) return false;
    out->push_back(std::move(d));
  }
}

}  // namespace nodemesh::model
