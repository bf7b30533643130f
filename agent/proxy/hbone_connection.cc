#include "agent/proxy/hbone_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/x509_vfy.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/net/socket.h"
#include "agent/proxy/tunnel_pool.h"
#include "glog/logging.h"

namespace nodemesh::proxy {
namespace {

// Streams per connection (also capped by the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS): enough to share a handshake widely,
// few enough that one slow connection does not hold every caller.
constexpr uint32_t kMaxStreams = 100;
// Bytes read from a local socket and not yet taken by the codec: a
// stream stops reading there (the peer's window decides the rest).
constexpr size_t kOutCap = 256 * 1024;
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr uint32_t kCancel = 8;  // RST_STREAM CANCEL

// TLS reads (fed to the codec) and local reads apart: a local read runs
// inside Feed's callbacks, while the codec still parses the TLS bytes.
thread_local char read_scratch[64 * 1024];

// Agent to agent, windows wider than towards clients: a stream may have
// 1 MiB in flight (a large response is not held up by a window update
// every 256 KiB), a connection 16 MiB, which also bounds what one tunnel
// connection can make this agent hold.
http::H2CodecOptions TunnelCodecOptions() {
  http::H2CodecOptions o;
  o.max_concurrent_streams = 256;
  o.stream_window = 1024 * 1024;
  o.connection_window = 16 * 1024 * 1024;
  return o;
}
thread_local char local_scratch[64 * 1024];

TunnelRefusal Classify(const std::string& error, const SSL* ssl, bool cut_off) {
  long verify = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (verify == X509_V_ERR_CERT_HAS_EXPIRED ||
      verify == X509_V_ERR_CERT_NOT_YET_VALID ||
      absl::StrContains(error, "expired"))
    return TunnelRefusal::kExpired;
  if (verify != X509_V_OK || absl::StrContains(error, "unknown ca") ||
      absl::StrContains(error, "verify failed") ||
      absl::StrContains(error, "unable to get") ||
      absl::StrContains(error, "self-signed") ||
      absl::StrContains(error, "self signed"))
    return TunnelRefusal::kUntrusted;
  if (absl::StrContains(error, "did not return a certificate") ||
      absl::StrContains(error, "certificate required"))
    return TunnelRefusal::kNoCertificate;
  if (absl::StrContains(error, "http request") ||
      absl::StrContains(error, "wrong version number") ||
      absl::StrContains(error, "unknown protocol") ||
      absl::StrContains(error, "length too long") ||
      absl::StrContains(error, "unexpected message"))
    return TunnelRefusal::kPlaintext;
  if (cut_off) return TunnelRefusal::kHandshakeCut;
  return TunnelRefusal::kHandshake;
}

// The peer's chain against `store` (a listener's or client policy's own
// trust file; the context already checked it against the CA bundle).
bool VerifyPeerAgainst(SSL* ssl, X509_STORE* store) {
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (leaf == nullptr) return false;
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  if (ctx == nullptr) return false;
  bool ok = X509_STORE_CTX_init(ctx, store, leaf,
                                SSL_get_peer_cert_chain(ssl)) == 1 &&
            X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  return ok;
}

}  // namespace

struct HboneConnection::Stream {
  int32_t id = 0;
  // In-process (a TunnelChannel) instead of `fd`: `out` and `in` below
  // are then unused.
  std::shared_ptr<TunnelChannel> channel;
  net::UniqueFd fd;  // a socketpair end (client) or the endpoint (server)
  std::string authority;
  uint32_t interest = 0;
  bool registered = false;
  bool connecting = false;   // server: the endpoint connect is in flight
  bool established = false;  // 2xx: bytes flow
  bool local_eof = false;    // the local side finished writing
  bool peer_end = false;     // END_STREAM received
  bool shut_wr = false;
  bool codec_closed = false;  // the codec is done with it
  http::H2OutBody out;        // local -> peer
  std::string in;             // peer -> local, not yet written
  size_t in_off = 0;
};

HboneConnection::HboneConnection(Worker* worker, net::UniqueFd fd, Role role,
                                 SSL_CTX* ctx, const std::string& sni,
                                 std::string pool_key, std::string peer_label)
    : worker_(worker),
      fd_(std::move(fd)),
      role_(role),
      tls_(ctx, fd_.get(), role == Role::kServer, sni),
      codec_(role == Role::kServer ? http::H2Codec::Role::kServer
                                   : http::H2Codec::Role::kClient,
             this, TunnelCodecOptions()),
      pool_key_(std::move(pool_key)),
      peer_label_(std::move(peer_label)),
      sni_(sni) {}

HboneConnection::~HboneConnection() = default;

void HboneConnection::SetServerPolicy(const compile::ClientTlsPolicy* policy,
                                      const std::string& caller,
                                      uint16_t port) {
  if (policy != nullptr) policy_ = *policy;
  caller_ = caller;
  port_ = port;
}

void HboneConnection::Start() {
  worker_->tunnels()->Register(this);
  started_ = idle_since_ = worker_->Now();
  connected_ = role_ == Role::kServer;
  interest_ = connected_ ? EPOLLIN : EPOLLOUT;
  auto s = worker_->loop()->Add(fd_.get(), interest_,
                                [this](uint32_t ev) { OnEvents(ev); });
  if (!s.ok()) {
    interest_ = 0;
    Close();
  }
}

bool HboneConnection::HasCapacity() const {
  return !closed_ && !going_away_ && !codec_.ReceivedGoaway() &&
         opened_ < std::min(codec_.PeerMaxConcurrentStreams(), kMaxStreams);
}

bool HboneConnection::OpenStream(net::UniqueFd local,
                                 const std::string& authority) {
  if (!HasCapacity()) return false;
  auto s = std::make_unique<Stream>();
  s->fd = std::move(local);
  s->authority = authority;
  const http::HeaderField fields[] = {{":method", "CONNECT"},
                                      {":authority", authority}};
  int32_t id = codec_.SubmitRequest(fields, &s->out);
  if (id < 0) return false;
  s->id = id;
  ++opened_;
  ++worker_->stats().tunnel.streams_out;
  streams_[id] = std::move(s);
  worker_->QueueFlush(this);
  return true;
}

std::shared_ptr<TunnelChannel> HboneConnection::OpenChannel(
    const std::string& authority) {
  if (!HasCapacity()) return nullptr;
  auto ch = std::make_shared<TunnelChannel>();
  auto s = std::make_unique<Stream>();
  s->channel = ch;
  s->authority = authority;
  const http::HeaderField fields[] = {{":method", "CONNECT"},
                                      {":authority", authority}};
  int32_t id = codec_.SubmitRequest(fields, &ch->out_);
  if (id < 0) return nullptr;
  s->id = id;
  ch->conn_ = this;
  ch->id_ = id;
  ++opened_;
  ++worker_->stats().tunnel.streams_out;
  streams_[id] = std::move(s);
  worker_->QueueFlush(this);
  return ch;
}

void HboneConnection::OnFlush() {
  Flush();
  DispatchNotifications();
}

void HboneConnection::Notify(const std::shared_ptr<TunnelChannel>& channel) {
  if (channel->notify_queued_) return;
  channel->notify_queued_ = true;
  notify_.push_back(channel);
}

void HboneConnection::DispatchNotifications() {
  if (in_dispatch_) return;  // the outer loop takes the new ones
  in_dispatch_ = true;
  while (!notify_.empty()) {
    std::vector<std::shared_ptr<TunnelChannel>> batch;
    batch.swap(notify_);
    for (const auto& ch : batch) {
      ch->notify_queued_ = false;
      if (ch->user_ != nullptr) ch->user_->OnTunnelEvent();
    }
  }
  in_dispatch_ = false;
}

void HboneConnection::ChannelWrote(TunnelChannel* channel) {
  codec_.ResumeData(channel->id_, &channel->out_);
  worker_->QueueFlush(this);
}

void HboneConnection::ChannelConsumed(TunnelChannel* channel, size_t n) {
  codec_.Consume(channel->id_, n);
  worker_->QueueFlush(this);
}

void HboneConnection::ReleaseChannel(TunnelChannel* channel) {
  Stream* s = Find(channel->id_);
  if (s != nullptr) CloseStream(s, kCancel);
}

size_t TunnelChannel::Write(std::string_view bytes) {
  if (conn_ == nullptr || failed_ || out_.end) return bytes.size();
  const size_t pending = out_.pending();
  const size_t room = pending < kWriteRoom ? kWriteRoom - pending : 0;
  const size_t n = std::min(room, bytes.size());
  if (n == 0) return 0;
  if (out_.off == out_.data.size()) {
    out_.data.clear();
    out_.off = 0;
  }
  out_.data.append(bytes.data(), n);
  conn_->ChannelWrote(this);
  return n;
}

void TunnelChannel::Consume(size_t n) {
  n = std::min(n, in_.size() - in_off_);
  in_off_ += n;
  if (in_off_ == in_.size()) {
    in_.clear();
    in_off_ = 0;
  }
  if (conn_ != nullptr && n > 0) conn_->ChannelConsumed(this, n);
}

void TunnelChannel::Release() {
  user_ = nullptr;
  if (conn_ != nullptr) conn_->ReleaseChannel(this);
}

void HboneConnection::OnEvents(uint32_t events) {
  if (closed_) return;
  if (!connected_) {
    if (!net::SocketError(fd_.get()).ok()) {
      ++worker_->stats().upstream_cx_connect_fail;
      LOG_EVERY_N(WARNING, 50)
          << "tunnel to " << peer_label_ << ": connect failed";
      Close();
      return;
    }
    connected_ = true;
  }
  if (!handshake_done_) {
    DoHandshake();
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    OnReadable();
    if (closed_) return;
  }
  Flush();
}

void HboneConnection::DoHandshake() {
  switch (tls_.Handshake()) {
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
    case tls::TlsSocket::Result::kClosed:
    case tls::TlsSocket::Result::kError: {
      bool cut = tls_.error().empty() ||
                 absl::StrContains(tls_.error(), "unexpected eof");
      Refuse(Classify(tls_.error(), tls_.ssl(), cut),
             tls_.error().empty() ? "connection closed during the handshake"
                                  : tls_.error());
      Close();
      return;
    }
  }
  handshake_done_ = true;
  tls::PeerIdentity peer = tls::PeerOf(tls_.ssl());
  peer_identity_ = !peer.spiffe_id.empty()  ? peer.spiffe_id
                   : !peer.uri_sans.empty() ? peer.uri_sans.front()
                   : !peer.dns_sans.empty() ? peer.dns_sans.front()
                                            : "<no identity>";
  if (role_ == Role::kClient) {
    if (!CheckServer()) {
      Close();
      return;
    }
    ++worker_->stats().tunnel.connections_out;
  } else {
    ++worker_->stats().tunnel.connections_in;
  }
  OnReadable();
  if (closed_) return;
  Flush();
}

bool HboneConnection::CheckServer() {
  if (!policy_) return true;
  tls::PeerIdentity peer = tls::PeerOf(tls_.ssl());
  if (policy_->trust != nullptr &&
      !VerifyPeerAgainst(tls_.ssl(), policy_->trust.get())) {
    Refuse(TunnelRefusal::kServerIdentity,
           "the destination's certificate fails the client policy's trust");
    return false;
  }
  if (!tls::SanMatches(peer, policy_->sans)) {
    Refuse(TunnelRefusal::kServerIdentity,
           absl::StrCat("the destination presented ", peer_identity_,
                        ", not a subjectAlternativeName the client policy "
                        "names"));
    return false;
  }
  return true;
}

void HboneConnection::OnReadable() {
  ReadAll();
  DispatchNotifications();
}

void HboneConnection::ReadAll() {
  while (!closed_) {
    size_t n = 0;
    auto r = tls_.Read(read_scratch, sizeof(read_scratch), &n);
    if (r == tls::TlsSocket::Result::kOk) {
      worker_->stats().tunnel.bytes_in += n;
      if (!codec_.Feed(std::string_view(read_scratch, n))) {
        LOG_EVERY_N(WARNING, 50)
            << "tunnel " << peer_label_ << ": HTTP/2 protocol error; closed";
        Flush();
        Close();
        return;
      }
      continue;
    }
    if (r == tls::TlsSocket::Result::kWantRead ||
        r == tls::TlsSocket::Result::kWantWrite)
      return;
    Close();  // close_notify, EOF or error
    return;
  }
}

void HboneConnection::Flush() {
  if (closed_ || !handshake_done_ || in_flush_) return;
  in_flush_ = true;
  bool failed = false;
  while (true) {
    if (out_.size() - out_off_ < 32 * 1024) {
      if (out_off_ > 0) {
        out_.erase(0, out_off_);
        out_off_ = 0;
      }
      if (!codec_.Produce(&out_, 64 * 1024)) {
        failed = true;
        break;
      }
    }
    if (out_off_ == out_.size()) break;
    size_t n = 0;
    auto r = tls_.Write(out_.data() + out_off_, out_.size() - out_off_, &n);
    if (r == tls::TlsSocket::Result::kOk) {
      out_off_ += n;
      worker_->stats().tunnel.bytes_out += n;
      continue;
    }
    if (r == tls::TlsSocket::Result::kWantWrite ||
        r == tls::TlsSocket::Result::kWantRead)
      break;
    failed = true;
    break;
  }
  in_flush_ = false;
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  }
  if (failed || (codec_.Finished() && out_.empty())) {
    Close();
    return;
  }
  UpdateInterest();
  DispatchNotifications();
}

void HboneConnection::UpdateInterest() {
  uint32_t want = EPOLLIN;
  if (out_off_ < out_.size()) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    (void)worker_->loop()->Modify(fd_.get(), want);
  }
}

void HboneConnection::Refuse(TunnelRefusal reason, std::string_view detail) {
  worker_->stats().tunnel.Refuse(reason);
  // Every refusal is logged, up to 20 lines a second per worker (a flood
  // of bad peers must not flood the log); the next line says how many
  // were left out.
  thread_local Clock::time_point window;
  thread_local int lines = 0;
  thread_local uint64_t left_out = 0;
  const Clock::time_point now = worker_->Now();
  if (now - window >= std::chrono::seconds(1)) {
    window = now;
    lines = 0;
  }
  if (++lines > 20) {
    ++left_out;
    return;
  }
  LOG(WARNING) << "tunnel " << (role_ == Role::kServer ? "from " : "to ")
               << peer_label_ << " ("
               << (peer_identity_.empty() ? "no identity yet" : peer_identity_)
               << "): refused, " << TunnelRefusalName(reason) << ": " << detail
               << (left_out > 0 ? absl::StrCat(" (", left_out,
                                               " earlier refusals not logged)")
                                : std::string());
  left_out = 0;
}

void HboneConnection::Close() {
  if (closed_) return;
  closed_ = true;
  if (role_ == Role::kClient) worker_->tunnels()->Forget(this);
  worker_->tunnels()->Unregister(this);
  for (auto& [id, s] : streams_) {
    if (s->channel != nullptr) {
      s->channel->failed_ = true;
      s->channel->conn_ = nullptr;
      Notify(s->channel);
    }
    if (s->registered) worker_->loop()->Remove(s->fd.get());
    // Delivered streams count as client connections (drain waits for them).
    if (role_ == Role::kServer) --worker_->stats().downstream_cx_active;
  }
  streams_.clear();
  if (handshake_done_) tls_.Shutdown();
  if (fd_.valid()) {
    worker_->loop()->Remove(fd_.get());
    fd_.Reset();
  }
  worker_->Retire(this);
  DispatchNotifications();
}

void HboneConnection::Drain() {
  if (closed_ || going_away_) return;
  going_away_ = true;
  if (role_ == Role::kServer) {
    codec_.ShutdownNotice();
    codec_.GoawayFinal();
  }
  if (streams_.empty()) {
    Close();
    return;
  }
  Flush();
}

void HboneConnection::OnTick(Clock::time_point now) {
  if (closed_) return;
  if (!handshake_done_ && now - started_ > kHandshakeTimeout) {
    Refuse(TunnelRefusal::kHandshakeCut, "handshake not finished in 10 s");
    Close();
    return;
  }
  if (streams_.empty()) {
    if (role_ == Role::kClient && now - idle_since_ > kIdleTimeout) Close();
  } else {
    idle_since_ = now;
  }
}

// ---- Streams ----

HboneConnection::Stream* HboneConnection::Find(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void HboneConnection::UpdateStreamInterest(Stream* s) {
  if (s->channel != nullptr) return;
  uint32_t want = 0;
  if (s->connecting) {
    want = EPOLLOUT;
  } else {
    if (s->established && !s->local_eof && s->out.pending() < kOutCap)
      want |= EPOLLIN;
    if (s->in_off < s->in.size()) want |= EPOLLOUT;
  }
  if (!s->registered) {
    if (want == 0) return;
    int32_t id = s->id;
    auto st = worker_->loop()->Add(
        s->fd.get(), want, [this, id](uint32_t ev) { OnStreamEvents(id, ev); });
    if (!st.ok()) {
      CloseStream(s, kCancel);
      return;
    }
    s->registered = true;
    s->interest = want;
    return;
  }
  if (want != s->interest) {
    s->interest = want;
    (void)worker_->loop()->Modify(s->fd.get(), want);
  }
}

void HboneConnection::OnStreamEvents(int32_t id, uint32_t events) {
  if (closed_) return;
  Stream* s = Find(id);
  if (s == nullptr) return;
  if (s->connecting) {
    if (!net::SocketError(s->fd.get()).ok()) {
      Refuse(TunnelRefusal::kEndpointConnect,
             absl::StrCat(s->authority, " refused the connection"));
      const http::HeaderField fields[] = {{":status", "503"}};
      codec_.SubmitResponse(id, fields, nullptr);
      CloseStream(s, 0);
      worker_->QueueFlush(this);
      return;
    }
    s->connecting = false;
    Respond(s, 200);
    PumpToLocal(s);
    if ((s = Find(id)) == nullptr) return;
    UpdateStreamInterest(s);
    return;
  }
  if (events & EPOLLOUT) {
    PumpToLocal(s);
    if ((s = Find(id)) == nullptr) return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    if (!s->local_eof) {
      PumpFromLocal(s);
    } else if (s->registered) {
      // Hung up and already at EOF: stop listening (epoll reports HUP
      // whatever the interest).
      worker_->loop()->Remove(s->fd.get());
      s->registered = false;
      if (s->in_off < s->in.size() || events & EPOLLERR)
        CloseStream(s, kCancel);
    }
  }
}

void HboneConnection::Respond(Stream* s, int status) {
  s->established = status == 200;
  const std::string code = std::to_string(status);
  const http::HeaderField fields[] = {{":status", code}};
  codec_.SubmitResponse(s->id, fields, s->established ? &s->out : nullptr);
  worker_->QueueFlush(this);
}

void HboneConnection::PumpFromLocal(Stream* s) {
  bool moved = false;
  while (s->established && !s->local_eof && s->out.pending() < kOutCap) {
    if (s->out.off == s->out.data.size()) {
      s->out.data.clear();
      s->out.off = 0;
    }
    ssize_t n = ::read(s->fd.get(), local_scratch, sizeof(local_scratch));
    if (n > 0) {
      s->out.data.append(local_scratch, static_cast<size_t>(n));
      moved = true;
      continue;
    }
    if (n == 0) {
      s->local_eof = true;
      s->out.end = true;
      moved = true;
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    CloseStream(s, kCancel);
    return;
  }
  if (moved) {
    codec_.ResumeData(s->id, &s->out);
    worker_->QueueFlush(this);
  }
  UpdateStreamInterest(s);
}

void HboneConnection::PumpToLocal(Stream* s) {
  if (s->connecting) return;
  size_t written = 0;
  while (s->in_off < s->in.size()) {
    ssize_t n = ::send(s->fd.get(), s->in.data() + s->in_off,
                       s->in.size() - s->in_off, MSG_NOSIGNAL);
    if (n > 0) {
      s->in_off += static_cast<size_t>(n);
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    codec_.Consume(s->id, written);
    CloseStream(s, kCancel);
    return;
  }
  if (written > 0) {
    codec_.Consume(s->id, written);
    worker_->QueueFlush(this);
  }
  if (s->in_off == s->in.size()) {
    s->in.clear();
    s->in_off = 0;
    if (s->peer_end && !s->shut_wr) {
      ::shutdown(s->fd.get(), SHUT_WR);
      s->shut_wr = true;
    }
    if (s->codec_closed) {
      CloseStream(s, 0);
      return;
    }
  }
  UpdateStreamInterest(s);
}

void HboneConnection::CloseStream(Stream* s, uint32_t reset_code) {
  const int32_t id = s->id;
  if (s->channel != nullptr) {
    // The user may still read what arrived; the window is the
    // connection's business and opens now.
    TunnelChannel* ch = s->channel.get();
    const size_t unconsumed = ch->in_.size() - ch->in_off_;
    if (unconsumed > 0) {
      codec_.Consume(id, unconsumed);
      worker_->QueueFlush(this);
    }
    if (!ch->peer_end_) ch->failed_ = true;
    ch->conn_ = nullptr;
    if (ch->user_ != nullptr) Notify(s->channel);
  }
  // Bytes received and never delivered still count against the
  // connection's window: give them back, or aborted streams starve the
  // connection every other caller shares.
  if (s->in_off < s->in.size()) {
    codec_.Consume(id, s->in.size() - s->in_off);
    worker_->QueueFlush(this);
  }
  if (reset_code != 0 && !s->codec_closed) {
    codec_.ResetStream(id, reset_code);
    worker_->QueueFlush(this);
  }
  if (s->registered) worker_->loop()->Remove(s->fd.get());
  if (role_ == Role::kClient && opened_ > 0) --opened_;
  if (role_ == Role::kServer) --worker_->stats().downstream_cx_active;
  streams_.erase(id);
  if (streams_.empty()) {
    idle_since_ = worker_->Now();
    if (going_away_) Close();
  }
}

void HboneConnection::Answer(int32_t id, int status, TunnelRefusal reason,
                             std::string_view detail) {
  Refuse(reason, detail);
  const std::string code = std::to_string(status);
  const http::HeaderField fields[] = {
      {":status", code}, {"x-nodemesh-refusal", TunnelRefusalName(reason)}};
  codec_.SubmitResponse(id, fields, nullptr);
  worker_->QueueFlush(this);
}

TunnelRefusal HboneConnection::Authorize(const compile::TunnelConfig* cfg,
                                         const std::string& authority,
                                         std::string* detail) {
  auto ep = net::SocketAddress::Parse(authority);
  const compile::LocalTarget* target = nullptr;
  if (cfg != nullptr && ep.ok()) {
    auto it = cfg->local.find(ep->ToString());
    if (it != cfg->local.end()) target = &it->second;
  }
  if (target == nullptr) {
    *detail = absl::StrCat(peer_identity_, " -> ", authority,
                           ": no endpoint of this node");
    return TunnelRefusal::kNotLocal;
  }
  const char* sni = SSL_get_servername(tls_.ssl(), TLSEXT_NAMETYPE_host_name);
  if (sni != nullptr && target->identity != sni) {
    *detail = absl::StrCat(peer_identity_, " -> ", authority, " is ",
                           target->identity, ", not ", sni);
    return TunnelRefusal::kWrongIdentity;
  }
  if (target->validate) {
    tls::PeerIdentity peer = tls::PeerOf(tls_.ssl());
    if ((target->trust != nullptr &&
         !VerifyPeerAgainst(tls_.ssl(), target->trust.get())) ||
        !tls::SanMatches(peer, target->sans)) {
      *detail = absl::StrCat(peer_identity_, " -> ", target->identity,
                             ": fails the listener's TLS validation");
      return TunnelRefusal::kValidation;
    }
  }
  if (!target->allowed.contains(peer_identity_)) {
    *detail = absl::StrCat(peer_identity_, " -> ", target->identity,
                           ": the caller lists no backend that reaches it");
    return TunnelRefusal::kNotABackend;
  }
  return TunnelRefusal::kCount;
}

void HboneConnection::Reauthorize(const compile::TunnelConfig* cfg) {
  if (closed_ || !handshake_done_) return;
  if (role_ == Role::kClient) {
    // What the caller demands may have changed: the destination's
    // certificate is judged again, and the connection closes if it fails
    // (its streams' users see the failure).
    const compile::ClientTlsPolicy* p =
        cfg != nullptr ? cfg->ClientPolicy(caller_, sni_, port_) : nullptr;
    if (p != nullptr)
      policy_ = *p;
    else
      policy_.reset();
    if (!CheckServer()) Close();
    return;
  }
  // Streams admitted under the old rules that the new ones refuse end now.
  std::vector<int32_t> refused;
  for (const auto& [id, s] : streams_) {
    std::string detail;
    TunnelRefusal r = Authorize(cfg, s->authority, &detail);
    if (r == TunnelRefusal::kCount) continue;
    Refuse(r, absl::StrCat(detail, " (stream ended: the rules changed)"));
    refused.push_back(id);
  }
  for (int32_t id : refused) {
    if (Stream* s = Find(id)) CloseStream(s, kCancel);
  }
  if (!refused.empty()) worker_->QueueFlush(this);
}

void HboneConnection::ServeConnect(int32_t id,
                                   const http::H2HeaderBlock& block) {
  if (block.method != "CONNECT" || block.authority.empty()) {
    Answer(id, 400, TunnelRefusal::kBadRequest, "not a CONNECT with authority");
    return;
  }
  const std::string authority(block.authority);
  const auto& snap = worker_->snapshot();
  std::string detail;
  TunnelRefusal refusal =
      Authorize(snap ? snap->tunnel.get() : nullptr, authority, &detail);
  if (refusal != TunnelRefusal::kCount) {
    Answer(id, refusal == TunnelRefusal::kNotLocal ? 404 : 403, refusal,
           detail);
    return;
  }
  auto ep = net::SocketAddress::Parse(authority);
  auto fd = net::ConnectTcp(*ep, worker_->options().socket_mark);
  if (!fd.ok()) {
    Answer(id, 503, TunnelRefusal::kEndpointConnect,
           absl::StrCat(authority, ": ", fd.status().message()));
    return;
  }
  int one = 1;
  (void)::setsockopt(fd->get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto s = std::make_unique<Stream>();
  s->id = id;
  s->fd = std::move(*fd);
  s->authority = authority;
  s->connecting = true;
  Stream* raw = s.get();
  streams_[id] = std::move(s);
  ++worker_->stats().tunnel.streams_in;
  ++worker_->stats().downstream_cx_active;
  UpdateStreamInterest(raw);
}

// ---- H2Visitor ----

void HboneConnection::OnHeaders(int32_t stream_id,
                                const http::H2HeaderBlock& block,
                                bool end_stream) {
  if (role_ == Role::kServer) {
    if (Find(stream_id) == nullptr) ServeConnect(stream_id, block);
    if (end_stream) OnEndStream(stream_id);
    return;
  }
  Stream* s = Find(stream_id);
  if (s == nullptr) return;
  TunnelChannel* ch = s->channel.get();  // in-process, or null (a socket)
  const bool established = ch != nullptr ? ch->established_ : s->established;
  const bool answered_2xx = block.status >= 200 && block.status < 300;
  if (!established && !answered_2xx) {
    auto why = block.headers.Get("x-nodemesh-refusal");
    LOG_EVERY_N(WARNING, 20)
        << "tunnel to " << peer_label_ << ": CONNECT " << s->authority
        << " refused with " << block.status << " ("
        << (why ? *why : std::string_view("no reason")) << ")";
    if (ch != nullptr) ch->failed_ = true;
    CloseStream(s, end_stream ? 0 : kCancel);
    return;
  }
  if (!established) {
    if (ch != nullptr) {
      ch->established_ = true;
      Notify(s->channel);
    } else {
      s->established = true;
      PumpFromLocal(s);
      if (Find(stream_id) == nullptr) return;
    }
  }
  if (end_stream) OnEndStream(stream_id);
}

void HboneConnection::OnData(int32_t stream_id, std::string_view data) {
  Stream* s = Find(stream_id);
  if (s == nullptr) {
    codec_.Consume(stream_id, data.size());
    return;
  }
  if (s->channel != nullptr) {
    // Consumed when the user takes it: the window stays shut meanwhile.
    // Copied, and offered once the codec is done with this read: one
    // delivery (one write to the client) per read, not per 16 KiB frame.
    std::shared_ptr<TunnelChannel> ch = s->channel;
    ch->in_.append(data);
    Notify(ch);
    return;
  }
  size_t written = 0;
  if (s->in_off == s->in.size() && !s->connecting && s->fd.valid()) {
    ssize_t n = ::send(s->fd.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) written = static_cast<size_t>(n);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      codec_.Consume(stream_id, data.size());
      CloseStream(s, kCancel);
      return;
    }
  }
  if (written > 0) codec_.Consume(stream_id, written);
  if (written < data.size()) {
    if (s->in_off == s->in.size()) {
      s->in.clear();
      s->in_off = 0;
    }
    s->in.append(data.substr(written));
  }
  worker_->QueueFlush(this);
  UpdateStreamInterest(s);
}

void HboneConnection::OnEndStream(int32_t stream_id) {
  Stream* s = Find(stream_id);
  if (s == nullptr) return;
  if (s->channel != nullptr) {
    s->channel->peer_end_ = true;
    Notify(s->channel);
    return;
  }
  s->peer_end = true;
  if (s->in_off == s->in.size() && !s->connecting && !s->shut_wr) {
    ::shutdown(s->fd.get(), SHUT_WR);
    s->shut_wr = true;
  }
}

void HboneConnection::OnStreamClose(int32_t stream_id, uint32_t error_code) {
  Stream* s = Find(stream_id);
  if (s == nullptr) return;
  s->codec_closed = true;
  if (error_code != 0 || s->in_off == s->in.size() || s->connecting)
    CloseStream(s, 0);
}

void HboneConnection::OnGoaway(int32_t /*last_stream_id*/, uint32_t /*error*/) {
  going_away_ = true;
  if (role_ == Role::kClient) worker_->tunnels()->Forget(this);
}

http::H2OutBody* HboneConnection::BodyOf(int32_t stream_id) {
  Stream* s = Find(stream_id);
  if (s == nullptr) return nullptr;
  return s->channel != nullptr ? &s->channel->out_ : &s->out;
}

void HboneConnection::OnBodyDrained(int32_t stream_id) {
  Stream* s = Find(stream_id);
  if (s == nullptr) return;
  if (s->channel != nullptr) {
    Notify(s->channel);  // room to write again
    return;
  }
  if (s->out.off == s->out.data.size()) {
    s->out.data.clear();
    s->out.off = 0;
  }
  UpdateStreamInterest(s);
}

}  // namespace nodemesh::proxy
