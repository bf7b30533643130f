#pragma once

// Counters a worker keeps for itself, written only by its own thread with
// no atomics or locks; the main thread gets copies by posting a collection
// closure to each worker (Worker::CollectStats) and merges them.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "agent/compile/proxy_config.h"
#include "agent/proxy/local_reply.h"

namespace nodemesh::proxy {

// Upper bounds, seconds, of nodemesh_request_duration_seconds.
inline constexpr std::array<double, 14> kDurationBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,    1,     2.5,  5,     10};

struct DurationHistogram {
  std::array<uint64_t, kDurationBuckets.size() + 1> counts{};  // last: +Inf
  double sum = 0;
  uint64_t count = 0;
  void Record(double seconds);
  void Merge(const DurationHistogram& other);
};

// What one route target saw (labels: mesh, source_virtual_node,
// virtual_service, route, target_virtual_node).
struct TargetCounters {
  DurationHistogram duration;
  uint64_t retries = 0;
  uint64_t timeouts = 0;        // per-request, per-try and idle
  uint64_t request_bytes = 0;   // request bodies forwarded
  uint64_t response_bytes = 0;  // response bodies returned
  void Merge(const TargetCounters& other);
};

// One cluster's connection pool on one worker (labels: mesh, virtual_node,
// port). Overflow kinds: `connections`, a request found maxConnections
// reached (it then waits, or overflows as `pending`); `pending`, refused
// because maxPendingRequests requests already wait; `requests`, refused at
// maxRequests; a tcpRoute connection refused at maxConnections counts as
// `connections`.
struct PoolCounters {
  std::string mesh;
  std::string virtual_node;
  uint16_t port = 0;
  uint64_t overflow_connections = 0;
  uint64_t overflow_pending = 0;
  uint64_t overflow_requests = 0;
  uint64_t pending = 0;  // gauge: requests waiting for a connection now
  void Merge(const PoolCounters& other);
};

// Why the tunnel between nodes refused a connection or a stream (either
// side; the label of nodemesh_tunnel_refused_total).
enum class TunnelRefusal {
  kUntrusted,        // the peer's chain does not lead to our roots
  kExpired,          // the peer's certificate is expired (or not yet valid)
  kNoCertificate,    // the client presented none
  kPlaintext,        // not TLS at all
  kHandshakeCut,     // the peer left before the handshake finished
  kHandshake,        // any other handshake failure
  kServerIdentity,   // the destination's certificate fails clientPolicy
  kNotLocal,         // CONNECT to an address that is no local endpoint
  kWrongIdentity,    // CONNECT to an endpoint of another identity than SNI
  kValidation,       // the caller fails the listener's validation
  kNotABackend,      // the caller's virtual node does not list the target
  kBadRequest,       // not a CONNECT, or no authority
  kEndpointConnect,  // the local endpoint refused the connection
  kNoCredentials,    // no certificate for the caller (no CA configured)
  kCount,
};
std::string_view TunnelRefusalName(TunnelRefusal r);

struct TunnelCounters {
  uint64_t connections_out = 0;  // TLS connections opened to other nodes
  uint64_t connections_in = 0;   // accepted on the tunnel port
  uint64_t streams_out = 0;      // CONNECT streams opened
  uint64_t streams_in = 0;       // CONNECT streams delivered locally
  uint64_t bytes_out = 0;        // TLS bytes written
  uint64_t bytes_in = 0;         // TLS bytes read
  std::array<uint64_t, static_cast<size_t>(TunnelRefusal::kCount)> refused{};
  void Refuse(TunnelRefusal r) { ++refused[static_cast<size_t>(r)]; }
  void Merge(const TunnelCounters& o);
};

struct WorkerStats {
  uint64_t downstream_cx_total = 0;
  uint64_t downstream_cx_active = 0;
  uint64_t downstream_rq_total = 0;
  uint64_t upstream_cx_total = 0;
  uint64_t upstream_cx_active = 0;
  uint64_t upstream_cx_connect_fail = 0;
  uint64_t upstream_rq_total = 0;  // attempts, retries included
  uint64_t retries = 0;
  uint64_t timeouts = 0;
  uint64_t tcp_cx_total = 0;
  uint64_t tcp_cx_active = 0;
  uint64_t tunnels_total = 0;           // Upgrade and CONNECT
  uint64_t downstream_h2_cx_total = 0;  // clients that spoke HTTP/2
  uint64_t downstream_h2_protocol_errors = 0;
  uint64_t upstream_h2_cx_total = 0;  // HTTP/2 connections to endpoints
  uint64_t upstream_h2_goaways = 0;   // GOAWAYs endpoints sent
  uint64_t listener_errors = 0;       // gateway listeners that could not bind
  uint64_t bytes_received = 0;        // from downstream
  uint64_t bytes_sent = 0;            // to downstream
  uint64_t access_log_lines = 0;
  uint64_t access_log_write_errors = 0;
  uint64_t access_log_open_errors = 0;
  std::array<uint64_t, static_cast<size_t>(LocalReason::kCount)>
      local_replies{};
  TunnelCounters tunnel;
  // VirtualGateway listeners with tls.
  uint64_t gateway_tls_handshakes = 0;  // TLS clients served
  uint64_t gateway_tls_plaintext = 0;   // plaintext clients (PERMISSIVE)
  uint64_t gateway_tls_failures = 0;    // handshakes or validation failed
  uint64_t gateway_tls_refused = 0;     // plaintext on a STRICT listener

  // Requests by source virtual node, route target and response code; the
  // labels and source names are interned and outlive every config
  // (LabelInterner and SourceInterner never forget).
  using TargetKey = std::pair<const std::string*, const compile::RouteLabels*>;
  using RequestKey = std::pair<TargetKey, int>;
  absl::flat_hash_map<RequestKey, uint64_t> requests;
  absl::flat_hash_map<TargetKey, TargetCounters> targets;
  // By cluster name. Node-based: a worker's pools point at their entry.
  absl::node_hash_map<std::string, PoolCounters> pools;

  void Merge(const WorkerStats& other);
};

}  // namespace nodemesh::proxy
