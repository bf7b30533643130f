#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "agent/http/http1_parser.h"
#include "agent/proxy/http_access_log.h"
#include "agent/proxy/local_reply.h"
#include "agent/proxy/upstream.h"
#include "agent/proxy/worker.h"

namespace nodemesh::proxy {

// Where a connection came in and what the kernel said about it.
struct ConnectionInfo {
  bool outbound = true;        // the outbound listener; else a gateway's
  uint16_t listener_port = 0;  // gateway listeners: which one
  net::SocketAddress peer;
  // Where the client meant to go (SO_ORIGINAL_DST), when redirected.
  std::optional<net::SocketAddress> original_dst;
  uint32_t source_workload = 0;  // NM_SO_PEER_WORKLOAD; 0 unknown
};

// The client side of an HttpSession that serves one HTTP/2 stream instead
// of a socket (see agent/proxy/h2_downstream.h): request bytes come in as
// HTTP/1.1 through Deliver(), response bytes go out through here.
class SessionTransport {
 public:
  virtual ~SessionTransport() = default;
  // HTTP/1.1-framed response bytes, taken whole.
  virtual void OnSessionOutput(std::string_view bytes) = 0;
  // Response bytes taken but not yet sent to the client.
  virtual size_t SessionBacklog() const = 0;
  // Whether the session takes more request bytes now (flow control).
  virtual void OnSessionWantsInput(bool want) = 0;
  // The session closed itself and must not be used again.
  virtual void OnSessionClosed() = 0;
  // An endpoint's response, passed on as the session received it (no
  // HTTP/1.1 in between; the session's own replies come as bytes).
  virtual void OnResponseHead(const http::MessageHead& head) = 0;
  virtual void OnResponseBody(std::string_view data) = 0;
  virtual void OnResponseTrailers(const http::HeaderList& trailers) = 0;
  virtual void OnResponseComplete() = 0;
};

// One downstream HTTP/1.1 connection. Requests are served one at a time in
// arrival order (pipelined ones wait, parsed but unread, in the input
// buffer); each is routed, sent to an endpoint and its response streamed
// back, with retries, timeouts and local replies per App Mesh. Upgrade and
// CONNECT hand both sockets to a TcpSession once the upstream agrees.
class HttpSession final : public WorkerObject,
                          public PoolWaiter,
                          http::Http1Visitor,
                          UpstreamCallbacks {
 public:
  HttpSession(Worker* worker, net::UniqueFd fd, ConnectionInfo info);
  // Serves the requests of an HTTP/2 stream (one at a time, reused for the
  // next stream once idle) through `transport`.
  HttpSession(Worker* worker, SessionTransport* transport, ConnectionInfo info);
  ~HttpSession() override;

  void Start();
  // Transport mode: request bytes from the client (HTTP/1.1; a tunnel's
  // raw bytes once it is one).
  void Deliver(std::string_view bytes);
  // Transport mode, the request already parsed (an HTTP/2 stream's head
  // translated, no bytes in between): what the parser would report.
  void DeliverHead(const http::MessageHead& head);
  void DeliverBody(std::string_view data);
  void DeliverTrailers(const http::HeaderList& trailers);
  void DeliverEnd();
  // Bytes for a tunnel that is not up yet (sent once it is).
  void HoldForTunnel(std::string_view bytes) { in_.append(bytes); }
  // Transport mode: the client caught up with the response.
  void OnTransportDrained();
  // Between exchanges, with nothing pending: may serve another stream.
  bool reusable() const {
    return !closed_ && state_ == State::kIdle && !close_after_flush_ &&
           !parser_.message_in_progress() && in_off_ == in_.size();
  }
  void OnTick(Clock::time_point now) override;
  void Abort() override { Close(); }
  // Drain: closes now when idle, else after the response in flight.
  void Drain() override;

 private:
  enum class State {
    kIdle,        // between requests
    kForwarding,  // an attempt is (or is about to be) in flight
    kReplied,     // answered; the rest of the request is discarded
  };

  // Downstream socket.
  void OnEvents(uint32_t events);
  void OnReadable();
  void Consume();
  // The client spoke HTTP/2 (the connection preface): hands the socket to
  // an Http2DownstreamConnection.
  void SwitchToHttp2();
  // The first request asked for "Upgrade: h2c" (curl --http2 on http://):
  // answers 101 and serves it and the rest of the connection as HTTP/2.
  // False when the request does not qualify (it is then served as
  // HTTP/1.1, the upgrade ignored, as RFC 9110 allows).
  bool UpgradeToHttp2(const http::MessageHead& head);
  size_t DownstreamBacklog() const;
  void FlushDownstream();
  void UpdateInterest();
  void Close();

  // Http1Visitor (requests).
  void OnHeaders(const http::MessageHead& head) override;
  void OnBody(std::string_view data) override;
  void OnTrailers(const http::HeaderList& trailers) override;
  void OnMessageComplete() override;

  // UpstreamCallbacks.
  void OnUpstreamFailure(UpstreamFailure failure) override;
  void OnResponseHead(const http::MessageHead& head) override;
  void OnResponseBody(std::string_view data) override;
  void OnResponseTrailers(const http::HeaderList& trailers) override;
  void OnResponseComplete() override;
  void OnUpstreamDrained() override { UpdateInterest(); }

  // PoolWaiter: a connection of the target's pool was released.
  void OnPoolReady() override;

  bool Route(const http::MessageHead& head);
  void BuildUpstreamHead(const http::MessageHead& head,
                         std::string_view authority);
  // One field of the upstream request head: a line of tx_ for HTTP/1.1,
  // a field of h2_head_ for HTTP/2.
  void AddUpstreamField(std::string_view name, std::string_view value);
  void SendToUpstream(std::string_view framed);
  void StartAttempt();
  bool CanRetry() const;
  void Retry();
  void Reply(LocalReason reason, int status = 0);
  void StartTunnel();
  void Expire(LocalReason reason);
  void FinishExchange();
  void ResetExchange();
  void TrimBuffers();
  void Record(int status);
  // A gRPC response's outcome for outlier detection, once its grpc-status
  // is known (trailers; none: the stream ended without one, a success).
  void RecordPendingOutcome(std::optional<std::string_view> grpc_status);
  // Writes the exchange's access log line(s), once.
  void LogExchange(int status);

  Worker* const worker_;
  net::UniqueFd fd_;
  SessionTransport* transport_ = nullptr;  // set: HTTP/2 stream mode
  bool sniffing_ = true;       // no byte parsed yet: may be the HTTP/2 preface
  bool first_request_ = true;  // h2c upgrade: only on the first
  bool wants_input_ = true;    // transport mode: last told to the transport
  const ConnectionInfo info_;
  std::string peer_ip_;
  http::Http1Parser parser_;
  uint32_t interest_ = 0;

  std::string in_;  // read, not yet parsed (pipelined, or paused)
  size_t in_off_ = 0;
  std::string out_;  // to the client, not yet written
  size_t out_off_ = 0;
  bool in_feed_ = false;
  bool read_eof_ = false;
  bool close_after_flush_ = false;
  bool draining_ = false;
  Clock::time_point last_activity_;

  // The exchange in progress.
  State state_ = State::kIdle;
  std::shared_ptr<const ProxySnapshot> snap_;  // keeps route_ alive
  const compile::VirtualHost* vhost_ = nullptr;
  const compile::HttpRouteEntry* route_ = nullptr;
  const compile::WeightedCluster* target_ = nullptr;
  const std::string* source_ = nullptr;  // source_virtual_node label
  // This exchange's share of the per-target counters, added at Record.
  struct ExchangeCounters {
    uint64_t retries = 0, timeouts = 0, request_bytes = 0, response_bytes = 0;
  };
  ExchangeCounters exchange_;
  // Draining: an idle connection is closed after this grace.
  static constexpr Millis kDrainIdleGrace{1000};
  Clock::time_point drain_close_at_ = Clock::time_point::max();
  bool rewrite_host_ = false;
  // A gateway route's rewritten request target (origin-form, query kept);
  // built once per request, capacity kept between requests.
  std::string upstream_target_;
  bool target_rewritten_ = false;
  std::string method_;
  bool is_head_ = false;
  bool request_keep_alive_ = true;
  bool request_has_body_ = false;
  bool request_chunked_ = false;
  bool request_complete_ = false;
  bool request_upgrade_ = false;
  bool request_connect_ = false;
  bool request_grpc_ = false;  // content-type application/grpc*
  // Transport mode after 101 (websocket over HTTP/2, RFC 8441): the
  // stream's bytes and the upstream's pass through unparsed.
  bool stream_tunnel_ = false;
  int request_minor_ = 1;
  // The route's timeouts, tightened by the target listener's.
  Millis per_request_timeout_{0};
  Millis idle_timeout_{0};
  Clock::time_point start_;
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point try_deadline_ = Clock::time_point::max();

  // The retry buffer: for HTTP/1.1 the request head and framed body, for
  // HTTP/2 the body only (the head is h2_head_, the trailers
  // request_trailers_).
  std::string tx_;
  bool upstream_h2_ = false;  // the target's listener is http2 or grpc
  struct UpstreamFieldAt {
    uint32_t name, name_len, value, value_len;
  };
  std::string h2_head_;  // names and values, capacity kept
  std::vector<UpstreamFieldAt> h2_fields_at_;
  std::vector<http::HeaderField> h2_fields_;  // views, made per attempt
  std::vector<std::pair<std::string, std::string>> request_trailers_;
  bool replay_ok_ = true;
  std::string frame_;  // scratch for re-chunking
  uint32_t attempts_ = 0;
  absl::InlinedVector<net::SocketAddress, 3> tried_;
  Upstream* upstream_ = nullptr;
  ClusterPool* pool_ = nullptr;     // the target cluster's, once routed
  bool resumed_from_pool_ = false;  // StartAttempt after waiting
  LocalReason last_failure_ = LocalReason::kConnectFailure;

  bool response_started_ = false;
  bool response_chunked_ = false;  // we chunk it to the client
  bool response_trailers_done_ = false;
  bool upstream_keep_alive_ = true;
  bool response_upgrade_ = false;
  bool outcome_pending_ = false;  // gRPC: waiting for the trailers
  // Transport mode: the response goes to the transport as parsed.
  bool direct_response_ = false;
  http::MessageHead direct_head_;  // capacity kept
  char length_digits_[24] = {};
  int status_ = 0;

  std::vector<http::HeaderField> fields_;  // scratch, capacity kept
  std::string xff_;
  std::string request_id_;
  // The W3C traceparent forwarded upstream: the client's when valid, else
  // one generated here. Beside request_id_ for the access log.
  std::string traceparent_;
  HttpExchangeLog log_;
};

}  // namespace nodemesh::proxy
