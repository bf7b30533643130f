// Security across nodes: what the tunnel port of a node admits and refuses
// (bad certificates, no TLS, cut handshakes, CONNECTs an identity may not
// make), authorization through the mesh itself (App Mesh backends as the
// allow-list), listener validation and client policies as written, kernel
// STRICT enforcement of a workload's port against other nodes, and
// certificate renewal under open connections. Every refusal is counted
// on the node that refused it, and the agent goes on serving good calls.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster_fixture.h"

namespace nodemesh::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kBackPort = 9000;
constexpr uint16_t kOtherPort = 9100;
constexpr uint16_t kFrontPort = 8080;
constexpr uint16_t kTunnelPort = 15008;

// The tunnel client that plays a rogue peer (tests/integration).
const std::string kHboneClient =
    (std::filesystem::path(NODEMESH_UPSTREAM_SERVER).parent_path() /
     "hbone_client.py")
        .string();

std::string Id(const std::string& vn) {
  return "spiffe://cluster.local/ns/m/vn/" + vn;
}

// ---- the model ----

json Mesh(const std::string& egress) {
  return {{"meshName", "m"}, {"spec", {{"egressFilter", {{"type", egress}}}}}};
}

json Backend(const std::string& service,
             const json& client_policy_tls = nullptr) {
  json vs = {{"virtualServiceName", service}};
  if (!client_policy_tls.is_null())
    vs["clientPolicy"] = {{"tls", client_policy_tls}};
  return {{"virtualService", vs}};
}

// A virtual node whose endpoints come from the workload registry and
// cluster/workloads.json; `tls` goes on its listener (null: none).
json VirtualNode(const std::string& name, uint16_t port,
                 const json& backends = json::array(),
                 const json& tls = nullptr) {
  json listener = {{"portMapping", {{"port", port}, {"protocol", "http"}}}};
  if (!tls.is_null()) listener["tls"] = tls;
  json spec = {{"listeners", json::array({listener})}};
  if (!backends.empty()) spec["backends"] = backends;
  return {{"meshName", "m"}, {"virtualNodeName", name}, {"spec", spec}};
}

// A listener's tls with the minted certificate.
json ListenerTls(const std::string& mode, const json& validation = nullptr) {
  json tls = {{"mode", mode},
              {"certificate", {{"sds", {{"secretName", Id("back")}}}}}};
  if (!validation.is_null()) tls["validation"] = validation;
  return tls;
}

// Trust the mesh's roots (sds), and only these SANs.
json Validation(const std::vector<std::string>& sans) {
  return {{"trust", {{"sds", {{"secretName", "mesh-roots"}}}}},
          {"subjectAlternativeNames", {{"match", {{"exact", sans}}}}}};
}

// back (served on n2) behind back.m.local; front calls it; `rogue` lists
// no backend; `other` is a second identity on n2. `extra` is appended.
json BaseModel(const std::string& egress, const json& back_tls = nullptr,
               const json& front_backend = Backend("back.m.local"),
               const json& extra = json::array()) {
  json model = json::array(
      {Mesh(egress), VirtualNode("back", kBackPort, json::array(), back_tls),
       appmesh::ServiceByNode("back.m.local", "back"),
       VirtualNode("front", kFrontPort, json::array({front_backend})),
       VirtualNode("rogue", kFrontPort), VirtualNode("other", kOtherPort)});
  for (const json& r : extra) model.push_back(r);
  return model;
}

// ---- metrics and polling ----

uint64_t Refused(const ProxyNode& node, const std::string& reason) {
  return MetricSum(node.Metrics(), "nodemesh_tunnel_refused_total",
                   {"reason=\"" + reason + "\""});
}

uint64_t RefusedTotal(const ProxyNode& node) {
  return MetricSum(node.Metrics(), "nodemesh_tunnel_refused_total", {});
}

// Polls `done` until it holds or `limit` passes: for what the agent does
// after the client has gone (a refusal counted, a model reloaded). No
// assertion on how long it took.
bool Eventually(const std::function<bool()>& done,
                std::chrono::seconds limit = std::chrono::seconds(20)) {
  auto deadline = Clock::now() + limit;
  while (true) {
    if (done()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// The refusals of `reason` on `node` once they reach `want` (or whatever
// they are after a generous wait), for an exact comparison.
uint64_t RefusedOnce(const ProxyNode& node, const std::string& reason,
                     uint64_t want) {
  uint64_t n = 0;
  Eventually(
      [&] {
        n = Refused(node, reason);
        return n >= want;
      },
      std::chrono::seconds(15));
  // A moment for a second (wrong) count to show.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return Refused(node, reason);
}

// The cluster's certificate helpers make files only, but the fixture hands
// out a const ClusterCerts (it owns them for the cluster's lifetime).
ClusterCerts& Certs(const ClusterScope& cluster) {
  return const_cast<ClusterCerts&>(*cluster.certs());
}

// Rewrites every node's model (atomically: the agent never reads half a
// file); the agents poll their config dirs.
void ReloadModel(ClusterScope& cluster, const json& model) {
  for (int k = 1; k <= cluster.size(); ++k) {
    const std::string dir = cluster.Node(k).config_dir();
    std::ofstream(dir + "/model.json.tmp") << model.dump(2);
    std::filesystem::rename(dir + "/model.json.tmp", dir + "/model.json");
  }
}

// A scratch directory removed with the object.
struct ScratchDir {
  std::string path = "/tmp/" + UniqueName("security");
  ScratchDir() { std::filesystem::create_directories(path); }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

class ClusterSecurityTest : public ::testing::Test {
 protected:
  // A workload of `vn` on node 1 calls back.m.local:<port><path> through
  // the mesh; "<body>\n<status>".
  std::string Call(const std::string& vn, const std::string& path = "/",
                   const std::string& data = "") {
    return cluster_->RunAsWorkload(
        1, "m", vn,
        absl::StrCat(
            "curl -s --max-time 15 -w '\\n%{http_code}' ",
            data.empty() ? "" : "--data-binary " + ShellQuote(data) + " ",
            "http://back.m.local:", kBackPort, path));
  }
  std::string Status(const std::string& vn) {
    std::string out = Call(vn);
    return out.substr(out.rfind('\n') + 1);
  }

  // A good cross-node call: front's body comes back from n2 intact.
  void ExpectServing(const std::string& after) {
    const std::string body =
        absl::StrCat("intact-after-", after, "-", ::getpid(), "-", ++calls_);
    EXPECT_EQ(Call("front", "/echo", body), body + "\n200")
        << "a good call after " << after;
  }

  // hbone_client.py from node 1's namespace (not a workload) to n2's
  // tunnel port; its output (first line "status <code> <reason>" or
  // "tls-error ...").
  struct Peer {
    const ClusterCerts::Leaf* leaf = nullptr;  // null: no certificate
    std::string sni = Id("back");
    std::string authority = absl::StrCat("198.18.2.1:", kBackPort);
    std::string send;
  };
  std::string Hbone(const Peer& p) {
    std::string cmd =
        absl::StrCat("/usr/bin/python3 ", kHboneClient,
                     " --connect 198.18.2.1:", kTunnelPort, " --ca ",
                     cluster_->certs()->root(), " --sni ", ShellQuote(p.sni),
                     " --authority ", p.authority);
    if (p.leaf != nullptr)
      absl::StrAppend(&cmd, " --cert ", p.leaf->chain, " --key ", p.leaf->key);
    if (!p.send.empty()) absl::StrAppend(&cmd, " --send ", ShellQuote(p.send));
    return cluster_->Node(1).Run(cmd + " 2>&1");
  }

  std::string AgentLog(int k) {
    return ReadFile(cluster_->Node(k).agent().log_path());
  }

  std::unique_ptr<ClusterScope> cluster_;
  int calls_ = 0;
};

std::string FirstLine(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

// Bad inputs to a node's tunnel port, from another
// node's namespace but not as a mesh workload.
TEST_F(ClusterSecurityTest, TunnelPortRefusesBadPeersAndServesGoodOnes) {
  cluster_ = std::make_unique<ClusterScope>(2);
  cluster_->AddWorkload(2, "m", "back", kBackPort);
  cluster_->AddWorkload(2, "m", "other", kOtherPort);
  ASSERT_TRUE(cluster_->Start(BaseModel("DROP_ALL")));
  const ProxyNode& n2 = cluster_->Node(2);
  ExpectServing("start");

  ClusterCerts& certs = Certs(*cluster_);
  auto front = certs.ValidLeaf("n1", Id("front"), "front");
  auto rogue = certs.ValidLeaf("n1", Id("rogue"), "rogue");
  auto expired = certs.ExpiredLeaf("n1", Id("front"), "front-expired");
  auto untrusted = certs.UntrustedLeaf(Id("front"), "front-untrusted");

  // The allowed caller: a raw HTTP/1.1 request through its stream reaches
  // back's workload, and back's answer comes back.
  Peer good;
  good.leaf = &front;
  good.send = "GET /raw HTTP/1.1\r\nHost: back\r\nConnection: close\r\n\r\n";
  std::string out = Hbone(good);
  EXPECT_EQ(FirstLine(out), "status 200 -") << out;
  EXPECT_TRUE(absl::StartsWith(out.substr(out.find('\n') + 1), "HTTP/1.1 200 "))
      << out;
  EXPECT_TRUE(absl::EndsWith(out, "\r\n\r\nback@n2\n")) << out;
  EXPECT_EQ(RefusedTotal(n2), 0u) << n2.Metrics();

  // A valid certificate of a virtual node that lists no backend reaching
  // back: the stream is refused, and the log names both identities.
  Peer not_backend;
  not_backend.leaf = &rogue;
  out = Hbone(not_backend);
  EXPECT_EQ(FirstLine(out), "status 403 not_a_backend") << out;
  EXPECT_EQ(RefusedOnce(n2, "not_a_backend", 1), 1u);
  const std::string log = AgentLog(2);
  bool named = false;
  for (absl::string_view line : absl::StrSplit(log, '\n'))
    if (absl::StrContains(line, "not_a_backend") &&
        absl::StrContains(line, Id("rogue")) &&
        absl::StrContains(line, Id("back")))
      named = true;
  EXPECT_TRUE(named) << "no log line names both identities:\n" << log;
  ExpectServing("not_a_backend");

  // Certificates that do not pass the handshake.
  Peer p;
  p.leaf = &untrusted;
  out = Hbone(p);
  EXPECT_TRUE(absl::StartsWith(out, "tls-error")) << out;
  EXPECT_EQ(RefusedOnce(n2, "untrusted", 1), 1u);
  ExpectServing("untrusted");

  p.leaf = &expired;
  out = Hbone(p);
  EXPECT_TRUE(absl::StartsWith(out, "tls-error")) << out;
  EXPECT_EQ(RefusedOnce(n2, "expired", 1), 1u);
  ExpectServing("expired");

  p.leaf = nullptr;
  out = Hbone(p);
  EXPECT_TRUE(absl::StartsWith(out, "tls-error")) << out;
  EXPECT_EQ(RefusedOnce(n2, "no_certificate", 1), 1u);
  ExpectServing("no_certificate");

  // Not TLS at all: plain HTTP to the tunnel port gets no HTTP answer.
  int code = 0;
  out = cluster_->Node(1).Run(
      absl::StrCat("curl -s --max-time 5 -w '%{http_code}' http://198.18.2.1:",
                   kTunnelPort, "/"),
      &code);
  EXPECT_NE(code, 0) << out;
  EXPECT_EQ(out, "000");
  EXPECT_EQ(RefusedOnce(n2, "plaintext", 1), 1u);
  ExpectServing("plaintext");

  // The first bytes of a ClientHello (record header and handshake type),
  // then the connection closes.
  cluster_->Node(1).Run(
      absl::StrCat("bash -c ", ShellQuote(absl::StrCat(
                                   "exec 3<>/dev/tcp/198.18.2.1/", kTunnelPort,
                                   "; printf '\\x16\\x03\\x01\\x00\\x50\\x01"
                                   "\\x00' >&3; exec 3>&-"))),
      &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(RefusedOnce(n2, "handshake_cut", 1), 1u);
  ExpectServing("handshake_cut");

  // A good certificate, but the CONNECT names no endpoint of n2.
  Peer nowhere;
  nowhere.leaf = &front;
  nowhere.authority = "198.18.2.1:9999";
  out = Hbone(nowhere);
  EXPECT_EQ(FirstLine(out), "status 404 not_local") << out;
  EXPECT_EQ(RefusedOnce(n2, "not_local", 1), 1u);
  ExpectServing("not_local");

  // SNI names another identity of n2 than the endpoint's.
  Peer wrong_sni;
  wrong_sni.leaf = &front;
  wrong_sni.sni = Id("other");
  out = Hbone(wrong_sni);
  EXPECT_EQ(FirstLine(out), "status 403 wrong_identity") << out;
  EXPECT_EQ(RefusedOnce(n2, "wrong_identity", 1), 1u);
  ExpectServing("wrong_identity");

  // Each bad input counted once, under its own reason; nothing on n1.
  EXPECT_EQ(RefusedTotal(n2), 8u) << n2.Metrics();
  EXPECT_EQ(RefusedTotal(cluster_->Node(1)), 0u) << cluster_->Node(1).Metrics();

  // And the good peer again, on a new handshake.
  out = Hbone(good);
  EXPECT_EQ(FirstLine(out), "status 200 -") << out;
  EXPECT_TRUE(absl::EndsWith(out, "\r\n\r\nback@n2\n")) << out;
}

// A refusal is logged with both identities also when other refusals came
// before it: a port scan's noise (here one plaintext probe) must not hide
// an authorization refusal from the operator.
TEST_F(ClusterSecurityTest, ARefusalAfterOthersIsStillLogged) {
  cluster_ = std::make_unique<ClusterScope>(2);
  cluster_->AddWorkload(2, "m", "back", kBackPort);
  ASSERT_TRUE(cluster_->Start(BaseModel("DROP_ALL")));
  const ProxyNode& n2 = cluster_->Node(2);
  auto rogue = Certs(*cluster_).ValidLeaf("n1", Id("rogue"), "rogue");

  cluster_->Node(1).Run(absl::StrCat(
      "curl -s --max-time 5 http://198.18.2.1:", kTunnelPort, "/"));
  EXPECT_EQ(RefusedOnce(n2, "plaintext", 1), 1u);
  Peer p;
  p.leaf = &rogue;
  std::string out = Hbone(p);
  EXPECT_EQ(FirstLine(out), "status 403 not_a_backend") << out;
  EXPECT_EQ(RefusedOnce(n2, "not_a_backend", 1), 1u);

  const std::string log = AgentLog(2);
  bool named = false;
  for (absl::string_view line : absl::StrSplit(log, '\n'))
    if (absl::StrContains(line, "not_a_backend") &&
        absl::StrContains(line, Id("rogue")) &&
        absl::StrContains(line, Id("back")))
      named = true;
  EXPECT_TRUE(named) << "the not_a_backend refusal is not in n2's log:\n"
                     << log;
}

// Authorization through the mesh itself. ALLOW_ALL egress lets
// rogue's proxy route back.m.local, and n2 refuses the stream because
// rogue lists no backend that reaches back.
TEST_F(ClusterSecurityTest, ACallerThatListsNoBackendIsRefusedByTheTarget) {
  cluster_ = std::make_unique<ClusterScope>(2);
  cluster_->AddWorkload(2, "m", "back", kBackPort);
  ASSERT_TRUE(cluster_->Start(BaseModel("ALLOW_ALL")));
  const ProxyNode& n2 = cluster_->Node(2);

  EXPECT_EQ(Status("rogue"), "503");
  EXPECT_GE(RefusedOnce(n2, "not_a_backend", 1), 1u) << n2.Metrics();
  EXPECT_EQ(Refused(n2, "not_a_backend"), RefusedTotal(n2)) << n2.Metrics();
  bool named = false;
  const std::string log = AgentLog(2);
  for (absl::string_view line : absl::StrSplit(log, '\n'))
    if (absl::StrContains(line, "not_a_backend") &&
        absl::StrContains(line, Id("rogue")) &&
        absl::StrContains(line, Id("back")))
      named = true;
  EXPECT_TRUE(named) << "no log line names both identities:\n" << log;
  json stats = cluster_->UpstreamStats(cluster_->workloads()[0]);
  EXPECT_EQ(stats.value("requests", -1), 0) << stats.dump();

  ExpectServing("rogue's call");
  EXPECT_EQ(Call("front"), "back@n2\n\n200");
}

// The target listener's validation names the callers it admits.
TEST_F(ClusterSecurityTest, ListenerValidationAdmitsOnlyTheNamedCallers) {
  cluster_ = std::make_unique<ClusterScope>(2);
  cluster_->AddWorkload(2, "m", "back", kBackPort);
  ASSERT_TRUE(cluster_->Start(BaseModel(
      "DROP_ALL", ListenerTls("STRICT", Validation({Id("front")})),
      Backend("back.m.local"),
      json::array({VirtualNode("front2", kFrontPort,
                               json::array({Backend("back.m.local")}))}))));
  const ProxyNode& n2 = cluster_->Node(2);

  ExpectServing("start");
  // front2 lists back as a backend, but is not in the listener's SANs.
  EXPECT_EQ(Status("front2"), "503");
  EXPECT_GE(RefusedOnce(n2, "validation", 1), 1u) << n2.Metrics();
  EXPECT_EQ(Refused(n2, "not_a_backend"), 0u) << n2.Metrics();
  EXPECT_EQ(Refused(n2, "validation"), RefusedTotal(n2)) << n2.Metrics();
  ExpectServing("front2's call");
}

// Narrowing the listener's validation applies to the next calls, also
// those the caller's proxy would send on an upstream connection that a
// stream admitted before the change carries.
TEST_F(ClusterSecurityTest, ANarrowedListenerValidationAppliesToTheNextCalls) {
  auto model = [](const std::string& admitted) {
    return BaseModel(
        "DROP_ALL", ListenerTls("STRICT", Validation({Id(admitted)})),
        Backend("back.m.local"),
        json::array({VirtualNode("front2", kFrontPort,
                                 json::array({Backend("back.m.local")}))}));
  };
  cluster_ = std::make_unique<ClusterScope>(2);
  cluster_->AddWorkload(2, "m", "back", kBackPort);
  ASSERT_TRUE(cluster_->Start(model("front")));
  const ProxyNode& n2 = cluster_->Node(2);
  for (int i = 0; i < 6; ++i) ExpectServing("start");
  EXPECT_EQ(Status("front2"), "503");

  // Only front2 now: n2 has applied it once front2 gets through.
  ReloadModel(*cluster_, model("front2"));
  ASSERT_TRUE(Eventually([&] { return Status("front2") == "200"; }))
      << "n2 did not apply the new validation";
  const uint64_t before = Refused(n2, "validation");
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(Status("front"), "503")
        << "call " << i << ": front still reaches back, whose listener no "
        << "longer admits it";
  EXPECT_GE(Refused(n2, "validation"), before + 1) << n2.Metrics();
}

// The caller's client policy checks the destination's identity.
TEST_F(ClusterSecurityTest, ClientPolicyChecksTheDestinationsIdentity) {
  auto model = [](const std::string& san) {
    return BaseModel(
        "DROP_ALL", nullptr,
        Backend("back.m.local", {{"validation", Validation({san})}}));
  };
  cluster_ = std::make_unique<ClusterScope>(2);
  cluster_->AddWorkload(2, "m", "back", kBackPort);
  ASSERT_TRUE(
      cluster_->Start(model("spiffe://cluster.local/ns/m/vn/somebody-else")));
  const ProxyNode& n1 = cluster_->Node(1);

  EXPECT_EQ(Status("front"), "503");
  EXPECT_GE(RefusedOnce(n1, "server_identity", 1), 1u) << n1.Metrics();
  EXPECT_EQ(RefusedTotal(cluster_->Node(2)), 0u) << cluster_->Node(2).Metrics();

  // The right SAN: the target's own identity.
  ReloadModel(*cluster_, model(Id("back")));
  EXPECT_TRUE(Eventually([&] { return Status("front") == "200"; }))
      << "front's call never succeeded with the right SAN";
  ExpectServing("the right SAN");
}

// Tightening a client policy applies to the next calls, also on a worker
// that holds a tunnel connection the old policy admitted (pooled, idle
// for up to 60 s).
TEST_F(ClusterSecurityTest, ATightenedClientPolicyAppliesToPooledTunnels) {
  // front and front2 call back under the same client policy.
  auto model = [](const std::string& san) {
    json policy = {{"validation", Validation({san})}};
    return BaseModel("DROP_ALL", nullptr, Backend("back.m.local", policy),
                     json::array({VirtualNode(
                         "front2", kFrontPort,
                         json::array({Backend("back.m.local", policy)}))}));
  };
  cluster_ = std::make_unique<ClusterScope>(2);
  cluster_->AddWorkload(2, "m", "back", kBackPort);
  ASSERT_TRUE(cluster_->Start(model(Id("back"))));
  const ProxyNode& n1 = cluster_->Node(1);
  // front's calls leave tunnel connections n1 -> n2 pooled (on each
  // worker its connections landed on).
  for (int i = 0; i < 6; ++i) ExpectServing("start");

  ReloadModel(*cluster_, model("spiffe://cluster.local/ns/m/vn/somebody-else"));
  // n1 has the new policy once front2, which has no tunnel yet, is
  // refused by it.
  ASSERT_TRUE(Eventually([&] { return Status("front2") == "503"; }))
      << "n1 did not apply the tightened policy";
  EXPECT_GE(Refused(n1, "server_identity"), 1u) << n1.Metrics();
  // Every call of front now fails the same way.
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(Status("front"), "503")
        << "call " << i << ": front still reaches a destination that fails "
        << "its client policy";
  EXPECT_EQ(Refused(cluster_->Node(2), "not_a_backend"), 0u);
}

// Kernel STRICT enforcement of a workload's port against direct
// dials from another node; the mesh's own path is admitted.
TEST_F(ClusterSecurityTest, InboundStrictRefusesDirectDialsFromOtherNodes) {
  cluster_ = std::make_unique<ClusterScope>(2);
  cluster_->AddWorkload(2, "m", "back", kBackPort);
  ASSERT_TRUE(cluster_->Start(BaseModel("DROP_ALL", ListenerTls("STRICT"))));
  const ProxyNode& n2 = cluster_->Node(2);
  const std::string direct = absl::StrCat(
      "curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 "
      "--max-time 5 http://198.18.2.1:",
      kBackPort, "/");

  int code = 0;
  std::string out = cluster_->Node(1).Run(direct, &code);
  EXPECT_EQ(out, "000");
  EXPECT_EQ(code, 28) << "curl: not a connect timeout";
  ExpectServing("a direct dial");

  std::string metrics = n2.Metrics();
  EXPECT_EQ(MetricSum(metrics, "nodemesh_bpf_inbound_connections_total",
                      {"virtual_node=\"back\"", "mode=\"strict\"",
                       "path=\"direct\"", "verdict=\"refused\""}),
            1u)
      << metrics;
  EXPECT_GE(MetricSum(metrics, "nodemesh_bpf_inbound_connections_total",
                      {"virtual_node=\"back\"", "mode=\"strict\"",
                       "path=\"agent\"", "verdict=\"admitted\""}),
            1u)
      << metrics;

  // PERMISSIVE admits the direct dial (and counts it apart).
  ReloadModel(*cluster_, BaseModel("DROP_ALL", ListenerTls("PERMISSIVE")));
  EXPECT_TRUE(Eventually([&] {
    return cluster_->Node(1).Run(direct) == "200";
  })) << "a direct dial is still refused under PERMISSIVE";
  metrics = n2.Metrics();
  EXPECT_GE(MetricSum(metrics, "nodemesh_bpf_inbound_connections_total",
                      {"virtual_node=\"back\"", "mode=\"permissive\"",
                       "path=\"direct\"", "verdict=\"admitted\""}),
            1u)
      << metrics;
  ExpectServing("PERMISSIVE");
}

// The current certificate of `identity` on a node: {serial, not_after}.
json CertOf(const ProxyNode& node, const std::string& identity) {
  json certs = node.AdminJson("/certs");
  if (certs.is_object() && certs.contains("certificates"))
    for (const json& c : certs["certificates"])
      if (c.value("identity", "") == identity) return c;
  return json::object();
}

uint64_t Rotations(const ProxyNode& node) {
  json certs = node.AdminJson("/certs");
  return certs.is_object() ? certs.value("rotations", uint64_t{0}) : 0;
}

// Leaves live 8 s and are renewed at 4 s; a keep-alive connection
// through the mesh that spans renewals loses nothing, and new connections
// after them succeed.
TEST_F(ClusterSecurityTest, CertificatesRenewUnderOpenConnections) {
  ClusterScope::Options options;
  options.cert_lifetime = "8s";
  cluster_ = std::make_unique<ClusterScope>(2, options);
  cluster_->AddWorkload(2, "m", "back", kBackPort);
  cluster_->AddWorkload(1, "m", "front", kFrontPort);
  ASSERT_TRUE(cluster_->Start(BaseModel(
      "DROP_ALL", nullptr, Backend("back.m.local"),
      json::array({VirtualNode("front2", kFrontPort,
                               json::array({Backend("back.m.local")}))}))));
  const ProxyNode& n1 = cluster_->Node(1);
  const ProxyNode& n2 = cluster_->Node(2);

  const json back_before = CertOf(n2, Id("back"));
  const json front_before = CertOf(n1, Id("front"));
  ASSERT_FALSE(back_before.value("serial", "").empty()) << back_before.dump();
  ASSERT_FALSE(front_before.value("serial", "").empty()) << front_before.dump();

  // Six requests on one HTTP/1.1 connection, 2 s apart: each prints its
  // index, status, body and the connection's local port.
  ScratchDir dir;
  std::ofstream(dir.path + "/keepalive.py")
      << "import http.client, time\n"
         "c = http.client.HTTPConnection('back.m.local', "
      << kBackPort
      << ", timeout=15)\n"
         "for i in range(6):\n"
         "    c.request('GET', '/keepalive/%d' % i)\n"
         "    r = c.getresponse()\n"
         "    body = r.read().decode().strip()\n"
         "    port = c.sock.getsockname()[1] if c.sock else 'closed'\n"
         "    print(i, r.status, body, port, flush=True)\n"
         "    if i < 5: time.sleep(2)\n";
  std::string out = cluster_->RunAsWorkload(
      1, "m", "front", "/usr/bin/python3 " + dir.path + "/keepalive.py 2>&1");
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 6u) << out;
  std::string port;
  for (int i = 0; i < 6; ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ' ');
    ASSERT_EQ(f.size(), 4u) << lines[i];
    EXPECT_EQ(f[0], std::to_string(i));
    EXPECT_EQ(f[1], "200") << lines[i];
    EXPECT_EQ(f[2], "back@n2") << lines[i];
    if (i == 0) port = f[3];
    EXPECT_EQ(f[3], port) << "request " << i << " came on another connection";
  }
  json stats = cluster_->UpstreamStats(cluster_->workloads()[0]);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(stats["by_path"].value(absl::StrCat("/keepalive/", i), 0), 1)
        << stats.dump();

  // Renewed on both nodes while the connection was open: new serials.
  const json back_after = CertOf(n2, Id("back"));
  const json front_after = CertOf(n1, Id("front"));
  EXPECT_NE(back_after.value("serial", ""), back_before.value("serial", ""));
  EXPECT_NE(front_after.value("serial", ""), front_before.value("serial", ""));
  EXPECT_GT(back_after.value("not_after", 0.0),
            back_before.value("not_after", 0.0));
  for (const ProxyNode* n : {&n1, &n2}) {
    EXPECT_GE(Rotations(*n), 1u);
    EXPECT_GE(
        MetricSum(n->Metrics(), "nodemesh_tls_certificate_rotations_total", {}),
        1u);
  }

  // New connections after renewal: a curl of front, a caller whose first
  // tunnel handshake comes now (front2), and a fresh handshake with n2
  // that verifies the certificate n2 presents now.
  EXPECT_EQ(Call("front"), "back@n2\n\n200");
  EXPECT_EQ(Call("front2"), "back@n2\n\n200");
  auto leaf = Certs(*cluster_).ValidLeaf("n1", Id("front"), "front");
  Peer p;
  p.leaf = &leaf;
  p.send = "GET /fresh HTTP/1.1\r\nHost: back\r\nConnection: close\r\n\r\n";
  out = Hbone(p);
  EXPECT_EQ(FirstLine(out), "status 200 -") << out;
  EXPECT_TRUE(absl::EndsWith(out, "\r\n\r\nback@n2\n")) << out;
  EXPECT_EQ(RefusedTotal(n1), 0u) << n1.Metrics();
  EXPECT_EQ(RefusedTotal(n2), 0u) << n2.Metrics();
}

}  // namespace
}  // namespace nodemesh::testing
