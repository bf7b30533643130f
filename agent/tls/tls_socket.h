#pragma once

// Non-blocking TLS over a socket the caller owns and polls.

#include <openssl/ssl.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace nodemesh::tls {

// Non-blocking TLS over a connected (or connecting) stream socket the
// caller owns and polls. Every call returns at once. The socket is written
// with send(MSG_NOSIGNAL): a peer that went away never raises SIGPIPE.
class TlsSocket {
 public:
  enum class Result { kOk, kWantRead, kWantWrite, kClosed, kError };

  // `sni`: the server name a client sends (empty: none).
  TlsSocket(SSL_CTX* ctx, int fd, bool server, const std::string& sni = "");
  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  // Drives the handshake: kOk once done (then PeerOf(ssl()) is valid).
  // In TLS 1.3 a client is done before the server has judged its
  // certificate: a refusal then arrives as kError from the first Read.
  Result Handshake();
  bool handshake_done() const { return done_; }
  // Plaintext in and out. Read: bytes into `buf` (*n), or kWantRead,
  // kClosed (close_notify or EOF) or kError. OpenSSL may hold decrypted
  // bytes the socket no longer shows: read until kWantRead before polling.
  // Write: *n of `data` taken, possibly fewer than `size` (partial writes
  // are enabled): the caller keeps the rest. On kWantWrite (or kWantRead)
  // nothing is taken, and the next Write must offer the same bytes again
  // (the buffer may move: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
  Result Read(char* buf, size_t size, size_t* n);
  Result Write(const char* data, size_t size, size_t* n);
  // Sends close_notify (best effort; nothing after a fatal error).
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
  bool failed_ = false;  // a fatal error: OpenSSL forbids SSL_shutdown
  std::string error_;
};

}  // namespace nodemesh::tls
