#pragma once

// A throwaway PKI for TLS tests: a root, an intermediate under it and
// leaves, built with OpenSSL and written as PEM into a temporary directory
// that is removed with it.

#include <chrono>
#include <string>
#include <vector>

#include "agent/tls/certificate.h"

namespace nodemesh::tls::testing {

// A certificate and its key.
struct Issued {
  X509Ptr cert;
  PkeyPtr key;
};

struct IssueOptions {
  std::string common_name;
  bool ca = false;
  std::string uri_san;  // empty: none
  std::string dns_san;  // empty: none
  SystemClock::time_point not_before =
      SystemClock::now() - std::chrono::hours(48);
  SystemClock::time_point not_after =
      SystemClock::now() + std::chrono::hours(48);
};

// Options of a CA named `common_name`, and of a leaf with `uri_san`.
IssueOptions CaOptions(const std::string& common_name);
IssueOptions LeafOptions(const std::string& uri_san);

// EC P-256. `issuer` null: self-signed.
Issued Issue(const IssueOptions& options, const Issued* issuer);

// A fresh directory under the test temp dir, removed in the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// PEM of `certs` in order into `path`.
void WriteCertificates(const std::string& path,
                       const std::vector<const X509*>& certs);
// `key` as PKCS#8 PEM, or traditional ("BEGIN EC PRIVATE KEY").
void WriteKey(const std::string& path, const EVP_PKEY* key,
              bool traditional = false);
void WriteText(const std::string& path, const std::string& text);

// root → intermediate, written as ca.pem (the root), signing.pem and
// signing.key.
struct Pki {
  explicit Pki(const std::string& name = "mesh");
  TempDir dir;
  Issued root;
  Issued intermediate;
  std::string bundle_path;
  std::string signing_cert_path;
  std::string signing_key_path;
};

}  // namespace nodemesh::tls::testing
