#pragma once

// Request matching for App Mesh routes and gateway routes, with the
// semantics of the Envoy configuration App Mesh generates. Matchers are
// compiled once per snapshot on the main thread (regexes included) and then
// used read-only by every worker; Matches() does not allocate, except to
// join a header that appears on several lines.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/http/header_list.h"
#include "agent/model/types_common.h"
#include "agent/model/types_gateway.h"
#include "agent/model/types_route.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace nodemesh::proxy {

// What a route match looks at; views valid only during the call.
struct RequestView {
  std::string_view method;     // "GET"
  std::string_view path;       // request target up to '?', e.g. "/a/b"
  std::string_view query;      // after '?', without it; may be empty
  std::string_view scheme;     // "http" | "https"
  std::string_view authority;  // Host header value (may include ":port")
  uint16_t port = 0;  // destination port the request was sent to; 0 unknown
  const http::HeaderList* headers = nullptr;  // null: no headers
};

// Splits a request target into path and query. A fragment ('#...') is
// dropped, as Envoy strips it before matching. An absolute-form target
// ("http://h/a?b") yields its path ("/a", or "/" when it has none), so
// requests sent to the proxy as a forward proxy match like origin-form ones.
void SplitTarget(std::string_view target, std::string_view* path,
                 std::string_view* query);

// A compiled App Mesh header match (HttpRouteHeader, HttpGatewayRouteHeader)
// or gRPC metadata match.
class HeaderMatcher {
 public:
  // `field` names the match in errors, e.g. "match.headers[1]".
  static absl::StatusOr<HeaderMatcher> Compile(
      const model::HeaderMatch& m, std::string_view field = "header");

  // All lines called name() (case-insensitive), joined with "," when there
  // are several, as Envoy does.
  bool Matches(const http::HeaderList& headers) const;
  // The same for an already collected value; nullopt: the header is absent.
  bool MatchesValue(std::optional<std::string_view> value) const;

  const std::string& name() const { return name_; }

 private:
  enum class Kind { kPresent, kExact, kPrefix, kSuffix, kRegex, kRange };

  HeaderMatcher() = default;
  bool MatchesPresent(std::string_view value) const;

  std::string name_;
  Kind kind_ = Kind::kPresent;
  bool invert_ = false;
  std::string value_;                      // exact, prefix, suffix
  std::shared_ptr<const re2::RE2> regex_;  // regex
  model::MatchRange range_;                // range
};

// A compiled httpRoute/http2Route match, or a GatewayRoute http/http2 match.
class HttpRouteMatcher {
 public:
  // Matches every request (a virtual service backed by a node directly).
  HttpRouteMatcher() = default;
  static absl::StatusOr<HttpRouteMatcher> Compile(
      const model::HttpRouteMatch& m);
  static absl::StatusOr<HttpRouteMatcher> Compile(
      const model::HttpGatewayRouteMatch& m);

  bool Matches(const RequestView& r) const;

  // Orders routes that have no priority: higher is more specific
  // (path exact > path regex > longer prefix; hostname, headers, query,
  // method, scheme and port add less than one prefix character).
  int Specificity() const;

 private:
  // Builds its match out of the same parts (see there).
  friend class GrpcRouteMatcher;

  enum class PathKind { kAny, kPrefix, kExact, kRegex };
  enum class HostKind { kAny, kExact, kSuffix };

  // A query parameter match: present, or present with a raw value.
  struct QueryMatcher {
    std::string name;
    std::optional<std::string> exact;
  };

  // The parts HttpRouteMatch and HttpGatewayRouteMatch share.
  template <typename Match>
  static absl::StatusOr<HttpRouteMatcher> CompileCommon(const Match& m);
  // `field` names the list in errors: "match.headers", "match.metadata".
  absl::Status CompileHeaders(const std::vector<model::HeaderMatch>& headers,
                              std::string_view field);
  absl::Status CompileHostname(const model::GatewayRouteHostnameMatch& h);
  bool MatchesHost(std::string_view authority) const;
  static bool MatchesQuery(std::string_view query, const QueryMatcher& q);

  PathKind path_kind_ = PathKind::kAny;
  std::string path_;  // prefix or exact path
  std::shared_ptr<const re2::RE2> path_regex_;
  HostKind host_kind_ = HostKind::kAny;
  std::string host_;  // exact hostname or suffix
  std::optional<std::string> method_;
  std::optional<std::string> scheme_;
  uint16_t port_ = 0;  // 0: any port
  std::vector<HeaderMatcher> headers_;
  std::vector<QueryMatcher> query_;
};

// A compiled grpcRoute match, or a GatewayRoute grpcRoute match. App Mesh
// hands Envoy the equivalent HTTP route match, and so does this: a gRPC
// call's path is "/<serviceName>/<methodName>", so serviceName alone is the
// prefix "/<serviceName>/", serviceName with methodName the exact path, and
// neither any path; metadata are HTTP/2 headers, matched like route headers
// (invert and range included); hostname and port as on HTTP routes.
// Content-type is not checked: a grpc listener carries only gRPC.
class GrpcRouteMatcher {
 public:
  // Matches every request.
  GrpcRouteMatcher() = default;
  // Refuses a methodName without serviceName, as App Mesh does.
  static absl::StatusOr<GrpcRouteMatcher> Compile(
      const model::GrpcRouteMatch& m);
  static absl::StatusOr<GrpcRouteMatcher> Compile(
      const model::GrpcGatewayRouteMatch& m);

  bool Matches(const RequestView& r) const { return http_.Matches(r); }

  // On HttpRouteMatcher's scale, the score of the equivalent HTTP match:
  // service and method (an exact path) > service (a prefix) > neither;
  // metadata, hostname and port add less than one character of the
  // service name.
  int Specificity() const { return http_.Specificity(); }

  // The same match as an HTTP route match (what Envoy is given).
  const HttpRouteMatcher& AsHttp() const { return http_; }

 private:
  static absl::StatusOr<GrpcRouteMatcher> CompileCommon(
      const std::optional<std::string>& service_name,
      const std::optional<std::string>& method_name,
      const std::vector<model::HeaderMatch>& metadata,
      const std::optional<int32_t>& port);

  HttpRouteMatcher http_;  // the equivalent path, header and port match
};

}  // namespace nodemesh::proxy
