// Model snapshots compiled into the proxy's tables: which virtual host a
// request finds, route order, targets, retry and timeout defaults,
// gateways; and every real App Mesh example compiles.

#include "agent/compile/proxy_config.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "tests/unit/compile/proxy_config_test_util.h"
#include "tests/unit/model/appmesh_examples.h"

namespace nodemesh::compile {
namespace {

TEST_F(ProxyConfigTest, RoutesOrderByPriorityThenSpecificityThenName) {
  json m = Base();
  m.push_back(Route("any", Http({{"prefix", "/"}})));
  m.push_back(Route("api", Http({{"prefix", "/api"}})));
  m.push_back(Route("exact", Http({{"path", {{"exact", "/api/x"}}}})));
  m.push_back(Route(
      "late",
      {{"priority", 9}, {"httpRoute", Http({{"prefix", "/"}})["httpRoute"]}}));
  m.push_back(Route(
      "early",
      {{"priority", 1}, {"httpRoute", Http({{"prefix", "/z"}})["httpRoute"]}}));
  auto c = Compile(m);
  ASSERT_NE(c, nullptr);
  const VirtualHost* h = c->FindHttpHost("svc.m.local", 0);
  ASSERT_NE(h, nullptr);
  std::vector<std::string> order;
  for (const auto& r : h->http_routes) order.push_back(r.name);
  EXPECT_EQ(order,
            (std::vector<std::string>{"early", "late", "exact", "api", "any"}));
}

TEST_F(ProxyConfigTest, HostLookupByNameAndPort) {
  auto c = Compile(Base());
  ASSERT_NE(c, nullptr);
  EXPECT_NE(c->FindHttpHost("svc.m.local", 0), nullptr);
  EXPECT_NE(c->FindHttpHost("SVC.m.local:80", 0), nullptr);  // names: any case
  EXPECT_NE(c->FindHttpHost("svc.m.local", 80), nullptr);
  // A port the router does not listen on is another service's business.
  EXPECT_EQ(c->FindHttpHost("svc.m.local:81", 0), nullptr);
  // Without a port in Host, the destination port decides, else the only one.
  EXPECT_NE(c->FindHttpHost("svc.m.local", 9999), nullptr);
  EXPECT_EQ(c->FindHttpHost("other.m.local", 80), nullptr);
  EXPECT_EQ(c->FindHttpHost("", 80), nullptr);
}

TEST_F(ProxyConfigTest, TargetsTakeTheirPortOrTheNodesOnlyListener) {
  json m = Base();
  m.push_back(Node("multi", {9001, 9002}));
  json targets =
      json::array({{{"virtualNode", "a"}, {"weight", 3}},
                   {{"virtualNode", "multi"}, {"weight", 1}, {"port", 9002}}});
  json split = Http({{"prefix", "/"}});
  split["httpRoute"]["action"]["weightedTargets"] = targets;
  m.push_back(Route("split", split));
  auto c = Compile(m);
  ASSERT_NE(c, nullptr);
  const VirtualHost* h = c->FindHttpHost("svc.m.local", 0);
  ASSERT_EQ(h->http_routes.size(), 1u);
  const auto& t = h->http_routes[0].targets;
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(c->clusters[t[0].cluster].name, "m/a:8080");
  EXPECT_EQ(t[0].weight, 3u);
  EXPECT_EQ(c->clusters[t[1].cluster].name, "m/multi:9002");
  EXPECT_EQ(c->clusters[t[1].cluster].dns_hostname, "multi.local");
  EXPECT_EQ(t[1].labels->route, "split");
  EXPECT_EQ(t[1].labels->target_virtual_node, "multi");
}

TEST_F(ProxyConfigTest, RetryAndTimeoutDefaultsAreAppMeshs) {
  json m = Base();
  m.push_back(Route("plain", Http({{"prefix", "/"}})));
  m.push_back(Route(
      "tuned", Http({{"prefix", "/t"}}, "a",
                    {{"retryPolicy",
                      {{"maxRetries", 4},
                       {"perRetryTimeout", {{"unit", "s"}, {"value", 2}}},
                       {"httpRetryEvents", {"gateway-error", "client-error"}},
                       {"tcpRetryEvents", {"connection-error"}}}},
                     {"timeout",
                      {{"perRequest", {{"unit", "ms"}, {"value", 700}}},
                       {"idle", {{"unit", "s"}, {"value", 3}}}}}})));
  auto c = Compile(m);
  ASSERT_NE(c, nullptr);
  const VirtualHost* h = c->FindHttpHost("svc.m.local", 0);
  const HttpRouteEntry* plain = nullptr;
  const HttpRouteEntry* tuned = nullptr;
  for (const auto& r : h->http_routes) (r.name == "plain" ? plain : tuned) = &r;
  // No retryPolicy: 2 retries on 503, connect failures and resets.
  EXPECT_EQ(plain->retry.max_retries, 2u);
  EXPECT_TRUE(plain->retry.RetriesStatus(503));
  EXPECT_FALSE(plain->retry.RetriesStatus(502));
  EXPECT_TRUE(plain->retry.connection_error);
  EXPECT_EQ(plain->per_request_timeout, Millis(15000));
  EXPECT_EQ(plain->idle_timeout, Millis(0));
  EXPECT_EQ(tuned->retry.max_retries, 4u);
  EXPECT_EQ(tuned->retry.per_try_timeout, Millis(2000));
  EXPECT_TRUE(tuned->retry.RetriesStatus(409));
  EXPECT_TRUE(tuned->retry.RetriesStatus(504));
  EXPECT_FALSE(tuned->retry.RetriesStatus(500));
  EXPECT_TRUE(tuned->retry.connection_error);
  EXPECT_EQ(tuned->per_request_timeout, Millis(700));
  EXPECT_EQ(tuned->idle_timeout, Millis(3000));
  // The target listener's own timeout (App Mesh's default 15 s) rides on the
  // cluster, to be tightened with the route's per request.
  const Cluster& a = c->clusters[tuned->targets[0].cluster];
  EXPECT_EQ(a.per_request_timeout, Millis(15000));
  EXPECT_EQ(a.idle_timeout, Millis(0));
  EXPECT_EQ(TighterTimeout(Millis(700), a.per_request_timeout), Millis(700));
  EXPECT_EQ(TighterTimeout(Millis(0), Millis(5)), Millis(5));
}

TEST_F(ProxyConfigTest, NodeProvidedServicesAndTcpPorts) {
  json m = json::array({{{"meshName", "m"}, {"spec", json::object()}},
                        Node("db", {5432}, "tcp"),
                        Node("web", {8080})});
  m.push_back(
      {{"meshName", "m"},
       {"virtualServiceName", "db.m.local"},
       {"spec",
        {{"provider", {{"virtualNode", {{"virtualNodeName", "db"}}}}}}}});
  m.push_back(
      {{"meshName", "m"},
       {"virtualServiceName", "web.m.local"},
       {"spec",
        {{"provider", {{"virtualNode", {{"virtualNodeName", "web"}}}}}}}});
  auto c = Compile(m);
  ASSERT_NE(c, nullptr);
  const VirtualHost* db = c->FindTcpHost(5432);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->virtual_service, "db.m.local");
  EXPECT_EQ(db->tcp_routes.size(), 1u);
  EXPECT_EQ(c->FindHttpHost("db.m.local", 5432), nullptr);  // TCP only
  const VirtualHost* web = c->FindHttpHost("web.m.local:8080", 0);
  ASSERT_NE(web, nullptr);
  ASSERT_EQ(web->http_routes.size(), 1u);
  EXPECT_EQ(web->http_routes[0].retry.max_retries, 2u);
}

TEST_F(ProxyConfigTest, GatewaysOnlyThoseAskedFor) {
  json m = Base();
  m.push_back(Route("any", Http({{"prefix", "/"}})));
  for (std::string gw : {"g1", "g2"}) {
    json listener = {
        {"portMapping",
         {{"port", gw == "g1" ? 8001 : 8002}, {"protocol", "http"}}}};
    json vg = {{"meshName", "m"}, {"virtualGatewayName", gw}};
    vg["spec"]["listeners"] = json::array({listener});
    m.push_back(vg);
    json action;
    action["target"]["virtualService"]["virtualServiceName"] = "Svc.M.Local";
    action["rewrite"]["hostname"]["defaultTargetHostname"] = "DISABLED";
    json gr = {{"meshName", "m"},
               {"virtualGatewayName", gw},
               {"gatewayRouteName", "to-svc"}};
    gr["spec"]["httpRoute"]["match"]["prefix"] = "/";
    gr["spec"]["httpRoute"]["action"] = action;
    m.push_back(gr);
  }
  auto all = Compile(m);
  ASSERT_NE(all, nullptr);
  EXPECT_EQ(all->gateways.size(), 2u);
  CompileOptions only;
  only.gateways = {"m/g2"};
  auto one = Compile(m, only);
  ASSERT_EQ(one->gateways.size(), 1u);
  EXPECT_EQ(one->gateways[0].port, 8002);
  ASSERT_EQ(one->gateways[0].routes.size(), 1u);
  EXPECT_FALSE(one->gateways[0].routes[0].rewrite_host);
  EXPECT_EQ(one->virtual_hosts[one->gateways[0].routes[0].virtual_host]
                .virtual_service,
            "Svc.M.Local");
}

// A gateway "gw" on 8001 with one route "to-svc" of `http_route`.
json GatewayWith(json m, json http_route) {
  json vg = {{"meshName", "m"}, {"virtualGatewayName", "gw"}};
  vg["spec"]["listeners"] =
      json::array({{{"portMapping", {{"port", 8001}, {"protocol", "http"}}}}});
  m.push_back(vg);
  http_route["action"]["target"]["virtualService"]["virtualServiceName"] =
      "Svc.M.Local";
  json gr = {{"meshName", "m"},
             {"virtualGatewayName", "gw"},
             {"gatewayRouteName", "to-svc"}};
  gr["spec"]["httpRoute"] = http_route;
  m.push_back(gr);
  return m;
}

TEST_F(ProxyConfigTest, GatewayPathRewritesFollowAppMesh) {
  json m = Base();
  m.push_back(Route("any", Http({{"prefix", "/"}})));
  struct Case {
    json route;
    proxy::PathRewrite want;
  } cases[] = {
      // No rewrite: the matched prefix becomes "/".
      {{{"match", {{"prefix", "/api"}}}},
       proxy::PathRewrite::Prefix("/api", "/")},
      {{{"match", {{"prefix", "/"}}}}, proxy::PathRewrite()},
      {{{"match", {{"prefix", "/red/"}}},
        {"action",
         {{"rewrite", {{"prefix", {{"defaultPrefix", "DISABLED"}}}}}}}},
       proxy::PathRewrite()},
      {{{"match", {{"prefix", "/red/"}}},
        {"action",
         {{"rewrite", {{"prefix", {{"defaultPrefix", "ENABLED"}}}}}}}},
       proxy::PathRewrite::Prefix("/red/", "/")},
      {{{"match", {{"prefix", "/maroon/"}}},
        {"action", {{"rewrite", {{"prefix", {{"value", "/red/"}}}}}}}},
       proxy::PathRewrite::Prefix("/maroon/", "/red/")},
      {{{"match", {{"path", {{"exact", "/rewrite/path/blue"}}}}},
        {"action", {{"rewrite", {{"path", {{"exact", "/blue"}}}}}}}},
       proxy::PathRewrite::Exact("/blue")},
      // Path and hostname matches keep the path.
      {{{"match", {{"path", {{"regex", "/x/.*"}}}}}}, proxy::PathRewrite()},
      {{{"match", {{"hostname", {{"suffix", ".example.com"}}}}}},
       proxy::PathRewrite()},
  };
  for (const Case& c : cases) {
    auto config = Compile(GatewayWith(m, c.route));
    ASSERT_NE(config, nullptr);
    EXPECT_TRUE(warnings_.empty()) << c.route.dump() << ": " << warnings_[0];
    ASSERT_EQ(config->gateways.size(), 1u);
    ASSERT_EQ(config->gateways[0].routes.size(), 1u) << c.route.dump();
    const GatewayRouteEntry& e = config->gateways[0].routes[0];
    EXPECT_TRUE(e.path_rewrite == c.want) << c.route.dump();
    EXPECT_TRUE(e.rewrite_host) << c.route.dump();
  }
}

TEST_F(ProxyConfigTest, GatewayRewritesThatContradictTheMatchAreSkipped) {
  json m = Base();
  m.push_back(Route("any", Http({{"prefix", "/"}})));
  struct Case {
    json route;
    std::string field;
  } cases[] = {
      {{{"match", {{"prefix", "/a/"}}},
        {"action", {{"rewrite", {{"path", {{"exact", "/b"}}}}}}}},
       "spec.httpRoute.action.rewrite.path"},
      {{{"match", {{"path", {{"exact", "/a"}}}}},
        {"action", {{"rewrite", {{"prefix", {{"value", "/b/"}}}}}}}},
       "spec.httpRoute.action.rewrite.prefix"},
      {{{"match", {{"prefix", "/a/"}}},
        {"action",
         {{"rewrite",
           {{"prefix", {{"value", "/b/"}, {"defaultPrefix", "ENABLED"}}}}}}}},
       "spec.httpRoute.action.rewrite.prefix"},
      {{{"match", {{"prefix", "/a/"}}},
        {"action", {{"rewrite", {{"prefix", {{"value", "/b"}}}}}}}},
       "spec.httpRoute.action.rewrite.prefix.value"},
  };
  for (const Case& c : cases) {
    auto config = Compile(GatewayWith(m, c.route));
    ASSERT_NE(config, nullptr);
    ASSERT_EQ(config->gateways.size(), 1u);
    EXPECT_TRUE(config->gateways[0].routes.empty()) << c.route.dump();
    ASSERT_EQ(warnings_.size(), 1u) << c.route.dump();
    EXPECT_NE(warnings_[0].find(c.field + ":"), std::string::npos)
        << warnings_[0];
    EXPECT_NE(warnings_[0].find("gateway route skipped"), std::string::npos)
        << warnings_[0];
  }
}

TEST_F(ProxyConfigTest, GatewayHostnameRewriteDisabledKeepsTheClientsHost) {
  json m = Base();
  m.push_back(Route("any", Http({{"prefix", "/"}})));
  json route = {
      {"match", {{"prefix", "/api/"}}},
      {"action",
       {{"rewrite", {{"hostname", {{"defaultTargetHostname", "DISABLED"}}}}}}}};
  auto config = Compile(GatewayWith(m, route));
  ASSERT_NE(config, nullptr);
  ASSERT_EQ(config->gateways.at(0).routes.size(), 1u);
  const GatewayRouteEntry& e = config->gateways[0].routes[0];
  EXPECT_FALSE(e.rewrite_host);
  // The prefix default still applies.
  EXPECT_TRUE(e.path_rewrite == proxy::PathRewrite::Prefix("/api/", "/"));
}

// Without the model's defaults (a spec built in code): the same rules.
TEST_F(ProxyConfigTest, ConnectionPoolsPerListenerProtocol) {
  auto with_pool = [](json node, int listener, json pool) {
    node["spec"]["listeners"][listener]["connectionPool"] = pool;
    return node;
  };
  json resources = Base();
  resources.push_back(with_pool(
      Node("h", {9001}), 0,
      {{"http", {{"maxConnections", 4}, {"maxPendingRequests", 7}}}}));
  resources.push_back(
      with_pool(Node("hp", {9002}), 0, {{"http", {{"maxConnections", 2}}}}));
  resources.push_back(with_pool(Node("t", {9003}, "tcp"), 0,
                                {{"tcp", {{"maxConnections", 3}}}}));
  resources.push_back(with_pool(Node("h2", {9004}, "http2"), 0,
                                {{"http2", {{"maxRequests", 50}}}}));
  resources.push_back(with_pool(Node("g", {9005, 9006}, "grpc"), 1,
                                {{"grpc", {{"maxRequests", 9}}}}));
  auto c = Compile(resources);
  ASSERT_NE(c, nullptr);
  auto limits = [&](const std::string& name) {
    for (const Cluster& cl : c->clusters)
      if (cl.name == name) return cl.pool;
    ADD_FAILURE() << "no cluster " << name;
    return PoolLimits{};
  };
  EXPECT_EQ(limits("m/h:9001"), (PoolLimits{4, 7, 0}));
  // maxPendingRequests unset: App Mesh's default, 2147483647 (no limit in
  // practice; the decoder fills it in).
  EXPECT_EQ(limits("m/hp:9002"), (PoolLimits{2, 2147483647, 0}));
  EXPECT_EQ(limits("m/t:9003"), (PoolLimits{3, 0, 0}));
  EXPECT_EQ(limits("m/h2:9004"), (PoolLimits{0, 0, 50}));
  // Per listener: only the second grpc listener has a pool.
  EXPECT_EQ(limits("m/g:9005"), PoolLimits{});
  EXPECT_FALSE(limits("m/g:9005").limited());
  EXPECT_EQ(limits("m/g:9006"), (PoolLimits{0, 0, 9}));
  // No connectionPool: no limits (App Mesh left Envoy's at 2147483647).
  EXPECT_FALSE(limits("m/a:8080").limited());
}

TEST(CompilePoolLimitsTest, MemberNotMatchingTheProtocolIsIgnored) {
  model::ConnectionPool pool;
  pool.http = model::HttpConnectionPool{5, 6};
  EXPECT_EQ(CompilePoolLimits(pool, model::PortProtocol::kHttp),
            (PoolLimits{5, 6, 0}));
  EXPECT_EQ(CompilePoolLimits(pool, model::PortProtocol::kTcp), PoolLimits{});
  EXPECT_EQ(CompilePoolLimits(pool, model::PortProtocol::kGrpc), PoolLimits{});
  model::ConnectionPool grpc;
  grpc.grpc = model::RequestConnectionPool{1};
  EXPECT_EQ(CompilePoolLimits(grpc, model::PortProtocol::kGrpc),
            (PoolLimits{0, 0, 1}));
  EXPECT_EQ(CompilePoolLimits(grpc, model::PortProtocol::kHttp2), PoolLimits{});
}

TEST(CompilePathRewriteTest, UnsetRewriteMeansAppMeshDefaults) {
  model::HttpGatewayRoute r;
  r.match.prefix = "/chapter";
  auto rw = CompilePathRewrite(r);
  ASSERT_TRUE(rw.ok()) << rw.status();
  std::string out;
  rw->Apply("/chapter/page", "a=1", &out);
  EXPECT_EQ(out, "/page?a=1");
  r.action.rewrite.emplace();
  r.action.rewrite->prefix.emplace();
  rw = CompilePathRewrite(r);
  ASSERT_TRUE(rw.ok()) << rw.status();
  EXPECT_TRUE(*rw == proxy::PathRewrite::Prefix("/chapter", "/"));
  r.match.prefix.reset();
  r.match.path.emplace();
  r.match.path->exact = "/chapter";
  EXPECT_FALSE(CompilePathRewrite(r).ok());
}

TEST_F(ProxyConfigTest, AccessLogsOnePathOnceAndEachResourcesFormat) {
  json m = Base();
  auto with_log = [](json node, json file) {
    node["spec"]["logging"]["accessLog"]["file"] = std::move(file);
    return node;
  };
  m.push_back(with_log(Node("t", {9001}), {{"path", "/dev/stdout"}}));
  m.push_back(with_log(
      Node("j", {9002}),
      {{"path", "/dev/stdout"},
       {"format",
        {{"json", {{{"key", "code"}, {"value", "%RESPONSE_CODE%"}}}}}}}));
  m.push_back(with_log(Node("x", {9003, 9004}),
                       {{"path", "/nonexistent-dir-nm/x.log"},
                        {"format", {{"text", "%BOGUS% %REQ(X-A)%\n"}}}}));
  json vg = {{"meshName", "m"}, {"virtualGatewayName", "g"}};
  vg["spec"]["listeners"] =
      json::array({{{"portMapping", {{"port", 8001}, {"protocol", "http"}}}}});
  vg["spec"]["logging"]["accessLog"]["file"] = {{"path", "/dev/stderr"}};
  m.push_back(vg);
  auto c = Compile(m);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->access_log_paths,
            (std::vector<std::string>{
                "/dev/stdout", "/nonexistent-dir-nm/x.log", "/dev/stderr"}));
  ASSERT_EQ(c->access_logs.size(), 4u);
  int32_t t = c->NodeAccessLog("m/t");
  int32_t j = c->NodeAccessLog("m/j");
  int32_t x = c->NodeAccessLog("m/x");
  ASSERT_GE(t, 0);
  ASSERT_GE(j, 0);
  ASSERT_GE(x, 0);
  EXPECT_EQ(c->NodeAccessLog("m/a"), -1);
  EXPECT_EQ(c->NodeAccessLog(""), -1);
  // Same path, different formats: one sink.
  EXPECT_EQ(c->access_logs[t].sink, c->access_logs[j].sink);
  EXPECT_NE(c->access_logs[t].format, c->access_logs[j].format);
  // Every listener of a node logs to the node's file.
  int with_x = 0;
  for (const Cluster& cl : c->clusters) {
    if (cl.virtual_node == "x") {
      EXPECT_EQ(cl.access_log, x);
      ++with_x;
    }
    if (cl.virtual_node == "a") {
      EXPECT_EQ(cl.access_log, -1);
    }
  }
  EXPECT_EQ(with_x, 2);
  ASSERT_EQ(c->gateways.size(), 1u);
  int32_t g = c->GatewayAccessLog(8001);
  ASSERT_GE(g, 0);
  EXPECT_EQ(c->access_log_paths[c->access_logs[g].sink], "/dev/stderr");
  EXPECT_EQ(c->GatewayAccessLog(8002), -1);
  // The missing directory and the unknown operator are warnings that name
  // the resource and the field.
  int dir = 0, op = 0;
  for (const std::string& w : warnings_) {
    if (w.find("/nonexistent-dir-nm") != w.npos &&
        w.find("does not exist") != w.npos)
      ++dir;
    if (w.find("%BOGUS%") != w.npos &&
        w.find("spec.logging.accessLog.file.format.text") != w.npos)
      ++op;
  }
  EXPECT_EQ(dir, 1) << testing::PrintToString(warnings_);
  EXPECT_EQ(op, 1) << testing::PrintToString(warnings_);
  // Only X-A is read from requests.
  EXPECT_GE(c->access_log_headers.size(), 1u);
}

TEST(ProxyConfigExamplesTest, EveryWalkthroughCompiles) {
  if (!std::filesystem::exists(NODEMESH_EXAMPLES_DIR))
    GTEST_SKIP() << "no " << NODEMESH_EXAMPLES_DIR;
  auto groups = model::GroupWalkthroughs(model::ReadIndex());
  ASSERT_GT(groups.size(), 10u);
  LabelInterner labels;
  size_t hosts = 0;
  for (const auto& [group, files] : groups) {
    TempConfigDir dir;
    model::WriteWalkthrough(group, files, dir);
    auto r = model::SnapshotBuilder(dir.path()).Build(nullptr);
    ASSERT_NE(r.snapshot, nullptr) << group;
    std::vector<std::string> warnings;
    auto c = CompileProxyConfig(*r.snapshot, {}, &labels, &warnings);
    ASSERT_NE(c, nullptr) << group;
    hosts += c->virtual_hosts.size();
    for (const auto& w : warnings) {
      // Only what the proxy does not serve yet may be skipped.
      EXPECT_TRUE(w.find("not served yet") != std::string::npos)
          << group << ": " << w;
    }
  }
  EXPECT_GT(hosts, 20u);
}

}  // namespace
}  // namespace nodemesh::compile
