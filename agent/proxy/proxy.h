#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/compile/proxy_config.h"
#include "agent/model/snapshot.h"
#include "agent/net/event_loop.h"
#include "agent/proxy/endpoint_resolver.h"
#include "agent/proxy/health_checker.h"
#include "agent/proxy/outlier_detector.h"
#include "agent/proxy/worker.h"
#include "agent/stats/prometheus_text.h"
#include "agent/workload/workload_registry.h"
#include "nlohmann/json.hpp"

namespace nodemesh::proxy {

struct ProxyOptions {
  int workers = 1;
  WorkerOptions worker;
  compile::CompileOptions compile;
};

// The node proxy as the main thread sees it: compiles each model snapshot,
// keeps the `dns` endpoints resolved, publishes ProxySnapshots to the
// workers, and merges their stats for the admin endpoints.
class Proxy {
 public:
  Proxy(net::EventLoop* main_loop, ProxyOptions options);
  ~Proxy();

  // The workloads whose endpoints and names the proxy serves (main thread;
  // outlives the proxy). Call before Start; WorkloadsChanged() after each
  // change.
  void SetWorkloads(const workload::WorkloadRegistry* registry) {
    registry_ = registry;
  }
  void WorkloadsChanged() { Republish(); }
  // The cross-node tables (main thread): published with the endpoints.
  void SetTunnel(std::shared_ptr<const compile::TunnelConfig> tunnel) {
    tunnel_ = std::move(tunnel);
    Republish();
  }

  absl::Status Start(const model::Snapshot& first);
  // The network namespaces of pod-style workloads: in each, every worker
  // gets an outbound listener on the namespace's loopback (connect4
  // redirects there). Namespaces that left the set are closed.
  void SetPodNamespaces(const std::set<std::string>& paths);
  // A new model snapshot (main thread).
  void Update(const model::Snapshot& snapshot);
  void Drain();
  void Stop();
  size_t open_connections() const;

  WorkerStats CollectStats() const;
  void RenderMetrics(stats::PrometheusText* out) const;
  nlohmann::json StatsJson() const;
  nlohmann::json ClustersJson() const;
  // The compiled route tables in the order requests are matched.
  nlohmann::json RoutesJson() const;
  const std::vector<std::string>& compile_warnings() const { return warnings_; }
  // The tables compiled from the last snapshot (main thread).
  const std::shared_ptr<const compile::ProxyConfig>& config() const {
    return config_;
  }

 private:
  // Outlier detection and health checks of one cluster, kept by its name
  // across recompiles.
  struct ClusterHealth {
    std::unique_ptr<OutlierDetector> outlier;
    std::unique_ptr<HealthChecker> checker;
    uint64_t ejections_total = 0;               // of detectors since replaced
    uint64_t checks_ok = 0, checks_failed = 0;  // of checkers replaced
  };
  enum class EndpointHealth { kHealthy, kEjected, kUnhealthy };
  void Republish();
  // Brings the clusters' detectors and checkers in line with the config
  // and the endpoints of `snap`, and fills snap->excluded.
  void SyncHealth(ProxySnapshot* snap);
  EndpointHealth HealthOf(const std::string& cluster,
                          const std::string& endpoint) const;
  void OnOutcomes(const OutcomeReport& report);
  void OnHealthTimer();
  // Republish later, from a fresh stack (checker callbacks).
  void RepublishSoon();

  net::EventLoop* main_loop_;
  ProxyOptions options_;
  compile::LabelInterner labels_;
  std::shared_ptr<const compile::ProxyConfig> config_;
  std::vector<DnsQuery> queries_;  // by cluster index
  std::shared_ptr<const compile::TunnelConfig> tunnel_;
  std::shared_ptr<const ProxySnapshot> published_;
  std::vector<std::string> warnings_;
  std::unique_ptr<EndpointResolver> resolver_;
  std::vector<std::unique_ptr<Worker>> workers_;
  const workload::WorkloadRegistry* registry_ = nullptr;
  // Source names for labels; never forgotten, so workers' counters may
  // hold pointers into it (std::set nodes do not move).
  std::set<std::string> source_names_;
  std::set<std::string> pod_netns_;
  std::map<std::string, ClusterHealth> health_;  // by cluster name
  net::EventLoop::TimerId health_timer_ = net::EventLoop::kInvalidTimer;
  bool republish_pending_ = false;
  // Closures posted to the main loop hold a weak reference: the proxy may
  // be gone when they run.
  std::shared_ptr<Proxy*> self_ = std::make_shared<Proxy*>(this);
};

}  // namespace nodemesh::proxy
