// HttpRouteMatcher: paths, methods, schemes, ports, gateway hostnames,
// specificity, and what a match needs of every part. GrpcRouteMatcher:
// service, method, metadata, hostname, port and its order.

#include "agent/proxy/route_match.h"

#include "gtest/gtest.h"
#include "tests/unit/proxy/route_match_test_util.h"

namespace nodemesh::proxy {
namespace {

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

// ---- gRPC routes ----

GrpcRouteMatch Grpc(std::optional<std::string> service,
                    std::optional<std::string> method = std::nullopt) {
  GrpcRouteMatch m;
  m.service_name = std::move(service);
  m.method_name = std::move(method);
  return m;
}

// A gRPC call: POST of /<service>/<method> over HTTP/2.
Request Call(std::string path) {
  Request req;
  req.target = std::move(path);
  req.method = "POST";
  req.headers = {{"content-type", "application/grpc"}};
  return req;
}

TEST(GrpcRouteMatcherTest, ServiceMatchesEveryMethodOfThatServiceOnly) {
  GrpcRouteMatcher m = MustCompileGrpc(Grpc("color.ColorService"));
  EXPECT_TRUE(Matches(m, Call("/color.ColorService/GetColor")));
  EXPECT_TRUE(Matches(m, Call("/color.ColorService/SetColor")));
  // The prefix ends with '/': a service whose name extends it is another.
  EXPECT_FALSE(Matches(m, Call("/color.ColorServiceV2/GetColor")));
  EXPECT_FALSE(Matches(m, Call("/color.colorservice/GetColor")));
  EXPECT_FALSE(Matches(m, Call("/other.Service/GetColor")));
  EXPECT_FALSE(Matches(m, Call("/color.ColorService")));
}

TEST(GrpcRouteMatcherTest, ServiceAndMethodIsTheExactPath) {
  GrpcRouteMatcher m = MustCompileGrpc(Grpc("color.ColorService", "GetColor"));
  EXPECT_TRUE(Matches(m, Call("/color.ColorService/GetColor")));
  EXPECT_FALSE(Matches(m, Call("/color.ColorService/GetColors")));
  EXPECT_FALSE(Matches(m, Call("/color.ColorService/SetColor")));
  EXPECT_FALSE(Matches(m, Call("/color.ColorService/GetColor/x")));
  EXPECT_FALSE(Matches(m, Call("/color.ColorService/getColor")));
}

TEST(GrpcRouteMatcherTest, NeitherMatchesEveryCall) {
  GrpcRouteMatcher m = MustCompileGrpc(GrpcRouteMatch{});
  EXPECT_TRUE(Matches(m, Call("/a.B/C")));
  EXPECT_TRUE(Matches(m, Call("/")));
  EXPECT_TRUE(Matches(GrpcRouteMatcher(), Call("/a.B/C")));
}

TEST(GrpcRouteMatcherTest, MethodWithoutServiceIsRefused) {
  absl::StatusOr<GrpcRouteMatcher> m =
      GrpcRouteMatcher::Compile(Grpc(std::nullopt, "GetColor"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("match.methodName"), std::string::npos)
      << m.status();
  EXPECT_NE(m.status().message().find("serviceName"), std::string::npos)
      << m.status();
  absl::StatusOr<GrpcRouteMatcher> empty = GrpcRouteMatcher::Compile(Grpc(""));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("match.serviceName"),
            std::string::npos)
      << empty.status();
}

TEST(GrpcRouteMatcherTest, MetadataAreHeaders) {
  GrpcRouteMatch match = Grpc("s.S");
  match.metadata.push_back(Header("x-tenant", Exact("t1")));
  match.metadata.push_back(Header("x-version", Range(2, 5)));
  match.metadata.push_back(Header("x-debug", std::nullopt, true));
  match.metadata.push_back(Header("x-region", Prefix("eu-")));
  match.metadata.push_back(Header("x-user", Regex("[a-z]+")));
  match.metadata.push_back(Header("x-zone", Suffix("-a")));
  GrpcRouteMatcher m = MustCompileGrpc(match);

  Request ok = Call("/s.S/M");
  ok.headers = {{"content-type", "application/grpc"},
                {"X-Tenant", "t1"},  // names are case-insensitive
                {"x-version", "4"},
                {"x-region", "eu-west-1"},
                {"x-user", "bob"},
                {"x-zone", "eu-west-1-a"}};
  EXPECT_TRUE(Matches(m, ok));

  auto with = [&](const std::string& name, const std::string& value) {
    Request r = ok;
    for (auto& [n, v] : r.headers)
      if (n == name) v = value;
    return r;
  };
  EXPECT_FALSE(Matches(m, with("X-Tenant", "t2")));
  EXPECT_FALSE(Matches(m, with("x-version", "5")));  // end excluded
  EXPECT_TRUE(Matches(m, with("x-version", "2")));   // start included
  EXPECT_FALSE(Matches(m, with("x-version", "x")));
  EXPECT_FALSE(Matches(m, with("x-region", "us-east-1")));
  EXPECT_FALSE(Matches(m, with("x-user", "Bob")));
  EXPECT_FALSE(Matches(m, with("x-zone", "eu-west-1-b")));
  Request debug = ok;
  debug.headers.emplace_back("x-debug", "1");  // inverted presence
  EXPECT_FALSE(Matches(m, debug));
  Request other = ok;
  other.target = "/t.T/M";  // metadata never rescue another service
  EXPECT_FALSE(Matches(m, other));
}

TEST(GrpcRouteMatcherTest, InvertedValueMatchesAbsentMetadata) {
  GrpcRouteMatch match;
  match.metadata.push_back(Header("x-canary", Exact("yes"), true));
  GrpcRouteMatcher m = MustCompileGrpc(match);
  Request r = Call("/s.S/M");
  EXPECT_TRUE(Matches(m, r));  // absent: the match fails, inverted it holds
  r.headers.emplace_back("x-canary", "no");
  EXPECT_TRUE(Matches(m, r));
  r.headers.back().second = "yes";
  EXPECT_FALSE(Matches(m, r));
}

TEST(GrpcRouteMatcherTest, BadMetadataNamesTheField) {
  GrpcRouteMatch match = Grpc("s.S");
  match.metadata.push_back(Header("a", Exact("1")));
  match.metadata.push_back(Header("b", Regex("(")));
  absl::StatusOr<GrpcRouteMatcher> m = GrpcRouteMatcher::Compile(match);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("match.metadata[1].match.regex"),
            std::string::npos)
      << m.status();
}

TEST(GrpcRouteMatcherTest, Port) {
  GrpcRouteMatch match = Grpc("s.S");
  match.port = 9090;
  GrpcRouteMatcher m = MustCompileGrpc(match);
  Request r = Call("/s.S/M");
  r.port = 9090;
  EXPECT_TRUE(Matches(m, r));
  r.port = 8080;
  EXPECT_FALSE(Matches(m, r));
  r.port = 0;
  EXPECT_FALSE(Matches(m, r));
  match.port = 0;
  EXPECT_FALSE(GrpcRouteMatcher::Compile(match).ok());
}

TEST(GrpcRouteMatcherTest, GatewayServiceHostnameMetadataPort) {
  GrpcGatewayRouteMatch gw;
  gw.service_name = "shop.Cart";
  gw.hostname = model::GatewayRouteHostnameMatch{std::nullopt, ".example.com"};
  gw.metadata.push_back(Header("x-tenant", Exact("t1")));
  gw.port = 8443;
  GrpcRouteMatcher m = MustCompileGrpc(gw);

  Request ok = Call("/shop.Cart/Add");
  ok.authority = "api.EXAMPLE.com:8443";
  ok.port = 8443;
  ok.headers.emplace_back("x-tenant", "t1");
  EXPECT_TRUE(Matches(m, ok));
  Request r = ok;
  r.target = "/shop.Orders/Add";
  EXPECT_FALSE(Matches(m, r));
  r = ok;
  r.authority = "api.example.org";
  EXPECT_FALSE(Matches(m, r));
  r = ok;
  r.headers.pop_back();
  EXPECT_FALSE(Matches(m, r));
  r = ok;
  r.port = 8080;
  EXPECT_FALSE(Matches(m, r));

  GrpcGatewayRouteMatch bad;
  bad.hostname = model::GatewayRouteHostnameMatch{"a", "b"};
  EXPECT_FALSE(GrpcRouteMatcher::Compile(bad).ok());
  EXPECT_TRUE(Matches(MustCompileGrpc(GrpcGatewayRouteMatch{}),
                      Call("/any.Service/Any")));
}

TEST(GrpcRouteMatcherTest, AsHttpIsTheSameMatch) {
  GrpcRouteMatch match = Grpc("s.S", "M");
  match.metadata.push_back(Header("x", Exact("1")));
  GrpcRouteMatcher m = MustCompileGrpc(match);
  Request r = Call("/s.S/M");
  r.headers.emplace_back("x", "1");
  EXPECT_TRUE(Matches(m.AsHttp(), r));
  r.target = "/s.S/N";
  EXPECT_FALSE(Matches(m.AsHttp(), r));
  EXPECT_EQ(m.AsHttp().Specificity(), m.Specificity());
}

TEST(SpecificityTest, GrpcMethodThenServiceThenMetadata) {
  GrpcRouteMatch service_metadata = Grpc("s.S");
  for (int i = 0; i < 10; ++i) {
    service_metadata.metadata.push_back(
        Header("m" + std::to_string(i), std::nullopt));
  }
  service_metadata.port = 80;
  GrpcRouteMatch any_metadata;
  for (int i = 0; i < 10; ++i) {
    any_metadata.metadata.push_back(
        Header("m" + std::to_string(i), std::nullopt));
  }
  GrpcRouteMatch service_one = Grpc("s.S");
  service_one.metadata.push_back(Header("m", std::nullopt));

  int s_method = MustCompileGrpc(Grpc("s.S", "M")).Specificity();
  int s_service_metadata = MustCompileGrpc(service_metadata).Specificity();
  int s_service_one = MustCompileGrpc(service_one).Specificity();
  int s_service = MustCompileGrpc(Grpc("s.S")).Specificity();
  int s_any_metadata = MustCompileGrpc(any_metadata).Specificity();
  int s_any = MustCompileGrpc(GrpcRouteMatch{}).Specificity();
  EXPECT_GT(s_method, s_service_metadata);
  EXPECT_GT(s_service_metadata, s_service_one);
  EXPECT_GT(s_service_one, s_service);
  EXPECT_GT(s_service, s_any_metadata);
  EXPECT_GT(s_any_metadata, s_any);
  // A long service name still ranks below any method match.
  EXPECT_GT(s_method,
            MustCompileGrpc(Grpc(std::string(255, 's'))).Specificity());
}

}  // namespace
}  // namespace nodemesh::proxy
