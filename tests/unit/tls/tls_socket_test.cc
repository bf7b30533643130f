#include "agent/tls/tls_socket.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/match.h"
#include "agent/tls/certificate_authority.h"
#include "agent/tls/identity.h"
#include "agent/tls/tls_context.h"
#include "tests/unit/tls/test_pki.h"
#include "tests/unit/tls/tls_pair.h"

namespace nodemesh::tls {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using testing::Pki;
using testing::TlsPair;
using Result = TlsSocket::Result;

constexpr char kClientId[] = "spiffe://example.org/ns/mesh/vn/client";
constexpr char kServerId[] = "spiffe://example.org/ns/mesh/vn/server";

std::unique_ptr<CertificateAuthority> LoadCa(const Pki& pki) {
  auto ca = CertificateAuthority::Load(pki.bundle_path, pki.signing_cert_path,
                                       pki.signing_key_path);
  EXPECT_TRUE(ca.ok()) << ca.status();
  return ca.ok() ? std::move(*ca) : nullptr;
}

SslCtxPtr Context(bool server, const Certificate* cert, X509_STORE* trust,
                  const std::string& alpn = "h2") {
  ContextOptions options;
  options.certificate = cert;
  options.trust = trust;
  options.alpn = alpn;
  auto ctx = server ? MakeServerContext(options) : MakeClientContext(options);
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return ctx.ok() ? *ctx : nullptr;
}

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

class TlsSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = LoadCa(pki_);
    ASSERT_NE(ca_, nullptr);
    auto client = ca_->Mint(kClientId, hours(1));
    auto server = ca_->Mint(kServerId, hours(1));
    ASSERT_TRUE(client.ok() && server.ok());
    client_cert_ = std::move(*client);
    server_cert_ = std::move(*server);
  }

  SslCtxPtr ClientCtx() { return Context(false, &client_cert_, ca_->trust()); }
  SslCtxPtr ServerCtx() { return Context(true, &server_cert_, ca_->trust()); }

  Pki pki_;
  std::unique_ptr<CertificateAuthority> ca_;
  Certificate client_cert_;
  Certificate server_cert_;
};

TEST_F(TlsSocketTest, MutualHandshakeAlpnIdentitiesAndData) {
  SslCtxPtr client_ctx = ClientCtx();
  SslCtxPtr server_ctx = ServerCtx();
  TlsPair pair(client_ctx.get(), server_ctx.get());
  auto outcome = pair.Handshake();
  ASSERT_EQ(outcome.client, Result::kOk) << pair.client().error();
  ASSERT_EQ(outcome.server, Result::kOk) << pair.server().error();
  EXPECT_TRUE(pair.client().handshake_done());
  EXPECT_TRUE(pair.server().handshake_done());
  EXPECT_EQ(pair.client().alpn(), "h2");
  EXPECT_EQ(pair.server().alpn(), "h2");
  EXPECT_EQ(SSL_version(pair.client().ssl()), TLS1_3_VERSION);

  PeerIdentity server_seen = PeerOf(pair.client().ssl());
  EXPECT_TRUE(server_seen.presented);
  EXPECT_TRUE(server_seen.verified) << server_seen.error;
  EXPECT_EQ(server_seen.spiffe_id, kServerId);
  PeerIdentity client_seen = PeerOf(pair.server().ssl());
  EXPECT_TRUE(client_seen.presented);
  EXPECT_TRUE(client_seen.verified) << client_seen.error;
  EXPECT_EQ(client_seen.spiffe_id, kClientId);
  EXPECT_EQ(client_seen.uri_sans, std::vector<std::string>{kClientId});

  const std::string up = RandomBytes(1 << 20, 1);
  const std::string down = RandomBytes(1 << 20, 2);
  std::string server_got, client_got;
  ASSERT_TRUE(pair.Exchange(up, down, &server_got, &client_got))
      << pair.client().error() << " / " << pair.server().error();
  EXPECT_TRUE(server_got == up) << server_got.size();
  EXPECT_TRUE(client_got == down) << client_got.size();
}

TEST_F(TlsSocketTest, ServerOfAnotherCaIsRefusedByTheClient) {
  Pki other("other");
  auto other_ca = LoadCa(other);
  ASSERT_NE(other_ca, nullptr);
  auto foreign = other_ca->Mint(kServerId, hours(1));
  ASSERT_TRUE(foreign.ok());
  SslCtxPtr client_ctx = ClientCtx();
  SslCtxPtr server_ctx = Context(true, &*foreign, other_ca->trust());
  TlsPair pair(client_ctx.get(), server_ctx.get());
  auto outcome = pair.Handshake();
  EXPECT_EQ(outcome.client, Result::kError);
  EXPECT_TRUE(
      absl::StrContains(pair.client().error(), "certificate verify failed"))
      << pair.client().error();
  EXPECT_TRUE(absl::StrContains(pair.client().error(),
                                "unable to get local issuer certificate"))
      << pair.client().error();
  EXPECT_NE(pair.server().Handshake(), Result::kOk);
}

TEST_F(TlsSocketTest, ClientOfAnotherCaIsRefusedByTheServer) {
  Pki other("other");
  auto other_ca = LoadCa(other);
  ASSERT_NE(other_ca, nullptr);
  auto foreign = other_ca->Mint(kClientId, hours(1));
  ASSERT_TRUE(foreign.ok());
  // The client trusts the server; the server does not trust the client.
  SslCtxPtr client_ctx = Context(false, &*foreign, ca_->trust());
  SslCtxPtr server_ctx = ServerCtx();
  TlsPair pair(client_ctx.get(), server_ctx.get());
  auto outcome = pair.Handshake();
  EXPECT_EQ(outcome.server, Result::kError);
  EXPECT_TRUE(
      absl::StrContains(pair.server().error(), "certificate verify failed"))
      << pair.server().error();
  // TLS 1.3: the client finished first and hears the refusal on reading.
  EXPECT_EQ(pair.ReadClient(), Result::kError);
  EXPECT_TRUE(absl::StrContains(pair.client().error(), "unknown ca"))
      << pair.client().error();
}

TEST_F(TlsSocketTest, ExpiredServerCertificateIsRefused) {
  auto expired =
      ca_->Mint(kServerId, minutes(10), SystemClock::now() - hours(1));
  ASSERT_TRUE(expired.ok()) << expired.status();
  SslCtxPtr client_ctx = ClientCtx();
  SslCtxPtr server_ctx = Context(true, &*expired, ca_->trust());
  TlsPair pair(client_ctx.get(), server_ctx.get());
  auto outcome = pair.Handshake();
  EXPECT_EQ(outcome.client, Result::kError);
  EXPECT_TRUE(
      absl::StrContains(pair.client().error(), "certificate has expired"))
      << pair.client().error();
  EXPECT_EQ(SSL_get_verify_result(pair.client().ssl()),
            X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST_F(TlsSocketTest, ExpiredClientCertificateIsRefused) {
  auto expired =
      ca_->Mint(kClientId, minutes(10), SystemClock::now() - hours(1));
  ASSERT_TRUE(expired.ok()) << expired.status();
  SslCtxPtr client_ctx = Context(false, &*expired, ca_->trust());
  SslCtxPtr server_ctx = ServerCtx();
  TlsPair pair(client_ctx.get(), server_ctx.get());
  auto outcome = pair.Handshake();
  EXPECT_EQ(outcome.server, Result::kError);
  EXPECT_TRUE(
      absl::StrContains(pair.server().error(), "certificate has expired"))
      << pair.server().error();
  EXPECT_EQ(pair.ReadClient(), Result::kError);
  EXPECT_TRUE(absl::StrContains(pair.client().error(), "expired"))
      << pair.client().error();
}

TEST_F(TlsSocketTest, ClientWithoutCertificateIsRefused) {
  SslCtxPtr client_ctx = Context(false, nullptr, ca_->trust());
  SslCtxPtr server_ctx = ServerCtx();
  TlsPair pair(client_ctx.get(), server_ctx.get());
  auto outcome = pair.Handshake();
  EXPECT_EQ(outcome.server, Result::kError);
  EXPECT_TRUE(absl::StrContains(pair.server().error(),
                                "peer did not return a certificate"))
      << pair.server().error();
  EXPECT_EQ(pair.ReadClient(), Result::kError);
  EXPECT_TRUE(absl::StrContains(pair.client().error(), "certificate required"))
      << pair.client().error();
}

TEST_F(TlsSocketTest, ServerOptionallyAcceptsAClientWithoutCertificate) {
  ContextOptions options;
  options.certificate = &server_cert_;
  options.trust = ca_->trust();
  options.require_peer_cert = false;
  auto server_ctx = MakeServerContext(options);
  ASSERT_TRUE(server_ctx.ok());
  SslCtxPtr client_ctx = Context(false, nullptr, ca_->trust());
  TlsPair pair(client_ctx.get(), server_ctx->get());
  auto outcome = pair.Handshake();
  ASSERT_EQ(outcome.client, Result::kOk) << pair.client().error();
  ASSERT_EQ(outcome.server, Result::kOk) << pair.server().error();
  PeerIdentity peer = PeerOf(pair.server().ssl());
  EXPECT_FALSE(peer.presented);
  EXPECT_FALSE(peer.verified);
}

TEST_F(TlsSocketTest, WithoutTrustNothingIsVerified) {
  SslCtxPtr client_ctx = Context(false, &client_cert_, nullptr);
  SslCtxPtr server_ctx = Context(true, &server_cert_, nullptr);
  TlsPair pair(client_ctx.get(), server_ctx.get());
  auto outcome = pair.Handshake();
  ASSERT_EQ(outcome.client, Result::kOk) << pair.client().error();
  ASSERT_EQ(outcome.server, Result::kOk) << pair.server().error();
  PeerIdentity server_seen = PeerOf(pair.client().ssl());
  EXPECT_TRUE(server_seen.presented);
  EXPECT_FALSE(server_seen.verified);
  EXPECT_EQ(server_seen.error, "not verified");
  EXPECT_EQ(server_seen.spiffe_id, kServerId);
  // No trust on the server: no certificate asked of the client.
  EXPECT_FALSE(PeerOf(pair.server().ssl()).presented);
}

TEST_F(TlsSocketTest, ClientWithoutAlpnIsRefused) {
  SslCtxPtr client_ctx = Context(false, &client_cert_, ca_->trust(), "");
  SslCtxPtr server_ctx = ServerCtx();
  TlsPair pair(client_ctx.get(), server_ctx.get());
  auto outcome = pair.Handshake();
  EXPECT_EQ(outcome.server, Result::kError);
  EXPECT_EQ(outcome.client, Result::kError);
  EXPECT_TRUE(
      absl::StrContains(pair.client().error(), "no application protocol"))
      << pair.client().error();
}

TEST_F(TlsSocketTest, ClientOfferingAnotherProtocolIsRefused) {
  SslCtxPtr client_ctx =
      Context(false, &client_cert_, ca_->trust(), "http/1.1");
  SslCtxPtr server_ctx = ServerCtx();
  TlsPair pair(client_ctx.get(), server_ctx.get());
  auto outcome = pair.Handshake();
  EXPECT_EQ(outcome.client, Result::kError);
  EXPECT_TRUE(
      absl::StrContains(pair.client().error(), "no application protocol"))
      << pair.client().error();
}

TEST_F(TlsSocketTest, CloseNotifyIsClosed) {
  SslCtxPtr client_ctx = ClientCtx();
  SslCtxPtr server_ctx = ServerCtx();
  TlsPair pair(client_ctx.get(), server_ctx.get());
  auto outcome = pair.Handshake();
  ASSERT_EQ(outcome.client, Result::kOk);
  ASSERT_EQ(outcome.server, Result::kOk);
  pair.server().Shutdown();
  EXPECT_EQ(pair.ReadClient(), Result::kClosed);
}

TEST_F(TlsSocketTest, EofIsClosedAfterTheHandshake) {
  SslCtxPtr client_ctx = ClientCtx();
  SslCtxPtr server_ctx = ServerCtx();
  TlsPair pair(client_ctx.get(), server_ctx.get());
  auto outcome = pair.Handshake();
  ASSERT_EQ(outcome.client, Result::kOk);
  ASSERT_EQ(outcome.server, Result::kOk);
  std::string got;
  pair.CloseServerFd();
  EXPECT_EQ(pair.ReadClient(&got), Result::kClosed);
  EXPECT_TRUE(absl::StrContains(pair.client().error(), "unexpected eof"))
      << pair.client().error();
}

TEST_F(TlsSocketTest, EofDuringTheHandshakeIsAnError) {
  SslCtxPtr client_ctx = ClientCtx();
  SslCtxPtr server_ctx = ServerCtx();
  TlsPair pair(client_ctx.get(), server_ctx.get());
  EXPECT_EQ(pair.client().Handshake(), Result::kWantRead);
  pair.CloseServerFd();
  EXPECT_EQ(pair.client().Handshake(), Result::kError);
  EXPECT_TRUE(absl::StrContains(pair.client().error(), "unexpected eof"))
      << pair.client().error();
}

// OpenSSL's socket BIO would write() and die of SIGPIPE here.
TEST_F(TlsSocketTest, WritingToAClosedPeerIsAnErrorNotSigpipe) {
  SslCtxPtr client_ctx = ClientCtx();
  SslCtxPtr server_ctx = ServerCtx();
  TlsPair pair(client_ctx.get(), server_ctx.get());
  auto outcome = pair.Handshake();
  ASSERT_EQ(outcome.client, Result::kOk);
  ASSERT_EQ(outcome.server, Result::kOk);
  pair.CloseServerFd();
  Result r = Result::kOk;
  const std::string data(4096, 'x');
  for (int i = 0; i < 1000 && r == Result::kOk; ++i) {
    size_t n = 0;
    r = pair.client().Write(data.data(), data.size(), &n);
  }
  EXPECT_EQ(r, Result::kError);
  EXPECT_TRUE(absl::StrContains(pair.client().error(), "Broken pipe"))
      << pair.client().error();
  size_t n = 0;
  EXPECT_EQ(pair.client().Write(data.data(), data.size(), &n), Result::kError);
  pair.client().Shutdown();  // nothing after a fatal error
}

}  // namespace
}  // namespace nodemesh::tls
