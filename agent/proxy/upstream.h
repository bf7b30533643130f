#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "agent/http/http1_parser.h"
#include "agent/net/socket.h"
#include "agent/net/unique_fd.h"
#include "agent/proxy/tunnel_channel.h"
#include "agent/proxy/worker.h"

namespace nodemesh::proxy {

enum class UpstreamFailure {
  kConnect,      // the connect failed
  kReset,        // closed or reset before the response completed
  kBadResponse,  // the response could not be parsed
};

// What an exchange hears from the upstream connection serving it.
class UpstreamCallbacks {
 public:
  virtual ~UpstreamCallbacks() = default;
  // The connection is closed (and retired) before this is called.
  virtual void OnUpstreamFailure(UpstreamFailure failure) = 0;
  // Views valid during the call only. 1xx interim responses arrive too.
  virtual void OnResponseHead(const http::MessageHead& head) = 0;
  virtual void OnResponseBody(std::string_view data) = 0;
  virtual void OnResponseTrailers(const http::HeaderList& trailers) = 0;
  virtual void OnResponseComplete() = 0;
  // Everything queued was written: the request body may flow again.
  virtual void OnUpstreamDrained() {}
};

// What an exchange sends its request through: an HTTP/1.1 connection
// (UpstreamConnection) or a stream of a pooled HTTP/2 connection
// (Http2UpstreamStream). The request goes in as HTTP/1.1 bytes either way;
// the HTTP/2 side translates.
class Upstream {
 public:
  virtual ~Upstream() = default;
  // `requests`: the pool whose maxRequests the exchange counts against.
  virtual void Attach(UpstreamCallbacks* cb, ClusterPool* requests) = 0;
  // Queues request bytes and writes what the socket takes now.
  virtual void Send(std::string_view bytes) = 0;
  // The request being sent is `method` (frames the response).
  virtual void ExpectResponseTo(std::string_view method) = 0;
  // Stops (or resumes) reading the response: the downstream is backed up.
  virtual void SetReadPaused(bool paused) = 0;
  // Ends the exchange; `reuse`: the response completed and the connection
  // may serve another.
  virtual void Detach(bool reuse) = 0;
  // Request bytes queued, not yet written.
  virtual size_t pending_output() const = 0;
  // HTTP/2 streams: the request head as fields (pseudo-header fields
  // first), then its body through Send (unframed), then its end.
  virtual void SendHead(std::span<const http::HeaderField> /*fields*/,
                        bool /*has_body*/) {}
  virtual void EndRequest(
      std::span<const std::pair<std::string, std::string>> /*trailers*/) {}
  // The HTTP/1.1 connection that can become a tunnel; null for a stream.
  virtual UpstreamConnection* connection() { return nullptr; }
};

// One HTTP/1.1 connection to an endpoint, owned by its worker. It serves
// one exchange at a time (Attach .. Detach) and waits in the worker's pool
// in between, where any byte or EOF from the peer closes it.
class UpstreamConnection final : public WorkerObject,
                                 public Upstream,
                                 TunnelChannelUser,
                                 http::Http1Visitor {
 public:
  // Counted in `pool` (its cluster's connectionPool) while open.
  // `key`: where it is pooled (KeyOf(endpoint), or with the caller
  // identity of a remote endpoint's connection).
  UpstreamConnection(Worker* worker, net::UniqueFd fd,
                     const net::SocketAddress& endpoint, ClusterPool* pool,
                     const EndpointKey& key);
  // To an endpoint on another node, over a tunnel stream in-process.
  UpstreamConnection(Worker* worker, std::shared_ptr<TunnelChannel> channel,
                     const net::SocketAddress& endpoint, ClusterPool* pool,
                     const EndpointKey& key);
  ~UpstreamConnection() override;

  // Registers with the loop (connecting).
  void Start();
  // Upstream. Detach: back to the pool (when the response completed and
  // the connection may be reused) or closed.
  void Attach(UpstreamCallbacks* cb, ClusterPool* requests) override;
  void Send(std::string_view bytes) override;
  void ExpectResponseTo(std::string_view method) override {
    parser_.ExpectResponseTo(method);
  }
  void SetReadPaused(bool paused) override;
  void Detach(bool reuse) override;
  size_t pending_output() const override { return out_.size() - out_off_; }
  UpstreamConnection* connection() override { return this; }
  // After 101 / 2xx to CONNECT, for a tunnel that stays with the exchange
  // (an HTTP/2 stream's): every byte read, those past the response head
  // first, goes to OnResponseBody unparsed; EOF is a failure (kReset).
  void StartRaw();
  // Hands the socket over to a tunnel after 101 / 2xx to CONNECT, with the
  // bytes read past the response head and those not yet written.
  net::UniqueFd TakeForTunnel(std::string* read_ahead, std::string* unsent);

  const net::SocketAddress& endpoint() const { return endpoint_; }
  const EndpointKey& key() const { return key_; }
  ClusterPool* pool() const { return pool_; }
  bool connected() const { return connected_; }

  void OnTick(Clock::time_point now) override;
  void Abort() override { Close(); }
  // A channel's bytes held while reading was paused.
  void OnFlush() override {
    if (channel_ != nullptr) OnTunnelEvent();
  }

 private:
  void OnEvents(uint32_t events);
  // TunnelChannelUser: what HandleRead and Flush do for a socket.
  void OnTunnelEvent() override;
  // Writes queued bytes to the socket or the channel; false: failed.
  bool WriteOut(const char* data, size_t size, size_t* written);
  void HandleRead();
  // Feeds bytes to the response parser and settles what the exchange did
  // meanwhile (a Detach from inside a callback, bytes left over).
  void FeedResponse(std::string_view data);
  void Flush();
  void UpdateInterest();
  void Close();
  void Fail(UpstreamFailure failure);
  // Forgets the exchange (its request no longer counts as active at the
  // endpoint) and returns who it was.
  UpstreamCallbacks* EndExchange();
  void ReturnToPool();

  // Http1Visitor
  void OnHeaders(const http::MessageHead& head) override;
  void OnBody(std::string_view data) override;
  void OnTrailers(const http::HeaderList& trailers) override;
  void OnMessageComplete() override;

  Worker* const worker_;
  net::UniqueFd fd_;
  std::shared_ptr<TunnelChannel> channel_;  // instead of fd_
  const net::SocketAddress endpoint_;
  const EndpointKey key_;
  ClusterPool* const pool_;
  ClusterPool* request_pool_ = nullptr;  // the exchange's, while attached
  http::Http1Parser parser_;
  UpstreamCallbacks* cb_ = nullptr;
  bool connected_ = false;
  bool read_paused_ = false;
  bool in_read_ = false;           // inside HandleRead's Feed
  bool detach_requested_ = false;  // Detach(true) from inside a callback
  bool response_done_ = false;
  bool in_pool_ = false;
  bool raw_ = false;  // StartRaw: a tunnel's bytes, not HTTP
  uint32_t interest_ = 0;
  std::string out_;
  size_t out_off_ = 0;
  std::string read_ahead_;  // bytes read but not fed (paused or upgraded)
  Clock::time_point idle_since_;
};

}  // namespace nodemesh::proxy
