#include "agent/tls/identity.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace nodemesh::tls {
namespace {

std::string AsString(const ASN1_STRING* s) {
  if (s == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

absl::string_view AbslView(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace

void ReadSubjectAltNames(const X509* cert, std::vector<std::string>* uri_sans,
                         std::vector<std::string>* dns_sans) {
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_URI) {
      uri_sans->push_back(AsString(name->d.uniformResourceIdentifier));
    } else if (name->type == GEN_DNS) {
      dns_sans->push_back(AsString(name->d.dNSName));
    }
  }
  GENERAL_NAMES_free(names);
}

PeerIdentity PeerOf(const SSL* ssl) {
  PeerIdentity peer;
  if (ssl == nullptr) {
    peer.error = "no TLS session";
    return peer;
  }
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) {
    peer.error = "the peer presented no certificate";
    return peer;
  }
  peer.presented = true;
  ReadSubjectAltNames(cert, &peer.uri_sans, &peer.dns_sans);
  for (const std::string& uri : peer.uri_sans) {
    if (absl::StartsWith(uri, "spiffe://")) {
      peer.spiffe_id = uri;
      break;
    }
  }
  // Without SSL_VERIFY_PEER OpenSSL still records a result, but nothing
  // acted on it and the trust may have been empty: report it as unchecked.
  if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) == 0) {
    peer.error = "not verified";
    return peer;
  }
  long result = SSL_get_verify_result(ssl);
  if (result == X509_V_OK) {
    peer.verified = true;
  } else {
    peer.error = X509_verify_cert_error_string(result);
  }
  return peer;
}

bool SanMatches(const PeerIdentity& peer, std::span<const std::string> exact) {
  if (exact.empty()) return true;
  auto listed = [&](const std::string& san) {
    return std::find(exact.begin(), exact.end(), san) != exact.end();
  };
  return std::any_of(peer.uri_sans.begin(), peer.uri_sans.end(), listed) ||
         std::any_of(peer.dns_sans.begin(), peer.dns_sans.end(), listed);
}

std::string SpiffeIdFor(std::string_view trust_domain, std::string_view mesh,
                        std::string_view virtual_node) {
  return absl::StrCat("spiffe://", AbslView(trust_domain), "/ns/",
                      AbslView(mesh), "/vn/", AbslView(virtual_node));
}

}  // namespace nodemesh::tls
