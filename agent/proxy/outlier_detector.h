#pragma once

// Endpoint health as the main thread decides it for one cluster: passive
// outlier detection from the workers' reported outcomes, and the
// thresholds of active health checks. Pure: no threads, no sockets; time
// is passed in.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/model/types_common.h"
#include "agent/model/types_virtual_node.h"

namespace nodemesh::proxy {

struct OutlierPolicy {
  uint64_t max_server_errors = 1;
  std::chrono::milliseconds interval{10000};
  std::chrono::milliseconds base_ejection{30000};
  uint32_t max_ejection_percent = 10;

  static OutlierPolicy From(const model::OutlierDetection& o);
  friend bool operator==(const OutlierPolicy&, const OutlierPolicy&) = default;
};

// App Mesh's outlierDetection as Envoy applies it: an endpoint with
// max_server_errors or more server errors (5xx, connect failures, resets)
// within one interval is ejected for base_ejection times the number of
// times it has been ejected. An interval that ends with the endpoint in
// rotation and error-free lowers that multiplier by one (Envoy since
// 1.19). At most max_ejection_percent of the endpoints are out at once,
// rounded down but never below one; an ejection that would pass the cap
// does not happen.
class OutlierDetector {
 public:
  using Clock = std::chrono::steady_clock;

  OutlierDetector(OutlierPolicy policy, Clock::time_point now);

  const OutlierPolicy& policy() const { return policy_; }
  // A changed policy applies from the next report; ejections stand.
  void SetPolicy(const OutlierPolicy& policy) { policy_ = policy; }
  // The cluster's endpoints now (service discovery); the others are
  // forgotten, ejections included.
  void SetEndpoints(const std::vector<std::string>& keys);
  // Outcomes seen by a worker since its last report. True when this
  // report ejected `key`. Reports for unknown or ejected endpoints (answers
  // in flight when it was ejected) are ignored.
  bool Report(const std::string& key, uint64_t errors, uint64_t successes,
              Clock::time_point now);
  // Ends the interval when due and returns the endpoints whose ejection is
  // over; true when any came back.
  bool Advance(Clock::time_point now);

  bool ejected(const std::string& key) const;
  size_t ejected_count() const { return ejected_; }
  size_t size() const { return endpoints_.size(); }
  uint64_t ejections_total() const { return ejections_total_; }
  // The multiplier of the next ejection of `key` minus one (0: none yet).
  uint32_t ejection_count(const std::string& key) const;

 private:
  struct Endpoint {
    uint64_t errors = 0;  // in the current interval
    uint32_t ejections = 0;
    bool ejected = false;
    Clock::time_point until{};
  };
  size_t MaxEjected() const;

  OutlierPolicy policy_;
  std::map<std::string, Endpoint> endpoints_;
  Clock::time_point interval_end_;
  size_t ejected_ = 0;
  uint64_t ejections_total_ = 0;
};

// The thresholds of one endpoint's active health check: it starts healthy
// (so a new endpoint takes traffic at once, as with Envoy's
// ignore_new_hosts_until_first_hc off), turns unhealthy after
// `unhealthy_threshold` consecutive failures and healthy again after
// `healthy_threshold` consecutive successes.
class HealthCheckState {
 public:
  HealthCheckState(int healthy_threshold, int unhealthy_threshold)
      : healthy_threshold_(healthy_threshold),
        unhealthy_threshold_(unhealthy_threshold) {}
  // True when the result flipped the endpoint's health.
  bool Record(bool success);
  bool healthy() const { return healthy_; }

 private:
  int healthy_threshold_;
  int unhealthy_threshold_;
  bool healthy_ = true;
  int run_ = 0;  // consecutive results against the current state
};

}  // namespace nodemesh::proxy
