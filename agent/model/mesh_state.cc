#include "agent/model/mesh_state.h"

#include <set>

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
    ResourceId id{kind, r_.id.mesh, parent, name};
    auto it = all_.find(id);
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

  // A named resource of `kind` must exist in this mesh.
  const Resource* Require(ResourceKind kind, const std::string& name,
                          const std::string& path,
                          const std::string& parent = "") const {
    const Resource* found = Find(kind, name, parent);
    if (!found)
      Error(path, std::string(KindName(kind)) + " \"" + name +
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
    c.Require(ResourceKind::kVirtualNode,
              s.provider->virtual_node->virtual_node_name,
              "provider.virtualNode.virtualNodeName");
  if (s.provider->virtual_router)
    c.Require(ResourceKind::kVirtualRouter,
              s.provider->virtual_router->virtual_router_name,
              "provider.virtualRouter.virtualRouterName");
}

void CheckVirtualNode(const Checker& c, const VirtualNodeSpec& s) {
  std::set<int32_t> ports;
  for (size_t i = 0; i < s.listeners.size(); ++i) {
    if (!ports.insert(s.listeners[i].port_mapping.port).second)
      c.Error("listeners[" + std::to_string(i) + "].portMapping.port",
              "port " + PortText(s.listeners[i].port_mapping.port) +
                  " is used by two listeners");
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
  const Resource* router = c.Require(ResourceKind::kVirtualRouter, r.id.parent,
                                     "/virtualRouterName");
  auto shape = ShapeOf(s);
  if (!shape) return;  // the decoder reported the missing union member
  const std::string key(shape->key);
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
    const std::string path =
        key + ".action.weightedTargets[" + std::to_string(i) + "]";
    const Resource* vn =
        c.Require(ResourceKind::kVirtualNode, targets[i].virtual_node,
                  path + ".virtualNode");
    if (!vn) continue;
    const auto& listeners = std::get<VirtualNodeSpec>(vn->spec).listeners;
    const Listener* chosen = nullptr;
    if (targets[i].port) {
      for (const auto& l : listeners)
        if (l.port_mapping.port == *targets[i].port) chosen = &l;
      if (!chosen) {
        c.Error(path + ".port", "VirtualNode " + targets[i].virtual_node +
                                    " has no listener on port " +
                                    PortText(*targets[i].port));
        continue;
      }
    } else if (listeners.size() == 1) {
      chosen = &listeners[0];
    } else if (listeners.empty()) {
      c.Error(path + ".virtualNode",
              "VirtualNode " + targets[i].virtual_node +
                  " has no listener: traffic routed to it has nowhere to go");
      continue;
    } else {
      c.Error(path + ".port", "VirtualNode " + targets[i].virtual_node +
                                  " has several listeners: say which port");
      continue;
    }
    if (chosen->port_mapping.protocol != shape->protocol)
      c.Error(path,
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
  const Resource* gateway = c.Require(ResourceKind::kVirtualGateway,
                                      r.id.parent, "/virtualGatewayName");
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
  c.Require(ResourceKind::kVirtualService, target->virtual_service_name,
            key + ".action.target.virtualService.virtualServiceName");
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

void AddImplicitMeshes(ResourceMap* resources, Diagnostics* diags) {
  std::map<std::string, const Resource*> needed;
  for (const auto& [id, r] : *resources)
    if (id.kind != ResourceKind::kMesh) needed.emplace(id.mesh, r.get());
  for (const auto& [mesh, first_user] : needed) {
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
    resources->emplace(id, std::move(r));
  }
}

void ValidateReferences(const ResourceMap& resources, Diagnostics* diags) {
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
}

}  // namespace nodemesh::model
