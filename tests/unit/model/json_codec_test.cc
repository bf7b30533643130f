// Field-level rules of the App Mesh API model: each failure names its field.

#include "agent/model/json_codec.h"

#include <string>

#include "gtest/gtest.h"

namespace nodemesh::model {
namespace {

struct Result {
  AnySpec spec;
  Diagnostics diags;

  // The field paths of all findings of `severity`.
  std::vector<std::string> Paths(Diagnostic::Severity severity) const {
    std::vector<std::string> out;
    for (const Diagnostic& d : diags.items()) {
      if (d.severity == severity) out.push_back(d.field_path);
    }
    return out;
  }
  std::vector<std::string> Errors() const {
    return Paths(Diagnostic::Severity::kError);
  }
  std::vector<std::string> Warnings() const {
    return Paths(Diagnostic::Severity::kWarning);
  }
  std::string Dump() const {
    std::string out;
    for (const Diagnostic& d : diags.items()) out += d.ToString() + "\n";
    return out;
  }
};

Result Decode(ResourceKind kind, const std::string& json,
              const std::string& prefix = "spec") {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  EXPECT_FALSE(doc.HasParseError()) << json;
  Result r;
  r.spec = DecodeSpec(kind, doc, SourceLocation{"test.json"}, "R test", prefix,
                      &r.diags);
  return r;
}

using Paths = std::vector<std::string>;

constexpr char kNode[] = R"({
  "listeners": [{
    "portMapping": {"port": 8080, "protocol": "http"},
    "healthCheck": {"healthyThreshold": 2, "intervalMillis": 5000,
                    "path": "/ping", "protocol": "http",
                    "timeoutMillis": 2000, "unhealthyThreshold": 2},
    "outlierDetection": {"baseEjectionDuration": {"value": 10, "unit": "s"},
                         "interval": {"value": 30, "unit": "s"},
                         "maxEjectionPercent": 50, "maxServerErrors": 5},
    "connectionPool": {"http": {"maxConnections": 10}},
    "timeout": {"http": {"perRequest": {"value": 30, "unit": "s"},
                         "idle": {"value": 0, "unit": "ms"}}},
    "tls": {"mode": "STRICT",
            "certificate": {"file": {"certificateChain": "/c.pem",
                                     "privateKey": "/k.pem"}},
            "validation": {"trust": {"sds": {"secretName": "ca"}},
                           "subjectAlternativeNames":
                               {"match": {"exact": ["a.svc"]}}}}
  }, {
    "portMapping": {"port": 9000, "protocol": "tcp"},
    "connectionPool": {"tcp": {"maxConnections": 3}},
    "timeout": {"tcp": {"idle": {"value": 600, "unit": "s"}}}
  }],
  "backends": [{"virtualService": {"virtualServiceName": "b.local",
      "clientPolicy": {"tls": {"enforce": true, "ports": [443],
          "certificate": {"sds": {"secretName": "me"}},
          "validation": {"trust": {"acm": {"certificateAuthorityArns":
              ["arn:aws:acm-pca:us-west-2:111122223333:ca/x"]}}}}}}}],
  "backendDefaults": {"clientPolicy": {"tls": {"validation": {"trust":
      {"file": {"certificateChain": "/ca.pem"}}}}}},
  "logging": {"accessLog": {"file": {"path": "/dev/stdout",
      "format": {"json": [{"key": "start", "value": "%START_TIME%"}]}}}},
  "serviceDiscovery": {"awsCloudMap": {"namespaceName": "ns",
      "serviceName": "svc", "attributes": [{"key": "k", "value": "v"}],
      "ipPreference": "IPv6_PREFERRED"}}
})";

constexpr char kRoute[] = R"({
  "priority": 5,
  "httpRoute": {
    "match": {"prefix": "/", "method": "GET", "scheme": "https", "port": 80,
              "path": {"exact": "/x"},
              "headers": [{"name": "x-a", "invert": true,
                           "match": {"range": {"start": 1, "end": 5}}},
                          {"name": "x-b", "match": {"regex": "^v.*"}}],
              "queryParameters": [{"name": "q", "match": {"exact": "1"}},
                                  {"name": "p"}]},
    "action": {"weightedTargets": [{"virtualNode": "a", "weight": 90},
                                   {"virtualNode": "b", "weight": 10,
                                    "port": 8080}]},
    "retryPolicy": {"maxRetries": 3,
                    "perRetryTimeout": {"value": 2, "unit": "s"},
                    "httpRetryEvents": ["server-error", "gateway-error"],
                    "tcpRetryEvents": ["connection-error"]},
    "timeout": {"perRequest": {"value": 0, "unit": "s"}}
  }
})";

constexpr char kGrpcRoute[] = R"({
  "grpcRoute": {
    "match": {"serviceName": "pkg.Svc", "methodName": "Get",
              "metadata": [{"name": "m", "match": {"suffix": "z"}}]},
    "action": {"weightedTargets": [{"virtualNode": "a", "weight": 1}]},
    "retryPolicy": {"maxRetries": 1,
                    "perRetryTimeout": {"value": 100, "unit": "ms"},
                    "grpcRetryEvents": ["unavailable", "deadline-exceeded"]}
  }
})";

constexpr char kGatewayRoute[] = R"({
  "priority": 1,
  "http2Route": {
    "match": {"prefix": "/api", "hostname": {"suffix": ".example.com"},
              "method": "POST", "headers": [{"name": "h",
                                             "match": {"exact": "v"}}]},
    "action": {"target": {"virtualService": {"virtualServiceName": "api"},
                          "port": 8080},
               "rewrite": {"hostname": {"defaultTargetHostname": "DISABLED"},
                           "prefix": {"value": "/v2/"}}}
  }
})";

constexpr char kGateway[] = R"({
  "listeners": [{
    "portMapping": {"port": 443, "protocol": "http2"},
    "connectionPool": {"http2": {"maxRequests": 100}},
    "tls": {"mode": "PERMISSIVE",
            "certificate": {"acm": {"certificateArn": "arn:aws:acm:x"}}}
  }],
  "logging": {"accessLog": {"file": {"path": "/dev/stdout",
                                     "format": {"text": "%REQ(:path)%"}}}}
})";

void ExpectRoundTrip(ResourceKind kind, const char* json) {
  Result r = Decode(kind, json);
  ASSERT_TRUE(r.diags.items().empty()) << r.Dump();
  std::string encoded = EncodeSpecToString(r.spec);
  Result again = Decode(kind, encoded);
  EXPECT_TRUE(again.diags.items().empty()) << again.Dump();
  EXPECT_TRUE(again.spec == r.spec) << encoded;
}

TEST(JsonCodecTest, RoundTripsEveryKind) {
  ExpectRoundTrip(ResourceKind::kMesh,
                  R"({"egressFilter": {"type": "ALLOW_ALL"},
                      "serviceDiscovery": {"ipPreference": "IPv4_ONLY"}})");
  ExpectRoundTrip(ResourceKind::kMesh, "{}");
  ExpectRoundTrip(ResourceKind::kVirtualService,
                  R"({"provider": {"virtualRouter":
                      {"virtualRouterName": "r"}}})");
  ExpectRoundTrip(ResourceKind::kVirtualRouter,
                  R"({"listeners": [{"portMapping":
                      {"port": 80, "protocol": "http2"}}]})");
  ExpectRoundTrip(ResourceKind::kRoute, kRoute);
  ExpectRoundTrip(ResourceKind::kRoute, kGrpcRoute);
  ExpectRoundTrip(ResourceKind::kRoute,
                  R"({"tcpRoute": {"match": {"port": 5432},
                      "action": {"weightedTargets":
                          [{"virtualNode": "db", "weight": 0}]},
                      "timeout": {"idle": {"value": 1, "unit": "s"}}}})");
  ExpectRoundTrip(ResourceKind::kVirtualNode, kNode);
  ExpectRoundTrip(ResourceKind::kVirtualGateway, kGateway);
  ExpectRoundTrip(ResourceKind::kGatewayRoute, kGatewayRoute);
}

TEST(JsonCodecTest, DecodesValues) {
  Result r = Decode(ResourceKind::kRoute, kRoute);
  const auto& route = std::get<RouteSpec>(r.spec);
  ASSERT_TRUE(route.http_route);
  EXPECT_EQ(route.priority, 5);
  EXPECT_EQ(route.http_route->match.method, HttpMethod::kGet);
  ASSERT_EQ(route.http_route->action.weighted_targets.size(), 2u);
  EXPECT_EQ(route.http_route->action.weighted_targets[1].port, 8080);
  EXPECT_EQ(route.http_route->retry_policy->per_retry_timeout.ToMillis(), 2000);
  EXPECT_EQ(route.http_route->match.headers[0].match->range->end, 5);

  Result n = Decode(ResourceKind::kVirtualNode, kNode);
  const auto& node = std::get<VirtualNodeSpec>(n.spec);
  ASSERT_EQ(node.listeners.size(), 2u);
  EXPECT_EQ(node.listeners[1].port_mapping.protocol, PortProtocol::kTcp);
  EXPECT_EQ(node.listeners[0].timeout->http->per_request->ToMillis(), 30000);
  EXPECT_EQ(node.service_discovery->aws_cloud_map->ip_preference,
            IpPreference::kIPv6Preferred);
}

TEST(JsonCodecTest, DurationToMillis) {
  EXPECT_EQ(Duration::Seconds(15).ToMillis(), 15000);
  EXPECT_EQ(Duration::Millis(250).ToMillis(), 250);
  EXPECT_EQ((Duration{INT64_MAX, DurationUnit::kS}.ToMillis()), INT64_MAX);
}

TEST(JsonCodecTest, UnknownFieldIsAWarningWithItsPath) {
  Result r = Decode(ResourceKind::kVirtualRouter,
                    R"({"listeners": [{"portMapping":
                        {"port": 80, "protocol": "http", "name": "x"}}],
                        "awsName": "y"})");
  EXPECT_TRUE(r.Errors().empty()) << r.Dump();
  EXPECT_EQ(r.Warnings(),
            (Paths{"spec.awsName", "spec.listeners[0].portMapping.name"}));
}

TEST(JsonCodecTest, EnumValueOutsideTheModelIsAnError) {
  Result r = Decode(ResourceKind::kVirtualNode,
                    R"({"listeners": [{"portMapping":
                        {"port": 80, "protocol": "HTTP"}}]})");
  EXPECT_EQ(r.Errors(), Paths{"spec.listeners[0].portMapping.protocol"});
  EXPECT_NE(r.diags.items()[0].message.find("http, tcp, http2, grpc"),
            std::string::npos);

  Result m =
      Decode(ResourceKind::kMesh, R"({"egressFilter": {"type": "ALLOW"}})");
  EXPECT_EQ(m.Errors(), Paths{"spec.egressFilter.type"});

  Result d = Decode(ResourceKind::kRoute, R"({"tcpRoute": {"action":
      {"weightedTargets": [{"virtualNode": "a", "weight": 1}]},
      "timeout": {"idle": {"value": 1, "unit": "m"}}}})");
  EXPECT_EQ(d.Errors(), Paths{"spec.tcpRoute.timeout.idle.unit"});

  Result g = Decode(ResourceKind::kRoute, R"({"grpcRoute": {
      "match": {}, "action": {"weightedTargets":
          [{"virtualNode": "a", "weight": 1}]},
      "retryPolicy": {"maxRetries": 1,
          "perRetryTimeout": {"value": 1, "unit": "s"},
          "grpcRetryEvents": ["aborted"]}}})");
  EXPECT_EQ(g.Errors(), Paths{"spec.grpcRoute.retryPolicy.grpcRetryEvents[0]"});

  // Gateways take no tcp listeners.
  Result vg = Decode(ResourceKind::kVirtualGateway,
                     R"({"listeners": [{"portMapping":
                         {"port": 80, "protocol": "tcp"}}]})");
  EXPECT_EQ(vg.Errors(), Paths{"spec.listeners[0].portMapping.protocol"});
}

TEST(JsonCodecTest, GrpcMethodNameNeedsServiceName) {
  const std::string action =
      R"("action": {"weightedTargets": [{"virtualNode": "a", "weight": 1}]})";
  Result r = Decode(
      ResourceKind::kRoute,
      R"({"grpcRoute": {"match": {"methodName": "Get"}, )" + action + "}}");
  EXPECT_EQ(r.Errors(), Paths{"spec.grpcRoute.match.methodName"});
  EXPECT_NE(r.Dump().find("serviceName"), std::string::npos) << r.Dump();
  Result ok = Decode(
      ResourceKind::kRoute,
      R"({"grpcRoute": {"match": {"serviceName": "a.A", "methodName": "Get"}, )" +
          action + "}}");
  EXPECT_TRUE(ok.Errors().empty()) << ok.Dump();
}

TEST(JsonCodecTest, UndocumentedHttpRetryEventIsAWarning) {
  Result r = Decode(ResourceKind::kRoute, R"({"httpRoute": {
      "match": {"prefix": "/"},
      "action": {"weightedTargets": [{"virtualNode": "a", "weight": 1}]},
      "retryPolicy": {"maxRetries": 1,
          "perRetryTimeout": {"value": 1, "unit": "s"},
          "httpRetryEvents": ["server-error", "retriable-4xx"]}}})");
  EXPECT_TRUE(r.Errors().empty()) << r.Dump();
  EXPECT_EQ(r.Warnings(),
            Paths{"spec.httpRoute.retryPolicy.httpRetryEvents[1]"});
}

TEST(JsonCodecTest, OutOfRangeNumbersAreErrors) {
  Result r = Decode(ResourceKind::kRoute, R"({"priority": 1001,
      "httpRoute": {"match": {"prefix": "/", "port": 0},
      "action": {"weightedTargets": [{"virtualNode": "a", "weight": 101}]},
      "retryPolicy": {"maxRetries": -1,
          "perRetryTimeout": {"value": -5, "unit": "s"}}}})");
  EXPECT_EQ(r.Errors(),
            (Paths{"spec.priority", "spec.httpRoute.match.port",
                   "spec.httpRoute.action.weightedTargets[0].weight",
                   "spec.httpRoute.retryPolicy.maxRetries",
                   "spec.httpRoute.retryPolicy.perRetryTimeout.value"}));

  Result h = Decode(ResourceKind::kVirtualNode, R"({"listeners": [{
      "portMapping": {"port": 65536, "protocol": "http"},
      "healthCheck": {"healthyThreshold": 1, "intervalMillis": 4999,
                      "protocol": "http", "timeoutMillis": 60001,
                      "unhealthyThreshold": 11}}]})");
  EXPECT_EQ(h.Errors(),
            (Paths{"spec.listeners[0].portMapping.port",
                   "spec.listeners[0].healthCheck.healthyThreshold",
                   "spec.listeners[0].healthCheck.intervalMillis",
                   "spec.listeners[0].healthCheck.timeoutMillis",
                   "spec.listeners[0].healthCheck.unhealthyThreshold"}));
}

TEST(JsonCodecTest, ListSizesAndStringLengthsAreChecked) {
  std::string targets;
  for (int i = 0; i < 11; ++i) {
    targets +=
        std::string(i ? "," : "") + R"({"virtualNode": "n", "weight": 1})";
  }
  Result r =
      Decode(ResourceKind::kRoute,
             R"({"httpRoute": {"match": {"prefix": "/",
                        "headers": [{"name": ")" +
                 std::string(51, 'h') +
                 R"("}]}, "action": {"weightedTargets": [)" + targets + "]}}}");
  EXPECT_EQ(r.Errors(), (Paths{"spec.httpRoute.match.headers[0].name",
                               "spec.httpRoute.action.weightedTargets"}));

  Result e = Decode(ResourceKind::kRoute, R"({"tcpRoute": {"action":
      {"weightedTargets": []}}})");
  EXPECT_EQ(e.Errors(), Paths{"spec.tcpRoute.action.weightedTargets"});
}

TEST(JsonCodecTest, UnionsNeedExactlyOneMember) {
  Result two = Decode(ResourceKind::kVirtualService,
                      R"({"provider": {"virtualNode": {"virtualNodeName": "a"},
                          "virtualRouter": {"virtualRouterName": "b"}}})");
  EXPECT_EQ(two.Errors(), Paths{"spec.provider"});

  Result none = Decode(ResourceKind::kRoute, R"({"priority": 1})");
  EXPECT_EQ(none.Errors(), Paths{"spec"});

  Result cert = Decode(ResourceKind::kVirtualNode, R"({"listeners": [{
      "portMapping": {"port": 80, "protocol": "http"},
      "tls": {"mode": "STRICT", "certificate": {}}}]})");
  EXPECT_EQ(cert.Errors(), Paths{"spec.listeners[0].tls.certificate"});

  Result header = Decode(ResourceKind::kGatewayRoute, R"({"httpRoute": {
      "match": {"prefix": "/", "headers": [{"name": "a",
          "match": {"exact": "x", "prefix": "y"}}]},
      "action": {"target": {"virtualService":
          {"virtualServiceName": "s"}}}}})");
  EXPECT_EQ(header.Errors(), Paths{"spec.httpRoute.match.headers[0].match"});

  // A listener's validation trust has no acm member: a warning for the
  // unknown field, then an error for the empty union.
  Result trust = Decode(ResourceKind::kVirtualNode, R"({"listeners": [{
      "portMapping": {"port": 80, "protocol": "http"},
      "tls": {"mode": "STRICT",
              "certificate": {"sds": {"secretName": "s"}},
              "validation": {"trust": {"acm":
                  {"certificateAuthorityArns": ["a"]}}}}}]})");
  EXPECT_EQ(trust.Errors(), Paths{"spec.listeners[0].tls.validation.trust"});
  EXPECT_EQ(trust.Warnings(),
            Paths{"spec.listeners[0].tls.validation.trust.acm"});

  Result sd = Decode(ResourceKind::kVirtualNode, R"({"serviceDiscovery": {
      "dns": {"hostname": "a"},
      "awsCloudMap": {"namespaceName": "n", "serviceName": "s"}}})");
  EXPECT_EQ(sd.Errors(), Paths{"spec.serviceDiscovery"});
}

TEST(JsonCodecTest, MissingRequiredFieldsAreErrors) {
  Result r = Decode(ResourceKind::kRoute, R"({"httpRoute": {
      "match": {"prefix": "/"},
      "action": {"weightedTargets": [{"weight": 1}]},
      "retryPolicy": {"perRetryTimeout": {"value": 1}}}})");
  EXPECT_EQ(r.Errors(),
            (Paths{"spec.httpRoute.action.weightedTargets[0].virtualNode",
                   "spec.httpRoute.retryPolicy.maxRetries",
                   "spec.httpRoute.retryPolicy.perRetryTimeout.unit"}));

  Result g = Decode(ResourceKind::kVirtualGateway, "{}");
  EXPECT_EQ(g.Errors(), Paths{"spec.listeners"});

  Result gr = Decode(ResourceKind::kGatewayRoute,
                     R"({"grpcRoute": {"match": {}, "action": {"target":
                         {"virtualService": {}}}}})");
  EXPECT_EQ(gr.Errors(), Paths{"spec.grpcRoute.action.target.virtualService."
                               "virtualServiceName"});
}

TEST(JsonCodecTest, WrongJsonTypesAreErrorsAndDecodingGoesOn) {
  Result r = Decode(ResourceKind::kVirtualNode, R"({
      "listeners": {"portMapping": {}},
      "backends": [{"virtualService": {"virtualServiceName": 7}}],
      "serviceDiscovery": {"dns": {"hostname": "h",
                                   "responseType": true}},
      "logging": "stdout"})");
  EXPECT_EQ(r.Errors(),
            (Paths{"spec.backends[0].virtualService.virtualServiceName",
                   "spec.listeners", "spec.logging",
                   "spec.serviceDiscovery.dns.responseType"}));

  Result n = Decode(ResourceKind::kRoute, R"({"priority": 1.5,
      "tcpRoute": {"action": {"weightedTargets":
          [{"virtualNode": "a", "weight": "10"}]}}})");
  EXPECT_EQ(n.Errors(),
            (Paths{"spec.priority",
                   "spec.tcpRoute.action.weightedTargets[0].weight"}));

  Result top = Decode(ResourceKind::kMesh, "[]");
  EXPECT_EQ(top.Errors(), Paths{"spec"});
}

TEST(JsonCodecTest, PathPrefixStartsEveryPath) {
  Result r = Decode(ResourceKind::kRoute,
                    R"({"httpRoute": {"match": {"prefix": "/"},
                        "action": {"weightedTargets":
                            [{"virtualNode": "a", "weight": 200}]}}})",
                    "spec.routes[2]");
  EXPECT_EQ(r.Errors(),
            Paths{"spec.routes[2].httpRoute.action.weightedTargets[0].weight"});
  EXPECT_EQ(r.diags.items()[0].resource, "R test");
  EXPECT_EQ(r.diags.items()[0].where.file, "test.json");
}

TEST(JsonCodecTest, NullMeansAbsent) {
  Result r = Decode(ResourceKind::kVirtualNode,
                    R"({"logging": null, "backends": null})");
  EXPECT_TRUE(r.diags.items().empty()) << r.Dump();
}

}  // namespace
}  // namespace nodemesh::model
