#include "tests/unit/tls/test_pki.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace nodemesh::tls::testing {
namespace {

void AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
  ASSERT_NE(ext, nullptr) << value;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

}  // namespace

IssueOptions CaOptions(const std::string& common_name) {
  IssueOptions options;
  options.common_name = common_name;
  options.ca = true;
  return options;
}

IssueOptions LeafOptions(const std::string& uri_san) {
  IssueOptions options;
  options.common_name = "leaf";
  options.uri_san = uri_san;
  return options;
}

Issued Issue(const IssueOptions& options, const Issued* issuer) {
  Issued out;
  out.key.reset(EVP_EC_gen("P-256"));
  out.cert.reset(X509_new());
  X509* x = out.cert.get();
  X509_set_version(x, X509_VERSION_3);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>(options.common_name.c_str()), -1,
      -1, 0);
  X509* issuer_cert = issuer != nullptr ? issuer->cert.get() : x;
  X509_set_issuer_name(x, X509_get_subject_name(issuer_cert));
  ASN1_TIME_set(X509_getm_notBefore(x),
                SystemClock::to_time_t(options.not_before));
  ASN1_TIME_set(X509_getm_notAfter(x),
                SystemClock::to_time_t(options.not_after));
  X509_set_pubkey(x, out.key.get());
  if (options.ca) {
    AddExt(x, issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(x, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(x, issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(x, issuer_cert, NID_key_usage, "critical,digitalSignature");
    AddExt(x, issuer_cert, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  AddExt(x, issuer_cert, NID_subject_key_identifier, "hash");
  if (issuer != nullptr) {
    AddExt(x, issuer_cert, NID_authority_key_identifier, "keyid:always");
  }
  std::string san;
  if (!options.uri_san.empty()) san = "URI:" + options.uri_san;
  if (!options.dns_san.empty()) {
    san += (san.empty() ? "" : ",") + std::string("DNS:") + options.dns_san;
  }
  if (!san.empty()) AddExt(x, issuer_cert, NID_subject_alt_name, san);
  EVP_PKEY* signer = issuer != nullptr ? issuer->key.get() : out.key.get();
  EXPECT_GT(X509_sign(x, signer, EVP_sha256()), 0);
  return out;
}

TempDir::TempDir() {
  std::string tmpl = ::testing::TempDir() + "tls_test_XXXXXX";
  char* made = mkdtemp(tmpl.data());
  EXPECT_NE(made, nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void WriteCertificates(const std::string& path,
                       const std::vector<const X509*>& certs) {
  BIO* bio = BIO_new_file(path.c_str(), "w");
  ASSERT_NE(bio, nullptr) << path;
  for (const X509* cert : certs) {
    PEM_write_bio_X509(bio, const_cast<X509*>(cert));
  }
  BIO_free(bio);
}

void WriteKey(const std::string& path, const EVP_PKEY* key, bool traditional) {
  BIO* bio = BIO_new_file(path.c_str(), "w");
  ASSERT_NE(bio, nullptr) << path;
  if (traditional) {
    PEM_write_bio_PrivateKey_traditional(bio, key, nullptr, nullptr, 0, nullptr,
                                         nullptr);
  } else {
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  }
  BIO_free(bio);
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

Pki::Pki(const std::string& name) {
  root = Issue(CaOptions(name + " root"), nullptr);
  intermediate = Issue(CaOptions(name + " intermediate"), &root);
  bundle_path = dir.File("ca.pem");
  signing_cert_path = dir.File("signing.pem");
  signing_key_path = dir.File("signing.key");
  WriteCertificates(bundle_path, {root.cert.get()});
  WriteCertificates(signing_cert_path, {intermediate.cert.get()});
  WriteKey(signing_key_path, intermediate.key.get());
}

}  // namespace nodemesh::tls::testing
