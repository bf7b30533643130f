#include "agent/proxy/tls_downstream.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "glog/logging.h"

namespace nodemesh::proxy {
namespace {

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr size_t kBuffer = 64 * 1024;  // per direction
thread_local char scratch[16 * 1024];

}  // namespace

TlsDownstream::TlsDownstream(Worker* worker, net::UniqueFd fd,
                             ConnectionInfo info,
                             const compile::GatewayTls& config)
    : worker_(worker),
      fd_(std::move(fd)),
      info_(info),
      mode_(config.mode),
      context_(config.context),
      sans_(config.sans) {}

TlsDownstream::~TlsDownstream() = default;

void TlsDownstream::Start() {
  started_ = worker_->Now();
  interest_ = EPOLLIN;
  auto s = worker_->loop()->Add(fd_.get(), interest_,
                                [this](uint32_t ev) { OnEvents(ev); });
  if (!s.ok()) {
    interest_ = 0;
    Fail("cannot watch the socket");
  }
}

void TlsDownstream::OnEvents(uint32_t events) {
  if (closed_) return;
  if (tls_ == nullptr) {
    Sniff();
    return;
  }
  if (!tls_->handshake_done()) {
    Handshake();
    return;
  }
  (void)events;
  Pump();
}

void TlsDownstream::Sniff() {
  unsigned char first = 0;
  ssize_t n = ::recv(fd_.get(), &first, 1, MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n <= 0) {
    Fail("closed before sending anything");
    return;
  }
  if (first != 0x16) {
    if (mode_ == model::TlsMode::kStrict) {
      ++worker_->stats().gateway_tls_refused;
      Fail("plaintext on a STRICT TLS listener");
      return;
    }
    // PERMISSIVE: a plaintext client is served as on any listener.
    ++worker_->stats().gateway_tls_plaintext;
    worker_->loop()->Remove(fd_.get());
    interest_ = 0;
    worker_->Make<HttpSession>(worker_, std::move(fd_), info_)->Start();
    session_started_ = true;
    Close();
    return;
  }
  if (context_ == nullptr) {
    ++worker_->stats().gateway_tls_failures;
    Fail("no certificate for this listener (see the agent's log)");
    return;
  }
  tls_ = std::make_unique<tls::TlsSocket>(context_.get(), fd_.get(),
                                          /*server=*/true);
  Handshake();
}

void TlsDownstream::Handshake() {
  switch (tls_->Handshake()) {
    case tls::TlsSocket::Result::kOk:
      break;
    case tls::TlsSocket::Result::kWantRead:
      if (interest_ != EPOLLIN) {
        interest_ = EPOLLIN;
        (void)worker_->loop()->Modify(fd_.get(), interest_);
      }
      return;
    case tls::TlsSocket::Result::kWantWrite:
      if (interest_ != EPOLLOUT) {
        interest_ = EPOLLOUT;
        (void)worker_->loop()->Modify(fd_.get(), interest_);
      }
      return;
    default:
      ++worker_->stats().gateway_tls_failures;
      Fail(tls_->error());
      return;
  }
  if (!sans_.empty() && !tls::SanMatches(tls::PeerOf(tls_->ssl()), sans_)) {
    ++worker_->stats().gateway_tls_failures;
    Fail(
        "the client certificate has none of the listener's "
        "subjectAlternativeNames");
    return;
  }
  ++worker_->stats().gateway_tls_handshakes;
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   pair) != 0) {
    Fail("socketpair failed");
    return;
  }
  local_ = net::UniqueFd(pair[0]);
  worker_->Make<HttpSession>(worker_, net::UniqueFd(pair[1]), info_)->Start();
  session_started_ = true;
  local_interest_ = EPOLLIN;
  auto s = worker_->loop()->Add(local_.get(), local_interest_,
                                [this](uint32_t ev) { OnLocalEvents(ev); });
  if (!s.ok()) {
    local_interest_ = 0;
    Close();
    return;
  }
  Pump();
}

void TlsDownstream::OnLocalEvents(uint32_t /*events*/) {
  if (closed_) return;
  Pump();
}

// Moves bytes both ways until neither side takes more, then closes when
// both directions are done.
void TlsDownstream::Pump() {
  if (closed_ || tls_ == nullptr || !tls_->handshake_done()) return;
  bool progress = true;
  while (progress && !closed_) {
    progress = false;
    // Client -> session.
    if (!client_eof_ && to_local_.size() - to_local_off_ < kBuffer) {
      size_t n = 0;
      auto r = tls_->Read(scratch, sizeof(scratch), &n);
      if (r == tls::TlsSocket::Result::kOk) {
        to_local_.append(scratch, n);
        progress = true;
      } else if (r == tls::TlsSocket::Result::kClosed ||
                 r == tls::TlsSocket::Result::kError) {
        client_eof_ = true;
        progress = true;
      }
    }
    if (to_local_off_ < to_local_.size()) {
      ssize_t n = ::send(local_.get(), to_local_.data() + to_local_off_,
                         to_local_.size() - to_local_off_, MSG_NOSIGNAL);
      if (n > 0) {
        to_local_off_ += static_cast<size_t>(n);
        progress = true;
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        Close();
        return;
      }
      if (to_local_off_ == to_local_.size()) {
        to_local_.clear();
        to_local_off_ = 0;
      }
    }
    if (client_eof_ && to_local_.empty() && !local_shut_) {
      ::shutdown(local_.get(), SHUT_WR);
      local_shut_ = true;
    }
    // Session -> client.
    if (!local_eof_ && to_client_.size() - to_client_off_ < kBuffer) {
      ssize_t n = ::read(local_.get(), scratch, sizeof(scratch));
      if (n > 0) {
        to_client_.append(scratch, static_cast<size_t>(n));
        progress = true;
      } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        local_eof_ = true;
        progress = true;
      }
    }
    if (to_client_off_ < to_client_.size()) {
      size_t n = 0;
      auto r = tls_->Write(to_client_.data() + to_client_off_,
                           to_client_.size() - to_client_off_, &n);
      if (r == tls::TlsSocket::Result::kOk) {
        to_client_off_ += n;
        progress = true;
      } else if (r == tls::TlsSocket::Result::kClosed ||
                 r == tls::TlsSocket::Result::kError) {
        Close();
        return;
      }
      if (to_client_off_ == to_client_.size()) {
        to_client_.clear();
        to_client_off_ = 0;
      }
    }
  }
  if (local_eof_ && to_client_.empty()) {
    tls_->Shutdown();
    Close();
    return;
  }
  if (client_eof_ && local_eof_) {
    Close();
    return;
  }
  UpdateInterest();
}

void TlsDownstream::UpdateInterest() {
  uint32_t want = 0;
  if (!client_eof_ && to_local_.size() - to_local_off_ < kBuffer)
    want |= EPOLLIN;
  if (to_client_off_ < to_client_.size()) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    (void)worker_->loop()->Modify(fd_.get(), want);
  }
  uint32_t local_want = 0;
  if (!local_eof_ && to_client_.size() - to_client_off_ < kBuffer)
    local_want |= EPOLLIN;
  if (to_local_off_ < to_local_.size()) local_want |= EPOLLOUT;
  if (local_want != local_interest_) {
    local_interest_ = local_want;
    (void)worker_->loop()->Modify(local_.get(), local_want);
  }
}

void TlsDownstream::OnTick(Clock::time_point now) {
  if (closed_) return;
  if ((tls_ == nullptr || !tls_->handshake_done()) &&
      now - started_ > kHandshakeTimeout) {
    ++worker_->stats().gateway_tls_failures;
    Fail("no TLS handshake within 10 s");
  }
}

void TlsDownstream::Fail(std::string_view why) {
  LOG_EVERY_N(WARNING, 20) << "gateway listener " << info_.listener_port
                           << ": TLS client " << info_.peer.ToString()
                           << " refused: " << why;
  Close();
}

void TlsDownstream::Close() {
  if (closed_) return;
  closed_ = true;
  // Until a session took the client, this object is what is counted.
  if (!session_started_) --worker_->stats().downstream_cx_active;
  if (fd_.valid()) {
    worker_->loop()->Remove(fd_.get());
    fd_.Reset();
  }
  if (local_.valid()) {
    worker_->loop()->Remove(local_.get());
    local_.Reset();
  }
  tls_.reset();
  worker_->Retire(this);
}

}  // namespace nodemesh::proxy
