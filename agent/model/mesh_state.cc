#include "agent/model/mesh_state.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace nodemesh::model {
namespace {

std::string PortText(int32_t port) { return std::to_string(port); }

std::string_view ProtocolName(PortProtocol p) {
  switch (p) {
    case PortProtocol::kHttp:
      return "http";
    case PortProtocol::kHttp2:
      return "http2";
    case PortProtocol::kGrpc:
      return "grpc";
    case PortProtocol::kTcp:
      return "tcp";
  }
  return "?";
}

// Reports into `diags` against one resource.
class Checker {
 public:
  Checker(const ResourceMap& all, const Resource& r, Diagnostics* diags)
      : all_(all), r_(r), diags_(diags) {}

  const Resource* Find(ResourceKind kind, const std::string& name,
                       const std::string& parent = "") const {
    auto it = all_.find(ResourceIdView{kind, r_.id.mesh, parent, name});
    return it == all_.end() ? nullptr : it->second.get();
  }

  // `path` is relative to the spec; one starting with '/' is a top-level
  // key of the resource (its parent's name).
  void Error(const std::string& path, const std::string& message) const {
    std::string full = path.empty()     ? r_.spec_path
                       : path[0] == '/' ? path.substr(1)
                                        : r_.spec_path + "." + path;
    diags_->Error(r_.where, r_.id.ToString(), full, message);
  }

  void Warn(const std::string& path, const std::string& message) const {
    diags_->Warning(r_.where, r_.id.ToString(), r_.spec_path + "." + path,
                    message);
  }
  const std::string& mesh() const { return r_.id.mesh; }

  // A named resource of `kind` must exist in this mesh. `path` is called
  // only to report a failure: validation runs over every resource on every
  // reload, and paths are rarely needed.
  template <typename PathFn>
  const Resource* Require(ResourceKind kind, const std::string& name,
                          PathFn path) const {
    const Resource* found = Find(kind, name);
    if (!found)
      Error(path(), std::string(KindName(kind)) + " \"" + name +
                        "\" does not exist in mesh " + r_.id.mesh +
                        ": define it, or fix the name");
    return found;
  }

 private:
  const ResourceMap& all_;
  const Resource& r_;
  Diagnostics* diags_;
};

void CheckVirtualService(const Checker& c, const VirtualServiceSpec& s) {
  if (!s.provider) return;
  if (s.provider->virtual_node)
    c.Require(
        ResourceKind::kVirtualNode, s.provider->virtual_node->virtual_node_name,
        [] { return std::string("provider.virtualNode.virtualNodeName"); });
  if (s.provider->virtual_router)
    c.Require(ResourceKind::kVirtualRouter,
              s.provider->virtual_router->virtual_router_name, [] {
                return std::string("provider.virtualRouter.virtualRouterName");
              });
}

void CheckVirtualNode(const Checker& c, const VirtualNodeSpec& s) {
  for (size_t i = 0; i < s.listeners.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (s.listeners[j].port_mapping.port != s.listeners[i].port_mapping.port)
        continue;
      c.Error("listeners[" + std::to_string(i) + "].portMapping.port",
              "port " + PortText(s.listeners[i].port_mapping.port) +
                  " is used by two listeners");
      break;
    }
  }
  // A backend that names no known service is a warning, as in App Mesh: it
  // may live in another cluster or be created later; until then the node's
  // calls to it are refused (DROP_ALL) or leave the mesh (ALLOW_ALL).
  for (size_t i = 0; i < s.backends.size(); ++i)
    if (s.backends[i].virtual_service &&
        !c.Find(ResourceKind::kVirtualService,
                s.backends[i].virtual_service->virtual_service_name))
      c.Warn("backends[" + std::to_string(i) +
                 "].virtualService.virtualServiceName",
             "VirtualService \"" +
                 s.backends[i].virtual_service->virtual_service_name +
                 "\" does not exist in mesh " + c.mesh() +
                 " (yet): calls to it are not routed until it does");
}

// The route's protocol, its match port, and its targets.
struct RouteShape {
  std::string_view key;  // "httpRoute", ...
  PortProtocol protocol;
  std::optional<int32_t> match_port;
  const RouteAction* action;
};

std::optional<RouteShape> ShapeOf(const RouteSpec& s) {
  if (s.http_route)
    return RouteShape{"httpRoute", PortProtocol::kHttp,
                      s.http_route->match.port, &s.http_route->action};
  if (s.http2_route)
    return RouteShape{"http2Route", PortProtocol::kHttp2,
                      s.http2_route->match.port, &s.http2_route->action};
  if (s.grpc_route)
    return RouteShape{"grpcRoute", PortProtocol::kGrpc,
                      s.grpc_route->match.port, &s.grpc_route->action};
  if (s.tcp_route)
    return RouteShape{
        "tcpRoute", PortProtocol::kTcp,
        s.tcp_route->match ? s.tcp_route->match->port : std::nullopt,
        &s.tcp_route->action};
  return std::nullopt;
}

void CheckRoute(const Checker& c, const Resource& r, const RouteSpec& s) {
  const Resource* router =
      c.Require(ResourceKind::kVirtualRouter, r.id.parent,
                [] { return std::string("/virtualRouterName"); });
  auto shape = ShapeOf(s);
  if (!shape) return;  // the decoder reported the missing union member
  const std::string_view key_view = shape->key;
  const std::string key(key_view);  // short: no allocation
  if (router) {
    const auto& listeners = std::get<VirtualRouterSpec>(router->spec).listeners;
    bool protocol_ok = false, port_ok = !shape->match_port.has_value();
    for (const auto& l : listeners) {
      if (l.port_mapping.protocol == shape->protocol) protocol_ok = true;
      if (shape->match_port && l.port_mapping.port == *shape->match_port)
        port_ok = l.port_mapping.protocol == shape->protocol;
    }
    if (!protocol_ok)
      c.Error(key, "a " + std::string(ProtocolName(shape->protocol)) +
                       " route on VirtualRouter " + r.id.parent +
                       ", which has no " +
                       std::string(ProtocolName(shape->protocol)) +
                       " listener: it would never match");
    else if (!port_ok)
      c.Error(key + ".match.port",
              "VirtualRouter " + r.id.parent + " has no " +
                  std::string(ProtocolName(shape->protocol)) +
                  " listener on port " + PortText(*shape->match_port));
    else if (listeners.size() > 1 && !shape->match_port)
      c.Error(key + ".match.port",
              "VirtualRouter " + r.id.parent +
                  " has several listeners: say which port this route "
                  "matches");
  }
  const auto& targets = shape->action->weighted_targets;
  for (size_t i = 0; i < targets.size(); ++i) {
    auto target_path = [&key, i] {
      return key + ".action.weightedTargets[" + std::to_string(i) + "]";
    };
    const Resource* vn =
        c.Require(ResourceKind::kVirtualNode, targets[i].virtual_node,
                  [&] { return target_path() + ".virtualNode"; });
    if (!vn) continue;
    const auto& listeners = std::get<VirtualNodeSpec>(vn->spec).listeners;
    const Listener* chosen = nullptr;
    if (targets[i].port) {
      for (const auto& l : listeners)
        if (l.port_mapping.port == *targets[i].port) chosen = &l;
      if (!chosen) {
        c.Error(target_path() + ".port",
                "VirtualNode " + targets[i].virtual_node +
                    " has no listener on port " + PortText(*targets[i].port));
        continue;
      }
    } else if (listeners.size() == 1) {
      chosen = &listeners[0];
    } else if (listeners.empty()) {
      c.Error(target_path() + ".virtualNode",
              "VirtualNode " + targets[i].virtual_node +
                  " has no listener: traffic routed to it has nowhere to go");
      continue;
    } else {
      c.Error(target_path() + ".port",
              "VirtualNode " + targets[i].virtual_node +
                  " has several listeners: say which port");
      continue;
    }
    if (chosen->port_mapping.protocol != shape->protocol)
      c.Error(target_path(),
              "a " + std::string(ProtocolName(shape->protocol)) +
                  " route to VirtualNode " + targets[i].virtual_node +
                  ", whose listener on port " +
                  PortText(chosen->port_mapping.port) + " speaks " +
                  std::string(ProtocolName(chosen->port_mapping.protocol)) +
                  ": App Mesh would drop this traffic silently");
  }
}

void CheckGatewayRoute(const Checker& c, const Resource& r,
                       const GatewayRouteSpec& s) {
  const Resource* gateway =
      c.Require(ResourceKind::kVirtualGateway, r.id.parent,
                [] { return std::string("/virtualGatewayName"); });
  std::string key;
  PortProtocol protocol = PortProtocol::kHttp;
  const GatewayRouteTarget* target = nullptr;
  if (s.http_route) {
    key = "httpRoute", target = &s.http_route->action.target;
  } else if (s.http2_route) {
    key = "http2Route", protocol = PortProtocol::kHttp2;
    target = &s.http2_route->action.target;
  } else if (s.grpc_route) {
    key = "grpcRoute", protocol = PortProtocol::kGrpc;
    target = &s.grpc_route->action.target;
  } else {
    return;
  }
  c.Require(ResourceKind::kVirtualService, target->virtual_service_name, [&] {
    return key + ".action.target.virtualService.virtualServiceName";
  });
  if (!gateway) return;
  bool listens = false;
  for (const auto& l : std::get<VirtualGatewaySpec>(gateway->spec).listeners)
    listens |= l.port_mapping.protocol == protocol;
  if (!listens)
    c.Error(key, "a " + std::string(ProtocolName(protocol)) +
                     " gateway route on VirtualGateway " + r.id.parent +
                     ", which has no " + std::string(ProtocolName(protocol)) +
                     " listener: it would never match");
}

}  // namespace

std::vector<const Resource*> SortedResources(const ResourceMap& map) {
  std::vector<const Resource*> out;
  out.reserve(map.size());
  for (const auto& [id, r] : map) out.push_back(r.get());
  std::sort(out.begin(), out.end(), [](const Resource* a, const Resource* b) {
    return ResourceIdView(a->id) < ResourceIdView(b->id);
  });
  return out;
}

void AddImplicitMeshes(ResourceMap* resources, Diagnostics* diags) {
  // mesh -> its first user by id (for a stable message), in one pass.
  std::map<std::string_view, const Resource*> needed;
  for (const auto& [id, r] : *resources) {
    if (id.kind == ResourceKind::kMesh) continue;
    auto [it, fresh] = needed.emplace(id.mesh, r.get());
    if (!fresh && id < ResourceIdView(it->second->id)) it->second = r.get();
  }
  for (const auto& [mesh_view, first_user] : needed) {
    const std::string mesh(mesh_view);
    ResourceId id{ResourceKind::kMesh, mesh, "", mesh};
    if (resources->count(id)) continue;
    auto r = std::make_shared<Resource>();
    r->id = id;
    r->spec = MeshSpec{};
    r->where = first_user->where;
    r->implicit = true;
    diags->Warning(first_user->where, id.ToString(), "",
                   "no Mesh \"" + mesh +
                       "\" is defined; created implicitly "
                       "(first used by " +
                       first_user->id.ToString() + ")");
    Insert(resources, std::move(r));
  }
}

void ValidateReferences(const ResourceMap& resources, Diagnostics* out) {
  // Found in hash order, reported in the order of the files.
  Diagnostics local;
  Diagnostics* diags = &local;
  for (const auto& entry : resources) {
    const Resource* r = entry.second.get();  // clang 14: no lambda capture
                                             // of structured bindings
    Checker c(resources, *r, diags);
    std::visit(
        [&](const auto& spec) {
          using T = std::decay_t<decltype(spec)>;
          if constexpr (std::is_same_v<T, VirtualServiceSpec>)
            CheckVirtualService(c, spec);
          else if constexpr (std::is_same_v<T, VirtualNodeSpec>)
            CheckVirtualNode(c, spec);
          else if constexpr (std::is_same_v<T, RouteSpec>)
            CheckRoute(c, *r, spec);
          else if constexpr (std::is_same_v<T, GatewayRouteSpec>)
            CheckGatewayRoute(c, *r, spec);
        },
        r->spec);
  }
  std::vector<Diagnostic> found = local.items();
  std::stable_sort(
      found.begin(), found.end(), [](const Diagnostic& a, const Diagnostic& b) {
        return std::tie(a.where.file, a.where.document, a.resource,
                        a.field_path) < std::tie(b.where.file, b.where.document,
                                                 b.resource, b.field_path);
      });
  for (auto& d : found) out->Add(std::move(d));
}

}  // namespace nodemesh::model
