#include "agent/proxy/h2_downstream.h"

#include <nghttp2/nghttp2.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "agent/http/h2_translate.h"
#include "agent/http/http1_writer.h"

namespace nodemesh::proxy {
namespace {

thread_local char read_scratch[64 * 1024];

// Between the shutdown notice and the final GOAWAY: streams the client
// opened before it saw the notice still count.
constexpr Millis kGoawayGrace{100};

}  // namespace

// One stream's exchange: the request in, as HTTP/1.1, to `session_`; the
// session's HTTP/1.1 response parsed back into HTTP/2.
class Http2DownstreamConnection::Stream final : public SessionTransport,
                                                http::Http1Visitor {
 public:
  explicit Stream(Http2DownstreamConnection* conn)
      : conn_(conn), response_(http::Http1Parser::Mode::kResponse, this) {}

  void Begin(int32_t id) {
    id_ = id;
    response_.Reset();
    body_.Clear();
    raw_request_ = false;
    end_delivered_ = false;
    request_ended_ = false;
    response_submitted_ = false;
    response_complete_ = false;
    tunnel_ = false;
    wants_input_ = true;
    unconsumed_ = 0;
  }

  // SessionTransport.
  void OnSessionOutput(std::string_view bytes) override {
    if (id_ == 0 || response_complete_) return;
    size_t used = response_.Feed(bytes);
    if (tunnel_ && used < bytes.size()) {
      body_.data.append(bytes.substr(used));
      conn_->codec_.ResumeData(id_, &body_);
    }
    if (response_.has_error()) {
      conn_->codec_.ResetStream(id_, NGHTTP2_INTERNAL_ERROR);
      response_complete_ = true;
    }
    conn_->worker_->QueueFlush(conn_);
  }
  size_t SessionBacklog() const override { return body_.pending(); }
  void OnSessionWantsInput(bool want) override {
    wants_input_ = want;
    if (want && unconsumed_ > 0 && id_ != 0) {
      conn_->codec_.Consume(id_, unconsumed_);
      unconsumed_ = 0;
      conn_->worker_->QueueFlush(conn_);
    }
  }
  void OnSessionClosed() override {
    session_ = nullptr;
    if (conn_->closed() || id_ == 0) return;
    if (tunnel_ && response_submitted_ && !response_complete_) {
      // A tunnel's end is the stream's end, not an error.
      response_complete_ = true;
      body_.end = true;
      conn_->codec_.ResumeData(id_, &body_);
    } else if (!response_complete_) {
      // Cut short (an upstream reset mid-response, a timeout after the
      // head): the client must not take it for complete.
      conn_->codec_.ResetStream(id_, NGHTTP2_INTERNAL_ERROR);
    }
    // Answered before the request ended: the rest of the request is read
    // and dropped until the client ends its side. (RST_STREAM NO_ERROR
    // would be allowed, but gRPC clients take it for a failed call.)
    conn_->worker_->QueueFlush(conn_);
  }

  // The endpoint's response as the session passes it on.
  void OnResponseHead(const http::MessageHead& head) override {
    if (id_ == 0 || response_complete_) return;
    OnHeaders(head);
    conn_->worker_->QueueFlush(conn_);
  }
  void OnResponseBody(std::string_view data) override {
    if (id_ == 0) return;
    OnBody(data);
    conn_->worker_->QueueFlush(conn_);
  }
  void OnResponseTrailers(const http::HeaderList& trailers) override {
    if (id_ != 0) OnTrailers(trailers);
  }
  void OnResponseComplete() override {
    if (id_ == 0) return;
    OnMessageComplete();
    conn_->worker_->QueueFlush(conn_);
  }

  // Http1Visitor: the session's response (its own replies, as bytes).
  void OnHeaders(const http::MessageHead& head) override {
    // Interim responses: HTTP/2 clients need none. 101 accepts a websocket
    // (extended CONNECT): 200 and the tunnel's bytes as DATA.
    if (head.status_code < 200 && head.status_code != 101) return;
    tunnel_ = head.status_code == 101 || head.connect;
    http::H2ResponseFields(head, status_, &fields_);
    const bool no_body =
        !tunnel_ && (head.framing == http::BodyFraming::kNone ||
                     (head.framing == http::BodyFraming::kContentLength &&
                      head.content_length == 0));
    if (no_body && head.framing != http::BodyFraming::kNone) {
      // HEADERS alone says "no body"; a gRPC trailers-only response must
      // not carry content-length (grpc-core then reads it as malformed).
      std::erase_if(fields_, [](const http::HeaderField& f) {
        return http::EqualsIgnoreCase(f.name, "content-length");
      });
    }
    if (!conn_->codec_.SubmitResponse(id_, fields_,
                                      no_body ? nullptr : &body_)) {
      conn_->codec_.ResetStream(id_, NGHTTP2_INTERNAL_ERROR);
      response_complete_ = true;
      return;
    }
    response_submitted_ = true;
    if (no_body) response_complete_ = true;
  }
  void OnBody(std::string_view data) override {
    if (!response_submitted_ || response_complete_) return;
    body_.data.append(data);
    conn_->codec_.ResumeData(id_, &body_);
  }
  void OnTrailers(const http::HeaderList& trailers) override {
    for (const http::HeaderField& f : trailers) {
      if (http::IsConnectionSpecific(f.name)) continue;
      std::string name(f.name);
      for (char& c : name) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      }
      body_.trailers.emplace_back(std::move(name), std::string(f.value));
    }
  }
  void OnMessageComplete() override {
    response_.Pause();  // one response per stream
    if (tunnel_ || !response_submitted_ || response_complete_) return;
    response_complete_ = true;
    body_.end = true;
    conn_->codec_.ResumeData(id_, &body_);
  }

  Http2DownstreamConnection* const conn_;
  int32_t id_ = 0;
  HttpSession* session_ = nullptr;
  http::Http1Parser response_;
  http::H2OutBody body_;
  http::MessageHead head_;     // the request, for the session
  http::HeaderList trailers_;  // the request's, for the session
  std::string key_;            // a websocket's Sec-WebSocket-Key
  std::vector<http::HeaderField> fields_;
  char status_[4] = {};
  bool raw_request_ = false;    // websocket or CONNECT: bytes, not a body
  bool end_delivered_ = false;  // the session has the whole request
  bool request_ended_ = false;
  bool response_submitted_ = false;
  bool response_complete_ = false;
  bool tunnel_ = false;  // a websocket: raw bytes both ways
  bool wants_input_ = true;
  size_t unconsumed_ = 0;  // request bytes given while the session was full
};

Http2DownstreamConnection::Http2DownstreamConnection(Worker* worker,
                                                     net::UniqueFd fd,
                                                     ConnectionInfo info,
                                                     std::string read_ahead)
    : worker_(worker),
      fd_(std::move(fd)),
      info_(info),
      codec_(http::H2Codec::Role::kServer, this),
      in_(std::move(read_ahead)) {}

Http2DownstreamConnection::Http2DownstreamConnection(Worker* worker,
                                                     net::UniqueFd fd,
                                                     ConnectionInfo info,
                                                     Http1Upgrade upgrade)
    : Http2DownstreamConnection(worker, std::move(fd), info, std::string()) {
  upgrade_ = std::move(upgrade);
  out_.Append(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
      "Upgrade: h2c\r\n\r\n");
}

Http2DownstreamConnection::~Http2DownstreamConnection() = default;

void Http2DownstreamConnection::Start() {
  ++worker_->stats().downstream_h2_cx_total;
  last_activity_ = worker_->Now();
  interest_ = EPOLLIN;
  auto s = worker_->loop()->Add(fd_.get(), interest_,
                                [this](uint32_t ev) { OnEvents(ev); });
  if (!s.ok()) {
    Close();
    return;
  }
  if (upgrade_) {
    // RFC 7540 3.2: the request that asked is stream 1, its response the
    // first on the new connection.
    if (!codec_.UpgradeFromHttp1(upgrade_->settings,
                                 upgrade_->method == "HEAD")) {
      ++worker_->stats().downstream_h2_protocol_errors;
      Close();
      return;
    }
    Stream* s = Acquire(1);
    s->response_.ExpectResponseTo(upgrade_->method);
    s->request_ended_ = true;
    s->end_delivered_ = true;
    s->session_->Deliver(upgrade_->request);
    upgrade_.reset();
  }
  std::string first;
  first.swap(in_);
  const bool ok = first.empty() || codec_.Feed(first);
  worker_->stats().downstream_h2_protocol_errors += codec_.TakeProtocolErrors();
  if (!ok) {
    Flush();
    Close();
    return;
  }
  Flush();
}

void Http2DownstreamConnection::OnEvents(uint32_t events) {
  if (closed_) return;
  if (events & EPOLLOUT) {
    Flush();
    if (closed_) return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) OnReadable();
}

void Http2DownstreamConnection::OnReadable() {
  ssize_t n = ::read(fd_.get(), read_scratch, sizeof(read_scratch));
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n <= 0) {
    // The client left: whatever it had in flight is abandoned.
    Close();
    return;
  }
  last_activity_ = worker_->Now();
  worker_->stats().bytes_received += static_cast<uint64_t>(n);
  const bool ok =
      codec_.Feed(std::string_view(read_scratch, static_cast<size_t>(n)));
  worker_->stats().downstream_h2_protocol_errors += codec_.TakeProtocolErrors();
  if (!ok) {
    Flush();  // the GOAWAY that says why
    Close();
    return;
  }
  Flush();
}

void Http2DownstreamConnection::Flush() {
  if (closed_ || in_flush_) return;
  in_flush_ = true;
  const bool ok = out_.Flush(&codec_, fd_.get(), &worker_->stats().bytes_sent);
  in_flush_ = false;
  if (!ok) {
    Close();
    return;
  }
  if (!out_.pending() &&
      (codec_.Finished() || (goaway_sent_ && live_streams_ == 0))) {
    Close();
    return;
  }
  UpdateInterest();
}

void Http2DownstreamConnection::UpdateInterest() {
  uint32_t want = EPOLLIN;
  if (out_.pending()) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    (void)worker_->loop()->Modify(fd_.get(), want);
  }
}

void Http2DownstreamConnection::Close() {
  if (closed_) return;
  closed_ = true;
  for (auto& s : streams_) {
    if (s->session_ == nullptr) continue;
    HttpSession* session = s->session_;
    s->session_ = nullptr;
    session->Abort();  // its OnSessionClosed sees closed()
  }
  if (fd_.valid()) {
    worker_->loop()->Remove(fd_.get());
    fd_.Reset();
  }
  --worker_->stats().downstream_cx_active;
  worker_->Retire(this);
}

void Http2DownstreamConnection::Drain() {
  if (draining_ || closed_) return;
  draining_ = true;
  codec_.ShutdownNotice();
  goaway_at_ = worker_->Now() + kGoawayGrace;
  Flush();
}

void Http2DownstreamConnection::OnTick(Clock::time_point now) {
  if (closed_) return;
  if (draining_ && !goaway_sent_ && now >= goaway_at_) {
    codec_.GoawayFinal();
    goaway_sent_ = true;
    Flush();
    return;
  }
  if (live_streams_ == 0 && !goaway_sent_ &&
      now - last_activity_ >= worker_->options().downstream_idle_timeout) {
    codec_.GoawayFinal();
    goaway_sent_ = true;
    Flush();
  }
}

Http2DownstreamConnection::Stream* Http2DownstreamConnection::StreamOf(
    int32_t stream_id) const {
  return static_cast<Stream*>(codec_.StreamData(stream_id));
}

Http2DownstreamConnection::Stream* Http2DownstreamConnection::Acquire(
    int32_t stream_id) {
  Stream* s;
  if (free_.empty()) {
    streams_.push_back(std::make_unique<Stream>(this));
    s = streams_.back().get();
  } else {
    s = free_.back();
    free_.pop_back();
  }
  if (s->session_ == nullptr) {
    s->session_ = worker_->Make<HttpSession>(worker_, s, info_);
    s->session_->Start();
  }
  s->Begin(stream_id);
  ++live_streams_;
  codec_.SetStreamData(stream_id, s);
  return s;
}

void Http2DownstreamConnection::Release(Stream* s) {
  // Only from OnStreamClose: nghttp2 forgets the stream, user data too.
  s->id_ = 0;
  --live_streams_;
  free_.push_back(s);
}

void Http2DownstreamConnection::OnHeaders(int32_t stream_id,
                                          const http::H2HeaderBlock& block,
                                          bool end_stream) {
  Stream* s = StreamOf(stream_id);
  if (s != nullptr) {
    // Trailers end the request (kept when its body is chunked upstream).
    if (s->session_ != nullptr && !s->request_ended_ && !s->end_delivered_) {
      s->trailers_.Clear();
      for (const http::HeaderField& f : block.headers) {
        if (!http::IsConnectionSpecific(f.name))
          s->trailers_.Add(f.name, f.value);
      }
      s->end_delivered_ = true;
      HttpSession* session = s->session_;
      session->DeliverTrailers(s->trailers_);
      session->DeliverEnd();
    }
    s->request_ended_ = true;
    return;
  }
  if (goaway_sent_) {
    codec_.ResetStream(stream_id, NGHTTP2_REFUSED_STREAM);
    return;
  }
  s = Acquire(stream_id);
  // A websocket's HTTP/1.1 handshake needs a key; HTTP/2 has none (the
  // upstream's accept value is dropped on the way back, unchecked).
  s->key_.clear();
  if (!block.protocol.empty()) {
    char key_bytes[16];
    for (int i = 0; i < 2; ++i) {
      uint64_t r = NextRandom(worker_->rng());
      std::memcpy(key_bytes + 8 * i, &r, 8);
    }
    s->key_ = absl::Base64Escape(absl::string_view(key_bytes, 16));
  }
  // The request goes to the session as its parser would have reported it:
  // no HTTP/1.1 bytes in between.
  if (!http::H1RequestHead(block, end_stream, s->key_, &s->head_)) {
    ++worker_->stats().downstream_h2_protocol_errors;
    codec_.ResetStream(stream_id, NGHTTP2_PROTOCOL_ERROR);
    return;
  }
  s->raw_request_ = s->head_.upgrade || s->head_.connect;
  s->response_.ExpectResponseTo(s->head_.connect ? std::string_view("CONNECT")
                                                 : s->head_.method);
  s->request_ended_ = end_stream;
  HttpSession* session = s->session_;
  session->DeliverHead(s->head_);
  // A head without a body is a whole request (the parser would complete it
  // at once, a websocket's or CONNECT's too).
  if (s->head_.framing == http::BodyFraming::kNone && s->session_ == session) {
    s->end_delivered_ = true;
    session->DeliverEnd();
  }
}

void Http2DownstreamConnection::OnData(int32_t stream_id,
                                       std::string_view data) {
  Stream* s = StreamOf(stream_id);
  if (s == nullptr || s->session_ == nullptr || s->request_ended_) {
    codec_.Consume(stream_id, data.size());
    return;
  }
  if (s->tunnel_) {
    s->session_->Deliver(data);  // raw, to the endpoint
  } else if (s->raw_request_) {
    s->session_->HoldForTunnel(data);  // until the endpoint agrees
  } else if (!s->end_delivered_) {
    s->session_->DeliverBody(data);
  }
  if (s->wants_input_) {
    codec_.Consume(stream_id, data.size());
  } else {
    s->unconsumed_ += data.size();
  }
}

void Http2DownstreamConnection::OnEndStream(int32_t stream_id) {
  Stream* s = StreamOf(stream_id);
  if (s == nullptr || s->request_ended_) return;
  s->request_ended_ = true;
  if (s->session_ == nullptr) return;
  if (s->raw_request_) {
    s->session_->Abort();  // the client closed its side of the tunnel
    return;
  }
  if (!s->end_delivered_) {
    s->end_delivered_ = true;
    s->session_->DeliverEnd();
  }
}

void Http2DownstreamConnection::OnStreamClose(int32_t stream_id,
                                              uint32_t /*error_code*/) {
  Stream* s = StreamOf(stream_id);
  if (s == nullptr) return;
  if (s->session_ != nullptr && !s->session_->reusable()) {
    // Reset by the client, or ended before the session was done.
    HttpSession* session = s->session_;
    s->id_ = 0;  // nothing to reset any more
    session->Abort();
  }
  Release(s);
}

http::H2OutBody* Http2DownstreamConnection::BodyOf(int32_t stream_id) {
  Stream* s = StreamOf(stream_id);
  return s == nullptr ? nullptr : &s->body_;
}

void Http2DownstreamConnection::OnBodyDrained(int32_t stream_id) {
  Stream* s = StreamOf(stream_id);
  if (s != nullptr && s->session_ != nullptr) s->session_->OnTransportDrained();
}

}  // namespace nodemesh::proxy
