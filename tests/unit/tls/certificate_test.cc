#include "agent/tls/certificate.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "tests/unit/tls/test_pki.h"

namespace nodemesh::tls {
namespace {

using std::chrono::seconds;
using testing::Issue;
using testing::Issued;
using testing::Pki;

class TlsCertificateFilesTest : public ::testing::Test {
 protected:
  TlsCertificateFilesTest() {
    testing::IssueOptions options =
        testing::LeafOptions("spiffe://example.org/ns/m/vn/web");
    options.dns_san = "web.example.org";
    options.not_before = kNotBefore;
    options.not_after = kNotAfter;
    leaf_ = Issue(options, &pki_.intermediate);
    chain_path_ = pki_.dir.File("chain.pem");
    key_path_ = pki_.dir.File("leaf.key");
    testing::WriteCertificates(
        chain_path_, {leaf_.cert.get(), pki_.intermediate.cert.get()});
    testing::WriteKey(key_path_, leaf_.key.get());
  }

  const SystemClock::time_point kNotBefore =
      SystemClock::from_time_t(SystemClock::to_time_t(SystemClock::now())) -
      std::chrono::hours(1);
  const SystemClock::time_point kNotAfter = kNotBefore + std::chrono::hours(5);
  Pki pki_;
  Issued leaf_;
  std::string chain_path_;
  std::string key_path_;
};

TEST_F(TlsCertificateFilesTest, LoadsChainKeyAndFields) {
  auto cert = LoadCertificateFiles(chain_path_, key_path_);
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_EQ(X509_cmp(cert->leaf.get(), leaf_.cert.get()), 0);
  ASSERT_EQ(cert->chain.size(), 1u);
  EXPECT_EQ(X509_cmp(cert->chain[0].get(), pki_.intermediate.cert.get()), 0);
  EXPECT_EQ(EVP_PKEY_eq(cert->key.get(), leaf_.key.get()), 1);
  EXPECT_EQ(cert->not_before, kNotBefore);
  EXPECT_EQ(cert->not_after, kNotAfter);
  EXPECT_EQ(cert->uri_sans,
            std::vector<std::string>{"spiffe://example.org/ns/m/vn/web"});
  EXPECT_EQ(cert->dns_sans, std::vector<std::string>{"web.example.org"});
}

TEST_F(TlsCertificateFilesTest, LoadsTraditionalEcKey) {
  testing::WriteKey(key_path_, leaf_.key.get(), /*traditional=*/true);
  auto cert = LoadCertificateFiles(chain_path_, key_path_);
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_EQ(EVP_PKEY_eq(cert->key.get(), leaf_.key.get()), 1);
}

TEST_F(TlsCertificateFilesTest, MissingChainFileIsNamed) {
  std::string missing = pki_.dir.File("nope.pem");
  auto cert = LoadCertificateFiles(missing, key_path_);
  ASSERT_FALSE(cert.ok());
  EXPECT_TRUE(absl::StrContains(cert.status().message(), missing))
      << cert.status();
  EXPECT_TRUE(absl::StrContains(cert.status().message(), "No such file"))
      << cert.status();
}

TEST_F(TlsCertificateFilesTest, MissingKeyFileIsNamed) {
  std::string missing = pki_.dir.File("nope.key");
  auto cert = LoadCertificateFiles(chain_path_, missing);
  ASSERT_FALSE(cert.ok());
  EXPECT_TRUE(absl::StrContains(cert.status().message(), missing))
      << cert.status();
}

TEST_F(TlsCertificateFilesTest, ChainWithoutCertificateIsNamed) {
  testing::WriteText(chain_path_, "not a certificate\n");
  auto cert = LoadCertificateFiles(chain_path_, key_path_);
  ASSERT_FALSE(cert.ok());
  EXPECT_TRUE(absl::StrContains(cert.status().message(), chain_path_))
      << cert.status();
}

TEST_F(TlsCertificateFilesTest, CorruptSecondCertificateIsNamed) {
  testing::WriteCertificates(chain_path_, {leaf_.cert.get()});
  std::ofstream(chain_path_, std::ios::app)
      << "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  auto cert = LoadCertificateFiles(chain_path_, key_path_);
  ASSERT_FALSE(cert.ok());
  EXPECT_TRUE(absl::StrContains(cert.status().message(), chain_path_))
      << cert.status();
  EXPECT_TRUE(absl::StrContains(cert.status().message(), "certificate 2"))
      << cert.status();
}

TEST_F(TlsCertificateFilesTest, GarbageKeyIsNamed) {
  testing::WriteText(key_path_, "-----BEGIN PRIVATE KEY-----\nAAAA\n");
  auto cert = LoadCertificateFiles(chain_path_, key_path_);
  ASSERT_FALSE(cert.ok());
  EXPECT_TRUE(absl::StrContains(cert.status().message(), key_path_))
      << cert.status();
}

TEST_F(TlsCertificateFilesTest, KeyOfAnotherCertificateIsRefused) {
  testing::WriteKey(key_path_, pki_.intermediate.key.get());
  auto cert = LoadCertificateFiles(chain_path_, key_path_);
  ASSERT_FALSE(cert.ok());
  EXPECT_TRUE(absl::StrContains(cert.status().message(), key_path_))
      << cert.status();
  EXPECT_TRUE(absl::StrContains(cert.status().message(), "does not match"))
      << cert.status();
}

TEST(TlsTrustBundleTest, LoadsEveryCertificate) {
  Pki a("a");
  Pki b("b");
  std::string bundle = a.dir.File("bundle.pem");
  testing::WriteCertificates(bundle, {a.root.cert.get(), b.root.cert.get()});
  auto store = LoadTrustBundle(bundle);
  ASSERT_TRUE(store.ok()) << store.status();
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(store->get());
  EXPECT_EQ(sk_X509_OBJECT_num(objects), 2);
}

TEST(TlsTrustBundleTest, EmptyBundleIsNamed) {
  testing::TempDir dir;
  std::string bundle = dir.File("empty.pem");
  testing::WriteText(bundle, "");
  auto store = LoadTrustBundle(bundle);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(absl::StrContains(store.status().message(), bundle))
      << store.status();
}

}  // namespace
}  // namespace nodemesh::tls
