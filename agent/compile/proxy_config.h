#pragma once

// The proxy's view of the mesh: a model snapshot compiled into lookup tables
// that worker threads read without locks. Built on the main thread, published
// as shared_ptr<const ProxyConfig>, never modified after.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "agent/model/snapshot.h"
#include "agent/net/socket.h"
#include "agent/proxy/access_log.h"
#include "agent/proxy/path_rewrite.h"
#include "agent/proxy/route_match.h"

namespace nodemesh::compile {

using Millis = std::chrono::milliseconds;

// A listener's connectionPool, for the whole node (workers take their share,
// see agent/proxy/worker.h). 0 means no limit: App Mesh configured Envoy's
// circuit breakers at 2147483647 when a listener had no connectionPool.
struct PoolLimits {
  uint32_t max_connections = 0;       // tcp and http
  uint32_t max_pending_requests = 0;  // http
  uint32_t max_requests = 0;          // http2 and grpc
  bool limited() const {
    return max_connections != 0 || max_pending_requests != 0 ||
           max_requests != 0;
  }
  friend bool operator==(const PoolLimits&, const PoolLimits&) = default;
};

// The limits a listener's connectionPool sets; a member that does not fit
// the listener's protocol is ignored (validation refuses such specs).
PoolLimits CompilePoolLimits(const model::ConnectionPool& pool,
                             model::PortProtocol protocol);

// Where the requests of one virtual node listener port go: the unit that
// endpoints, pools and balancing are kept for (Envoy's "cluster").
struct Cluster {
  std::string name;  // "<mesh>/<virtual node>:<port>"
  std::string mesh;
  std::string virtual_node;
  uint16_t port = 0;
  model::PortProtocol protocol = model::PortProtocol::kHttp;
  // dns service discovery; empty when the node has none (awsCloudMap, or
  // none at all: the workload registry serves those).
  std::string dns_hostname;
  bool dns_all_addresses = false;  // ENDPOINTS; LOADBALANCER takes one
  model::IpPreference ip_preference = model::IpPreference::kIPv4Preferred;
  // awsCloudMap service discovery: the workload registry's instances of
  // that namespace and service whose attributes match.
  std::optional<model::AwsCloudMapServiceDiscovery> cloud_map;
  // The listener terminates TLS (mode STRICT or PERMISSIVE): the kernel's
  // DIRECT path would bypass it, so such a cluster is always proxied.
  bool tls = false;
  // The listener's own timeouts (0: none). App Mesh enforced them in the
  // target's Envoy, the route's in the caller's; one proxy applies the
  // smaller of the two.
  Millis per_request_timeout{0};
  Millis idle_timeout{0};
  PoolLimits pool;
  // The node's access log (its Envoy's ingress), index into
  // ProxyConfig::access_logs; -1: none.
  int32_t access_log = -1;
  // The listener's passive and active endpoint checks; none when absent.
  std::optional<model::OutlierDetection> outlier_detection;
  std::optional<model::HealthCheckPolicy> health_check;
};

// The tighter of two timeouts where 0 means none.
inline Millis TighterTimeout(Millis a, Millis b) {
  if (a.count() == 0) return b;
  if (b.count() == 0) return a;
  return std::min(a, b);
}

// The labels a request is counted under. Interned: compiling an unchanged
// route again yields the same object, so per-worker counters keyed by its
// address survive reloads.
struct RouteLabels {
  std::string mesh;
  std::string virtual_service;
  std::string route;  // "" for a virtual service backed by a node directly
  std::string target_virtual_node;
};

struct WeightedCluster {
  uint32_t cluster = 0;  // index into ProxyConfig::clusters
  uint32_t weight = 0;
  std::shared_ptr<const RouteLabels> labels;
};

// App Mesh retry events, resolved into the checks the proxy makes.
struct RetryPolicy {
  uint32_t max_retries = 0;
  Millis per_try_timeout{0};      // 0: none
  bool server_error = false;      // any 5xx
  bool gateway_error = false;     // 502, 503, 504
  bool client_error = false;      // 409
  bool status_503 = false;        // App Mesh's implicit policy
  bool stream_error = false;      // upstream reset before a response
  bool connection_error = false;  // connect failed
  // grpcRetryEvents: the grpc-status of the response (Envoy reads it from
  // the response headers, i.e. a trailers-only reply, not from trailers
  // after a body).
  bool grpc_cancelled = false;           // 1
  bool grpc_deadline_exceeded = false;   // 4
  bool grpc_resource_exhausted = false;  // 8
  bool grpc_internal = false;            // 13
  bool grpc_unavailable = false;         // 14

  bool RetriesStatus(int status) const;
  // `grpc_status` is the numeric grpc-status (0 OK, 14 UNAVAILABLE, ...).
  bool RetriesGrpcStatus(int grpc_status) const;
};

struct HttpRouteEntry {
  std::string name;
  int32_t priority = -1;  // -1: none
  // The match of an httpRoute/http2Route or of a node-provided catch-all;
  // for a grpcRoute, grpc_matcher's equivalent HTTP match (so code still
  // reading `matcher` routes right). Sessions call Matches().
  proxy::HttpRouteMatcher matcher;
  std::optional<proxy::GrpcRouteMatcher> grpc_matcher;  // grpcRoute only
  // A gRPC route (grpcRoute, or a node's catch-all on a grpc listener): the
  // session reads grpc-timeout and grpc-status.
  bool grpc = false;
  std::vector<WeightedCluster> targets;
  uint32_t index = 0;  // global over the config: per-worker balancer slot
  RetryPolicy retry;
  Millis per_request_timeout{15000};  // 0: none
  Millis idle_timeout{0};             // 0: none

  bool Matches(const proxy::RequestView& r) const {
    return grpc_matcher ? grpc_matcher->Matches(r) : matcher.Matches(r);
  }
  int Specificity() const {
    return grpc_matcher ? grpc_matcher->Specificity() : matcher.Specificity();
  }
};

struct TcpRouteEntry {
  std::string name;
  std::vector<WeightedCluster> targets;
  uint32_t index = 0;
  Millis idle_timeout{0};
};

// One port of a virtual service, as callers reach it ("name:port").
struct VirtualHost {
  std::string mesh;
  std::string virtual_service;
  uint16_t port = 0;
  model::PortProtocol protocol = model::PortProtocol::kHttp;
  // Sorted: priority ascending, then routes without priority by
  // specificity (path exact, path regex, longest prefix), then by name.
  std::vector<HttpRouteEntry> http_routes;
  std::vector<TcpRouteEntry> tcp_routes;
  bool is_tcp() const { return protocol == model::PortProtocol::kTcp; }
};

struct GatewayRouteEntry {
  std::string name;
  int32_t priority = -1;
  // As in HttpRouteEntry: for a grpcRoute, grpc_matcher's HTTP equivalent.
  proxy::HttpRouteMatcher matcher;
  std::optional<proxy::GrpcRouteMatcher> grpc_matcher;  // grpcRoute only
  uint32_t virtual_host = 0;        // index into ProxyConfig::virtual_hosts
  bool rewrite_host = true;         // App Mesh's default: Host := service name
  proxy::PathRewrite path_rewrite;  // default: matched prefix -> "/"

  bool Matches(const proxy::RequestView& r) const {
    return grpc_matcher ? grpc_matcher->Matches(r) : matcher.Matches(r);
  }
  int Specificity() const {
    return grpc_matcher ? grpc_matcher->Specificity() : matcher.Specificity();
  }
};

// The path rewrite of a gateway httpRoute/http2Route (see
// agent/proxy/path_rewrite.h for App Mesh's rules). An error names the
// field under the route ("action.rewrite.prefix: ...") and says what to do.
absl::StatusOr<proxy::PathRewrite> CompilePathRewrite(
    const model::HttpGatewayRoute& route);

// A VirtualGateway listener this node serves.
struct GatewayListener {
  std::string mesh;
  std::string virtual_gateway;
  uint16_t port = 0;
  model::PortProtocol protocol = model::PortProtocol::kHttp;
  std::vector<GatewayRouteEntry> routes;  // sorted like HttpRouteEntry
  int32_t access_log = -1;                // index into ProxyConfig::access_logs
};

// One VirtualNode's or VirtualGateway's `logging.accessLog.file`.
struct AccessLogConfig {
  uint32_t sink = 0;  // index into ProxyConfig::access_log_paths
  std::shared_ptr<const proxy::AccessLogFormat> format;
};

struct ProxyConfig {
  uint64_t model_version = 0;
  std::vector<Cluster> clusters;
  std::vector<VirtualHost> virtual_hosts;
  std::vector<GatewayListener> gateways;
  uint32_t route_slots = 0;  // HttpRouteEntry/TcpRouteEntry::index bound

  // Access logs: each distinct path once (a worker opens one file each),
  // the formats, and the header fields they read.
  std::vector<std::string> access_log_paths;
  std::vector<AccessLogConfig> access_logs;
  proxy::AccessLogHeaderTable access_log_headers;
  // "mesh/virtualNode" -> index into access_logs, for nodes that log.
  absl::flat_hash_map<std::string, uint32_t> access_log_by_node;

  // "name" (lowercase) -> virtual hosts of that service, one per port.
  absl::flat_hash_map<std::string, std::vector<uint32_t>> by_name;
  // Port -> TCP virtual hosts on it (outbound TCP has no Host header).
  absl::flat_hash_map<uint16_t, std::vector<uint32_t>> tcp_by_port;

  // The virtual host for a request's authority ("name" or "name:port") and
  // the port it was sent to (0 when unknown). Null when none matches.
  const VirtualHost* FindHttpHost(std::string_view authority,
                                  uint16_t dst_port) const;
  // The TCP virtual host a connection to `dst_port` means, when the port
  // names exactly one.
  const VirtualHost* FindTcpHost(uint16_t dst_port) const;
  // The access log of virtual node "mesh/name"; -1: none.
  int32_t NodeAccessLog(std::string_view mesh_and_node) const;
  // The access log of the gateway listening on `port`; -1: none.
  int32_t GatewayAccessLog(uint16_t port) const;
};

// Interns RouteLabels across compilations (main thread only).
class LabelInterner {
 public:
  std::shared_ptr<const RouteLabels> Get(const RouteLabels& labels);

 private:
  absl::flat_hash_map<std::string, std::shared_ptr<const RouteLabels>> map_;
};

struct CompileOptions {
  // VirtualGateways this node runs, "mesh/name"; empty: every one.
  std::vector<std::string> gateways;
};

// Compiles a valid snapshot. Problems that validation lets through (a
// target port that no listener has, a regex RE2 refuses) skip the route
// with a warning in `warnings`; they never fail the whole config.
std::shared_ptr<const ProxyConfig> CompileProxyConfig(
    const model::Snapshot& snapshot, const CompileOptions& options,
    LabelInterner* labels, std::vector<std::string>* warnings);

}  // namespace nodemesh::compile
