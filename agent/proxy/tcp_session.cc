#include "agent/proxy/tcp_session.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "agent/proxy/access_log.h"

namespace nodemesh::proxy {
namespace {

thread_local char read_scratch[64 * 1024];
// Connect attempts of a tcpRoute connection before it is given up.
constexpr int kMaxConnectAttempts = 3;
// Without a route idle timeout (App Mesh: "default none") a connection
// that carries nothing for this long is closed, as Envoy's tcp_proxy does.
constexpr Millis kDefaultTcpIdle = std::chrono::hours(1);

}  // namespace

TcpSession::TcpSession(Worker* worker, net::UniqueFd downstream,
                       std::shared_ptr<const ProxySnapshot> snap,
                       const compile::VirtualHost* host,
                       const net::SocketAddress& peer,
                       const std::optional<net::SocketAddress>& local,
                       uint32_t source_workload)
    : worker_(worker),
      snap_(std::move(snap)),
      idle_timeout_(kDefaultTcpIdle),
      peer_(peer),
      local_(local),
      source_workload_(source_workload),
      start_wall_(std::chrono::system_clock::now()),
      start_(worker->Now()) {
  down_.fd = std::move(downstream);
  if (!host->tcp_routes.empty()) {
    route_ = &host->tcp_routes.front();
    if (route_->idle_timeout.count() > 0) idle_timeout_ = route_->idle_timeout;
  }
  connecting_ = true;
  counted_tcp_ = true;
  ++worker_->stats().tcp_cx_total;
  ++worker_->stats().tcp_cx_active;
}

TcpSession::TcpSession(Worker* worker, net::UniqueFd downstream,
                       net::UniqueFd upstream, std::string to_downstream,
                       std::string to_upstream, Millis idle_timeout)
    : worker_(worker), idle_timeout_(idle_timeout) {
  down_.fd = std::move(downstream);
  down_.out = std::move(to_downstream);
  up_.fd = std::move(upstream);
  up_.out = std::move(to_upstream);
  ++worker_->stats().downstream_cx_active;
}

TcpSession::~TcpSession() = default;

void TcpSession::Start() {
  last_activity_ = worker_->Now();
  down_.interest = EPOLLIN;
  auto s =
      worker_->loop()->Add(down_.fd.get(), down_.interest,
                           [this](uint32_t ev) { OnEvents(&down_, &up_, ev); });
  if (!s.ok()) {
    Close();
    return;
  }
  down_.registered = true;
  if (connecting_) {
    if (route_ != nullptr)
      target_ = worker_->PickTarget(route_->targets, route_->index);
    if (target_ != nullptr) cluster_ = static_cast<int32_t>(target_->cluster);
    if (target_ != nullptr) {
      // The target listener's idle timeout tightens the route's.
      Millis listener = snap_->config->clusters[target_->cluster].idle_timeout;
      Millis route = route_->idle_timeout;
      Millis tighter = compile::TighterTimeout(route, listener);
      if (tighter.count() > 0) idle_timeout_ = tighter;
      // tcp connectionPool.maxConnections: refused beyond it.
      ClusterPool* pool = worker_->PoolFor(*snap_->config, target_->cluster);
      if (pool->connections_full()) {
        ++pool->stats->overflow_connections;
        ++worker_->stats()
              .local_replies[static_cast<size_t>(LocalReason::kOverflow)];
        log_flags_ |= ReasonResponseFlags(LocalReason::kOverflow);
        Close();
        return;
      }
      pool_ = pool;
      worker_->ConnectionOpened(pool_);
    }
    Connect();
    return;
  }
  up_.interest = EPOLLIN;
  s = worker_->loop()->Add(up_.fd.get(), up_.interest,
                           [this](uint32_t ev) { OnEvents(&up_, &down_, ev); });
  if (!s.ok()) {
    Close();
    return;
  }
  up_.registered = true;
  // Bytes read ahead by the HTTP session go out now.
  if (!Flush(&up_, &down_) || !Flush(&down_, &up_)) return;
  UpdateInterest(&down_, &up_);
  UpdateInterest(&up_, &down_);
}

void TcpSession::Connect() {
  while (true) {
    if (target_ == nullptr || attempts_ >= kMaxConnectAttempts) {
      LocalReason reason = target_ == nullptr || attempts_ == 0
                               ? LocalReason::kNoHealthyUpstream
                               : LocalReason::kConnectFailure;
      ++worker_->stats().local_replies[static_cast<size_t>(reason)];
      log_flags_ |= ReasonResponseFlags(reason);
      Close();
      return;
    }
    std::optional<net::SocketAddress> ep =
        worker_->PickEndpoint(*snap_, target_->cluster, tried_);
    if (!ep) {
      attempts_ = kMaxConnectAttempts;
      if (tried_.empty()) target_ = nullptr;
      continue;
    }
    ++attempts_;
    if (attempts_ > 1) ++worker_->stats().retries;
    tried_.push_back(*ep);
    auto fd = worker_->ConnectUpstream(
        *ep, worker_->CallerIdentity(source_workload_, nullptr));
    if (!fd.ok()) {
      ++worker_->stats().upstream_cx_connect_fail;
      worker_->RecordOutcome(*snap_, target_->cluster, *ep, true);
      continue;
    }
    if (up_.registered) worker_->loop()->Remove(up_.fd.get());
    up_.fd = std::move(*fd);
    up_.interest = EPOLLOUT;
    auto s =
        worker_->loop()->Add(up_.fd.get(), up_.interest, [this](uint32_t ev) {
          if (connecting_) {
            OnConnectEvent();
          } else {
            OnEvents(&up_, &down_, ev);
          }
        });
    if (!s.ok()) {
      Close();
      return;
    }
    up_.registered = true;
    return;
  }
}

void TcpSession::OnConnectEvent() {
  if (closed_) return;
  if (!net::SocketError(up_.fd.get()).ok()) {
    ++worker_->stats().upstream_cx_connect_fail;
    // A refused connect is the endpoint's server error, for outlier
    // detection as for HTTP (Envoy counts connect failures alike).
    worker_->RecordOutcome(*snap_, target_->cluster, tried_.back(), true);
    Connect();
    return;
  }
  connecting_ = false;
  worker_->RecordOutcome(*snap_, target_->cluster, tried_.back(), false);
  ++worker_->stats().upstream_cx_total;
  last_activity_ = worker_->Now();
  if (!Flush(&up_, &down_)) return;
  UpdateInterest(&up_, &down_);
  UpdateInterest(&down_, &up_);
}

void TcpSession::UpdateInterest(Side* s, Side* peer) {
  if (closed_ || !s->registered) return;
  if (s->read_eof && s->write_shut) {
    // Done both ways: epoll would report HUP for it on every turn while the
    // other side drains.
    worker_->loop()->Remove(s->fd.get());
    s->registered = false;
    return;
  }
  uint32_t want = 0;
  bool peer_ready = peer->registered && !(peer == &up_ && connecting_);
  if (!s->read_eof && peer->pending() < worker_->options().high_watermark &&
      (peer_ready || peer->pending() == 0)) {
    want |= EPOLLIN;
  }
  if (s == &up_ && connecting_) want = EPOLLOUT;
  if (s->pending() > 0 && !(s == &up_ && connecting_)) want |= EPOLLOUT;
  if (want != s->interest) {
    s->interest = want;
    (void)worker_->loop()->Modify(s->fd.get(), want);
  }
}

void TcpSession::OnEvents(Side* self, Side* peer, uint32_t events) {
  if (closed_) return;
  if (events & EPOLLOUT) {
    if (!Flush(self, peer)) return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    if (!self->read_eof) {
      Pump(self, peer);
    } else if (events & EPOLLERR) {
      Close();
    }
  }
  if (closed_) return;
  UpdateInterest(self, peer);
  UpdateInterest(peer, self);
}

void TcpSession::Pump(Side* from, Side* to) {
  ssize_t n = ::read(from->fd.get(), read_scratch, sizeof(read_scratch));
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    Close();  // reset: pass it on by closing both
    return;
  }
  last_activity_ = worker_->Now();
  if (n == 0) {
    from->read_eof = true;
    if (to->pending() == 0 && !(to == &up_ && connecting_)) {
      ::shutdown(to->fd.get(), SHUT_WR);
      to->write_shut = true;
    }
    if (from->write_shut && to->write_shut) Close();
    return;
  }
  if (from == &down_) {
    worker_->stats().bytes_received += static_cast<uint64_t>(n);
    bytes_received_ += n;
  }
  if (to->out_off == to->out.size()) {
    to->out.clear();
    to->out_off = 0;
  }
  to->out.append(read_scratch, static_cast<size_t>(n));
  if (!(to == &up_ && connecting_)) Flush(to, from);
}

bool TcpSession::Flush(Side* to, Side* from) {
  while (to->pending() > 0) {
    ssize_t n = ::send(to->fd.get(), to->out.data() + to->out_off,
                       to->pending(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Close();
      return false;
    }
    if (to == &down_) {
      worker_->stats().bytes_sent += static_cast<uint64_t>(n);
      bytes_sent_ += n;
    }
    to->out_off += static_cast<size_t>(n);
  }
  if (to->pending() == 0) {
    to->out.clear();
    to->out_off = 0;
    if (from->read_eof && !to->write_shut) {
      ::shutdown(to->fd.get(), SHUT_WR);
      to->write_shut = true;
    }
    if (down_.read_eof && up_.read_eof && down_.write_shut && up_.write_shut) {
      Close();
      return false;
    }
  }
  return true;
}

void TcpSession::OnTick(Clock::time_point now) {
  if (!closed_ && now - last_activity_ >= idle_timeout_) {
    ++worker_->stats().timeouts;
    Close();
  }
}

void TcpSession::Close() {
  if (closed_) return;
  closed_ = true;
  if (counted_tcp_) LogConnection();
  if (pool_ != nullptr) {
    worker_->ConnectionReleased(pool_, /*closed=*/true);
    pool_ = nullptr;
  }
  for (Side* s : {&down_, &up_}) {
    if (s->registered) worker_->loop()->Remove(s->fd.get());
    s->fd.Reset();
  }
  --worker_->stats().downstream_cx_active;
  if (counted_tcp_) --worker_->stats().tcp_cx_active;
  worker_->Retire(this);
}

void TcpSession::LogConnection() {
  const compile::ProxyConfig& config = *snap_->config;
  if (config.access_logs.empty()) return;
  AccessLogEntry e;
  e.start_time = start_wall_;
  e.response_flags = log_flags_;
  e.bytes_received = bytes_received_;
  e.bytes_sent = bytes_sent_;
  e.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      worker_->Now() - start_)
                      .count();
  std::string remote = peer_.ToString();
  std::string remote_ip = remote.substr(0, remote.rfind(':'));
  if (remote_ip.size() > 1 && remote_ip.front() == '[')
    remote_ip = remote_ip.substr(1, remote_ip.size() - 2);
  std::string local = local_ ? local_->ToString() : std::string();
  e.downstream_remote_address = remote;
  e.downstream_remote_address_without_port = remote_ip;
  e.downstream_local_address = local;
  e.connection_id = worker_->NextConnectionId();
  std::string upstream;
  if (!tried_.empty() && !connecting_) {
    upstream = tried_.back().ToString();
    e.upstream_host = upstream;
  }
  if (log_flags_ & kFlagUpstreamConnectFailure)
    e.upstream_transport_failure_reason = "connection_failure";
  int32_t ingress = -1;
  if (cluster_ >= 0) {
    const compile::Cluster& cluster = config.clusters[cluster_];
    e.upstream_cluster = cluster.name;
    ingress = cluster.access_log;
  }
  if (route_ != nullptr) e.route_name = route_->name;
  e.source = snap_->SourceKey(source_workload_);
  worker_->WriteAccessLog(config, e, ingress, -1);
}

}  // namespace nodemesh::proxy
