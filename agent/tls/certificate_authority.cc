#include "agent/tls/certificate_authority.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/tls/openssl_error.h"
#include "agent/tls/pem_file.h"

namespace nodemesh::tls {
namespace {

// Clocks of peers disagree a little; a leaf is valid from a minute ago.
constexpr std::chrono::seconds kBackdate{60};
// The longest URI SAN we mint (SPIFFE limits IDs to 2048 bytes).
constexpr size_t kMaxSpiffeIdLength = 2048;

struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct X509StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};
struct BignumFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};

std::string TimeText(SystemClock::time_point t) {
  return absl::FormatTime(absl::FromChrono(t), absl::UTCTimeZone());
}

X509Ptr UpRef(X509* cert) {
  X509_up_ref(cert);
  return X509Ptr(cert);
}

absl::Status CheckSpiffeId(const std::string& id) {
  if (!absl::StartsWith(id, "spiffe://") || id.size() == 9) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: cannot mint for \"", id, "\": not a spiffe:// URI"));
  }
  if (id.size() > kMaxSpiffeIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: cannot mint for \"", id.substr(0, 64),
                     "...\": longer than ", kMaxSpiffeIdLength, " bytes"));
  }
  for (char c : id) {
    if (c <= 0x20 || c >= 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls: cannot mint for \"", id,
                       "\": a URI has only visible ASCII characters"));
    }
  }
  return absl::OkStatus();
}

// A random 128-bit serial, top bit clear so that it is positive in at most
// 16 octets (RFC 5280: positive, at most 20 octets).
bool SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return false;
  bytes[0] &= 0x7f;
  std::unique_ptr<BIGNUM, BignumFree> bn(
      BN_bin2bn(bytes, sizeof(bytes), nullptr));
  return bn != nullptr &&
         BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) != nullptr;
}

bool AddExtension(X509V3_CTX* v3, X509* cert, int nid, const char* value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, v3, nid, value);
  if (ext == nullptr) return false;
  bool added = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return added;
}

// Built by hand, not through the config parser, so that no character of
// the ID is read as syntax.
bool AddUriSan(X509* cert, const std::string& uri) {
  std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> names(
      sk_GENERAL_NAME_new_null());
  GENERAL_NAME* name = GENERAL_NAME_new();
  ASN1_IA5STRING* value = ASN1_IA5STRING_new();
  if (names == nullptr || name == nullptr || value == nullptr ||
      ASN1_STRING_set(value, uri.data(), static_cast<int>(uri.size())) != 1) {
    GENERAL_NAME_free(name);
    ASN1_IA5STRING_free(value);
    return false;
  }
  GENERAL_NAME_set0_value(name, GEN_URI, value);
  if (sk_GENERAL_NAME_push(names.get(), name) == 0) {
    GENERAL_NAME_free(name);
    return false;
  }
  return X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(),
                           /*crit=*/0, X509V3_ADD_DEFAULT) == 1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CertificateAuthority>>
CertificateAuthority::Load(const std::string& ca_bundle,
                           const std::string& signing_cert,
                           const std::string& signing_key) {
  auto trust = LoadTrustBundle(ca_bundle);
  if (!trust.ok()) return trust.status();
  auto certs = ReadPemCertificates(signing_cert);
  if (!certs.ok()) return certs.status();
  auto key = ReadPemPrivateKey(signing_key);
  if (!key.ok()) return key.status();
  X509* cert = certs->front().get();

  ERR_clear_error();
  if (X509_check_private_key(cert, key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "tls: ", signing_key,
        ": the signing key does not match the signing certificate in ",
        signing_cert));
  }
  if (X509_check_ca(cert) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: ", signing_cert,
                     ": the signing certificate is not a CA (it needs "
                     "basicConstraints CA:TRUE to sign leaves)"));
  }

  std::unique_ptr<STACK_OF(X509), X509StackFree> untrusted(sk_X509_new_null());
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> verify(X509_STORE_CTX_new());
  if (untrusted == nullptr || verify == nullptr) {
    return absl::InternalError(
        absl::StrCat("tls: ", signing_cert, ": ", TakeOpenSslErrors()));
  }
  for (size_t i = 1; i < certs->size(); ++i) {
    sk_X509_push(untrusted.get(), (*certs)[i].get());
  }
  if (X509_STORE_CTX_init(verify.get(), trust->get(), cert, untrusted.get()) !=
          1 ||
      X509_verify_cert(verify.get()) != 1) {
    int err = X509_STORE_CTX_get_error(verify.get());
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "tls: ", signing_cert,
        ": the signing certificate does not verify against the CA bundle ",
        ca_bundle, ": ", X509_verify_cert_error_string(err)));
  }

  std::unique_ptr<CertificateAuthority> ca(new CertificateAuthority());
  ca->trust_ = std::move(*trust);
  ca->trust_path_ = ca_bundle;
  ca->signing_cert_path_ = signing_cert;
  ca->signing_cert_ = std::move(certs->front());
  ca->signing_key_ = std::move(*key);
  for (size_t i = 1; i < certs->size(); ++i) {
    ca->extra_chain_.push_back(std::move((*certs)[i]));
  }
  return ca;
}

absl::StatusOr<Certificate> CertificateAuthority::Mint(
    std::string_view spiffe_id, std::chrono::seconds lifetime) const {
  return Mint(spiffe_id, lifetime, SystemClock::now());
}

absl::StatusOr<Certificate> CertificateAuthority::Mint(
    std::string_view spiffe_id, std::chrono::seconds lifetime,
    SystemClock::time_point now) const {
  std::string id(spiffe_id);
  if (auto s = CheckSpiffeId(id); !s.ok()) return s;
  if (lifetime <= std::chrono::seconds(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls: cannot mint for ", id, ": the lifetime must be positive"));
  }
  SystemClock::time_point signer_expiry =
      ToTimePoint(X509_get0_notAfter(signing_cert_.get()));
  if (now >= signer_expiry) {
    return absl::FailedPreconditionError(
        absl::StrCat("tls: cannot mint for ", id, ": the signing certificate ",
                     signing_cert_path_, " expired at ",
                     TimeText(signer_expiry), "; renew it"));
  }
  SystemClock::time_point not_after = std::min(now + lifetime, signer_expiry);
  auto failed = [&](std::string_view step) {
    return absl::InternalError(
        absl::StrCat("tls: cannot mint for ", id, ": ",
                     absl::string_view(step.data(), step.size()), ": ",
                     TakeOpenSslErrors()));
  };

  ERR_clear_error();
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return failed("P-256 key generation");
  X509Ptr leaf(X509_new());
  if (leaf == nullptr) return failed("X509_new");
  X509* x = leaf.get();
  X509_NAME* subject = X509_get_subject_name(x);
  if (X509_set_version(x, X509_VERSION_3) != 1 || !SetRandomSerial(x) ||
      X509_set_issuer_name(x, X509_get_subject_name(signing_cert_.get())) !=
          1 ||
      X509_NAME_add_entry_by_txt(
          subject, "O", MBSTRING_ASC,
          reinterpret_cast<const unsigned char*>("nodemesh"), -1, -1, 0) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(x),
                    SystemClock::to_time_t(now - kBackdate)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(x), SystemClock::to_time_t(not_after)) ==
          nullptr ||
      X509_set_pubkey(x, key.get()) != 1) {
    return failed("certificate fields");
  }

  X509V3_CTX v3;
  X509V3_set_ctx(&v3, signing_cert_.get(), x, nullptr, nullptr, 0);
  if (!AddUriSan(x, id) ||
      !AddExtension(&v3, x, NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExtension(&v3, x, NID_key_usage, "critical,digitalSignature") ||
      !AddExtension(&v3, x, NID_ext_key_usage, "serverAuth,clientAuth") ||
      !AddExtension(&v3, x, NID_subject_key_identifier, "hash") ||
      !AddExtension(&v3, x, NID_authority_key_identifier, "keyid,issuer")) {
    return failed("extensions");
  }
  // EdDSA signs without a separate digest.
  int key_type = EVP_PKEY_get_base_id(signing_key_.get());
  const EVP_MD* md = key_type == EVP_PKEY_ED25519 || key_type == EVP_PKEY_ED448
                         ? nullptr
                         : EVP_sha256();
  if (X509_sign(x, signing_key_.get(), md) <= 0) return failed("signing");

  Certificate out;
  out.leaf = std::move(leaf);
  out.key = std::move(key);
  out.chain.push_back(UpRef(signing_cert_.get()));
  for (const X509Ptr& extra : extra_chain_) {
    out.chain.push_back(UpRef(extra.get()));
  }
  DescribeLeaf(&out);
  return out;
}

}  // namespace nodemesh::tls
