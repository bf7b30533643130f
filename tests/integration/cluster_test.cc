// Clusters on one machine: several nodes (network namespaces on a bridge,
// one agent each) that learn each other from cluster/nodes.json and
// workloads.json. Bring-up and teardown leave the root namespace and the
// machine as they were; a workload calls a virtual service whose endpoint
// runs on another node through the mutual-TLS tunnel, byte for byte, and a
// capture on the bridge sees only TLS records, never the payload; traffic
// between workloads of one node never reaches the bridge.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster_fixture.h"

namespace nodemesh::testing {
namespace {

using nlohmann::json;
using Server = ClusterScope::Server;

json Mesh() {
  return {{"meshName", "m"},
          {"spec", {{"egressFilter", {{"type", "DROP_ALL"}}}}}};
}

using appmesh::RegistryNode;

// `front` (the caller) reaches back.m.local (virtual node `back`) and
// near.m.local (virtual node `near`); where their workloads run is up to
// each test.
json FrontBackModel() {
  return json::array(
      {Mesh(), RegistryNode("front", 8080, {"back.m.local", "near.m.local"}),
       RegistryNode("back", 9000),
       appmesh::ServiceByNode("back.m.local", "back"),
       RegistryNode("near", 9100),
       appmesh::ServiceByNode("near.m.local", "near")});
}

// The root namespace's links and routes, to compare before and after.
std::string RootNetwork() {
  return RunCommand(
      "ip -o link show | awk '{print $2}'; ip -4 route show table all; "
      "ip -6 route show table main");
}

// A TCP connect from inside node `from` to address:port (bash's
// /dev/tcp); true when it was accepted.
bool TcpConnects(const ClusterScope& cluster, int from,
                 const std::string& address, uint16_t port) {
  int code = -1;
  cluster.Node(from).Run(absl::StrCat("timeout 5 bash -c 'exec 3<>/dev/tcp/",
                                      address, "/", port, "'"),
                         &code);
  return code == 0;
}

// A marker no capture could contain by chance.
std::string Marker() {
  std::mt19937_64 rng(std::random_device{}());
  return absl::StrCat("nodemesh-plaintext-marker-", ::getpid(), "-", rng());
}

TEST(ClusterTest, ThreeNodesComeUpReachEachOtherAndLeaveNothingBehind) {
  const std::string root_before = RootNetwork();
  std::vector<std::string> left_behind;
  {
    ClusterScope cluster(3);
    for (int k = 1; k <= 3; ++k) cluster.AddWorkload(k, "m", "back", 9000);
    ASSERT_TRUE(cluster.Start(FrontBackModel()));
    for (int k = 1; k <= 3; ++k) {
      ProxyNode& node = cluster.Node(k);
      left_behind.push_back(node.pin_dir());
      left_behind.push_back(
          std::filesystem::path(node.workloads_cgroup()).parent_path());
      left_behind.push_back(node.config_dir());
      left_behind.push_back(node.state_dir());

      // Every agent knows the whole cluster: its own workload registered
      // (api) and declared (file), the other nodes' declared.
      json workloads = node.AdminJson("/workloads");
      EXPECT_EQ(workloads.value("node", ""), ClusterScope::NodeName(k));
      std::set<std::string> nodes_seen;
      for (const json& w : workloads["workloads"])
        nodes_seen.insert(w.value("node", ""));
      for (int j = 1; j <= 3; ++j) {
        if (j == k) continue;
        EXPECT_TRUE(nodes_seen.count(ClusterScope::NodeName(j)))
            << ClusterScope::NodeName(k) << ": " << workloads.dump();
      }

      // Each node's agent minted the identity of its local workload.
      json certs = node.AdminJson("/certs");
      std::string ids;
      for (const json& c : certs["certificates"])
        absl::StrAppend(&ids, c.value("identity", ""), " ");
      EXPECT_TRUE(absl::StrContains(ids, "spiffe://cluster.local/ns/m/vn/back"))
          << ClusterScope::NodeName(k) << ": " << certs.dump();

      // Across the bridge: every node reaches every other node's workload
      // and tunnel port, and its own workload says which node it is.
      for (int j = 1; j <= 3; ++j) {
        std::string address = ClusterScope::NodeAddress(j);
        EXPECT_EQ(node.Curl(absl::StrCat("http://", address, ":9000/")),
                  absl::StrCat("back@n", j, "\n"))
            << "from n" << k << " to n" << j;
        if (j != k) {
          EXPECT_TRUE(TcpConnects(cluster, k, address, 15008))
              << "from n" << k << " to n" << j << "'s tunnel port";
        }
      }
      // No way out: nothing but the cluster's /15 is routed.
      std::string routes = node.Run("ip -4 route show");
      EXPECT_TRUE(absl::StartsWith(routes, "198.18.0.0/15 dev eth0 ") &&
                  absl::StrContains(routes, ClusterScope::NodeAddress(k)) &&
                  routes.find('\n') == routes.size() - 1)
          << routes;
    }
    EXPECT_EQ(RootNetwork(), root_before)
        << "the cluster changed the root namespace's links or routes";
  }
  for (const std::string& path : left_behind)
    EXPECT_FALSE(std::filesystem::exists(path)) << path << " remains";
  EXPECT_EQ(RootNetwork(), root_before);
  std::string root_programs =
      RunCommand("bpftool cgroup show " + Cgroup2Mount() + " 2>/dev/null");
  EXPECT_FALSE(absl::StrContains(root_programs, " nm_")) << root_programs;
}

// The same bring-up with agents that have no identities (no --ca_bundle,
// --signing_cert, --signing_key): the harness works for tests of agents
// that predate the tunnel, and the agents still come up.
TEST(ClusterTest, NodesWithoutIdentitiesComeUp) {
  ClusterScope::Options options;
  options.tls = false;
  ClusterScope cluster(2, options);
  cluster.AddWorkload(1, "m", "back", 9000);
  cluster.AddWorkload(2, "m", "back", 9000);
  ASSERT_TRUE(cluster.Start(FrontBackModel()));
  EXPECT_EQ(cluster.Node(1).Curl("http://198.18.2.1:9000/"), "back@n2\n");
  EXPECT_EQ(cluster.Node(2).Curl("http://198.18.1.1:9000/"), "back@n1\n");
  EXPECT_EQ(cluster.certs(), nullptr);
}

// The test CA that the cluster's agents and later bad-peer tests use, as
// openssl itself judges it: node intermediates chain to the root, and of
// the leaves the helpers make only the valid one verifies.
TEST(ClusterCertsTest, IntermediatesChainToTheRootAndBadLeavesAreBad) {
  ClusterCerts certs({"n1", "n2"});
  ASSERT_TRUE(certs.ok());
  auto verify = [&](const std::string& pem, const std::string& untrusted) {
    int code = -1;
    std::string out = RunCommand(
        absl::StrCat("openssl verify -CAfile ", certs.root(),
                     untrusted.empty() ? "" : " -untrusted " + untrusted, " ",
                     pem, " 2>&1"),
        &code);
    return std::make_pair(code, out);
  };
  for (const char* node : {"n1", "n2"}) {
    EXPECT_EQ(verify(certs.intermediate(node), "").first, 0) << node;
    std::string text =
        RunCommand("openssl x509 -noout -text -in " + certs.intermediate(node));
    EXPECT_TRUE(absl::StrContains(text, "CA:TRUE, pathlen:0")) << text;
    EXPECT_TRUE(absl::StrContains(text, "Certificate Sign, CRL Sign")) << text;
    EXPECT_TRUE(absl::StartsWith(ReadFile(certs.intermediate_key(node)),
                                 "-----BEGIN PRIVATE KEY-----"));
  }
  const std::string id = "spiffe://cluster.local/ns/m/vn/back";
  auto valid = certs.ValidLeaf("n2", id, "back");
  auto v = verify(valid.pem, certs.intermediate("n2"));
  EXPECT_EQ(v.first, 0) << v.second;
  EXPECT_TRUE(absl::StrContains(
      RunCommand("openssl x509 -noout -ext subjectAltName -in " + valid.pem),
      "URI:" + id));
  EXPECT_EQ(ReadFile(valid.chain),
            ReadFile(valid.pem) + ReadFile(certs.intermediate("n2")));

  auto expired = certs.ExpiredLeaf("n2", id, "back-expired");
  v = verify(expired.pem, certs.intermediate("n2"));
  EXPECT_NE(v.first, 0);
  EXPECT_TRUE(absl::StrContains(v.second, "certificate has expired"))
      << v.second;

  auto untrusted = certs.UntrustedLeaf(id, "back-untrusted");
  v = verify(untrusted.pem, "");
  EXPECT_NE(v.first, 0);
  EXPECT_TRUE(absl::StrContains(v.second, "unable to get local issuer"))
      << v.second;
  int code = -1;
  RunCommand(absl::StrCat("openssl verify -CAfile ", untrusted.root, " ",
                          untrusted.pem, " 2>&1"),
             &code);
  EXPECT_EQ(code, 0) << "the untrusted leaf is not even valid under its root";
}

class ClusterTrafficTest : public ::testing::Test {
 protected:
  // back runs on n2 only, near on n1 only; front calls from n1.
  void StartFrontBack() {
    cluster_.AddWorkload(2, "m", "back", 9000);
    cluster_.AddWorkload(1, "m", "near", 9100);
    ASSERT_TRUE(cluster_.Start(FrontBackModel()));
    back_ = cluster_.workloads()[0];
    near_ = cluster_.workloads()[1];
  }

  ClusterScope cluster_{3};
  ClusterScope::Workload back_, near_;
};

TEST_F(ClusterTrafficTest, CallsReachAnEndpointOnAnotherNodeIntact) {
  StartFrontBack();
  // The name resolves on n1, and the answer comes from n2's workload.
  EXPECT_EQ(cluster_.RunAsWorkload(1, "m", "front",
                                   "curl -s --max-time 20 "
                                   "http://back.m.local:9000/"),
            "back@n2\n");

  // 1 MiB of random bytes there and back (/echo), compared byte for byte.
  const std::string dir = "/tmp/" + UniqueName("cluster-body");
  std::filesystem::create_directories(dir);
  struct RemoveDir {
    std::string path;
    ~RemoveDir() { std::filesystem::remove_all(path); }
  } remove_dir{dir};
  RunCommand(absl::StrCat("head -c 1048576 /dev/urandom > ", dir, "/sent"));
  int code = -1;
  cluster_.RunAsWorkload(
      1, "m", "front",
      absl::StrCat("curl -s --max-time 30 -o ", dir,
                   "/received --data-binary @", dir,
                   "/sent -H 'content-type: application/octet-stream' "
                   "http://back.m.local:9000/echo"),
      &code);
  EXPECT_EQ(code, 0);
  const std::string sent = ReadFile(dir + "/sent");
  ASSERT_EQ(sent.size(), 1048576u);
  EXPECT_TRUE(ReadFile(dir + "/received") == sent)
      << "the echoed body differs (" << ReadFile(dir + "/received").size()
      << " bytes back)";

  // Ten more on one connection: each reaches n2's upstream, which counted
  // them all, and n1's agent counted them to target `back`.
  std::string out = cluster_.RunAsWorkload(
      1, "m", "front",
      "curl -s --max-time 20 'http://back.m.local:9000/count/[1-10]'");
  EXPECT_EQ(out, [] {
    std::string s;
    for (int i = 0; i < 10; ++i) s += "back@n2\n";
    return s;
  }());
  json stats = cluster_.UpstreamStats(back_);
  EXPECT_EQ(stats.value("requests", 0), 12) << stats.dump();
  EXPECT_EQ(stats["by_path"].value("/echo", 0), 1) << stats.dump();
  EXPECT_EQ(cluster_.UpstreamStats(near_).value("requests", -1), 0);

  const std::string n1 = cluster_.Node(1).Metrics();
  EXPECT_EQ(MetricSum(n1, "nodemesh_requests_total",
                      {"source_virtual_node=\"front\"",
                       "virtual_service=\"back.m.local\"",
                       "target_virtual_node=\"back\"", "code=\"200\""}),
            12u);
  // Through the tunnel: n1 opened streams, n2 delivered them.
  EXPECT_GE(
      MetricSum(n1, "nodemesh_tunnel_streams_total", {"direction=\"out\""}),
      1u);
  EXPECT_GE(MetricSum(cluster_.Node(2).Metrics(),
                      "nodemesh_tunnel_streams_total", {"direction=\"in\""}),
            1u);
}

TEST_F(ClusterTrafficTest, CallsBetweenWorkloadsOfOneNodeNeverLeaveIt) {
  StartFrontBack();
  auto capture = cluster_.Capture("ip");
  ASSERT_TRUE(capture->listening());
  // front and near both on n1.
  std::string out = cluster_.RunAsWorkload(
      1, "m", "front",
      "curl -s --max-time 20 'http://near.m.local:9100/same-node/[1-5]'");
  EXPECT_EQ(out, "near@n1\nnear@n1\nnear@n1\nnear@n1\nnear@n1\n");
  // The capture works: traffic between n2 and n3 shows in it.
  EXPECT_TRUE(TcpConnects(cluster_, 2, ClusterScope::NodeAddress(3), 15008));
  capture->Stop();
  ASSERT_EQ(capture->dropped(), 0) << "the capture missed packets";

  EXPECT_EQ(cluster_.UpstreamStats(near_)["by_path"].value("/same-node/1", 0),
            1);
  EXPECT_EQ(capture->Count("ip.addr == 198.18.1.1"), 0)
      << capture->Summary("ip.addr == 198.18.1.1");
  EXPECT_GT(capture->Count("ip.addr == 198.18.3.1"), 0)
      << "the capture saw nothing at all:\n"
      << capture->Summary();
}

TEST_F(ClusterTrafficTest, TheBridgeSeesOnlyTlsNeverThePayload) {
  StartFrontBack();
  const std::string marker = Marker();
  auto capture = cluster_.Capture("tcp");
  ASSERT_TRUE(capture->listening());
  // The marker in a request field, the request body and (echoed) the
  // response body.
  std::string body;
  for (int i = 0; i < 8; ++i) absl::StrAppend(&body, marker, "\n");
  int code = -1;
  std::string out = cluster_.RunAsWorkload(
      1, "m", "front",
      absl::StrCat("curl -s --max-time 20 -H 'x-marker: ", marker,
                   "' --data-binary '", body,
                   "' http://back.m.local:9000/echo"),
      &code);
  capture->Stop();
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, body);
  ASSERT_EQ(capture->dropped(), 0) << "the capture missed packets";

  const std::string pcap = capture->Bytes();
  EXPECT_GT(pcap.size(), 24u);  // more than the pcap header
  EXPECT_EQ(pcap.find(marker), std::string::npos)
      << "the payload crossed the bridge in plaintext";
  // A TLS 1.3 handshake to n2's tunnel port, then application data, and
  // no connection to the workload's own port across the bridge.
  EXPECT_GE(capture->Count("tls.handshake.type == 1 && tcp.dstport == 15008 "
                           "&& ip.dst == 198.18.2.1"),
            1)
      << capture->Summary();
  EXPECT_GE(capture->Count("tls.handshake.type == 2 && "
                           "tls.handshake.extensions.supported_version == "
                           "0x0304"),
            1)
      << capture->Summary();
  EXPECT_GE(capture->Count("tls.app_data && tcp.port == 15008"), 2)
      << capture->Summary();
  EXPECT_EQ(capture->Count("tcp.port == 9000"), 0) << capture->Summary();
  EXPECT_EQ(capture->Count("tcp && !(tcp.port == 15008)"), 0)
      << capture->Summary("tcp && !(tcp.port == 15008)");
}

}  // namespace
}  // namespace nodemesh::testing
