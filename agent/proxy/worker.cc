#include "agent/proxy/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <random>

#include "absl/strings/str_cat.h"
#include "agent/proxy/h2_upstream.h"
#include "agent/proxy/hbone_connection.h"
#include "agent/proxy/http_session.h"
#include "agent/proxy/tcp_session.h"
#include "agent/proxy/tls_downstream.h"
#include "agent/proxy/tunnel_pool.h"
#include "agent/proxy/upstream.h"
#include "glog/logging.h"
#include "nodemesh/abi.h"

namespace nodemesh::proxy {
namespace {

constexpr Millis kTick(50);
constexpr int kAcceptBatch = 32;
// A gateway listener that could not bind is tried again this often.
constexpr int kBindRetryTicks = 100;  // 5 s

void SetNoDelay(int fd) {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Where a redirected connection was headed, as the datapath recorded it
// (cgroup/getsockopt answers SO_ORIGINAL_DST); nullopt when it was not
// redirected.
std::optional<net::SocketAddress> OriginalDestination(int fd, int family) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  int level = family == AF_INET6 ? SOL_IPV6 : SOL_IP;
  if (::getsockopt(fd, level, NM_SO_ORIGINAL_DST, &ss, &len) != 0)
    return std::nullopt;
  auto addr = net::SocketAddress::FromSockaddr(
      reinterpret_cast<const sockaddr*>(&ss), len);
  if (!addr.ok()) return std::nullopt;
  return *addr;
}

uint32_t PeerWorkload(int fd) {
  nm_peer_workload w{};
  socklen_t len = sizeof(w);
  if (::getsockopt(fd, SOL_IP, NM_SO_PEER_WORKLOAD, &w, &len) != 0) return 0;
  return w.workload_id;
}

}  // namespace

EndpointKey KeyOf(const net::SocketAddress& a) {
  EndpointKey k;
  k.family = static_cast<uint8_t>(a.family());
  k.port = a.port();
  if (a.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(a.addr());
    std::memcpy(k.addr.data(), &in->sin_addr, 4);
  } else if (a.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a.addr());
    std::memcpy(k.addr.data(), &in6->sin6_addr, 16);
  }
  return k;
}

Worker::Worker(int id, WorkerOptions options)
    : id_(id),
      options_(std::move(options)),
      tunnels_(std::make_unique<TunnelPool>(this)) {
  std::random_device rd;
  rng_ = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(id);
}

Worker::~Worker() {
  if (thread_.joinable()) Stop();
}

absl::Status Worker::AddListener(const net::SocketAddress& addr, bool outbound,
                                 bool tunnel) {
  // Accepted sockets inherit the mark: the datapath then splices only the
  // legs whose other end is a workload.
  auto fd = net::ListenTcp(addr, options_.backlog, /*reuse_port=*/true,
                           options_.socket_mark);
  if (!fd.ok()) return fd.status();
  auto l = std::make_unique<Listener>();
  l->fd = std::move(*fd);
  l->outbound = outbound;
  l->tunnel = tunnel;
  l->port = addr.port();
  Listener* raw = l.get();
  auto s = loop_->Add(raw->fd.get(), EPOLLIN,
                      [this, raw](uint32_t) { OnAccept(raw); });
  if (!s.ok()) return s;
  listeners_.push_back(std::move(l));
  return absl::OkStatus();
}

void Worker::AdoptPodListener(net::UniqueFd fd, std::string netns) {
  auto shared = std::make_shared<net::UniqueFd>(std::move(fd));
  loop_->Post([this, shared, netns = std::move(netns)] {
    if (!accepting_) return;  // draining: the fd closes with `shared`
    auto l = std::make_unique<Listener>();
    l->fd = std::move(*shared);
    l->outbound = true;
    l->port = options_.outbound_port;
    l->netns = netns;
    Listener* raw = l.get();
    if (auto s = loop_->Add(raw->fd.get(), EPOLLIN,
                            [this, raw](uint32_t) { OnAccept(raw); });
        !s.ok()) {
      LOG(ERROR) << "worker " << id_ << ": pod listener in " << netns << ": "
                 << s;
      return;
    }
    listeners_.push_back(std::move(l));
  });
}

void Worker::ClosePodListeners(std::string netns) {
  loop_->Post([this, netns = std::move(netns)] {
    for (auto it = listeners_.begin(); it != listeners_.end();) {
      if ((*it)->netns == netns) {
        loop_->Remove((*it)->fd.get());
        it = listeners_.erase(it);
      } else {
        ++it;
      }
    }
  });
}

absl::Status Worker::Start(std::shared_ptr<const ProxySnapshot> first) {
  auto loop = net::EventLoop::Create();
  if (!loop.ok()) return loop.status();
  loop_ = std::move(*loop);
  snapshot_ = std::move(first);
  auto v4 = net::SocketAddress::Parse(
      absl::StrCat("127.0.0.1:", options_.outbound_port));
  if (auto s = AddListener(*v4, true); !s.ok()) {
    return absl::Status(
        s.code(),
        absl::StrCat("outbound listener (--outbound_port): ", s.message()));
  }
  // Redirected IPv6 connects land on [::1]; a host without IPv6 has none.
  auto v6 =
      net::SocketAddress::Parse(absl::StrCat("[::1]:", options_.outbound_port));
  if (auto s = AddListener(*v6, true); !s.ok())
    VLOG(1) << "worker " << id_ << ": no IPv6 outbound listener: " << s;
  if (options_.tunnel_port != 0 && options_.ca_trust != nullptr) {
    auto t = net::SocketAddress::FromIpPort(options_.tunnel_address,
                                            options_.tunnel_port);
    if (!t.ok()) return t.status();
    if (auto s = tunnels_->ServerContext(); !s.ok()) return s.status();
    if (auto s = AddListener(*t, false, true); !s.ok())
      return absl::Status(
          s.code(),
          absl::StrCat("tunnel listener (--tunnel_port): ", s.message()));
  }
  Apply(snapshot_);
  loop_->SetAfterBatch([this] {
    // Flushing may queue more (a stream's output wakes its upstream, a
    // released connection wakes waiters): rounds until quiet; retired
    // objects are still allocated here.
    while (!wake_.empty() || !flush_.empty()) {
      if (!wake_.empty()) WakeWaiters();
      flushing_.swap(flush_);
      for (WorkerObject* obj : flushing_) {
        obj->flush_queued_ = false;
        if (!obj->closed()) obj->OnFlush();
      }
      flushing_.clear();
    }
    retired_.clear();
    now_valid_ = false;
    access_logs_.Flush();
  });
  loop_->AddTimer(kTick, [this] { Tick(); });
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void Worker::ForEachOpen(absl::FunctionRef<void(WorkerObject*)> fn) {
  // Over a copy: `fn` may close objects (and others with them) as it goes;
  // closed ones stay allocated until the batch ends, so the copy is safe.
  for (auto& [obj, owned] : live_) each_.push_back(obj);
  for (WorkerObject* obj : each_) {
    if (!obj->closed()) fn(obj);
  }
  each_.clear();
}

void Worker::Run() {
  loop_->Run();
  // Stopped: everything still open goes now, on this thread.
  ForEachOpen([](WorkerObject* obj) { obj->Abort(); });
  retired_.clear();
  CloseListeners();
  access_logs_.Flush();
}

void Worker::Publish(std::shared_ptr<const ProxySnapshot> snapshot) {
  loop_->Post([this, snapshot = std::move(snapshot)]() mutable {
    Apply(std::move(snapshot));
  });
}

void Worker::Apply(std::shared_ptr<const ProxySnapshot> snapshot) {
  const bool tunnel_changed =
      snapshot_ == nullptr || snapshot_->tunnel != snapshot->tunnel;
  snapshot_ = std::move(snapshot);
  // Connections admitted or trusted under the old rules answer to the new.
  if (tunnel_changed) tunnels_->Reauthorize(snapshot_->tunnel.get());
  const compile::ProxyConfig* config = snapshot_->config.get();
  if (config != balancers_for_) {
    // New routes: weighted balancers restart (their state is per route).
    balancers_for_ = config;
    balancers_.clear();
    balancers_.resize(config->route_slots);
    round_robin_.resize(config->clusters.size());
    access_logs_.Sync(config->access_log_paths, id_ == 0);
    SyncGatewayListeners();
    SyncPools();
  }
}

namespace {

// This worker's share of a node-wide limit.
uint32_t WorkerShare(uint32_t limit, int workers) {
  if (limit == 0) return 0;
  const uint32_t n = workers > 0 ? static_cast<uint32_t>(workers) : 1u;
  return std::max<uint32_t>(1, (limit + n - 1) / n);
}

}  // namespace

void Worker::SyncPools() {
  const compile::ProxyConfig& config = *snapshot_->config;
  pool_by_cluster_.assign(config.clusters.size(), nullptr);
  for (size_t i = 0; i < config.clusters.size(); ++i) {
    const compile::Cluster& c = config.clusters[i];
    std::unique_ptr<ClusterPool>& p = pools_[c.name];
    if (p == nullptr) {
      p = std::make_unique<ClusterPool>();
      PoolCounters& counters = stats_.pools[c.name];
      counters.mesh = c.mesh;
      counters.virtual_node = c.virtual_node;
      counters.port = c.port;
      p->stats = &counters;
    }
    p->max_connections = WorkerShare(c.pool.max_connections, options_.workers);
    p->max_pending = WorkerShare(c.pool.max_pending_requests, options_.workers);
    p->max_requests = WorkerShare(c.pool.max_requests, options_.workers);
    pool_by_cluster_[i] = p.get();
  }
}

ClusterPool* Worker::PoolFor(const compile::ProxyConfig& config,
                             uint32_t index) {
  if (&config == balancers_for_ && index < pool_by_cluster_.size())
    return pool_by_cluster_[index];
  // A request routed with an older config: find its cluster by name.
  auto it = pools_.find(config.clusters[index].name);
  if (it != pools_.end()) return it->second.get();
  // Its cluster left the config: count it apart, without limits.
  std::unique_ptr<ClusterPool>& p = pools_[config.clusters[index].name];
  p = std::make_unique<ClusterPool>();
  PoolCounters& counters = stats_.pools[config.clusters[index].name];
  counters.mesh = config.clusters[index].mesh;
  counters.virtual_node = config.clusters[index].virtual_node;
  counters.port = config.clusters[index].port;
  p->stats = &counters;
  return p.get();
}

void Worker::ConnectionReleased(ClusterPool* pool, bool closed) {
  if (closed) {
    if (pool->connections > 0) --pool->connections;
  } else {
    ++pool->idle;
  }
  if (pool->head == nullptr) return;
  ++pool->wakeups;
  if (!pool->wake_queued) {
    pool->wake_queued = true;
    wake_.push_back(pool);
  }
}

void Worker::Wait(ClusterPool* pool, PoolWaiter* w, bool front) {
  w->pool_ = pool;
  if (front) {
    w->prev_ = nullptr;
    w->next_ = pool->head;
    if (pool->head != nullptr) pool->head->prev_ = w;
    pool->head = w;
    if (pool->tail == nullptr) pool->tail = w;
  } else {
    w->next_ = nullptr;
    w->prev_ = pool->tail;
    if (pool->tail != nullptr) pool->tail->next_ = w;
    pool->tail = w;
    if (pool->head == nullptr) pool->head = w;
  }
  ++pool->pending;
  ++pool->stats->pending;
}

void Worker::CancelWait(PoolWaiter* w) {
  ClusterPool* pool = w->pool_;
  if (pool == nullptr) return;
  if (w->prev_ != nullptr) {
    w->prev_->next_ = w->next_;
  } else {
    pool->head = w->next_;
  }
  if (w->next_ != nullptr) {
    w->next_->prev_ = w->prev_;
  } else {
    pool->tail = w->prev_;
  }
  w->pool_ = nullptr;
  w->prev_ = w->next_ = nullptr;
  --pool->pending;
  --pool->stats->pending;
}

PoolWaiter* Worker::PopWaiter(ClusterPool* pool) {
  PoolWaiter* w = pool->head;
  if (w != nullptr) CancelWait(w);
  return w;
}

void Worker::WakeWaiters() {
  // By index: a woken waiter may release connections and queue more.
  for (size_t i = 0; i < wake_.size(); ++i) {
    ClusterPool* pool = wake_[i];
    pool->wake_queued = false;
    uint32_t n = pool->wakeups;
    pool->wakeups = 0;
    while (n-- > 0) {
      PoolWaiter* w = PopWaiter(pool);
      if (w == nullptr) break;
      w->OnPoolReady();
    }
  }
  wake_.clear();
}

void Worker::SyncGatewayListeners() {
  if (!accepting_) return;
  const compile::ProxyConfig& config = *snapshot_->config;
  // Close gateway listeners whose port left the config.
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    bool keep = (*it)->outbound || (*it)->tunnel;
    for (const compile::GatewayListener& g : config.gateways)
      keep = keep || g.port == (*it)->port;
    if (keep) {
      ++it;
      continue;
    }
    loop_->Remove((*it)->fd.get());
    it = listeners_.erase(it);
  }
  bind_retry_pending_ = false;
  for (const compile::GatewayListener& g : config.gateways) {
    bool have = false;
    for (const auto& l : listeners_)
      have = have || (!l->outbound && l->port == g.port);
    if (have) continue;
    auto addr =
        net::SocketAddress::FromIpPort(options_.gateway_address, g.port);
    if (!addr.ok()) {
      LOG(ERROR) << "VirtualGateway " << g.mesh << "/" << g.virtual_gateway
                 << ": --gateway_address: " << addr.status();
      continue;
    }
    if (auto s = AddListener(*addr, false); !s.ok()) {
      ++stats_.listener_errors;
      bind_retry_pending_ = true;  // Tick tries again (the port may free up)
      LOG(ERROR) << "VirtualGateway " << g.mesh << "/" << g.virtual_gateway
                 << ": cannot listen on " << addr->ToString() << ": "
                 << s.message();
    } else if (id_ == 0) {
      LOG(INFO) << "VirtualGateway " << g.mesh << "/" << g.virtual_gateway
                << " listening on " << addr->ToString();
    }
  }
}

void Worker::CloseListeners() {
  for (auto& l : listeners_) loop_->Remove(l->fd.get());
  listeners_.clear();
}

void Worker::StopAccepting() {
  loop_->Post([this] {
    accepting_ = false;
    CloseListeners();
  });
}

void Worker::Drain() {
  loop_->Post([this] {
    accepting_ = false;
    draining_ = true;
    CloseListeners();
    ForEachOpen([](WorkerObject* obj) { obj->Drain(); });
  });
}

void Worker::Stop() {
  if (!thread_.joinable()) return;
  loop_->Stop();
  thread_.join();
}

WorkerStats Worker::CollectStats() {
  auto done = std::make_shared<std::promise<WorkerStats>>();
  std::future<WorkerStats> result = done->get_future();
  loop_->Post([this, done] { done->set_value(stats_); });
  if (result.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
    LOG(WARNING) << "worker " << id_ << " did not answer a stats request";
    return {};
  }
  return result.get();
}

void Worker::OnAccept(Listener* l) {
  for (int i = 0; i < kAcceptBatch && accepting_; ++i) {
    ConnectionInfo info;
    auto fd = net::Accept(l->fd.get(), &info.peer);
    if (!fd.ok()) {
      LOG_EVERY_N(WARNING, 100) << "accept: " << fd.status();
      return;
    }
    if (!fd->valid()) return;
    SetNoDelay(fd->get());
    if (l->tunnel) {
      auto ctx = tunnels_->ServerContext();
      if (!ctx.ok()) continue;
      Make<HboneConnection>(this, std::move(*fd),
                            HboneConnection::Role::kServer, *ctx, "", "",
                            info.peer.ToString())
          ->Start();
      continue;
    }
    info.outbound = l->outbound;
    info.listener_port = l->port;
    if (l->outbound) {
      info.original_dst = OriginalDestination(fd->get(), info.peer.family());
      info.source_workload = PeerWorkload(fd->get());
    }
    ++stats_.downstream_cx_total;
    ++stats_.downstream_cx_active;
    if (!l->outbound && snapshot_->tunnel != nullptr) {
      auto t = snapshot_->tunnel->gateway_tls.find(l->port);
      if (t != snapshot_->tunnel->gateway_tls.end()) {
        Make<TlsDownstream>(this, std::move(*fd), info, t->second)->Start();
        continue;
      }
    }
    const compile::VirtualHost* tcp_host = nullptr;
    if (info.original_dst)
      tcp_host = snapshot_->config->FindTcpHost(info.original_dst->port());
    if (tcp_host != nullptr) {
      Make<TcpSession>(this, std::move(*fd), snapshot_, tcp_host, info.peer,
                       info.original_dst, info.source_workload)
          ->Start();
    } else {
      Make<HttpSession>(this, std::move(*fd), info)->Start();
    }
  }
}

void Worker::Tick() {
  Clock::time_point now = Now();
  ForEachOpen([now](WorkerObject* obj) { obj->OnTick(now); });
  if (bind_retry_pending_ && ++ticks_since_bind_ >= kBindRetryTicks) {
    ticks_since_bind_ = 0;
    SyncGatewayListeners();
  }
  if (access_logs_.has_failed() &&
      ++ticks_since_log_retry_ >= kBindRetryTicks) {
    ticks_since_log_retry_ = 0;
    access_logs_.RetryFailed(id_ == 0);
  }
  // Client connections (HTTP sessions and TCP sessions, tunnels included)
  // are exactly what downstream_cx_active counts.
  open_connections_.store(stats_.downstream_cx_active,
                          std::memory_order_relaxed);
  ReportOutcomes();
  loop_->AddTimer(kTick, [this] { Tick(); });
}

void Worker::RecordOutcome(const ProxySnapshot& snap, uint32_t cluster,
                           const net::SocketAddress& ep, bool error) {
  const auto& clusters = snap.config->clusters;
  if (cluster >= clusters.size() || !clusters[cluster].outlier_detection ||
      !options_.report_outcomes) {
    return;
  }
  if (snap.config != outcomes_config_) {
    outcomes_.clear();  // indexes of another config; a few outcomes lost
    outcomes_config_ = snap.config;
  }
  EndpointOutcome& o = outcomes_[{cluster, KeyOf(ep)}];
  if (!o.address.valid()) {
    o.cluster = cluster;
    o.address = ep;
  }
  ++(error ? o.errors : o.successes);
}

void Worker::ReportOutcomes() {
  if (outcomes_.empty()) return;
  OutcomeReport r;
  r.config = outcomes_config_;
  r.outcomes.reserve(outcomes_.size());
  for (auto& [key, o] : outcomes_) r.outcomes.push_back(o);
  outcomes_.clear();
  options_.report_outcomes(std::move(r));
}

void Worker::Retire(WorkerObject* obj) {
  auto it = live_.find(obj);
  if (it == live_.end()) return;
  retired_.push_back(std::move(it->second));
  live_.erase(it);
}

void Worker::WriteAccessLog(const compile::ProxyConfig& config,
                            const AccessLogEntry& entry, int32_t ingress,
                            int32_t egress) {
  if (egress < 0) egress = config.NodeAccessLog(entry.source);
  const auto n = static_cast<int32_t>(config.access_logs.size());
  const int32_t logs[2] = {ingress, egress};
  for (int i = 0; i < 2; ++i) {
    if (logs[i] < 0 || logs[i] >= n) continue;
    const compile::AccessLogConfig& log = config.access_logs[logs[i]];
    // The caller's and the target's Envoys writing to one file would be
    // one process here: one line, in the target's format.
    if (i == 1 && ingress >= 0 && ingress < n &&
        config.access_logs[ingress].sink == log.sink) {
      continue;
    }
    std::string* buffer =
        access_logs_.Buffer(log.sink, config.access_log_paths[log.sink]);
    if (buffer == nullptr) continue;
    log.format->Append(entry, config.access_log_headers, buffer);
    access_logs_.Commit(buffer);
  }
}

const compile::WeightedCluster* Worker::PickTarget(
    const std::vector<compile::WeightedCluster>& targets, uint32_t slot) {
  if (targets.size() == 1) {
    return targets[0].weight > 0 ? &targets[0] : nullptr;
  }
  if (slot >= balancers_.size()) balancers_.resize(slot + 1);
  auto& b = balancers_[slot];
  if (!b || b->size() != targets.size()) {
    std::vector<uint32_t> weights;
    weights.reserve(targets.size());
    for (const auto& t : targets) weights.push_back(t.weight);
    b.emplace(std::move(weights));
  }
  size_t i = b->Pick();
  return i < targets.size() ? &targets[i] : nullptr;
}

std::optional<net::SocketAddress> Worker::PickEndpoint(
    const ProxySnapshot& snap, uint32_t cluster,
    std::span<const net::SocketAddress> tried) {
  if (cluster >= snap.endpoints.size() || !snap.endpoints[cluster])
    return std::nullopt;
  const std::vector<net::SocketAddress>& eps = *snap.endpoints[cluster];
  const size_t n = eps.size();
  if (n == 0) return std::nullopt;
  if (n == 1) return eps[0];
  // Ejected and unhealthy endpoints are skipped, unless all are: then all
  // serve (Envoy's panic mode).
  const std::vector<uint8_t>* excluded =
      cluster < snap.excluded.size() ? snap.excluded[cluster].get() : nullptr;
  if (excluded != nullptr) {
    bool any_in = false;
    for (size_t i = 0; i < n && !any_in; ++i)
      any_in = i >= excluded->size() || (*excluded)[i] == 0;
    if (!any_in) excluded = nullptr;
  }
  auto in_rotation = [&](size_t i) {
    return excluded == nullptr || i >= excluded->size() || (*excluded)[i] == 0;
  };
  // Another endpoint than those tried, where one exists.
  bool all_tried = true;
  for (size_t i = 0; i < n; ++i) {
    if (in_rotation(i) &&
        std::find(tried.begin(), tried.end(), eps[i]) == tried.end()) {
      all_tried = false;
      break;
    }
  }
  auto usable = [&](size_t i) {
    return in_rotation(i) && (all_tried || std::find(tried.begin(), tried.end(),
                                                     eps[i]) == tried.end());
  };
  size_t pick = SIZE_MAX;
  if (options_.lb_policy == LbPolicy::kRoundRobin) {
    if (cluster >= round_robin_.size()) round_robin_.resize(cluster + 1);
    pick = round_robin_[cluster].Pick(n, usable);
  } else {
    // Power of two choices over the requests this worker has in flight.
    size_t a = RandomBelow(n, &rng_);
    size_t b = RandomBelow(n - 1, &rng_);
    if (b >= a) ++b;
    bool ua = usable(a), ub = usable(b);
    if (ua && ub) {
      pick = endpoint(KeyOf(eps[b])).active < endpoint(KeyOf(eps[a])).active
                 ? b
                 : a;
    } else if (ua || ub) {
      pick = ua ? a : b;
    } else {
      for (size_t i = 0; i < n && pick == SIZE_MAX; ++i) {
        if (usable((a + i) % n)) pick = (a + i) % n;
      }
    }
  }
  if (pick >= n) return std::nullopt;
  return eps[pick];
}

EndpointKey Worker::PoolKey(const net::SocketAddress& ep,
                            const std::string* caller) const {
  EndpointKey k = KeyOf(ep);
  if (caller != nullptr && snapshot_->tunnel != nullptr &&
      snapshot_->tunnel->remote.contains(ep.ToString()))
    k.via = caller;
  return k;
}

const std::string* Worker::CallerIdentity(uint32_t source_workload,
                                          const std::string* gateway) const {
  const compile::TunnelConfig* cfg = snapshot_->tunnel.get();
  if (cfg == nullptr) return nullptr;
  const std::string* id = nullptr;
  if (gateway != nullptr) {
    auto it = cfg->gateway_identity.find(*gateway);
    if (it != cfg->gateway_identity.end()) id = &it->second;
  } else {
    auto it = cfg->workload_identity.find(source_workload);
    if (it != cfg->workload_identity.end()) id = &it->second;
  }
  if (id == nullptr) return nullptr;
  // Interned: pool keys outlive the config the identity came from.
  return &*identities_.insert(*id).first;
}

absl::StatusOr<net::UniqueFd> Worker::ConnectUpstream(
    const net::SocketAddress& ep, const std::string* caller) {
  if (snapshot_->tunnel != nullptr && !snapshot_->tunnel->remote.empty()) {
    auto it = snapshot_->tunnel->remote.find(ep.ToString());
    if (it != snapshot_->tunnel->remote.end()) {
      if (caller == nullptr) {
        stats_.tunnel.Refuse(TunnelRefusal::kNoCredentials);
        LOG_EVERY_N(WARNING, 20)
            << ep.ToString() << " is on node " << it->second.node
            << ", and the caller has no identity to reach it with";
        errno = ECONNREFUSED;
        return absl::FailedPreconditionError("caller without identity");
      }
      return tunnels_->Open(*snapshot_->tunnel, *caller, it->second, ep);
    }
  }
  // The mark is a second guard beside the cgroup: the datapath skips
  // marked sockets.
  // To a loopback endpoint every connection would come from 127.0.0.1,
  // which caps connections to one endpoint at the ephemeral port range.
  // Spreading the source over 127.255.<worker>.1-250 multiplies the 4-tuples
  // (the sources are loopback too; the mark and the cgroup still say it is
  // the agent).
  if (ep.family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(ep.addr());
    if ((ntohl(v4->sin_addr.s_addr) >> 24) == 127) {
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_addr.s_addr =
          htonl((127u << 24) | (255u << 16) | ((id_ & 0xff) << 8) |
                (1 + (next_source_++ % 250)));
      auto source = net::SocketAddress::FromSockaddr(
          reinterpret_cast<const sockaddr*>(&src), sizeof(src));
      if (source.ok()) {
        auto fd = net::ConnectTcp(ep, options_.socket_mark, &*source);
        if (!fd.ok()) return fd.status();
        SetNoDelay(fd->get());
        return fd;
      }
    }
  }
  auto fd = net::ConnectTcp(ep, options_.socket_mark);
  if (!fd.ok()) return fd.status();
  SetNoDelay(fd->get());
  return fd;
}

UpstreamConnection* Worker::AcquireUpstream(const net::SocketAddress& ep,
                                            ClusterPool* pool,
                                            AcquireFailure* failure,
                                            const std::string* caller,
                                            bool needs_socket) {
  *failure = AcquireFailure::kNone;
  if (pool->max_requests != 0 && pool->requests >= pool->max_requests) {
    *failure = AcquireFailure::kRequestLimit;
    return nullptr;
  }
  EndpointKey key = PoolKey(ep, caller);
  if (key.via != nullptr) key.socket = needs_socket;
  EndpointState& st = endpoint(key);
  while (!st.idle.empty()) {
    UpstreamConnection* c = st.idle.back();
    st.idle.pop_back();
    if (!c->closed()) return c;
  }
  if (pool->connections_full()) {
    // An idle connection of this pool to another endpoint makes room.
    UpstreamConnection* spare = nullptr;
    if (pool->idle > 0) {
      for (auto& [key, other] : endpoints_) {
        for (UpstreamConnection* c : other.idle) {
          if (c->pool() == pool && !c->closed()) {
            spare = c;
            break;
          }
        }
        if (spare != nullptr) break;
      }
    }
    if (spare == nullptr) {
      *failure = AcquireFailure::kConnectionLimit;
      return nullptr;
    }
    spare->Abort();
  }
  if (key.via != nullptr && !needs_socket) {
    // On another node: a tunnel stream used in-process.
    auto it = snapshot_->tunnel->remote.find(ep.ToString());
    auto ch =
        tunnels_->OpenChannel(*snapshot_->tunnel, *caller, it->second, ep);
    if (!ch.ok()) {
      *failure = AcquireFailure::kConnect;
      ++stats_.upstream_cx_connect_fail;
      return nullptr;
    }
    UpstreamConnection* c =
        Make<UpstreamConnection>(this, std::move(*ch), ep, pool, key);
    c->Start();
    return c;
  }
  auto fd = ConnectUpstream(ep, caller);
  if (!fd.ok()) {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM (ResourceExhausted) and
    // EADDRNOTAVAIL (no ephemeral port) are this proxy's limits.
    int err = errno;
    *failure = absl::IsResourceExhausted(fd.status()) || err == EADDRNOTAVAIL
                   ? AcquireFailure::kOutOfResources
                   : AcquireFailure::kConnect;
    ++stats_.upstream_cx_connect_fail;
    LOG_EVERY_N(WARNING, 100) << fd.status();
    return nullptr;
  }
  UpstreamConnection* c =
      Make<UpstreamConnection>(this, std::move(*fd), ep, pool, key);
  c->Start();
  return c;
}

Upstream* Worker::AcquireHttp2Upstream(const net::SocketAddress& ep,
                                       ClusterPool* pool,
                                       AcquireFailure* failure,
                                       const std::string* caller) {
  *failure = AcquireFailure::kNone;
  if (pool->max_requests != 0 && pool->requests >= pool->max_requests) {
    *failure = AcquireFailure::kRequestLimit;
    return nullptr;
  }
  // The first connection with room: streams fill one connection before
  // another is opened (Envoy's HTTP/2 pool does the same).
  const EndpointKey key = PoolKey(ep, caller);
  for (Http2UpstreamConnection* c : endpoint(key).h2) {
    if (c->HasCapacity()) return c->NewStream();
  }
  if (pool->connections_full()) {
    *failure = AcquireFailure::kConnectionLimit;
    return nullptr;
  }
  auto fd = ConnectUpstream(ep, caller);
  if (!fd.ok()) {
    int err = errno;
    *failure = absl::IsResourceExhausted(fd.status()) || err == EADDRNOTAVAIL
                   ? AcquireFailure::kOutOfResources
                   : AcquireFailure::kConnect;
    ++stats_.upstream_cx_connect_fail;
    LOG_EVERY_N(WARNING, 100) << fd.status();
    return nullptr;
  }
  auto* c =
      Make<Http2UpstreamConnection>(this, std::move(*fd), ep, pool, key.via);
  c->Start();
  return c->NewStream();
}

}  // namespace nodemesh::proxy
