#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace nodemesh::dns {

// One virtual service's address as workloads dial it, and the number the
// datapath keys it by.
struct Vip {
  uint32_t address = 0;     // IPv4, host order
  uint32_t service_id = 0;  // > 0; nm_services/nm_policy/nm_counters key
  std::string ToString() const;
};

// Hands out VIPs from --service_cidr, one per virtual service ("mesh/name"),
// and keeps them in <state_dir>/vips.json so that a service keeps its
// address across agent restarts (resolver caches in workloads hold it). An
// entry outlives its service; it is reclaimed only when the range runs out.
class VipAllocator {
 public:
  // `cidr`: "127.128.0.0/16" (IPv4 only).
  static absl::StatusOr<VipAllocator> Create(const std::string& cidr,
                                             const std::string& state_dir);

  // Makes sure every key in `services` has a VIP; returns true when the
  // table changed (then it was persisted).
  bool Sync(const std::set<std::string>& services);
  // Null when the service has none.
  const Vip* Find(const std::string& key) const;
  // The "mesh/name" that holds `service_id`; null when none does.
  const std::string* KeyOf(uint32_t service_id) const;
  const std::map<std::string, Vip>& vips() const { return vips_; }

 private:
  VipAllocator() = default;
  absl::Status Load();
  absl::Status Save() const;
  bool InRange(uint32_t a) const { return (a & mask_) == base_; }
  void IndexKeys();  // keys_ from vips_

  std::string state_file_;
  std::string cidr_;
  uint32_t base_ = 0, mask_ = 0;
  std::map<std::string, Vip> vips_;
  std::map<uint32_t, std::string> keys_;  // service id -> key, of vips_
};

}  // namespace nodemesh::dns
