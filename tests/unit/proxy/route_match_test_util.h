#pragma once

// Requests and matches for the route matcher tests.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "agent/proxy/route_match.h"
#include "gtest/gtest.h"

namespace nodemesh::proxy {

using model::GrpcGatewayRouteMatch;
using model::GrpcRouteMatch;
using model::HeaderMatch;
using model::HeaderMatchMethod;
using model::HttpGatewayRouteMatch;
using model::HttpPathMatch;
using model::HttpQueryParameter;
using model::HttpRouteMatch;
using model::MatchRange;
using model::QueryParameterMatch;

// A request as a test writes it; View() points into it.
struct Request {
  std::string target = "/";
  std::string method = "GET";
  std::string scheme = "http";
  std::string authority = "svc.local";
  uint16_t port = 8080;
  std::vector<std::pair<std::string, std::string>> headers;
};

// HttpRouteMatcher or GrpcRouteMatcher.
template <typename Matcher>
inline bool Matches(const Matcher& m, const Request& req) {
  http::HeaderList headers;
  for (const auto& [name, value] : req.headers) headers.Add(name, value);
  RequestView r;
  SplitTarget(req.target, &r.path, &r.query);
  r.method = req.method;
  r.scheme = req.scheme;
  r.authority = req.authority;
  r.port = req.port;
  r.headers = &headers;
  return m.Matches(r);
}

inline bool MatchesPath(const HttpRouteMatcher& m, std::string target) {
  Request req;
  req.target = std::move(target);
  return Matches(m, req);
}

// Compiles or fails the test; the fallback matches everything, so a test
// that goes on reports more failures rather than crashing.
template <typename Match>
inline HttpRouteMatcher MustCompile(const Match& m) {
  absl::StatusOr<HttpRouteMatcher> r = HttpRouteMatcher::Compile(m);
  if (!r.ok()) {
    ADD_FAILURE() << r.status();
    return *HttpRouteMatcher::Compile(HttpRouteMatch{});
  }
  return *std::move(r);
}

// As MustCompile, for gRPC matches.
template <typename Match>
inline GrpcRouteMatcher MustCompileGrpc(const Match& m) {
  absl::StatusOr<GrpcRouteMatcher> r = GrpcRouteMatcher::Compile(m);
  if (!r.ok()) {
    ADD_FAILURE() << r.status();
    return GrpcRouteMatcher();
  }
  return *std::move(r);
}

inline HeaderMatch Header(std::string name,
                          std::optional<HeaderMatchMethod> match,
                          std::optional<bool> invert = std::nullopt) {
  HeaderMatch h;
  h.name = std::move(name);
  h.match = std::move(match);
  h.invert = invert;
  return h;
}

inline HeaderMatchMethod Exact(std::string v) {
  HeaderMatchMethod m;
  m.exact = std::move(v);
  return m;
}
inline HeaderMatchMethod Prefix(std::string v) {
  HeaderMatchMethod m;
  m.prefix = std::move(v);
  return m;
}
inline HeaderMatchMethod Suffix(std::string v) {
  HeaderMatchMethod m;
  m.suffix = std::move(v);
  return m;
}
inline HeaderMatchMethod Regex(std::string v) {
  HeaderMatchMethod m;
  m.regex = std::move(v);
  return m;
}
inline HeaderMatchMethod Range(int64_t start, int64_t end) {
  HeaderMatchMethod m;
  m.range = MatchRange{start, end};
  return m;
}

inline HttpQueryParameter Query(
    std::string name, std::optional<std::string> exact = std::nullopt) {
  HttpQueryParameter q;
  q.name = std::move(name);
  if (exact.has_value()) q.match = QueryParameterMatch{std::move(exact)};
  return q;
}

inline HttpRouteMatch PrefixMatch(std::string prefix) {
  HttpRouteMatch m;
  m.prefix = std::move(prefix);
  return m;
}

inline HttpRouteMatch HeaderRoute(HeaderMatch h) {
  HttpRouteMatch m = PrefixMatch("/");
  m.headers.push_back(std::move(h));
  return m;
}

inline bool MatchesHeaders(
    const HttpRouteMatcher& m,
    std::vector<std::pair<std::string, std::string>> headers) {
  Request req;
  req.headers = std::move(headers);
  return Matches(m, req);
}

// ---- SplitTarget ----

}  // namespace nodemesh::proxy
