#pragma once

// The minted certificates of this node's identities.

#include <chrono>
#include <cstdint>
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
#include "agent/tls/certificate.h"
#include "agent/tls/certificate_authority.h"

namespace nodemesh::tls {

// The minted certificates of this node's identities, rotated at half their
// life. Thread-safe: the control thread sets identities and rotates,
// workers read contexts when they open a tunnel connection or accept one
// (not per request). Minting runs outside the lock.
class IdentityStore {
 public:
  struct Credentials {
    std::string spiffe_id;
    Certificate certificate;
    SslCtxPtr client;  // presents the certificate, verifies the server
    SslCtxPtr server;  // presents it, requires and verifies a client cert
    // Half the life: from the minting time to not_after.
    SystemClock::time_point rotate_at;
  };
  using Clock = std::function<SystemClock::time_point()>;

  IdentityStore(const CertificateAuthority* ca, std::chrono::seconds lifetime);
  // `clock`: the minting time of SetIdentities (tests).
  IdentityStore(const CertificateAuthority* ca, std::chrono::seconds lifetime,
                Clock clock);

  // Mints for ids not held yet; forgets ids not listed. Errors (a failed
  // mint) leave the other identities in place.
  absl::Status SetIdentities(std::span<const std::string> spiffe_ids);
  // Re-mints (as of `now`) every identity at or past half its life;
  // returns how many. A failed mint keeps the old credentials and is
  // retried by the next call. Connections made with the old contexts keep
  // them (SSL_CTX is reference-counted): rotation drops nothing.
  int RotateDue(SystemClock::time_point now);
  // The current credentials of `spiffe_id`, or null.
  std::shared_ptr<const Credentials> Get(std::string_view spiffe_id) const;
  // Every identity held (for /certs and tests).
  std::vector<std::shared_ptr<const Credentials>> All() const;
  uint64_t rotations() const;

 private:
  absl::StatusOr<std::shared_ptr<const Credentials>> MintOne(
      const std::string& id) const;
  absl::StatusOr<std::shared_ptr<const Credentials>> MintOneAt(
      const std::string& id, SystemClock::time_point now) const;
  const CertificateAuthority* ca_;
  const std::chrono::seconds lifetime_;
  const Clock clock_;
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const Credentials>> held_;
  uint64_t rotations_ = 0;
};

}  // namespace nodemesh::tls
