// http2Route and grpcRoute of virtual routers and gateways: which listener
// serves which route kind, gRPC matches and their order, gRPC retry events
// and timeouts.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agent/compile/proxy_config.h"
#include "gtest/gtest.h"
#include "tests/unit/compile/proxy_config_test_util.h"

namespace nodemesh::compile {
namespace {

// A gRPC call as the HTTP/2 session presents it.
bool Routes(const HttpRouteEntry& e, std::string_view path,
            const http::HeaderList* headers = nullptr, uint16_t port = 0) {
  proxy::RequestView v;
  v.method = "POST";
  v.path = path;
  v.scheme = "http";
  v.authority = "grpc.m.local";
  v.port = port;
  v.headers = headers;
  return e.Matches(v);
}

TEST_F(ProxyConfigTest, EachListenerServesTheRoutesOfItsProtocol) {
  json m = Base();
  m.push_back(Node("h2", {9002}, "http2"));
  m.push_back(Node("g", {9003}, "grpc"));
  m.push_back(Router("mix", {{8090, "http"}, {8091, "http2"}, {8092, "grpc"}}));
  m.push_back(Service("mix.m.local", "mix"));
  m.push_back(
      RouteOn("mix", "h1",
              RouteOf("httpRoute", {{"prefix", "/"}, {"port", 8090}}, "a")));
  m.push_back(
      RouteOn("mix", "h2",
              RouteOf("http2Route", {{"prefix", "/"}, {"port", 8091}}, "h2")));
  m.push_back(RouteOn("mix", "g", RouteOf("grpcRoute", {{"port", 8092}}, "g")));
  auto c = Compile(m);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(warnings_.empty()) << testing::PrintToString(warnings_);
  struct Want {
    uint16_t port;
    model::PortProtocol protocol;
    std::string route, cluster;
    bool grpc;
  } wants[] = {{8090, model::PortProtocol::kHttp, "h1", "m/a:8080", false},
               {8091, model::PortProtocol::kHttp2, "h2", "m/h2:9002", false},
               {8092, model::PortProtocol::kGrpc, "g", "m/g:9003", true}};
  for (const Want& w : wants) {
    const VirtualHost* h = c->FindHttpHost("mix.m.local", w.port);
    ASSERT_NE(h, nullptr) << w.port;
    EXPECT_EQ(h->port, w.port);
    EXPECT_EQ(h->protocol, w.protocol);
    ASSERT_EQ(h->http_routes.size(), 1u) << w.port;
    const HttpRouteEntry& e = h->http_routes[0];
    EXPECT_EQ(e.name, w.route);
    EXPECT_EQ(c->clusters[e.targets.at(0).cluster].name, w.cluster);
    EXPECT_EQ(e.grpc, w.grpc) << w.route;
    EXPECT_EQ(e.grpc_matcher.has_value(), w.grpc) << w.route;
  }
}

TEST_F(ProxyConfigTest, Http2RouteMatchesRetriesAndTimesOutLikeHttpRoute) {
  json m = Base();
  m.push_back(Node("h2", {9002}, "http2"));
  m.push_back(Router("r2", {{8082, "http2"}}));
  m.push_back(Service("h2.m.local", "r2"));
  m.push_back(
      RouteOn("r2", "any", RouteOf("http2Route", {{"prefix", "/"}}, "h2")));
  m.push_back(RouteOn(
      "r2", "v2",
      RouteOf("http2Route",
              {{"prefix", "/v2"}, {"headers", {{{"name", "x-beta"}}}}}, "h2",
              {{"retryPolicy",
                {{"maxRetries", 3},
                 {"perRetryTimeout", {{"unit", "ms"}, {"value", 250}}},
                 {"httpRetryEvents", {"server-error", "stream-error"}}}},
               {"timeout",
                {{"perRequest", {{"unit", "s"}, {"value", 5}}},
                 {"idle", {{"unit", "s"}, {"value", 9}}}}}})));
  auto c = Compile(m);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(warnings_.empty()) << testing::PrintToString(warnings_);
  const VirtualHost* h = c->FindHttpHost("h2.m.local", 0);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->protocol, model::PortProtocol::kHttp2);
  ASSERT_EQ(h->http_routes.size(), 2u);
  const HttpRouteEntry& v2 = h->http_routes[0];
  const HttpRouteEntry& any = h->http_routes[1];
  EXPECT_EQ(v2.name, "v2");
  EXPECT_FALSE(v2.grpc);
  http::HeaderList beta;
  beta.Add("x-beta", "1");
  EXPECT_TRUE(Routes(v2, "/v2/items", &beta));
  EXPECT_FALSE(Routes(v2, "/v2/items"));
  EXPECT_FALSE(Routes(v2, "/v1/items", &beta));
  EXPECT_TRUE(Routes(any, "/v1/items"));
  EXPECT_EQ(v2.retry.max_retries, 3u);
  EXPECT_EQ(v2.retry.per_try_timeout, Millis(250));
  EXPECT_TRUE(v2.retry.RetriesStatus(500));
  EXPECT_TRUE(v2.retry.stream_error);
  EXPECT_FALSE(v2.retry.connection_error);
  EXPECT_FALSE(v2.retry.RetriesGrpcStatus(14));  // an explicit policy only
  EXPECT_EQ(v2.per_request_timeout, Millis(5000));
  EXPECT_EQ(v2.idle_timeout, Millis(9000));
  EXPECT_EQ(any.retry.max_retries, 2u);  // implicit
  EXPECT_EQ(any.per_request_timeout, Millis(15000));
}

class GrpcRoutesTest : public ProxyConfigTest {
 protected:
  // Nodes "gs" and "gs2" (grpc 50051), router "gr" (grpc 50051) behind
  // grpc.m.local, besides Base().
  json Grpc() const {
    json m = Base();
    m.push_back(Node("gs", {50051}, "grpc"));
    m.push_back(Node("gs2", {50051}, "grpc"));
    m.push_back(Router("gr", {{50051, "grpc"}}));
    m.push_back(Service("grpc.m.local", "gr"));
    return m;
  }
  const VirtualHost* Host(const ProxyConfig& c) const {
    const VirtualHost* h = c.FindHttpHost("grpc.m.local", 0);
    EXPECT_NE(h, nullptr);
    return h;
  }
};

TEST_F(GrpcRoutesTest, MethodThenServiceWithMetadataThenServiceThenAny) {
  json m = Grpc();
  m.push_back(RouteOn("gr", "any", RouteOf("grpcRoute", json::object(), "gs")));
  m.push_back(RouteOn(
      "gr", "svc",
      RouteOf("grpcRoute", {{"serviceName", "color.ColorService"}}, "gs")));
  m.push_back(
      RouteOn("gr", "canary",
              RouteOf("grpcRoute",
                      {{"serviceName", "color.ColorService"},
                       {"metadata",
                        {{{"name", "x-canary"},
                          {"match", {{"range", {{"start", 1}, {"end", 10}}}}}},
                         {{"name", "x-block"}, {"invert", true}}}}},
                      "gs2")));
  m.push_back(RouteOn("gr", "get",
                      RouteOf("grpcRoute",
                              {{"serviceName", "color.ColorService"},
                               {"methodName", "GetColor"}},
                              "gs2")));
  auto c = Compile(m);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(warnings_.empty()) << testing::PrintToString(warnings_);
  const VirtualHost* h = Host(*c);
  ASSERT_NE(h, nullptr);
  std::vector<std::string> order;
  for (const auto& r : h->http_routes) order.push_back(r.name);
  EXPECT_EQ(order, (std::vector<std::string>{"get", "canary", "svc", "any"}));
  for (const auto& r : h->http_routes) EXPECT_TRUE(r.grpc) << r.name;

  // The first entry that matches wins, as in the session.
  auto first = [&](std::string_view path, const http::HeaderList* headers) {
    for (const auto& r : h->http_routes)
      if (Routes(r, path, headers)) return r.name;
    return std::string("none");
  };
  http::HeaderList canary;
  canary.Add("x-canary", "3");
  http::HeaderList blocked;
  blocked.Add("x-canary", "3");
  blocked.Add("x-block", "");
  http::HeaderList out_of_range;
  out_of_range.Add("x-canary", "10");
  EXPECT_EQ(first("/color.ColorService/GetColor", &canary), "get");
  EXPECT_EQ(first("/color.ColorService/SetColor", &canary), "canary");
  EXPECT_EQ(first("/color.ColorService/SetColor", &blocked), "svc");
  EXPECT_EQ(first("/color.ColorService/SetColor", &out_of_range), "svc");
  EXPECT_EQ(first("/color.ColorService/SetColor", nullptr), "svc");
  EXPECT_EQ(first("/color.ColorServiceV2/GetColor", &canary), "any");
  // `matcher` is the same match for code that still reads it.
  EXPECT_FALSE(h->http_routes[0].matcher.Matches(
      {"POST", "/color.ColorService/SetColor", "", "http", "grpc.m.local", 0,
       nullptr}));
}

TEST_F(GrpcRoutesTest, RetryEventsTimeoutsAndTheImplicitPolicy) {
  json m = Grpc();
  m.push_back(RouteOn("gr", "plain",
                      RouteOf("grpcRoute", {{"serviceName", "a.A"}}, "gs")));
  m.push_back(RouteOn(
      "gr", "tuned",
      RouteOf("grpcRoute", {{"serviceName", "b.B"}}, "gs",
              {{"retryPolicy",
                {{"maxRetries", 4},
                 {"perRetryTimeout", {{"unit", "s"}, {"value", 1}}},
                 {"grpcRetryEvents",
                  {"cancelled", "deadline-exceeded", "resource-exhausted"}},
                 {"httpRetryEvents", {"gateway-error"}},
                 {"tcpRetryEvents", {"connection-error"}}}},
               {"timeout",
                {{"perRequest", {{"unit", "s"}, {"value", 30}}},
                 {"idle", {{"unit", "ms"}, {"value", 1500}}}}}})));
  m.push_back(
      RouteOn("gr", "rest",
              RouteOf("grpcRoute", {{"serviceName", "c.C"}}, "gs",
                      {{"retryPolicy",
                        {{"maxRetries", 1},
                         {"perRetryTimeout", {{"unit", "ms"}, {"value", 100}}},
                         {"grpcRetryEvents", {"internal", "unavailable"}}}}})));
  auto c = Compile(m);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(warnings_.empty()) << testing::PrintToString(warnings_);
  const VirtualHost* h = Host(*c);
  ASSERT_NE(h, nullptr);
  std::map<std::string, const HttpRouteEntry*> by_name;
  for (const auto& r : h->http_routes) by_name[r.name] = &r;
  ASSERT_EQ(by_name.size(), 3u);

  // No retryPolicy: App Mesh's implicit one, gRPC unavailable included.
  const RetryPolicy& plain = by_name["plain"]->retry;
  EXPECT_EQ(plain.max_retries, 2u);
  EXPECT_TRUE(plain.RetriesStatus(503));
  EXPECT_TRUE(plain.connection_error);
  EXPECT_TRUE(plain.RetriesGrpcStatus(14));
  EXPECT_FALSE(plain.RetriesGrpcStatus(13));
  EXPECT_FALSE(plain.RetriesGrpcStatus(0));
  EXPECT_EQ(by_name["plain"]->per_request_timeout, Millis(15000));
  EXPECT_EQ(by_name["plain"]->idle_timeout, Millis(0));

  const HttpRouteEntry& tuned = *by_name["tuned"];
  EXPECT_EQ(tuned.retry.max_retries, 4u);
  EXPECT_EQ(tuned.retry.per_try_timeout, Millis(1000));
  EXPECT_TRUE(tuned.retry.RetriesGrpcStatus(1));
  EXPECT_TRUE(tuned.retry.RetriesGrpcStatus(4));
  EXPECT_TRUE(tuned.retry.RetriesGrpcStatus(8));
  EXPECT_FALSE(tuned.retry.RetriesGrpcStatus(13));
  EXPECT_FALSE(tuned.retry.RetriesGrpcStatus(14));
  EXPECT_FALSE(tuned.retry.RetriesGrpcStatus(2));
  // httpRetryEvents and tcpRetryEvents of a grpcRoute count as on http.
  EXPECT_TRUE(tuned.retry.RetriesStatus(502));
  EXPECT_FALSE(tuned.retry.RetriesStatus(500));
  EXPECT_TRUE(tuned.retry.connection_error);
  EXPECT_FALSE(tuned.retry.status_503);
  EXPECT_EQ(tuned.per_request_timeout, Millis(30000));
  EXPECT_EQ(tuned.idle_timeout, Millis(1500));

  const RetryPolicy& rest = by_name["rest"]->retry;
  EXPECT_TRUE(rest.RetriesGrpcStatus(13));
  EXPECT_TRUE(rest.RetriesGrpcStatus(14));
  EXPECT_FALSE(rest.RetriesGrpcStatus(1));
  EXPECT_FALSE(rest.RetriesStatus(503));
  EXPECT_FALSE(rest.connection_error);
}

TEST_F(GrpcRoutesTest, NodeProvidedGrpcServiceIsAGrpcCatchAll) {
  json m = Grpc();
  m.push_back(
      {{"meshName", "m"},
       {"virtualServiceName", "direct.m.local"},
       {"spec",
        {{"provider", {{"virtualNode", {{"virtualNodeName", "gs"}}}}}}}});
  m.push_back(
      {{"meshName", "m"},
       {"virtualServiceName", "web.m.local"},
       {"spec",
        {{"provider", {{"virtualNode", {{"virtualNodeName", "a"}}}}}}}});
  auto c = Compile(m);
  ASSERT_NE(c, nullptr);
  const VirtualHost* direct = c->FindHttpHost("direct.m.local", 0);
  ASSERT_NE(direct, nullptr);
  ASSERT_EQ(direct->http_routes.size(), 1u);
  EXPECT_TRUE(direct->http_routes[0].grpc);
  EXPECT_TRUE(direct->http_routes[0].retry.RetriesGrpcStatus(14));
  EXPECT_TRUE(Routes(direct->http_routes[0], "/any.Service/Any"));
  const VirtualHost* web = c->FindHttpHost("web.m.local", 0);
  ASSERT_NE(web, nullptr);
  EXPECT_FALSE(web->http_routes.at(0).grpc);
}

TEST_F(GrpcRoutesTest, MethodWithoutServiceIsSkippedWithAWarning) {
  json m = Grpc();
  m.push_back(RouteOn("gr", "svc",
                      RouteOf("grpcRoute", {{"serviceName", "a.A"}}, "gs")));
  m.push_back(
      RouteOn("gr", "bad",
              RouteOf("grpcRoute",
                      {{"serviceName", "a.A"}, {"methodName", "M"}}, "gs")));
  TempConfigDir dir;
  dir.Write("model.json", m.dump());
  auto r = model::SnapshotBuilder(dir.path()).Build(nullptr);
  ASSERT_NE(r.snapshot, nullptr);
  // Validation refuses such a spec; one built in code may still carry it.
  model::Snapshot snap = *r.snapshot;
  model::ResourceId id{model::ResourceKind::kRoute, "m", "gr", "bad"};
  auto it = snap.resources.find(model::ResourceIdView(id));
  ASSERT_NE(it, snap.resources.end());
  auto changed = std::make_shared<model::Resource>(*it->second);
  std::get<model::RouteSpec>(changed->spec)
      .grpc_route->match.service_name.reset();
  snap.resources.erase(it);
  model::Insert(&snap.resources, changed);
  std::vector<std::string> warnings;
  auto c = CompileProxyConfig(snap, {}, &labels_, &warnings);
  const VirtualHost* h = Host(*c);
  ASSERT_NE(h, nullptr);
  ASSERT_EQ(h->http_routes.size(), 1u);
  EXPECT_EQ(h->http_routes[0].name, "svc");
  ASSERT_EQ(warnings.size(), 1u) << testing::PrintToString(warnings);
  EXPECT_NE(warnings[0].find("bad"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("spec.grpcRoute.match.methodName"),
            std::string::npos)
      << warnings[0];
  EXPECT_NE(warnings[0].find("route skipped"), std::string::npos)
      << warnings[0];
}

TEST_F(GrpcRoutesTest, GatewayListenersServeTheirProtocolsRoutes) {
  json m = Grpc();
  m.push_back(Route("any", Http({{"prefix", "/"}})));
  m.push_back(Node("h2", {9002}, "http2"));
  m.push_back(Router("r2", {{8082, "http2"}}));
  m.push_back(Service("h2.m.local", "r2"));
  m.push_back(
      RouteOn("r2", "any", RouteOf("http2Route", {{"prefix", "/"}}, "h2")));
  m.push_back(RouteOn("gr", "any", RouteOf("grpcRoute", json::object(), "gs")));
  json vg = {{"meshName", "m"}, {"virtualGatewayName", "gw"}};
  vg["spec"]["listeners"] =
      json::array({{{"portMapping", {{"port", 8001}, {"protocol", "http"}}}},
                   {{"portMapping", {{"port", 8002}, {"protocol", "http2"}}}},
                   {{"portMapping", {{"port", 8003}, {"protocol", "grpc"}}}}});
  m.push_back(vg);
  auto gateway_route = [](const std::string& name, json spec) {
    return json{{"meshName", "m"},
                {"virtualGatewayName", "gw"},
                {"gatewayRouteName", name},
                {"spec", spec}};
  };
  auto target = [](const std::string& service) {
    return json{{"virtualService", {{"virtualServiceName", service}}}};
  };
  m.push_back(gateway_route(
      "web", {{"httpRoute",
               {{"match", {{"prefix", "/"}, {"port", 8001}}},
                {"action", {{"target", target("Svc.M.Local")}}}}}}));
  m.push_back(gateway_route(
      "h2", {{"http2Route",
              {{"match", {{"prefix", "/h2/"}, {"port", 8002}}},
               {"action", {{"target", target("h2.m.local")}}}}}}));
  m.push_back(gateway_route(
      "colors",
      {{"grpcRoute",
        {{"match",
          {{"serviceName", "color.ColorService"},
           {"hostname", {{"suffix", ".example.com"}}},
           {"metadata", {{{"name", "x-tenant"}, {"match", {{"exact", "t1"}}}}}},
           {"port", 8003}}},
         {"action",
          {{"target", target("grpc.m.local")},
           {"rewrite",
            {{"hostname", {{"defaultTargetHostname", "DISABLED"}}}}}}}}}}));
  m.push_back(gateway_route(
      "grpc-any", {{"grpcRoute",
                    {{"match", {{"port", 8003}}},
                     {"action", {{"target", target("grpc.m.local")}}}}}}));
  auto c = Compile(m);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(warnings_.empty()) << testing::PrintToString(warnings_);
  ASSERT_EQ(c->gateways.size(), 3u);
  std::map<uint16_t, const GatewayListener*> by_port;
  for (const auto& g : c->gateways) by_port[g.port] = &g;
  ASSERT_EQ(by_port.size(), 3u);

  const GatewayListener& web = *by_port[8001];
  EXPECT_EQ(web.protocol, model::PortProtocol::kHttp);
  ASSERT_EQ(web.routes.size(), 1u);
  EXPECT_EQ(web.routes[0].name, "web");

  const GatewayListener& h2 = *by_port[8002];
  EXPECT_EQ(h2.protocol, model::PortProtocol::kHttp2);
  ASSERT_EQ(h2.routes.size(), 1u);
  const GatewayRouteEntry& h2r = h2.routes[0];
  EXPECT_EQ(h2r.name, "h2");
  EXPECT_FALSE(h2r.grpc_matcher.has_value());
  EXPECT_EQ(c->virtual_hosts[h2r.virtual_host].virtual_service, "h2.m.local");
  // The same prefix rewrite as an httpRoute.
  EXPECT_TRUE(h2r.path_rewrite == proxy::PathRewrite::Prefix("/h2/", "/"));
  EXPECT_TRUE(h2r.rewrite_host);

  const GatewayListener& grpc = *by_port[8003];
  EXPECT_EQ(grpc.protocol, model::PortProtocol::kGrpc);
  ASSERT_EQ(grpc.routes.size(), 2u);
  const GatewayRouteEntry& colors = grpc.routes[0];
  const GatewayRouteEntry& any = grpc.routes[1];
  EXPECT_EQ(colors.name, "colors");
  EXPECT_EQ(any.name, "grpc-any");
  EXPECT_TRUE(colors.grpc_matcher.has_value());
  EXPECT_EQ(c->virtual_hosts[colors.virtual_host].virtual_service,
            "grpc.m.local");
  EXPECT_FALSE(colors.rewrite_host);
  EXPECT_TRUE(any.rewrite_host);
  // gRPC gateway routes never rewrite the path.
  EXPECT_FALSE(colors.path_rewrite.active());
  EXPECT_FALSE(any.path_rewrite.active());
  http::HeaderList tenant;
  tenant.Add("x-tenant", "t1");
  proxy::RequestView v{"POST",
                       "/color.ColorService/GetColor",
                       "",
                       "http",
                       "api.example.com",
                       8003,
                       &tenant};
  EXPECT_TRUE(colors.Matches(v));
  v.authority = "api.example.org";
  EXPECT_FALSE(colors.Matches(v));
  EXPECT_TRUE(any.Matches(v));
  v.authority = "api.example.com";
  v.path = "/other.Service/GetColor";
  EXPECT_FALSE(colors.Matches(v));
}

}  // namespace
}  // namespace nodemesh::compile
