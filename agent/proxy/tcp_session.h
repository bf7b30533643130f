#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "agent/net/unique_fd.h"
#include "agent/proxy/worker.h"

namespace nodemesh::proxy {

// Bytes both ways between two sockets: a tcpRoute connection (which picks
// and connects to its endpoint itself), or the tunnel an HTTP Upgrade or
// CONNECT becomes. Half-close is passed on (EOF on one side shuts the
// other's write side once its queue is written); the idle timeout closes
// both. read()/write() through user space, never splice(): sockmap may
// redirect these sockets, and splice on them was broken until recent
// kernels.
class TcpSession final : public WorkerObject {
 public:
  // tcpRoute: routes `host` and connects.
  // `peer`, `local` (where the client connected) and `source_workload`
  // (NM_SO_PEER_WORKLOAD) are for the access log.
  TcpSession(Worker* worker, net::UniqueFd downstream,
             std::shared_ptr<const ProxySnapshot> snap,
             const compile::VirtualHost* host, const net::SocketAddress& peer,
             const std::optional<net::SocketAddress>& local,
             uint32_t source_workload);
  // Tunnel: both sides are connected; `to_downstream`/`to_upstream` are
  // bytes already read for the other side.
  TcpSession(Worker* worker, net::UniqueFd downstream, net::UniqueFd upstream,
             std::string to_downstream, std::string to_upstream,
             Millis idle_timeout);
  ~TcpSession() override;

  void Start();
  void OnTick(Clock::time_point now) override;
  void Abort() override { Close(); }

 private:
  struct Side {
    net::UniqueFd fd;
    std::string out;  // queued for this side
    size_t out_off = 0;
    bool read_eof = false;
    bool write_shut = false;
    uint32_t interest = 0;
    bool registered = false;
    size_t pending() const { return out.size() - out_off; }
  };

  void Connect();
  void OnConnectEvent();
  void OnEvents(Side* self, Side* peer, uint32_t events);
  void Pump(Side* from, Side* to);
  bool Flush(Side* to, Side* from);
  void UpdateInterest(Side* s, Side* peer);
  void Close();
  // tcpRoute connections: one access log line when they close.
  void LogConnection();

  Worker* const worker_;
  std::shared_ptr<const ProxySnapshot> snap_;
  const compile::TcpRouteEntry* route_ = nullptr;
  const compile::WeightedCluster* target_ = nullptr;
  Side down_;
  Side up_;
  bool connecting_ = false;
  int attempts_ = 0;
  std::vector<net::SocketAddress> tried_;
  Millis idle_timeout_;
  Clock::time_point last_activity_;
  bool counted_tcp_ = false;

  // For the access log (tcpRoute connections only).
  net::SocketAddress peer_;
  std::optional<net::SocketAddress> local_;
  uint32_t source_workload_ = 0;
  std::chrono::system_clock::time_point start_wall_;
  Clock::time_point start_;
  int32_t cluster_ = -1;
  ClusterPool* pool_ = nullptr;  // counted in while open
  uint32_t log_flags_ = 0;
  int64_t bytes_received_ = 0;
  int64_t bytes_sent_ = 0;
};

}  // namespace nodemesh::proxy
