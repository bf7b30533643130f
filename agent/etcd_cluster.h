#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/agent_config.h"
#include "agent/etcd/etcd_client.h"
#include "agent/etcd/etcd_registrar.h"
#include "agent/etcd/etcd_watcher.h"
#include "agent/model/model_source.h"
#include "agent/net/event_loop.h"
#include "agent/node_controller.h"
#include "agent/stats/prometheus_text.h"
#include "nlohmann/json.hpp"

namespace nodemesh {

// The agent in cluster mode (--etcd_endpoints): everything the cluster
// shares lives in etcd under --etcd_prefix, and this class is the one place
// that knows the key layout:
//
//   <prefix>model/<mesh>/<Kind>/[<parent>/]<name>   a model resource, in
//       the App Mesh API JSON shape (describe-* as the API writes it, or
//       create-*); any other key under model/ holds a model file's
//       content (JSON, or YAML when the key ends in .yaml/.yml)
//   <prefix>nodes/<node>                 {"name", "address", "tunnelPort",
//       "workloadCidrs"}, under the node's lease
//   <prefix>workloads/<node>/<id>        {"node", "mesh", "virtualNode",
//       "address", "ports", "attributes"}, under the node's lease
//
// Model keys appear to the model as files under api/ (so the App Mesh API
// writes them, with compare-and-swap on the key's revision); nodes and
// workloads feed the NodeController. When etcd is unreachable the last
// state keeps serving, /ready says the config source is not ready, and the
// watch reconnects with backoff and catches up from its revision.
class EtcdCluster {
 public:
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Create(
      net::EventLoop* loop, const AgentConfig& config);

  // Before the model's first build.
  void AttachModel(model::ModelSource* model);
  // After the node controller started: starts watching and registering.
  void Start(NodeController* node);
  // Draining: stops watching and renewing (the lease stays for a successor).
  void Stop();

  bool ready() const { return synced_ && watch_.connected; }
  nlohmann::json StatusJson() const;
  void RenderMetrics(stats::PrometheusText* out) const;

  // --cleanup: deregisters this node (revokes its lease, deletes its keys).
  static absl::Status Deregister(const AgentConfig& config);

  // The key layout, for tests and tools.
  static std::string ModelPathForKey(const std::string& model_prefix,
                                     const std::string& key);
  static std::string ModelKeyForPath(const std::string& model_prefix,
                                     const std::string& path);

 private:
  EtcdCluster(net::EventLoop* loop, const AgentConfig& config,
              const etcd::Client::Options& options, std::string node_address);
  void OnBatch(const etcd::Watcher::Batch& batch);
  void OnState(const etcd::Watcher::State& state);
  absl::StatusOr<int64_t> Commit(
      const std::vector<model::ModelSource::ExternalWrite>& writes);
  void PushNodes();
  void PushWorkloads();
  // The last state seen, in <state_dir>/etcd_cache.json: an agent that
  // starts while etcd is unreachable serves what its predecessor served
  // (and says it is not ready) instead of an empty mesh. Written at most
  // every 2 s, after changes.
  void LoadCache();
  void ScheduleCacheWrite();
  void WriteCache() const;
  void Publish(const std::map<std::string, nlohmann::json>& local);

  net::EventLoop* loop_;
  const AgentConfig& config_;
  etcd::Client::Options options_;
  std::string node_address_;
  std::string model_prefix_, nodes_prefix_, workloads_prefix_, node_key_;
  etcd::Client api_client_;  // the App Mesh API's writes (main thread)
  std::unique_ptr<etcd::Watcher> watcher_;
  std::unique_ptr<etcd::Registrar> registrar_;
  model::ModelSource* model_ = nullptr;
  NodeController* node_ = nullptr;

  etcd::Watcher::State watch_;
  bool synced_ = false;      // a first list arrived
  bool from_cache_ = false;  // serving the cache until then
  bool cache_write_pending_ = false;
  int64_t revision_ = 0;
  std::map<std::string, std::string> nodes_kv_, workloads_kv_;
  std::map<std::string, std::string> published_;  // our keys -> values
  uint64_t batches_ = 0, events_ = 0;
  uint64_t commits_ = 0, conflicts_ = 0, commit_errors_ = 0;
  std::chrono::steady_clock::time_point disconnected_since_;
};

}  // namespace nodemesh
