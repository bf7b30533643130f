#include "agent/proxy/route_match.h"

#include <algorithm>
#include <charconv>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "re2/re2.h"

namespace nodemesh::proxy {
namespace {

// Specificity weights: one prefix character outweighs everything but the
// path kind, so route order follows the path first, as App Mesh documents.
constexpr int kPathExactScore = 1'000'000;
constexpr int kPathRegexScore = 500'000;
constexpr int kPrefixCharScore = 1'000;
constexpr size_t kMaxPrefixChars = 400;
constexpr int kHostExactScore = 300;
constexpr int kHeaderScore = 10;
constexpr int kQueryScore = 10;
constexpr int kMethodScore = 5;
constexpr int kSchemeScore = 5;
constexpr int kPortScore = 5;

// Never destroyed: style forbids non-trivially destructible statics.
const http::HeaderList& EmptyHeaders() {
  static const http::HeaderList* const kEmpty = new http::HeaderList();
  return *kEmpty;
}

absl::StatusOr<std::shared_ptr<const re2::RE2>> CompileRegex(
    const std::string& pattern, const std::string& field) {
  re2::RE2::Options options;
  // The error goes into the Status; RE2 would also print it to stderr.
  options.set_log_errors(false);
  auto re = std::make_shared<const re2::RE2>(pattern, options);
  if (!re->ok()) {
    return absl::InvalidArgumentError(field +
                                      ": invalid regex: " + re->error());
  }
  return re;
}

bool FullMatch(std::string_view text, const re2::RE2& re) {
  return re2::RE2::FullMatch(re2::StringPiece(text.data(), text.size()), re);
}

char ToLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool EndsWithIgnoreCase(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         http::EqualsIgnoreCase(s.substr(s.size() - suffix.size()), suffix);
}

// The host of an authority: "h:80" -> "h", "[::1]:80" -> "[::1]".
std::string_view StripPort(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    return close == std::string_view::npos ? authority
                                           : authority.substr(0, close + 1);
  }
  size_t colon = authority.rfind(':');
  if (colon == std::string_view::npos) return authority;
  for (char c : authority.substr(colon + 1)) {
    if (c < '0' || c > '9') return authority;
  }
  return authority.substr(0, colon);
}

// Base 10 with an optional '-', nothing else: Envoy's range match rejects
// "+1", " 1" and "1.0" too.
std::optional<int64_t> ParseInt64(std::string_view s) {
  if (s.empty() || s.front() == '+') return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

absl::StatusOr<uint16_t> CompilePort(const std::optional<int32_t>& port) {
  if (!port.has_value()) return 0;
  if (*port < 1 || *port > 65535) {
    return absl::InvalidArgumentError("match.port: " + std::to_string(*port) +
                                      " is not a port (1..65535)");
  }
  return static_cast<uint16_t>(*port);
}

}  // namespace

void SplitTarget(std::string_view target, std::string_view* path,
                 std::string_view* query) {
  size_t hash = target.find('#');
  if (hash != std::string_view::npos) target = target.substr(0, hash);
  if (!target.empty() && target.front() != '/') {
    // Absolute-form: skip "scheme://authority". Anything else ("*" of
    // OPTIONS, garbage) is left as it is and matches only what it spells.
    size_t sep = target.find("://");
    size_t first_special = target.find_first_of("/?");
    if (sep != std::string_view::npos && sep < first_special) {
      std::string_view rest = target.substr(sep + 3);
      size_t start = rest.find_first_of("/?");
      if (start == std::string_view::npos) {
        *path = "/";
        *query = {};
        return;
      }
      target = rest.substr(start);
      if (target.front() == '?') {
        *path = "/";
        *query = target.substr(1);
        return;
      }
    }
  }
  size_t q = target.find('?');
  if (q == std::string_view::npos) {
    *path = target;
    *query = {};
  } else {
    *path = target.substr(0, q);
    *query = target.substr(q + 1);
  }
}

// ---- HeaderMatcher ----

absl::StatusOr<HeaderMatcher> HeaderMatcher::Compile(
    const model::HeaderMatch& m, std::string_view field) {
  const std::string f(field);
  if (m.name.empty()) {
    return absl::InvalidArgumentError(f + ".name: must not be empty");
  }
  HeaderMatcher h;
  h.name_ = m.name;
  h.invert_ = m.invert.value_or(false);
  if (!m.match.has_value()) return h;
  const model::HeaderMatchMethod& mm = *m.match;
  int set = mm.exact.has_value() + mm.prefix.has_value() +
            mm.suffix.has_value() + mm.regex.has_value() + mm.range.has_value();
  if (set != 1) {
    return absl::InvalidArgumentError(
        f + ".match: needs exactly one of exact, prefix, suffix, regex, range");
  }
  if (mm.exact.has_value()) {
    h.kind_ = Kind::kExact;
    h.value_ = *mm.exact;
  } else if (mm.prefix.has_value()) {
    h.kind_ = Kind::kPrefix;
    h.value_ = *mm.prefix;
  } else if (mm.suffix.has_value()) {
    h.kind_ = Kind::kSuffix;
    h.value_ = *mm.suffix;
  } else if (mm.regex.has_value()) {
    h.kind_ = Kind::kRegex;
    absl::StatusOr<std::shared_ptr<const re2::RE2>> re =
        CompileRegex(*mm.regex, f + ".match.regex");
    if (!re.ok()) return re.status();
    h.regex_ = *std::move(re);
  } else {
    h.kind_ = Kind::kRange;
    h.range_ = *mm.range;
  }
  return h;
}

bool HeaderMatcher::MatchesPresent(std::string_view value) const {
  switch (kind_) {
    case Kind::kPresent:
      return true;
    case Kind::kExact:
      return value == value_;
    case Kind::kPrefix:
      return value.starts_with(value_);
    case Kind::kSuffix:
      return value.ends_with(value_);
    case Kind::kRegex:
      return FullMatch(value, *regex_);
    case Kind::kRange: {
      std::optional<int64_t> v = ParseInt64(value);
      return v.has_value() && range_.start <= *v && *v < range_.end;
    }
  }
  return false;
}

bool HeaderMatcher::MatchesValue(std::optional<std::string_view> value) const {
  // Envoy: an absent header fails every match, and invert_match turns that
  // into a match.
  bool matched = value.has_value() && MatchesPresent(*value);
  return matched != invert_;
}

bool HeaderMatcher::Matches(const http::HeaderList& headers) const {
  const http::HeaderField* first = nullptr;
  bool several = false;
  for (const http::HeaderField& f : headers) {
    if (!http::EqualsIgnoreCase(f.name, name_)) continue;
    if (first != nullptr) {
      several = true;
      break;
    }
    first = &f;
  }
  if (first == nullptr) return MatchesValue(std::nullopt);
  if (!several) return MatchesValue(first->value);
  // Rare: a header on several lines is matched as one comma-joined value.
  std::string joined;
  for (const http::HeaderField& f : headers) {
    if (!http::EqualsIgnoreCase(f.name, name_)) continue;
    if (&f != first) joined += ',';
    joined += f.value;
  }
  return MatchesValue(joined);
}

// ---- HttpRouteMatcher ----

template <typename Match>
absl::StatusOr<HttpRouteMatcher> HttpRouteMatcher::CompileCommon(
    const Match& m) {
  HttpRouteMatcher r;
  if (m.prefix.has_value() && m.path.has_value()) {
    return absl::InvalidArgumentError(
        "match: prefix and path are mutually exclusive");
  }
  if (m.prefix.has_value()) {
    r.path_kind_ = PathKind::kPrefix;
    r.path_ = *m.prefix;
  } else if (m.path.has_value()) {
    if (m.path->exact.has_value() == m.path->regex.has_value()) {
      return absl::InvalidArgumentError(
          "match.path: needs exactly one of exact, regex");
    }
    if (m.path->exact.has_value()) {
      r.path_kind_ = PathKind::kExact;
      r.path_ = *m.path->exact;
    } else {
      r.path_kind_ = PathKind::kRegex;
      absl::StatusOr<std::shared_ptr<const re2::RE2>> re =
          CompileRegex(*m.path->regex, "match.path.regex");
      if (!re.ok()) return re.status();
      r.path_regex_ = *std::move(re);
    }
  }
  if (m.method.has_value()) r.method_ = std::string(model::EnumName(*m.method));
  absl::StatusOr<uint16_t> port = CompilePort(m.port);
  if (!port.ok()) return port.status();
  r.port_ = *port;
  if (absl::Status s = r.CompileHeaders(m.headers, "match.headers"); !s.ok())
    return s;
  r.query_.reserve(m.query_parameters.size());
  for (size_t i = 0; i < m.query_parameters.size(); ++i) {
    const model::HttpQueryParameter& q = m.query_parameters[i];
    if (q.name.empty()) {
      return absl::InvalidArgumentError("match.queryParameters[" +
                                        std::to_string(i) +
                                        "].name: must not be empty");
    }
    QueryMatcher qm;
    qm.name = q.name;
    if (q.match.has_value()) qm.exact = q.match->exact;
    r.query_.push_back(std::move(qm));
  }
  return r;
}

absl::Status HttpRouteMatcher::CompileHeaders(
    const std::vector<model::HeaderMatch>& headers, std::string_view field) {
  headers_.reserve(headers.size());
  for (size_t i = 0; i < headers.size(); ++i) {
    absl::StatusOr<HeaderMatcher> h = HeaderMatcher::Compile(
        headers[i], std::string(field) + "[" + std::to_string(i) + "]");
    if (!h.ok()) return h.status();
    headers_.push_back(*std::move(h));
  }
  return absl::OkStatus();
}

absl::Status HttpRouteMatcher::CompileHostname(
    const model::GatewayRouteHostnameMatch& h) {
  if (h.exact.has_value() == h.suffix.has_value()) {
    return absl::InvalidArgumentError(
        "match.hostname: needs exactly one of exact, suffix");
  }
  host_kind_ = h.exact.has_value() ? HostKind::kExact : HostKind::kSuffix;
  host_ = h.exact.has_value() ? *h.exact : *h.suffix;
  if (host_.empty()) {
    return absl::InvalidArgumentError("match.hostname: must not be empty");
  }
  // Hostnames compare case-insensitively; lower once here.
  for (char& c : host_) c = ToLower(c);
  return absl::OkStatus();
}

absl::StatusOr<HttpRouteMatcher> HttpRouteMatcher::Compile(
    const model::HttpRouteMatch& m) {
  absl::StatusOr<HttpRouteMatcher> r = CompileCommon(m);
  if (!r.ok()) return r;
  if (m.scheme.has_value())
    r->scheme_ = std::string(model::EnumName(*m.scheme));
  return r;
}

absl::StatusOr<HttpRouteMatcher> HttpRouteMatcher::Compile(
    const model::HttpGatewayRouteMatch& m) {
  absl::StatusOr<HttpRouteMatcher> r = CompileCommon(m);
  if (!r.ok()) return r;
  if (m.hostname.has_value()) {
    if (absl::Status s = r->CompileHostname(*m.hostname); !s.ok()) return s;
  }
  return r;
}

bool HttpRouteMatcher::MatchesHost(std::string_view authority) const {
  std::string_view host = StripPort(authority);
  switch (host_kind_) {
    case HostKind::kAny:
      return true;
    case HostKind::kExact:
      return http::EqualsIgnoreCase(host, host_);
    case HostKind::kSuffix:
      return EndsWithIgnoreCase(host, host_);
  }
  return false;
}

bool HttpRouteMatcher::MatchesQuery(std::string_view query,
                                    const QueryMatcher& q) {
  // Envoy keeps the first value of a repeated parameter, undecoded.
  while (true) {
    size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    size_t eq = param.find('=');
    std::string_view name = param.substr(0, eq);
    if (name == q.name) {
      if (!q.exact.has_value()) return true;
      std::string_view value = eq == std::string_view::npos
                                   ? std::string_view()
                                   : param.substr(eq + 1);
      return value == *q.exact;
    }
    if (amp == std::string_view::npos) return false;
    query.remove_prefix(amp + 1);
  }
}

bool HttpRouteMatcher::Matches(const RequestView& r) const {
  switch (path_kind_) {
    case PathKind::kAny:
      break;
    case PathKind::kPrefix:
      if (!r.path.starts_with(path_)) return false;
      break;
    case PathKind::kExact:
      if (r.path != path_) return false;
      break;
    case PathKind::kRegex:
      if (!FullMatch(r.path, *path_regex_)) return false;
      break;
  }
  if (method_.has_value() && r.method != *method_) return false;
  // Schemes are case-insensitive (RFC 3986 section 3.1).
  if (scheme_.has_value() && !http::EqualsIgnoreCase(r.scheme, *scheme_)) {
    return false;
  }
  if (port_ != 0 && r.port != port_) return false;
  if (!MatchesHost(r.authority)) return false;
  const http::HeaderList& headers =
      r.headers != nullptr ? *r.headers : EmptyHeaders();
  for (const HeaderMatcher& h : headers_) {
    if (!h.Matches(headers)) return false;
  }
  for (const QueryMatcher& q : query_) {
    if (!MatchesQuery(r.query, q)) return false;
  }
  return true;
}

int HttpRouteMatcher::Specificity() const {
  int score = 0;
  switch (path_kind_) {
    case PathKind::kAny:
      break;
    case PathKind::kPrefix:
      // Capped so that no prefix outranks a regex, whatever the decoder let
      // through (the API allows 255 characters).
      score += kPrefixCharScore * static_cast<int>(std::min<size_t>(
                                      path_.size(), kMaxPrefixChars));
      break;
    case PathKind::kExact:
      score += kPathExactScore;
      break;
    case PathKind::kRegex:
      score += kPathRegexScore;
      break;
  }
  switch (host_kind_) {
    case HostKind::kAny:
      break;
    case HostKind::kExact:
      score += kHostExactScore;
      break;
    case HostKind::kSuffix:
      // Hostnames are at most 253 chars: a longer suffix is narrower, and
      // any suffix is wider than an exact name.
      score += static_cast<int>(host_.size());
      break;
  }
  score += kHeaderScore * static_cast<int>(headers_.size());
  score += kQueryScore * static_cast<int>(query_.size());
  if (method_.has_value()) score += kMethodScore;
  if (scheme_.has_value()) score += kSchemeScore;
  if (port_ != 0) score += kPortScore;
  return score;
}

// ---- GrpcRouteMatcher ----

absl::StatusOr<GrpcRouteMatcher> GrpcRouteMatcher::CompileCommon(
    const std::optional<std::string>& service_name,
    const std::optional<std::string>& method_name,
    const std::vector<model::HeaderMatch>& metadata,
    const std::optional<int32_t>& port) {
  GrpcRouteMatcher g;
  HttpRouteMatcher& r = g.http_;
  if (service_name.has_value()) {
    // Empty would be the prefix "//": refuse rather than match nothing.
    if (service_name->empty()) {
      return absl::InvalidArgumentError(
          "match.serviceName: must not be empty; leave it out to match "
          "every service");
    }
    if (method_name.has_value()) {
      r.path_kind_ = HttpRouteMatcher::PathKind::kExact;
      r.path_ = "/" + *service_name + "/" + *method_name;
    } else {
      // The trailing '/' keeps "pkg.Svc" from matching "pkg.SvcV2".
      r.path_kind_ = HttpRouteMatcher::PathKind::kPrefix;
      r.path_ = "/" + *service_name + "/";
    }
  } else if (method_name.has_value()) {
    return absl::InvalidArgumentError(
        "match.methodName: needs match.serviceName (a gRPC call's path is "
        "/<serviceName>/<methodName>); add the service");
  }
  absl::StatusOr<uint16_t> p = CompilePort(port);
  if (!p.ok()) return p.status();
  r.port_ = *p;
  if (absl::Status s = r.CompileHeaders(metadata, "match.metadata"); !s.ok())
    return s;
  return g;
}

absl::StatusOr<GrpcRouteMatcher> GrpcRouteMatcher::Compile(
    const model::GrpcRouteMatch& m) {
  return CompileCommon(m.service_name, m.method_name, m.metadata, m.port);
}

absl::StatusOr<GrpcRouteMatcher> GrpcRouteMatcher::Compile(
    const model::GrpcGatewayRouteMatch& m) {
  absl::StatusOr<GrpcRouteMatcher> g =
      CompileCommon(m.service_name, std::nullopt, m.metadata, m.port);
  if (!g.ok()) return g;
  if (m.hostname.has_value()) {
    if (absl::Status s = g->http_.CompileHostname(*m.hostname); !s.ok())
      return s;
  }
  return g;
}

}  // namespace nodemesh::proxy
