#pragma once

// The API spelling of every spec enum, one table per enum, shared by
// EnumName(), the decoder and the encoder. Internal to nodemesh_model.

#include <span>
#include <string_view>

#include "agent/model/types.h"

namespace nodemesh::model::internal {

template <typename E>
struct EnumEntry {
  std::string_view name;
  E value;
};

inline constexpr EnumEntry<DurationUnit> kDurationUnits[] = {
    {"s", DurationUnit::kS}, {"ms", DurationUnit::kMs}};
inline constexpr EnumEntry<PortProtocol> kPortProtocols[] = {
    {"http", PortProtocol::kHttp},
    {"tcp", PortProtocol::kTcp},
    {"http2", PortProtocol::kHttp2},
    {"grpc", PortProtocol::kGrpc}};
inline constexpr EnumEntry<IpPreference> kIpPreferences[] = {
    {"IPv6_PREFERRED", IpPreference::kIPv6Preferred},
    {"IPv4_PREFERRED", IpPreference::kIPv4Preferred},
    {"IPv4_ONLY", IpPreference::kIPv4Only},
    {"IPv6_ONLY", IpPreference::kIPv6Only}};
inline constexpr EnumEntry<TlsMode> kTlsModes[] = {
    {"STRICT", TlsMode::kStrict},
    {"PERMISSIVE", TlsMode::kPermissive},
    {"DISABLED", TlsMode::kDisabled}};
inline constexpr EnumEntry<HttpMethod> kHttpMethods[] = {
    {"GET", HttpMethod::kGet},         {"HEAD", HttpMethod::kHead},
    {"POST", HttpMethod::kPost},       {"PUT", HttpMethod::kPut},
    {"DELETE", HttpMethod::kDelete},   {"CONNECT", HttpMethod::kConnect},
    {"OPTIONS", HttpMethod::kOptions}, {"TRACE", HttpMethod::kTrace},
    {"PATCH", HttpMethod::kPatch}};
inline constexpr EnumEntry<HttpScheme> kHttpSchemes[] = {
    {"http", HttpScheme::kHttp}, {"https", HttpScheme::kHttps}};
inline constexpr EnumEntry<EgressFilterType> kEgressFilterTypes[] = {
    {"ALLOW_ALL", EgressFilterType::kAllowAll},
    {"DROP_ALL", EgressFilterType::kDropAll}};
inline constexpr EnumEntry<GrpcRetryEvent> kGrpcRetryEvents[] = {
    {"cancelled", GrpcRetryEvent::kCancelled},
    {"deadline-exceeded", GrpcRetryEvent::kDeadlineExceeded},
    {"internal", GrpcRetryEvent::kInternal},
    {"resource-exhausted", GrpcRetryEvent::kResourceExhausted},
    {"unavailable", GrpcRetryEvent::kUnavailable}};
inline constexpr EnumEntry<TcpRetryEvent> kTcpRetryEvents[] = {
    {"connection-error", TcpRetryEvent::kConnectionError}};
inline constexpr EnumEntry<DnsResponseType> kDnsResponseTypes[] = {
    {"LOADBALANCER", DnsResponseType::kLoadBalancer},
    {"ENDPOINTS", DnsResponseType::kEndpoints}};
inline constexpr EnumEntry<DefaultGatewayRouteRewrite> kDefaultRewrites[] = {
    {"ENABLED", DefaultGatewayRouteRewrite::kEnabled},
    {"DISABLED", DefaultGatewayRouteRewrite::kDisabled}};

// EnumTable(E{}) picks the table of E by overload.
constexpr std::span<const EnumEntry<DurationUnit>> EnumTable(DurationUnit) {
  return kDurationUnits;
}
constexpr std::span<const EnumEntry<PortProtocol>> EnumTable(PortProtocol) {
  return kPortProtocols;
}
constexpr std::span<const EnumEntry<IpPreference>> EnumTable(IpPreference) {
  return kIpPreferences;
}
constexpr std::span<const EnumEntry<TlsMode>> EnumTable(TlsMode) {
  return kTlsModes;
}
constexpr std::span<const EnumEntry<HttpMethod>> EnumTable(HttpMethod) {
  return kHttpMethods;
}
constexpr std::span<const EnumEntry<HttpScheme>> EnumTable(HttpScheme) {
  return kHttpSchemes;
}
constexpr std::span<const EnumEntry<EgressFilterType>> EnumTable(
    EgressFilterType) {
  return kEgressFilterTypes;
}
constexpr std::span<const EnumEntry<GrpcRetryEvent>> EnumTable(GrpcRetryEvent) {
  return kGrpcRetryEvents;
}
constexpr std::span<const EnumEntry<TcpRetryEvent>> EnumTable(TcpRetryEvent) {
  return kTcpRetryEvents;
}
constexpr std::span<const EnumEntry<DnsResponseType>> EnumTable(
    DnsResponseType) {
  return kDnsResponseTypes;
}
constexpr std::span<const EnumEntry<DefaultGatewayRouteRewrite>> EnumTable(
    DefaultGatewayRouteRewrite) {
  return kDefaultRewrites;
}

template <typename E>
std::string_view NameOf(E value) {
  for (const auto& e : EnumTable(E{})) {
    if (e.value == value) return e.name;
  }
  return "?";
}

}  // namespace nodemesh::model::internal
