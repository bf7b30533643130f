// K8sObjectSet::Resolve: Kubernetes objects to API-shape resources, with
// references (xRef / xARN) turned into App Mesh names and the CRD-only
// fields and spellings translated.

#include <string>
#include <utility>
#include <vector>

#include "agent/model/k8s_resolver.h"

namespace nodemesh::model {
namespace {

using k8s_internal::Alloc;
using k8s_internal::DefaultAwsName;
using k8s_internal::Value;

// arn:<partition>:appmesh:<region>:<account>:mesh/<mesh>/<type>/<name>
struct Arn {
  std::string account, mesh, type, name;
};

std::optional<Arn> ParseArn(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (parts.size() < 5) {
    size_t colon = s.find(':', start);
    if (colon == std::string::npos) return std::nullopt;
    parts.push_back(s.substr(start, colon - start));
    start = colon + 1;
  }
  if (parts[0] != "arn" || parts[2] != "appmesh") return std::nullopt;
  std::vector<std::string> path;
  for (size_t pos = start;;) {
    size_t slash = s.find('/', pos);
    path.push_back(s.substr(pos, slash - pos));
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  if (path.size() != 4 || path[0] != "mesh" || path[1].empty() ||
      path[3].empty())
    return std::nullopt;
  return Arn{parts[4], path[1], path[2], path[3]};
}

// RapidJSON 1.1's non-const member iterators compare ambiguously under
// C++20 (clang warns), so lookups here go through HasMember.
Value* Child(Value& v, const char* key) {
  if (!v.IsObject() || !v.HasMember(key)) return nullptr;
  return &v[key];
}

// Value::CopyFrom in RapidJSON 1.1 goes through a Document's stack, which does
// pointer arithmetic on null (UBSan reports it); a plain recursive copy.
void DeepCopy(const Value& src, Value* dst, Alloc& a) {
  switch (src.GetType()) {
    case rapidjson::kObjectType:
      dst->SetObject();
      for (auto it = src.MemberBegin(); it != src.MemberEnd(); ++it) {
        Value key(it->name.GetString(), it->name.GetStringLength(), a);
        Value value;
        DeepCopy(it->value, &value, a);
        dst->AddMember(key, value, a);
      }
      break;
    case rapidjson::kArrayType:
      dst->SetArray();
      dst->Reserve(src.Size(), a);
      for (const auto& item : src.GetArray()) {
        Value value;
        DeepCopy(item, &value, a);
        dst->PushBack(value, a);
      }
      break;
    case rapidjson::kStringType:
      dst->SetString(src.GetString(), src.GetStringLength(), a);
      break;
    case rapidjson::kNumberType:
      if (src.IsInt64()) {
        dst->SetInt64(src.GetInt64());
      } else if (src.IsUint64()) {
        dst->SetUint64(src.GetUint64());
      } else {
        dst->SetDouble(src.GetDouble());
      }
      break;
    case rapidjson::kTrueType:
    case rapidjson::kFalseType:
      dst->SetBool(src.GetBool());
      break;
    case rapidjson::kNullType:
      dst->SetNull();
      break;
  }
}

// Removes a member keeping the others' order (RemoveMember swaps in the last
// one), so output reads in the order the user wrote it.
void Erase(Value& obj, const char* key) {
  if (obj.IsObject() && obj.HasMember(key))
    obj.EraseMember(obj.FindMember(key));
}

// Replaces member `from` in place by `to` with a string value.
void Rename(Value& obj, const char* from, const char* to, const std::string& s,
            Alloc& a) {
  Erase(obj, to);
  auto it = obj.FindMember(from);
  it->name.SetString(to, a);
  it->value.SetString(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a);
}

void SetString(Value& obj, const char* key, const std::string& s, Alloc& a) {
  Erase(obj, key);
  obj.AddMember(
      Value(key, a).Move(),
      Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a).Move(),
      a);
}

// certificateARN -> certificateArn, certificateAuthorityARNs ->
// certificateAuthorityArns, wherever TLS appears.
void RenameArnKeys(Value& v, Alloc& a) {
  if (v.IsObject()) {
    for (rapidjson::SizeType i = 0; i < v.MemberCount(); ++i) {
      auto& m = *(v.MemberBegin() + i);
      std::string_view key(m.name.GetString(), m.name.GetStringLength());
      if (key == "certificateARN") {
        m.name.SetString("certificateArn", a);
      } else if (key == "certificateAuthorityARNs") {
        m.name.SetString("certificateAuthorityArns", a);
      }
      RenameArnKeys(m.value, a);
    }
  } else if (v.IsArray()) {
    for (auto& item : v.GetArray()) RenameArnKeys(item, a);
  }
}

constexpr const char* kRouteTypes[] = {"httpRoute", "http2Route", "grpcRoute",
                                       "tcpRoute"};

}  // namespace

std::string K8sObjectSet::Resolver::OwnAccount(const std::string& mesh) const {
  for (const auto& o : set_.objects_) {
    if (o.kind != "Mesh" || AwsName(o) != mesh) continue;
    if (const auto it = o.spec.FindMember("meshOwner");
        it != o.spec.MemberEnd() && it->value.IsString())
      return it->value.GetString();
  }
  return set_.options_.account_id;
}

// {xRef: {name, namespace?}} or {xARN: "arn:..."} -> {xName: "<aws name>"}.
void K8sObjectSet::Resolver::ResolveRef(const Ctx& c, Value& holder,
                                        const std::string& path,
                                        const Ref& ref) {
  if (!holder.IsObject()) return;
  Value* by_ref = Child(holder, ref.ref_key);
  Value* by_arn = Child(holder, ref.arn_key);
  const Object& o = *c.obj;
  if (by_ref && by_arn) {
    diags_->Error(o.where, c.resource, path + "." + ref.arn_key,
                  std::string("set ") + ref.ref_key + " or " + ref.arn_key +
                      ", not both");
    return;
  }
  if (by_ref) {
    if (!by_ref->IsObject() || !by_ref->HasMember("name") ||
        !(*by_ref)["name"].IsString()) {
      diags_->Error(o.where, c.resource, path + "." + ref.ref_key + ".name",
                    std::string(ref.ref_key) +
                        " needs the name of the Kubernetes object");
      return;
    }
    std::string name = (*by_ref)["name"].GetString();
    std::string ns =
        by_ref->HasMember("namespace") && (*by_ref)["namespace"].IsString()
            ? (*by_ref)["namespace"].GetString()
            : o.namespace_name;
    const Object* target = Find(ref.kind, ns, name);
    std::string aws =
        target ? AwsName(*target) : DefaultAwsName(ref.kind, ns, name);
    Rename(holder, ref.ref_key, ref.name_key, aws, *c.alloc);
    return;
  }
  if (!by_arn) return;  // neither: left for validation to report
  if (!by_arn->IsString()) {
    diags_->Error(o.where, c.resource, path + "." + ref.arn_key,
                  std::string(ref.arn_key) + " must be a string");
    return;
  }
  std::string arn_text = by_arn->GetString();
  std::string name = arn_text;
  if (auto arn = ParseArn(arn_text)) {
    if (arn->type != ref.arn_type) {
      diags_->Error(o.where, c.resource, path + "." + ref.arn_key,
                    "\"" + arn_text + "\" names a " + arn->type + ", not a " +
                        std::string(ref.arn_type));
      return;
    }
    name = arn->name;
    std::string own = OwnAccount(c.mesh);
    if (arn->mesh != c.mesh || (!own.empty() && arn->account != own)) {
      diags_->Warning(
          o.where, c.resource, path + "." + ref.arn_key,
          "\"" + arn_text + "\" is in " +
              (arn->mesh != c.mesh ? "mesh " + arn->mesh : std::string()) +
              (arn->mesh != c.mesh && !own.empty() && arn->account != own
                   ? " and "
                   : "") +
              (!own.empty() && arn->account != own ? "account " + arn->account
                                                   : std::string()) +
              "; nodemesh resolves it as " + std::string(ref.arn_type) + " \"" +
              name + "\" in mesh " + c.mesh);
    }
  } else {
    diags_->Warning(o.where, c.resource, path + "." + ref.arn_key,
                    "\"" + arn_text +
                        "\" is not an App Mesh ARN "
                        "(arn:aws:appmesh:<region>:<account>:mesh/<mesh>/" +
                        std::string(ref.arn_type) +
                        "/<name>); it is used as the name as written");
  }
  Rename(holder, ref.arn_key, ref.name_key, name, *c.alloc);
}

ApiShapeResource K8sObjectSet::Resolver::Envelope(const ResourceId& id,
                                                  const Value& spec,
                                                  const Object& o,
                                                  std::string spec_path) const {
  ApiShapeResource r;
  r.id = id;
  r.where = o.where;
  r.spec_path = std::move(spec_path);
  r.k8s = K8sOrigin{o.kind,
                    o.namespace_name,
                    o.name,
                    o.labels,
                    o.pod_selector,
                    o.namespace_selector,
                    o.gateway_route_selector};
  Alloc& a = r.doc.GetAllocator();
  r.doc.SetObject();
  SetString(r.doc, "meshName", id.mesh, a);
  if (!ParentKey(id.kind).empty() && !id.parent.empty())
    SetString(r.doc, std::string(ParentKey(id.kind)).c_str(), id.parent, a);
  if (id.kind != ResourceKind::kMesh)
    SetString(r.doc, std::string(NameKey(id.kind)).c_str(), id.name, a);
  Value copy;
  DeepCopy(spec, &copy, a);
  r.doc.AddMember("spec", copy, a);
  return r;
}

void K8sObjectSet::Resolver::Emit(ApiShapeResource r,
                                  std::vector<ApiShapeResource>* out) {
  std::string origin =
      (r.k8s ? r.k8s->ToString() : std::string("implicit mesh")) + " at " +
      r.where.ToString();
  auto [it, fresh] = seen_.emplace(r.id, origin);
  if (!fresh) {
    diags_->Error(r.where, r.id.ToString(), "",
                  "defined twice: by " + origin + " and by " + it->second +
                      "; give one of them another spec.awsName");
    return;
  }
  RenameArnKeys(r.doc["spec"], r.doc.GetAllocator());
  out->push_back(std::move(r));
}

void K8sObjectSet::Resolver::ConvertRoutes(const Object& router,
                                           const std::string& mesh,
                                           const std::string& router_name,
                                           std::vector<ApiShapeResource>* out) {
  const auto routes = router.spec.FindMember("routes");
  if (routes == router.spec.MemberEnd() || routes->value.IsNull()) return;
  ResourceId router_id{ResourceKind::kVirtualRouter, mesh, "", router_name};
  if (!routes->value.IsArray()) {
    diags_->Error(router.where, router_id.ToString(), "spec.routes",
                  "routes must be a list of routes");
    return;
  }
  const auto& list = routes->value.GetArray();
  for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
    std::string path = "spec.routes[" + std::to_string(i) + "]";
    const Value& route = list[i];
    if (!route.IsObject() || !route.HasMember("name") ||
        !route["name"].IsString() || route["name"].GetStringLength() == 0) {
      diags_->Error(router.where, router_id.ToString(), path + ".name",
                    "each route needs a name");
      continue;
    }
    ResourceId id{ResourceKind::kRoute, mesh, router_name,
                  route["name"].GetString()};
    ApiShapeResource r = Envelope(id, route, router, path);
    Value& spec = r.doc["spec"];
    Erase(spec, "name");
    Ctx c{&router, mesh, id.ToString(), &r.doc.GetAllocator()};
    for (const char* type : kRouteTypes) {
      Value* targets = Child(spec, type);
      if (targets) targets = Child(*targets, "action");
      if (targets) targets = Child(*targets, "weightedTargets");
      if (!targets || !targets->IsArray()) continue;
      for (rapidjson::SizeType j = 0; j < targets->Size(); ++j) {
        ResolveRef(c, (*targets)[j],
                   path + "." + type + ".action.weightedTargets[" +
                       std::to_string(j) + "]",
                   {"virtualNodeRef", "virtualNodeARN", "virtualNode",
                    "VirtualNode", "virtualNode"});
      }
    }
    Emit(std::move(r), out);
  }
}

std::vector<ApiShapeResource> K8sObjectSet::Resolver::Run() {
  DesignateMeshes();
  std::vector<ApiShapeResource> out;
  // Meshes first, so a consumer can create them before their members.
  for (const auto& o : set_.objects_) {
    if (o.kind != "Mesh") continue;
    std::string name = AwsName(o);
    ApiShapeResource r =
        Envelope({ResourceKind::kMesh, name, "", name}, o.spec, o, "spec");
    Value& spec = r.doc["spec"];
    for (const char* k : {"awsName", "namespaceSelector"}) Erase(spec, k);
    if (Child(spec, "meshServiceDiscovery")) {
      Erase(spec, "serviceDiscovery");
      spec.FindMember("meshServiceDiscovery")
          ->name.SetString("serviceDiscovery", r.doc.GetAllocator());
    }
    // meshOwner is not part of the API's MeshSpec; it is the owner account
    // every request about a shared mesh carries.
    if (Value* owner = Child(spec, "meshOwner")) {
      Value moved(std::move(*owner));
      Erase(spec, "meshOwner");
      r.doc.AddMember("meshOwner", moved, r.doc.GetAllocator());
    }
    Emit(std::move(r), &out);
  }
  for (const auto& [name, where] : implicit_meshes_) {
    if (seen_.count({ResourceKind::kMesh, name, "", name})) continue;
    ApiShapeResource r;
    r.id = {ResourceKind::kMesh, name, "", name};
    r.where = where;
    r.doc.SetObject();
    SetString(r.doc, "meshName", name, r.doc.GetAllocator());
    r.doc.AddMember("spec", Value(rapidjson::kObjectType),
                    r.doc.GetAllocator());
    Emit(std::move(r), &out);
  }

  for (size_t i = 0; i < set_.objects_.size(); ++i) {
    const Object& o = set_.objects_[i];
    if (o.kind == "Mesh" || !mesh_of_[i]) continue;
    const std::string& mesh = *mesh_of_[i];
    auto kind = KindFromName(o.kind);
    if (!kind) continue;  // AddObject admits only App Mesh kinds
    ResourceId id{*kind, mesh, "", AwsName(o)};
    if (*kind == ResourceKind::kGatewayRoute && !GatewayOf(o, mesh, &id.parent))
      continue;
    ApiShapeResource r = Envelope(id, o.spec, o, "spec");
    Value& spec = r.doc["spec"];
    Ctx c{&o, mesh, id.ToString(), &r.doc.GetAllocator()};
    for (const char* k :
         {"awsName", "meshRef", "podSelector", "namespaceSelector",
          "gatewayRouteSelector", "virtualGatewayRef", "routes"})
      Erase(spec, k);
    switch (*kind) {
      case ResourceKind::kVirtualService:
        if (Value* p = Child(spec, "provider")) {
          if (Value* vn = Child(*p, "virtualNode"))
            ResolveRef(c, *vn, "spec.provider.virtualNode",
                       {"virtualNodeRef", "virtualNodeARN", "virtualNodeName",
                        "VirtualNode", "virtualNode"});
          if (Value* vr = Child(*p, "virtualRouter"))
            ResolveRef(c, *vr, "spec.provider.virtualRouter",
                       {"virtualRouterRef", "virtualRouterARN",
                        "virtualRouterName", "VirtualRouter", "virtualRouter"});
        }
        break;
      case ResourceKind::kVirtualNode: {
        if (Value* groups = Child(spec, "backendGroups")) {
          if (!groups->IsArray() || !groups->Empty())
            diags_->Warning(o.where, c.resource, "spec.backendGroups",
                            "backendGroups is Kubernetes-only and nodemesh "
                            "ignores it; list the virtual services in "
                            "spec.backends");
          Erase(spec, "backendGroups");
        }
        Value* backends = Child(spec, "backends");
        if (!backends || !backends->IsArray()) break;
        for (rapidjson::SizeType j = 0; j < backends->Size(); ++j) {
          if (Value* vs = Child((*backends)[j], "virtualService"))
            ResolveRef(
                c, *vs,
                "spec.backends[" + std::to_string(j) + "].virtualService",
                {"virtualServiceRef", "virtualServiceARN", "virtualServiceName",
                 "VirtualService", "virtualService"});
        }
        break;
      }
      case ResourceKind::kGatewayRoute:
        for (const char* type : kRouteTypes) {
          Value* vs = Child(spec, type);
          if (vs) vs = Child(*vs, "action");
          if (vs) vs = Child(*vs, "target");
          if (vs) vs = Child(*vs, "virtualService");
          if (!vs) continue;
          ResolveRef(
              c, *vs,
              std::string("spec.") + type + ".action.target.virtualService",
              {"virtualServiceRef", "virtualServiceARN", "virtualServiceName",
               "VirtualService", "virtualService"});
        }
        break;
      default:
        break;
    }
    Emit(std::move(r), &out);
    if (*kind == ResourceKind::kVirtualRouter)
      ConvertRoutes(o, mesh, id.name, &out);
  }
  return out;
}

std::vector<ApiShapeResource> K8sObjectSet::Resolve(Diagnostics* diags) const {
  return Resolver(*this, diags).Run();
}

}  // namespace nodemesh::model
