#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/model/types_common.h"
#include "agent/net/event_loop.h"
#include "agent/net/socket.h"

namespace nodemesh::proxy {

// One `dns` service discovery: a hostname and the port its endpoints
// listen on (the virtual node's listener port).
struct DnsQuery {
  std::string hostname;
  uint16_t port = 0;
  bool all_addresses = false;  // ENDPOINTS; LOADBALANCER takes the first
  model::IpPreference ip_preference = model::IpPreference::kIPv4Preferred;
  std::string Key() const;
};

using EndpointList = std::vector<net::SocketAddress>;

// Keeps the hostnames of `dns` service discovery resolved, off the worker
// threads: getaddrinfo() blocks, so it runs on a thread of its own, and
// results come back to the main loop. Address literals resolve at once.
// Names are re-resolved every `refresh`; a failed lookup keeps the last
// good answer (a DNS outage does not empty a cluster).
class EndpointResolver {
 public:
  // `on_change` runs on `main_loop` when any answer changed.
  EndpointResolver(net::EventLoop* main_loop, std::function<void()> on_change,
                   std::chrono::milliseconds refresh = std::chrono::seconds(5));
  ~EndpointResolver();

  // Main thread. The queries to keep resolved (others are forgotten).
  void SetQueries(const std::vector<DnsQuery>& queries);
  // Main thread. The current answer; null before the first one.
  std::shared_ptr<const EndpointList> Lookup(const DnsQuery& q) const;

  // Lookups that failed, for metrics.
  uint64_t failures() const { return failures_; }

 private:
  struct Shared;
  void Loop();

  net::EventLoop* main_loop_;
  std::function<void()> on_change_;
  std::chrono::milliseconds refresh_;
  std::map<std::string, std::shared_ptr<const EndpointList>> answers_;
  uint64_t failures_ = 0;
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

// Resolves now, blocking (the resolver thread's work). `literal_only`:
// answer only when the hostname is an address literal, with no lookup.
absl::StatusOr<EndpointList> ResolveDns(const DnsQuery& q,
                                        bool literal_only = false);

}  // namespace nodemesh::proxy
