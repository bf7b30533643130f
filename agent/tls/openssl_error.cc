#include "agent/tls/openssl_error.h"

#include <openssl/err.h>

#include <string>

namespace nodemesh::tls {

std::string TakeOpenSslErrors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  if (out.empty()) out = "no detail from OpenSSL";
  return out;
}

}  // namespace nodemesh::tls
