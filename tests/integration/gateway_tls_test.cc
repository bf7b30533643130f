// A VirtualGateway listener with App Mesh `tls`, driven with curl over
// real TLS: ALPN h2 picks the HTTP/2 session (h2 over TLS), http/1.1 the
// HTTP/1.1 one; STRICT refuses plaintext, PERMISSIVE serves both; a
// listener with `validation` demands a client certificate from its trust
// with one of its subjectAlternativeNames, and goes on serving after each
// refusal. The PKI is made with the openssl CLI, as an operator would.

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/proxy_fixture.h"

namespace nodemesh::testing {
namespace {

using nlohmann::json;

constexpr char kPartner[] = "spiffe://partner.example/ns/x/vn/client";

// A root, a server leaf for gw.test, client leaves (one with kPartner, one
// with another SAN) and a client leaf of an unrelated root.
class Pki {
 public:
  Pki() {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("nmtest-gwtls-", ::getpid(), "-", counter_++);
    std::filesystem::create_directories(dir_);
    Sh("openssl ecparam -name prime256v1 -genkey -noout -out root.key && "
       "openssl req -x509 -new -key root.key -subj /CN=root -days 30 "
       "-addext basicConstraints=critical,CA:TRUE -out root.pem && "
       "openssl ecparam -name prime256v1 -genkey -noout -out evil.key && "
       "openssl req -x509 -new -key evil.key -subj /CN=evil -days 30 "
       "-addext basicConstraints=critical,CA:TRUE -out evil.pem");
    Leaf("server", "root", "DNS:gw.test", "serverAuth");
    Leaf("client", "root", absl::StrCat("URI:", kPartner), "clientAuth");
    Leaf("stranger", "root", "URI:spiffe://partner.example/ns/x/vn/other",
         "clientAuth");
    Leaf("untrusted", "evil", absl::StrCat("URI:", kPartner), "clientAuth");
  }
  ~Pki() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string Path(const std::string& name) const {
    return (dir_ / name).string();
  }
  // curl options presenting client `name` (empty: none).
  std::string ClientArgs(const std::string& name) const {
    std::string out = absl::StrCat("--cacert ", Path("root.pem"));
    if (!name.empty())
      absl::StrAppend(&out, " --cert ", Path(name + ".pem"), " --key ",
                      Path(name + ".key"));
    return out;
  }

 private:
  void Sh(const std::string& cmd) {
    std::string full =
        absl::StrCat("cd ", dir_.string(), " && (", cmd, ") >/dev/null 2>&1");
    ASSERT_EQ(std::system(full.c_str()), 0) << cmd;
  }
  void Leaf(const std::string& name, const std::string& ca,
            const std::string& san, const std::string& eku) {
    Sh(absl::StrCat(
        "openssl ecparam -name prime256v1 -genkey -noout -out ", name,
        ".ec && openssl pkcs8 -topk8 -nocrypt -in ", name, ".ec -out ", name,
        ".key && openssl req -new -key ", name, ".key -subj /CN=", name,
        " -out ", name, ".csr && printf 'subjectAltName=", san,
        "\\nextendedKeyUsage=", eku, "\\n' > ", name,
        ".ext && openssl x509 -req -in ", name, ".csr -CA ", ca, ".pem -CAkey ",
        ca, ".key -CAcreateserial -days 30 -extfile ", name, ".ext -out ", name,
        ".pem"));
  }
  static inline int counter_ = 0;
  std::filesystem::path dir_;
};

class GatewayTlsTest : public ::testing::Test {
 protected:
  void StartWith(const json& tls) {
    up_ = node_.AddUpstreams({{"gtls-a"}});
    json gateway = appmesh::Gateway("gw", port_);
    gateway["spec"]["listeners"][0]["tls"] = tls;
    json model = {appmesh::Mesh(), appmesh::Node("a", up_->port("gtls-a")),
                  appmesh::ServiceByNode("a.m.local", "a"), gateway,
                  appmesh::GatewayRoute("gw", "all", "/", "a.m.local")};
    ASSERT_TRUE(node_.Start(model));
  }
  json Tls(const std::string& mode, bool validation) const {
    json tls = {{"mode", mode},
                {"certificate",
                 {{"file",
                   {{"certificateChain", pki_.Path("server.pem")},
                    {"privateKey", pki_.Path("server.key")}}}}}};
    if (validation)
      tls["validation"] = {
          {"trust", {{"file", {{"certificateChain", pki_.Path("root.pem")}}}}},
          {"subjectAlternativeNames", {{"match", {{"exact", {kPartner}}}}}}};
    return tls;
  }
  // "<http version> <status>" of a GET through the gateway over TLS with
  // curl `args`; curl's exit code in *exit_code.
  std::string Https(const std::string& args, int* exit_code = nullptr) {
    return node_.Curl(
        absl::StrCat("-o /dev/null -w '%{http_version} %{http_code}' ",
                     "--resolve gw.test:", port_, ":127.0.0.1 ", args,
                     " https://gw.test:", port_, "/"),
        exit_code);
  }
  std::string Plain(int* exit_code = nullptr) {
    return node_.Curl(absl::StrCat("-o /dev/null -w '%{http_code}' ",
                                   "http://127.0.0.1:", port_, "/"),
                      exit_code);
  }
  uint64_t Counter(const std::string& name) {
    return MetricSum(node_.Metrics(), name, {});
  }

  Pki pki_;
  ProxyNode node_;
  Upstreams* up_ = nullptr;
  uint16_t port_ = PickPort();
};

TEST_F(GatewayTlsTest, AlpnPicksHttp2OrHttp1AndStrictRefusesPlaintext) {
  StartWith(Tls("STRICT", false));
  EXPECT_EQ(Https(pki_.ClientArgs("") + " --http2"), "2 200");
  EXPECT_EQ(Https(pki_.ClientArgs("") + " --http1.1"), "1.1 200");
  int code = 0;
  std::string plain = Plain(&code);
  EXPECT_NE(code, 0) << "plaintext answered: " << plain;
  EXPECT_EQ(Counter("nodemesh_gateway_tls_handshakes_total"), 2u);
  EXPECT_EQ(Counter("nodemesh_gateway_tls_refused_total"), 1u);
  // Still serving.
  EXPECT_EQ(Https(pki_.ClientArgs("") + " --http2"), "2 200");
  EXPECT_EQ(up_ != nullptr
                ? node_.UpstreamStats(up_->port("gtls-a")).value("requests", 0)
                : 0,
            3);
}

TEST_F(GatewayTlsTest, PermissiveServesTlsAndPlaintext) {
  StartWith(Tls("PERMISSIVE", false));
  EXPECT_EQ(Https(pki_.ClientArgs("") + " --http2"), "2 200");
  EXPECT_EQ(Plain(), "200");
  EXPECT_EQ(Counter("nodemesh_gateway_tls_handshakes_total"), 1u);
  EXPECT_EQ(Counter("nodemesh_gateway_tls_plaintext_total"), 1u);
}

TEST_F(GatewayTlsTest, ValidationDemandsATrustedClientWithTheRightSan) {
  StartWith(Tls("STRICT", true));
  int code = 0;
  for (const char* bad : {"", "untrusted", "stranger"}) {
    std::string got = Https(pki_.ClientArgs(bad) + " --http2", &code);
    EXPECT_NE(got, "2 200") << "client '" << bad << "' was served";
  }
  EXPECT_EQ(Counter("nodemesh_gateway_tls_failures_total"), 3u);
  EXPECT_EQ(Https(pki_.ClientArgs("client") + " --http2"), "2 200");
  EXPECT_EQ(Https(pki_.ClientArgs("client") + " --http1.1"), "1.1 200");
}

}  // namespace
}  // namespace nodemesh::testing
