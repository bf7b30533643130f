#pragma once

// Kubernetes App Mesh objects (appmesh.k8s.aws/v1beta2) converted to the
// App Mesh API shape. Users bring the manifests they apply with kubectl; the
// rest of the model only knows the API shape, so this is the one place that
// knows the CRD spellings, the controller's default names and its mesh and
// gateway membership rules.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "agent/model/json.h"
#include "agent/model/resource.h"

namespace nodemesh::model {

using K8sLabels = std::map<std::string, std::string>;

// metav1.LabelSelector: matchLabels AND every matchExpressions requirement.
// An empty selector selects everything; an absent one (std::nullopt where it
// is held) selects nothing, as the controller reads namespaceSelector.
struct LabelSelector {
  struct Requirement {
    enum class Operator { kIn, kNotIn, kExists, kDoesNotExist };
    std::string key;
    Operator op = Operator::kIn;
    std::vector<std::string> values;
  };
  K8sLabels match_labels;
  std::vector<Requirement> match_expressions;

  bool Matches(const K8sLabels& labels) const;
};

// What a converted resource keeps of its Kubernetes object, for binding pods
// and gateway routes later. Routes carry their VirtualRouter's origin.
struct K8sOrigin {
  std::string kind;                           // "VirtualNode", ...
  std::string namespace_name;                 // "" for the cluster-scoped Mesh
  std::string name;                           // metadata.name
  K8sLabels labels;                           // metadata.labels
  std::optional<LabelSelector> pod_selector;  // VirtualNode, VirtualGateway
  std::optional<LabelSelector> namespace_selector;      // Mesh, VirtualGateway
  std::optional<LabelSelector> gateway_route_selector;  // VirtualGateway

  // "VirtualNode shop/front", "Mesh global".
  std::string ToString() const;
};

// One App Mesh resource in the API shape exactly as `aws appmesh create-*`
// takes it: {"meshName": ..., "virtualRouterName"?: ..., "<kind>Name": ...,
// "spec": {...}} (a Mesh has only meshName and spec).
struct ApiShapeResource {
  ResourceId id;
  rapidjson::Document doc;
  SourceLocation where;  // file, YAML document index, line of the document
  // Where the spec's fields are in the source, for messages: "spec", or
  // "spec.routes[1]" for a Route written inline in a VirtualRouter.
  std::string spec_path = "spec";
  // Absent for a mesh created implicitly because nothing defined it.
  std::optional<K8sOrigin> k8s;
};

struct K8sOptions {
  // The namespace of an object that names none, as `kubectl apply` without
  // -n would put it.
  std::string default_namespace = "default";
  // The mesh created implicitly for objects when the files hold no Mesh
  // object and nothing else (meshRef, a namespace's mesh label) names one.
  std::string default_mesh = "default";
  // The AWS account the agent runs for, if known: ARNs into other accounts
  // are warned about. A mesh's spec.meshOwner takes precedence.
  std::string account_id;
};

// Accumulates the Kubernetes objects of many files. Call AddFile for each
// file in the order the files apply: a later definition of the same (kind,
// namespace, name) replaces the earlier one, as a re-applied manifest does.
class K8sObjectSet {
 public:
  explicit K8sObjectSet(K8sOptions options = {});
  K8sObjectSet(K8sObjectSet&&) = default;
  K8sObjectSet& operator=(K8sObjectSet&&) = default;

  // yaml_text: all YAML (or JSON) documents of one file. Objects that are
  // not App Mesh kinds are skipped with a Note (Namespaces are kept for mesh
  // membership). Returns false only for text that does not parse as YAML,
  // with an Error naming the file and line; nothing of that file is kept.
  bool AddFile(const std::string& file_for_messages,
               const std::string& yaml_text, Diagnostics* diags);

  // Resolves names, mesh and gateway membership and references across all
  // files added so far; returns the API-shape resources, meshes first, then
  // in the order the objects were first defined (each VirtualRouter followed
  // by its routes). Objects whose mesh cannot be decided are left out, with
  // an Error.
  std::vector<ApiShapeResource> Resolve(Diagnostics* diags) const;

  size_t object_count() const { return objects_.size(); }

 private:
  struct Object {
    std::string kind;  // App Mesh kind, as the CRD spells it
    std::string namespace_name;
    std::string name;
    K8sLabels labels;
    SourceLocation where;
    rapidjson::Document spec;  // the object's spec as JSON (an object)
    std::string mesh_ref;      // spec.meshRef.name, "" if unset
    std::optional<LabelSelector> pod_selector;
    std::optional<LabelSelector> namespace_selector;
    std::optional<LabelSelector> gateway_route_selector;
  };
  struct Namespace {
    K8sLabels labels;
    SourceLocation where;
  };
  class Resolver;  // k8s_resolver.h

  void AddObject(const rapidjson::Value& node, const SourceLocation& where,
                 Diagnostics* diags);

  K8sOptions options_;
  std::vector<Object> objects_;  // in order of first definition
  std::map<std::tuple<std::string, std::string, std::string>, size_t> index_;
  std::map<std::string, Namespace> namespaces_;
};

// Does this text hold Kubernetes objects (apiVersion and kind keys)? A cheap
// sniff for the file loader; it does not parse.
bool LooksLikeKubernetes(std::string_view text);

}  // namespace nodemesh::model
