// HTTP/2 and gRPC through the proxy with real clients and servers: curl and
// h2load as HTTP/2 clients, Debian's python3-grpcio as gRPC client and
// server, upstream_server.py as an HTTP/1.1 endpoint.

#include <unistd.h>

#include <iostream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/proxy_fixture.h"

namespace nodemesh::testing {
namespace {

using appmesh::GatewayRoute;
using appmesh::Node;
using appmesh::Route;
using appmesh::Router;
using appmesh::Targets;
using nlohmann::json;

class ProxyH2Test : public ::testing::Test {
 protected:
  std::string Gw(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", gw_port_, path);
  }
  ProxyNode node_;
  uint16_t gw_port_ = PickPort();
};

// An HTTP/2 client (prior knowledge) reaches an HTTP/1.1 endpoint: the
// request and response cross versions intact, many streams on one
// connection.
TEST_F(ProxyH2Test, PriorKnowledgeClientToHttp1Endpoint) {
  Upstreams* up = node_.AddUpstreams({{"a"}});
  json model = {
      appmesh::Mesh(),
      Node("a", up->port("a")),
      Router("r", 8080),
      Route(
          "r", "all",
          {{"httpRoute",
            {{"match", {{"prefix", "/"}}}, {"action", Targets({{"a", 1}})}}}}),
      appmesh::ServiceByRouter("svc.m.local", "r"),
      appmesh::Gateway("gw", gw_port_),
      GatewayRoute("gw", "all", "/", "svc.m.local")};
  ASSERT_TRUE(node_.Start(model));
  std::string out =
      node_.Curl("--http2-prior-knowledge -s -i '" + Gw("/hello") + "'");
  EXPECT_TRUE(absl::StartsWith(out, "HTTP/2 200")) << out;
  // 200 requests on one connection, 10 at a time, with a body each way
  // (h2load: Debian's curl 7.88 cannot reuse a prior-knowledge connection).
  std::string out2 = node_.Run("h2load -n 200 -c 1 -m 10 -d /etc/services '" +
                               Gw("/p") + "' 2>&1");
  EXPECT_TRUE(absl::StrContains(out2, "200 succeeded, 0 failed")) << out2;
  EXPECT_TRUE(absl::StrContains(out2, "200 2xx")) << out2;
  std::string metrics = node_.Metrics();
  EXPECT_TRUE(absl::StrContains(
      metrics, "nodemesh_downstream_http2_connections_total 2\n"))
      << metrics;
}

// gRPC from a real client to a real server, through the outbound listener
// by :authority: unary, server, client and bidirectional streaming, and a
// grpc-status from the server's trailers.
TEST_F(ProxyH2Test, GrpcCallsOfEveryKindPassThrough) {
  Upstreams* up = node_.AddGrpcUpstreams({{"cart"}});
  uint16_t port = up->port("cart");
  json model = {appmesh::Mesh(), Node("cart", port, "127.0.0.1", "grpc"),
                appmesh::ServiceByNode("cart.m.local", "cart")};
  ASSERT_TRUE(node_.Start(model));
  std::string call = absl::StrCat("--target 127.0.0.1:", node_.outbound_port(),
                                  " --authority cart.m.local:", port, " ");
  EXPECT_EQ(node_.GrpcCall(call + "--method Unary --data hi"),
            "msg cart:hi\nstatus OK\n");
  EXPECT_EQ(node_.GrpcCall(call + "--method ServerStream --data 3"),
            "msg cart:0\nmsg cart:1\nmsg cart:2\nstatus OK\n");
  EXPECT_EQ(node_.GrpcCall(call + "--method ClientStream --data a --data b "
                                  "--data c"),
            "msg cart:a,b,c\nstatus OK\n");
  EXPECT_EQ(node_.GrpcCall(call + "--method Bidi --data x --data y"),
            "msg cart:x\nmsg cart:y\nstatus OK\n");
  // The server's status arrives in its trailers (here a trailers-only
  // response) and reaches the client unchanged.
  EXPECT_EQ(node_.GrpcCall(call + "--metadata x-grpc-status=13"),
            "status INTERNAL asked to fail with 13\n");
  std::string metrics = node_.Metrics();
  EXPECT_TRUE(
      absl::StrContains(metrics, "nodemesh_upstream_http2_connections_total "))
      << metrics;
  EXPECT_FALSE(absl::StrContains(
      metrics, "nodemesh_upstream_http2_connections_total 0\n"));
}

}  // namespace
}  // namespace nodemesh::testing
