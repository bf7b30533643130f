#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "agent/compile/service_map.h"
#include "agent/datapath/datapath_maps.h"

namespace nodemesh::compile {

// Writes ServiceMapContents into the pinned maps as a diff against what it
// wrote last, so an unchanged entry is never touched (connect() in flight
// never sees it vanish). The first Apply reconciles with whatever an earlier
// agent left pinned: new entries go in first, then stale ones go out.
class ServiceMapWriter {
 public:
  explicit ServiceMapWriter(datapath::DatapathMaps* maps) : maps_(maps) {}

  absl::Status Apply(const ServiceMapContents& next);

  struct Counts {
    size_t services = 0, direct = 0, workloads = 0, policy = 0;
    uint64_t applies = 0, errors = 0;
  };
  const Counts& counts() const { return counts_; }

 private:
  // Removes what the maps hold beyond what this writer wrote.
  absl::Status Reconcile();

  datapath::DatapathMaps* maps_;
  bool reconciled_ = false;
  // What the maps hold, as written: key bytes -> entry.
  std::map<std::string, ServiceMapEntry> services_;
  std::map<uint64_t, nm_workload> workloads_;
  std::map<std::pair<uint32_t, uint32_t>, nm_policy_verdict> policy_;
  Counts counts_;
};

}  // namespace nodemesh::compile
