#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nodemesh::model {

// The seven App Mesh resource kinds (API 2019-01-25).
enum class ResourceKind {
  kMesh,
  kVirtualService,
  kVirtualRouter,
  kRoute,  // child of a VirtualRouter
  kVirtualNode,
  kVirtualGateway,
  kGatewayRoute,  // child of a VirtualGateway
};

// "Mesh", "VirtualNode", ... as App Mesh and the CRDs spell them.
std::string_view KindName(ResourceKind kind);
std::optional<ResourceKind> KindFromName(std::string_view name);
// The JSON key of the resource's own name: "meshName", "virtualNodeName", ...
std::string_view NameKey(ResourceKind kind);
// Routes: "virtualRouterName"; GatewayRoutes: "virtualGatewayName"; else "".
std::string_view ParentKey(ResourceKind kind);
// The key describe-* wraps the resource in: "mesh", "virtualNode", ...
std::string_view DescribeKey(ResourceKind kind);
const std::vector<ResourceKind>& AllKinds();

// Names a resource: mesh/name, or mesh/parent/name for Routes and
// GatewayRoutes. For a Mesh, mesh == name.
struct ResourceId {
  ResourceKind kind = ResourceKind::kMesh;
  std::string mesh;
  std::string parent;  // virtual router or gateway; empty for other kinds
  std::string name;

  // "VirtualNode shop/frontend", "Route shop/color-vr/color-route".
  std::string ToString() const;
  friend bool operator==(const ResourceId&, const ResourceId&) = default;
  friend auto operator<=>(const ResourceId&, const ResourceId&) = default;
};

// A ResourceId by reference, ordered the same way: the key of ResourceMap,
// whose views point into the immutable Resource they map to, so that
// building or copying a snapshot's map copies no names. Converts from a
// ResourceId for lookups.
struct ResourceIdView {
  ResourceKind kind = ResourceKind::kMesh;
  std::string_view mesh, parent, name;

  ResourceIdView() = default;
  ResourceIdView(ResourceKind k, std::string_view m, std::string_view p,
                 std::string_view n)
      : kind(k), mesh(m), parent(p), name(n) {}
  ResourceIdView(const ResourceId& id)  // NOLINT: lookups by ResourceId
      : kind(id.kind), mesh(id.mesh), parent(id.parent), name(id.name) {}

  ResourceId ToId() const {
    return {kind, std::string(mesh), std::string(parent), std::string(name)};
  }
  friend bool operator==(const ResourceIdView&,
                         const ResourceIdView&) = default;
  friend auto operator<=>(const ResourceIdView&,
                          const ResourceIdView&) = default;
};

// Where a resource came from, for messages: a file relative to the config
// dir (with the YAML document index or JSON array index when there are
// several), or "api" for resources created through the App Mesh API.
struct SourceLocation {
  std::string file;
  int document = -1;  // index in a multi-document YAML file or JSON array
  int line = 0;       // 1-based when known

  std::string ToString() const;  // "mesh/app.yaml#2:14"
};

// One finding about the model. Errors make a state invalid; warnings
// (unknown fields, implicit meshes, ARNs into other accounts) and notes
// (skipped Kubernetes kinds) never do.
struct Diagnostic {
  enum class Severity { kError, kWarning, kNote };
  Severity severity = Severity::kError;
  SourceLocation where;
  std::string resource;    // ResourceId::ToString(), or "" when unknown
  std::string field_path;  // "spec.listeners[0].portMapping.port", or ""
  std::string message;     // what is wrong and what to do

  // "mesh/app.yaml#2: VirtualNode shop/front: spec.listeners[0]...: message"
  std::string ToString() const;
};

// Collects diagnostics; passed down by pointer, never global.
class Diagnostics {
 public:
  void Add(Diagnostic d) { items_.push_back(std::move(d)); }
  void Error(const SourceLocation& where, std::string resource,
             std::string field_path, std::string message);
  void Warning(const SourceLocation& where, std::string resource,
               std::string field_path, std::string message);
  void Note(const SourceLocation& where, std::string resource,
            std::string message);

  const std::vector<Diagnostic>& items() const { return items_; }
  bool has_errors() const;
  size_t error_count() const;

 private:
  std::vector<Diagnostic> items_;
};

}  // namespace nodemesh::model
