#include "agent/tls/socket_bio.h"

#include <openssl/bio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>

namespace nodemesh::tls {
namespace {

struct SocketState {
  int fd;
  bool eof;  // recv returned 0: SSL reads BIO_eof to tell EOF from errors
};

SocketState* StateOf(BIO* bio) {
  return static_cast<SocketState*>(BIO_get_data(bio));
}

// The errors OpenSSL's own socket BIO retries (BIO_sock_should_retry).
bool Retryable(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR ||
         err == EINPROGRESS || err == EALREADY || err == ENOTCONN;
}

int SocketWrite(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  ssize_t n =
      ::send(StateOf(bio)->fd, data, static_cast<size_t>(size), MSG_NOSIGNAL);
  if (n < 0 && Retryable(errno)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

int SocketRead(BIO* bio, char* buf, int size) {
  if (buf == nullptr) return 0;
  BIO_clear_retry_flags(bio);
  SocketState* state = StateOf(bio);
  ssize_t n = ::recv(state->fd, buf, static_cast<size_t>(size), 0);
  if (n == 0) state->eof = true;
  if (n < 0 && Retryable(errno)) BIO_set_retry_read(bio);
  return static_cast<int>(n);
}

long SocketCtrl(BIO* bio, int cmd, long /*num*/, void* ptr) {
  SocketState* state = StateOf(bio);
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_EOF:
      return state != nullptr && state->eof ? 1 : 0;
    case BIO_C_GET_FD:
      if (state == nullptr) return -1;
      if (ptr != nullptr) *static_cast<int*>(ptr) = state->fd;
      return state->fd;
    default:
      return 0;
  }
}

int SocketCreate(BIO* bio) {
  BIO_set_data(bio, nullptr);
  BIO_set_init(bio, 0);
  return 1;
}

int SocketDestroy(BIO* bio) {
  if (bio == nullptr) return 0;
  delete StateOf(bio);
  BIO_set_data(bio, nullptr);
  return 1;
}

BIO_METHOD* MakeMethod() {
  BIO_METHOD* method = BIO_meth_new(
      BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
      "nodemesh socket");
  if (method == nullptr) return nullptr;
  BIO_meth_set_write(method, SocketWrite);
  BIO_meth_set_read(method, SocketRead);
  BIO_meth_set_ctrl(method, SocketCtrl);
  BIO_meth_set_create(method, SocketCreate);
  BIO_meth_set_destroy(method, SocketDestroy);
  return method;
}

}  // namespace

BIO* NewSocketBio(int fd) {
  // Made once, kept for the process's life (thread-safe static init).
  static BIO_METHOD* const method = MakeMethod();
  if (method == nullptr) return nullptr;
  BIO* bio = BIO_new(method);
  if (bio == nullptr) return nullptr;
  BIO_set_data(bio, new SocketState{fd, false});
  BIO_set_init(bio, 1);
  return bio;
}

}  // namespace nodemesh::tls
