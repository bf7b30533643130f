#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/http/h2_codec.h"
#include "agent/http/http1_parser.h"
#include "agent/net/socket.h"
#include "agent/net/unique_fd.h"
#include "agent/proxy/h2_output.h"
#include "agent/proxy/upstream.h"
#include "agent/proxy/worker.h"

namespace nodemesh::proxy {

class Http2UpstreamConnection;

// One exchange's stream on an HTTP/2 connection to an endpoint: the
// request arrives as fields, body bytes and an end (HEADERS, DATA,
// trailers), and the response goes back as the HTTP/1.1 parser would
// report it.
class Http2UpstreamStream final : public Upstream {
 public:
  explicit Http2UpstreamStream(Http2UpstreamConnection* conn);

  // Upstream.
  void Attach(UpstreamCallbacks* cb, ClusterPool* requests) override;
  // The request body (unframed).
  void Send(std::string_view bytes) override;
  void SendHead(std::span<const http::HeaderField> fields,
                bool has_body) override;
  void EndRequest(
      std::span<const std::pair<std::string, std::string>> trailers) override;
  void ExpectResponseTo(std::string_view method) override {
    head_request_ = method == "HEAD";
  }
  void SetReadPaused(bool paused) override;
  void Detach(bool reuse) override;
  size_t pending_output() const override { return body_.pending(); }

 private:
  friend class Http2UpstreamConnection;

  // Ends the exchange's accounting and returns who it was.
  UpstreamCallbacks* EndExchange();

  Http2UpstreamConnection* const conn_;
  UpstreamCallbacks* cb_ = nullptr;
  ClusterPool* request_pool_ = nullptr;
  int32_t id_ = 0;  // 0: not submitted yet
  http::H2OutBody body_;
  http::MessageHead head_;  // the response, as the exchange expects it
  bool head_request_ = false;
  bool has_body_ = false;
  bool response_started_ = false;
  bool response_done_ = false;
  bool read_paused_ = false;
  size_t unconsumed_ = 0;  // response bytes held while paused
};

// One HTTP/2 connection to an endpoint, owned by its worker and listed in
// the endpoint's EndpointState::h2 while it takes new streams.
class Http2UpstreamConnection final : public WorkerObject, http::H2Visitor {
 public:
  // Counted in `pool` (its cluster's connectionPool) while open.
  Http2UpstreamConnection(Worker* worker, net::UniqueFd fd,
                          const net::SocketAddress& endpoint, ClusterPool* pool,
                          const std::string* via = nullptr);
  ~Http2UpstreamConnection() override;

  void Start();
  // Room for another stream: not going away, under the peer's limit.
  bool HasCapacity() const;
  Http2UpstreamStream* NewStream();

  const net::SocketAddress& endpoint() const { return endpoint_; }
  const EndpointKey& key() const { return key_; }

  void OnTick(Clock::time_point now) override;
  void Abort() override { Close(); }
  void OnFlush() override { Flush(); }

 private:
  friend class Http2UpstreamStream;

  void OnEvents(uint32_t events);
  void OnReadable();
  void Flush();
  void UpdateInterest();
  void Close();
  // The stream's exchange is over (detached or failed): back to the free
  // list; the connection closes when it is going away and now idle.
  void Release(Http2UpstreamStream* s);
  Http2UpstreamStream* StreamOf(int32_t stream_id) const;

  // H2Visitor.
  void OnHeaders(int32_t stream_id, const http::H2HeaderBlock& block,
                 bool end_stream) override;
  void OnData(int32_t stream_id, std::string_view data) override;
  void OnEndStream(int32_t stream_id) override;
  void OnStreamClose(int32_t stream_id, uint32_t error_code) override;
  void OnGoaway(int32_t last_stream_id, uint32_t error_code) override;
  void OnSettings() override;
  http::H2OutBody* BodyOf(int32_t stream_id) override;
  void OnBodyDrained(int32_t stream_id) override;

  Worker* const worker_;
  net::UniqueFd fd_;
  const net::SocketAddress endpoint_;
  const EndpointKey key_;
  ClusterPool* const pool_;
  http::H2Codec codec_;
  H2Output out_;
  uint32_t interest_ = 0;
  bool connected_ = false;
  bool in_flush_ = false;
  bool going_away_ = false;  // GOAWAY received (or sent): no new streams
  bool settings_ = false;    // the peer's SETTINGS arrived
  uint32_t active_ = 0;      // streams attached to exchanges
  Clock::time_point idle_since_;
  std::vector<std::unique_ptr<Http2UpstreamStream>> streams_;
  std::vector<Http2UpstreamStream*> free_;
};

}  // namespace nodemesh::proxy
