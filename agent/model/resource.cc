#include "agent/model/resource.h"

#include <array>

namespace nodemesh::model {
namespace {

struct KindNames {
  ResourceKind kind;
  std::string_view name, name_key, parent_key, describe_key;
};

constexpr std::array<KindNames, 7> kKinds = {{
    {ResourceKind::kMesh, "Mesh", "meshName", "", "mesh"},
    {ResourceKind::kVirtualService, "VirtualService", "virtualServiceName", "",
     "virtualService"},
    {ResourceKind::kVirtualRouter, "VirtualRouter", "virtualRouterName", "",
     "virtualRouter"},
    {ResourceKind::kRoute, "Route", "routeName", "virtualRouterName", "route"},
    {ResourceKind::kVirtualNode, "VirtualNode", "virtualNodeName", "",
     "virtualNode"},
    {ResourceKind::kVirtualGateway, "VirtualGateway", "virtualGatewayName", "",
     "virtualGateway"},
    {ResourceKind::kGatewayRoute, "GatewayRoute", "gatewayRouteName",
     "virtualGatewayName", "gatewayRoute"},
}};

const KindNames& Names(ResourceKind kind) {
  return kKinds[static_cast<size_t>(kind)];
}

std::string Join(const SourceLocation& where, const std::string& resource,
                 const std::string& path, const std::string& message) {
  // Appends, never `a + b` of temporaries: GCC 12 warns falsely (-Wrestrict).
  std::string out = where.ToString();
  for (const std::string* part : {&resource, &path, &message}) {
    if (part->empty()) continue;
    if (!out.empty()) out.append(": ");
    out.append(*part);
  }
  return out;
}

}  // namespace

std::string_view KindName(ResourceKind kind) { return Names(kind).name; }
std::string_view NameKey(ResourceKind kind) { return Names(kind).name_key; }
std::string_view ParentKey(ResourceKind kind) { return Names(kind).parent_key; }
std::string_view DescribeKey(ResourceKind kind) {
  return Names(kind).describe_key;
}

std::optional<ResourceKind> KindFromName(std::string_view name) {
  for (const auto& k : kKinds)
    if (k.name == name) return k.kind;
  return std::nullopt;
}

const std::vector<ResourceKind>& AllKinds() {
  static const std::vector<ResourceKind> kinds = [] {
    std::vector<ResourceKind> v;
    for (const auto& k : kKinds) v.push_back(k.kind);
    return v;
  }();
  return kinds;
}

std::string ResourceId::ToString() const {
  std::string out(KindName(kind));
  out.append(" ");
  if (kind != ResourceKind::kMesh) {
    out.append(mesh).append("/");
    if (!parent.empty()) out.append(parent).append("/");
  }
  return out.append(name);
}

std::string SourceLocation::ToString() const {
  std::string out = file;
  if (document >= 0) out.append("#").append(std::to_string(document));
  if (line > 0) out.append(":").append(std::to_string(line));
  return out;
}

std::string Diagnostic::ToString() const {
  return Join(where, resource, field_path, message);
}

void Diagnostics::Error(const SourceLocation& where, std::string resource,
                        std::string field_path, std::string message) {
  items_.push_back({Diagnostic::Severity::kError, where, std::move(resource),
                    std::move(field_path), std::move(message)});
}

void Diagnostics::Warning(const SourceLocation& where, std::string resource,
                          std::string field_path, std::string message) {
  items_.push_back({Diagnostic::Severity::kWarning, where, std::move(resource),
                    std::move(field_path), std::move(message)});
}

void Diagnostics::Note(const SourceLocation& where, std::string resource,
                       std::string message) {
  items_.push_back({Diagnostic::Severity::kNote, where, std::move(resource), "",
                    std::move(message)});
}

bool Diagnostics::has_errors() const { return error_count() > 0; }

size_t Diagnostics::error_count() const {
  size_t n = 0;
  for (const auto& d : items_) n += d.severity == Diagnostic::Severity::kError;
  return n;
}

}  // namespace nodemesh::model
