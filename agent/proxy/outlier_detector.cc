#include "agent/proxy/outlier_detector.h"

#include <algorithm>

namespace nodemesh::proxy {

namespace {
// An interval of 0 would never let errors add up; App Mesh allows it.
constexpr std::chrono::milliseconds kMinInterval(10);
}  // namespace

OutlierPolicy OutlierPolicy::From(const model::OutlierDetection& o) {
  OutlierPolicy p;
  p.max_server_errors =
      static_cast<uint64_t>(std::max<int64_t>(1, o.max_server_errors));
  p.interval =
      std::max(kMinInterval, std::chrono::milliseconds(o.interval.ToMillis()));
  p.base_ejection = std::chrono::milliseconds(
      std::max<int64_t>(0, o.base_ejection_duration.ToMillis()));
  p.max_ejection_percent =
      static_cast<uint32_t>(std::clamp(o.max_ejection_percent, 0, 100));
  return p;
}

OutlierDetector::OutlierDetector(OutlierPolicy policy, Clock::time_point now)
    : policy_(policy),
      interval_end_(now + std::max(kMinInterval, policy.interval)) {}

void OutlierDetector::SetEndpoints(const std::vector<std::string>& keys) {
  std::map<std::string, Endpoint> next;
  for (const std::string& k : keys) {
    auto it = endpoints_.find(k);
    next[k] = it == endpoints_.end() ? Endpoint{} : it->second;
  }
  endpoints_ = std::move(next);
  ejected_ = 0;
  for (const auto& [k, e] : endpoints_) ejected_ += e.ejected ? 1 : 0;
}

size_t OutlierDetector::MaxEjected() const {
  size_t cap = endpoints_.size() * policy_.max_ejection_percent / 100;
  return std::max<size_t>(1, cap);
}

bool OutlierDetector::Report(const std::string& key, uint64_t errors,
                             uint64_t successes, Clock::time_point now) {
  (void)successes;  // counted over the interval; see the class comment
  auto it = endpoints_.find(key);
  if (it == endpoints_.end() || it->second.ejected) return false;
  Endpoint& e = it->second;
  e.errors += errors;
  if (e.errors < policy_.max_server_errors) return false;
  if (ejected_ >= MaxEjected()) return false;
  e.ejected = true;
  ++e.ejections;
  e.until = now + policy_.base_ejection * e.ejections;
  e.errors = 0;
  ++ejected_;
  ++ejections_total_;
  return true;
}

bool OutlierDetector::Advance(Clock::time_point now) {
  bool changed = false;
  for (auto& [k, e] : endpoints_) {
    if (e.ejected && now >= e.until) {
      e.ejected = false;
      e.errors = 0;
      --ejected_;
      changed = true;
    }
  }
  if (now >= interval_end_) {
    for (auto& [k, e] : endpoints_) {
      if (!e.ejected && e.errors == 0 && e.ejections > 0) --e.ejections;
      e.errors = 0;
    }
    interval_end_ = now + std::max(kMinInterval, policy_.interval);
  }
  return changed;
}

bool OutlierDetector::ejected(const std::string& key) const {
  auto it = endpoints_.find(key);
  return it != endpoints_.end() && it->second.ejected;
}

uint32_t OutlierDetector::ejection_count(const std::string& key) const {
  auto it = endpoints_.find(key);
  return it == endpoints_.end() ? 0 : it->second.ejections;
}

bool HealthCheckState::Record(bool success) {
  if (success == healthy_) {
    run_ = 0;
    return false;
  }
  ++run_;
  if (run_ < (healthy_ ? unhealthy_threshold_ : healthy_threshold_))
    return false;
  healthy_ = !healthy_;
  run_ = 0;
  return true;
}

}  // namespace nodemesh::proxy
