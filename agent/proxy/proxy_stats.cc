#include "agent/proxy/proxy_stats.h"

#include <algorithm>

namespace nodemesh::proxy {

void DurationHistogram::Record(double seconds) {
  size_t i = std::lower_bound(kDurationBuckets.begin(), kDurationBuckets.end(),
                              seconds) -
             kDurationBuckets.begin();
  ++counts[i];
  sum += seconds;
  ++count;
}

void DurationHistogram::Merge(const DurationHistogram& other) {
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
  sum += other.sum;
  count += other.count;
}

void TargetCounters::Merge(const TargetCounters& o) {
  duration.Merge(o.duration);
  retries += o.retries;
  timeouts += o.timeouts;
  request_bytes += o.request_bytes;
  response_bytes += o.response_bytes;
}

void PoolCounters::Merge(const PoolCounters& o) {
  if (mesh.empty()) {
    mesh = o.mesh;
    virtual_node = o.virtual_node;
    port = o.port;
  }
  overflow_connections += o.overflow_connections;
  overflow_pending += o.overflow_pending;
  overflow_requests += o.overflow_requests;
  pending += o.pending;
}

std::string_view TunnelRefusalName(TunnelRefusal r) {
  switch (r) {
    case TunnelRefusal::kUntrusted:
      return "untrusted";
    case TunnelRefusal::kExpired:
      return "expired";
    case TunnelRefusal::kNoCertificate:
      return "no_certificate";
    case TunnelRefusal::kPlaintext:
      return "plaintext";
    case TunnelRefusal::kHandshakeCut:
      return "handshake_cut";
    case TunnelRefusal::kHandshake:
      return "handshake";
    case TunnelRefusal::kServerIdentity:
      return "server_identity";
    case TunnelRefusal::kNotLocal:
      return "not_local";
    case TunnelRefusal::kWrongIdentity:
      return "wrong_identity";
    case TunnelRefusal::kValidation:
      return "validation";
    case TunnelRefusal::kNotABackend:
      return "not_a_backend";
    case TunnelRefusal::kBadRequest:
      return "bad_request";
    case TunnelRefusal::kEndpointConnect:
      return "endpoint_connect";
    case TunnelRefusal::kNoCredentials:
      return "no_credentials";
    case TunnelRefusal::kCount:
      break;
  }
  return "unknown";
}

void TunnelCounters::Merge(const TunnelCounters& o) {
  connections_out += o.connections_out;
  connections_in += o.connections_in;
  streams_out += o.streams_out;
  streams_in += o.streams_in;
  bytes_out += o.bytes_out;
  bytes_in += o.bytes_in;
  for (size_t i = 0; i < refused.size(); ++i) refused[i] += o.refused[i];
}

void WorkerStats::Merge(const WorkerStats& o) {
  downstream_cx_total += o.downstream_cx_total;
  downstream_cx_active += o.downstream_cx_active;
  downstream_rq_total += o.downstream_rq_total;
  upstream_cx_total += o.upstream_cx_total;
  upstream_cx_active += o.upstream_cx_active;
  upstream_cx_connect_fail += o.upstream_cx_connect_fail;
  upstream_rq_total += o.upstream_rq_total;
  retries += o.retries;
  timeouts += o.timeouts;
  tcp_cx_total += o.tcp_cx_total;
  tcp_cx_active += o.tcp_cx_active;
  tunnels_total += o.tunnels_total;
  downstream_h2_cx_total += o.downstream_h2_cx_total;
  downstream_h2_protocol_errors += o.downstream_h2_protocol_errors;
  upstream_h2_cx_total += o.upstream_h2_cx_total;
  upstream_h2_goaways += o.upstream_h2_goaways;
  listener_errors += o.listener_errors;
  bytes_received += o.bytes_received;
  bytes_sent += o.bytes_sent;
  access_log_lines += o.access_log_lines;
  access_log_write_errors += o.access_log_write_errors;
  access_log_open_errors += o.access_log_open_errors;
  for (size_t i = 0; i < local_replies.size(); ++i)
    local_replies[i] += o.local_replies[i];
  tunnel.Merge(o.tunnel);
  gateway_tls_handshakes += o.gateway_tls_handshakes;
  gateway_tls_plaintext += o.gateway_tls_plaintext;
  gateway_tls_failures += o.gateway_tls_failures;
  gateway_tls_refused += o.gateway_tls_refused;
  for (const auto& [k, v] : o.requests) requests[k] += v;
  for (const auto& [k, v] : o.targets) targets[k].Merge(v);
  for (const auto& [k, v] : o.pools) pools[k].Merge(v);
}

}  // namespace nodemesh::proxy
