#pragma once

// VirtualGateway and GatewayRoute specs (API 2019-01-25).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/model/types_common.h"

namespace nodemesh::model {

// "ENABLED" | "DISABLED".
enum class DefaultGatewayRouteRewrite { kEnabled, kDisabled };
std::string_view EnumName(DefaultGatewayRouteRewrite v);

// Like a VirtualNode listener without outlier detection and timeouts;
// protocols http | http2 | grpc only.
struct VirtualGatewayListener {
  PortMapping port_mapping;
  std::optional<ConnectionPool> connection_pool;  // no tcp member
  std::optional<HealthCheckPolicy> health_check;
  std::optional<ListenerTls> tls;
  friend bool operator==(const VirtualGatewayListener&,
                         const VirtualGatewayListener&) = default;
};

struct VirtualGatewaySpec {
  std::optional<BackendDefaults> backend_defaults;
  std::vector<VirtualGatewayListener> listeners;  // required
  std::optional<Logging> logging;

  std::vector<std::string> defaulted_fields;
  friend bool operator==(const VirtualGatewaySpec&,
                         const VirtualGatewaySpec&) = default;
};

struct GatewayRouteHostnameMatch {
  std::optional<std::string> exact;   // len 1..253
  std::optional<std::string> suffix;  // len 1..253
  friend bool operator==(const GatewayRouteHostnameMatch&,
                         const GatewayRouteHostnameMatch&) = default;
};

struct GatewayRouteTarget {
  std::string virtual_service_name;  // virtualService.virtualServiceName
  std::optional<int32_t> port;       // 1..65535
  friend bool operator==(const GatewayRouteTarget&,
                         const GatewayRouteTarget&) = default;
};

struct GatewayRouteHostnameRewrite {
  // "defaultTargetHostname"; App Mesh rewrites Host by default (ENABLED).
  std::optional<DefaultGatewayRouteRewrite> default_target_hostname;
  friend bool operator==(const GatewayRouteHostnameRewrite&,
                         const GatewayRouteHostnameRewrite&) = default;
};

struct HttpGatewayRoutePrefixRewrite {
  std::optional<DefaultGatewayRouteRewrite> default_prefix;  // "defaultPrefix"
  std::optional<std::string> value;                          // len 1..255
  friend bool operator==(const HttpGatewayRoutePrefixRewrite&,
                         const HttpGatewayRoutePrefixRewrite&) = default;
};

struct HttpGatewayRoutePathRewrite {
  std::optional<std::string> exact;  // len 1..255
  friend bool operator==(const HttpGatewayRoutePathRewrite&,
                         const HttpGatewayRoutePathRewrite&) = default;
};

struct HttpGatewayRouteRewrite {
  std::optional<GatewayRouteHostnameRewrite> hostname;
  std::optional<HttpGatewayRoutePathRewrite> path;
  std::optional<HttpGatewayRoutePrefixRewrite> prefix;
  friend bool operator==(const HttpGatewayRouteRewrite&,
                         const HttpGatewayRouteRewrite&) = default;
};

struct HttpGatewayRouteMatch {
  std::optional<std::string> prefix;
  std::optional<HttpPathMatch> path;
  std::optional<GatewayRouteHostnameMatch> hostname;
  std::optional<HttpMethod> method;
  std::vector<HeaderMatch> headers;                  // 1..10 items
  std::vector<HttpQueryParameter> query_parameters;  // 1..10 items
  std::optional<int32_t> port;
  friend bool operator==(const HttpGatewayRouteMatch&,
                         const HttpGatewayRouteMatch&) = default;
};

struct HttpGatewayRouteAction {
  GatewayRouteTarget target;
  std::optional<HttpGatewayRouteRewrite> rewrite;
  friend bool operator==(const HttpGatewayRouteAction&,
                         const HttpGatewayRouteAction&) = default;
};

// httpRoute and http2Route of a GatewayRoute.
struct HttpGatewayRoute {
  HttpGatewayRouteMatch match;
  HttpGatewayRouteAction action;
  friend bool operator==(const HttpGatewayRoute&,
                         const HttpGatewayRoute&) = default;
};

struct GrpcGatewayRouteMatch {
  std::optional<std::string> service_name;  // "serviceName"
  std::optional<GatewayRouteHostnameMatch> hostname;
  std::vector<HeaderMatch> metadata;  // 1..10 items
  std::optional<int32_t> port;
  friend bool operator==(const GrpcGatewayRouteMatch&,
                         const GrpcGatewayRouteMatch&) = default;
};

struct GrpcGatewayRouteRewrite {
  std::optional<GatewayRouteHostnameRewrite> hostname;
  friend bool operator==(const GrpcGatewayRouteRewrite&,
                         const GrpcGatewayRouteRewrite&) = default;
};

struct GrpcGatewayRouteAction {
  GatewayRouteTarget target;
  std::optional<GrpcGatewayRouteRewrite> rewrite;
  friend bool operator==(const GrpcGatewayRouteAction&,
                         const GrpcGatewayRouteAction&) = default;
};

struct GrpcGatewayRoute {
  GrpcGatewayRouteMatch match;
  GrpcGatewayRouteAction action;
  friend bool operator==(const GrpcGatewayRoute&,
                         const GrpcGatewayRoute&) = default;
};

// Union: exactly one of httpRoute | http2Route | grpcRoute.
struct GatewayRouteSpec {
  std::optional<int32_t> priority;  // 0..1000, 0 highest
  std::optional<HttpGatewayRoute> http_route;
  std::optional<HttpGatewayRoute> http2_route;
  std::optional<GrpcGatewayRoute> grpc_route;

  std::vector<std::string> defaulted_fields;
  friend bool operator==(const GatewayRouteSpec&,
                         const GatewayRouteSpec&) = default;
};

}  // namespace nodemesh::model
