#pragma once

// Mutual TLS for the tunnel between nodes: certificates (loaded from files
// or minted from the node's intermediate CA), SSL contexts, peer identities
// and non-blocking TLS over a socket. OpenSSL 3; TLS 1.3 only.
//
// SPEC FOR THE IMPLEMENTER (remove this paragraph when done): the names and
// signatures below are what the tunnel code (agent/tunnel) is written
// against; keep them. Split the implementation over certificate.cc,
// identity.cc, tls_context.cc, tls_socket.cc, identity_store.cc (one
// concept per file); split this header the same way if it grows, keeping
// tls.h as the one include that pulls them in.

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
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

// The node's intermediate CA (--signing_cert, --signing_key) under the
// mesh's roots (--ca_bundle). The signing cert file may hold further
// intermediates after the first certificate; they join every minted chain.
class CertificateAuthority {
 public:
  static absl::StatusOr<std::unique_ptr<CertificateAuthority>> Load(
      const std::string& ca_bundle, const std::string& signing_cert,
      const std::string& signing_key);

  // A new leaf: ECDSA P-256 key, SAN URI `spiffe_id` (and nothing else),
  // valid from a minute ago for `lifetime` (capped at the signing cert's
  // own expiry), digitalSignature, serverAuth + clientAuth, signed by the
  // intermediate; `chain` = the intermediate(s).
  absl::StatusOr<Certificate> Mint(std::string_view spiffe_id,
                                   std::chrono::seconds lifetime) const;

  // The roots: a new reference to the same store for each caller.
  X509_STORE* trust() const { return trust_.get(); }
  // The PEM of the CA bundle (for contexts that need their own store).
  const std::string& trust_path() const { return trust_path_; }

 private:
  CertificateAuthority() = default;
  StorePtr trust_;
  std::string trust_path_;
  X509Ptr signing_cert_;
  PkeyPtr signing_key_;
  std::vector<X509Ptr> extra_chain_;
};

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
PeerIdentity PeerOf(const SSL* ssl);

// App Mesh subjectAlternativeNames.match.exact: true when any of the
// peer's SANs (URI or DNS) equals any of `exact`; true when `exact` is
// empty.
bool SanMatches(const PeerIdentity& peer, std::span<const std::string> exact);

// spiffe://<trust_domain>/ns/<mesh>/vn/<virtual_node>
std::string SpiffeIdFor(std::string_view trust_domain, std::string_view mesh,
                        std::string_view virtual_node);

// Contexts: TLS 1.3 only, ALPN `alpn` (wire format of one protocol, e.g.
// "h2"; the tunnel speaks only HTTP/2), session tickets off. Verification
// is done by the context when `trust` is set (the chain must verify; a
// peer without a certificate fails the handshake when `require_peer_cert`);
// the caller then reads PeerOf for SAN checks and authorization.
struct ContextOptions {
  const Certificate* certificate = nullptr;  // ours; null: present none
  X509_STORE* trust = nullptr;               // peers' roots; null: no check
  bool require_peer_cert = true;
  std::string alpn = "h2";
};
absl::StatusOr<SslCtxPtr> MakeServerContext(const ContextOptions& options);
absl::StatusOr<SslCtxPtr> MakeClientContext(const ContextOptions& options);

// A server context that picks another context by the client's SNI (the
// tunnel's destination identity): `select` returns the context to switch to
// or null to keep the default. Set on a server context made above.
void SetServerNameSelector(
    SSL_CTX* ctx, std::function<SSL_CTX*(std::string_view sni)>* select);

// Non-blocking TLS over a connected (or connecting) stream socket the
// caller owns and polls. Every call returns at once.
class TlsSocket {
 public:
  enum class Result { kOk, kWantRead, kWantWrite, kClosed, kError };

  // `sni`: the server name a client sends (empty: none).
  TlsSocket(SSL_CTX* ctx, int fd, bool server, const std::string& sni = "");
  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  // Drives the handshake: kOk once done (then PeerOf(ssl()) is valid).
  Result Handshake();
  bool handshake_done() const { return done_; }
  // Plaintext in and out. Read: bytes into `buf` (*n), or kWantRead,
  // kClosed (close_notify or EOF) or kError. Write: *n of `data` taken
  // (all of it or nothing: partial writes are enabled but retried with
  // the same data by OpenSSL's rules, so the caller keeps the rest).
  Result Read(char* buf, size_t size, size_t* n);
  Result Write(const char* data, size_t size, size_t* n);
  // Sends close_notify (best effort).
  void Shutdown();
  // The last error, one line (OpenSSL error queue or verify result).
  const std::string& error() const { return error_; }
  SSL* ssl() const { return ssl_; }
  // The negotiated ALPN protocol, empty if none.
  std::string_view alpn() const;

 private:
  Result Map(int ret);
  SSL* ssl_ = nullptr;
  bool done_ = false;
  std::string error_;
};

// The minted certificates of this node's identities, rotated at half their
// life. Thread-safe: the control thread sets identities and rotates,
// workers read contexts when they open a tunnel connection or accept one
// (not per request).
class IdentityStore {
 public:
  struct Credentials {
    std::string spiffe_id;
    Certificate certificate;
    SslCtxPtr client;  // presents the certificate, verifies the server
    SslCtxPtr server;  // presents it, requires and verifies a client cert
  };

  IdentityStore(const CertificateAuthority* ca, std::chrono::seconds lifetime);

  // Mints for ids not held yet; forgets ids not listed. Errors (a failed
  // mint) leave the other identities in place.
  absl::Status SetIdentities(std::span<const std::string> spiffe_ids);
  // Re-mints every identity at or past half its life; returns how many.
  // Connections made with the old contexts keep them (SSL_CTX is
  // reference-counted): rotation drops nothing.
  int RotateDue(SystemClock::time_point now);
  // The current credentials of `spiffe_id`, or null.
  std::shared_ptr<const Credentials> Get(std::string_view spiffe_id) const;
  // Every identity held (for /certs and tests).
  std::vector<std::shared_ptr<const Credentials>> All() const;
  uint64_t rotations() const;

 private:
  absl::StatusOr<std::shared_ptr<const Credentials>> MintOne(
      const std::string& id) const;
  const CertificateAuthority* ca_;
  const std::chrono::seconds lifetime_;
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const Credentials>> held_;
  uint64_t rotations_ = 0;
};

}  // namespace nodemesh::tls
