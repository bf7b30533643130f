#include "agent/tls/pem_file.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/tls/openssl_error.h"

namespace nodemesh::tls {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

struct FileClose {
  void operator()(FILE* f) const { std::fclose(f); }
};

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::unique_ptr<FILE, FileClose> f(std::fopen(path.c_str(), "rb"));
  if (f == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("tls: ", path, ": cannot open: ", std::strerror(errno)));
  }
  std::string data;
  char buf[16384];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f.get())) > 0)
    data.append(buf, n);
  if (std::ferror(f.get())) {
    return absl::InternalError(
        absl::StrCat("tls: ", path, ": cannot read: ", std::strerror(errno)));
  }
  return data;
}

// An encrypted key would make OpenSSL prompt on the terminal.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return -1;
}

bool AtEndOfPem() {
  unsigned long code = ERR_peek_last_error();
  return ERR_GET_LIB(code) == ERR_LIB_PEM &&
         ERR_GET_REASON(code) == PEM_R_NO_START_LINE;
}

}  // namespace

absl::StatusOr<std::vector<X509Ptr>> ReadPemCertificates(
    const std::string& path) {
  auto data = ReadWholeFile(path);
  if (!data.ok()) return data.status();
  BioPtr bio(BIO_new_mem_buf(data->data(), static_cast<int>(data->size())));
  if (bio == nullptr) {
    return absl::InternalError(
        absl::StrCat("tls: ", path, ": ", TakeOpenSslErrors()));
  }
  std::vector<X509Ptr> certs;
  while (true) {
    ERR_clear_error();
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
    if (cert == nullptr) {
      if (AtEndOfPem()) {
        ERR_clear_error();
        break;
      }
      return absl::InvalidArgumentError(
          absl::StrCat("tls: ", path, ": certificate ", certs.size() + 1,
                       " is not valid PEM: ", TakeOpenSslErrors()));
    }
    certs.push_back(std::move(cert));
  }
  if (certs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls: ", path,
        ": no PEM certificate (-----BEGIN CERTIFICATE-----) in the file"));
  }
  return certs;
}

absl::StatusOr<PkeyPtr> ReadPemPrivateKey(const std::string& path) {
  auto data = ReadWholeFile(path);
  if (!data.ok()) return data.status();
  BioPtr bio(BIO_new_mem_buf(data->data(), static_cast<int>(data->size())));
  if (bio == nullptr) {
    return absl::InternalError(
        absl::StrCat("tls: ", path, ": ", TakeOpenSslErrors()));
  }
  ERR_clear_error();
  PkeyPtr key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls: ", path,
        ": no usable private key (unencrypted PEM, PKCS#8 or traditional EC "
        "or RSA): ",
        TakeOpenSslErrors()));
  }
  return key;
}

}  // namespace nodemesh::tls
