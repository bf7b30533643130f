#pragma once

// Certificates with their keys and chains, from PEM files, and trust
// stores from CA bundles.

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace nodemesh::tls {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using StorePtr = std::unique_ptr<X509_STORE, StoreFree>;
using SslCtxPtr = std::shared_ptr<SSL_CTX>;  // deleter: SSL_CTX_free

using SystemClock = std::chrono::system_clock;

// A certificate with its key and the chain up to (not including) a root.
struct Certificate {
  X509Ptr leaf;
  PkeyPtr key;
  std::vector<X509Ptr> chain;  // intermediates, leaf's issuer first
  SystemClock::time_point not_before;
  SystemClock::time_point not_after;
  std::vector<std::string> uri_sans;  // e.g. the SPIFFE ID
  std::vector<std::string> dns_sans;
};

// PEM files: a chain (leaf first, then intermediates) and its private key,
// as an App Mesh `file` certificate names them. Errors name the file.
absl::StatusOr<Certificate> LoadCertificateFiles(const std::string& chain_path,
                                                 const std::string& key_path);

// A trust store from a PEM bundle of one or more CA certificates.
absl::StatusOr<StorePtr> LoadTrustBundle(const std::string& bundle_path);

// Sets not_before, not_after, uri_sans and dns_sans from `certificate->leaf`.
void DescribeLeaf(Certificate* certificate);

// An X.509 time as a time point (seconds resolution).
SystemClock::time_point ToTimePoint(const ASN1_TIME* time);

}  // namespace nodemesh::tls
