// Header and query parameter matches, alone and in routes, and compile
// errors that name the field.

#include "agent/proxy/route_match.h"
#include "gtest/gtest.h"
#include "tests/unit/proxy/route_match_test_util.h"

namespace nodemesh::proxy {
namespace {

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

}  // namespace
}  // namespace nodemesh::proxy
