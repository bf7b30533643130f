#pragma once

// Who a TLS peer is: the SANs of the certificate it proved, and the
// SPIFFE IDs the mesh gives its virtual nodes.

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nodemesh::tls {

// What the peer proved in a finished handshake.
struct PeerIdentity {
  bool presented = false;  // the peer sent a certificate
  bool verified = false;   // its chain verified against our trust
  std::string error;       // why not, when !verified (X509 verify string)
  std::vector<std::string> uri_sans;
  std::vector<std::string> dns_sans;
  // The first URI SAN starting with spiffe://, or empty.
  std::string spiffe_id;
};
// A context made without trust verifies nothing: verified=false,
// error="not verified".
PeerIdentity PeerOf(const SSL* ssl);

// App Mesh subjectAlternativeNames.match.exact: true when any of the
// peer's SANs (URI or DNS) equals any of `exact` (byte for byte); true when
// `exact` is empty. It does not look at `verified`: the caller does.
bool SanMatches(const PeerIdentity& peer, std::span<const std::string> exact);

// spiffe://<trust_domain>/ns/<mesh>/vn/<virtual_node>
std::string SpiffeIdFor(std::string_view trust_domain, std::string_view mesh,
                        std::string_view virtual_node);

// The URI and DNS subjectAltNames of `cert`, in certificate order.
void ReadSubjectAltNames(const X509* cert, std::vector<std::string>* uri_sans,
                         std::vector<std::string>* dns_sans);

}  // namespace nodemesh::tls
