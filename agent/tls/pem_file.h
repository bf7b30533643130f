#pragma once

// PEM files of certificates and private keys. Errors name the file.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/tls/certificate.h"

namespace nodemesh::tls {

// Every certificate in the file, in file order; at least one.
absl::StatusOr<std::vector<X509Ptr>> ReadPemCertificates(
    const std::string& path);

// The first private key in the file: PKCS#8 or traditional (EC, RSA),
// unencrypted.
absl::StatusOr<PkeyPtr> ReadPemPrivateKey(const std::string& path);

}  // namespace nodemesh::tls
