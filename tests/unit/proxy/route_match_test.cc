#include "agent/proxy/route_match.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace nodemesh::proxy {
namespace {

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

bool Matches(const HttpRouteMatcher& m, const Request& req) {
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

bool MatchesPath(const HttpRouteMatcher& m, std::string target) {
  Request req;
  req.target = std::move(target);
  return Matches(m, req);
}

// Compiles or fails the test; the fallback matches everything, so a test
// that goes on reports more failures rather than crashing.
template <typename Match>
HttpRouteMatcher MustCompile(const Match& m) {
  absl::StatusOr<HttpRouteMatcher> r = HttpRouteMatcher::Compile(m);
  if (!r.ok()) {
    ADD_FAILURE() << r.status();
    return *HttpRouteMatcher::Compile(HttpRouteMatch{});
  }
  return *std::move(r);
}

HeaderMatch Header(std::string name, std::optional<HeaderMatchMethod> match,
                   std::optional<bool> invert = std::nullopt) {
  HeaderMatch h;
  h.name = std::move(name);
  h.match = std::move(match);
  h.invert = invert;
  return h;
}

HeaderMatchMethod Exact(std::string v) {
  HeaderMatchMethod m;
  m.exact = std::move(v);
  return m;
}
HeaderMatchMethod Prefix(std::string v) {
  HeaderMatchMethod m;
  m.prefix = std::move(v);
  return m;
}
HeaderMatchMethod Suffix(std::string v) {
  HeaderMatchMethod m;
  m.suffix = std::move(v);
  return m;
}
HeaderMatchMethod Regex(std::string v) {
  HeaderMatchMethod m;
  m.regex = std::move(v);
  return m;
}
HeaderMatchMethod Range(int64_t start, int64_t end) {
  HeaderMatchMethod m;
  m.range = MatchRange{start, end};
  return m;
}

HttpQueryParameter Query(std::string name,
                         std::optional<std::string> exact = std::nullopt) {
  HttpQueryParameter q;
  q.name = std::move(name);
  if (exact.has_value()) q.match = QueryParameterMatch{std::move(exact)};
  return q;
}

HttpRouteMatch PrefixMatch(std::string prefix) {
  HttpRouteMatch m;
  m.prefix = std::move(prefix);
  return m;
}

HttpRouteMatch HeaderRoute(HeaderMatch h) {
  HttpRouteMatch m = PrefixMatch("/");
  m.headers.push_back(std::move(h));
  return m;
}

bool MatchesHeaders(const HttpRouteMatcher& m,
                    std::vector<std::pair<std::string, std::string>> headers) {
  Request req;
  req.headers = std::move(headers);
  return Matches(m, req);
}

// ---- SplitTarget ----

TEST(SplitTargetTest, OriginForm) {
  std::string_view path, query;
  SplitTarget("/a/b?x=1&y", &path, &query);
  EXPECT_EQ(path, "/a/b");
  EXPECT_EQ(query, "x=1&y");
  SplitTarget("/a", &path, &query);
  EXPECT_EQ(path, "/a");
  EXPECT_EQ(query, "");
  SplitTarget("/a?", &path, &query);
  EXPECT_EQ(path, "/a");
  EXPECT_EQ(query, "");
  SplitTarget("/a?b?c", &path, &query);
  EXPECT_EQ(path, "/a");
  EXPECT_EQ(query, "b?c");
}

TEST(SplitTargetTest, FragmentDropped) {
  std::string_view path, query;
  SplitTarget("/a?x=1#frag", &path, &query);
  EXPECT_EQ(path, "/a");
  EXPECT_EQ(query, "x=1");
  SplitTarget("/a#frag?x=1", &path, &query);
  EXPECT_EQ(path, "/a");
  EXPECT_EQ(query, "");
}

TEST(SplitTargetTest, AbsoluteFormAndAsterisk) {
  std::string_view path, query;
  SplitTarget("http://h:80/p/q?x=1", &path, &query);
  EXPECT_EQ(path, "/p/q");
  EXPECT_EQ(query, "x=1");
  SplitTarget("https://h", &path, &query);
  EXPECT_EQ(path, "/");
  EXPECT_EQ(query, "");
  SplitTarget("http://h?x=1", &path, &query);
  EXPECT_EQ(path, "/");
  EXPECT_EQ(query, "x=1");
  SplitTarget("*", &path, &query);
  EXPECT_EQ(path, "*");
  EXPECT_EQ(query, "");
}

// ---- Path ----

TEST(HttpRouteMatcherTest, SlashPrefixMatchesEverything) {
  HttpRouteMatcher m = MustCompile(PrefixMatch("/"));
  EXPECT_TRUE(MatchesPath(m, "/"));
  EXPECT_TRUE(MatchesPath(m, "/a/b?c=d"));
}

TEST(HttpRouteMatcherTest, PrefixIsPlainCaseSensitiveStringPrefix) {
  HttpRouteMatcher m = MustCompile(PrefixMatch("/api"));
  EXPECT_TRUE(MatchesPath(m, "/api"));
  EXPECT_TRUE(MatchesPath(m, "/api/v1"));
  EXPECT_TRUE(MatchesPath(m, "/apix"));  // not segment-aware, as in Envoy
  EXPECT_TRUE(MatchesPath(m, "/api?x=1"));
  EXPECT_FALSE(MatchesPath(m, "/ap"));
  EXPECT_FALSE(MatchesPath(m, "/API"));
  EXPECT_FALSE(MatchesPath(m, "/v1/api"));
  EXPECT_FALSE(MatchesPath(m, "/x?/api"));  // the query is not the path
}

TEST(HttpRouteMatcherTest, NoPrefixNorPathMatchesAnyPath) {
  HttpRouteMatch match;
  match.method = model::HttpMethod::kGet;
  HttpRouteMatcher m = MustCompile(match);
  EXPECT_TRUE(MatchesPath(m, "/"));
  EXPECT_TRUE(MatchesPath(m, "/anything/at/all?x"));
}

TEST(HttpRouteMatcherTest, PathExactExcludesQuery) {
  HttpRouteMatch match;
  match.path = HttpPathMatch{"/a", std::nullopt};
  HttpRouteMatcher m = MustCompile(match);
  EXPECT_TRUE(MatchesPath(m, "/a"));
  EXPECT_TRUE(MatchesPath(m, "/a?x=1"));
  EXPECT_FALSE(MatchesPath(m, "/a/"));
  EXPECT_FALSE(MatchesPath(m, "/A"));
  EXPECT_FALSE(MatchesPath(m, "/ab"));
}

TEST(HttpRouteMatcherTest, PathRegexIsFullMatchOnPath) {
  HttpRouteMatch match;
  match.path = HttpPathMatch{std::nullopt, "/users/[0-9]+"};
  HttpRouteMatcher m = MustCompile(match);
  EXPECT_TRUE(MatchesPath(m, "/users/12"));
  EXPECT_TRUE(MatchesPath(m, "/users/12?x=y"));
  EXPECT_FALSE(MatchesPath(m, "/users/12/x"));
  EXPECT_FALSE(MatchesPath(m, "/v1/users/12"));
  EXPECT_FALSE(MatchesPath(m, "/users/"));
}

// ---- Method, scheme, port ----

TEST(HttpRouteMatcherTest, Method) {
  HttpRouteMatch match = PrefixMatch("/");
  match.method = model::HttpMethod::kPost;
  HttpRouteMatcher m = MustCompile(match);
  Request req;
  req.method = "POST";
  EXPECT_TRUE(Matches(m, req));
  req.method = "GET";
  EXPECT_FALSE(Matches(m, req));
  req.method = "post";  // methods are case-sensitive (RFC 9110)
  EXPECT_FALSE(Matches(m, req));
}

TEST(HttpRouteMatcherTest, Scheme) {
  HttpRouteMatch match = PrefixMatch("/");
  match.scheme = model::HttpScheme::kHttps;
  HttpRouteMatcher m = MustCompile(match);
  Request req;
  req.scheme = "https";
  EXPECT_TRUE(Matches(m, req));
  req.scheme = "http";
  EXPECT_FALSE(Matches(m, req));
}

TEST(HttpRouteMatcherTest, Port) {
  HttpRouteMatch match = PrefixMatch("/");
  match.port = 9090;
  HttpRouteMatcher m = MustCompile(match);
  Request req;
  req.port = 9090;
  EXPECT_TRUE(Matches(m, req));
  req.port = 8080;
  EXPECT_FALSE(Matches(m, req));
  req.port = 0;  // unknown never matches a port match
  EXPECT_FALSE(Matches(m, req));
}

TEST(HttpRouteMatcherTest, BadPortIsAnError) {
  HttpRouteMatch match = PrefixMatch("/");
  match.port = 70000;
  absl::StatusOr<HttpRouteMatcher> m = HttpRouteMatcher::Compile(match);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("match.port"), std::string::npos)
      << m.status();
}

// ---- Headers ----

TEST(HeaderMatchTest, Present) {
  HttpRouteMatcher m = MustCompile(HeaderRoute(Header("x-a", std::nullopt)));
  EXPECT_TRUE(MatchesHeaders(m, {{"x-a", "1"}}));
  EXPECT_TRUE(MatchesHeaders(m, {{"X-A", ""}}));  // names ignore case
  EXPECT_FALSE(MatchesHeaders(m, {{"x-b", "1"}}));
  EXPECT_FALSE(MatchesHeaders(m, {}));
}

TEST(HeaderMatchTest, Exact) {
  HttpRouteMatcher m = MustCompile(HeaderRoute(Header("x-a", Exact("v1"))));
  EXPECT_TRUE(MatchesHeaders(m, {{"x-a", "v1"}}));
  EXPECT_FALSE(MatchesHeaders(m, {{"x-a", "V1"}}));  // values keep case
  EXPECT_FALSE(MatchesHeaders(m, {{"x-a", "v12"}}));
  EXPECT_FALSE(MatchesHeaders(m, {}));
}

TEST(HeaderMatchTest, PrefixAndSuffix) {
  HttpRouteMatcher p = MustCompile(HeaderRoute(Header("x-a", Prefix("ab"))));
  EXPECT_TRUE(MatchesHeaders(p, {{"x-a", "ab"}}));
  EXPECT_TRUE(MatchesHeaders(p, {{"x-a", "abc"}}));
  EXPECT_FALSE(MatchesHeaders(p, {{"x-a", "a"}}));
  EXPECT_FALSE(MatchesHeaders(p, {{"x-a", "cab"}}));

  HttpRouteMatcher s = MustCompile(HeaderRoute(Header("x-a", Suffix("ab"))));
  EXPECT_TRUE(MatchesHeaders(s, {{"x-a", "ab"}}));
  EXPECT_TRUE(MatchesHeaders(s, {{"x-a", "cab"}}));
  EXPECT_FALSE(MatchesHeaders(s, {{"x-a", "abc"}}));
  EXPECT_FALSE(MatchesHeaders(s, {{"x-a", "b"}}));
}

TEST(HeaderMatchTest, RegexIsFullMatch) {
  HttpRouteMatcher m =
      MustCompile(HeaderRoute(Header("x-a", Regex("v[0-9]+"))));
  EXPECT_TRUE(MatchesHeaders(m, {{"x-a", "v12"}}));
  EXPECT_FALSE(MatchesHeaders(m, {{"x-a", "v12x"}}));
  EXPECT_FALSE(MatchesHeaders(m, {{"x-a", "xv12"}}));
  EXPECT_FALSE(MatchesHeaders(m, {}));
}

TEST(HeaderMatchTest, RangeEdges) {
  HttpRouteMatcher m = MustCompile(HeaderRoute(Header("x-n", Range(10, 20))));
  EXPECT_TRUE(MatchesHeaders(m, {{"x-n", "10"}}));  // start included
  EXPECT_TRUE(MatchesHeaders(m, {{"x-n", "19"}}));
  EXPECT_FALSE(MatchesHeaders(m, {{"x-n", "20"}}));  // end excluded
  EXPECT_FALSE(MatchesHeaders(m, {{"x-n", "9"}}));
  EXPECT_TRUE(MatchesHeaders(m, {{"x-n", "015"}}));
  // Not a plain base-10 integer.
  for (const char* bad : {"", "-", "+15", " 15", "15 ", "15.0", "0x10", "1e1",
                          "fifteen", "99999999999999999999"}) {
    EXPECT_FALSE(MatchesHeaders(m, {{"x-n", bad}})) << "'" << bad << "'";
  }
}

TEST(HeaderMatchTest, RangeNegativeAndExtremes) {
  HttpRouteMatcher m = MustCompile(HeaderRoute(Header("x-n", Range(-10, 0))));
  EXPECT_TRUE(MatchesHeaders(m, {{"x-n", "-10"}}));
  EXPECT_TRUE(MatchesHeaders(m, {{"x-n", "-1"}}));
  EXPECT_FALSE(MatchesHeaders(m, {{"x-n", "0"}}));
  EXPECT_FALSE(MatchesHeaders(m, {{"x-n", "-0"}}));
  EXPECT_FALSE(MatchesHeaders(m, {{"x-n", "-11"}}));

  HttpRouteMatcher wide =
      MustCompile(HeaderRoute(Header("x-n", Range(INT64_MIN, INT64_MAX))));
  EXPECT_TRUE(MatchesHeaders(wide, {{"x-n", "-9223372036854775808"}}));
  EXPECT_TRUE(MatchesHeaders(wide, {{"x-n", "9223372036854775806"}}));
  EXPECT_FALSE(MatchesHeaders(wide, {{"x-n", "9223372036854775807"}}));
  EXPECT_FALSE(MatchesHeaders(wide, {{"x-n", "9223372036854775808"}}));

  HttpRouteMatcher empty = MustCompile(HeaderRoute(Header("x-n", Range(5, 5))));
  EXPECT_FALSE(MatchesHeaders(empty, {{"x-n", "5"}}));
}

TEST(HeaderMatchTest, SeveralLinesAreJoinedWithComma) {
  HttpRouteMatcher exact =
      MustCompile(HeaderRoute(Header("x-a", Exact("a,b"))));
  EXPECT_TRUE(
      MatchesHeaders(exact, {{"x-a", "a"}, {"x-o", "z"}, {"X-A", "b"}}));
  EXPECT_FALSE(MatchesHeaders(exact, {{"x-a", "b"}, {"x-a", "a"}}));
  EXPECT_FALSE(MatchesHeaders(exact, {{"x-a", "a"}}));

  HttpRouteMatcher first = MustCompile(HeaderRoute(Header("x-a", Exact("a"))));
  EXPECT_FALSE(MatchesHeaders(first, {{"x-a", "a"}, {"x-a", "b"}}));

  HttpRouteMatcher three =
      MustCompile(HeaderRoute(Header("x-a", Regex("1,,3"))));
  EXPECT_TRUE(MatchesHeaders(three, {{"x-a", "1"}, {"x-a", ""}, {"x-a", "3"}}));

  HttpRouteMatcher range = MustCompile(HeaderRoute(Header("x-n", Range(0, 9))));
  EXPECT_FALSE(MatchesHeaders(range, {{"x-n", "1"}, {"x-n", "2"}}));
}

TEST(HeaderMatchTest, InvertOnPresentHeader) {
  HttpRouteMatcher m =
      MustCompile(HeaderRoute(Header("x-a", Exact("v1"), true)));
  EXPECT_FALSE(MatchesHeaders(m, {{"x-a", "v1"}}));
  EXPECT_TRUE(MatchesHeaders(m, {{"x-a", "v2"}}));

  HttpRouteMatcher present =
      MustCompile(HeaderRoute(Header("x-a", std::nullopt, true)));
  EXPECT_FALSE(MatchesHeaders(present, {{"x-a", "v1"}}));

  HttpRouteMatcher not_inverted =
      MustCompile(HeaderRoute(Header("x-a", Exact("v1"), false)));
  EXPECT_TRUE(MatchesHeaders(not_inverted, {{"x-a", "v1"}}));
}

TEST(HeaderMatchTest, InvertOnMissingHeaderMatches) {
  // Envoy: a missing header fails the match, and invert_match flips that.
  for (const std::optional<HeaderMatchMethod>& method :
       {std::optional<HeaderMatchMethod>(), std::optional(Exact("v1")),
        std::optional(Prefix("v")), std::optional(Suffix("1")),
        std::optional(Regex(".*")), std::optional(Range(0, 10))}) {
    HttpRouteMatcher inverted =
        MustCompile(HeaderRoute(Header("x-a", method, true)));
    EXPECT_TRUE(MatchesHeaders(inverted, {{"x-b", "v1"}}));
    HttpRouteMatcher plain = MustCompile(HeaderRoute(Header("x-a", method)));
    EXPECT_FALSE(MatchesHeaders(plain, {{"x-b", "v1"}}));
  }
}

TEST(HeaderMatchTest, NullHeaderListMeansNoHeaders) {
  HttpRouteMatcher inverted =
      MustCompile(HeaderRoute(Header("x-a", Exact("v"), true)));
  HttpRouteMatcher plain = MustCompile(HeaderRoute(Header("x-a", Exact("v"))));
  RequestView r;
  r.path = "/";
  EXPECT_TRUE(inverted.Matches(r));
  EXPECT_FALSE(plain.Matches(r));
}

TEST(HeaderMatchTest, AllHeadersMustMatch) {
  HttpRouteMatch match = PrefixMatch("/");
  match.headers.push_back(Header("x-a", Exact("1")));
  match.headers.push_back(Header("x-b", Prefix("2")));
  match.headers.push_back(Header("x-c", std::nullopt, true));
  HttpRouteMatcher m = MustCompile(match);
  EXPECT_TRUE(MatchesHeaders(m, {{"x-a", "1"}, {"x-b", "22"}}));
  EXPECT_FALSE(MatchesHeaders(m, {{"x-a", "1"}}));
  EXPECT_FALSE(MatchesHeaders(m, {{"x-b", "22"}}));
  EXPECT_FALSE(MatchesHeaders(m, {{"x-a", "1"}, {"x-b", "22"}, {"x-c", ""}}));
}

TEST(HeaderMatcherTest, UsableOnItsOwn) {
  absl::StatusOr<HeaderMatcher> h =
      HeaderMatcher::Compile(Header("grpc-x", Suffix("z")));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->name(), "grpc-x");
  EXPECT_TRUE(h->MatchesValue("xyz"));
  EXPECT_FALSE(h->MatchesValue("zy"));
  EXPECT_FALSE(h->MatchesValue(std::nullopt));
  http::HeaderList list;
  list.Add("Grpc-X", "az");
  EXPECT_TRUE(h->Matches(list));
}

// ---- Compile errors ----

TEST(CompileErrorTest, BadHeaderRegexNamesTheField) {
  HttpRouteMatch match = PrefixMatch("/");
  match.headers.push_back(Header("x-a", Exact("1")));
  match.headers.push_back(Header("x-b", Regex("a(b")));
  absl::StatusOr<HttpRouteMatcher> m = HttpRouteMatcher::Compile(match);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m.status().message().find("match.headers[1].match.regex: invalid "
                                      "regex: "),
            0u)
      << m.status();
}

TEST(CompileErrorTest, BadPathRegexNamesTheField) {
  HttpRouteMatch match;
  match.path = HttpPathMatch{std::nullopt, "[z-a]"};
  absl::StatusOr<HttpRouteMatcher> m = HttpRouteMatcher::Compile(match);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m.status().message().find("match.path.regex: invalid regex: "), 0u)
      << m.status();

  HttpGatewayRouteMatch gw;
  gw.path = HttpPathMatch{std::nullopt, "*"};
  absl::StatusOr<HttpRouteMatcher> g = HttpRouteMatcher::Compile(gw);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().message().find("match.path.regex: "), 0u) << g.status();
}

TEST(CompileErrorTest, BadHeaderRegexOnItsOwnUsesGivenField) {
  absl::StatusOr<HeaderMatcher> h =
      HeaderMatcher::Compile(Header("m", Regex("(")), "match.metadata[3]");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().message().find("match.metadata[3].match.regex: "), 0u)
      << h.status();
}

TEST(CompileErrorTest, EmptyUnionsAreErrors) {
  HttpRouteMatch match = PrefixMatch("/");
  match.headers.push_back(Header("x-a", HeaderMatchMethod{}));
  absl::StatusOr<HttpRouteMatcher> m = HttpRouteMatcher::Compile(match);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message().find("match.headers[0].match: "), 0u)
      << m.status();

  HttpRouteMatch both;
  both.prefix = "/";
  both.path = HttpPathMatch{"/a", std::nullopt};
  EXPECT_FALSE(HttpRouteMatcher::Compile(both).ok());
}

// ---- Query parameters ----

bool MatchesQuery(const HttpRouteMatcher& m, const std::string& query) {
  return MatchesPath(m, "/p?" + query);
}

HttpRouteMatcher QueryRoute(std::vector<HttpQueryParameter> params) {
  HttpRouteMatch match = PrefixMatch("/");
  match.query_parameters = std::move(params);
  return MustCompile(match);
}

TEST(QueryMatchTest, Presence) {
  HttpRouteMatcher m = QueryRoute({Query("a")});
  EXPECT_TRUE(MatchesQuery(m, "a=1"));
  EXPECT_TRUE(MatchesQuery(m, "x=2&a=1"));
  EXPECT_TRUE(MatchesQuery(m, "a="));
  EXPECT_TRUE(MatchesQuery(m, "a"));
  EXPECT_TRUE(MatchesQuery(m, "x&a"));
  EXPECT_FALSE(MatchesQuery(m, "ab=1"));
  EXPECT_FALSE(MatchesQuery(m, "ba=1"));
  EXPECT_FALSE(MatchesQuery(m, "x=a"));
  EXPECT_FALSE(MatchesQuery(m, "A=1"));  // names are case-sensitive
  EXPECT_FALSE(MatchesQuery(m, ""));
  EXPECT_FALSE(MatchesPath(m, "/p"));
  EXPECT_FALSE(MatchesPath(m, "/a"));  // the path is not the query
}

TEST(QueryMatchTest, ExactComparesRawValue) {
  HttpRouteMatcher m = QueryRoute({Query("a", "x y")});
  EXPECT_FALSE(MatchesQuery(m, "a=x%20y"));  // no percent-decoding
  EXPECT_FALSE(MatchesQuery(m, "a=x+y"));
  HttpRouteMatcher raw = QueryRoute({Query("a", "x%20y")});
  EXPECT_TRUE(MatchesQuery(raw, "a=x%20y"));
  HttpRouteMatcher eq = QueryRoute({Query("a", "b=c")});
  EXPECT_TRUE(MatchesQuery(eq, "a=b=c"));  // split on the first '='
}

TEST(QueryMatchTest, RepeatedNameUsesFirstValue) {
  // Envoy's query parameter map keeps the first value of a name.
  EXPECT_TRUE(MatchesQuery(QueryRoute({Query("a", "1")}), "a=1&a=2"));
  EXPECT_FALSE(MatchesQuery(QueryRoute({Query("a", "2")}), "a=1&a=2"));
  EXPECT_TRUE(MatchesQuery(QueryRoute({Query("a")}), "a=1&a=2"));
}

TEST(QueryMatchTest, EmptyValuesAndNoEquals) {
  HttpRouteMatcher empty = QueryRoute({Query("a", "")});
  EXPECT_TRUE(MatchesQuery(empty, "a="));
  EXPECT_TRUE(MatchesQuery(empty, "a"));  // no '=': empty value
  EXPECT_TRUE(MatchesQuery(empty, "b=1&a&c=2"));
  EXPECT_FALSE(MatchesQuery(empty, "a=1"));

  HttpRouteMatcher one = QueryRoute({Query("a", "1")});
  EXPECT_FALSE(MatchesQuery(one, "a"));
  EXPECT_FALSE(MatchesQuery(one, "a="));
  EXPECT_TRUE(MatchesQuery(one, "&&a=1&"));  // empty pairs are skipped
  EXPECT_TRUE(MatchesQuery(one, "=z&a=1"));
}

TEST(QueryMatchTest, AllParametersMustMatch) {
  HttpRouteMatcher m = QueryRoute({Query("a", "1"), Query("b")});
  EXPECT_TRUE(MatchesQuery(m, "b&a=1"));
  EXPECT_FALSE(MatchesQuery(m, "a=1"));
  EXPECT_FALSE(MatchesQuery(m, "a=2&b=1"));
}

// ---- Combinations ----

TEST(HttpRouteMatcherTest, EveryPartMustMatch) {
  HttpRouteMatch match = PrefixMatch("/api");
  match.method = model::HttpMethod::kPut;
  match.scheme = model::HttpScheme::kHttp;
  match.port = 8080;
  match.headers.push_back(Header("x-user", Regex("[a-z]+")));
  match.query_parameters.push_back(Query("v", "2"));
  HttpRouteMatcher m = MustCompile(match);

  Request ok;
  ok.target = "/api/items?v=2";
  ok.method = "PUT";
  ok.headers = {{"X-User", "bob"}};
  EXPECT_TRUE(Matches(m, ok));

  Request r = ok;
  r.target = "/other?v=2";
  EXPECT_FALSE(Matches(m, r));
  r = ok;
  r.method = "GET";
  EXPECT_FALSE(Matches(m, r));
  r = ok;
  r.scheme = "https";
  EXPECT_FALSE(Matches(m, r));
  r = ok;
  r.port = 8081;
  EXPECT_FALSE(Matches(m, r));
  r = ok;
  r.headers = {{"x-user", "Bob"}};
  EXPECT_FALSE(Matches(m, r));
  r = ok;
  r.target = "/api/items?v=3";
  EXPECT_FALSE(Matches(m, r));
}

TEST(HttpRouteMatcherTest, CopiesShareTheCompiledRegex) {
  std::optional<HttpRouteMatcher> original;
  {
    HttpRouteMatch match;
    match.path = HttpPathMatch{std::nullopt, "/r/.*"};
    match.headers.push_back(Header("x", Regex("y+")));
    original = MustCompile(match);
  }
  HttpRouteMatcher copy = *original;
  original.reset();
  Request req;
  req.target = "/r/1";
  req.headers = {{"x", "yy"}};
  EXPECT_TRUE(Matches(copy, req));
  HttpRouteMatcher moved = std::move(copy);
  EXPECT_TRUE(Matches(moved, req));
}

// ---- Gateway routes ----

HttpGatewayRouteMatch HostMatch(std::optional<std::string> exact,
                                std::optional<std::string> suffix) {
  HttpGatewayRouteMatch m;
  m.prefix = "/";
  m.hostname =
      model::GatewayRouteHostnameMatch{std::move(exact), std::move(suffix)};
  return m;
}

bool MatchesAuthority(const HttpRouteMatcher& m, std::string authority) {
  Request req;
  req.authority = std::move(authority);
  return Matches(m, req);
}

TEST(GatewayRouteMatchTest, HostnameExactIgnoresCaseAndPort) {
  HttpRouteMatcher m = MustCompile(HostMatch("Shop.Example.com", std::nullopt));
  EXPECT_TRUE(MatchesAuthority(m, "shop.example.com"));
  EXPECT_TRUE(MatchesAuthority(m, "SHOP.example.COM:8443"));
  EXPECT_FALSE(MatchesAuthority(m, "a.shop.example.com"));
  EXPECT_FALSE(MatchesAuthority(m, "shop.example.co"));
  EXPECT_FALSE(MatchesAuthority(m, ""));

  HttpRouteMatcher v6 = MustCompile(HostMatch("[::1]", std::nullopt));
  EXPECT_TRUE(MatchesAuthority(v6, "[::1]:80"));
  EXPECT_TRUE(MatchesAuthority(v6, "[::1]"));
}

TEST(GatewayRouteMatchTest, HostnameSuffixIgnoresCaseAndPort) {
  HttpRouteMatcher m = MustCompile(HostMatch(std::nullopt, ".example.com"));
  EXPECT_TRUE(MatchesAuthority(m, "a.example.com"));
  EXPECT_TRUE(MatchesAuthority(m, "b.a.EXAMPLE.com:443"));
  EXPECT_FALSE(MatchesAuthority(m, "example.com"));
  EXPECT_FALSE(MatchesAuthority(m, "a.example.com.evil"));
  EXPECT_FALSE(MatchesAuthority(m, "a.example.org:80"));
}

TEST(GatewayRouteMatchTest, NoHostnameMatchesAnyHost) {
  HttpGatewayRouteMatch gw;
  gw.prefix = "/";
  EXPECT_TRUE(MatchesAuthority(MustCompile(gw), "whatever:1"));
}

TEST(GatewayRouteMatchTest, AllPartsApply) {
  HttpGatewayRouteMatch gw = HostMatch(std::nullopt, "example.com");
  gw.prefix = "/cart";
  gw.method = model::HttpMethod::kGet;
  gw.headers.push_back(Header("x-tenant", Exact("t1")));
  gw.query_parameters.push_back(Query("debug"));
  gw.port = 8080;
  HttpRouteMatcher m = MustCompile(gw);

  Request ok;
  ok.target = "/cart/1?debug";
  ok.authority = "shop.example.com:8080";
  ok.headers = {{"x-tenant", "t1"}};
  EXPECT_TRUE(Matches(m, ok));
  Request r = ok;
  r.authority = "shop.example.net";
  EXPECT_FALSE(Matches(m, r));
  r = ok;
  r.target = "/cart/1";
  EXPECT_FALSE(Matches(m, r));
  r = ok;
  r.headers.clear();
  EXPECT_FALSE(Matches(m, r));
  r = ok;
  r.target = "/basket?debug";
  EXPECT_FALSE(Matches(m, r));
  r = ok;
  r.port = 80;
  EXPECT_FALSE(Matches(m, r));
}

TEST(GatewayRouteMatchTest, HostnameNeedsExactlyOne) {
  EXPECT_FALSE(
      HttpRouteMatcher::Compile(HostMatch(std::nullopt, std::nullopt)).ok());
  EXPECT_FALSE(HttpRouteMatcher::Compile(HostMatch("a", "b")).ok());
}

// ---- Specificity ----

TEST(SpecificityTest, PathKindThenPrefixLength) {
  HttpRouteMatch exact;
  exact.path = HttpPathMatch{"/a", std::nullopt};
  HttpRouteMatch regex;
  regex.path = HttpPathMatch{std::nullopt, "/a.*"};
  std::string long_prefix(255, 'x');
  long_prefix[0] = '/';
  int s_exact = MustCompile(exact).Specificity();
  int s_regex = MustCompile(regex).Specificity();
  int s_long = MustCompile(PrefixMatch(long_prefix)).Specificity();
  int s_api = MustCompile(PrefixMatch("/api")).Specificity();
  int s_slash = MustCompile(PrefixMatch("/")).Specificity();
  int s_any = MustCompile(HttpRouteMatch{}).Specificity();
  EXPECT_GT(s_exact, s_regex);
  EXPECT_GT(s_regex, s_long);
  EXPECT_GT(s_long, s_api);
  EXPECT_GT(s_api, s_slash);
  EXPECT_GT(s_slash, s_any);
}

TEST(SpecificityTest, ExtrasAddLessThanOnePrefixCharacter) {
  HttpRouteMatch loaded = PrefixMatch("/ab");
  for (int i = 0; i < 10; ++i) {
    loaded.headers.push_back(Header("h" + std::to_string(i), std::nullopt));
    loaded.query_parameters.push_back(Query("q" + std::to_string(i)));
  }
  loaded.method = model::HttpMethod::kGet;
  loaded.scheme = model::HttpScheme::kHttp;
  loaded.port = 80;
  HttpRouteMatch with_header = PrefixMatch("/ab");
  with_header.headers.push_back(Header("h", std::nullopt));

  int s_loaded = MustCompile(loaded).Specificity();
  int s_header = MustCompile(with_header).Specificity();
  int s_plain = MustCompile(PrefixMatch("/ab")).Specificity();
  int s_longer = MustCompile(PrefixMatch("/abc")).Specificity();
  EXPECT_GT(s_header, s_plain);
  EXPECT_GT(s_loaded, s_header);
  EXPECT_GT(s_longer, s_loaded);
}

TEST(SpecificityTest, GatewayHostnames) {
  int s_exact =
      MustCompile(HostMatch("a.example.com", std::nullopt)).Specificity();
  int s_long =
      MustCompile(HostMatch(std::nullopt, ".a.example.com")).Specificity();
  int s_short = MustCompile(HostMatch(std::nullopt, ".com")).Specificity();
  HttpGatewayRouteMatch none;
  none.prefix = "/";
  int s_none = MustCompile(none).Specificity();
  EXPECT_GT(s_exact, s_long);
  EXPECT_GT(s_long, s_short);
  EXPECT_GT(s_short, s_none);
}

}  // namespace
}  // namespace nodemesh::proxy
