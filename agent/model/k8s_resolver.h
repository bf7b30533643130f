#pragma once

// Internal to the Kubernetes converter (k8s_membership.cc, k8s_refs.cc): the
// resolver both halves implement. Not for use outside agent/model/k8s_*.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/model/k8s_manifest.h"

namespace nodemesh::model {
namespace k8s_internal {

using Alloc = rapidjson::Document::AllocatorType;
using Value = rapidjson::Value;

// The controller's defaulting webhook: Mesh = name, VirtualService =
// name.namespace, everything else name_namespace.
std::string DefaultAwsName(std::string_view kind, const std::string& ns,
                           const std::string& name);
// "VirtualNode shop/front", for messages about Kubernetes objects.
std::string Describe(std::string_view kind, const std::string& ns,
                     const std::string& name);
std::string JoinNames(const std::vector<std::string>& names);
std::string LabelsText(const K8sLabels& labels);

}  // namespace k8s_internal

class K8sObjectSet::Resolver {
  using Alloc = k8s_internal::Alloc;
  using Value = k8s_internal::Value;

 public:
  Resolver(const K8sObjectSet& set, Diagnostics* diags)
      : set_(set), diags_(diags), mesh_of_(set.objects_.size()) {}

  std::vector<ApiShapeResource> Run();

 private:
  // The resource being converted, for references and messages.
  struct Ctx {
    const Object* obj;
    std::string mesh;
    std::string resource;  // ResourceId::ToString()
    Alloc* alloc;
  };
  struct Ref {
    const char* ref_key;        // "virtualNodeRef"
    const char* arn_key;        // "virtualNodeARN"
    const char* name_key;       // "virtualNodeName" (API)
    std::string_view kind;      // "VirtualNode"
    std::string_view arn_type;  // "virtualNode"
  };

  const Object* Find(std::string_view kind, const std::string& ns,
                     const std::string& name) const {
    auto it = set_.index_.find({std::string(kind), ns, name});
    return it == set_.index_.end() ? nullptr : &set_.objects_[it->second];
  }
  std::string AwsName(const Object& o) const {
    if (const auto it = o.spec.FindMember("awsName");
        it != o.spec.MemberEnd() && it->value.IsString() &&
        it->value.GetStringLength() > 0)
      return it->value.GetString();
    return k8s_internal::DefaultAwsName(o.kind, o.namespace_name, o.name);
  }
  std::string ImplicitMesh(const std::string& name, const Object& by,
                           const std::string& reason);
  void DesignateMeshes();
  bool GatewayOf(const Object& gr, const std::string& mesh,
                 std::string* parent);
  std::string OwnAccount(const std::string& mesh) const;
  void ResolveRef(const Ctx& c, Value& holder, const std::string& path,
                  const Ref& ref);
  ApiShapeResource Envelope(const ResourceId& id, const Value& spec,
                            const Object& o, std::string spec_path) const;
  void Emit(ApiShapeResource r, std::vector<ApiShapeResource>* out);
  void ConvertRoutes(const Object& router, const std::string& mesh,
                     const std::string& router_name,
                     std::vector<ApiShapeResource>* out);

  const K8sObjectSet& set_;
  Diagnostics* diags_;
  std::vector<std::optional<std::string>> mesh_of_;  // per object
  std::vector<std::pair<std::string, SourceLocation>> implicit_meshes_;
  std::map<ResourceId, std::string> seen_;  // id -> "origin at where"
};

}  // namespace nodemesh::model
