#include "tests/unit/tls/tls_pair.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>

namespace nodemesh::tls::testing {

TlsPair::TlsPair(SSL_CTX* client_ctx, SSL_CTX* server_ctx,
                 const std::string& sni) {
  int fds[2];
  EXPECT_EQ(
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds),
      0);
  client_fd_ = fds[0];
  server_fd_ = fds[1];
  client_ = std::make_unique<TlsSocket>(client_ctx, client_fd_, false, sni);
  server_ = std::make_unique<TlsSocket>(server_ctx, server_fd_, true);
}

TlsPair::~TlsPair() {
  client_.reset();
  server_.reset();
  if (client_fd_ >= 0) close(client_fd_);
  if (server_fd_ >= 0) close(server_fd_);
}

void TlsPair::CloseServerFd() {
  char buf[16384];
  while (recv(server_fd_, buf, sizeof(buf), 0) > 0) {
  }
  close(server_fd_);
  server_fd_ = -1;
}

TlsPair::Outcome TlsPair::Handshake() {
  Outcome out{Result::kWantWrite, Result::kWantRead};
  auto waiting = [](Result r) {
    return r == Result::kWantRead || r == Result::kWantWrite;
  };
  for (int i = 0; i < 50; ++i) {
    if (waiting(out.client)) out.client = client_->Handshake();
    if (waiting(out.server)) out.server = server_->Handshake();
    // After one side fails the other goes on: it reads the alert.
    if (!waiting(out.client) && !waiting(out.server)) break;
  }
  return out;
}

TlsPair::Result TlsPair::ReadSome(TlsSocket& s, std::string* got) {
  char buf[16384];
  while (true) {
    size_t n = 0;
    Result r = s.Read(buf, sizeof(buf), &n);
    if (r != Result::kOk) return r;
    if (got != nullptr) got->append(buf, n);
  }
}

TlsPair::Result TlsPair::ReadClient(std::string* got) {
  Result r = Result::kWantRead;
  for (int i = 0; i < 20 && r == Result::kWantRead; ++i) {
    server_->Handshake();  // lets the server answer if it must
    r = ReadSome(*client_, got);
  }
  return r;
}

TlsPair::Result TlsPair::ReadServer(std::string* got) {
  Result r = Result::kWantRead;
  for (int i = 0; i < 20 && r == Result::kWantRead; ++i) {
    client_->Handshake();
    r = ReadSome(*server_, got);
  }
  return r;
}

bool TlsPair::Exchange(const std::string& to_server,
                       const std::string& to_client, std::string* server_got,
                       std::string* client_got) {
  constexpr size_t kChunk = 64 * 1024;
  size_t to_server_off = 0;
  size_t to_client_off = 0;
  auto pump = [&](TlsSocket& s, const std::string& data, size_t* off) {
    while (*off < data.size()) {
      size_t n = 0;
      Result r =
          s.Write(data.data() + *off, std::min(kChunk, data.size() - *off), &n);
      if (r != Result::kOk) return r;
      *off += n;
    }
    return Result::kOk;
  };
  auto ok = [](Result r) {
    return r == Result::kOk || r == Result::kWantRead ||
           r == Result::kWantWrite;
  };
  for (int i = 0; i < 100000; ++i) {
    if (!ok(pump(*client_, to_server, &to_server_off))) return false;
    if (!ok(pump(*server_, to_client, &to_client_off))) return false;
    if (!ok(ReadSome(*server_, server_got))) return false;
    if (!ok(ReadSome(*client_, client_got))) return false;
    if (server_got->size() >= to_server.size() &&
        client_got->size() >= to_client.size()) {
      return true;
    }
  }
  return false;
}

}  // namespace nodemesh::tls::testing
