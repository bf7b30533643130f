#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "agent/net/event_loop.h"
#include "agent/net/socket.h"
#include "agent/net/unique_fd.h"

namespace nodemesh::dns {

struct DnsServerOptions {
  uint32_t mark = 0;  // SO_MARK on every socket (the agent's)
  uint32_t ttl_seconds = 30;
  // Where names outside the mesh go; empty: the nameservers of
  // /etc/resolv.conf.
  std::vector<net::SocketAddress> upstreams;
  std::chrono::milliseconds upstream_timeout{5000};
};

struct DnsStats {
  uint64_t queries = 0;         // datagrams received from workloads
  uint64_t mesh_answers = 0;    // answered from the mesh's names
  uint64_t forwarded = 0;       // sent to the host's resolver
  uint64_t forward_errors = 0;  // no upstream, send failed, or timed out
  uint64_t malformed = 0;       // not a one-question query: FORMERR
};

// The mesh DNS: answers virtual service names with their VIPs and forwards
// every other name to the host's resolver. Workloads reach it because
// connect4/sendmsg4 rewrite their port-53 datagrams to the loopback of their
// own network namespace at --dns_port, where this server has a socket.
// Runs on one event loop (DNS is light; the main loop serves it).
class DnsServer {
 public:
  DnsServer(net::EventLoop* loop, DnsServerOptions options);
  ~DnsServer();

  // A UDP socket on `addr` (SO_REUSEPORT: a new agent binds beside the old
  // one). `fd` may be given already bound, e.g. created inside a pod's
  // network namespace; `tag` names it in logs.
  absl::Status Listen(const net::SocketAddress& addr);
  absl::Status Adopt(net::UniqueFd fd, const std::string& tag);
  void Close(const std::string& tag);
  // Stops answering (drain).
  void CloseAll();

  // name (lowercase, no trailing dot) -> IPv4 (host order).
  void SetNames(absl::flat_hash_map<std::string, uint32_t> names);
  const DnsStats& stats() const { return stats_; }

 private:
  struct Pending {
    int reply_fd;
    sockaddr_storage client;
    socklen_t client_len;
    uint16_t client_id;
    std::chrono::steady_clock::time_point deadline;
  };
  void OnQuery(int fd);
  void OnUpstreamAnswer();
  void Forward(int fd, const sockaddr_storage& from, socklen_t from_len,
               std::string_view query);
  void Expire();
  // Drops forwarded queries whose answer would go out on `fd`.
  void ForgetQueriesFrom(int fd);
  absl::Status EnsureUpstreamSocket();

  net::EventLoop* loop_;
  DnsServerOptions options_;
  std::map<std::string, net::UniqueFd> listeners_;  // by tag
  net::UniqueFd upstream_fd_;
  absl::flat_hash_map<std::string, uint32_t> names_;
  absl::flat_hash_map<uint16_t, Pending> pending_;  // by upstream query id
  uint16_t next_id_;
  size_t next_upstream_ = 0;
  net::EventLoop::TimerId expire_timer_ = net::EventLoop::kInvalidTimer;
  DnsStats stats_;
  std::vector<char> buf_;
};

// A bound, non-blocking UDP socket for a DNS listener (SO_REUSEPORT, the
// mark set); callable on any thread, e.g. one inside a pod's namespace.
absl::StatusOr<net::UniqueFd> BindDnsSocket(const net::SocketAddress& addr,
                                            uint32_t mark);

// The nameservers of a resolv.conf file, port 53.
std::vector<net::SocketAddress> ResolvConfNameservers(
    const std::string& path = "/etc/resolv.conf");

}  // namespace nodemesh::dns
