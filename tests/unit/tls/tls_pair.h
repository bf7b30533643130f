#pragma once

// Two TlsSockets over a non-blocking AF_UNIX socketpair, driven in turn
// from one thread: no network, no threads, no waiting.

#include <memory>
#include <string>

#include "agent/tls/tls_socket.h"

namespace nodemesh::tls::testing {

class TlsPair {
 public:
  using Result = TlsSocket::Result;

  TlsPair(SSL_CTX* client_ctx, SSL_CTX* server_ctx,
          const std::string& sni = "");
  ~TlsPair();
  TlsPair(const TlsPair&) = delete;
  TlsPair& operator=(const TlsPair&) = delete;

  // Drives both handshakes until neither side waits any more (a side that
  // is done while its peer refused it stays kOk: TLS 1.3 clients finish
  // first); the last result of each side.
  struct Outcome {
    Result client;
    Result server;
  };
  Outcome Handshake();

  // Sends `to_server` and `to_client` at once and reads until each side
  // has the other's bytes (or a side fails: false).
  bool Exchange(const std::string& to_server, const std::string& to_client,
                std::string* server_got, std::string* client_got);

  // Reads on one side until data, close or error (no data is expected).
  Result ReadClient(std::string* got = nullptr);
  Result ReadServer(std::string* got = nullptr);

  // Closes the server's end of the socket; what the client sent and the
  // server has not read is read first, so the client sees EOF, not a reset.
  void CloseServerFd();

  TlsSocket& client() { return *client_; }
  TlsSocket& server() { return *server_; }

 private:
  Result ReadSome(TlsSocket& s, std::string* got);
  int client_fd_ = -1;
  int server_fd_ = -1;
  std::unique_ptr<TlsSocket> client_;
  std::unique_ptr<TlsSocket> server_;
};

}  // namespace nodemesh::tls::testing
