#include "agent/tls/certificate_authority.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "tests/unit/tls/test_pki.h"

namespace nodemesh::tls {
namespace {

using std::chrono::hours;
using std::chrono::seconds;
using testing::Pki;

constexpr char kId[] = "spiffe://example.org/ns/mesh/vn/web";

std::unique_ptr<CertificateAuthority> LoadOrDie(const Pki& pki) {
  auto ca = CertificateAuthority::Load(pki.bundle_path, pki.signing_cert_path,
                                       pki.signing_key_path);
  EXPECT_TRUE(ca.ok()) << ca.status();
  return ca.ok() ? std::move(*ca) : nullptr;
}

// The leaf against `store` with `chain` as the untrusted intermediates.
int VerifyError(X509_STORE* store, X509* leaf,
                const std::vector<X509Ptr>& chain) {
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (const X509Ptr& c : chain) sk_X509_push(untrusted, c.get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, untrusted);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
  int result =
      X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  sk_X509_free(untrusted);
  return result;
}

TEST(TlsCertificateAuthorityTest, MintsSpiffeLeafUnderTheIntermediate) {
  Pki pki;
  auto ca = LoadOrDie(pki);
  ASSERT_NE(ca, nullptr);
  SystemClock::time_point before = SystemClock::now();
  auto cert = ca->Mint(kId, hours(1));
  ASSERT_TRUE(cert.ok()) << cert.status();

  EXPECT_EQ(cert->uri_sans, std::vector<std::string>{kId});
  EXPECT_TRUE(cert->dns_sans.empty());
  ASSERT_EQ(cert->chain.size(), 1u);
  EXPECT_EQ(X509_cmp(cert->chain[0].get(), pki.intermediate.cert.get()), 0);
  EXPECT_EQ(X509_verify(cert->leaf.get(), pki.intermediate.key.get()), 1);
  EXPECT_EQ(VerifyError(ca->trust(), cert->leaf.get(), cert->chain), X509_V_OK);

  // ECDSA P-256, and the key is the leaf's.
  EXPECT_EQ(EVP_PKEY_get_base_id(cert->key.get()), EVP_PKEY_EC);
  char group[64] = {};
  size_t group_len = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(cert->key.get(), group, sizeof(group),
                                    &group_len),
            1);
  EXPECT_STREQ(group, "prime256v1");
  EXPECT_EQ(X509_check_private_key(cert->leaf.get(), cert->key.get()), 1);

  // A leaf for TLS on both sides, not a CA.
  X509* leaf = cert->leaf.get();
  EXPECT_EQ(X509_get_version(leaf), X509_VERSION_3);
  EXPECT_EQ(X509_check_ca(leaf), 0);
  EXPECT_EQ(X509_get_key_usage(leaf),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(leaf),
            static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  EXPECT_NE(X509_get0_subject_key_id(leaf), nullptr);
  EXPECT_NE(X509_get0_authority_key_id(leaf), nullptr);
  EXPECT_EQ(X509_check_issued(pki.intermediate.cert.get(), leaf), X509_V_OK);

  // From a minute ago, for the lifetime asked.
  SystemClock::time_point after = SystemClock::now();
  EXPECT_LE(cert->not_before, before - seconds(59));
  EXPECT_GE(cert->not_before, after - seconds(61));
  EXPECT_GE(cert->not_after, before + hours(1) - seconds(1));
  EXPECT_LE(cert->not_after, after + hours(1));
}

TEST(TlsCertificateAuthorityTest, SerialsAreRandom) {
  Pki pki;
  auto ca = LoadOrDie(pki);
  ASSERT_NE(ca, nullptr);
  auto a = ca->Mint(kId, hours(1));
  auto b = ca->Mint(kId, hours(1));
  ASSERT_TRUE(a.ok() && b.ok());
  const ASN1_INTEGER* sa = X509_get0_serialNumber(a->leaf.get());
  const ASN1_INTEGER* sb = X509_get0_serialNumber(b->leaf.get());
  EXPECT_NE(ASN1_INTEGER_cmp(sa, sb), 0);
  EXPECT_GE(ASN1_STRING_length(sa), 8);
}

TEST(TlsCertificateAuthorityTest, LifetimeIsCappedAtTheSigningCertificate) {
  testing::TempDir dir;
  testing::Issued root = testing::Issue(testing::CaOptions("root"), nullptr);
  testing::IssueOptions short_lived = testing::CaOptions("short");
  short_lived.not_after =
      SystemClock::from_time_t(SystemClock::to_time_t(SystemClock::now())) +
      hours(2);
  testing::Issued intermediate = testing::Issue(short_lived, &root);
  testing::WriteCertificates(dir.File("ca.pem"), {root.cert.get()});
  testing::WriteCertificates(dir.File("signing.pem"),
                             {intermediate.cert.get()});
  testing::WriteKey(dir.File("signing.key"), intermediate.key.get());
  auto ca = CertificateAuthority::Load(
      dir.File("ca.pem"), dir.File("signing.pem"), dir.File("signing.key"));
  ASSERT_TRUE(ca.ok()) << ca.status();
  auto cert = (*ca)->Mint(kId, hours(24));
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_EQ(cert->not_after, short_lived.not_after);

  auto late = (*ca)->Mint(kId, hours(1), short_lived.not_after + seconds(1));
  ASSERT_FALSE(late.ok());
  EXPECT_TRUE(
      absl::StrContains(late.status().message(), dir.File("signing.pem")))
      << late.status();
}

TEST(TlsCertificateAuthorityTest, FurtherIntermediatesJoinTheChain) {
  testing::TempDir dir;
  testing::Issued root = testing::Issue(testing::CaOptions("root"), nullptr);
  testing::Issued upper = testing::Issue(testing::CaOptions("upper"), &root);
  testing::Issued lower = testing::Issue(testing::CaOptions("lower"), &upper);
  testing::WriteCertificates(dir.File("ca.pem"), {root.cert.get()});
  testing::WriteCertificates(dir.File("signing.pem"),
                             {lower.cert.get(), upper.cert.get()});
  testing::WriteKey(dir.File("signing.key"), lower.key.get(),
                    /*traditional=*/true);
  auto ca = CertificateAuthority::Load(
      dir.File("ca.pem"), dir.File("signing.pem"), dir.File("signing.key"));
  ASSERT_TRUE(ca.ok()) << ca.status();
  auto cert = (*ca)->Mint(kId, hours(1));
  ASSERT_TRUE(cert.ok()) << cert.status();
  ASSERT_EQ(cert->chain.size(), 2u);
  EXPECT_EQ(X509_cmp(cert->chain[0].get(), lower.cert.get()), 0);
  EXPECT_EQ(X509_cmp(cert->chain[1].get(), upper.cert.get()), 0);
  EXPECT_EQ(VerifyError((*ca)->trust(), cert->leaf.get(), cert->chain),
            X509_V_OK);
}

TEST(TlsCertificateAuthorityTest, RejectsASigningKeyThatDoesNotMatch) {
  Pki pki;
  std::string other_key = pki.dir.File("other.key");
  testing::WriteKey(other_key, pki.root.key.get());
  auto ca = CertificateAuthority::Load(pki.bundle_path, pki.signing_cert_path,
                                       other_key);
  ASSERT_FALSE(ca.ok());
  EXPECT_TRUE(absl::StrContains(ca.status().message(), other_key))
      << ca.status();
  EXPECT_TRUE(absl::StrContains(ca.status().message(), "does not match"))
      << ca.status();
}

TEST(TlsCertificateAuthorityTest, RejectsASigningCertificateOutsideTheBundle) {
  Pki pki("a");
  Pki other("b");
  auto ca = CertificateAuthority::Load(pki.bundle_path, other.signing_cert_path,
                                       other.signing_key_path);
  ASSERT_FALSE(ca.ok());
  EXPECT_TRUE(absl::StrContains(ca.status().message(), other.signing_cert_path))
      << ca.status();
  EXPECT_TRUE(absl::StrContains(ca.status().message(), "does not verify"))
      << ca.status();
}

TEST(TlsCertificateAuthorityTest, RejectsALeafAsSigningCertificate) {
  Pki pki;
  testing::Issued leaf =
      testing::Issue(testing::LeafOptions(kId), &pki.intermediate);
  testing::WriteCertificates(pki.signing_cert_path, {leaf.cert.get()});
  testing::WriteKey(pki.signing_key_path, leaf.key.get());
  auto ca = CertificateAuthority::Load(pki.bundle_path, pki.signing_cert_path,
                                       pki.signing_key_path);
  ASSERT_FALSE(ca.ok());
  EXPECT_TRUE(absl::StrContains(ca.status().message(), "not a CA"))
      << ca.status();
}

TEST(TlsCertificateAuthorityTest, MissingBundleIsNamed) {
  Pki pki;
  std::string missing = pki.dir.File("missing.pem");
  auto ca = CertificateAuthority::Load(missing, pki.signing_cert_path,
                                       pki.signing_key_path);
  ASSERT_FALSE(ca.ok());
  EXPECT_TRUE(absl::StrContains(ca.status().message(), missing)) << ca.status();
}

TEST(TlsCertificateAuthorityTest, RefusesIdsThatAreNotSpiffeUris) {
  Pki pki;
  auto ca = LoadOrDie(pki);
  ASSERT_NE(ca, nullptr);
  for (const char* bad : {"", "web", "https://example.org/x", "spiffe://",
                          "spiffe://example.org/a b"}) {
    auto cert = ca->Mint(bad, hours(1));
    EXPECT_FALSE(cert.ok()) << bad;
  }
  EXPECT_FALSE(ca->Mint(kId, seconds(0)).ok());
}

}  // namespace
}  // namespace nodemesh::tls
