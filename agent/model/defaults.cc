#include "agent/model/defaults.h"

#include <string>
#include <variant>

namespace nodemesh::model {
namespace {

// Sources: appmesh-model.md (section named after each resource) and
// appmesh-demand.md, both in /work/shared/research.

class Filler {
 public:
  explicit Filler(std::vector<std::string>* marks) : marks_(marks) {}

  template <typename T>
  void Set(std::optional<T>* field, T value, std::string path) {
    if (field->has_value()) return;
    *field = std::move(value);
    marks_->push_back(std::move(path));
  }

  // headers[].invert / metadata[].invert: "The default value is False."
  // (API doc, Route and GatewayRoute).
  void Headers(std::vector<HeaderMatch>* headers, const std::string& path) {
    for (size_t i = 0; i < headers->size(); ++i) {
      Set(&(*headers)[i].invert, false,
          path + "[" + std::to_string(i) + "].invert");
    }
  }

  // "The default value is 15 seconds" for perRequest of route and listener
  // timeouts (API doc; appmesh-demand.md #53). Idle: "default none".
  void PerRequest(std::optional<HttpTimeout>* timeout,
                  const std::string& path) {
    if (!timeout->has_value()) {
      *timeout = HttpTimeout{};
      (*timeout)->per_request = kDefaultPerRequestTimeout;
      marks_->push_back(path + ".perRequest");
      return;
    }
    Set(&(*timeout)->per_request, kDefaultPerRequestTimeout,
        path + ".perRequest");
  }

  // clientPolicy.tls.enforce: "The default is True, if a value isn't
  // specified." (API doc, VirtualNode and VirtualGateway).
  void Client(std::optional<ClientPolicy>* policy, const std::string& path) {
    if (!policy->has_value() || !(*policy)->tls.has_value()) return;
    Set(&(*policy)->tls->enforce, true, path + ".tls.enforce");
  }

  // healthCheck.port "must equal the listener port; defaults to it" and
  // connectionPool.http.maxPendingRequests "default 2147483647"
  // (appmesh-model.md VirtualNode; the gateway's shapes are the same).
  void ListenerParts(const PortMapping& port_mapping,
                     std::optional<HealthCheckPolicy>* health_check,
                     std::optional<ConnectionPool>* pool,
                     const std::string& path) {
    if (health_check->has_value()) {
      Set(&(*health_check)->port, port_mapping.port,
          path + ".healthCheck.port");
    }
    if (pool->has_value() && (*pool)->http.has_value()) {
      Set(&(*pool)->http->max_pending_requests, kDefaultMaxPendingRequests,
          path + ".connectionPool.http.maxPendingRequests");
    }
  }

 private:
  std::vector<std::string>* marks_;
};

std::string Index(const char* list, size_t i) {
  return std::string(list) + "[" + std::to_string(i) + "]";
}

void HttpRouteDefaults(Filler& f, HttpRoute* r, const std::string& path) {
  f.Headers(&r->match.headers, path + ".match.headers");
  f.PerRequest(&r->timeout, path + ".timeout");
}

void GatewayHttpDefaults(Filler& f, HttpGatewayRoute* r,
                         const std::string& path) {
  f.Headers(&r->match.headers, path + ".match.headers");
  // "for HTTP/HTTP2 the gateway rewrites Host to the target virtual service
  // name and rewrites the matched prefix to /, unless GatewayRoute rewrite
  // says otherwise" (appmesh-model.md VirtualGateway, user guide).
  if (!r->action.rewrite) r->action.rewrite.emplace();
  HttpGatewayRouteRewrite& w = *r->action.rewrite;
  bool host_set = w.hostname && w.hostname->default_target_hostname;
  if (!host_set) {
    if (!w.hostname) w.hostname.emplace();
    f.Set(&w.hostname->default_target_hostname,
          DefaultGatewayRouteRewrite::kEnabled,
          path + ".action.rewrite.hostname.defaultTargetHostname");
  }
  if (r->match.prefix && !w.prefix && !w.path) {
    w.prefix.emplace();
    f.Set(&w.prefix->default_prefix, DefaultGatewayRouteRewrite::kEnabled,
          path + ".action.rewrite.prefix.defaultPrefix");
  }
}

}  // namespace

void ApplyDefaults(MeshSpec* s) {
  Filler f(&s->defaulted_fields);
  // egressFilter.type: "By default, the type is DROP_ALL" (API doc, Mesh).
  if (!s->egress_filter) {
    s->egress_filter = EgressFilter{EgressFilterType::kDropAll};
    s->defaulted_fields.push_back("egressFilter.type");
  }
  // serviceDiscovery.ipPreference unset "keeps App Mesh's older IPv4
  // behaviour" (appmesh-model.md Mesh, user guide IPv6 page): IPv4_ONLY.
  if (!s->service_discovery) s->service_discovery.emplace();
  f.Set(&s->service_discovery->ip_preference, IpPreference::kIPv4Only,
        std::string("serviceDiscovery.ipPreference"));
}

void ApplyDefaults(VirtualServiceSpec*) {}
void ApplyDefaults(VirtualRouterSpec*) {}

void ApplyDefaults(RouteSpec* s) {
  Filler f(&s->defaulted_fields);
  if (s->http_route) HttpRouteDefaults(f, &*s->http_route, "httpRoute");
  if (s->http2_route) HttpRouteDefaults(f, &*s->http2_route, "http2Route");
  if (s->grpc_route) {
    f.Headers(&s->grpc_route->match.metadata, "grpcRoute.match.metadata");
    f.PerRequest(&s->grpc_route->timeout, "grpcRoute.timeout");
  }
  // Routes without a retryPolicy still got Envoy retries: 2 on unavailable,
  // connect-failure, refused-stream and 503, previous-hosts predicate, 5
  // host-selection attempts (appmesh-model.md Route; appmesh-demand.md #229).
  const std::optional<RetryPolicy>* retry = nullptr;
  if (s->http_route) retry = &s->http_route->retry_policy;
  if (s->http2_route) retry = &s->http2_route->retry_policy;
  if (s->grpc_route) retry = &s->grpc_route->retry_policy;
  if (retry != nullptr && !retry->has_value() && !s->implicit_retry_policy) {
    s->implicit_retry_policy = ImplicitRetryPolicy{};
    s->defaulted_fields.push_back("implicitRetryPolicy");
  }
  // tcpRoute: idle "default none"; no perRequest, no retries.
}

void ApplyDefaults(VirtualNodeSpec* s) {
  Filler f(&s->defaulted_fields);
  if (s->backend_defaults) {
    f.Client(&s->backend_defaults->client_policy,
             "backendDefaults.clientPolicy");
  }
  for (size_t i = 0; i < s->backends.size(); ++i) {
    Backend& b = s->backends[i];
    if (b.virtual_service) {
      f.Client(&b.virtual_service->client_policy,
               Index("backends", i) + ".virtualService.clientPolicy");
    }
  }
  for (size_t i = 0; i < s->listeners.size(); ++i) {
    Listener& l = s->listeners[i];
    std::string path = Index("listeners", i);
    f.ListenerParts(l.port_mapping, &l.health_check, &l.connection_pool, path);
    // Listener perRequest timeout: 15 s for http/http2/grpc (API doc of
    // listeners[].timeout.<protocol>.perRequest). A timeout of another
    // protocol than the listener's is left for validation to report.
    std::optional<HttpTimeout>* t = nullptr;
    const char* member = "";
    bool other = l.timeout.has_value();
    if (!l.timeout) l.timeout.emplace();
    switch (l.port_mapping.protocol) {
      case PortProtocol::kHttp:
        t = &l.timeout->http;
        member = "http";
        break;
      case PortProtocol::kHttp2:
        t = &l.timeout->http2;
        member = "http2";
        break;
      case PortProtocol::kGrpc:
        t = &l.timeout->grpc;
        member = "grpc";
        break;
      case PortProtocol::kTcp:
        break;
    }
    if (t != nullptr && (t->has_value() || !other)) {
      f.PerRequest(t, path + ".timeout." + member);
    }
    if (*l.timeout == ListenerTimeout{}) l.timeout.reset();
  }
  // dns.responseType: "The user guide gives LOADBALANCER as the default"
  // (appmesh-model.md VirtualNode).
  if (s->service_discovery && s->service_discovery->dns) {
    f.Set(&s->service_discovery->dns->response_type,
          DnsResponseType::kLoadBalancer,
          std::string("serviceDiscovery.dns.responseType"));
  }
}

void ApplyDefaults(VirtualGatewaySpec* s) {
  Filler f(&s->defaulted_fields);
  if (s->backend_defaults) {
    f.Client(&s->backend_defaults->client_policy,
             "backendDefaults.clientPolicy");
  }
  for (size_t i = 0; i < s->listeners.size(); ++i) {
    VirtualGatewayListener& l = s->listeners[i];
    f.ListenerParts(l.port_mapping, &l.health_check, &l.connection_pool,
                    Index("listeners", i));
  }
  // Gateways have no listener timeouts or outlier detection.
}

void ApplyDefaults(GatewayRouteSpec* s) {
  Filler f(&s->defaulted_fields);
  if (s->http_route) GatewayHttpDefaults(f, &*s->http_route, "httpRoute");
  if (s->http2_route) GatewayHttpDefaults(f, &*s->http2_route, "http2Route");
  if (s->grpc_route) {
    f.Headers(&s->grpc_route->match.metadata, "grpcRoute.match.metadata");
  }
}

void ApplyDefaults(AnySpec* spec) {
  std::visit([](auto& s) { ApplyDefaults(&s); }, *spec);
}

}  // namespace nodemesh::model
