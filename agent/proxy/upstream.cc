#include "agent/proxy/upstream.h"

#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace nodemesh::proxy {
namespace {

// Reads land here first; only bytes that cannot be handled at once are
// copied to a connection's own buffer.
thread_local char read_scratch[64 * 1024];

}  // namespace

UpstreamConnection::UpstreamConnection(Worker* worker, net::UniqueFd fd,
                                       const net::SocketAddress& endpoint,
                                       ClusterPool* pool,
                                       const EndpointKey& key)
    : worker_(worker),
      fd_(std::move(fd)),
      endpoint_(endpoint),
      key_(key),
      pool_(pool),
      parser_(http::Http1Parser::Mode::kResponse, this) {
  worker_->ConnectionOpened(pool_);
}

UpstreamConnection::UpstreamConnection(Worker* worker,
                                       std::shared_ptr<TunnelChannel> channel,
                                       const net::SocketAddress& endpoint,
                                       ClusterPool* pool,
                                       const EndpointKey& key)
    : worker_(worker),
      channel_(std::move(channel)),
      endpoint_(endpoint),
      key_(key),
      pool_(pool),
      parser_(http::Http1Parser::Mode::kResponse, this) {
  worker_->ConnectionOpened(pool_);
  channel_->set_user(this);
}

UpstreamConnection::~UpstreamConnection() = default;

void UpstreamConnection::Start() {
  ++worker_->stats().upstream_cx_total;
  ++worker_->stats().upstream_cx_active;
  if (channel_ != nullptr) {
    // Bytes may go at once: the stream carries them once it is open.
    connected_ = true;
    return;
  }
  interest_ = EPOLLOUT;
  auto s = worker_->loop()->Add(fd_.get(), interest_,
                                [this](uint32_t ev) { OnEvents(ev); });
  if (!s.ok()) {
    // Surfaces as a connect failure on the next turn of the exchange.
    connected_ = false;
    interest_ = 0;
  }
}

void UpstreamConnection::Attach(UpstreamCallbacks* cb, ClusterPool* requests) {
  cb_ = cb;
  if (in_pool_ && pool_->idle > 0) --pool_->idle;
  in_pool_ = false;
  request_pool_ = requests;
  ++request_pool_->requests;
  response_done_ = false;
  detach_requested_ = false;
  ++worker_->endpoint(KeyOf(endpoint_)).active;  // balancing: per address
}

void UpstreamConnection::UpdateInterest() {
  if (channel_ != nullptr) return;  // events come from the channel
  uint32_t want = 0;
  if (!connected_) {
    want = EPOLLOUT;
  } else {
    if (!read_paused_) want |= EPOLLIN;
    if (pending_output() > 0) want |= EPOLLOUT;
  }
  if (want != interest_) {
    interest_ = want;
    (void)worker_->loop()->Modify(fd_.get(), want);
  }
}

void UpstreamConnection::Send(std::string_view bytes) {
  if (closed_ || bytes.empty()) return;
  if (connected_ && pending_output() == 0) {
    size_t n = 0;
    if (!WriteOut(bytes.data(), bytes.size(), &n)) {
      Fail(UpstreamFailure::kReset);
      return;
    }
    if (n == bytes.size()) return;
    bytes.remove_prefix(n);
  }
  if (out_off_ > 0 && out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  }
  out_.append(bytes.data(), bytes.size());
  if (connected_) UpdateInterest();
}

bool UpstreamConnection::WriteOut(const char* data, size_t size,
                                  size_t* written) {
  if (channel_ != nullptr) {
    *written = channel_->Write(std::string_view(data, size));
    return true;
  }
  ssize_t n = ::send(fd_.get(), data, size, MSG_NOSIGNAL);
  if (n < 0) {
    *written = 0;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
  *written = static_cast<size_t>(n);
  return true;
}

void UpstreamConnection::Flush() {
  while (pending_output() > 0) {
    size_t n = 0;
    if (!WriteOut(out_.data() + out_off_, pending_output(), &n)) {
      Fail(UpstreamFailure::kReset);
      return;
    }
    if (n == 0) break;
    out_off_ += n;
  }
  if (pending_output() == 0) {
    out_.clear();
    out_off_ = 0;
    if (out_.capacity() > 64 * 1024) std::string().swap(out_);
    if (cb_ != nullptr) {
      UpdateInterest();
      cb_->OnUpstreamDrained();
      return;
    }
  }
  UpdateInterest();
}

void UpstreamConnection::SetReadPaused(bool paused) {
  if (closed_ || read_paused_ == paused) return;
  read_paused_ = paused;
  if (connected_) UpdateInterest();
  if (!paused && !read_ahead_.empty() && !parser_.upgraded()) {
    // Feed what was held back; more arrives through HandleRead.
    std::string held;
    held.swap(read_ahead_);
    parser_.Resume();
    FeedResponse(held);
  }
  // A channel's bytes wait in it while paused.
  if (!paused && channel_ != nullptr && !closed_ && !channel_->Peek().empty())
    worker_->QueueFlush(this);
}

void UpstreamConnection::OnEvents(uint32_t events) {
  if (closed_) return;
  if (!connected_) {
    if (!net::SocketError(fd_.get()).ok()) {
      ++worker_->stats().upstream_cx_connect_fail;
      Fail(UpstreamFailure::kConnect);
      return;
    }
    connected_ = true;
    Flush();
    if (closed_) return;
    UpdateInterest();
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    HandleRead();
    if (closed_) return;
  }
  if (events & EPOLLOUT) Flush();
}

void UpstreamConnection::OnTunnelEvent() {
  if (closed_) return;
  std::shared_ptr<TunnelChannel> ch = channel_;  // Close() drops ours
  if (pending_output() > 0) {
    Flush();
    if (closed_) return;
  }
  if (cb_ == nullptr) {
    // Idle in the pool: the endpoint closed it, or talks out of turn.
    if (!ch->Peek().empty() || ch->eof() || ch->failed()) Close();
    return;
  }
  if (read_paused_) return;  // SetReadPaused(false) comes back here
  std::string_view data = ch->Peek();
  if (!data.empty()) {
    const size_t n = data.size();
    FeedResponse(data);  // keeps what it does not take (read_ahead_)
    ch->Consume(n);
    if (closed_ || cb_ == nullptr) return;
  }
  if (ch->failed()) {
    if (!ch->established()) ++worker_->stats().upstream_cx_connect_fail;
    Fail(ch->established() ? UpstreamFailure::kReset
                           : UpstreamFailure::kConnect);
    return;
  }
  if (ch->eof()) {
    if (raw_) {
      Fail(UpstreamFailure::kReset);
      return;
    }
    in_read_ = true;
    parser_.FeedEof();
    in_read_ = false;
    if (response_done_ && cb_ == nullptr) {
      detach_requested_ = false;
      Close();
      return;
    }
    Fail(parser_.has_error() ? UpstreamFailure::kBadResponse
                             : UpstreamFailure::kReset);
  }
}

void UpstreamConnection::HandleRead() {
  ssize_t n = ::read(fd_.get(), read_scratch, sizeof(read_scratch));
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (cb_ == nullptr) {
    // Idle in the pool: the peer closed it, or talks out of turn.
    Close();
    return;
  }
  if (n == 0 && raw_) {
    Fail(UpstreamFailure::kReset);  // the tunnel's end
    return;
  }
  if (n == 0) {
    in_read_ = true;
    parser_.FeedEof();  // completes a response delimited by the close
    in_read_ = false;
    if (response_done_ && cb_ == nullptr) {
      detach_requested_ = false;
      Close();
      return;
    }
    Fail(parser_.has_error() ? UpstreamFailure::kBadResponse
                             : UpstreamFailure::kReset);
    return;
  }
  if (n < 0) {
    Fail(UpstreamFailure::kReset);
    return;
  }
  FeedResponse(std::string_view(read_scratch, static_cast<size_t>(n)));
}

void UpstreamConnection::StartRaw() {
  raw_ = true;
  if (in_read_ || read_ahead_.empty() || cb_ == nullptr) return;
  std::string held;
  held.swap(read_ahead_);
  cb_->OnResponseBody(held);
}

void UpstreamConnection::FeedResponse(std::string_view data) {
  if (raw_) {
    if (cb_ != nullptr) cb_->OnResponseBody(data);
    return;
  }
  in_read_ = true;
  size_t used = parser_.Feed(data);
  in_read_ = false;
  if (closed_) return;
  if (parser_.has_error()) {
    Fail(UpstreamFailure::kBadResponse);
    return;
  }
  if (raw_) {
    // The head ended inside this read; the rest is the tunnel's.
    if (used < data.size() && cb_ != nullptr)
      cb_->OnResponseBody(data.substr(used));
    return;
  }
  if (used < data.size()) read_ahead_.append(data.substr(used));
  if (detach_requested_) {
    detach_requested_ = false;
    if (!read_ahead_.empty()) {
      Close();  // bytes beyond the response: not reusable
    } else {
      ReturnToPool();
    }
  }
}

void UpstreamConnection::OnHeaders(const http::MessageHead& head) {
  if (cb_) cb_->OnResponseHead(head);
}

void UpstreamConnection::OnBody(std::string_view data) {
  if (cb_) cb_->OnResponseBody(data);
}

void UpstreamConnection::OnTrailers(const http::HeaderList& trailers) {
  if (cb_) cb_->OnResponseTrailers(trailers);
}

void UpstreamConnection::OnMessageComplete() {
  if (cb_ == nullptr) return;
  if (parser_.upgraded()) {
    parser_.Pause();  // the rest belongs to the tunnel
    cb_->OnResponseComplete();
    return;
  }
  response_done_ = true;
  parser_.Pause();  // one response per exchange
  cb_->OnResponseComplete();
}

UpstreamCallbacks* UpstreamConnection::EndExchange() {
  UpstreamCallbacks* cb = cb_;
  if (cb != nullptr) {
    EndpointState& ep = worker_->endpoint(KeyOf(endpoint_));
    if (ep.active > 0) --ep.active;
    cb_ = nullptr;
  }
  if (request_pool_ != nullptr) {
    --request_pool_->requests;
    request_pool_ = nullptr;
  }
  return cb;
}

void UpstreamConnection::Detach(bool reuse) {
  if (closed_) return;
  EndExchange();
  if (!reuse || !response_done_ || pending_output() > 0) {
    Close();
    return;
  }
  if (in_read_) {
    detach_requested_ = true;  // HandleRead pools it when the feed returns
    return;
  }
  if (!read_ahead_.empty()) {
    Close();
    return;
  }
  ReturnToPool();
}

void UpstreamConnection::ReturnToPool() {
  parser_.Resume();
  response_done_ = false;
  if (read_paused_) {
    read_paused_ = false;
    UpdateInterest();
  }
  in_pool_ = true;
  idle_since_ = worker_->Now();
  worker_->endpoint(key_).idle.push_back(this);
  worker_->ConnectionReleased(pool_, /*closed=*/false);
}

net::UniqueFd UpstreamConnection::TakeForTunnel(std::string* read_ahead,
                                                std::string* unsent) {
  read_ahead->swap(read_ahead_);
  unsent->assign(out_, out_off_, std::string::npos);
  EndExchange();
  worker_->loop()->Remove(fd_.get());
  net::UniqueFd fd = std::move(fd_);
  Close();  // everything but the socket, which the tunnel now owns
  return fd;
}

void UpstreamConnection::OnTick(Clock::time_point now) {
  if (in_pool_ && now - idle_since_ > worker_->options().upstream_idle_timeout)
    Close();
}

void UpstreamConnection::Close() {
  if (closed_) return;
  closed_ = true;
  if (in_pool_) {
    auto& idle = worker_->endpoint(key_).idle;
    idle.erase(std::remove(idle.begin(), idle.end(), this), idle.end());
    in_pool_ = false;
    if (pool_->idle > 0) --pool_->idle;
  }
  if (request_pool_ != nullptr) {
    --request_pool_->requests;
    request_pool_ = nullptr;
  }
  worker_->ConnectionReleased(pool_, /*closed=*/true);
  if (fd_.valid()) {
    worker_->loop()->Remove(fd_.get());
    fd_.Reset();
  }
  if (channel_ != nullptr) {
    channel_->Release();
    channel_.reset();
  }
  --worker_->stats().upstream_cx_active;
  worker_->Retire(this);
}

void UpstreamConnection::Fail(UpstreamFailure failure) {
  UpstreamCallbacks* cb = EndExchange();
  Close();
  if (cb != nullptr) cb->OnUpstreamFailure(failure);
}

}  // namespace nodemesh::proxy
