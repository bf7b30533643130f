#include "agent/tls/identity_store.h"

#include <glog/logging.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/tls/tls_context.h"

namespace nodemesh::tls {

IdentityStore::IdentityStore(const CertificateAuthority* ca,
                             std::chrono::seconds lifetime)
    : IdentityStore(ca, lifetime, [] { return SystemClock::now(); }) {}

IdentityStore::IdentityStore(const CertificateAuthority* ca,
                             std::chrono::seconds lifetime, Clock clock)
    : ca_(ca), lifetime_(lifetime), clock_(std::move(clock)) {}

absl::StatusOr<std::shared_ptr<const IdentityStore::Credentials>>
IdentityStore::MintOne(const std::string& id) const {
  return MintOneAt(id, clock_());
}

absl::StatusOr<std::shared_ptr<const IdentityStore::Credentials>>
IdentityStore::MintOneAt(const std::string& id,
                         SystemClock::time_point now) const {
  auto cert = ca_->Mint(id, lifetime_, now);
  if (!cert.ok()) return cert.status();
  auto creds = std::make_shared<Credentials>();
  creds->spiffe_id = id;
  creds->certificate = std::move(*cert);
  // not_after may be capped by the signing certificate's expiry.
  creds->rotate_at = now + (creds->certificate.not_after - now) / 2;

  ContextOptions options;
  options.certificate = &creds->certificate;
  options.trust = ca_->trust();
  options.require_peer_cert = true;
  auto client = MakeClientContext(options);
  if (!client.ok()) return client.status();
  auto server = MakeServerContext(options);
  if (!server.ok()) return server.status();
  creds->client = std::move(*client);
  creds->server = std::move(*server);
  return std::shared_ptr<const Credentials>(std::move(creds));
}

absl::Status IdentityStore::SetIdentities(
    std::span<const std::string> spiffe_ids) {
  absl::flat_hash_set<std::string> wanted(spiffe_ids.begin(), spiffe_ids.end());
  std::vector<std::string> missing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::erase_if(held_, [&](const auto& entry) {
      return !wanted.contains(entry.first);
    });
    for (const std::string& id : wanted) {
      if (!held_.contains(id)) missing.push_back(id);
    }
  }
  // Minting (a key generation and a signature each) runs unlocked so that
  // workers opening connections do not wait for it.
  int failures = 0;
  absl::Status first_error;
  for (const std::string& id : missing) {
    auto creds = MintOne(id);
    if (!creds.ok()) {
      if (failures++ == 0) first_error = creds.status();
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    held_.insert_or_assign(id, std::move(*creds));
    LOG(INFO) << "tls: minted a certificate for " << id;
  }
  if (failures == 0) return absl::OkStatus();
  if (failures == 1) return first_error;
  return absl::Status(
      first_error.code(),
      absl::StrCat(failures, " identities could not be minted; the first: ",
                   first_error.message()));
}

int IdentityStore::RotateDue(SystemClock::time_point now) {
  std::vector<std::string> due;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, creds] : held_) {
      if (now >= creds->rotate_at) due.push_back(id);
    }
  }
  int rotated = 0;
  for (const std::string& id : due) {
    auto creds = MintOneAt(id, now);
    if (!creds.ok()) {
      LOG(ERROR) << "tls: rotating the certificate of " << id
                 << " failed (the current one is kept, retried later): "
                 << creds.status().message();
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = held_.find(id);
    if (it == held_.end()) continue;  // dropped meanwhile
    it->second = std::move(*creds);
    ++rotations_;
    ++rotated;
  }
  if (rotated > 0) LOG(INFO) << "tls: rotated " << rotated << " certificates";
  return rotated;
}

std::shared_ptr<const IdentityStore::Credentials> IdentityStore::Get(
    std::string_view spiffe_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = held_.find(absl::string_view(spiffe_id.data(), spiffe_id.size()));
  if (it == held_.end()) return nullptr;
  return it->second;
}

std::vector<std::shared_ptr<const IdentityStore::Credentials>>
IdentityStore::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const Credentials>> out;
  out.reserve(held_.size());
  for (const auto& [id, creds] : held_) out.push_back(creds);
  return out;
}

uint64_t IdentityStore::rotations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rotations_;
}

}  // namespace nodemesh::tls
