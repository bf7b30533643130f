#include "agent/tls/tls_context.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "agent/tls/certificate_authority.h"
#include "agent/tls/identity.h"
#include "agent/tls/tls_socket.h"
#include "tests/unit/tls/test_pki.h"
#include "tests/unit/tls/tls_pair.h"

namespace nodemesh::tls {
namespace {

using std::chrono::hours;
using testing::Pki;
using testing::TlsPair;
using Result = TlsSocket::Result;

constexpr char kClientId[] = "spiffe://example.org/ns/mesh/vn/client";
constexpr char kDefaultId[] = "spiffe://example.org/ns/mesh/vn/default";
constexpr char kXId[] = "spiffe://example.org/ns/mesh/vn/x";
constexpr char kYId[] = "spiffe://example.org/ns/mesh/vn/y";

std::unique_ptr<CertificateAuthority> LoadCa(const Pki& pki) {
  auto ca = CertificateAuthority::Load(pki.bundle_path, pki.signing_cert_path,
                                       pki.signing_key_path);
  EXPECT_TRUE(ca.ok()) << ca.status();
  return ca.ok() ? std::move(*ca) : nullptr;
}

Certificate MintOrDie(const CertificateAuthority& ca, const std::string& id) {
  auto cert = ca.Mint(id, hours(1));
  EXPECT_TRUE(cert.ok()) << cert.status();
  return cert.ok() ? std::move(*cert) : Certificate{};
}

SslCtxPtr Server(const Certificate* cert, X509_STORE* trust) {
  ContextOptions options;
  options.certificate = cert;
  options.trust = trust;
  auto ctx = MakeServerContext(options);
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return ctx.ok() ? *ctx : nullptr;
}

SslCtxPtr Client(const Certificate* cert, X509_STORE* trust) {
  ContextOptions options;
  options.certificate = cert;
  options.trust = trust;
  auto ctx = MakeClientContext(options);
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return ctx.ok() ? *ctx : nullptr;
}

TEST(TlsContextTest, ContextOptionsAreApplied) {
  Pki pki;
  auto ca = LoadCa(pki);
  ASSERT_NE(ca, nullptr);
  Certificate cert = MintOrDie(*ca, kXId);
  SslCtxPtr server = Server(&cert, ca->trust());
  SslCtxPtr client = Client(&cert, ca->trust());
  ASSERT_NE(server, nullptr);
  ASSERT_NE(client, nullptr);
  for (SSL_CTX* ctx : {server.get(), client.get()}) {
    EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
    EXPECT_EQ(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
    EXPECT_NE(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET, 0u);
    EXPECT_EQ(SSL_CTX_get_num_tickets(ctx), 0u);
    long mode = SSL_CTX_get_mode(ctx);
    EXPECT_NE(mode & SSL_MODE_ENABLE_PARTIAL_WRITE, 0);
    EXPECT_NE(mode & SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, 0);
    EXPECT_EQ(SSL_CTX_get_cert_store(ctx), ca->trust());
  }
  EXPECT_EQ(SSL_CTX_get_verify_mode(server.get()),
            SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
  EXPECT_EQ(SSL_CTX_get_verify_mode(client.get()), SSL_VERIFY_PEER);
  EXPECT_NE(SSL_CTX_get0_certificate(server.get()), nullptr);
}

TEST(TlsContextTest, ServerContextWithoutCertificate) {
  ContextOptions options;
  auto ctx = MakeServerContext(options);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx->get()), SSL_VERIFY_NONE);
}

TEST(TlsContextTest, CertificateWithoutKeyIsRefused) {
  Certificate empty;
  ContextOptions options;
  options.certificate = &empty;
  EXPECT_FALSE(MakeClientContext(options).ok());
}

// The tunnel's server: a default context with no certificate of its own
// and no trust, switching by SNI to the destination identity's context.
class TlsServerNameTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = LoadCa(pki_);
    other_ca_ = LoadCa(other_);
    ASSERT_NE(ca_, nullptr);
    ASSERT_NE(other_ca_, nullptr);
    client_cert_ = MintOrDie(*ca_, kClientId);
    x_cert_ = MintOrDie(*ca_, kXId);
    y_cert_ = MintOrDie(*ca_, kYId);
    default_cert_ = MintOrDie(*ca_, kDefaultId);
    // x trusts only the other mesh's roots: our client is refused there.
    contexts_["x"] = Server(&x_cert_, other_ca_->trust());
    contexts_["y"] = Server(&y_cert_, ca_->trust());
    select_ = [this](std::string_view sni) -> SSL_CTX* {
      auto it = contexts_.find(std::string(sni));
      return it == contexts_.end() ? nullptr : it->second.get();
    };
  }

  void UseDefault(const Certificate* cert) {
    default_ = Server(cert, nullptr);
    ASSERT_NE(default_, nullptr);
    SetServerNameSelector(default_.get(), &select_);
  }

  Pki pki_{"mesh"};
  Pki other_{"other"};
  std::unique_ptr<CertificateAuthority> ca_;
  std::unique_ptr<CertificateAuthority> other_ca_;
  Certificate client_cert_, x_cert_, y_cert_, default_cert_;
  std::map<std::string, SslCtxPtr> contexts_;
  std::function<SSL_CTX*(std::string_view)> select_;
  SslCtxPtr default_;
};

TEST_F(TlsServerNameTest, SniPicksTheCertificateAndItsVerification) {
  UseDefault(nullptr);
  SslCtxPtr client = Client(&client_cert_, ca_->trust());
  TlsPair pair(client.get(), default_.get(), "y");
  auto outcome = pair.Handshake();
  ASSERT_EQ(outcome.client, Result::kOk) << pair.client().error();
  ASSERT_EQ(outcome.server, Result::kOk) << pair.server().error();
  EXPECT_EQ(PeerOf(pair.client().ssl()).spiffe_id, kYId);
  EXPECT_EQ(pair.server().alpn(), "h2");
  // The default asks for no certificate; y's context requires one, and
  // the server verified it with y's trust.
  PeerIdentity client_seen = PeerOf(pair.server().ssl());
  EXPECT_TRUE(client_seen.presented);
  EXPECT_TRUE(client_seen.verified) << client_seen.error;
  EXPECT_EQ(client_seen.spiffe_id, kClientId);

  std::string server_got, client_got;
  ASSERT_TRUE(pair.Exchange("ping", "pong", &server_got, &client_got));
  EXPECT_EQ(server_got, "ping");
  EXPECT_EQ(client_got, "pong");
}

TEST_F(TlsServerNameTest, SelectedContextsTrustIsTheOneUsed) {
  UseDefault(nullptr);
  SslCtxPtr client = Client(&client_cert_, ca_->trust());
  TlsPair pair(client.get(), default_.get(), "x");
  auto outcome = pair.Handshake();
  EXPECT_EQ(outcome.server, Result::kError);
  EXPECT_TRUE(
      absl::StrContains(pair.server().error(), "certificate verify failed"))
      << pair.server().error();
  // The client saw x's certificate before being refused.
  EXPECT_EQ(PeerOf(pair.client().ssl()).spiffe_id, kXId);
}

TEST_F(TlsServerNameTest, SelectedContextsVerifyModeIsTheOneUsed) {
  UseDefault(nullptr);
  SslCtxPtr client = Client(nullptr, ca_->trust());
  TlsPair pair(client.get(), default_.get(), "y");
  auto outcome = pair.Handshake();
  EXPECT_EQ(outcome.server, Result::kError);
  EXPECT_TRUE(absl::StrContains(pair.server().error(),
                                "peer did not return a certificate"))
      << pair.server().error();
}

TEST_F(TlsServerNameTest, UnknownOrMissingNameKeepsTheDefault) {
  UseDefault(&default_cert_);
  for (const char* sni : {"nope", ""}) {
    SslCtxPtr client = Client(&client_cert_, ca_->trust());
    TlsPair pair(client.get(), default_.get(), sni);
    auto outcome = pair.Handshake();
    ASSERT_EQ(outcome.client, Result::kOk) << sni << pair.client().error();
    ASSERT_EQ(outcome.server, Result::kOk) << sni << pair.server().error();
    EXPECT_EQ(PeerOf(pair.client().ssl()).spiffe_id, kDefaultId) << sni;
    EXPECT_FALSE(PeerOf(pair.server().ssl()).presented) << sni;
  }
}

TEST_F(TlsServerNameTest, NoDefaultCertificateAndNoMatchFails) {
  UseDefault(nullptr);
  SslCtxPtr client = Client(&client_cert_, ca_->trust());
  TlsPair pair(client.get(), default_.get(), "nope");
  auto outcome = pair.Handshake();
  EXPECT_EQ(outcome.server, Result::kError);
  EXPECT_EQ(outcome.client, Result::kError);
}

}  // namespace
}  // namespace nodemesh::tls
