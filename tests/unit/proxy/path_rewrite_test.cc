// PathRewrite: App Mesh's gateway prefix and path rewrites, with the
// user guide's own examples.

#include "agent/proxy/path_rewrite.h"

#include <string>

#include "agent/proxy/route_match.h"
#include "gtest/gtest.h"

namespace nodemesh::proxy {
namespace {

std::string Rewrite(const PathRewrite& r, std::string_view target) {
  std::string_view path, query;
  SplitTarget(target, &path, &query);
  std::string out;
  r.Apply(path, query, &out);
  return out;
}

TEST(PathRewriteTest, NoneKeepsPathAndQuery) {
  PathRewrite r;
  EXPECT_FALSE(r.active());
  EXPECT_EQ(Rewrite(r, "/a/b?x=1&y"), "/a/b?x=1&y");
  EXPECT_EQ(Rewrite(r, "/"), "/");
}

TEST(PathRewriteTest, DefaultPrefixSlashIsANoOp) {
  // Match prefix "/" rewritten to "/": nothing to do.
  PathRewrite r = PathRewrite::Prefix("/", "/");
  EXPECT_FALSE(r.active());
  EXPECT_EQ(Rewrite(r, "/chapter/page?q=1"), "/chapter/page?q=1");
}

TEST(PathRewriteTest, DefaultPrefixWithoutTrailingSlash) {
  // The user guide: prefix "/chapter", "/chapter/page" -> "/page",
  // "/chapter1" -> "/1".
  PathRewrite r = PathRewrite::Prefix("/chapter", "/");
  EXPECT_TRUE(r.active());
  EXPECT_EQ(Rewrite(r, "/chapter/page"), "/page");
  EXPECT_EQ(Rewrite(r, "/chapter1"), "/1");
  EXPECT_EQ(Rewrite(r, "/chapter"), "/");
  EXPECT_EQ(Rewrite(r, "/chapter/"), "/");
  EXPECT_EQ(Rewrite(r, "/chapter?x=1"), "/?x=1");
}

TEST(PathRewriteTest, DefaultPrefixWithTrailingSlash) {
  PathRewrite r = PathRewrite::Prefix("/chapter/", "/");
  EXPECT_EQ(Rewrite(r, "/chapter/page"), "/page");
  EXPECT_EQ(Rewrite(r, "/chapter/"), "/");
  EXPECT_EQ(Rewrite(r, "/chapter/a/b?c=d&e"), "/a/b?c=d&e");
}

TEST(PathRewriteTest, PrefixValueReplacesTheMatchedPrefix) {
  // howto-match-and-rewrite-at-ingress: "/maroon/" -> "/red/".
  PathRewrite r = PathRewrite::Prefix("/maroon/", "/red/");
  EXPECT_EQ(Rewrite(r, "/maroon/"), "/red/");
  EXPECT_EQ(Rewrite(r, "/maroon/x/y?fishes=nemo"), "/red/x/y?fishes=nemo");
  PathRewrite bare = PathRewrite::Prefix("/maroon", "/red/");
  EXPECT_EQ(Rewrite(bare, "/maroon"), "/red/");
  EXPECT_EQ(Rewrite(bare, "/maroon/x"), "/red/x");
  EXPECT_EQ(Rewrite(bare, "/maroonish"), "/red/ish");
  PathRewrite root = PathRewrite::Prefix("/", "/v2/");
  EXPECT_EQ(Rewrite(root, "/a?b=c"), "/v2/a?b=c");
}

TEST(PathRewriteTest, ExactReplacesTheWholePathAndKeepsTheQuery) {
  PathRewrite r = PathRewrite::Exact("/blue");
  EXPECT_TRUE(r.active());
  EXPECT_EQ(Rewrite(r, "/rewrite/path/blue"), "/blue");
  EXPECT_EQ(Rewrite(r, "/rewrite/path/blue?a=1&a=2"), "/blue?a=1&a=2");
}

TEST(PathRewriteTest, DescribeForRoutesDump) {
  EXPECT_EQ(PathRewrite().Describe(), "");
  EXPECT_EQ(PathRewrite::Prefix("/a", "/").Describe(), "prefix /a -> /");
  EXPECT_EQ(PathRewrite::Exact("/x").Describe(), "path -> /x");
}

TEST(PathRewriteTest, AbsoluteFormBecomesOriginForm) {
  PathRewrite r = PathRewrite::Prefix("/api/", "/");
  EXPECT_EQ(Rewrite(r, "http://gw.example:8080/api/x?y=1"), "/x?y=1");
}

}  // namespace
}  // namespace nodemesh::proxy
