#pragma once

// The node's intermediate CA, which mints the leaf certificates of the
// node's identities.

#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/tls/certificate.h"

namespace nodemesh::tls {

// The node's intermediate CA (--signing_cert, --signing_key) under the
// mesh's roots (--ca_bundle). The signing cert file may hold further
// intermediates after the first certificate; they join every minted chain.
class CertificateAuthority {
 public:
  // Checks that the key matches the signing certificate, that it is a CA
  // and that it (with the file's further intermediates) verifies against
  // the bundle. Errors name the file at fault.
  static absl::StatusOr<std::unique_ptr<CertificateAuthority>> Load(
      const std::string& ca_bundle, const std::string& signing_cert,
      const std::string& signing_key);

  // A new leaf: ECDSA P-256 key, SAN URI `spiffe_id` (and nothing else),
  // valid from a minute ago for `lifetime` (capped at the signing cert's
  // own expiry), digitalSignature, serverAuth + clientAuth, signed by the
  // intermediate; `chain` = the intermediate(s).
  absl::StatusOr<Certificate> Mint(std::string_view spiffe_id,
                                   std::chrono::seconds lifetime) const;
  // The same, as if minted at `now` (rotation schedules and tests).
  absl::StatusOr<Certificate> Mint(std::string_view spiffe_id,
                                   std::chrono::seconds lifetime,
                                   SystemClock::time_point now) const;

  // The roots, owned by the authority: contexts take their own reference
  // (SSL_CTX_set1_cert_store), so it may be shared by every context.
  X509_STORE* trust() const { return trust_.get(); }
  // The PEM of the CA bundle (for contexts that need their own store).
  const std::string& trust_path() const { return trust_path_; }

 private:
  CertificateAuthority() = default;
  StorePtr trust_;
  std::string trust_path_;
  std::string signing_cert_path_;
  X509Ptr signing_cert_;
  PkeyPtr signing_key_;
  std::vector<X509Ptr> extra_chain_;
};

}  // namespace nodemesh::tls
