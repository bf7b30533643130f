#include "agent/proxy/http_access_log.h"

#include "absl/strings/str_cat.h"
#include "agent/proxy/http_session.h"
#include "agent/proxy/worker.h"

namespace nodemesh::proxy {
namespace {

int64_t ToMillis(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// The authority Envoy's :authority would hold: an absolute-form target's,
// CONNECT's target, or Host.
std::string_view Authority(const http::MessageHead& head) {
  if (head.connect) return head.target;
  std::string_view t = head.target;
  size_t scheme = t.find("://");
  if (!t.empty() && t.front() != '/' && scheme != t.npos) {
    std::string_view rest = t.substr(scheme + 3);
    return rest.substr(0, rest.find_first_of("/?#"));
  }
  return head.headers.Get("host").value_or("");
}

}  // namespace

void HttpExchangeLog::Begin(const compile::ProxyConfig& config,
                            const http::MessageHead* head,
                            Clock::time_point now) {
  pending_ = !config.access_logs.empty();
  if (!pending_) return;
  start_wall_ = std::chrono::system_clock::now();
  start_ = now;
  request_end_.reset();
  response_start_.reset();
  body_received_ = 0;
  body_sent_ = 0;
  flags_ = 0;
  details_ = {};
  method_.clear();
  path_.clear();
  authority_.clear();
  protocol_ = {};
  headers_.Reset(config.access_log_headers);
  if (head == nullptr) return;
  method_.assign(head->method);
  path_.assign(head->target);
  authority_.assign(Authority(*head));
  protocol_ = head->version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
  headers_.Capture(config.access_log_headers, HeaderSource::kRequest,
                   head->headers);
}

void HttpExchangeLog::ResponseHead(const compile::ProxyConfig& config,
                                   const http::MessageHead& head,
                                   Clock::time_point now) {
  if (!pending_) return;
  response_start_ = now;
  headers_.Capture(config.access_log_headers, HeaderSource::kResponse,
                   head.headers);
}

void HttpExchangeLog::ResponseTrailers(const compile::ProxyConfig& config,
                                       const http::HeaderList& trailers) {
  if (!pending_) return;
  headers_.Capture(config.access_log_headers, HeaderSource::kTrailer, trailers);
}

void HttpExchangeLog::LocalReply(LocalReason reason, size_t body_bytes) {
  flags_ |= ReasonResponseFlags(reason);
  details_ = ReasonCodeDetails(reason);
  body_sent_ = static_cast<int64_t>(body_bytes);
}

bool HttpExchangeLog::Finish(Clock::time_point now, AccessLogEntry* e) {
  if (!pending_) return false;
  pending_ = false;
  e->start_time = start_wall_;
  e->method = method_;
  e->path = path_;
  e->authority = authority_;
  e->scheme = "http";
  e->protocol = protocol_;
  e->response_flags = flags_;
  e->response_code_details = details_;
  e->bytes_received = body_received_;
  e->bytes_sent = body_sent_;
  e->duration_ms = ToMillis(now - start_);
  if (request_end_) e->request_duration_ms = ToMillis(*request_end_ - start_);
  if (response_start_)
    e->response_duration_ms = ToMillis(*response_start_ - start_);
  e->headers = &headers_;
  return true;
}

void HttpExchangeLog::FillConnection(Worker* worker, const ConnectionInfo& info,
                                     AccessLogEntry* e) {
  if (!have_connection_) {
    have_connection_ = true;
    remote_ = info.peer.ToString();
    remote_ip_ = remote_.substr(0, remote_.rfind(':'));
    if (remote_ip_.size() > 1 && remote_ip_.front() == '[')
      remote_ip_ = remote_ip_.substr(1, remote_ip_.size() - 2);
    // Where the client connected: its original destination when it was
    // redirected, else the listener it reached (no getsockname needed).
    const WorkerOptions& o = worker->options();
    if (info.original_dst) {
      local_ = info.original_dst->ToString();
    } else if (info.outbound) {
      local_ =
          absl::StrCat(info.peer.family() == AF_INET6 ? "[::1]" : "127.0.0.1",
                       ":", o.outbound_port);
    } else if (o.gateway_address.find(':') != std::string::npos) {
      local_ = absl::StrCat("[", o.gateway_address, "]:", info.listener_port);
    } else {
      local_ = absl::StrCat(o.gateway_address, ":", info.listener_port);
    }
    connection_id_ = worker->NextConnectionId();
  }
  e->downstream_remote_address = remote_;
  e->downstream_remote_address_without_port = remote_ip_;
  e->downstream_local_address = local_;
  e->connection_id = connection_id_;
}

std::string_view HttpExchangeLog::UpstreamHost(
    const net::SocketAddress& endpoint) {
  upstream_host_ = endpoint.ToString();
  return upstream_host_;
}

}  // namespace nodemesh::proxy
