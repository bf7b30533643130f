// A VirtualGateway listener of a real agent driven with curl: App Mesh's
// gateway route matches and rewrites (prefix, path, hostname), as the
// upstream received them, and W3C traceparent propagation.

#include <regex>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/proxy_fixture.h"

namespace nodemesh::testing {
namespace {

using appmesh::Node;
using appmesh::Route;
using appmesh::Router;
using appmesh::Targets;
using nlohmann::json;

constexpr uint16_t kRouterPort = 9181;  // a virtual port: nothing binds it
constexpr char kService[] = "svc.gwt.local";

// What the upstream saw (its /headers echo) and who answered.
struct Seen {
  int status = 0;
  std::string upstream;  // x-upstream of the response
  std::string target;    // the request target the upstream received
  json headers;          // [[name, value], ...] in wire order

  // The values of a request header (case-insensitive name).
  std::vector<std::string> All(const std::string& name) const {
    std::vector<std::string> out;
    if (!headers.is_array()) return out;
    for (const json& h : headers) {
      if (absl::AsciiStrToLower(h[0].get<std::string>()) == name)
        out.push_back(h[1].get<std::string>());
    }
    return out;
  }
  std::string One(const std::string& name) const {
    std::vector<std::string> v = All(name);
    return v.size() == 1 ? v[0] : absl::StrCat(v.size(), " values");
  }
};

// traceparent version 00 as the proxy generates it.
bool LooksGenerated(const std::string& tp) {
  static const std::regex kShape("00-[0-9a-f]{32}-[0-9a-f]{16}-00");
  return std::regex_match(tp, kShape) &&
         tp.substr(3, 32) != std::string(32, '0') &&
         tp.substr(36, 16) != std::string(16, '0');
}

class ProxyGatewayTest : public ::testing::Test {
 protected:
  // Upstreams a, b, c; a router service whose routes send "/headers/b..."
  // to b and everything else to a; plus `gateway_routes`.
  void StartWith(std::vector<json> gateway_routes) {
    up_ = node_.AddUpstreams({{"gwt-a"}, {"gwt-b"}, {"gwt-c"}});
    json model = {appmesh::Mesh(),
                  Node("a", up_->port("gwt-a")),
                  Node("b", up_->port("gwt-b")),
                  Node("c", up_->port("gwt-c")),
                  Router("r", kRouterPort),
                  Route("r", "to-b",
                        {{"httpRoute",
                          {{"match", {{"prefix", "/headers/b"}}},
                           {"action", Targets({{"b", 1}})}}}}),
                  Route("r", "rest",
                        {{"httpRoute",
                          {{"match", {{"prefix", "/"}}},
                           {"action", Targets({{"a", 1}})}}}}),
                  appmesh::ServiceByRouter(kService, "r"),
                  appmesh::ServiceByNode("c.gwt.local", "c"),
                  appmesh::Gateway("gwt", gw_port_)};
    for (json& r : gateway_routes) model.push_back(std::move(r));
    ASSERT_TRUE(node_.Start(model));
  }

  // A gateway route "name" with `match` and, unless null, `rewrite`.
  static json GwRoute(const std::string& name, json match,
                      json rewrite = nullptr,
                      const std::string& service = kService) {
    json action;
    action["target"]["virtualService"]["virtualServiceName"] = service;
    if (!rewrite.is_null()) action["rewrite"] = rewrite;
    return {{"meshName", "m"},
            {"virtualGatewayName", "gwt"},
            {"gatewayRouteName", name},
            {"spec", {{"httpRoute", {{"match", match}, {"action", action}}}}}};
  }

  // curl through the gateway; `args` go before the URL.
  Seen Get(const std::string& path, const std::string& args = "") {
    std::string out = node_.Curl(
        absl::StrCat("-i ", args, " 'http://127.0.0.1:", gw_port_, path, "'"));
    Seen s;
    size_t end = out.find("\r\n\r\n");
    if (end == std::string::npos) return s;
    for (absl::string_view line : absl::StrSplit(out.substr(0, end), "\r\n")) {
      if (s.status == 0) {
        std::vector<std::string> words = absl::StrSplit(line, ' ');
        if (words.size() >= 2) (void)absl::SimpleAtoi(words[1], &s.status);
        continue;
      }
      if (absl::StartsWithIgnoreCase(line, "x-upstream:"))
        s.upstream = std::string(absl::StripAsciiWhitespace(line.substr(11)));
    }
    json body = json::parse(out.substr(end + 4), nullptr, false);
    if (body.is_object()) {
      s.target = body.value("target", "");
      s.headers = body["headers"];
    }
    return s;
  }

  ProxyNode node_;
  Upstreams* up_ = nullptr;
  uint16_t gw_port_ = PickPort();
};

TEST_F(ProxyGatewayTest, APrefixMatchIsRewrittenToSlashByDefault) {
  StartWith({GwRoute("api", {{"prefix", "/api"}})});
  Seen s = Get("/api/headers/x?q=1&r=a%20b");
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.upstream, "gwt-a");
  EXPECT_EQ(s.target, "/headers/x?q=1&r=a%20b");
  // Host becomes the target virtual service's name.
  EXPECT_EQ(s.One("host"), kService);
  // Without a trailing slash in the prefix: "/apiheaders" -> "/headers".
  EXPECT_EQ(Get("/apiheaders").target, "/headers");
  // Outside the prefix: no gateway route.
  EXPECT_EQ(Get("/other/headers").status, 404);
}

TEST_F(ProxyGatewayTest, TheServicesRoutesMatchTheRewrittenPath) {
  // "/chapter/headers/b1" reaches the router as "/headers/b1": its route
  // "/headers/b" picks b, which the original path would not have.
  StartWith({GwRoute("chapter", {{"prefix", "/chapter"}})});
  Seen s = Get("/chapter/headers/b1");
  EXPECT_EQ(s.upstream, "gwt-b");
  EXPECT_EQ(s.target, "/headers/b1");
  EXPECT_EQ(Get("/chapter/headers/a1").upstream, "gwt-a");
}

TEST_F(ProxyGatewayTest, APrefixValueReplacesTheMatchedPrefix) {
  StartWith({GwRoute("maroon",
                     {{"prefix", "/maroon/"},
                      {"queryParameters",
                       {{{"name", "fishes"}, {"match", {{"exact", "nemo"}}}}}}},
                     {{"prefix", {{"value", "/headers/red/"}}}})});
  Seen s = Get("/maroon/x/y?fishes=nemo&z=1");
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.target, "/headers/red/x/y?fishes=nemo&z=1");
  // The query parameter match is still required.
  EXPECT_EQ(Get("/maroon/x/y?fishes=dory").status, 404);
}

TEST_F(ProxyGatewayTest, DisabledRewritesKeepThePathAndTheClientsHost) {
  StartWith({GwRoute("keep", {{"prefix", "/headers/keep"}},
                     {{"prefix", {{"defaultPrefix", "DISABLED"}}},
                      {"hostname", {{"defaultTargetHostname", "DISABLED"}}}})});
  Seen s = Get("/headers/keep/a?b=c", "-H 'Host: www.example.com:8443'");
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.target, "/headers/keep/a?b=c");
  EXPECT_EQ(s.One("host"), "www.example.com:8443");
}

TEST_F(ProxyGatewayTest, AnExactPathIsRewrittenWhole) {
  StartWith({GwRoute("blue", {{"path", {{"exact", "/rewrite/path/blue"}}}},
                     {{"path", {{"exact", "/headers/blue"}}}}),
             GwRoute("re", {{"path", {{"regex", "/headers/[0-9]+"}}}})});
  Seen s = Get("/rewrite/path/blue?x=1");
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.target, "/headers/blue?x=1");
  EXPECT_EQ(Get("/rewrite/path/blue2").status, 404);
  // A regex match without a rewrite keeps the path.
  EXPECT_EQ(Get("/headers/42?q").target, "/headers/42?q");
  EXPECT_EQ(Get("/headers/x").status, 404);
}

TEST_F(ProxyGatewayTest, HostnameMethodHeaderAndPortMatches) {
  json by_host =
      GwRoute("by-host",
              {{"prefix", "/"}, {"hostname", {{"exact", "www.example.com"}}}},
              nullptr, "c.gwt.local");
  json by_suffix =
      GwRoute("by-suffix",
              {{"prefix", "/"}, {"hostname", {{"suffix", ".example.org"}}}},
              nullptr, "c.gwt.local");
  json by_method = GwRoute("by-method", {{"prefix", "/"}, {"method", "POST"}},
                           nullptr, "c.gwt.local");
  json by_header = GwRoute(
      "by-header",
      {{"prefix", "/"},
       {"headers", {{{"name", "x-lane"}, {"match", {{"exact", "c"}}}}}}},
      nullptr, "c.gwt.local");
  json by_port = GwRoute("by-port", {{"prefix", "/"}, {"port", gw_port_}});
  StartWith({by_host, by_suffix, by_method, by_header, by_port});
  EXPECT_EQ(Get("/headers", "-H 'Host: www.example.com'").upstream, "gwt-c");
  EXPECT_EQ(Get("/headers", "-H 'Host: WWW.example.com:80'").upstream, "gwt-c");
  EXPECT_EQ(Get("/headers", "-H 'Host: api.example.org'").upstream, "gwt-c");
  EXPECT_EQ(Get("/headers", "-X POST").upstream, "gwt-c");
  EXPECT_EQ(Get("/headers", "-H 'x-lane: c'").upstream, "gwt-c");
  // None of those: the port match catches it and goes to the router.
  Seen s = Get("/headers", "-H 'Host: www.example.net' -H 'x-lane: d'");
  EXPECT_EQ(s.upstream, "gwt-a");
  EXPECT_EQ(s.One("host"), kService);
}

TEST_F(ProxyGatewayTest, ATraceparentIsGeneratedWhenMissing) {
  StartWith({GwRoute("all", {{"prefix", "/"}})});
  Seen first = Get("/headers");
  Seen second = Get("/headers");
  std::string tp1 = first.One("traceparent");
  std::string tp2 = second.One("traceparent");
  EXPECT_TRUE(LooksGenerated(tp1)) << tp1;
  EXPECT_TRUE(LooksGenerated(tp2)) << tp2;
  EXPECT_NE(tp1.substr(3, 32), tp2.substr(3, 32));  // a trace each
  // The request id travels beside it.
  EXPECT_EQ(first.All("x-request-id").size(), 1u);
}

TEST_F(ProxyGatewayTest, AValidTraceparentAndTracestatePassUnchanged) {
  StartWith({GwRoute("all", {{"prefix", "/"}})});
  const std::string tp =
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  Seen s = Get("/headers", "-H 'traceparent: " + tp +
                               "' -H 'tracestate: rojo=00f067aa0ba902b7'");
  EXPECT_EQ(s.One("traceparent"), tp);
  EXPECT_EQ(s.One("tracestate"), "rojo=00f067aa0ba902b7");
}

TEST_F(ProxyGatewayTest, AnInvalidTraceparentIsReplaced) {
  StartWith({GwRoute("all", {{"prefix", "/"}})});
  const std::string body =
      "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  for (const std::string& bad :
       {"ff-" + body, "00-" + body + "-x", "00-" + body.substr(1),
        std::string("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
        std::string("not-a-trace")}) {
    Seen s = Get("/headers", "-H 'traceparent: " + bad + "'");
    std::string tp = s.One("traceparent");
    EXPECT_TRUE(LooksGenerated(tp)) << bad << " -> " << tp;
  }
}

}  // namespace
}  // namespace nodemesh::testing
