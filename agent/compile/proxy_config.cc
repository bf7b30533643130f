#include "agent/compile/proxy_config.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace nodemesh::compile {
namespace {

using model::ResourceKind;

bool Is5xx(int status) { return status >= 500 && status <= 599; }

}  // namespace

bool RetryPolicy::RetriesStatus(int status) const {
  if (server_error && Is5xx(status)) return true;
  if (gateway_error && (status == 502 || status == 503 || status == 504))
    return true;
  if (client_error && status == 409) return true;
  return status_503 && status == 503;
}

bool RetryPolicy::RetriesGrpcStatus(int grpc_status) const {
  switch (grpc_status) {
    case 1:
      return grpc_cancelled;
    case 4:
      return grpc_deadline_exceeded;
    case 8:
      return grpc_resource_exhausted;
    case 13:
      return grpc_internal;
    case 14:
      return grpc_unavailable;
    default:
      return false;
  }
}

std::shared_ptr<const RouteLabels> LabelInterner::Get(
    const RouteLabels& labels) {
  std::string key =
      absl::StrCat(labels.mesh, "\x1f", labels.virtual_service, "\x1f",
                   labels.route, "\x1f", labels.target_virtual_node);
  auto& slot = map_[key];
  if (!slot) slot = std::make_shared<const RouteLabels>(labels);
  return slot;
}

const VirtualHost* ProxyConfig::FindHttpHost(std::string_view authority,
                                             uint16_t dst_port) const {
  std::string_view host = authority;
  int explicit_port = -1;
  // "[v6]:port", "name:port" or "name".
  size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(']', colon) == host.npos &&
      (host.front() != '[' || (colon > 0 && host[colon - 1] == ']'))) {
    uint32_t p = 0;
    if (absl::SimpleAtoi(
            absl::string_view(host.data() + colon + 1, host.size() - colon - 1),
            &p) &&
        p <= 65535) {
      explicit_port = static_cast<int>(p);
    }
    host = host.substr(0, colon);
  }
  std::string lowered;
  if (std::any_of(host.begin(), host.end(),
                  [](char c) { return c >= 'A' && c <= 'Z'; })) {
    lowered =
        absl::AsciiStrToLower(absl::string_view(host.data(), host.size()));
    host = lowered;
  }
  auto it = by_name.find(absl::string_view(host.data(), host.size()));
  if (it == by_name.end()) return nullptr;
  const std::vector<uint32_t>& hosts = it->second;
  auto on_port = [&](int port) -> const VirtualHost* {
    for (uint32_t i : hosts) {
      if (virtual_hosts[i].port == port && !virtual_hosts[i].is_tcp())
        return &virtual_hosts[i];
    }
    return nullptr;
  };
  if (explicit_port >= 0) return on_port(explicit_port);
  if (dst_port != 0) {
    if (const VirtualHost* h = on_port(dst_port)) return h;
  }
  // "name" alone: the service's HTTP port (the lowest when it has several).
  for (uint32_t i : hosts) {
    if (!virtual_hosts[i].is_tcp()) return &virtual_hosts[i];
  }
  return nullptr;
}

PoolLimits CompilePoolLimits(const model::ConnectionPool& pool,
                             model::PortProtocol protocol) {
  auto positive = [](int32_t v) {
    return v > 0 ? static_cast<uint32_t>(v) : 0u;
  };
  PoolLimits out;
  switch (protocol) {
    case model::PortProtocol::kTcp:
      if (pool.tcp) out.max_connections = positive(pool.tcp->max_connections);
      break;
    case model::PortProtocol::kHttp:
      if (pool.http) {
        out.max_connections = positive(pool.http->max_connections);
        // Unset is App Mesh's 2147483647: no limit.
        if (pool.http->max_pending_requests)
          out.max_pending_requests = positive(*pool.http->max_pending_requests);
      }
      break;
    case model::PortProtocol::kHttp2:
      if (pool.http2) out.max_requests = positive(pool.http2->max_requests);
      break;
    case model::PortProtocol::kGrpc:
      if (pool.grpc) out.max_requests = positive(pool.grpc->max_requests);
      break;
  }
  return out;
}

absl::StatusOr<proxy::PathRewrite> CompilePathRewrite(
    const model::HttpGatewayRoute& route) {
  using model::DefaultGatewayRouteRewrite;
  const model::HttpGatewayRouteMatch& m = route.match;
  const model::HttpGatewayRouteRewrite* rw =
      route.action.rewrite ? &*route.action.rewrite : nullptr;
  const auto* prefix = rw && rw->prefix ? &*rw->prefix : nullptr;
  const auto* path = rw && rw->path ? &*rw->path : nullptr;
  // The rules of the App Mesh controller's GatewayRoute webhook.
  if (prefix && path) {
    return absl::InvalidArgumentError(
        "action.rewrite: prefix and path are mutually exclusive; keep one");
  }
  if (path) {
    if (!m.path) {
      return absl::InvalidArgumentError(
          "action.rewrite.path: needs a match.path (exact or regex); use "
          "rewrite.prefix with a prefix match");
    }
    if (!path->exact) return proxy::PathRewrite();
    if (path->exact->empty() || path->exact->front() != '/') {
      return absl::InvalidArgumentError(
          "action.rewrite.path.exact: must start with '/'");
    }
    return proxy::PathRewrite::Exact(*path->exact);
  }
  if (prefix) {
    if (!m.prefix) {
      return absl::InvalidArgumentError(
          "action.rewrite.prefix: needs a match.prefix; use rewrite.path "
          "with a path match");
    }
    if (prefix->default_prefix && prefix->value) {
      return absl::InvalidArgumentError(
          "action.rewrite.prefix: defaultPrefix and value are mutually "
          "exclusive; keep one");
    }
    if (prefix->value) {
      const std::string& v = *prefix->value;
      if (v.empty() || v.front() != '/' || v.back() != '/') {
        return absl::InvalidArgumentError(
            "action.rewrite.prefix.value: must start and end with '/'");
      }
      return proxy::PathRewrite::Prefix(*m.prefix, v);
    }
    if (prefix->default_prefix == DefaultGatewayRouteRewrite::kDisabled)
      return proxy::PathRewrite();
  }
  // A prefix match with no rewrite, or defaultPrefix ENABLED: the matched
  // prefix becomes "/" (user guide, "Gateway routes"). Path and hostname
  // matches keep the path.
  if (m.prefix) return proxy::PathRewrite::Prefix(*m.prefix, "/");
  return proxy::PathRewrite();
}

const VirtualHost* ProxyConfig::FindTcpHost(uint16_t dst_port) const {
  auto it = tcp_by_port.find(dst_port);
  if (it == tcp_by_port.end() || it->second.size() != 1) return nullptr;
  return &virtual_hosts[it->second.front()];
}

int32_t ProxyConfig::NodeAccessLog(std::string_view mesh_and_node) const {
  if (mesh_and_node.empty()) return -1;
  auto it = access_log_by_node.find(
      absl::string_view(mesh_and_node.data(), mesh_and_node.size()));
  return it == access_log_by_node.end() ? -1 : static_cast<int32_t>(it->second);
}

int32_t ProxyConfig::GatewayAccessLog(uint16_t port) const {
  for (const GatewayListener& g : gateways) {
    if (g.port == port) return g.access_log;
  }
  return -1;
}

namespace {

struct ClusterKey {
  std::string mesh, node;
  uint16_t port;
  friend auto operator<=>(const ClusterKey&, const ClusterKey&) = default;
};

class Compiler {
 public:
  Compiler(const model::Snapshot& snap, const CompileOptions& options,
           LabelInterner* labels, std::vector<std::string>* warnings)
      : snap_(snap), options_(options), labels_(labels), warnings_(warnings) {}

  std::shared_ptr<const ProxyConfig> Run() {
    out_ = std::make_shared<ProxyConfig>();
    out_->model_version = snap_.version;
    // Sorted once: at 20,000 resources a sort is milliseconds.
    const std::vector<const model::Resource*> sorted =
        model::SortedResources(snap_.resources);
    for (const model::Resource* r : sorted) {
      switch (r->id.kind) {
        case ResourceKind::kRoute:
        case ResourceKind::kGatewayRoute:
          children_[{r->id.kind, r->id.mesh, r->id.parent}].push_back(r);
          break;
        case ResourceKind::kVirtualNode:
          AddClusters(*r);
          break;
        default:
          break;
      }
    }
    for (const model::Resource* r : sorted) {
      if (r->id.kind == ResourceKind::kVirtualService) AddVirtualService(*r);
    }
    for (const model::Resource* r : sorted) {
      if (r->id.kind == ResourceKind::kVirtualGateway && WantGateway(*r))
        AddGateway(*r);
    }
    for (uint32_t i = 0; i < out_->virtual_hosts.size(); ++i) {
      const VirtualHost& h = out_->virtual_hosts[i];
      out_->by_name[absl::AsciiStrToLower(h.virtual_service)].push_back(i);
      if (h.is_tcp()) out_->tcp_by_port[h.port].push_back(i);
    }
    out_->route_slots = next_slot_;
    return out_;
  }

 private:
  using ChildKey = std::tuple<ResourceKind, std::string, std::string>;

  void Warn(const model::ResourceId& id, const std::string& what) {
    warnings_->push_back(absl::StrCat(id.ToString(), ": ", what));
  }

  // Compiles a resource's `logging`; the index into access_logs, or -1.
  int32_t AddAccessLog(const model::ResourceId& id,
                       const std::optional<model::Logging>& logging) {
    if (!logging || !logging->access_log || !logging->access_log->file)
      return -1;
    const model::FileAccessLog& file = *logging->access_log->file;
    std::vector<std::string> problems;
    AccessLogConfig log;
    if (!file.format || (!file.format->text && !file.format->json)) {
      log.format = proxy::AccessLogFormat::Text(
          proxy::kDefaultAccessLogFormat, &out_->access_log_headers, &problems);
    } else if (file.format->text) {
      log.format = proxy::AccessLogFormat::Text(
          *file.format->text, &out_->access_log_headers, &problems);
    } else {
      std::vector<std::pair<std::string, std::string>> fields;
      for (const model::JsonFormatRef& f : *file.format->json)
        fields.emplace_back(f.key, f.value);
      if (fields.empty())
        problems.push_back("format.json is empty; each line is {}");
      log.format = proxy::AccessLogFormat::Json(
          fields, &out_->access_log_headers, &problems);
    }
    for (const std::string& p : problems)
      Warn(id, absl::StrCat("spec.logging.accessLog.file.", p));
    auto& paths = out_->access_log_paths;
    auto it = std::find(paths.begin(), paths.end(), file.path);
    log.sink = static_cast<uint32_t>(it - paths.begin());
    if (it == paths.end()) {
      paths.push_back(file.path);
      // The agent does not create directories: a typo must not scatter
      // files over the host.
      std::error_code ec;
      std::filesystem::path dir =
          std::filesystem::path(file.path).parent_path();
      if (!dir.empty() && !std::filesystem::is_directory(dir, ec)) {
        Warn(id,
             absl::StrCat("spec.logging.accessLog.file.path ", file.path,
                          ": directory ", dir.string(),
                          " does not exist; nothing is logged there until "
                          "it does (nodemesh_access_log_open_errors_total)"));
      }
    }
    out_->access_logs.push_back(std::move(log));
    return static_cast<int32_t>(out_->access_logs.size() - 1);
  }

  void AddClusters(const model::Resource& r) {
    const auto& spec = std::get<model::VirtualNodeSpec>(r.spec);
    std::vector<uint16_t>& ports = node_ports_[{r.id.mesh, r.id.name}];
    int32_t access_log = AddAccessLog(r.id, spec.logging);
    if (access_log >= 0) {
      out_->access_log_by_node[absl::StrCat(r.id.mesh, "/", r.id.name)] =
          static_cast<uint32_t>(access_log);
    }
    for (const model::Listener& l : spec.listeners) {
      Cluster c;
      c.mesh = r.id.mesh;
      c.virtual_node = r.id.name;
      c.port = static_cast<uint16_t>(l.port_mapping.port);
      c.protocol = l.port_mapping.protocol;
      c.name = absl::StrCat(c.mesh, "/", c.virtual_node, ":", c.port);
      c.access_log = access_log;
      if (spec.service_discovery && spec.service_discovery->dns) {
        const auto& dns = *spec.service_discovery->dns;
        c.dns_hostname = dns.hostname;
        c.dns_all_addresses =
            dns.response_type == model::DnsResponseType::kEndpoints;
        if (dns.ip_preference) c.ip_preference = *dns.ip_preference;
      }
      if (spec.service_discovery && spec.service_discovery->aws_cloud_map)
        c.cloud_map = *spec.service_discovery->aws_cloud_map;
      c.tls = l.tls && l.tls->mode != model::TlsMode::kDisabled;
      c.outlier_detection = l.outlier_detection;
      c.health_check = l.health_check;
      if (l.timeout) {
        const auto& t = *l.timeout;
        const std::optional<model::HttpTimeout>& http =
            t.http ? t.http : (t.http2 ? t.http2 : t.grpc);
        if (http && http->per_request)
          c.per_request_timeout = Millis(http->per_request->ToMillis());
        if (http && http->idle) c.idle_timeout = Millis(http->idle->ToMillis());
        if (t.tcp && t.tcp->idle)
          c.idle_timeout = Millis(t.tcp->idle->ToMillis());
      }
      if (l.connection_pool)
        c.pool = CompilePoolLimits(*l.connection_pool, c.protocol);
      clusters_[{c.mesh, c.virtual_node, c.port}] =
          static_cast<uint32_t>(out_->clusters.size());
      ports.push_back(c.port);
      out_->clusters.push_back(std::move(c));
    }
  }

  // The cluster a route target means: its port, or the node's only
  // listener, or the listener on the port the service was called on.
  std::optional<uint32_t> TargetCluster(const std::string& mesh,
                                        const std::string& node,
                                        std::optional<int32_t> port,
                                        uint16_t called_port) {
    auto ports = node_ports_.find({mesh, node});
    if (ports == node_ports_.end() || ports->second.empty()) return {};
    uint16_t p;
    if (port) {
      p = static_cast<uint16_t>(*port);
    } else if (ports->second.size() == 1) {
      p = ports->second.front();
    } else {
      p = called_port;
    }
    auto it = clusters_.find({mesh, node, p});
    if (it == clusters_.end()) return {};
    return it->second;
  }

  void AddVirtualService(const model::Resource& r) {
    const auto& spec = std::get<model::VirtualServiceSpec>(r.spec);
    if (!spec.provider) return;  // no provider yet: nothing answers
    if (spec.provider->virtual_node) {
      AddNodeProvided(r, spec.provider->virtual_node->virtual_node_name);
    } else if (spec.provider->virtual_router) {
      AddRouterProvided(r, spec.provider->virtual_router->virtual_router_name);
    }
  }

  static RetryPolicy ImplicitRetry() {
    RetryPolicy p;
    p.max_retries = 2;
    p.status_503 = true;
    p.connection_error = true;
    p.stream_error = true;
    // Envoy's "unavailable" in App Mesh's retry_on is the gRPC status 14. It
    // was on every route's policy, http ones included: a response that
    // carries grpc-status is retried on it whatever the route kind.
    p.grpc_unavailable = true;
    return p;
  }

  // A virtual service backed by a node: one catch-all route per listener.
  void AddNodeProvided(const model::Resource& vs, const std::string& node) {
    auto ports = node_ports_.find({vs.id.mesh, node});
    if (ports == node_ports_.end()) return;
    for (uint16_t port : ports->second) {
      uint32_t cluster = clusters_.at({vs.id.mesh, node, port});
      VirtualHost h;
      h.mesh = vs.id.mesh;
      h.virtual_service = vs.id.name;
      h.port = port;
      h.protocol = out_->clusters[cluster].protocol;
      WeightedCluster target{cluster, 1,
                             labels_->Get({vs.id.mesh, vs.id.name, "", node})};
      // The listener's timeouts apply through the cluster.
      if (h.is_tcp()) {
        TcpRouteEntry e;
        e.targets.push_back(target);
        e.index = next_slot_++;
        h.tcp_routes.push_back(std::move(e));
      } else {
        HttpRouteEntry e;
        e.targets.push_back(target);
        e.index = next_slot_++;
        e.retry = ImplicitRetry();
        e.grpc = h.protocol == model::PortProtocol::kGrpc;
        h.http_routes.push_back(std::move(e));
      }
      out_->virtual_hosts.push_back(std::move(h));
    }
  }

  static void ApplyTimeout(const model::HttpTimeout& t, HttpRouteEntry* e) {
    if (t.per_request)
      e->per_request_timeout = Millis(t.per_request->ToMillis());
    if (t.idle) e->idle_timeout = Millis(t.idle->ToMillis());
  }

  static RetryPolicy CompileRetry(const model::RetryPolicy& p) {
    RetryPolicy out;
    out.max_retries =
        static_cast<uint32_t>(std::min<int64_t>(p.max_retries, 100));
    out.per_try_timeout = Millis(p.per_retry_timeout.ToMillis());
    for (const std::string& e : p.http_retry_events) {
      if (e == "server-error") out.server_error = true;
      if (e == "gateway-error") out.gateway_error = true;
      if (e == "client-error") out.client_error = true;
      if (e == "stream-error") out.stream_error = true;
    }
    if (!p.tcp_retry_events.empty()) out.connection_error = true;
    for (model::GrpcRetryEvent e : p.grpc_retry_events) {
      switch (e) {
        case model::GrpcRetryEvent::kCancelled:
          out.grpc_cancelled = true;
          break;
        case model::GrpcRetryEvent::kDeadlineExceeded:
          out.grpc_deadline_exceeded = true;
          break;
        case model::GrpcRetryEvent::kInternal:
          out.grpc_internal = true;
          break;
        case model::GrpcRetryEvent::kResourceExhausted:
          out.grpc_resource_exhausted = true;
          break;
        case model::GrpcRetryEvent::kUnavailable:
          out.grpc_unavailable = true;
          break;
      }
    }
    return out;
  }

  void AddRouterProvided(const model::Resource& vs, const std::string& router) {
    auto rit = snap_.resources.find(model::ResourceIdView(
        ResourceKind::kVirtualRouter, vs.id.mesh, "", router));
    if (rit == snap_.resources.end()) return;
    const auto& rspec = std::get<model::VirtualRouterSpec>(rit->second->spec);
    const auto& routes = children_[{ResourceKind::kRoute, vs.id.mesh, router}];
    for (const model::VirtualRouterListener& l : rspec.listeners) {
      VirtualHost h;
      h.mesh = vs.id.mesh;
      h.virtual_service = vs.id.name;
      h.port = static_cast<uint16_t>(l.port_mapping.port);
      h.protocol = l.port_mapping.protocol;
      for (const model::Resource* route : routes) {
        AddRoute(*route, &h);
      }
      SortRoutes(&h.http_routes);
      out_->virtual_hosts.push_back(std::move(h));
    }
  }

  std::vector<WeightedCluster> Targets(const model::Resource& route,
                                       const model::RouteAction& action,
                                       const VirtualHost& h) {
    std::vector<WeightedCluster> out;
    for (const model::WeightedTarget& t : action.weighted_targets) {
      auto cluster =
          TargetCluster(route.id.mesh, t.virtual_node, t.port, h.port);
      if (!cluster) {
        Warn(route.id,
             absl::StrCat("target virtual node ", t.virtual_node,
                          " has no listener for port ",
                          t.port ? *t.port : h.port, "; target skipped"));
        continue;
      }
      out.push_back({*cluster, static_cast<uint32_t>(std::max(0, t.weight)),
                     labels_->Get({route.id.mesh, h.virtual_service,
                                   route.id.name, t.virtual_node})});
    }
    return out;
  }

  // A listener serves the routes of its own protocol (App Mesh's rule):
  // http httpRoutes, http2 http2Routes, grpc grpcRoutes, tcp tcpRoutes.
  void AddRoute(const model::Resource& route, VirtualHost* h) {
    const auto& spec = std::get<model::RouteSpec>(route.spec);
    switch (h->protocol) {
      case model::PortProtocol::kTcp:
        if (spec.tcp_route) AddTcpRoute(route, *spec.tcp_route, h);
        return;
      case model::PortProtocol::kHttp:
        if (spec.http_route)
          AddHttpRoute(route, spec, *spec.http_route, "httpRoute", h);
        return;
      case model::PortProtocol::kHttp2:
        if (spec.http2_route)
          AddHttpRoute(route, spec, *spec.http2_route, "http2Route", h);
        return;
      case model::PortProtocol::kGrpc:
        if (spec.grpc_route) AddGrpcRoute(route, spec, *spec.grpc_route, h);
        return;
    }
  }

  void AddTcpRoute(const model::Resource& route, const model::TcpRoute& tr,
                   VirtualHost* h) {
    if (tr.match && tr.match->port && *tr.match->port != h->port) return;
    TcpRouteEntry e;
    e.name = route.id.name;
    e.targets = Targets(route, tr.action, *h);
    if (e.targets.empty()) return;
    e.index = next_slot_++;
    if (tr.timeout && tr.timeout->idle)
      e.idle_timeout = Millis(tr.timeout->idle->ToMillis());
    h->tcp_routes.push_back(std::move(e));
  }

  // `key` is the route's member, "httpRoute" or "http2Route".
  void AddHttpRoute(const model::Resource& route, const model::RouteSpec& spec,
                    const model::HttpRoute& hr, std::string_view key,
                    VirtualHost* h) {
    if (hr.match.port && *hr.match.port != h->port) return;
    auto matcher = proxy::HttpRouteMatcher::Compile(hr.match);
    if (!matcher.ok()) {
      Warn(route.id,
           absl::StrCat("spec.", std::string(key), ".",
                        matcher.status().message(), "; route skipped"));
      return;
    }
    HttpRouteEntry e;
    e.matcher = *std::move(matcher);
    AddHttpEntry(route, spec, hr.action, hr.retry_policy, hr.timeout,
                 std::move(e), h);
  }

  void AddGrpcRoute(const model::Resource& route, const model::RouteSpec& spec,
                    const model::GrpcRoute& gr, VirtualHost* h) {
    if (gr.match.port && *gr.match.port != h->port) return;
    auto matcher = proxy::GrpcRouteMatcher::Compile(gr.match);
    if (!matcher.ok()) {
      Warn(route.id, absl::StrCat("spec.grpcRoute.", matcher.status().message(),
                                  "; route skipped"));
      return;
    }
    HttpRouteEntry e;
    e.matcher = matcher->AsHttp();
    e.grpc_matcher = *std::move(matcher);
    e.grpc = true;
    AddHttpEntry(route, spec, gr.action, gr.retry_policy, gr.timeout,
                 std::move(e), h);
  }

  // What httpRoute, http2Route and grpcRoute entries share. A grpcRoute's
  // httpRetryEvents and tcpRetryEvents compile as on an httpRoute.
  void AddHttpEntry(const model::Resource& route, const model::RouteSpec& spec,
                    const model::RouteAction& action,
                    const std::optional<model::RetryPolicy>& retry,
                    const std::optional<model::HttpTimeout>& timeout,
                    HttpRouteEntry e, VirtualHost* h) {
    e.name = route.id.name;
    e.priority = spec.priority.value_or(-1);
    e.targets = Targets(route, action, *h);
    if (e.targets.empty()) return;
    e.index = next_slot_++;
    e.retry = retry ? CompileRetry(*retry) : ImplicitRetry();
    if (timeout) ApplyTimeout(*timeout, &e);
    h->http_routes.push_back(std::move(e));
  }

  template <typename Entry>
  static void SortRoutes(std::vector<Entry>* routes) {
    std::stable_sort(routes->begin(), routes->end(),
                     [](const Entry& a, const Entry& b) {
                       bool ap = a.priority >= 0, bp = b.priority >= 0;
                       if (ap != bp) return ap;
                       if (ap && a.priority != b.priority)
                         return a.priority < b.priority;
                       int as = a.Specificity();
                       int bs = b.Specificity();
                       if (as != bs) return as > bs;
                       return a.name < b.name;
                     });
  }

  bool WantGateway(const model::Resource& r) const {
    if (options_.gateways.empty()) return true;
    std::string name = absl::StrCat(r.id.mesh, "/", r.id.name);
    return std::find(options_.gateways.begin(), options_.gateways.end(),
                     name) != options_.gateways.end();
  }

  // The virtual host a gateway route's target means.
  std::optional<uint32_t> FindHost(const std::string& mesh,
                                   const std::string& service,
                                   std::optional<int32_t> port) const {
    std::optional<uint32_t> only;
    int count = 0;
    for (uint32_t i = 0; i < out_->virtual_hosts.size(); ++i) {
      const VirtualHost& h = out_->virtual_hosts[i];
      if (h.mesh != mesh || h.virtual_service != service || h.is_tcp())
        continue;
      if (port && h.port == *port) return i;
      if (!only) only = i;
      ++count;
    }
    if (port) return {};
    return only;
  }

  void AddGateway(const model::Resource& r) {
    const auto& spec = std::get<model::VirtualGatewaySpec>(r.spec);
    const auto& routes =
        children_[{ResourceKind::kGatewayRoute, r.id.mesh, r.id.name}];
    int32_t access_log = AddAccessLog(r.id, spec.logging);
    for (const model::VirtualGatewayListener& l : spec.listeners) {
      if (l.port_mapping.protocol == model::PortProtocol::kTcp) {
        // The decoder refuses it; a spec built in code might not.
        Warn(r.id, absl::StrCat("listener on port ", l.port_mapping.port,
                                " (tcp) is not served yet: App Mesh gateways "
                                "speak http, http2 and grpc"));
        continue;
      }
      GatewayListener g;
      g.mesh = r.id.mesh;
      g.virtual_gateway = r.id.name;
      g.port = static_cast<uint16_t>(l.port_mapping.port);
      g.protocol = l.port_mapping.protocol;
      g.access_log = access_log;
      for (const model::Resource* gr : routes) {
        const auto& gspec = std::get<model::GatewayRouteSpec>(gr->spec);
        // As on virtual routers, a listener serves its protocol's routes.
        std::optional<GatewayRouteEntry> e;
        if (g.protocol == model::PortProtocol::kHttp && gspec.http_route) {
          e = GatewayHttpEntry(*gr, *gspec.http_route, "httpRoute", g.port);
        } else if (g.protocol == model::PortProtocol::kHttp2 &&
                   gspec.http2_route) {
          e = GatewayHttpEntry(*gr, *gspec.http2_route, "http2Route", g.port);
        } else if (g.protocol == model::PortProtocol::kGrpc &&
                   gspec.grpc_route) {
          e = GatewayGrpcEntry(*gr, *gspec.grpc_route, g.port);
        }
        if (!e) continue;
        e->name = gr->id.name;
        e->priority = gspec.priority.value_or(-1);
        g.routes.push_back(*std::move(e));
      }
      SortRoutes(&g.routes);
      out_->gateways.push_back(std::move(g));
    }
  }

  // The virtual host of a gateway route's target; warns when there is none.
  std::optional<uint32_t> GatewayTarget(const model::Resource& gr,
                                        const model::GatewayRouteTarget& t) {
    auto host = FindHost(gr.id.mesh, t.virtual_service_name, t.port);
    if (!host) {
      Warn(gr.id,
           absl::StrCat("target virtual service ", t.virtual_service_name,
                        " has no http, http2 or grpc provider; route skipped"));
    }
    return host;
  }

  static bool RewritesHost(
      const std::optional<model::GatewayRouteHostnameRewrite>& rw) {
    return !rw || rw->default_target_hostname !=
                      model::DefaultGatewayRouteRewrite::kDisabled;
  }

  // A gateway httpRoute or http2Route (`key`) on the listener on `port`;
  // none when it does not apply there or cannot be served.
  std::optional<GatewayRouteEntry> GatewayHttpEntry(
      const model::Resource& gr, const model::HttpGatewayRoute& hr,
      std::string_view key, uint16_t port) {
    if (hr.match.port && *hr.match.port != port) return {};
    auto matcher = proxy::HttpRouteMatcher::Compile(hr.match);
    if (!matcher.ok()) {
      Warn(gr.id,
           absl::StrCat("spec.", std::string(key), ".",
                        matcher.status().message(), "; gateway route skipped"));
      return {};
    }
    auto host = GatewayTarget(gr, hr.action.target);
    if (!host) return {};
    auto rewrite = CompilePathRewrite(hr);
    if (!rewrite.ok()) {
      Warn(gr.id,
           absl::StrCat("spec.", std::string(key), ".",
                        rewrite.status().message(), "; gateway route skipped"));
      return {};
    }
    GatewayRouteEntry e;
    e.path_rewrite = *std::move(rewrite);
    e.matcher = *std::move(matcher);
    e.virtual_host = *host;
    e.rewrite_host = RewritesHost(
        hr.action.rewrite ? hr.action.rewrite->hostname : std::nullopt);
    return e;
  }

  // A gateway grpcRoute: the path is never rewritten (App Mesh has only
  // the hostname rewrite for gRPC).
  std::optional<GatewayRouteEntry> GatewayGrpcEntry(
      const model::Resource& gr, const model::GrpcGatewayRoute& route,
      uint16_t port) {
    if (route.match.port && *route.match.port != port) return {};
    auto matcher = proxy::GrpcRouteMatcher::Compile(route.match);
    if (!matcher.ok()) {
      Warn(gr.id, absl::StrCat("spec.grpcRoute.", matcher.status().message(),
                               "; gateway route skipped"));
      return {};
    }
    auto host = GatewayTarget(gr, route.action.target);
    if (!host) return {};
    GatewayRouteEntry e;
    e.matcher = matcher->AsHttp();
    e.grpc_matcher = *std::move(matcher);
    e.virtual_host = *host;
    e.rewrite_host = RewritesHost(
        route.action.rewrite ? route.action.rewrite->hostname : std::nullopt);
    return e;
  }

  const model::Snapshot& snap_;
  const CompileOptions& options_;
  LabelInterner* labels_;
  std::vector<std::string>* warnings_;
  std::shared_ptr<ProxyConfig> out_;
  uint32_t next_slot_ = 0;
  std::map<ChildKey, std::vector<const model::Resource*>> children_;
  std::map<std::pair<std::string, std::string>, std::vector<uint16_t>>
      node_ports_;
  std::map<ClusterKey, uint32_t> clusters_;
};

}  // namespace

std::shared_ptr<const ProxyConfig> CompileProxyConfig(
    const model::Snapshot& snapshot, const CompileOptions& options,
    LabelInterner* labels, std::vector<std::string>* warnings) {
  return Compiler(snapshot, options, labels, warnings).Run();
}

}  // namespace nodemesh::compile
