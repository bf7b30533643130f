#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "agent/compile/proxy_config.h"
#include "agent/http/http1_parser.h"
#include "agent/net/socket.h"
#include "agent/proxy/access_log.h"
#include "agent/proxy/local_reply.h"

namespace nodemesh::proxy {

class Worker;
struct ConnectionInfo;

// What an HttpSession keeps of one exchange for its access log line: the
// request fields the formats read (the parser's views die with the head),
// timings, body bytes and Envoy response flags. Buffers keep their capacity
// between requests. Every call is a no-op unless the config logs something.
class HttpExchangeLog {
 public:
  using Clock = std::chrono::steady_clock;

  // A request began; `head` is null for one that could not be parsed.
  void Begin(const compile::ProxyConfig& config, const http::MessageHead* head,
             Clock::time_point now);
  void RequestBody(size_t bytes) { body_received_ += bytes; }
  void RequestComplete(Clock::time_point now) { request_end_ = now; }
  void ResponseHead(const compile::ProxyConfig& config,
                    const http::MessageHead& head, Clock::time_point now);
  void ResponseBody(size_t bytes) { body_sent_ += bytes; }
  void ResponseTrailers(const compile::ProxyConfig& config,
                        const http::HeaderList& trailers);
  // The proxy answered itself with `body_bytes` of body.
  void LocalReply(LocalReason reason, size_t body_bytes);
  // The client's protocol when it was not the request line's (HTTP/2
  // streams reach the session as HTTP/1.1). Static text.
  void SetProtocol(std::string_view protocol) { protocol_ = protocol; }
  void AddFlags(uint32_t flags) { flags_ |= flags; }
  // The exchange ended early: `flags` unless a cause is known already.
  void FlagIfNone(uint32_t flags) {
    if (flags_ == 0) flags_ = flags;
  }

  // Fills `entry` with what was recorded, and the exchange counts as
  // logged; false when there is nothing to log (no access log, or logged
  // already). Views point into this object.
  bool Finish(Clock::time_point now, AccessLogEntry* entry);

  // The connection's addresses and id, computed when first logged.
  void FillConnection(Worker* worker, const ConnectionInfo& info,
                      AccessLogEntry* entry);
  std::string_view UpstreamHost(const net::SocketAddress& endpoint);

 private:
  bool pending_ = false;
  std::chrono::system_clock::time_point start_wall_;
  Clock::time_point start_;
  std::optional<Clock::time_point> request_end_;
  std::optional<Clock::time_point> response_start_;
  int64_t body_received_ = 0;
  int64_t body_sent_ = 0;
  uint32_t flags_ = 0;
  std::string_view details_;
  std::string method_;
  std::string path_;
  std::string authority_;
  std::string_view protocol_;
  CapturedHeaders headers_;

  bool have_connection_ = false;
  std::string remote_;
  std::string remote_ip_;
  std::string local_;
  uint64_t connection_id_ = 0;
  std::string upstream_host_;
};

}  // namespace nodemesh::proxy
