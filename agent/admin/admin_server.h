#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "agent/http/header_list.h"
#include "agent/net/event_loop.h"
#include "agent/net/socket.h"
#include "agent/net/unique_fd.h"
#include "nlohmann/json.hpp"

namespace nodemesh::admin {

struct AdminResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Further header fields, e.g. x-amzn-ErrorType. Content-Type, Content-Length
  // and Connection are the server's; do not repeat them here.
  std::vector<std::pair<std::string, std::string>> headers = {};
};

// A request as a handler sees it. Views are valid for the handler call only.
struct AdminRequest {
  std::string_view method;
  std::string_view path;   // target up to '?', not percent-decoded
  std::string_view query;  // after '?', without it; empty if none
  std::string_view body;
  const http::HeaderList* headers = nullptr;

  // First header field called `name` (case-insensitive).
  std::optional<std::string_view> Header(std::string_view name) const {
    return headers != nullptr ? headers->Get(name) : std::nullopt;
  }
};

using AdminHandler = std::function<AdminResponse(const AdminRequest&)>;

// A JSON response, pretty-printed; invalid UTF-8 (a host name, say) is
// replaced rather than thrown on in the loop.
AdminResponse JsonResponse(int status, const nlohmann::json& body);

struct AdminServerOptions {
  size_t max_request_body = 1 << 20;  // larger bodies get 413
  size_t max_connections = 256;       // more are accepted and closed at once
  // A connection with no bytes in either direction for this long is closed.
  std::chrono::milliseconds idle_timeout{60'000};
  // After the last response on a closing connection, how long to keep
  // reading (and discarding) so the peer gets the response, not a reset.
  std::chrono::milliseconds linger_timeout{2'000};
  // Stop reading pipelined requests while this much output is unsent.
  size_t max_pending_output = 4 << 20;
};

// The agent's HTTP/1.1 admin endpoint on one EventLoop, built on the shared
// HTTP/1.1 codec. Handlers run on the loop thread and must not block. All
// methods must be called on the loop thread; the destructor too (or after
// the loop has stopped).
class AdminServer {
 public:
  explicit AdminServer(net::EventLoop* loop, AdminServerOptions options = {});
  ~AdminServer();

  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Listens with SO_REUSEPORT, so a new agent can bind beside a draining
  // one. Port 0 picks a free port (see bound_port()).
  // A non-zero `mark` goes on the listener (the agent's SO_MARK).
  absl::Status Listen(const net::SocketAddress& addr, uint32_t mark = 0);
  // Listens on a Unix socket (net::ListenUnix: mode 0600, renamed into
  // place over a running agent's).
  absl::Status ListenUnix(const std::string& path);

  // Routes `method` on exactly `path`. Other paths get 404, other methods on
  // a known path 405 with Allow; HEAD is served by the GET handler without
  // the body.
  void Handle(std::string method, std::string path, AdminHandler h);

  // Routes every method on every path that starts with `prefix` (e.g.
  // "/v20190125/") and has no exact route; the longest prefix wins. The
  // handler answers wrong methods itself.
  void HandlePrefix(std::string prefix, AdminHandler h);

  // Drain: closes the listener and idle connections; requests in flight are
  // finished and answered with "Connection: close".
  void StopAccepting();

  size_t open_connections() const { return connections_.size(); }
  uint16_t bound_port() const { return bound_.port(); }

 private:
  class Connection;
  struct Route {
    std::string method;
    AdminHandler handler;
  };
  // Keeps connections closed during a callback alive until the outermost
  // callback returns, so no object is destroyed while on the stack.
  class Reentry {
   public:
    explicit Reentry(AdminServer* s) : s_(s) { ++s_->depth_; }
    ~Reentry();

   private:
    AdminServer* s_;
  };

  // Accepts on a bound listener from now on.
  absl::Status Serve(net::UniqueFd fd, const std::string& where);
  void OnAcceptable();
  void PauseAccepting();
  void Retire(Connection* conn);
  // Runs the route for a complete request; *allow is set for a 405.
  AdminResponse Dispatch(const AdminRequest& req, std::string* allow);
  const AdminHandler* FindPrefixRoute(std::string_view path) const;

  net::EventLoop* const loop_;
  const AdminServerOptions options_;
  net::UniqueFd listen_fd_;
  net::SocketAddress bound_;
  bool draining_ = false;
  net::EventLoop::TimerId accept_retry_timer_ = net::EventLoop::kInvalidTimer;

  std::map<std::string, std::vector<Route>, std::less<>> routes_;
  std::map<std::string, AdminHandler, std::less<>> prefix_routes_;
  absl::flat_hash_map<Connection*, std::unique_ptr<Connection>> connections_;
  std::vector<std::unique_ptr<Connection>> graveyard_;
  int depth_ = 0;
  // One read buffer for all connections: the loop reads one socket at a
  // time, and unparsed bytes are kept per connection only when paused.
  std::vector<char> read_buf_;
};

}  // namespace nodemesh::admin
