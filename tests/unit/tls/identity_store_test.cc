#include "agent/tls/identity_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "agent/tls/certificate_authority.h"
#include "agent/tls/identity.h"
#include "agent/tls/tls_socket.h"
#include "tests/unit/tls/test_pki.h"
#include "tests/unit/tls/tls_pair.h"

namespace nodemesh::tls {
namespace {

using std::chrono::seconds;
using testing::Pki;
using testing::TlsPair;
using Result = TlsSocket::Result;

constexpr char kA[] = "spiffe://example.org/ns/mesh/vn/a";
constexpr char kB[] = "spiffe://example.org/ns/mesh/vn/b";
constexpr char kC[] = "spiffe://example.org/ns/mesh/vn/c";

// A whole second, so that X.509's second resolution loses nothing.
SystemClock::time_point WholeSecondNow() {
  return SystemClock::from_time_t(SystemClock::to_time_t(SystemClock::now()));
}

class TlsIdentityStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = CertificateAuthority::Load(
        pki_.bundle_path, pki_.signing_cert_path, pki_.signing_key_path);
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::move(*ca);
    t0_ = WholeSecondNow();
    now_ = t0_;
    store_ = std::make_unique<IdentityStore>(ca_.get(), seconds(4),
                                             [this] { return now_; });
  }

  Pki pki_;
  std::unique_ptr<CertificateAuthority> ca_;
  SystemClock::time_point t0_;
  SystemClock::time_point now_;
  std::unique_ptr<IdentityStore> store_;
};

TEST_F(TlsIdentityStoreTest, SetIdentitiesMintsAndGetReturns) {
  std::vector<std::string> ids = {kA, kB};
  ASSERT_TRUE(store_->SetIdentities(ids).ok());
  EXPECT_EQ(store_->All().size(), 2u);
  auto a = store_->Get(kA);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->spiffe_id, kA);
  EXPECT_EQ(a->certificate.uri_sans, std::vector<std::string>{kA});
  EXPECT_EQ(a->certificate.not_after, t0_ + seconds(4));
  EXPECT_EQ(a->rotate_at, t0_ + seconds(2));
  ASSERT_NE(a->client, nullptr);
  ASSERT_NE(a->server, nullptr);
  EXPECT_EQ(SSL_CTX_get_verify_mode(a->server.get()),
            SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
  EXPECT_EQ(store_->Get(kC), nullptr);
  EXPECT_EQ(store_->rotations(), 0u);

  // Held ids are not minted again.
  ASSERT_TRUE(store_->SetIdentities(ids).ok());
  EXPECT_EQ(store_->Get(kA), a);
}

TEST_F(TlsIdentityStoreTest, SetIdentitiesDropsRemovedIds) {
  std::vector<std::string> both = {kA, kB};
  ASSERT_TRUE(store_->SetIdentities(both).ok());
  auto b = store_->Get(kB);
  std::vector<std::string> only_b = {kB};
  ASSERT_TRUE(store_->SetIdentities(only_b).ok());
  EXPECT_EQ(store_->Get(kA), nullptr);
  EXPECT_EQ(store_->Get(kB), b);
  EXPECT_EQ(store_->All().size(), 1u);
  ASSERT_TRUE(store_->SetIdentities({}).ok());
  EXPECT_TRUE(store_->All().empty());
}

TEST_F(TlsIdentityStoreTest, AFailedMintLeavesTheOthers) {
  std::vector<std::string> ids = {kA, "not-a-spiffe-id", kB};
  absl::Status status = store_->SetIdentities(ids);
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), "not-a-spiffe-id")) << status;
  EXPECT_NE(store_->Get(kA), nullptr);
  EXPECT_NE(store_->Get(kB), nullptr);
  EXPECT_EQ(store_->All().size(), 2u);
}

TEST_F(TlsIdentityStoreTest, RotateDueRemintsOnlyThoseAtHalfLife) {
  std::vector<std::string> first = {kA};
  ASSERT_TRUE(store_->SetIdentities(first).ok());  // t0: due at t0+2
  now_ = t0_ + seconds(1);
  std::vector<std::string> both = {kA, kB};
  ASSERT_TRUE(store_->SetIdentities(both).ok());  // t0+1: due at t0+3
  auto a0 = store_->Get(kA);
  auto b0 = store_->Get(kB);

  EXPECT_EQ(store_->RotateDue(t0_ + seconds(1)), 0);
  EXPECT_EQ(store_->Get(kA), a0);

  EXPECT_EQ(store_->RotateDue(t0_ + seconds(2)), 1);
  auto a1 = store_->Get(kA);
  EXPECT_NE(a1, a0);
  EXPECT_EQ(store_->Get(kB), b0);
  EXPECT_EQ(a1->certificate.not_after, t0_ + seconds(6));
  EXPECT_EQ(a1->rotate_at, t0_ + seconds(4));
  EXPECT_EQ(a1->certificate.uri_sans, std::vector<std::string>{kA});
  EXPECT_EQ(store_->rotations(), 1u);

  EXPECT_EQ(store_->RotateDue(t0_ + seconds(3)), 1);
  EXPECT_NE(store_->Get(kB), b0);
  EXPECT_EQ(store_->Get(kA), a1);
  EXPECT_EQ(store_->rotations(), 2u);
}

TEST_F(TlsIdentityStoreTest, CredentialsDoMutualTlsAndSurviveRotation) {
  now_ = WholeSecondNow();
  std::vector<std::string> ids = {kA, kB};
  ASSERT_TRUE(store_->SetIdentities(ids).ok());
  auto a = store_->Get(kA);
  auto b = store_->Get(kB);
  auto pair = std::make_unique<TlsPair>(a->client.get(), b->server.get());
  auto outcome = pair->Handshake();
  ASSERT_EQ(outcome.client, Result::kOk) << pair->client().error();
  ASSERT_EQ(outcome.server, Result::kOk) << pair->server().error();
  EXPECT_EQ(PeerOf(pair->client().ssl()).spiffe_id, kB);
  EXPECT_TRUE(PeerOf(pair->client().ssl()).verified);
  EXPECT_EQ(PeerOf(pair->server().ssl()).spiffe_id, kA);
  EXPECT_TRUE(PeerOf(pair->server().ssl()).verified);

  // Rotation replaces both; the connection keeps its (old) contexts.
  ASSERT_EQ(store_->RotateDue(now_ + seconds(2)), 2);
  a.reset();
  b.reset();
  std::string server_got, client_got;
  ASSERT_TRUE(pair->Exchange("before", "rotation", &server_got, &client_got))
      << pair->client().error() << pair->server().error();
  EXPECT_EQ(server_got, "before");
  EXPECT_EQ(client_got, "rotation");

  // And the new credentials connect too.
  TlsPair fresh(store_->Get(kA)->client.get(), store_->Get(kB)->server.get());
  outcome = fresh.Handshake();
  EXPECT_EQ(outcome.client, Result::kOk) << fresh.client().error();
  EXPECT_EQ(outcome.server, Result::kOk) << fresh.server().error();
}

TEST_F(TlsIdentityStoreTest, ConcurrentReadersDuringRotation) {
  std::vector<std::string> ids = {kA};
  ASSERT_TRUE(store_->SetIdentities(ids).ok());
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) {
      auto creds = store_->Get(kA);
      ASSERT_NE(creds, nullptr);
      ASSERT_NE(creds->client, nullptr);
    }
  });
  for (int i = 1; i <= 20; ++i) {
    store_->RotateDue(t0_ + seconds(1000 * i));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(store_->rotations(), 20u);
}

}  // namespace
}  // namespace nodemesh::tls
