#include "agent/proxy/health_checker.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/http/h2_codec.h"
#include "glog/logging.h"

namespace nodemesh::proxy {

// One endpoint's checks. HTTP/2 and gRPC checks speak HTTP/2 through a
// client codec of their own, one stream per check.
struct HealthChecker::Probe final : http::H2Visitor {
  Probe(const net::SocketAddress& a, const model::HealthCheckPolicy& p)
      : address(a), state(p.healthy_threshold, p.unhealthy_threshold) {}
  net::SocketAddress address;
  HealthCheckState state;
  net::UniqueFd fd;
  bool connected = false;
  std::string response;
  net::EventLoop::TimerId timeout = net::EventLoop::kInvalidTimer;
  net::EventLoop::TimerId next = net::EventLoop::kInvalidTimer;

  // HTTP/2 (http2 and grpc).
  std::unique_ptr<http::H2Codec> codec;
  http::H2OutBody request_body;
  int status = 0;
  std::string grpc_status;  // from the response head or trailers
  bool done = false;        // the stream ended (or was reset)

  void OnHeaders(int32_t, const http::H2HeaderBlock& block,
                 bool end_stream) override {
    if (block.status != 0) status = block.status;
    if (auto g = block.headers.Get("grpc-status")) grpc_status.assign(*g);
    if (end_stream) done = true;
  }
  void OnData(int32_t stream_id, std::string_view data) override {
    if (response.size() < 1024) response.append(data);
    codec->Consume(stream_id, data.size());
  }
  void OnEndStream(int32_t) override { done = true; }
  void OnStreamClose(int32_t, uint32_t) override { done = true; }
  http::H2OutBody* BodyOf(int32_t) override { return &request_body; }
};

namespace {

bool IsHttp(model::PortProtocol p) { return p != model::PortProtocol::kTcp; }
bool IsHttp2(model::PortProtocol p) {
  return p == model::PortProtocol::kHttp2 || p == model::PortProtocol::kGrpc;
}

// grpc.health.v1.HealthCheckResponse{status: SERVING}: field 1, varint 1.
constexpr std::string_view kServing("\x08\x01", 2);

}  // namespace

HealthChecker::HealthChecker(net::EventLoop* loop,
                             const model::HealthCheckPolicy& policy,
                             uint16_t listener_port, uint32_t mark,
                             std::function<void()> on_change)
    : loop_(loop),
      policy_(policy),
      port_(policy.port ? static_cast<uint16_t>(*policy.port) : listener_port),
      mark_(mark),
      request_(absl::StrCat(
          "GET ", policy.path && !policy.path->empty() ? *policy.path : "/",
          " HTTP/1.1\r\nUser-Agent: nodemesh-health-check\r\n"
          "Connection: close\r\nHost: ")),
      on_change_(std::move(on_change)) {}

HealthChecker::~HealthChecker() {
  for (auto& [key, p] : probes_) {
    Close(p.get());
    loop_->CancelTimer(p->next);
  }
}

void HealthChecker::SetEndpoints(
    const std::vector<net::SocketAddress>& endpoints) {
  std::map<std::string, std::unique_ptr<Probe>> next;
  for (const net::SocketAddress& ep : endpoints) {
    std::string key = ep.ToString();
    auto it = probes_.find(key);
    if (it != probes_.end()) {
      next[key] = std::move(it->second);
      probes_.erase(it);
      continue;
    }
    auto p = std::make_unique<Probe>(ep.WithPort(port_), policy_);
    Probe* raw = p.get();
    next[key] = std::move(p);
    raw->next = loop_->AddTimer(std::chrono::milliseconds(0),
                                [this, raw] { Start(raw); });
  }
  for (auto& [key, p] : probes_) {  // left service discovery
    Close(p.get());
    loop_->CancelTimer(p->next);
  }
  probes_ = std::move(next);
}

bool HealthChecker::healthy(const std::string& key) const {
  auto it = probes_.find(key);
  return it == probes_.end() || it->second->state.healthy();
}

void HealthChecker::Start(Probe* p) {
  p->next = net::EventLoop::kInvalidTimer;
  p->connected = false;
  p->response.clear();
  p->codec.reset();
  p->status = 0;
  p->grpc_status.clear();
  p->done = false;
  auto fd = net::ConnectTcp(p->address, mark_);
  if (!fd.ok()) {
    VLOG(1) << "health check of " << p->address.ToString() << ": "
            << fd.status();
    Finish(p, false);
    return;
  }
  p->fd = std::move(*fd);
  if (auto s = loop_->Add(p->fd.get(), EPOLLOUT,
                          [this, p](uint32_t ev) { OnEvent(p, ev); });
      !s.ok()) {
    p->fd = net::UniqueFd();
    Finish(p, false);
    return;
  }
  p->timeout = loop_->AddTimer(
      std::chrono::milliseconds(policy_.timeout_millis), [this, p] {
        p->timeout = net::EventLoop::kInvalidTimer;
        Finish(p, false);
      });
}

void HealthChecker::OnEvent(Probe* p, uint32_t events) {
  if (!p->connected) {
    if (!net::SocketError(p->fd.get()).ok() ||
        (events & (EPOLLERR | EPOLLHUP)) != 0) {
      Finish(p, false);
      return;
    }
    if (!IsHttp(policy_.protocol)) {
      Finish(p, true);
      return;
    }
    p->connected = true;
    if (IsHttp2(policy_.protocol)) {
      StartHttp2(p);
      return;
    }
    std::string req = absl::StrCat(request_, p->address.ToString(), "\r\n\r\n");
    // A few hundred bytes into an empty socket buffer: one write.
    if (::write(p->fd.get(), req.data(), req.size()) !=
        static_cast<ssize_t>(req.size())) {
      Finish(p, false);
      return;
    }
    (void)loop_->Modify(p->fd.get(), EPOLLIN);
    return;
  }
  if (p->codec != nullptr) {
    ReadHttp2(p);
    return;
  }
  char buf[512];
  for (;;) {
    ssize_t n = ::read(p->fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      Finish(p, false);  // closed before a status line
      return;
    }
    p->response.append(buf, static_cast<size_t>(n));
    if (p->response.find("\r\n") != std::string::npos) break;
    if (p->response.size() > 4096) break;
  }
  size_t eol = p->response.find("\r\n");
  if (eol == std::string::npos) {
    if (p->response.size() > 4096) Finish(p, false);
    return;
  }
  // "HTTP/1.1 200 OK"
  const std::string_view line(p->response.data(), eol);
  bool ok = line.size() >= 12 && line.substr(0, 5) == "HTTP/" &&
            line.substr(8, 4) == " 200";
  Finish(p, ok);
}

// http2: GET path, pass on 200. grpc: grpc.health.v1.Health/Check for the
// whole server (service ""), pass on grpc-status 0 with SERVING, as Envoy's
// gRPC health checker does.
void HealthChecker::StartHttp2(Probe* p) {
  p->codec = std::make_unique<http::H2Codec>(http::H2Codec::Role::kClient, p);
  const bool grpc = policy_.protocol == model::PortProtocol::kGrpc;
  std::string authority = p->address.ToString();
  std::string path =
      grpc ? "/grpc.health.v1.Health/Check"
           : (policy_.path && !policy_.path->empty() ? *policy_.path : "/");
  std::vector<http::HeaderField> fields = {
      {":method", grpc ? "POST" : "GET"},
      {":scheme", "http"},
      {":authority", authority},
      {":path", path},
      {"user-agent", "nodemesh-health-check"}};
  p->request_body.Clear();
  if (grpc) {
    fields.push_back({"content-type", "application/grpc"});
    fields.push_back({"te", "trailers"});
    // One empty HealthCheckRequest: uncompressed, length 0.
    p->request_body.data.assign(5, '\0');
    p->request_body.end = true;
  }
  if (p->codec->SubmitRequest(fields, grpc ? &p->request_body : nullptr) <= 0) {
    Finish(p, false);
    return;
  }
  if (!WriteHttp2(p)) return;
  (void)loop_->Modify(p->fd.get(), EPOLLIN);
}

bool HealthChecker::WriteHttp2(Probe* p) {
  std::string out;
  if (!p->codec->Produce(&out, 64 * 1024) ||
      (!out.empty() && ::write(p->fd.get(), out.data(), out.size()) !=
                           static_cast<ssize_t>(out.size()))) {
    Finish(p, false);
    return false;
  }
  return true;
}

void HealthChecker::ReadHttp2(Probe* p) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(p->fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0 ||
        !p->codec->Feed(std::string_view(buf, static_cast<size_t>(n)))) {
      Finish(p, false);
      return;
    }
    if (p->done) break;
  }
  if (!p->done) {
    WriteHttp2(p);  // SETTINGS acknowledgements, window updates
    return;
  }
  bool ok = p->status == 200;
  if (policy_.protocol == model::PortProtocol::kGrpc) {
    // The message after its 5-byte prefix.
    ok = ok && p->grpc_status == "0" && p->response.size() >= 7 &&
         std::string_view{p->response}.substr(5, 2) == kServing;
  }
  Finish(p, ok);
}

void HealthChecker::Close(Probe* p) {
  if (p->fd.get() >= 0) {
    loop_->Remove(p->fd.get());
    p->fd = net::UniqueFd();
  }
  loop_->CancelTimer(p->timeout);
  p->timeout = net::EventLoop::kInvalidTimer;
}

void HealthChecker::Finish(Probe* p, bool success) {
  Close(p);
  ++(success ? successes_ : failures_);
  if (p->state.Record(success)) {
    LOG(INFO) << "health check: endpoint " << p->address.ToString()
              << " is now " << (success ? "healthy" : "unhealthy");
    if (on_change_) on_change_();
  }
  p->next = loop_->AddTimer(std::chrono::milliseconds(policy_.interval_millis),
                            [this, p] { Start(p); });
}

}  // namespace nodemesh::proxy
