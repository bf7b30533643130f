#include "agent/tls/certificate.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/tls/identity.h"
#include "agent/tls/openssl_error.h"
#include "agent/tls/pem_file.h"

namespace nodemesh::tls {

SystemClock::time_point ToTimePoint(const ASN1_TIME* time) {
  struct tm tm = {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return {};
  return SystemClock::from_time_t(timegm(&tm));
}

void DescribeLeaf(Certificate* certificate) {
  X509* leaf = certificate->leaf.get();
  certificate->uri_sans.clear();
  certificate->dns_sans.clear();
  if (leaf == nullptr) return;
  certificate->not_before = ToTimePoint(X509_get0_notBefore(leaf));
  certificate->not_after = ToTimePoint(X509_get0_notAfter(leaf));
  ReadSubjectAltNames(leaf, &certificate->uri_sans, &certificate->dns_sans);
}

absl::StatusOr<Certificate> LoadCertificateFiles(const std::string& chain_path,
                                                 const std::string& key_path) {
  auto certs = ReadPemCertificates(chain_path);
  if (!certs.ok()) return certs.status();
  auto key = ReadPemPrivateKey(key_path);
  if (!key.ok()) return key.status();
  ERR_clear_error();
  if (X509_check_private_key(certs->front().get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("tls: ", key_path,
                     ": the private key does not match the first "
                     "certificate of ",
                     chain_path, " (the leaf must come first)"));
  }
  Certificate out;
  out.leaf = std::move(certs->front());
  out.key = std::move(*key);
  for (size_t i = 1; i < certs->size(); ++i) {
    out.chain.push_back(std::move((*certs)[i]));
  }
  DescribeLeaf(&out);
  return out;
}

absl::StatusOr<StorePtr> LoadTrustBundle(const std::string& bundle_path) {
  auto certs = ReadPemCertificates(bundle_path);
  if (!certs.ok()) return certs.status();
  StorePtr store(X509_STORE_new());
  if (store == nullptr) {
    return absl::InternalError(
        absl::StrCat("tls: ", bundle_path, ": ", TakeOpenSslErrors()));
  }
  for (const X509Ptr& cert : *certs) {
    ERR_clear_error();
    // Adds a reference; a certificate listed twice is harmless.
    if (X509_STORE_add_cert(store.get(), cert.get()) != 1) {
      return absl::InternalError(
          absl::StrCat("tls: ", bundle_path,
                       ": cannot add a certificate: ", TakeOpenSslErrors()));
    }
  }
  return store;
}

}  // namespace nodemesh::tls
