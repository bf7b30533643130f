#include "agent/proxy/http_session.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "absl/strings/escaping.h"
#include "agent/http/http1_writer.h"
#include "agent/http/trace_context.h"
#include "agent/proxy/h2_downstream.h"
#include "agent/proxy/route_match.h"
#include "agent/proxy/tcp_session.h"

namespace nodemesh::proxy {
namespace {

thread_local char read_scratch[64 * 1024];

// Bytes of pipelined input held before the client stops being read.
constexpr size_t kMaxBufferedInput = 64 * 1024;

bool IsFramingField(std::string_view name) {
  return http::EqualsIgnoreCase(name, "content-length") ||
         http::EqualsIgnoreCase(name, "transfer-encoding");
}

// The last chunk with the trailer fields that may travel on: never
// framing, routing or hop-by-hop ones (RFC 9110 6.5.1). `scratch` keeps its
// capacity between messages.
void AppendLastChunkWithTrailers(const http::HeaderList& trailers,
                                 std::vector<http::HeaderField>* scratch,
                                 std::string* out) {
  scratch->clear();
  for (const http::HeaderField& f : trailers) {
    if (IsFramingField(f.name) || http::EqualsIgnoreCase(f.name, "host") ||
        http::IsHopByHopHeader(f.name)) {
      continue;
    }
    scratch->push_back(f);
  }
  http::AppendLastChunk(*scratch, out);
}

void AppendHex(uint64_t v, int digits, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i)
    out->push_back(kHex[(v >> (i * 4)) & 15]);
}

// The authority of an absolute-form target ("http://h:1/p" -> "h:1"),
// which wins over Host (RFC 9112 3.2.2); empty for origin-form.
std::string_view AbsoluteAuthority(std::string_view target) {
  size_t scheme = target.find("://");
  if (target.empty() || target.front() == '/' || scheme == target.npos)
    return {};
  std::string_view rest = target.substr(scheme + 3);
  return rest.substr(0, rest.find_first_of("/?#"));
}

// CONNECT's target must be authority-form: host:port, nothing else.
bool IsAuthorityForm(std::string_view target) {
  size_t colon = target.rfind(':');
  if (colon == target.npos || colon == 0 || colon + 1 == target.size())
    return false;
  for (char c : target.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
  }
  return target.find_first_of("/?#@ ") == target.npos;
}

// The gRPC codes Envoy maps to 5xx (UNKNOWN, DEADLINE_EXCEEDED, INTERNAL,
// UNAVAILABLE, DATA_LOSS): server errors for outlier detection.
bool IsGrpcServerError(std::string_view code) {
  return code == "2" || code == "4" || code == "13" || code == "14" ||
         code == "15";
}

}  // namespace

HttpSession::HttpSession(Worker* worker, net::UniqueFd fd, ConnectionInfo info)
    : worker_(worker),
      fd_(std::move(fd)),
      info_(info),
      parser_(http::Http1Parser::Mode::kRequest, this) {
  std::string peer = info_.peer.ToString();
  size_t colon = peer.rfind(':');
  peer_ip_ = peer.substr(0, colon);
  if (peer_ip_.size() > 1 && peer_ip_.front() == '[')
    peer_ip_ = peer_ip_.substr(1, peer_ip_.size() - 2);
}

HttpSession::HttpSession(Worker* worker, SessionTransport* transport,
                         ConnectionInfo info)
    : HttpSession(worker, net::UniqueFd(), info) {
  transport_ = transport;
  sniffing_ = false;
}

HttpSession::~HttpSession() = default;

void HttpSession::Start() {
  last_activity_ = worker_->Now();
  if (transport_ != nullptr) return;
  interest_ = EPOLLIN;
  auto s = worker_->loop()->Add(fd_.get(), interest_,
                                [this](uint32_t ev) { OnEvents(ev); });
  if (!s.ok()) Close();
}

void HttpSession::UpdateInterest() {
  if (closed_) return;
  uint32_t want = 0;
  bool upstream_full =
      upstream_ != nullptr &&
      upstream_->pending_output() > worker_->options().high_watermark;
  if (!read_eof_ && !upstream_full && in_.size() - in_off_ < kMaxBufferedInput)
    want |= EPOLLIN;
  if (transport_ != nullptr) {
    if (out_.size() > out_off_) FlushDownstream();
    if (closed_) return;
    bool wants = (want & EPOLLIN) != 0;
    if (wants != wants_input_) {
      wants_input_ = wants;
      transport_->OnSessionWantsInput(wants);
    }
    return;
  }
  if (out_.size() > out_off_) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    (void)worker_->loop()->Modify(fd_.get(), want);
  }
}

void HttpSession::OnEvents(uint32_t events) {
  if (closed_) return;
  if (events & EPOLLOUT) {
    FlushDownstream();
    if (closed_) return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) OnReadable();
}

void HttpSession::OnReadable() {
  ssize_t n = ::read(fd_.get(), read_scratch, sizeof(read_scratch));
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    Close();
    return;
  }
  last_activity_ = worker_->Now();
  if (n == 0) {
    read_eof_ = true;
    // A client that half-closes after a complete request still gets its
    // response; one that leaves mid-request or between requests is gone.
    if (state_ != State::kIdle && request_complete_ && !request_upgrade_) {
      close_after_flush_ = true;
      UpdateInterest();
      return;
    }
    Close();
    return;
  }
  worker_->stats().bytes_received += static_cast<uint64_t>(n);
  if (in_off_ == in_.size()) {
    in_.clear();
    in_off_ = 0;
  }
  in_.append(read_scratch, static_cast<size_t>(n));
  if (sniffing_) {
    static constexpr std::string_view kPreface =
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    std::string_view got(in_.data() + in_off_, in_.size() - in_off_);
    size_t n_cmp = std::min(got.size(), kPreface.size());
    if (got.substr(0, n_cmp) == kPreface.substr(0, n_cmp)) {
      if (got.size() >= kPreface.size()) SwitchToHttp2();
      return;  // a prefix of the preface: wait for the rest
    }
    sniffing_ = false;
  }
  Consume();
  if (!closed_) UpdateInterest();
}

void HttpSession::Deliver(std::string_view bytes) {
  if (closed_) return;
  last_activity_ = worker_->Now();
  if (stream_tunnel_) {
    if (upstream_ != nullptr) upstream_->Send(bytes);
    UpdateInterest();
    return;
  }
  if (in_off_ == in_.size()) {
    in_.clear();
    in_off_ = 0;
  }
  in_.append(bytes);
  Consume();
  if (!closed_) UpdateInterest();
}

void HttpSession::DeliverHead(const http::MessageHead& head) {
  if (closed_) return;
  last_activity_ = worker_->Now();
  OnHeaders(head);
  if (!closed_) UpdateInterest();
}

void HttpSession::DeliverBody(std::string_view data) {
  if (closed_) return;
  last_activity_ = worker_->Now();
  OnBody(data);
  if (!closed_) UpdateInterest();
}

void HttpSession::DeliverTrailers(const http::HeaderList& trailers) {
  if (!closed_) OnTrailers(trailers);
}

void HttpSession::DeliverEnd() {
  if (closed_) return;
  OnMessageComplete();
  if (!closed_) UpdateInterest();
}

void HttpSession::OnTransportDrained() {
  if (closed_ || upstream_ == nullptr) return;
  if (DownstreamBacklog() <= worker_->options().high_watermark)
    upstream_->SetReadPaused(false);
}

size_t HttpSession::DownstreamBacklog() const {
  size_t n = out_.size() - out_off_;
  if (transport_ != nullptr) n += transport_->SessionBacklog();
  return n;
}

bool HttpSession::UpgradeToHttp2(const http::MessageHead& head) {
  if (transport_ != nullptr || head.framing != http::BodyFraming::kNone ||
      !http::EqualsIgnoreCase(head.headers.Get("upgrade").value_or(""),
                              "h2c") ||
      head.headers.Count("http2-settings") != 1) {
    return false;
  }
  Http2DownstreamConnection::Http1Upgrade up;
  std::string encoded(*head.headers.Get("http2-settings"));
  if (!absl::WebSafeBase64Unescape(encoded, &up.settings)) return false;
  up.method.assign(head.method);
  fields_.clear();
  const http::HopByHopFields hop_by_hop(head.headers);
  for (const http::HeaderField& f : head.headers) {
    if (!hop_by_hop.Contains(f.name) &&
        !http::EqualsIgnoreCase(f.name, "http2-settings")) {
      fields_.push_back(f);
    }
  }
  http::AppendRequestHead(head.method, head.target, fields_, std::nullopt,
                          &up.request);
  // Bytes after this head: none (the client waits for the 101).
  worker_->loop()->Remove(fd_.get());
  auto* conn = worker_->Make<Http2DownstreamConnection>(worker_, std::move(fd_),
                                                        info_, std::move(up));
  closed_ = true;
  worker_->Retire(this);
  conn->Start();
  return true;
}

void HttpSession::SwitchToHttp2() {
  worker_->loop()->Remove(fd_.get());
  std::string read(in_, in_off_, std::string::npos);
  auto* conn = worker_->Make<Http2DownstreamConnection>(worker_, std::move(fd_),
                                                        info_, std::move(read));
  closed_ = true;  // the connection (and its count) is the HTTP/2 one's now
  worker_->Retire(this);
  conn->Start();
}

void HttpSession::Consume() {
  while (!closed_ && in_off_ < in_.size() && !parser_.paused() &&
         !parser_.upgraded() && !in_feed_) {
    std::string_view data(in_.data() + in_off_, in_.size() - in_off_);
    in_feed_ = true;
    size_t used = parser_.Feed(data);
    in_feed_ = false;
    if (closed_) return;
    in_off_ += used;
    if (parser_.has_error()) {
      // Nothing after a bad request can be trusted: answer and close.
      close_after_flush_ = true;
      if (state_ == State::kIdle)
        log_.Begin(*worker_->snapshot()->config, nullptr, worker_->Now());
      log_.AddFlags(kFlagDownstreamProtocolError);
      if (state_ == State::kForwarding && upstream_ != nullptr) {
        upstream_->Detach(false);
        upstream_ = nullptr;
      }
      if (response_started_) {
        Close();  // mid-response: nothing sensible can follow
        return;
      }
      state_ = State::kReplied;
      AppendLocalReply(LocalReason::kBadRequest, parser_.error().status, true,
                       false, &out_);
      log_.LocalReply(LocalReason::kBadRequest,
                      ReasonBody(LocalReason::kBadRequest).size());
      LogExchange(parser_.error().status);
      ++worker_->stats()
            .local_replies[static_cast<size_t>(LocalReason::kBadRequest)];
      FlushDownstream();
      return;
    }
    if (used == 0) break;
  }
  if (in_off_ == in_.size()) {
    in_.clear();
    in_off_ = 0;
  } else if (in_off_ > in_.size() / 2) {
    in_.erase(0, in_off_);
    in_off_ = 0;
  }
}

void HttpSession::FlushDownstream() {
  if (transport_ != nullptr && out_off_ < out_.size()) {
    std::string_view pending(out_.data() + out_off_, out_.size() - out_off_);
    out_off_ = out_.size();
    transport_->OnSessionOutput(pending);
    if (closed_) return;
  }
  while (out_off_ < out_.size()) {
    ssize_t n = ::send(fd_.get(), out_.data() + out_off_,
                       out_.size() - out_off_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Close();
      return;
    }
    worker_->stats().bytes_sent += static_cast<uint64_t>(n);
    out_off_ += static_cast<size_t>(n);
  }
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
    if (close_after_flush_ && state_ != State::kForwarding) {
      Close();
      return;
    }
    // The client caught up: let the upstream speak again.
    if (upstream_ != nullptr &&
        DownstreamBacklog() <= worker_->options().high_watermark) {
      upstream_->SetReadPaused(false);
    }
  }
  UpdateInterest();
}

void HttpSession::Close() {
  if (closed_) return;
  closed_ = true;
  worker_->CancelWait(this);
  if (state_ == State::kForwarding) {
    log_.FlagIfNone(kFlagDownstreamConnectionTermination);
    LogExchange(response_started_ ? status_ : 0);
  }
  if (upstream_ != nullptr) {
    upstream_->Detach(false);
    upstream_ = nullptr;
  }
  if (transport_ != nullptr) {
    worker_->Retire(this);
    transport_->OnSessionClosed();
    return;
  }
  if (fd_.valid()) {
    worker_->loop()->Remove(fd_.get());
    fd_.Reset();
  }
  --worker_->stats().downstream_cx_active;
  worker_->Retire(this);
}

void HttpSession::Drain() {
  draining_ = true;
  // An idle keep-alive connection is not closed at once: its client may be
  // sending the next request right now, and would see a reset. The next
  // request is answered with Connection: close; a connection that stays
  // idle for the grace period is closed by OnTick.
  drain_close_at_ = worker_->Now() + kDrainIdleGrace;
  if (state_ != State::kIdle || parser_.message_in_progress() ||
      out_off_ != out_.size())
    close_after_flush_ = true;
}

// ---- Requests ----

void HttpSession::ResetExchange() {
  worker_->CancelWait(this);
  pool_ = nullptr;
  resumed_from_pool_ = false;
  state_ = State::kIdle;
  vhost_ = nullptr;
  route_ = nullptr;
  target_ = nullptr;
  rewrite_host_ = false;
  target_rewritten_ = false;
  request_complete_ = false;
  deadline_ = Clock::time_point::max();
  try_deadline_ = Clock::time_point::max();
  per_request_timeout_ = Millis(0);
  idle_timeout_ = Millis(0);
  tx_.clear();
  replay_ok_ = true;
  attempts_ = 0;
  tried_.clear();
  response_started_ = false;
  response_chunked_ = false;
  response_trailers_done_ = false;
  upstream_keep_alive_ = true;
  response_upgrade_ = false;
  outcome_pending_ = false;
  direct_response_ = false;
  upstream_h2_ = false;
  request_trailers_.clear();
  status_ = 0;
  last_failure_ = LocalReason::kConnectFailure;
  exchange_ = ExchangeCounters{};
}

void HttpSession::OnHeaders(const http::MessageHead& head) {
  if (first_request_ && head.upgrade && UpgradeToHttp2(head)) return;
  first_request_ = false;
  ResetExchange();
  ++worker_->stats().downstream_rq_total;
  start_ = worker_->Now();
  log_.Begin(*worker_->snapshot()->config, &head, start_);
  if (transport_ != nullptr) log_.SetProtocol("HTTP/2");
  state_ = State::kForwarding;
  method_.assign(head.method);
  is_head_ = head.method == "HEAD";
  request_keep_alive_ = head.keep_alive && !draining_;
  request_has_body_ = head.framing != http::BodyFraming::kNone;
  request_chunked_ = head.framing == http::BodyFraming::kChunked;
  // An h2c upgrade not taken (a request with a body) is served as plain
  // HTTP/1.1: the upgrade is between the client and this proxy only.
  const bool h2c =
      head.upgrade &&
      http::EqualsIgnoreCase(head.headers.Get("upgrade").value_or(""), "h2c");
  request_upgrade_ = (head.upgrade && !h2c) || head.connect;
  request_connect_ = head.connect;
  request_minor_ = head.version_minor;
  request_grpc_ = false;
  if (auto type = head.headers.Get("content-type"))
    request_grpc_ = type->substr(0, 16) == "application/grpc";
  if (head.connect && !IsAuthorityForm(head.target)) {
    Reply(LocalReason::kBadRequest);
    return;
  }
  if (!Route(head)) return;
  if (head.expect_continue) {
    // Answered here, as Envoy does: the upstream never sees Expect.
    out_.append("HTTP/1.1 100 Continue\r\n\r\n");
  }
  StartAttempt();
}

bool HttpSession::Route(const http::MessageHead& head) {
  snap_ = worker_->snapshot();
  const compile::ProxyConfig& config = *snap_->config;
  std::string_view authority = AbsoluteAuthority(head.target);
  if (head.connect) authority = head.target;
  if (authority.empty()) authority = head.headers.Get("host").value_or("");
  RequestView view;
  view.method = head.method;
  if (head.connect) {
    view.path = "/";
  } else {
    SplitTarget(head.target, &view.path, &view.query);
  }
  view.scheme = "http";
  view.authority = authority;
  view.headers = &head.headers;
  uint16_t dst_port = info_.original_dst ? info_.original_dst->port() : 0;
  if (info_.outbound) {
    source_ = snap_->SourceOf(info_.source_workload);
    view.port = dst_port;
    vhost_ = config.FindHttpHost(authority, dst_port);
  } else {
    view.port = info_.listener_port;
    for (size_t gi = 0; gi < config.gateways.size(); ++gi) {
      const compile::GatewayListener& g = config.gateways[gi];
      if (g.port != info_.listener_port) continue;
      source_ = gi < snap_->gateway_sources.size() ? snap_->gateway_sources[gi]
                                                   : snap_->unknown_source;
      for (const compile::GatewayRouteEntry& e : g.routes) {
        if (e.Matches(view)) {
          vhost_ = &config.virtual_hosts[e.virtual_host];
          rewrite_host_ = e.rewrite_host;
          if (e.path_rewrite.active() && !head.connect) {
            upstream_target_.clear();
            e.path_rewrite.Apply(view.path, view.query, &upstream_target_);
            target_rewritten_ = true;
          }
          break;
        }
      }
      break;
    }
  }
  if (vhost_ == nullptr || vhost_->is_tcp()) {
    Reply(LocalReason::kNoRoute);
    return false;
  }
  // The virtual service sees the request as the gateway forwards it: its
  // routes match the rewritten path (user guide, "Gateway routes": "/1"
  // after "/chapter1" lost its prefix) and Host.
  if (target_rewritten_) SplitTarget(upstream_target_, &view.path, &view.query);
  if (rewrite_host_) view.authority = vhost_->virtual_service;
  // Route port matches: the port the service was called on.
  view.port = vhost_->port;
  for (const compile::HttpRouteEntry& r : vhost_->http_routes) {
    if (r.Matches(view)) {
      route_ = &r;
      break;
    }
  }
  if (route_ == nullptr) {
    Reply(LocalReason::kNoRoute);
    return false;
  }
  target_ = worker_->PickTarget(route_->targets, route_->index);
  if (target_ == nullptr) {
    Reply(LocalReason::kNoHealthyUpstream);
    return false;
  }
  const compile::Cluster& cluster = config.clusters[target_->cluster];
  per_request_timeout_ = compile::TighterTimeout(route_->per_request_timeout,
                                                 cluster.per_request_timeout);
  if (request_grpc_) {
    // The client's deadline (grpc-timeout) bounds the whole call, retries
    // included, as it does for the client.
    if (auto t = head.headers.Get("grpc-timeout")) {
      if (auto ms = ParseGrpcTimeout(*t); ms && *ms > 0) {
        per_request_timeout_ =
            compile::TighterTimeout(per_request_timeout_, Millis(*ms));
      }
    }
  }
  idle_timeout_ =
      compile::TighterTimeout(route_->idle_timeout, cluster.idle_timeout);
  // http2 and grpc listeners get HTTP/2; an upgrade or CONNECT needs the
  // HTTP/1.1 connection a tunnel is made of.
  upstream_h2_ = (cluster.protocol == model::PortProtocol::kHttp2 ||
                  cluster.protocol == model::PortProtocol::kGrpc) &&
                 !request_upgrade_;
  BuildUpstreamHead(head, authority);
  return true;
}

void HttpSession::AddUpstreamField(std::string_view name,
                                   std::string_view value) {
  if (!upstream_h2_) {
    tx_.append(name).append(": ").append(value).append("\r\n");
    return;
  }
  UpstreamFieldAt at;
  at.name = static_cast<uint32_t>(h2_head_.size());
  at.name_len = static_cast<uint32_t>(name.size());
  h2_head_.append(name);
  at.value = static_cast<uint32_t>(h2_head_.size());
  at.value_len = static_cast<uint32_t>(value.size());
  h2_head_.append(value);
  h2_fields_at_.push_back(at);
}

void HttpSession::BuildUpstreamHead(const http::MessageHead& head,
                                    std::string_view authority) {
  // Origin-form towards the endpoint, whatever form the client used.
  std::string_view target = head.target;
  if (target_rewritten_) {
    target = upstream_target_;
  } else if (!head.connect && !target.empty() && target.front() != '/' &&
             target != "*") {
    size_t scheme = target.find("://");
    size_t slash = target.find('/', scheme == target.npos ? 0 : scheme + 3);
    target =
        slash == target.npos ? std::string_view("/") : target.substr(slash);
  }
  const std::string_view host =
      rewrite_host_ ? std::string_view(vhost_->virtual_service) : authority;
  if (upstream_h2_) {
    // An HTTP/2 endpoint: the head as fields (tx_ keeps only the body).
    h2_head_.clear();
    h2_fields_at_.clear();
    AddUpstreamField(":method", head.method);
    AddUpstreamField(":scheme", "http");
    AddUpstreamField(":authority", host);
    AddUpstreamField(":path", target);
  } else {
    tx_.append(head.method).append(" ").append(target);
    tx_.append(" HTTP/1.1\r\nhost: ").append(host).append("\r\n");
  }
  xff_.clear();
  request_id_.clear();
  traceparent_.clear();
  int traceparents = 0;
  bool has_proto = false;
  const http::HopByHopFields hop_by_hop(head.headers);
  for (const http::HeaderField& f : head.headers) {
    if (hop_by_hop.Contains(f.name) || IsFramingField(f.name) ||
        http::EqualsIgnoreCase(f.name, "host") ||
        http::EqualsIgnoreCase(f.name, "expect")) {
      continue;
    }
    if (http::EqualsIgnoreCase(f.name, "x-forwarded-for")) {
      if (!xff_.empty()) xff_.append(", ");
      xff_.append(f.value);
      continue;
    }
    if (http::EqualsIgnoreCase(f.name, "x-request-id")) {
      if (request_id_.empty()) request_id_.assign(f.value);
      continue;
    }
    if (http::EqualsIgnoreCase(f.name, "traceparent")) {
      // Forwarded below, once: one valid line unchanged, else replaced.
      if (++traceparents == 1) traceparent_.assign(f.value);
      continue;
    }
    if (http::EqualsIgnoreCase(f.name, "x-forwarded-proto")) has_proto = true;
    AddUpstreamField(f.name, f.value);
  }
  if (!xff_.empty()) xff_.append(", ");
  xff_.append(peer_ip_);
  AddUpstreamField("x-forwarded-for", xff_);
  if (!has_proto) AddUpstreamField("x-forwarded-proto", "http");
  if (request_id_.empty()) {
    // A version 4 UUID from the worker's generator: no syscall, no lock.
    uint64_t a = NextRandom(worker_->rng());
    uint64_t b = NextRandom(worker_->rng());
    a = (a & ~0xf000ULL) | 0x4000ULL;
    b = (b & ~(3ULL << 62)) | (2ULL << 62);
    AppendHex(a >> 32, 8, &request_id_);
    request_id_.push_back('-');
    AppendHex(a >> 16, 4, &request_id_);
    request_id_.push_back('-');
    AppendHex(a, 4, &request_id_);
    request_id_.push_back('-');
    AppendHex(b >> 48, 4, &request_id_);
    request_id_.push_back('-');
    AppendHex(b, 12, &request_id_);
  }
  AddUpstreamField("x-request-id", request_id_);
  // W3C Trace Context: a request without one valid traceparent starts a
  // trace here (version 00, random ids, not sampled), so the upstream and
  // the access log can correlate; tracestate passes through unchanged.
  if (traceparents != 1 || !http::IsValidTraceparent(traceparent_)) {
    traceparent_.clear();
    uint64_t hi = NextRandom(worker_->rng());
    uint64_t lo = NextRandom(worker_->rng());
    http::AppendTraceparent(hi, lo, NextRandom(worker_->rng()), &traceparent_);
  }
  AddUpstreamField("traceparent", traceparent_);
  if (head.framing == http::BodyFraming::kContentLength) {
    char digits[24];
    auto end =
        std::to_chars(digits, digits + sizeof(digits), head.content_length);
    AddUpstreamField("content-length",
                     std::string_view(digits, end.ptr - digits));
  } else if (request_chunked_ && !upstream_h2_) {
    tx_.append("transfer-encoding: chunked\r\n");
  }
  if (upstream_h2_) {
    // gRPC servers require it; HTTP/1.1 hops drop it (hop-by-hop).
    if (request_grpc_) AddUpstreamField("te", "trailers");
    return;
  }
  if (request_upgrade_ && !head.connect) {
    tx_.append("connection: upgrade\r\nupgrade: ")
        .append(head.headers.Get("upgrade").value_or(""))
        .append("\r\n");
  }
  tx_.append("\r\n");
}

void HttpSession::SendToUpstream(std::string_view framed) {
  if (replay_ok_) {
    if (tx_.size() + framed.size() > worker_->options().retry_buffer_bytes) {
      if (waiting()) {
        // Waiting for a connection, the request can only be held whole.
        ++pool_->stats->overflow_pending;
        Reply(LocalReason::kOverflow);
        return;
      }
      // Past the retry buffer: stream on, but this request is not retried.
      replay_ok_ = false;
      tx_.clear();
    } else {
      tx_.append(framed);
    }
  }
  if (upstream_ != nullptr) upstream_->Send(framed);
}

void HttpSession::OnBody(std::string_view data) {
  log_.RequestBody(data.size());
  if (state_ != State::kForwarding || data.empty()) return;
  exchange_.request_bytes += data.size();
  if (request_chunked_ && !upstream_h2_) {
    frame_.clear();
    http::AppendChunk(data, &frame_);
    SendToUpstream(frame_);
  } else {
    SendToUpstream(data);
  }
}

void HttpSession::OnTrailers(const http::HeaderList& trailers) {
  if (state_ != State::kForwarding || !request_chunked_) return;
  if (upstream_h2_) {
    // Kept for every attempt: they go out when the request ends.
    for (const http::HeaderField& f : trailers) {
      if (IsFramingField(f.name) || http::EqualsIgnoreCase(f.name, "host") ||
          http::IsHopByHopHeader(f.name)) {
        continue;
      }
      std::string name(f.name);
      for (char& c : name) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      }
      request_trailers_.emplace_back(std::move(name), std::string(f.value));
    }
    return;
  }
  frame_.clear();
  AppendLastChunkWithTrailers(trailers, &fields_, &frame_);
  SendToUpstream(frame_);
  request_chunked_ = false;  // the last chunk is written
}

void HttpSession::OnMessageComplete() {
  request_complete_ = true;
  log_.RequestComplete(worker_->Now());
  if (!parser_.upgraded()) parser_.Pause();  // one request at a time
  if (state_ == State::kReplied) {
    FinishExchange();
    return;
  }
  if (state_ != State::kForwarding) return;
  if (upstream_h2_) {
    if (upstream_ != nullptr) upstream_->EndRequest(request_trailers_);
  } else if (request_chunked_) {
    frame_.clear();
    http::AppendLastChunk({}, &frame_);
    SendToUpstream(frame_);
    request_chunked_ = false;
  }
  if (per_request_timeout_.count() > 0 && !request_upgrade_) {
    deadline_ = worker_->Now() + per_request_timeout_;
  }
}

// ---- Attempts ----

void HttpSession::StartAttempt() {
  if (pool_ == nullptr)
    pool_ = worker_->PoolFor(*snap_->config, target_->cluster);
  std::optional<net::SocketAddress> ep =
      worker_->PickEndpoint(*snap_, target_->cluster, tried_);
  if (!ep) {
    Reply(tried_.empty() ? LocalReason::kNoHealthyUpstream : last_failure_);
    return;
  }
  AcquireFailure failure = AcquireFailure::kNone;
  const std::string* caller = worker_->CallerIdentity(
      info_.source_workload, info_.outbound ? nullptr : source_);
  if (upstream_h2_) {
    upstream_ = worker_->AcquireHttp2Upstream(*ep, pool_, &failure, caller);
  } else {
    // An HTTP/1.1 client's Upgrade or CONNECT hands the upstream's
    // socket over (an HTTP/2 stream's stays with the session).
    upstream_ =
        worker_->AcquireUpstream(*ep, pool_, &failure, caller,
                                 request_upgrade_ && transport_ == nullptr);
  }
  if (upstream_ == nullptr) {
    switch (failure) {
      case AcquireFailure::kConnectionLimit: {
        // A request woken from the queue that lost the race goes back to
        // the front; it was counted when it first overflowed.
        const bool requeue = resumed_from_pool_;
        resumed_from_pool_ = false;
        if (!requeue) {
          ++pool_->stats->overflow_connections;
          if (pool_->max_pending != 0 && pool_->pending >= pool_->max_pending) {
            ++pool_->stats->overflow_pending;
            Reply(LocalReason::kOverflow);
            return;
          }
        }
        worker_->Wait(pool_, this, /*front=*/requeue);
        return;
      }
      case AcquireFailure::kRequestLimit:
        ++pool_->stats->overflow_requests;
        Reply(LocalReason::kOverflow);
        return;
      case AcquireFailure::kOutOfResources:
        // No descriptor or local port left: retrying cannot help.
        ++attempts_;
        tried_.push_back(*ep);
        ++worker_->stats().upstream_rq_total;
        Reply(LocalReason::kOverflow);
        return;
      case AcquireFailure::kConnect:
      case AcquireFailure::kNone:
        ++attempts_;
        tried_.push_back(*ep);
        ++worker_->stats().upstream_rq_total;
        OnUpstreamFailure(UpstreamFailure::kConnect);
        return;
    }
  }
  resumed_from_pool_ = false;
  ++attempts_;
  tried_.push_back(*ep);
  ++worker_->stats().upstream_rq_total;
  upstream_->Attach(this, pool_);
  upstream_->ExpectResponseTo(method_);
  if (upstream_h2_) {
    // The head as fields, the body held so far, and the end if it came.
    h2_fields_.clear();
    for (const UpstreamFieldAt& at : h2_fields_at_) {
      h2_fields_.push_back(
          {std::string_view(h2_head_).substr(at.name, at.name_len),
           std::string_view(h2_head_).substr(at.value, at.value_len)});
    }
    Upstream* up = upstream_;
    up->SendHead(h2_fields_, request_has_body_);
    if (upstream_ == up && !tx_.empty()) up->Send(tx_);
    if (upstream_ == up && request_complete_ && request_has_body_)
      up->EndRequest(request_trailers_);
  } else {
    upstream_->Send(tx_);
  }
  try_deadline_ = route_->retry.per_try_timeout.count() > 0
                      ? worker_->Now() + route_->retry.per_try_timeout
                      : Clock::time_point::max();
}

void HttpSession::OnPoolReady() {
  if (closed_ || state_ != State::kForwarding || upstream_ != nullptr) return;
  resumed_from_pool_ = true;
  StartAttempt();
}

bool HttpSession::CanRetry() const {
  return replay_ok_ && !response_started_ &&
         attempts_ <= route_->retry.max_retries;
}

void HttpSession::Retry() {
  ++worker_->stats().retries;
  ++exchange_.retries;
  StartAttempt();
}

void HttpSession::OnUpstreamFailure(UpstreamFailure failure) {
  upstream_ = nullptr;
  if (stream_tunnel_) {
    Close();  // the endpoint ended the tunnel: so does the stream
    return;
  }
  if (state_ != State::kForwarding) return;
  // Connect failures, resets and bad responses count as server errors
  // (Envoy's gateway errors).
  if (target_ != nullptr && !tried_.empty())
    worker_->RecordOutcome(*snap_, target_->cluster, tried_.back(), true);
  if (response_started_) {
    log_.AddFlags(kFlagUpstreamConnectionTermination);
    Close();  // mid-response: the client must see the truncation
    return;
  }
  const compile::RetryPolicy& p = route_->retry;
  bool retriable = false;
  switch (failure) {
    case UpstreamFailure::kConnect:
      last_failure_ = LocalReason::kConnectFailure;
      retriable = p.connection_error || p.stream_error;
      break;
    case UpstreamFailure::kReset:
      last_failure_ = LocalReason::kUpstreamReset;
      retriable = p.stream_error;
      break;
    case UpstreamFailure::kBadResponse:
      last_failure_ = LocalReason::kBadResponse;
      retriable = p.server_error || p.gateway_error;
      break;
  }
  if (retriable && CanRetry()) {
    Retry();
    return;
  }
  Reply(last_failure_);
}

void HttpSession::OnResponseHead(const http::MessageHead& head) {
  if (state_ != State::kForwarding) return;
  int status = head.status_code;
  // Interim responses: the client got its 100 from us already.
  if (status < 200 && status != 101) return;
  try_deadline_ = Clock::time_point::max();
  if (target_ != nullptr && !tried_.empty()) {
    // gRPC fails with 200 and a grpc-status: in this head (trailers-only)
    // or in the trailers, where the outcome is recorded then.
    std::optional<std::string_view> grpc_status;
    if (request_grpc_ && status == 200) {
      grpc_status = head.headers.Get("grpc-status");
      outcome_pending_ = !grpc_status.has_value();
    }
    if (!outcome_pending_) {
      worker_->RecordOutcome(
          *snap_, target_->cluster, tried_.back(),
          status >= 500 || (grpc_status && IsGrpcServerError(*grpc_status)));
    }
  }
  bool retry = route_->retry.RetriesStatus(status);
  if (!retry && status == 200 && request_grpc_) {
    // A trailers-only response carries grpc-status in its head: the only
    // gRPC failure that can be retried (after a body, the call has begun).
    if (auto g = head.headers.Get("grpc-status")) {
      int code = 0;
      for (char c : *g) code = code * 10 + (c - '0');
      retry =
          g->size() <= 2 && code != 0 && route_->retry.RetriesGrpcStatus(code);
    }
  }
  if (retry && CanRetry()) {
    upstream_->Detach(false);
    upstream_ = nullptr;
    Retry();
    return;
  }
  response_started_ = true;
  status_ = status;
  log_.ResponseHead(*snap_->config, head, worker_->Now());
  upstream_keep_alive_ = head.keep_alive;
  response_upgrade_ = status == 101 || (request_connect_ && status < 300);
  bool close = !request_keep_alive_ || draining_ ||
               (request_has_body_ && !request_complete_);
  fields_.clear();
  const http::HopByHopFields hop_by_hop(head.headers);
  for (const http::HeaderField& f : head.headers) {
    if (hop_by_hop.Contains(f.name)) continue;
    if (IsFramingField(f.name) &&
        (head.framing != http::BodyFraming::kNone || status == 204)) {
      continue;
    }
    fields_.push_back(f);
  }
  response_chunked_ = false;
  if (transport_ != nullptr) {
    // To the HTTP/2 stream as received: its framing, no hop-by-hop fields.
    direct_response_ = true;
    http::MessageHead& h = direct_head_;
    h.status_code = status;
    h.headers.Clear();
    for (const http::HeaderField& f : fields_) h.headers.Add(f.name, f.value);
    h.framing = head.framing == http::BodyFraming::kUntilClose
                    ? http::BodyFraming::kChunked
                    : head.framing;
    h.content_length = head.content_length;
    if (h.framing == http::BodyFraming::kContentLength) {
      auto end =
          std::to_chars(length_digits_, length_digits_ + sizeof(length_digits_),
                        head.content_length);
      h.headers.Add("content-length",
                    std::string_view(length_digits_, end.ptr - length_digits_));
    }
    h.upgrade = status == 101;
    h.connect = request_connect_ && response_upgrade_ && status != 101;
    if (close && !response_upgrade_) close_after_flush_ = true;
    transport_->OnResponseHead(h);
    return;
  }
  std::optional<uint64_t> length;
  switch (head.framing) {
    case http::BodyFraming::kContentLength:
      length = head.content_length;
      break;
    case http::BodyFraming::kChunked:
    case http::BodyFraming::kUntilClose:
      if (request_minor_ >= 1) {
        response_chunked_ = true;
        fields_.push_back({"transfer-encoding", "chunked"});
      } else {
        close = true;  // HTTP/1.0: the close delimits the body
      }
      break;
    case http::BodyFraming::kNone:
      break;
  }
  if (response_upgrade_) {
    if (status == 101) {
      fields_.push_back({"connection", "upgrade"});
      if (auto up = head.headers.Get("upgrade"))
        fields_.push_back({"upgrade", *up});
    }
  } else if (close) {
    fields_.push_back({"connection", "close"});
    close_after_flush_ = true;
  }
  http::AppendResponseHead(status, fields_, length, &out_);
  // An HTTP/2 client sees the head now, not with the first body bytes: a
  // streaming response may be slow to start.
  if (transport_ != nullptr) FlushDownstream();
}

void HttpSession::OnResponseBody(std::string_view data) {
  if (!response_started_ || data.empty()) return;
  exchange_.response_bytes += data.size();
  log_.ResponseBody(data.size());
  if (direct_response_) {
    last_activity_ = worker_->Now();
    transport_->OnResponseBody(data);
    if (closed_) return;
    if (upstream_ != nullptr &&
        DownstreamBacklog() > worker_->options().high_watermark) {
      upstream_->SetReadPaused(true);
    }
    return;
  }
  if (response_chunked_) {
    http::AppendChunk(data, &out_);
  } else {
    out_.append(data);
  }
  last_activity_ = worker_->Now();
  FlushDownstream();
  if (closed_) return;
  if (upstream_ != nullptr &&
      DownstreamBacklog() > worker_->options().high_watermark) {
    upstream_->SetReadPaused(true);
  }
}

void HttpSession::RecordPendingOutcome(std::optional<std::string_view> grpc) {
  if (!outcome_pending_) return;
  outcome_pending_ = false;
  if (target_ != nullptr && !tried_.empty()) {
    worker_->RecordOutcome(*snap_, target_->cluster, tried_.back(),
                           grpc && IsGrpcServerError(*grpc));
  }
}

void HttpSession::OnResponseTrailers(const http::HeaderList& trailers) {
  RecordPendingOutcome(trailers.Get("grpc-status"));
  if (direct_response_) {
    log_.ResponseTrailers(*snap_->config, trailers);
    transport_->OnResponseTrailers(trailers);
    response_trailers_done_ = true;
    return;
  }
  if (!response_started_ || !response_chunked_) return;
  log_.ResponseTrailers(*snap_->config, trailers);
  AppendLastChunkWithTrailers(trailers, &fields_, &out_);
  response_trailers_done_ = true;
}

void HttpSession::OnResponseComplete() {
  if (!response_started_) return;
  RecordPendingOutcome(std::nullopt);
  if (response_upgrade_) {
    StartTunnel();
    return;
  }
  if (response_chunked_ && !response_trailers_done_)
    http::AppendLastChunk({}, &out_);
  if (direct_response_) transport_->OnResponseComplete();
  Record(status_);
  if (upstream_ != nullptr) {
    upstream_->Detach(upstream_keep_alive_ && request_complete_);
    upstream_ = nullptr;
  }
  if (!request_complete_) close_after_flush_ = true;
  FinishExchange();
}

void HttpSession::Record(int status) {
  LogExchange(status);
  WorkerStats& s = worker_->stats();
  if (target_ == nullptr) return;
  WorkerStats::TargetKey key{source_, target_->labels.get()};
  ++s.requests[{key, status}];
  TargetCounters& t = s.targets[key];
  t.duration.Record(
      std::chrono::duration<double>(worker_->Now() - start_).count());
  t.retries += exchange_.retries;
  t.timeouts += exchange_.timeouts;
  t.request_bytes += exchange_.request_bytes;
  t.response_bytes += exchange_.response_bytes;
  exchange_ = ExchangeCounters{};  // a request is recorded once
}

void HttpSession::LogExchange(int status) {
  AccessLogEntry e;
  if (!log_.Finish(worker_->Now(), &e)) return;
  // route_ and target_ belong to snap_; a request refused before routing
  // has none and logs under the current config.
  const compile::ProxyConfig& config =
      snap_ != nullptr ? *snap_->config : *worker_->snapshot()->config;
  log_.FillConnection(worker_, info_, &e);
  e.response_code = status;
  if (e.response_code_details.empty() && response_started_)
    e.response_code_details = "via_upstream";
  int32_t ingress = -1;
  if (target_ != nullptr) {
    // Routed: the upstream head was built with these.
    e.request_id = request_id_;
    e.forwarded_for = xff_;
    const compile::Cluster& cluster = config.clusters[target_->cluster];
    e.upstream_cluster = cluster.name;
    ingress = cluster.access_log;
  }
  if (route_ != nullptr) {
    e.route_name = route_->name;
    const compile::RetryPolicy& p = route_->retry;
    constexpr uint32_t kUpstreamFailure =
        kFlagUpstreamConnectFailure | kFlagUpstreamConnectionTermination |
        kFlagUpstreamRequestTimeout | kFlagUpstreamProtocolError;
    if (p.max_retries > 0 && attempts_ > p.max_retries &&
        ((e.response_flags & kUpstreamFailure) != 0 ||
         p.RetriesStatus(status))) {
      e.response_flags |= kFlagUpstreamRetryLimitExceeded;
    }
  }
  if (!tried_.empty()) e.upstream_host = log_.UpstreamHost(tried_.back());
  if (e.response_flags & kFlagUpstreamConnectFailure)
    e.upstream_transport_failure_reason = "connection_failure";
  // The egress log: a gateway's, or else the calling virtual node's,
  // found by e.source ("mesh/virtualNode"; empty: unknown).
  if (info_.outbound) {
    const ProxySnapshot& snap =
        snap_ != nullptr ? *snap_ : *worker_->snapshot();
    e.source = snap.SourceKey(info_.source_workload);
  }
  int32_t egress =
      info_.outbound ? -1 : config.GatewayAccessLog(info_.listener_port);
  worker_->WriteAccessLog(config, e, ingress, egress);
}

void HttpSession::Reply(LocalReason reason, int status) {
  worker_->CancelWait(this);
  ++worker_->stats().local_replies[static_cast<size_t>(reason)];
  if (upstream_ != nullptr) {
    upstream_->Detach(false);
    upstream_ = nullptr;
  }
  if (status == 0) status = ReasonStatus(reason);
  log_.LocalReply(reason, is_head_ ? 0 : ReasonBody(reason).size());
  Record(status);
  bool close = !request_keep_alive_ || draining_ || request_upgrade_ ||
               (request_has_body_ && !request_complete_) ||
               reason == LocalReason::kBadRequest;
  if (request_grpc_) {
    AppendGrpcLocalReply(reason, close, &out_);
  } else {
    AppendLocalReply(reason, status, close, is_head_, &out_);
  }
  if (close) close_after_flush_ = true;
  state_ = State::kReplied;
  if (request_complete_) {
    FinishExchange();
  } else {
    FlushDownstream();  // the rest of the request is read and dropped
  }
}

// Buffers grown by one large request or response go back: an idle
// keep-alive connection holds only what small messages need.
void HttpSession::TrimBuffers() {
  constexpr size_t kKeep = 64 * 1024;
  if (tx_.capacity() > kKeep) std::string().swap(tx_);
  if (out_.empty() && out_.capacity() > kKeep) std::string().swap(out_);
  if (in_.empty() && in_.capacity() > kKeep) std::string().swap(in_);
}

void HttpSession::FinishExchange() {
  state_ = State::kIdle;
  snap_.reset();
  TrimBuffers();
  FlushDownstream();
  if (closed_) return;
  if (close_after_flush_) return;  // closes when the output is written
  parser_.Resume();
  if (!in_feed_) Consume();
  if (!closed_) UpdateInterest();
}

void HttpSession::StartTunnel() {
  UpstreamConnection* connection = upstream_->connection();
  if (connection == nullptr) {
    Close();
    return;
  }
  ++worker_->stats().tunnels_total;
  Record(status_);
  if (transport_ != nullptr) {
    // The stream stays the client's side of the tunnel: bytes it sent
    // after the request head go first, then both ways unparsed.
    stream_tunnel_ = true;
    if (in_off_ < in_.size()) {
      upstream_->Send(std::string_view{in_}.substr(in_off_));
      in_.clear();
      in_off_ = 0;
    }
    connection->StartRaw();
    return;
  }
  std::string from_upstream, to_upstream;
  net::UniqueFd up = connection->TakeForTunnel(&from_upstream, &to_upstream);
  upstream_ = nullptr;
  std::string to_downstream(out_, out_off_, std::string::npos);
  to_downstream.append(from_upstream);
  to_upstream.append(in_, in_off_, std::string::npos);
  worker_->loop()->Remove(fd_.get());
  Millis idle = idle_timeout_.count() > 0
                    ? idle_timeout_
                    : worker_->options().downstream_idle_timeout;
  TcpSession* tunnel = worker_->Make<TcpSession>(
      worker_, std::move(fd_), std::move(up), std::move(to_downstream),
      std::move(to_upstream), idle);
  closed_ = true;
  --worker_->stats().downstream_cx_active;
  worker_->Retire(this);
  tunnel->Start();
}

// A timeout before the response started is answered (504); after, the
// client can only see the response cut short.
void HttpSession::Expire(LocalReason reason) {
  ++worker_->stats().timeouts;
  ++exchange_.timeouts;
  if (response_started_) {
    log_.AddFlags(ReasonResponseFlags(reason));
    Close();
  } else {
    Reply(reason);
  }
}

void HttpSession::OnTick(Clock::time_point now) {
  if (closed_) return;
  if (draining_ && state_ == State::kIdle && !parser_.message_in_progress() &&
      out_off_ == out_.size() && now >= drain_close_at_) {
    Close();
    return;
  }
  if (state_ == State::kForwarding) {
    if (now >= deadline_) {
      Expire(LocalReason::kRequestTimeout);
      return;
    }
    if (now >= try_deadline_ && !response_started_) {
      ++worker_->stats().timeouts;
      ++exchange_.timeouts;
      try_deadline_ = Clock::time_point::max();
      if (upstream_ != nullptr) {
        upstream_->Detach(false);
        upstream_ = nullptr;
      }
      const compile::RetryPolicy& p = route_->retry;
      last_failure_ = LocalReason::kPerTryTimeout;
      if ((p.server_error || p.gateway_error || p.stream_error) && CanRetry()) {
        Retry();
      } else {
        Reply(LocalReason::kPerTryTimeout);
      }
      return;
    }
    if (idle_timeout_.count() > 0 && now - last_activity_ >= idle_timeout_) {
      Expire(LocalReason::kIdleTimeout);
    }
    return;
  }
  if (state_ == State::kIdle &&
      now - last_activity_ >= worker_->options().downstream_idle_timeout) {
    Close();
  }
}

}  // namespace nodemesh::proxy
