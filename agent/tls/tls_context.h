#pragma once

// SSL contexts for the tunnel: TLS 1.3 only, mutual verification, ALPN.

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/tls/certificate.h"

namespace nodemesh::tls {

// Contexts: TLS 1.3 only, ALPN `alpn` (one protocol name, e.g. "h2"; the
// tunnel speaks only HTTP/2; empty: no ALPN), session tickets and the
// session cache off. A server refuses a client that does not offer `alpn`
// (no_application_protocol alert); a client offers it. Verification is
// done by the context when `trust` is set (the chain must verify; a peer
// without a certificate fails the handshake when `require_peer_cert`;
// no hostname check); the caller then reads PeerOf for SAN checks and
// authorization. Without `trust` a server asks for no client certificate.
struct ContextOptions {
  const Certificate* certificate = nullptr;  // ours; null: present none
  X509_STORE* trust = nullptr;               // peers' roots; null: no check
  bool require_peer_cert = true;
  std::string alpn = "h2";
  // A listener for clients outside the mesh (a VirtualGateway's): ALPN
  // from this list in server preference order (overrides `alpn`), a
  // client offering no ALPN is served (HTTP/1.1), and TLS 1.2 is allowed.
  std::vector<std::string> alpn_any_of;
};
absl::StatusOr<SslCtxPtr> MakeServerContext(const ContextOptions& options);
absl::StatusOr<SslCtxPtr> MakeClientContext(const ContextOptions& options);

// A server context that picks another context by the client's SNI (the
// tunnel's destination identity): `select` returns the context to switch to
// or null to keep the default. Set on a server context made above. The
// handshake then presents the selected context's certificate and verifies
// the client with its verify mode and trust. `select` is not owned and
// must outlive `ctx`; it runs on the thread driving the handshake.
void SetServerNameSelector(
    SSL_CTX* ctx, std::function<SSL_CTX*(std::string_view sni)>* select);

}  // namespace nodemesh::tls
