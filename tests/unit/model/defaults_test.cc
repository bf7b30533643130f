// The values App Mesh applied without being asked become explicit, and each
// one is marked as a default.

#include "agent/model/defaults.h"

#include <algorithm>
#include <string>

#include "agent/model/json_codec.h"
#include "gtest/gtest.h"

namespace nodemesh::model {
namespace {

AnySpec Decode(ResourceKind kind, const char* json) {
  rapidjson::Document doc;
  doc.Parse(json);
  Diagnostics diags;
  AnySpec spec =
      DecodeSpec(kind, doc, SourceLocation{"t"}, "r", "spec", &diags);
  EXPECT_FALSE(diags.has_errors());
  return spec;
}

bool Marked(const AnySpec& spec, const std::string& path) {
  const auto& f = DefaultedFields(spec);
  return std::find(f.begin(), f.end(), path) != f.end();
}

TEST(DefaultsTest, MeshDropsEgressAndPrefersIPv4) {
  AnySpec spec = Decode(ResourceKind::kMesh, "{}");
  ApplyDefaults(&spec);
  const auto& mesh = std::get<MeshSpec>(spec);
  EXPECT_EQ(mesh.egress_filter->type, EgressFilterType::kDropAll);
  EXPECT_EQ(mesh.service_discovery->ip_preference, IpPreference::kIPv4Only);
  EXPECT_TRUE(Marked(spec, "egressFilter.type"));
  EXPECT_TRUE(Marked(spec, "serviceDiscovery.ipPreference"));
}

TEST(DefaultsTest, WrittenValuesStayAndAreNotMarked) {
  AnySpec spec = Decode(ResourceKind::kMesh,
                        R"({"egressFilter": {"type": "ALLOW_ALL"},
                            "serviceDiscovery": {"ipPreference":
                                                 "IPv6_ONLY"}})");
  ApplyDefaults(&spec);
  const auto& mesh = std::get<MeshSpec>(spec);
  EXPECT_EQ(mesh.egress_filter->type, EgressFilterType::kAllowAll);
  EXPECT_EQ(mesh.service_discovery->ip_preference, IpPreference::kIPv6Only);
  EXPECT_TRUE(mesh.defaulted_fields.empty());
}

TEST(DefaultsTest, HttpRouteGets15sTimeoutAndImplicitRetries) {
  AnySpec spec = Decode(ResourceKind::kRoute, R"({"httpRoute": {
      "match": {"prefix": "/", "headers": [{"name": "x"}]},
      "action": {"weightedTargets": [{"virtualNode": "a", "weight": 1}]},
      "timeout": {"idle": {"value": 5, "unit": "s"}}}})");
  ApplyDefaults(&spec);
  ApplyDefaults(&spec);
  const auto& route = std::get<RouteSpec>(spec);
  EXPECT_EQ(route.http_route->timeout->per_request, Duration::Seconds(15));
  EXPECT_EQ(route.http_route->timeout->idle, Duration::Seconds(5));
  ASSERT_TRUE(route.implicit_retry_policy);
  EXPECT_EQ(route.implicit_retry_policy->num_retries, 2);
  EXPECT_EQ(route.implicit_retry_policy->retriable_status_codes,
            std::vector<int32_t>{503});
  EXPECT_EQ(route.implicit_retry_policy->host_selection_retry_max_attempts, 5);
  EXPECT_EQ(route.http_route->match.headers[0].invert, false);
  EXPECT_EQ(route.defaulted_fields,
            (std::vector<std::string>{"httpRoute.match.headers[0].invert",
                                      "httpRoute.timeout.perRequest",
                                      "implicitRetryPolicy"}));
}

TEST(DefaultsTest, ExplicitRetryPolicyMeansNoImplicitOne) {
  AnySpec spec = Decode(ResourceKind::kRoute, R"({"grpcRoute": {
      "match": {"serviceName": "s"},
      "action": {"weightedTargets": [{"virtualNode": "a", "weight": 1}]},
      "retryPolicy": {"maxRetries": 0,
          "perRetryTimeout": {"value": 1, "unit": "s"},
          "grpcRetryEvents": ["unavailable"]}}})");
  ApplyDefaults(&spec);
  const auto& route = std::get<RouteSpec>(spec);
  EXPECT_FALSE(route.implicit_retry_policy);
  EXPECT_EQ(route.grpc_route->timeout->per_request, Duration::Seconds(15));
}

TEST(DefaultsTest, TcpRouteGetsNothing) {
  AnySpec spec = Decode(ResourceKind::kRoute, R"({"tcpRoute": {
      "action": {"weightedTargets": [{"virtualNode": "a", "weight": 1}]}}})");
  ApplyDefaults(&spec);
  const auto& route = std::get<RouteSpec>(spec);
  EXPECT_FALSE(route.tcp_route->timeout);
  EXPECT_FALSE(route.implicit_retry_policy);
  EXPECT_TRUE(route.defaulted_fields.empty());
}

TEST(DefaultsTest, VirtualNodeListenersAndDiscovery) {
  AnySpec spec = Decode(ResourceKind::kVirtualNode, R"({
      "listeners": [
        {"portMapping": {"port": 8080, "protocol": "http2"},
         "healthCheck": {"healthyThreshold": 2, "intervalMillis": 5000,
                         "protocol": "http2", "timeoutMillis": 2000,
                         "unhealthyThreshold": 2},
         "connectionPool": {"http2": {"maxRequests": 5}}},
        {"portMapping": {"port": 9090, "protocol": "http"},
         "connectionPool": {"http": {"maxConnections": 5}}},
        {"portMapping": {"port": 5432, "protocol": "tcp"}}],
      "backendDefaults": {"clientPolicy": {"tls": {"validation":
          {"trust": {"file": {"certificateChain": "/ca"}}}}}},
      "serviceDiscovery": {"dns": {"hostname": "a.local"}}})");
  ApplyDefaults(&spec);
  const auto& node = std::get<VirtualNodeSpec>(spec);
  EXPECT_EQ(node.listeners[0].timeout->http2->per_request,
            Duration::Seconds(15));
  EXPECT_EQ(node.listeners[0].health_check->port, 8080);
  EXPECT_EQ(node.listeners[1].timeout->http->per_request,
            Duration::Seconds(15));
  EXPECT_EQ(node.listeners[1].connection_pool->http->max_pending_requests,
            2147483647);
  EXPECT_FALSE(node.listeners[2].timeout);  // tcp idle: default none
  EXPECT_EQ(node.backend_defaults->client_policy->tls->enforce, true);
  EXPECT_EQ(node.service_discovery->dns->response_type,
            DnsResponseType::kLoadBalancer);
  EXPECT_TRUE(Marked(spec, "listeners[0].timeout.http2.perRequest"));
  EXPECT_TRUE(Marked(spec, "listeners[0].healthCheck.port"));
  EXPECT_TRUE(
      Marked(spec, "listeners[1].connectionPool.http.maxPendingRequests"));
  EXPECT_TRUE(Marked(spec, "backendDefaults.clientPolicy.tls.enforce"));
  EXPECT_TRUE(Marked(spec, "serviceDiscovery.dns.responseType"));
}

TEST(DefaultsTest, MismatchedListenerTimeoutIsLeftAlone) {
  AnySpec spec = Decode(ResourceKind::kVirtualNode, R"({"listeners": [
      {"portMapping": {"port": 80, "protocol": "http"},
       "timeout": {"tcp": {"idle": {"value": 1, "unit": "s"}}}}]})");
  ApplyDefaults(&spec);
  const auto& node = std::get<VirtualNodeSpec>(spec);
  EXPECT_FALSE(node.listeners[0].timeout->http);
  EXPECT_TRUE(node.defaulted_fields.empty());
}

TEST(DefaultsTest, GatewayRouteRewritesHostAndPrefix) {
  AnySpec spec = Decode(ResourceKind::kGatewayRoute, R"({"httpRoute": {
      "match": {"prefix": "/shop"},
      "action": {"target": {"virtualService":
          {"virtualServiceName": "shop"}}}}})");
  ApplyDefaults(&spec);
  const auto& gr = std::get<GatewayRouteSpec>(spec);
  const auto& rw = *gr.http_route->action.rewrite;
  EXPECT_EQ(rw.hostname->default_target_hostname,
            DefaultGatewayRouteRewrite::kEnabled);
  EXPECT_EQ(rw.prefix->default_prefix, DefaultGatewayRouteRewrite::kEnabled);
  EXPECT_TRUE(
      Marked(spec, "httpRoute.action.rewrite.hostname.defaultTargetHostname"));
  EXPECT_TRUE(Marked(spec, "httpRoute.action.rewrite.prefix.defaultPrefix"));
}

TEST(DefaultsTest, GatewayRouteWithPathRewriteGetsNoPrefixRewrite) {
  AnySpec spec = Decode(ResourceKind::kGatewayRoute, R"({"http2Route": {
      "match": {"path": {"exact": "/a"}},
      "action": {"target": {"virtualService": {"virtualServiceName": "s"}},
                 "rewrite": {"path": {"exact": "/b"},
                             "hostname": {"defaultTargetHostname":
                                          "DISABLED"}}}}})");
  ApplyDefaults(&spec);
  const auto& rw =
      *std::get<GatewayRouteSpec>(spec).http2_route->action.rewrite;
  EXPECT_FALSE(rw.prefix);
  EXPECT_EQ(rw.hostname->default_target_hostname,
            DefaultGatewayRouteRewrite::kDisabled);
  EXPECT_TRUE(DefaultedFields(spec).empty());
}

}  // namespace
}  // namespace nodemesh::model
