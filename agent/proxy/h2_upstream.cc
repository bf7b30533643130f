#include "agent/proxy/h2_upstream.h"

#include <nghttp2/nghttp2.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "agent/http/h2_translate.h"
#include "glog/logging.h"

namespace nodemesh::proxy {
namespace {

thread_local char read_scratch[64 * 1024];

// Streams per connection even when the peer allows more: past this a new
// connection spreads the load over the endpoint's accept queue and cores.
constexpr uint32_t kMaxStreamsPerConnection = 256;

}  // namespace

// ---- Http2UpstreamStream ----

Http2UpstreamStream::Http2UpstreamStream(Http2UpstreamConnection* conn)
    : conn_(conn) {}

void Http2UpstreamStream::Attach(UpstreamCallbacks* cb, ClusterPool* requests) {
  cb_ = cb;
  request_pool_ = requests;
  ++request_pool_->requests;
  ++conn_->worker_->endpoint(KeyOf(conn_->endpoint_)).active;
  body_.Clear();
  has_body_ = false;
  id_ = 0;
  head_request_ = false;
  response_started_ = false;
  response_done_ = false;
  read_paused_ = false;
  unconsumed_ = 0;
}

UpstreamCallbacks* Http2UpstreamStream::EndExchange() {
  UpstreamCallbacks* cb = cb_;
  if (cb != nullptr) {
    EndpointState& ep = conn_->worker_->endpoint(KeyOf(conn_->endpoint_));
    if (ep.active > 0) --ep.active;
    cb_ = nullptr;
  }
  if (request_pool_ != nullptr) {
    --request_pool_->requests;
    request_pool_ = nullptr;
  }
  return cb;
}

void Http2UpstreamStream::SendHead(std::span<const http::HeaderField> fields,
                                   bool has_body) {
  if (cb_ == nullptr) return;
  has_body_ = has_body;
  id_ = conn_->codec_.SubmitRequest(fields, has_body ? &body_ : nullptr);
  conn_->worker_->QueueFlush(conn_);
  if (id_ > 0) {
    conn_->codec_.SetStreamData(id_, this);
    return;
  }
  // Refused before it left (no stream id left, the session gone): the
  // exchange may retry it on another connection.
  id_ = 0;
  UpstreamCallbacks* cb = EndExchange();
  conn_->Release(this);
  if (cb != nullptr) cb->OnUpstreamFailure(UpstreamFailure::kReset);
}

void Http2UpstreamStream::Send(std::string_view bytes) {
  if (cb_ == nullptr || id_ <= 0 || !has_body_ || bytes.empty()) return;
  body_.data.append(bytes);
  conn_->codec_.ResumeData(id_, &body_);
  conn_->worker_->QueueFlush(conn_);
}

void Http2UpstreamStream::EndRequest(
    std::span<const std::pair<std::string, std::string>> trailers) {
  if (cb_ == nullptr || id_ <= 0 || !has_body_ || body_.end) return;
  body_.trailers.assign(trailers.begin(), trailers.end());
  body_.end = true;
  conn_->codec_.ResumeData(id_, &body_);
  conn_->worker_->QueueFlush(conn_);
}

void Http2UpstreamStream::SetReadPaused(bool paused) {
  if (read_paused_ == paused) return;
  read_paused_ = paused;
  if (!paused && unconsumed_ > 0 && id_ > 0) {
    conn_->codec_.Consume(id_, unconsumed_);
    unconsumed_ = 0;
    conn_->worker_->QueueFlush(conn_);
  }
}

void Http2UpstreamStream::Detach(bool /*reuse*/) {
  EndExchange();
  if (id_ > 0) {
    // Unfinished either way: the endpoint may stop (the stream is free).
    if (!response_done_ || (has_body_ && (!body_.end || body_.pending() > 0)))
      conn_->codec_.ResetStream(id_, NGHTTP2_CANCEL);
    if (unconsumed_ > 0) conn_->codec_.Consume(id_, unconsumed_);
    conn_->codec_.SetStreamData(id_, nullptr);
  }
  conn_->Release(this);
  conn_->worker_->QueueFlush(conn_);
}

// ---- Http2UpstreamConnection ----

Http2UpstreamConnection::Http2UpstreamConnection(
    Worker* worker, net::UniqueFd fd, const net::SocketAddress& endpoint,
    ClusterPool* pool, const std::string* via)
    : worker_(worker),
      fd_(std::move(fd)),
      endpoint_(endpoint),
      key_(KeyWithVia(endpoint, via)),
      pool_(pool),
      codec_(http::H2Codec::Role::kClient, this) {
  worker_->ConnectionOpened(pool_);
}

Http2UpstreamConnection::~Http2UpstreamConnection() = default;

void Http2UpstreamConnection::Start() {
  ++worker_->stats().upstream_cx_total;
  ++worker_->stats().upstream_cx_active;
  ++worker_->stats().upstream_h2_cx_total;
  idle_since_ = worker_->Now();
  interest_ = EPOLLOUT;
  auto s = worker_->loop()->Add(fd_.get(), interest_,
                                [this](uint32_t ev) { OnEvents(ev); });
  if (!s.ok()) interest_ = 0;  // fails its streams on the next tick
  worker_->endpoint(key_).h2.push_back(this);
}

bool Http2UpstreamConnection::HasCapacity() const {
  if (closed_ || going_away_) return false;
  uint32_t peer = settings_ ? codec_.PeerMaxConcurrentStreams()
                            : worker_->endpoint(key_).h2_max_streams;
  return active_ < std::min(peer, kMaxStreamsPerConnection);
}

void Http2UpstreamConnection::OnSettings() {
  settings_ = true;
  worker_->endpoint(key_).h2_max_streams = codec_.PeerMaxConcurrentStreams();
}

Http2UpstreamStream* Http2UpstreamConnection::NewStream() {
  Http2UpstreamStream* s;
  if (free_.empty()) {
    streams_.push_back(std::make_unique<Http2UpstreamStream>(this));
    s = streams_.back().get();
  } else {
    s = free_.back();
    free_.pop_back();
  }
  ++active_;
  return s;
}

void Http2UpstreamConnection::Release(Http2UpstreamStream* s) {
  s->id_ = 0;
  s->cb_ = nullptr;
  free_.push_back(s);
  if (active_ > 0) --active_;
  if (active_ == 0) {
    idle_since_ = worker_->Now();
    if (going_away_) Close();
  }
}

Http2UpstreamStream* Http2UpstreamConnection::StreamOf(
    int32_t stream_id) const {
  return static_cast<Http2UpstreamStream*>(codec_.StreamData(stream_id));
}

void Http2UpstreamConnection::OnEvents(uint32_t events) {
  if (closed_) return;
  if (!connected_) {
    if (!net::SocketError(fd_.get()).ok()) {
      ++worker_->stats().upstream_cx_connect_fail;
      Close();
      return;
    }
    connected_ = true;
    Flush();
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    OnReadable();
    if (closed_) return;
  }
  if (events & EPOLLOUT) Flush();
}

void Http2UpstreamConnection::OnReadable() {
  ssize_t n = ::read(fd_.get(), read_scratch, sizeof(read_scratch));
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n <= 0) {
    Close();
    return;
  }
  if (!codec_.Feed(std::string_view(read_scratch, static_cast<size_t>(n)))) {
    LOG_EVERY_N(WARNING, 100) << "HTTP/2 upstream " << endpoint_.ToString()
                              << ": protocol error; connection closed";
    Flush();
    Close();
    return;
  }
  Flush();
}

void Http2UpstreamConnection::Flush() {
  if (closed_ || !connected_ || in_flush_) return;
  in_flush_ = true;
  const bool ok = out_.Flush(&codec_, fd_.get(), nullptr);
  in_flush_ = false;
  if (!ok) {
    Close();
    return;
  }
  UpdateInterest();
}

void Http2UpstreamConnection::UpdateInterest() {
  uint32_t want = connected_ ? EPOLLIN : EPOLLOUT;
  if (connected_ && out_.pending()) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    (void)worker_->loop()->Modify(fd_.get(), want);
  }
}

void Http2UpstreamConnection::Close() {
  if (closed_) return;
  closed_ = true;
  auto& list = worker_->endpoint(key_).h2;
  list.erase(std::remove(list.begin(), list.end(), this), list.end());
  // Every exchange still here learns of it: a connect failure, or a reset
  // (which the exchange may retry on another connection).
  const UpstreamFailure failure =
      connected_ ? UpstreamFailure::kReset : UpstreamFailure::kConnect;
  for (auto& s : streams_) {
    UpstreamCallbacks* cb = s->EndExchange();
    if (cb == nullptr) continue;
    Release(s.get());
    cb->OnUpstreamFailure(failure);
  }
  worker_->ConnectionReleased(pool_, /*closed=*/true);
  if (fd_.valid()) {
    worker_->loop()->Remove(fd_.get());
    fd_.Reset();
  }
  --worker_->stats().upstream_cx_active;
  worker_->Retire(this);
}

void Http2UpstreamConnection::OnTick(Clock::time_point now) {
  if (closed_) return;
  if (interest_ == 0) {
    Close();  // could not be registered with the loop
    return;
  }
  if (active_ == 0 &&
      now - idle_since_ > worker_->options().upstream_idle_timeout) {
    Close();
  }
}

void Http2UpstreamConnection::OnHeaders(int32_t stream_id,
                                        const http::H2HeaderBlock& block,
                                        bool end_stream) {
  Http2UpstreamStream* s = StreamOf(stream_id);
  if (s == nullptr || s->cb_ == nullptr) return;
  if (block.status != 0 && block.status < 200) return;  // interim
  UpstreamCallbacks* cb = s->cb_;
  if (!s->response_started_) {
    s->response_started_ = true;
    http::H1ResponseHead(block, end_stream, s->head_request_, &s->head_);
    cb->OnResponseHead(s->head_);
  } else {
    cb->OnResponseTrailers(block.headers);
  }
  if (end_stream && s->cb_ == cb) {
    s->response_done_ = true;
    cb->OnResponseComplete();
  }
}

void Http2UpstreamConnection::OnData(int32_t stream_id, std::string_view data) {
  Http2UpstreamStream* s = StreamOf(stream_id);
  if (s == nullptr || s->cb_ == nullptr) {
    codec_.Consume(stream_id, data.size());
    return;
  }
  s->cb_->OnResponseBody(data);
  if (StreamOf(stream_id) == s && s->read_paused_) {
    s->unconsumed_ += data.size();
  } else {
    codec_.Consume(stream_id, data.size());
  }
}

void Http2UpstreamConnection::OnEndStream(int32_t stream_id) {
  Http2UpstreamStream* s = StreamOf(stream_id);
  if (s == nullptr || s->cb_ == nullptr || s->response_done_) return;
  s->response_done_ = true;
  s->cb_->OnResponseComplete();
}

void Http2UpstreamConnection::OnStreamClose(int32_t stream_id,
                                            uint32_t /*error_code*/) {
  Http2UpstreamStream* s = StreamOf(stream_id);
  if (s == nullptr) return;
  codec_.SetStreamData(stream_id, nullptr);
  s->id_ = 0;
  if (s->response_done_) return;  // the exchange detaches on its own
  // Reset (or refused after a GOAWAY) before the response completed.
  UpstreamCallbacks* cb = s->EndExchange();
  Release(s);
  if (cb != nullptr) cb->OnUpstreamFailure(UpstreamFailure::kReset);
}

void Http2UpstreamConnection::OnGoaway(int32_t /*last_stream_id*/,
                                       uint32_t /*error_code*/) {
  // Streams above the last id are closed by the codec as refused (and
  // retried by their exchanges); the rest finish here.
  ++worker_->stats().upstream_h2_goaways;
  going_away_ = true;
  auto& list = worker_->endpoint(key_).h2;
  list.erase(std::remove(list.begin(), list.end(), this), list.end());
  if (active_ == 0) Close();
}

http::H2OutBody* Http2UpstreamConnection::BodyOf(int32_t stream_id) {
  Http2UpstreamStream* s = StreamOf(stream_id);
  return s == nullptr ? nullptr : &s->body_;
}

void Http2UpstreamConnection::OnBodyDrained(int32_t stream_id) {
  Http2UpstreamStream* s = StreamOf(stream_id);
  if (s != nullptr && s->cb_ != nullptr) s->cb_->OnUpstreamDrained();
}

}  // namespace nodemesh::proxy
