#pragma once

// Shapes shared by several App Mesh resource specs (API 2019-01-25):
// durations, port mappings, timeouts, header matches, TLS, logging,
// health checks and connection pools. Field names follow the API's
// camelCase keys in snake_case; comments give the key where it differs.
//
// Unions of the API ("exactly one of") are structs of std::optional
// members; the decoder reports an error unless exactly one is set, so code
// reading a decoded spec may rely on that.
// Lists whose API minimum is 1 item are plain vectors: empty means absent.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nodemesh::model {

enum class DurationUnit { kS, kMs };  // "s" | "ms"

// {"value": long >= 0, "unit": "s"|"ms"}. The API marks both members
// optional, but gives no meaning to a missing unit, so the decoder requires
// both (as the Kubernetes CRD does).
struct Duration {
  int64_t value = 0;
  DurationUnit unit = DurationUnit::kMs;

  // Saturates at INT64_MAX for huge second counts.
  int64_t ToMillis() const;
  static Duration Seconds(int64_t s) { return {s, DurationUnit::kS}; }
  static Duration Millis(int64_t ms) { return {ms, DurationUnit::kMs}; }
  friend bool operator==(const Duration&, const Duration&) = default;
};

// "http" | "tcp" | "http2" | "grpc". VirtualGateway listeners and health
// checks accept only http, http2 and grpc.
enum class PortProtocol { kHttp, kTcp, kHttp2, kGrpc };

// "IPv6_PREFERRED" | "IPv4_PREFERRED" | "IPv4_ONLY" | "IPv6_ONLY".
enum class IpPreference {
  kIPv6Preferred,
  kIPv4Preferred,
  kIPv4Only,
  kIPv6Only
};

// "STRICT" | "PERMISSIVE" | "DISABLED".
enum class TlsMode { kStrict, kPermissive, kDisabled };

// "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "CONNECT" | "OPTIONS" |
// "TRACE" | "PATCH".
enum class HttpMethod {
  kGet,
  kHead,
  kPost,
  kPut,
  kDelete,
  kConnect,
  kOptions,
  kTrace,
  kPatch,
};

// "http" | "https".
enum class HttpScheme { kHttp, kHttps };

// The API spelling of each enum value ("http2", "DROP_ALL", ...).
std::string_view EnumName(DurationUnit v);
std::string_view EnumName(PortProtocol v);
std::string_view EnumName(IpPreference v);
std::string_view EnumName(TlsMode v);
std::string_view EnumName(HttpMethod v);
std::string_view EnumName(HttpScheme v);

struct PortMapping {
  int32_t port = 0;  // 1..65535
  PortProtocol protocol = PortProtocol::kHttp;
  friend bool operator==(const PortMapping&, const PortMapping&) = default;
};

// HttpTimeout and GrpcTimeout of the API (identical shapes): route
// timeouts of http/http2/grpc routes and listener timeouts.
struct HttpTimeout {
  std::optional<Duration> per_request;  // "perRequest"; App Mesh default 15 s
  std::optional<Duration> idle;         // default none
  friend bool operator==(const HttpTimeout&, const HttpTimeout&) = default;
};
using GrpcTimeout = HttpTimeout;

struct TcpTimeout {
  std::optional<Duration> idle;  // default none
  friend bool operator==(const TcpTimeout&, const TcpTimeout&) = default;
};

// Start included, end excluded.
struct MatchRange {
  int64_t start = 0;
  int64_t end = 0;
  friend bool operator==(const MatchRange&, const MatchRange&) = default;
};

// Union HeaderMatchMethod / GrpcRouteMetadataMatchMethod /
// GrpcMetadataMatchMethod: exactly one member. Strings len 1..255.
struct HeaderMatchMethod {
  std::optional<std::string> exact;
  std::optional<std::string> prefix;
  std::optional<std::string> suffix;
  std::optional<std::string> regex;
  std::optional<MatchRange> range;
  friend bool operator==(const HeaderMatchMethod&,
                         const HeaderMatchMethod&) = default;
};

// An HTTP header match (HttpRouteHeader, HttpGatewayRouteHeader) or a gRPC
// metadata match (GrpcRouteMetadata, GrpcGatewayRouteMetadata).
struct HeaderMatch {
  std::string name;                        // len 1..50
  std::optional<bool> invert;              // default false
  std::optional<HeaderMatchMethod> match;  // absent: the header is present
  friend bool operator==(const HeaderMatch&, const HeaderMatch&) = default;
};

// HttpPathMatch: exact or regex (len 1..255).
struct HttpPathMatch {
  std::optional<std::string> exact;
  std::optional<std::string> regex;
  friend bool operator==(const HttpPathMatch&, const HttpPathMatch&) = default;
};

struct QueryParameterMatch {
  std::optional<std::string> exact;
  friend bool operator==(const QueryParameterMatch&,
                         const QueryParameterMatch&) = default;
};

struct HttpQueryParameter {
  std::string name;
  std::optional<QueryParameterMatch> match;  // absent: must be present only
  friend bool operator==(const HttpQueryParameter&,
                         const HttpQueryParameter&) = default;
};

// ---- TLS ----

struct TlsFileCertificate {
  std::string certificate_chain;  // "certificateChain", len 1..255
  std::string private_key;        // "privateKey", len 1..255
  friend bool operator==(const TlsFileCertificate&,
                         const TlsFileCertificate&) = default;
};

struct TlsSdsCertificate {
  std::string secret_name;  // "secretName"
  friend bool operator==(const TlsSdsCertificate&,
                         const TlsSdsCertificate&) = default;
};

struct TlsAcmCertificate {
  std::string certificate_arn;  // "certificateArn"
  friend bool operator==(const TlsAcmCertificate&,
                         const TlsAcmCertificate&) = default;
};

// Union ListenerTlsCertificate / VirtualGatewayListenerTlsCertificate
// (acm | file | sds) and ClientTlsCertificate (file | sds; the decoder
// rejects acm there).
struct TlsCertificate {
  std::optional<TlsAcmCertificate> acm;
  std::optional<TlsFileCertificate> file;
  std::optional<TlsSdsCertificate> sds;
  friend bool operator==(const TlsCertificate&,
                         const TlsCertificate&) = default;
};

struct TlsAcmTrust {
  // "certificateAuthorityArns", items 1..3.
  std::vector<std::string> certificate_authority_arns;
  friend bool operator==(const TlsAcmTrust&, const TlsAcmTrust&) = default;
};

struct TlsFileTrust {
  std::string certificate_chain;  // len 1..255
  friend bool operator==(const TlsFileTrust&, const TlsFileTrust&) = default;
};

struct TlsSdsTrust {
  std::string secret_name;
  friend bool operator==(const TlsSdsTrust&, const TlsSdsTrust&) = default;
};

// Union TlsValidationContextTrust (client policies: acm | file | sds) and
// ListenerTlsValidationContextTrust (listeners: file | sds; the decoder
// rejects acm there).
struct TlsValidationTrust {
  std::optional<TlsAcmTrust> acm;
  std::optional<TlsFileTrust> file;
  std::optional<TlsSdsTrust> sds;
  friend bool operator==(const TlsValidationTrust&,
                         const TlsValidationTrust&) = default;
};

// {"match": {"exact": [...]}}, each value len 1..254.
struct SubjectAlternativeNames {
  std::vector<std::string> match_exact;
  friend bool operator==(const SubjectAlternativeNames&,
                         const SubjectAlternativeNames&) = default;
};

struct TlsValidationContext {
  TlsValidationTrust trust;
  std::optional<SubjectAlternativeNames> subject_alternative_names;
  friend bool operator==(const TlsValidationContext&,
                         const TlsValidationContext&) = default;
};

// Server side TLS of a VirtualNode or VirtualGateway listener.
struct ListenerTls {
  TlsMode mode = TlsMode::kDisabled;
  TlsCertificate certificate;
  std::optional<TlsValidationContext> validation;  // set: mTLS
  friend bool operator==(const ListenerTls&, const ListenerTls&) = default;
};

// ClientPolicyTls / VirtualGatewayClientPolicyTls: TLS origination.
struct ClientPolicyTls {
  std::optional<bool> enforce;  // default true
  std::vector<int32_t> ports;   // each 1..65535; empty: every port
  std::optional<TlsCertificate> certificate;  // mTLS client certificate
  TlsValidationContext validation;
  friend bool operator==(const ClientPolicyTls&,
                         const ClientPolicyTls&) = default;
};

struct ClientPolicy {
  std::optional<ClientPolicyTls> tls;
  friend bool operator==(const ClientPolicy&, const ClientPolicy&) = default;
};

struct BackendDefaults {
  std::optional<ClientPolicy> client_policy;
  friend bool operator==(const BackendDefaults&,
                         const BackendDefaults&) = default;
};

// ---- Listener parts shared by VirtualNode and VirtualGateway ----

struct HealthCheckPolicy {
  int32_t healthy_threshold = 0;  // 2..10
  int64_t interval_millis = 0;    // 5000..300000
  std::optional<std::string> path;
  std::optional<int32_t> port;  // 1..65535; defaults to the listener port
  PortProtocol protocol = PortProtocol::kHttp;
  int64_t timeout_millis = 0;       // 2000..60000
  int32_t unhealthy_threshold = 0;  // 2..10
  friend bool operator==(const HealthCheckPolicy&,
                         const HealthCheckPolicy&) = default;
};

struct TcpConnectionPool {
  int32_t max_connections = 0;  // >= 1
  friend bool operator==(const TcpConnectionPool&,
                         const TcpConnectionPool&) = default;
};

struct HttpConnectionPool {
  int32_t max_connections = 0;                  // >= 1
  std::optional<int32_t> max_pending_requests;  // >= 1; default 2147483647
  friend bool operator==(const HttpConnectionPool&,
                         const HttpConnectionPool&) = default;
};

// Http2 and gRPC connection pools.
struct RequestConnectionPool {
  int32_t max_requests = 0;  // >= 1
  friend bool operator==(const RequestConnectionPool&,
                         const RequestConnectionPool&) = default;
};

// Union VirtualNodeConnectionPool (tcp | http | http2 | grpc) and
// VirtualGatewayConnectionPool (http | http2 | grpc; the decoder rejects
// tcp there).
struct ConnectionPool {
  std::optional<TcpConnectionPool> tcp;
  std::optional<HttpConnectionPool> http;
  std::optional<RequestConnectionPool> http2;
  std::optional<RequestConnectionPool> grpc;
  friend bool operator==(const ConnectionPool&,
                         const ConnectionPool&) = default;
};

// ---- Logging (VirtualNode and VirtualGateway) ----

struct JsonFormatRef {
  std::string key;    // len 1..100
  std::string value;  // len 1..100
  friend bool operator==(const JsonFormatRef&, const JsonFormatRef&) = default;
};

// Union LoggingFormat: json | text. `json` may hold zero entries (the API
// sets no minimum), so it is an optional vector.
struct LoggingFormat {
  std::optional<std::vector<JsonFormatRef>> json;
  std::optional<std::string> text;  // len 1..1000
  friend bool operator==(const LoggingFormat&, const LoggingFormat&) = default;
};

struct FileAccessLog {
  std::string path;  // len 1..255
  std::optional<LoggingFormat> format;
  friend bool operator==(const FileAccessLog&, const FileAccessLog&) = default;
};

// Union AccessLog: only `file`.
struct AccessLog {
  std::optional<FileAccessLog> file;
  friend bool operator==(const AccessLog&, const AccessLog&) = default;
};

struct Logging {
  std::optional<AccessLog> access_log;  // "accessLog"
  friend bool operator==(const Logging&, const Logging&) = default;
};

}  // namespace nodemesh::model
