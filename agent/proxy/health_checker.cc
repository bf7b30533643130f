#include "agent/proxy/health_checker.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace nodemesh::proxy {

struct HealthChecker::Probe {
  Probe(const net::SocketAddress& a, const model::HealthCheckPolicy& p)
      : address(a), state(p.healthy_threshold, p.unhealthy_threshold) {}
  net::SocketAddress address;
  HealthCheckState state;
  net::UniqueFd fd;
  bool connected = false;
  std::string response;
  net::EventLoop::TimerId timeout = net::EventLoop::kInvalidTimer;
  net::EventLoop::TimerId next = net::EventLoop::kInvalidTimer;
};

namespace {

bool IsHttp(model::PortProtocol p) { return p != model::PortProtocol::kTcp; }

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
