// Every kind of traffic the proxy sends an endpoint crosses nodes through
// the tunnel: gRPC (HTTP/2 to the endpoint), a tcpRoute's raw bytes, and
// HTTP/1.1 from an HTTP/2 client; each arrives intact on the other node.

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster_fixture.h"

namespace nodemesh::testing {
namespace {

using nlohmann::json;
using Server = ClusterScope::Server;

json NodeWith(const std::string& name, uint16_t port,
              const std::string& protocol,
              const std::vector<std::string>& backends = {}) {
  json spec = {{"listeners",
                {{{"portMapping", {{"port", port}, {"protocol", protocol}}}}}}};
  json b = json::array();
  for (const auto& s : backends)
    b.push_back({{"virtualService", {{"virtualServiceName", s}}}});
  if (!b.empty()) spec["backends"] = b;
  return {{"meshName", "m"}, {"virtualNodeName", name}, {"spec", spec}};
}

class ClusterProtocolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.AddWorkload(2, "m", "rpc", 9300, Server::kGrpc);
    cluster_.AddWorkload(2, "m", "raw", 9400, Server::kHttp);
    cluster_.AddWorkload(2, "m", "web", 9500, Server::kHttp);
    json model =
        json::array({{{"meshName", "m"}, {"spec", json::object()}},
                     NodeWith("front", 8080, "http",
                              {"rpc.m.local", "raw.m.local", "web.m.local"}),
                     NodeWith("rpc", 9300, "grpc"),
                     NodeWith("raw", 9400, "tcp"),
                     NodeWith("web", 9500, "http"),
                     appmesh::ServiceByNode("rpc.m.local", "rpc"),
                     appmesh::ServiceByNode("raw.m.local", "raw"),
                     appmesh::ServiceByNode("web.m.local", "web")});
    ASSERT_TRUE(cluster_.Start(model));
  }
  std::string Front(const std::string& command, int* code = nullptr) {
    return cluster_.RunAsWorkload(1, "m", "front", command, code);
  }
  uint64_t StreamsIn(int node) {
    return MetricSum(cluster_.Node(node).Metrics(),
                     "nodemesh_tunnel_streams_total", {"direction=\"in\""});
  }

  ClusterScope cluster_{2};
};

TEST_F(ClusterProtocolsTest, GrpcCallsCrossNodes) {
  const std::string call = absl::StrCat(
      "/usr/bin/python3 ", NODEMESH_GRPC_PEER,
      " call --target rpc.m.local:9300 --authority rpc.m.local:9300 ");
  EXPECT_EQ(Front(call + "--method Unary --data hi 2>&1"),
            "msg rpc@n2:hi\nstatus OK\n");
  EXPECT_EQ(Front(call + "--method ServerStream --data 3 2>&1"),
            "msg rpc@n2:0\nmsg rpc@n2:1\nmsg rpc@n2:2\nstatus OK\n");
  EXPECT_EQ(Front(call + "--method Bidi --data x --data y 2>&1"),
            "msg rpc@n2:x\nmsg rpc@n2:y\nstatus OK\n");
  EXPECT_GE(StreamsIn(2), 1u);
}

TEST_F(ClusterProtocolsTest, TcpRouteBytesCrossNodes) {
  // HTTP spoken over a tcp listener: the proxy passes the bytes unparsed.
  EXPECT_EQ(Front("curl -s --max-time 20 http://raw.m.local:9400/"),
            "raw@n2\n");
  EXPECT_GE(StreamsIn(2), 1u);
}

TEST_F(ClusterProtocolsTest, AnHttp2ClientReachesAnHttp1EndpointOnAnotherNode) {
  EXPECT_EQ(Front("curl -s --max-time 20 --http2-prior-knowledge "
                  "-o /dev/null -w '%{http_version} %{http_code}' "
                  "http://web.m.local:9500/"),
            "2 200");
  EXPECT_EQ(Front("curl -s --max-time 20 http://web.m.local:9500/"),
            "web@n2\n");
}

}  // namespace
}  // namespace nodemesh::testing
