#pragma once

// The Route spec (API 2019-01-25): httpRoute | http2Route | grpcRoute |
// tcpRoute of a VirtualRouter.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/model/types_common.h"

namespace nodemesh::model {

// "cancelled" | "deadline-exceeded" | "internal" | "resource-exhausted" |
// "unavailable".
enum class GrpcRetryEvent {
  kCancelled,
  kDeadlineExceeded,
  kInternal,
  kResourceExhausted,
  kUnavailable,
};
// "connection-error".
enum class TcpRetryEvent { kConnectionError };
std::string_view EnumName(GrpcRetryEvent v);
std::string_view EnumName(TcpRetryEvent v);

struct WeightedTarget {
  std::string virtual_node;     // "virtualNode", len 1..255
  int32_t weight = 0;           // 0..100, relative
  std::optional<int32_t> port;  // 1..65535; needed with several listeners
  friend bool operator==(const WeightedTarget&,
                         const WeightedTarget&) = default;
};

// HttpRouteAction, GrpcRouteAction and TcpRouteAction.
struct RouteAction {
  std::vector<WeightedTarget> weighted_targets;  // 1..10 items
  friend bool operator==(const RouteAction&, const RouteAction&) = default;
};

struct HttpRouteMatch {
  std::optional<std::string> prefix;  // starts with "/"
  std::optional<HttpPathMatch> path;
  std::optional<HttpMethod> method;
  std::optional<HttpScheme> scheme;
  std::vector<HeaderMatch> headers;                  // 1..10 items
  std::vector<HttpQueryParameter> query_parameters;  // 1..10 items
  std::optional<int32_t> port;                       // 1..65535
  friend bool operator==(const HttpRouteMatch&,
                         const HttpRouteMatch&) = default;
};

// HttpRetryPolicy and GrpcRetryPolicy (grpc_retry_events only on gRPC).
// The API wants at least one event list; cross-field checks are the
// validator's.
struct RetryPolicy {
  int64_t max_retries = 0;     // "maxRetries", >= 0
  Duration per_retry_timeout;  // "perRetryTimeout"
  // Any string of len 1..25 (1..25 items); documented: server-error,
  // gateway-error, client-error, stream-error.
  std::vector<std::string> http_retry_events;
  std::vector<TcpRetryEvent> tcp_retry_events;    // exactly 1 item
  std::vector<GrpcRetryEvent> grpc_retry_events;  // 1..5 items
  friend bool operator==(const RetryPolicy&, const RetryPolicy&) = default;
};

// httpRoute and http2Route.
struct HttpRoute {
  HttpRouteMatch match;
  RouteAction action;
  std::optional<RetryPolicy> retry_policy;
  std::optional<HttpTimeout> timeout;
  friend bool operator==(const HttpRoute&, const HttpRoute&) = default;
};

struct GrpcRouteMatch {
  std::optional<std::string> service_name;  // "serviceName"
  std::optional<std::string> method_name;   // "methodName", len 1..50
  std::vector<HeaderMatch> metadata;        // 1..10 items
  std::optional<int32_t> port;
  friend bool operator==(const GrpcRouteMatch&,
                         const GrpcRouteMatch&) = default;
};

struct GrpcRoute {
  GrpcRouteMatch match;
  RouteAction action;
  std::optional<RetryPolicy> retry_policy;
  std::optional<GrpcTimeout> timeout;
  friend bool operator==(const GrpcRoute&, const GrpcRoute&) = default;
};

struct TcpRouteMatch {
  std::optional<int32_t> port;
  friend bool operator==(const TcpRouteMatch&, const TcpRouteMatch&) = default;
};

struct TcpRoute {
  std::optional<TcpRouteMatch> match;
  RouteAction action;
  std::optional<TcpTimeout> timeout;
  friend bool operator==(const TcpRoute&, const TcpRoute&) = default;
};

// The retry policy App Mesh gave Envoy for an http/http2/grpc route without
// a retryPolicy (appmesh-model.md "Route", roadmap #229). It is not
// expressible in the API's RetryPolicy shape (503 alone, connect-failure,
// host-selection attempts), so it lives beside it and is never encoded.
struct ImplicitRetryPolicy {
  int32_t num_retries = 2;
  // Envoy retry_on conditions.
  std::vector<std::string> retry_on = {"unavailable", "connect-failure",
                                       "refused-stream",
                                       "retriable-status-codes"};
  std::vector<int32_t> retriable_status_codes = {503};
  int32_t host_selection_retry_max_attempts = 5;
  bool previous_hosts_predicate = true;
  friend bool operator==(const ImplicitRetryPolicy&,
                         const ImplicitRetryPolicy&) = default;
};

// Union: exactly one of httpRoute | http2Route | grpcRoute | tcpRoute.
struct RouteSpec {
  std::optional<int32_t> priority;  // 0..1000, 0 highest
  std::optional<HttpRoute> http_route;
  std::optional<HttpRoute> http2_route;
  std::optional<GrpcRoute> grpc_route;
  std::optional<TcpRoute> tcp_route;

  // Set by ApplyDefaults() when the route has no retryPolicy.
  std::optional<ImplicitRetryPolicy> implicit_retry_policy;
  std::vector<std::string> defaulted_fields;
  friend bool operator==(const RouteSpec&, const RouteSpec&) = default;
};

}  // namespace nodemesh::model
