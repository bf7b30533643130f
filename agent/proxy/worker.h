#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "agent/compile/proxy_config.h"
#include "agent/compile/tunnel_config.h"
#include "agent/net/event_loop.h"
#include "agent/net/socket.h"
#include "agent/proxy/access_log.h"
#include "agent/proxy/access_log_files.h"
#include "agent/proxy/load_balancer.h"
#include "agent/proxy/proxy_stats.h"
#include "agent/tls/tls.h"

namespace nodemesh::proxy {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// What workers route with: the compiled config and, per cluster, the
// endpoints service discovery found. Immutable; swapped whole.
struct ProxySnapshot {
  std::shared_ptr<const compile::ProxyConfig> config;
  // By cluster index.
  std::vector<std::shared_ptr<const std::vector<net::SocketAddress>>> endpoints;
  // By cluster index, parallel to `endpoints`: 1 for an endpoint out of
  // rotation (ejected by outlier detection or failing its health check).
  // Null or shorter: all in rotation.
  std::vector<std::shared_ptr<const std::vector<uint8_t>>> excluded;
  // Who is calling, for the source_virtual_node label: workload id (from
  // NM_SO_PEER_WORKLOAD) -> virtual node name, and per gateway (index of
  // config->gateways) its name. Interned: the strings outlive the snapshot.
  absl::flat_hash_map<uint32_t, const std::string*> sources;
  std::vector<const std::string*> gateway_sources;
  const std::string* unknown_source = nullptr;
  // Workload id -> "mesh/virtualNode": the caller whose access log (its
  // Envoy's egress) a request also goes to. Interned like `sources`.
  absl::flat_hash_map<uint32_t, const std::string*> source_keys;
  // Cross-node: remote endpoints, identities, authorization. Null: every
  // endpoint is local.
  std::shared_ptr<const compile::TunnelConfig> tunnel;

  const std::string* SourceOf(uint32_t workload_id) const {
    auto it = sources.find(workload_id);
    return it == sources.end() ? unknown_source : it->second;
  }
  // Empty when the workload is unknown.
  std::string_view SourceKey(uint32_t workload_id) const {
    auto it = source_keys.find(workload_id);
    return it == source_keys.end() ? std::string_view() : *it->second;
  }
};

enum class LbPolicy { kRoundRobin, kLeastRequest };

// What a worker saw of one endpoint since its last report: server errors
// (5xx, connect failures, resets) and other responses.
struct EndpointOutcome {
  uint32_t cluster = 0;  // index into `config`'s clusters
  net::SocketAddress address;
  uint32_t errors = 0;
  uint32_t successes = 0;
};
struct OutcomeReport {
  std::shared_ptr<const compile::ProxyConfig> config;
  std::vector<EndpointOutcome> outcomes;
};

struct WorkerOptions {
  uint16_t outbound_port = 15001;
  std::string gateway_address = "0.0.0.0";
  uint32_t socket_mark = 0;  // SO_MARK on upstream sockets; 0: none
  // The tunnel between nodes: its listener port (0: none) and address,
  // this node's identities and the mesh's roots (null: no CA configured;
  // remote endpoints are then unreachable).
  uint16_t tunnel_port = 0;
  std::string tunnel_address = "0.0.0.0";
  tls::IdentityStore* identities = nullptr;
  X509_STORE* ca_trust = nullptr;
  LbPolicy lb_policy = LbPolicy::kLeastRequest;
  // Request bytes kept for a retry; a request whose body outgrows it is
  // not retried.
  size_t retry_buffer_bytes = 64 * 1024;
  Millis downstream_idle_timeout{std::chrono::hours(1)};
  Millis upstream_idle_timeout{std::chrono::seconds(60)};
  // Output a connection may queue before its peer stops being read.
  size_t high_watermark = 256 * 1024;
  int backlog = 4096;
  // Workers in the proxy: each enforces its share of a connectionPool.
  int workers = 1;
  // Called on the worker thread about every 50 ms with the outcomes of
  // clusters that have outlier detection (the proxy posts them to the main
  // thread, which decides ejections).
  std::function<void(OutcomeReport)> report_outcomes;
};

// An endpoint address as a hashable value (the pools' key).
struct EndpointKey {
  std::array<uint8_t, 16> addr{};
  uint16_t port = 0;
  uint8_t family = 0;
  // A remote endpoint's connections carry the caller's identity: pooled
  // per caller (0: local endpoints, shared by every caller).
  const std::string* via = nullptr;
  // A remote endpoint's connection that may become a client's socket
  // (an HTTP/1.1 Upgrade or CONNECT): a socketpair into the tunnel, not
  // an in-process channel. Pooled apart.
  bool socket = false;
  friend bool operator==(const EndpointKey&, const EndpointKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const EndpointKey& k) {
    return H::combine(std::move(h), k.addr, k.port, k.family, k.via, k.socket);
  }
};
EndpointKey KeyOf(const net::SocketAddress& a);
inline EndpointKey KeyWithVia(const net::SocketAddress& a,
                              const std::string* via) {
  EndpointKey k = KeyOf(a);
  k.via = via;
  return k;
}

class UpstreamConnection;
class Http2UpstreamConnection;
class Upstream;
class TunnelPool;

// Anything the worker owns and frees after the current batch of events, so
// that an object closed from inside one of its own callbacks stays valid
// until the stack unwinds (Envoy's deferred deletion).
class WorkerObject {
 public:
  virtual ~WorkerObject() = default;
  // Called every tick (about 50 ms) to expire timeouts.
  virtual void OnTick(Clock::time_point now) = 0;
  // Closes at once (worker shutdown).
  virtual void Abort() = 0;
  // The agent is draining: finish what is in flight, take nothing new.
  virtual void Drain() {}
  // After the current batch of events, once per QueueFlush (writes that
  // several events produced go out in one send).
  virtual void OnFlush() {}
  bool closed() const { return closed_; }

 protected:
  friend class Worker;
  bool closed_ = false;
  bool flush_queued_ = false;
};

// Per-endpoint state kept by one worker: requests in flight (least
// request) and idle pooled connections.
struct EndpointState {
  uint32_t active = 0;
  std::vector<UpstreamConnection*> idle;
  // HTTP/2 connections, busy or not: streams multiplex over them.
  std::vector<Http2UpstreamConnection*> h2;
  // The endpoint's SETTINGS_MAX_CONCURRENT_STREAMS as last seen: what a new
  // connection assumes until its own SETTINGS arrive (100 before any: RFC
  // 9113 asks peers to allow at least that many).
  uint32_t h2_max_streams = 100;
};

struct ClusterPool;

// A request waiting in a ClusterPool for a connection (intrusive: waiting
// allocates nothing).
class PoolWaiter {
 public:
  virtual ~PoolWaiter() = default;
  // A connection of the pool was released: try again.
  virtual void OnPoolReady() = 0;
  bool waiting() const { return pool_ != nullptr; }

 private:
  friend class Worker;
  ClusterPool* pool_ = nullptr;
  PoolWaiter* prev_ = nullptr;
  PoolWaiter* next_ = nullptr;
};

// One cluster's connectionPool on one worker. The node-wide limits are
// split across workers (ceil(limit / workers), at least 1): each worker
// enforces its share alone, with no lock or shared counter on the request
// path. 0: no limit.
struct ClusterPool {
  uint32_t max_connections = 0;
  uint32_t max_pending = 0;
  uint32_t max_requests = 0;
  uint32_t connections = 0;  // open upstream connections opened for it
  uint32_t idle = 0;         // of which pooled, idle
  uint32_t requests = 0;     // requests on its connections now
  uint32_t pending = 0;      // waiters
  PoolWaiter* head = nullptr;
  PoolWaiter* tail = nullptr;
  uint32_t wakeups = 0;  // releases since the waiters were last woken
  bool wake_queued = false;
  PoolCounters* stats = nullptr;  // in the worker's WorkerStats::pools

  bool connections_full() const {
    return max_connections != 0 && connections >= max_connections;
  }
};

// Why AcquireUpstream returned no connection.
enum class AcquireFailure {
  kNone,
  kConnect,          // the socket could not be made (the endpoint's fault)
  kOutOfResources,   // no descriptor or local port left (this proxy's)
  kConnectionLimit,  // the pool's maxConnections is reached
  kRequestLimit,     // the pool's maxRequests is reached
};

// One proxy worker: a thread running its own event loop with its own
// SO_REUSEPORT listeners, connections, pools, balancers and stats. Other
// threads reach it only through the thread-safe methods, which post.
class Worker {
 public:
  Worker(int id, WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // An outbound listener opened inside a pod's network namespace (any
  // thread): the worker accepts on it like on its own.
  void AdoptPodListener(net::UniqueFd fd, std::string netns);
  // Closes the pod listeners of `netns` (any thread).
  void ClosePodListeners(std::string netns);

  // Binds the outbound listeners and starts the thread.
  absl::Status Start(std::shared_ptr<const ProxySnapshot> first);

  // Thread-safe.
  void Publish(std::shared_ptr<const ProxySnapshot> snapshot);
  void StopAccepting();
  // Stops accepting, closes idle keep-alive connections now and the others
  // after their response in flight.
  void Drain();
  // Closes every connection and joins the thread.
  void Stop();
  // Blocks until the worker has copied its stats (or 2 s passed).
  WorkerStats CollectStats();
  size_t open_connections() const {
    return open_connections_.load(std::memory_order_relaxed);
  }

  // ---- For the worker's own connections (loop thread only). ----
  net::EventLoop* loop() { return loop_.get(); }
  const std::shared_ptr<const ProxySnapshot>& snapshot() const {
    return snapshot_;
  }
  const WorkerOptions& options() const { return options_; }
  WorkerStats& stats() { return stats_; }
  uint64_t* rng() { return &rng_; }
  // The time, read once per batch of events: a request's several
  // timestamps cost one clock read.
  Clock::time_point Now() {
    if (!now_valid_) {
      now_ = Clock::now();
      now_valid_ = true;
    }
    return now_;
  }

  // Weighted pick among a route's targets (smooth weighted round robin per
  // route slot); null when every weight is 0.
  const compile::WeightedCluster* PickTarget(
      const std::vector<compile::WeightedCluster>& targets, uint32_t slot);
  // An endpoint of `cluster`, avoiding `tried` where another exists.
  std::optional<net::SocketAddress> PickEndpoint(
      const ProxySnapshot& snap, uint32_t cluster,
      std::span<const net::SocketAddress> tried);

  EndpointState& endpoint(const EndpointKey& key) { return endpoints_[key]; }

  // Counts a response (or upstream failure) of `ep` for outlier detection;
  // a no-op for clusters without it.
  void RecordOutcome(const ProxySnapshot& snap, uint32_t cluster,
                     const net::SocketAddress& ep, bool error);

  // Appends `entry` to its access logs in `config` (the one the request
  // was routed with): `ingress` (the target virtual node's, -1: none) and
  // the egress one, `egress` (a gateway's) or else the log of the caller
  // named by entry.source. One line when both are the same path.
  void WriteAccessLog(const compile::ProxyConfig& config,
                      const AccessLogEntry& entry, int32_t ingress,
                      int32_t egress);
  // Unique in the process: the worker's id in the low bits.
  uint64_t NextConnectionId() {
    return (++connection_seq_ << kWorkerIdBits) | static_cast<uint64_t>(id_);
  }

  // An idle pooled connection to `ep`, or a new one (connecting) counted
  // in `pool`; null with the reason in `*failure`. At maxConnections an
  // idle connection of the pool to another endpoint is closed to make room.
  // `caller`: the identity a remote endpoint is reached as (null: none).
  // `needs_socket`: the connection may be handed over as a socket (see
  // EndpointKey::socket).
  UpstreamConnection* AcquireUpstream(const net::SocketAddress& ep,
                                      ClusterPool* pool,
                                      AcquireFailure* failure,
                                      const std::string* caller = nullptr,
                                      bool needs_socket = false);
  // A stream on an HTTP/2 connection to `ep` with room for one (the peer's
  // SETTINGS_MAX_CONCURRENT_STREAMS), else on a new connection.
  Upstream* AcquireHttp2Upstream(const net::SocketAddress& ep,
                                 ClusterPool* pool, AcquireFailure* failure,
                                 const std::string* caller = nullptr);
  // The pool of cluster `index` of `config` (the current config, or an
  // older one a request still holds).
  ClusterPool* PoolFor(const compile::ProxyConfig& config, uint32_t index);
  // Pool accounting (UpstreamConnection, TcpSession).
  void ConnectionOpened(ClusterPool* pool) { ++pool->connections; }
  void ConnectionReleased(ClusterPool* pool, bool closed);
  // Queues `w` (FIFO; `front` puts back one woken too early).
  void Wait(ClusterPool* pool, PoolWaiter* w, bool front);
  void CancelWait(PoolWaiter* w);
  // A non-blocking connect to `ep`, marked and with TCP_NODELAY; to an
  // endpoint on another node, a socket into a tunnel stream as `caller`.
  absl::StatusOr<net::UniqueFd> ConnectUpstream(
      const net::SocketAddress& ep, const std::string* caller = nullptr);
  // The key `ep`'s connections are pooled under for `caller`.
  EndpointKey PoolKey(const net::SocketAddress& ep,
                      const std::string* caller) const;
  // The identity a connection of `source_workload` (or of gateway
  // `gateway`, when set) calls as; null when it has none.
  const std::string* CallerIdentity(uint32_t source_workload,
                                    const std::string* gateway) const;
  TunnelPool* tunnels() { return tunnels_.get(); }

  template <typename T, typename... Args>
  T* Make(Args&&... args) {
    auto obj = std::make_unique<T>(std::forward<Args>(args)...);
    T* raw = obj.get();
    live_.emplace(raw, std::move(obj));
    return raw;
  }
  // Frees `obj` after the current batch of events.
  void Retire(WorkerObject* obj);
  // Calls obj->OnFlush() after the current batch of events (once).
  void QueueFlush(WorkerObject* obj) {
    if (obj->flush_queued_) return;
    obj->flush_queued_ = true;
    flush_.push_back(obj);
  }

 private:
  struct Listener {
    net::UniqueFd fd;
    bool outbound = false;
    bool tunnel = false;  // the tunnel port: HBONE from other nodes
    uint16_t port = 0;
    std::string netns;  // a pod's outbound listener: its namespace path
  };

  void Run();
  void Apply(std::shared_ptr<const ProxySnapshot> snapshot);
  absl::Status AddListener(const net::SocketAddress& addr, bool outbound,
                           bool tunnel = false);
  void SyncGatewayListeners();
  void OnAccept(Listener* l);
  void Tick();
  void ReportOutcomes();
  // Calls `fn` on each object that was open when the call began and still
  // is when its turn comes.
  void ForEachOpen(absl::FunctionRef<void(WorkerObject*)> fn);
  void CloseListeners();
  void SyncPools();
  PoolWaiter* PopWaiter(ClusterPool* pool);
  // Hands released connections to waiters (after each batch of events, so
  // that no waiter runs inside another connection's callback).
  void WakeWaiters();

  static constexpr int kWorkerIdBits = 10;

  const int id_;
  const WorkerOptions options_;
  std::unique_ptr<net::EventLoop> loop_;
  std::thread thread_;
  std::shared_ptr<const ProxySnapshot> snapshot_;
  const compile::ProxyConfig* balancers_for_ = nullptr;
  std::vector<std::optional<SmoothWeightedRoundRobin>> balancers_;
  std::vector<RoundRobin> round_robin_;  // by cluster
  absl::flat_hash_map<EndpointKey, EndpointState> endpoints_;
  // By cluster name; kept across reloads (connections point at them).
  absl::flat_hash_map<std::string, std::unique_ptr<ClusterPool>> pools_;
  std::vector<ClusterPool*> pool_by_cluster_;  // for balancers_for_
  std::vector<ClusterPool*> wake_;             // capacity kept
  // Outcomes since the last report, for the clusters of outcomes_config_.
  std::shared_ptr<const compile::ProxyConfig> outcomes_config_;
  absl::flat_hash_map<std::pair<uint32_t, EndpointKey>, EndpointOutcome>
      outcomes_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  uint32_t next_source_ = 0;  // spreads loopback source addresses
  bool accepting_ = true;
  bool draining_ = false;
  bool bind_retry_pending_ = false;
  int ticks_since_bind_ = 0;
  absl::flat_hash_map<WorkerObject*, std::unique_ptr<WorkerObject>> live_;
  std::vector<std::unique_ptr<WorkerObject>> retired_;
  std::vector<WorkerObject*> flush_;  // QueueFlush's, capacity kept
  std::vector<WorkerObject*> flushing_;
  std::vector<WorkerObject*> each_;  // ForEachOpen's copy, capacity kept
  WorkerStats stats_;
  std::unique_ptr<TunnelPool> tunnels_;
  mutable absl::node_hash_set<std::string> identities_;  // interned callers
  AccessLogFiles access_logs_{&stats_};
  uint64_t connection_seq_ = 0;
  int ticks_since_log_retry_ = 0;
  uint64_t rng_;
  Clock::time_point now_;
  bool now_valid_ = false;
  std::atomic<size_t> open_connections_{0};
};

}  // namespace nodemesh::proxy
