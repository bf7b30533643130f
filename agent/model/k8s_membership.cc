// Mesh and gateway membership: which mesh each Kubernetes object belongs to
// and which VirtualGateway each GatewayRoute attaches to, as the App Mesh
// controller's webhooks decide it.

#include <string>
#include <vector>

#include "agent/model/k8s_resolver.h"

namespace nodemesh::model {
namespace k8s_internal {

std::string DefaultAwsName(std::string_view kind, const std::string& ns,
                           const std::string& name) {
  if (kind == "Mesh") return name;
  if (kind == "VirtualService") return name + "." + ns;
  return name + "_" + ns;
}

std::string Describe(std::string_view kind, const std::string& ns,
                     const std::string& name) {
  std::string out(kind);
  out += ' ';
  if (!ns.empty()) out += ns + "/";
  return out + name;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string LabelsText(const K8sLabels& labels) {
  if (labels.empty()) return "none";
  std::string out;
  for (const auto& [k, v] : labels)
    out += (out.empty() ? "" : ",") + k + "=" + v;
  return out;
}

}  // namespace k8s_internal

using k8s_internal::DefaultAwsName;
using k8s_internal::Describe;
using k8s_internal::JoinNames;
using k8s_internal::LabelsText;

std::string K8sObjectSet::Resolver::ImplicitMesh(const std::string& name,
                                                 const Object& by,
                                                 const std::string& reason) {
  for (const auto& [n, where] : implicit_meshes_)
    if (n == name) return name;
  implicit_meshes_.emplace_back(name, by.where);
  diags_->Warning(by.where, "Mesh " + name, "",
                  "no Mesh object in these files defines mesh \"" + name +
                      "\" (" + reason + ", first used by " +
                      Describe(by.kind, by.namespace_name, by.name) +
                      "); it is created with an empty spec. Add a Mesh "
                      "object to give it a spec");
  return name;
}

// The controller's mesh membership: meshRef, else the Mesh whose
// namespaceSelector matches the object's Namespace labels. Files are a
// partial view of a cluster, so where the namespace is not among them a
// single Mesh is taken, and with no Mesh at all one is created implicitly.
void K8sObjectSet::Resolver::DesignateMeshes() {
  std::vector<const Object*> meshes;
  for (const auto& o : set_.objects_)
    if (o.kind == "Mesh") meshes.push_back(&o);
  std::vector<size_t> undecided;
  for (size_t i = 0; i < set_.objects_.size(); ++i) {
    const Object& o = set_.objects_[i];
    std::string who = Describe(o.kind, o.namespace_name, o.name);
    if (o.kind == "Mesh") {
      mesh_of_[i] = AwsName(o);
      continue;
    }
    if (!o.mesh_ref.empty()) {
      // meshRef names the Kubernetes Mesh; accept its AWS name too.
      const Object* m = Find("Mesh", "", o.mesh_ref);
      for (const Object* candidate : meshes)
        if (!m && AwsName(*candidate) == o.mesh_ref) m = candidate;
      mesh_of_[i] = m ? AwsName(*m)
                      : ImplicitMesh(o.mesh_ref, o, "named by spec.meshRef");
      continue;
    }
    auto ns = set_.namespaces_.find(o.namespace_name);
    bool ns_known = ns != set_.namespaces_.end();
    if (!meshes.empty()) {
      if (!ns_known) {
        if (meshes.size() == 1) {
          mesh_of_[i] = AwsName(*meshes[0]);
        } else {
          std::vector<std::string> names;
          for (const Object* m : meshes) names.push_back(m->name);
          diags_->Error(o.where, "", "spec.meshRef",
                        who + ": " + std::to_string(meshes.size()) +
                            " Meshes (" + JoinNames(names) +
                            ") and namespace " + o.namespace_name +
                            " is not defined in these files, so which "
                            "one selects it is unknown; add the Namespace "
                            "object or set spec.meshRef.name");
        }
        continue;
      }
      std::vector<std::string> names;
      const Object* match = nullptr;
      for (const Object* m : meshes) {
        if (m->namespace_selector &&
            m->namespace_selector->Matches(ns->second.labels)) {
          match = m;
          names.push_back(m->name);
        }
      }
      if (names.size() == 1) {
        mesh_of_[i] = AwsName(*match);
      } else if (names.empty()) {
        diags_->Error(o.where, "", "spec.meshRef",
                      who + ": no Mesh's namespaceSelector selects namespace " +
                          o.namespace_name +
                          " (labels: " + LabelsText(ns->second.labels) +
                          "); label the Namespace to match one or set "
                          "spec.meshRef.name");
      } else {
        diags_->Error(o.where, "", "spec.meshRef",
                      who + ": several Meshes select namespace " +
                          o.namespace_name + " (" + JoinNames(names) +
                          "); make their namespaceSelectors disjoint or set "
                          "spec.meshRef.name");
      }
      continue;
    }
    // No Mesh object: a namespace label may name the mesh, as the
    // examples' `mesh: <name>` labels do.
    if (ns_known) {
      const K8sLabels& labels = ns->second.labels;
      for (const char* key : {"appmesh.k8s.aws/mesh", "mesh"}) {
        auto it = labels.find(key);
        if (it != labels.end() && !it->second.empty()) {
          mesh_of_[i] = ImplicitMesh(it->second, o,
                                     std::string("named by label ") + key +
                                         " of Namespace " + o.namespace_name);
          break;
        }
      }
      if (mesh_of_[i]) continue;
    }
    undecided.push_back(i);
  }
  if (undecided.empty()) return;
  std::vector<std::string> implicit;
  for (const auto& [n, where] : implicit_meshes_) implicit.push_back(n);
  for (size_t i : undecided) {
    const Object& o = set_.objects_[i];
    if (implicit.size() <= 1) {
      mesh_of_[i] = implicit.empty()
                        ? ImplicitMesh(set_.options_.default_mesh, o,
                                       "the default mesh; nothing names one")
                        : implicit[0];
    } else {
      diags_->Error(o.where, "", "spec.meshRef",
                    Describe(o.kind, o.namespace_name, o.name) + ": meshes " +
                        JoinNames(implicit) +
                        " are named but nothing says which one this "
                        "belongs to; set spec.meshRef.name");
    }
  }
}

// The VirtualGateway a GatewayRoute attaches to: virtualGatewayRef, else the
// gateway in its mesh whose namespaceSelector selects the route's namespace
// and whose gatewayRouteSelector (absent = all) selects its labels.
bool K8sObjectSet::Resolver::GatewayOf(const Object& gr,
                                       const std::string& mesh,
                                       std::string* parent) {
  std::string who = Describe(gr.kind, gr.namespace_name, gr.name);
  if (const auto it = gr.spec.FindMember("virtualGatewayRef");
      it != gr.spec.MemberEnd()) {
    const Value& ref = it->value;
    if (!ref.IsObject() || !ref.HasMember("name") || !ref["name"].IsString()) {
      diags_->Error(gr.where, "", "spec.virtualGatewayRef.name",
                    who + ": virtualGatewayRef needs a name");
      return false;
    }
    std::string ns = ref.HasMember("namespace") && ref["namespace"].IsString()
                         ? ref["namespace"].GetString()
                         : gr.namespace_name;
    std::string name = ref["name"].GetString();
    const Object* vg = Find("VirtualGateway", ns, name);
    *parent = vg ? AwsName(*vg) : DefaultAwsName("VirtualGateway", ns, name);
    return true;
  }
  auto ns = set_.namespaces_.find(gr.namespace_name);
  bool ns_known = ns != set_.namespaces_.end();
  std::vector<const Object*> in_mesh, chosen;
  for (size_t i = 0; i < set_.objects_.size(); ++i) {
    const Object& vg = set_.objects_[i];
    if (vg.kind != "VirtualGateway" || mesh_of_[i] != mesh) continue;
    in_mesh.push_back(&vg);
    if (!vg.namespace_selector) continue;  // absent selects nothing
    if (ns_known && !vg.namespace_selector->Matches(ns->second.labels))
      continue;
    if (vg.gateway_route_selector &&
        !vg.gateway_route_selector->Matches(gr.labels))
      continue;
    chosen.push_back(&vg);
  }
  if (chosen.size() == 1) {
    *parent = AwsName(*chosen[0]);
    return true;
  }
  if (in_mesh.empty()) {
    // A partial view: the gateway may be in files not given here. The App
    // Mesh controller leaves such a route pending until a gateway selects
    // it; so does nodemesh: it is not part of the state yet.
    diags_->Warning(gr.where, "", "spec.virtualGatewayRef",
                    who + ": no VirtualGateway of mesh " + mesh +
                        " is in these files; the route stays pending (left "
                        "out) until one selects it");
    parent->clear();
    return false;
  }
  std::vector<std::string> names;
  for (const Object* vg : chosen)
    names.push_back(vg->namespace_name + "/" + vg->name);
  diags_->Error(
      gr.where, "", "spec.virtualGatewayRef",
      chosen.empty()
          ? who + ": no VirtualGateway of mesh " + mesh +
                " selects it (namespace " + gr.namespace_name + " labels: " +
                (ns_known ? LabelsText(ns->second.labels)
                          : std::string("unknown")) +
                "); fix a gateway's namespaceSelector/gatewayRouteSelector "
                "or set spec.virtualGatewayRef"
          : who + ": several VirtualGateways select it (" + JoinNames(names) +
                "); set spec.virtualGatewayRef");
  return false;
}

}  // namespace nodemesh::model
