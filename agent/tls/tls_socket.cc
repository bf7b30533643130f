#include "agent/tls/tls_socket.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "agent/tls/openssl_error.h"
#include "agent/tls/socket_bio.h"

namespace nodemesh::tls {

TlsSocket::TlsSocket(SSL_CTX* ctx, int fd, bool server,
                     const std::string& sni) {
  ERR_clear_error();
  ssl_ = SSL_new(ctx);
  if (ssl_ == nullptr) {
    error_ = absl::StrCat("SSL_new: ", TakeOpenSslErrors());
    failed_ = true;
    return;
  }
  BIO* bio = NewSocketBio(fd);
  if (bio == nullptr) {
    error_ = absl::StrCat("socket BIO: ", TakeOpenSslErrors());
    failed_ = true;
    return;
  }
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways; the SSL owns it
  if (server) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  if (!sni.empty() && SSL_set_tlsext_host_name(ssl_, sni.c_str()) != 1) {
    error_ = absl::StrCat("server name \"", sni, "\": ", TakeOpenSslErrors());
    failed_ = true;
  }
}

TlsSocket::~TlsSocket() {
  if (ssl_ != nullptr) SSL_free(ssl_);  // frees the BIO, not the socket
}

TlsSocket::Result TlsSocket::Handshake() {
  if (done_) return Result::kOk;
  if (failed_) return Result::kError;
  // OpenSSL requires an empty queue before the call for SSL_get_error to
  // be right; errno is read for SSL_ERROR_SYSCALL.
  ERR_clear_error();
  errno = 0;
  int ret = SSL_do_handshake(ssl_);
  if (ret == 1) {
    done_ = true;
    return Result::kOk;
  }
  return Map(ret);
}

TlsSocket::Result TlsSocket::Read(char* buf, size_t size, size_t* n) {
  *n = 0;
  if (failed_) return Result::kError;
  if (size == 0) return Result::kOk;
  ERR_clear_error();
  errno = 0;
  int ret = SSL_read_ex(ssl_, buf, size, n);
  if (ret == 1) {
    done_ = true;
    return Result::kOk;
  }
  *n = 0;
  return Map(ret);
}

TlsSocket::Result TlsSocket::Write(const char* data, size_t size, size_t* n) {
  *n = 0;
  if (failed_) return Result::kError;
  if (size == 0) return Result::kOk;
  ERR_clear_error();
  errno = 0;
  int ret = SSL_write_ex(ssl_, data, size, n);
  if (ret == 1) {
    done_ = true;
    return Result::kOk;
  }
  *n = 0;
  return Map(ret);
}

void TlsSocket::Shutdown() {
  if (ssl_ == nullptr || failed_ || !SSL_is_init_finished(ssl_)) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // queues and tries to send close_notify; no waiting
  ERR_clear_error();
}

std::string_view TlsSocket::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  if (ssl_ != nullptr) SSL_get0_alpn_selected(ssl_, &data, &len);
  if (data == nullptr) return {};
  return std::string_view(reinterpret_cast<const char*>(data), len);
}

TlsSocket::Result TlsSocket::Map(int ret) {
  int sys_errno = errno;
  int code = SSL_get_error(ssl_, ret);
  switch (code) {
    case SSL_ERROR_WANT_READ:
      return Result::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Result::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      error_ = "the peer closed the TLS session (close_notify)";
      return Result::kClosed;
    default:
      break;
  }
  failed_ = true;
  unsigned long first = ERR_peek_error();
  bool eof = (code == SSL_ERROR_SYSCALL && first == 0 && sys_errno == 0) ||
             (code == SSL_ERROR_SSL && ERR_GET_LIB(first) == ERR_LIB_SSL &&
              ERR_GET_REASON(first) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
  if (eof) {
    ERR_clear_error();
    // The tunnel tells a cut connection by "unexpected eof".
    if (!done_) {
      error_ =
          "unexpected eof: the peer closed the connection during the "
          "TLS handshake";
      return Result::kError;
    }
    error_ =
        "unexpected eof: the peer closed the connection without "
        "close_notify";
    return Result::kClosed;
  }
  if (code == SSL_ERROR_SYSCALL && first == 0) {
    error_ = absl::StrCat("socket: ", std::strerror(sys_errno));
    return Result::kError;
  }
  error_ = TakeOpenSslErrors();
  if ((SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) != 0) {
    long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      absl::StrAppend(&error_, " (peer certificate: ",
                      X509_verify_cert_error_string(verify), ")");
    }
  }
  return Result::kError;
}

}  // namespace nodemesh::tls
