#include "agent/admin/admin_server.h"

#include <errno.h>
#include <sys/socket.h>

#include <exception>
#include <utility>

#include "agent/http/http1_parser.h"
#include "agent/http/http1_writer.h"
#include "glog/logging.h"

namespace nodemesh::admin {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadBufferSize = size_t{64} * 1024;
constexpr int kListenBacklog = 128;
constexpr int kMaxAcceptsPerWakeup = 64;
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

std::string JsonError(std::string_view message) {
  std::string out = "{\"error\":\"";
  for (char c : message) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u >= 0x7f) {
      // Keeps the body valid JSON whatever bytes a path carried.
      static constexpr char kHex[] = "0123456789abcdef";
      out.append("\\u00");
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  out.append("\"}");
  return out;
}

AdminResponse ErrorResponse(int status, std::string_view message) {
  return AdminResponse{status, "application/json", JsonError(message)};
}

// Splits an origin-form ("/a?b") or absolute-form ("http://h/a?b") target.
void SplitTarget(std::string_view target, std::string_view* path,
                 std::string_view* query) {
  if (size_t scheme = target.find("://"); !target.empty() &&
                                          target.front() != '/' &&
                                          scheme != std::string_view::npos) {
    size_t slash = target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/")
                                             : target.substr(slash);
  }
  size_t q = target.find('?');
  *path = target.substr(0, q);
  *query =
      q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

}  // namespace

// One accepted socket: parses requests with the shared codec, answers them
// in order (pipelining), and closes gracefully.
class AdminServer::Connection : public http::Http1Visitor {
 public:
  Connection(AdminServer* server, net::UniqueFd fd)
      : server_(server),
        fd_(std::move(fd)),
        parser_(http::Http1Parser::Mode::kRequest, this) {}

  int fd() const { return fd_.get(); }

  void Start() {
    last_activity_ = Clock::now();
    ArmTimer(server_->options_.idle_timeout);
  }

  void OnIo(uint32_t events) {
    if (events & EPOLLERR) {
      Close();
      return;
    }
    if (events & (EPOLLIN | EPOLLHUP)) {
      if (Reading()) {
        ReadOnce();
      } else if (events & EPOLLHUP) {
        Close();  // peer gone; nothing left can be delivered
        return;
      }
    }
    if (phase_ != Phase::kClosed && (events & EPOLLOUT)) Flush();
  }

  // The server is draining: close now if idle, else after this request.
  void OnDrain() {
    if (phase_ != Phase::kOpen || dispatching_ ||
        parser_.message_in_progress()) {
      return;
    }
    if (out_off_ < out_.size()) {
      phase_ = Phase::kClosing;
      UpdateEvents();
      return;
    }
    Close();
  }

  void Close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    server_->loop_->CancelTimer(timer_);
    server_->loop_->Remove(fd_.get());
    fd_.Reset();
    server_->Retire(this);
  }

  // http::Http1Visitor
  void OnHeaders(const http::MessageHead& head) override {
    // Copy what the handler needs: the parser's views die with this call.
    method_.assign(head.method);
    target_.assign(head.target);
    size_t total = 0;
    for (const http::HeaderField& f : head.headers) {
      total += f.name.size() + f.value.size();
    }
    header_arena_.clear();
    header_arena_.reserve(total);  // no reallocation below: views stay valid
    headers_.Clear();
    for (const http::HeaderField& f : head.headers) {
      size_t at = header_arena_.size();
      header_arena_.append(f.name).append(f.value);
      std::string_view a(header_arena_);
      headers_.Add(a.substr(at, f.name.size()),
                   a.substr(at + f.name.size(), f.value.size()));
    }
    body_.clear();
    keep_alive_ = head.keep_alive;
    connect_ = head.connect;

    const size_t limit = server_->options_.max_request_body;
    if (head.framing == http::BodyFraming::kContentLength &&
        head.content_length > limit) {
      RejectBody();
      return;
    }
    if (head.expect_continue && head.framing != http::BodyFraming::kNone) {
      out_.append("HTTP/1.1 100 Continue\r\n\r\n");
    }
  }

  void OnBody(std::string_view data) override {
    if (phase_ != Phase::kOpen) return;
    if (body_.size() + data.size() > server_->options_.max_request_body) {
      RejectBody();
      return;
    }
    body_.append(data);
  }

  void OnMessageComplete() override {
    if (phase_ != Phase::kOpen) return;
    AdminRequest req;
    req.method = method_;
    SplitTarget(target_, &req.path, &req.query);
    req.body = body_;
    req.headers = &headers_;

    std::string allow;
    dispatching_ = true;
    AdminResponse resp = server_->Dispatch(req, &allow);
    dispatching_ = false;

    // CONNECT cannot be served here, and a draining server closes after
    // each response; a declined Upgrade just continues as HTTP/1.1.
    const bool close = !keep_alive_ || connect_ || server_->draining_;
    Respond(resp, method_ == "HEAD", close, allow);
    if (close) {
      BeginClosing();
    } else if (parser_.upgraded()) {
      parser_.Resume();
    }
    if (out_.size() - out_off_ > server_->options_.max_pending_output) {
      parser_.Pause();  // backpressure: a client pipelining without reading
    }
  }

 private:
  enum class Phase {
    kOpen,       // reading requests
    kClosing,    // writing the last responses, then shutdown(SHUT_WR)
    kLingering,  // discarding input until EOF so the peer is not reset
    kClosed,
  };

  bool Reading() const {
    return (phase_ == Phase::kOpen && !parser_.paused()) ||
           phase_ == Phase::kLingering;
  }

  void ReadOnce() {
    // One read per wakeup: the loop is level-triggered, so anything left is
    // reported again after other connections had their turn.
    ssize_t n = ::recv(fd_.get(), server_->read_buf_.data(),
                       server_->read_buf_.size(), 0);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) Close();
      return;
    }
    last_activity_ = Clock::now();
    if (n == 0) {
      peer_eof_ = true;
      if (phase_ == Phase::kLingering || out_off_ == out_.size()) {
        Close();
        return;
      }
      // Half-closed: answers already queued are still delivered.
      phase_ = Phase::kClosing;
      Flush();
      return;
    }
    if (phase_ == Phase::kLingering) return;
    Process(
        std::string_view(server_->read_buf_.data(), static_cast<size_t>(n)));
    if (phase_ != Phase::kClosed) Flush();
  }

  void Process(std::string_view data) {
    size_t used = parser_.Feed(data);
    if (parser_.has_error()) {
      const http::ParseError& e = parser_.error();
      if (phase_ == Phase::kOpen) {
        Respond(ErrorResponse(e.status, e.reason), false, true, {});
        BeginClosing();
      }
      return;
    }
    if (phase_ != Phase::kOpen) return;  // closing: the rest is ignored
    if (parser_.paused()) pending_in_.assign(data.substr(used));
  }

  // 413 without reading the body; the connection closes after it.
  void RejectBody() {
    Respond(ErrorResponse(413, "request body larger than the admin limit"),
            false, true, {});
    BeginClosing();
  }

  void Respond(const AdminResponse& r, bool head_only, bool close,
               std::string_view allow) {
    constexpr size_t kFixed = 3;
    http::HeaderField fixed[kFixed];
    std::vector<http::HeaderField> more;  // only when a handler adds fields
    http::HeaderField* fields = fixed;
    if (!r.headers.empty()) {
      more.resize(kFixed + r.headers.size());
      fields = more.data();
    }
    size_t n = 0;
    if (!r.content_type.empty()) fields[n++] = {"Content-Type", r.content_type};
    if (!allow.empty()) fields[n++] = {"Allow", allow};
    if (close) fields[n++] = {"Connection", "close"};
    for (const auto& [name, value] : r.headers) fields[n++] = {name, value};
    std::span<const http::HeaderField> span(fields, n);
    if (r.status < 200 || r.status == 204 || r.status == 304) {
      http::AppendResponseHead(r.status, span, std::nullopt, &out_);
    } else {
      http::AppendResponse(r.status, span, r.body, &out_, head_only);
    }
  }

  void BeginClosing() {
    phase_ = Phase::kClosing;
    parser_.Pause();  // no further requests are dispatched
    pending_in_.clear();
  }

  void Flush() {
    while (out_off_ < out_.size()) {
      // MSG_NOSIGNAL: a peer that went away must not SIGPIPE the agent.
      ssize_t n = ::send(fd_.get(), out_.data() + out_off_,
                         out_.size() - out_off_, MSG_NOSIGNAL);
      if (n > 0) {
        out_off_ += static_cast<size_t>(n);
        last_activity_ = Clock::now();
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      } else {
        Close();
        return;
      }
    }
    if (out_off_ == out_.size()) {
      out_.clear();  // keeps capacity for the next responses
      out_off_ = 0;
      if (phase_ == Phase::kClosing) {
        BeginLinger();
        return;
      }
      if (phase_ == Phase::kOpen && parser_.paused()) {
        ResumeParsing();
        if (phase_ == Phase::kClosed) return;
        if (out_off_ < out_.size()) {
          Flush();
          return;
        }
      }
    }
    UpdateEvents();
  }

  // Output drained after a backpressure pause: parse what was held back.
  void ResumeParsing() {
    parser_.Resume();
    std::string held = std::move(pending_in_);
    pending_in_.clear();
    Process(held);
  }

  void BeginLinger() {
    ::shutdown(fd_.get(), SHUT_WR);
    if (peer_eof_) {
      Close();
      return;
    }
    phase_ = Phase::kLingering;
    ArmTimer(server_->options_.linger_timeout);
    UpdateEvents();
  }

  void UpdateEvents() {
    uint32_t want =
        (Reading() ? EPOLLIN : 0u) | (out_off_ < out_.size() ? EPOLLOUT : 0u);
    if (want == events_) return;
    if (absl::Status st = server_->loop_->Modify(fd_.get(), want); !st.ok()) {
      LOG(WARNING) << "admin: " << st.message();
      Close();
      return;
    }
    events_ = want;
  }

  void ArmTimer(std::chrono::milliseconds delay) {
    server_->loop_->CancelTimer(timer_);
    timer_ = server_->loop_->AddTimer(delay, [this] {
      Reentry guard(server_);
      timer_ = net::EventLoop::kInvalidTimer;
      OnTimer();
    });
  }

  void OnTimer() {
    if (phase_ == Phase::kLingering) {
      Close();
      return;
    }
    // Re-arm for the remainder instead of resetting a timer on every read.
    auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(
        Clock::now() - last_activity_);
    if (idle >= server_->options_.idle_timeout) {
      VLOG(1) << "admin: closing connection idle for " << idle.count() << " ms";
      Close();
      return;
    }
    ArmTimer(server_->options_.idle_timeout - idle);
  }

  AdminServer* const server_;
  net::UniqueFd fd_;
  http::Http1Parser parser_;
  Phase phase_ = Phase::kOpen;
  uint32_t events_ = EPOLLIN;  // as registered by the server
  bool peer_eof_ = false;
  bool dispatching_ = false;
  net::EventLoop::TimerId timer_ = net::EventLoop::kInvalidTimer;
  Clock::time_point last_activity_;

  std::string out_;  // responses not yet sent; out_off_ bytes already were
  size_t out_off_ = 0;
  std::string pending_in_;  // input held back while the parser is paused

  // The request being read; capacity is reused across requests.
  std::string method_;
  std::string target_;
  std::string header_arena_;
  http::HeaderList headers_;
  std::string body_;
  bool keep_alive_ = true;
  bool connect_ = false;
};

AdminServer::Reentry::~Reentry() {
  if (--s_->depth_ == 0) s_->graveyard_.clear();
}

AdminServer::AdminServer(net::EventLoop* loop, AdminServerOptions options)
    : loop_(loop), options_(options), read_buf_(kReadBufferSize) {}

AdminServer::~AdminServer() {
  Reentry guard(this);
  loop_->CancelTimer(accept_retry_timer_);
  if (listen_fd_) loop_->Remove(listen_fd_.get());
  std::vector<Connection*> open;
  for (auto& [raw, conn] : connections_) open.push_back(raw);
  for (Connection* c : open) c->Close();
}

AdminResponse JsonResponse(int status, const nlohmann::json& body) {
  return AdminResponse{
      status, "application/json",
      body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
          "\n"};
}

absl::Status AdminServer::Listen(const net::SocketAddress& addr,
                                 uint32_t mark) {
  if (listen_fd_) {
    return absl::FailedPreconditionError("admin: already listening on " +
                                         bound_.ToString());
  }
  absl::StatusOr<net::UniqueFd> fd =
      net::ListenTcp(addr, kListenBacklog, /*reuse_port=*/true, mark);
  if (!fd.ok()) return fd.status();
  absl::StatusOr<net::SocketAddress> bound = net::LocalAddress(fd->get());
  if (!bound.ok()) return bound.status();
  bound_ = *bound;
  return Serve(std::move(*fd), bound_.ToString());
}

absl::Status AdminServer::Serve(net::UniqueFd fd, const std::string& where) {
  if (absl::Status st =
          loop_->Add(fd.get(), EPOLLIN, [this](uint32_t) { OnAcceptable(); });
      !st.ok()) {
    return st;
  }
  listen_fd_ = std::move(fd);
  draining_ = false;
  LOG(INFO) << "admin: listening on " << where;
  return absl::OkStatus();
}

absl::Status AdminServer::ListenUnix(const std::string& path) {
  if (listen_fd_)
    return absl::FailedPreconditionError("admin: already listening");
  absl::StatusOr<net::UniqueFd> fd = net::ListenUnix(path, kListenBacklog);
  if (!fd.ok()) return fd.status();
  return Serve(std::move(*fd), "unix:" + path);
}

void AdminServer::Handle(std::string method, std::string path, AdminHandler h) {
  std::vector<Route>& routes = routes_[std::move(path)];
  for (Route& r : routes) {
    if (r.method == method) {
      r.handler = std::move(h);
      return;
    }
  }
  routes.push_back(Route{std::move(method), std::move(h)});
}

void AdminServer::StopAccepting() {
  Reentry guard(this);
  if (!draining_) {
    LOG(INFO) << "admin: draining " << connections_.size()
              << " connection(s) on " << bound_.ToString();
  }
  draining_ = true;
  loop_->CancelTimer(accept_retry_timer_);
  if (listen_fd_) {
    loop_->Remove(listen_fd_.get());
    listen_fd_.Reset();
  }
  // Collect first: closing a connection removes it from the map.
  std::vector<Connection*> open;
  for (auto& [raw, conn] : connections_) open.push_back(raw);
  for (Connection* c : open) c->OnDrain();
}

void AdminServer::OnAcceptable() {
  Reentry guard(this);
  for (int i = 0; i < kMaxAcceptsPerWakeup && listen_fd_; ++i) {
    absl::StatusOr<net::UniqueFd> fd = net::Accept(listen_fd_.get(), nullptr);
    if (!fd.ok()) {
      // Out of fds or memory: the listener would stay readable and spin.
      LOG(WARNING) << "admin: " << fd.status().message()
                   << "; pausing accepts for " << kAcceptRetryDelay.count()
                   << " ms";
      PauseAccepting();
      return;
    }
    if (!fd->valid()) return;
    if (connections_.size() >= options_.max_connections) {
      VLOG(1) << "admin: connection limit reached, closing new connection";
      continue;  // the UniqueFd closes it
    }
    auto conn = std::make_unique<Connection>(this, std::move(*fd));
    Connection* raw = conn.get();
    absl::Status st = loop_->Add(raw->fd(), EPOLLIN, [this, raw](uint32_t ev) {
      Reentry guard(this);
      raw->OnIo(ev);
    });
    if (!st.ok()) {
      LOG(WARNING) << "admin: " << st.message();
      continue;
    }
    connections_.emplace(raw, std::move(conn));
    raw->Start();
  }
}

void AdminServer::PauseAccepting() {
  if (!loop_->Modify(listen_fd_.get(), 0).ok()) return;
  accept_retry_timer_ = loop_->AddTimer(kAcceptRetryDelay, [this] {
    accept_retry_timer_ = net::EventLoop::kInvalidTimer;
    if (listen_fd_) (void)loop_->Modify(listen_fd_.get(), EPOLLIN);
  });
}

void AdminServer::Retire(Connection* conn) {
  auto it = connections_.find(conn);
  if (it == connections_.end()) return;
  graveyard_.push_back(std::move(it->second));
  connections_.erase(it);
}

void AdminServer::HandlePrefix(std::string prefix, AdminHandler h) {
  prefix_routes_[std::move(prefix)] = std::move(h);
}

const AdminHandler* AdminServer::FindPrefixRoute(std::string_view path) const {
  // Few prefixes are registered; a scan keeps the longest match simple.
  const AdminHandler* best = nullptr;
  size_t best_len = 0;
  for (const auto& [prefix, handler] : prefix_routes_) {
    if (path.starts_with(prefix) &&
        (best == nullptr || prefix.size() > best_len)) {
      best = &handler;
      best_len = prefix.size();
    }
  }
  return best;
}

AdminResponse AdminServer::Dispatch(const AdminRequest& req,
                                    std::string* allow) {
  auto it = routes_.find(req.path);
  const AdminHandler* handler = nullptr;
  if (it == routes_.end()) {
    handler = FindPrefixRoute(req.path);
    if (handler == nullptr) {
      return ErrorResponse(404,
                           "no admin endpoint at " + std::string(req.path));
    }
  } else {
    const AdminHandler* get = nullptr;
    for (const Route& r : it->second) {
      if (r.method == req.method) handler = &r.handler;
      if (r.method == "GET") get = &r.handler;
    }
    if (handler == nullptr && req.method == "HEAD") handler = get;
  }
  if (handler == nullptr) {
    for (const Route& r : it->second) {
      if (!allow->empty()) allow->append(", ");
      allow->append(r.method);
    }
    return ErrorResponse(405, std::string(req.method) + " not allowed on " +
                                  std::string(req.path) + "; use " + *allow);
  }
  // A handler bug fails its request, never the agent.
  try {
    return (*handler)(req);
  } catch (const std::exception& e) {
    LOG(ERROR) << "admin: handler for " << req.method << " " << req.path
               << " threw: " << e.what();
  } catch (...) {
    LOG(ERROR) << "admin: handler for " << req.method << " " << req.path
               << " threw a non-std exception";
  }
  return ErrorResponse(500, "handler failed; see the agent log");
}

}  // namespace nodemesh::admin
