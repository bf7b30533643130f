#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/http/h2_codec.h"
#include "agent/net/unique_fd.h"
#include "agent/proxy/h2_output.h"
#include "agent/proxy/http_session.h"
#include "agent/proxy/worker.h"

namespace nodemesh::proxy {

// One downstream HTTP/2 connection (h2c with prior knowledge: the
// HttpSession that read the preface hands the socket over). Each stream is
// served by an HttpSession in transport mode, which does what it does for
// HTTP/1.1 clients (routing, retries, timeouts, pools, logs, metrics): the
// stream's request is given to it as HTTP/1.1 and its response read back
// into HEADERS, DATA and trailers. Sessions are kept with their stream
// objects and reused, so a busy connection allocates nothing per request
// beyond what nghttp2 does.
class Http2DownstreamConnection final : public WorkerObject, http::H2Visitor {
 public:
  // `read_ahead`: bytes already read, starting with the preface.
  Http2DownstreamConnection(Worker* worker, net::UniqueFd fd,
                            ConnectionInfo info, std::string read_ahead);
  // The HTTP/1.1 request that asked for "Upgrade: h2c": it becomes stream
  // 1 (`request`: its head as HTTP/1.1, upgrade fields removed) after the
  // 101 is sent.
  struct Http1Upgrade {
    std::string request;
    std::string method;
    std::string settings;  // HTTP2-Settings, decoded
  };
  Http2DownstreamConnection(Worker* worker, net::UniqueFd fd,
                            ConnectionInfo info, Http1Upgrade upgrade);
  ~Http2DownstreamConnection() override;

  void Start();
  void OnTick(Clock::time_point now) override;
  void Abort() override { Close(); }
  // GOAWAY: streams in flight finish, no new ones.
  void Drain() override;
  void OnFlush() override { Flush(); }

 private:
  class Stream;

  void OnEvents(uint32_t events);
  void OnReadable();
  void Flush();
  void UpdateInterest();
  void Close();
  Stream* Acquire(int32_t stream_id);
  void Release(Stream* s);

  // H2Visitor.
  void OnHeaders(int32_t stream_id, const http::H2HeaderBlock& block,
                 bool end_stream) override;
  void OnData(int32_t stream_id, std::string_view data) override;
  void OnEndStream(int32_t stream_id) override;
  void OnStreamClose(int32_t stream_id, uint32_t error_code) override;
  http::H2OutBody* BodyOf(int32_t stream_id) override;
  void OnBodyDrained(int32_t stream_id) override;

  Stream* StreamOf(int32_t stream_id) const;

  Worker* const worker_;
  net::UniqueFd fd_;
  const ConnectionInfo info_;
  http::H2Codec codec_;
  std::string in_;  // the bytes the sniffing session read
  std::optional<Http1Upgrade> upgrade_;
  H2Output out_;
  uint32_t interest_ = 0;
  bool in_flush_ = false;
  bool draining_ = false;
  bool goaway_sent_ = false;
  size_t live_streams_ = 0;
  Clock::time_point last_activity_;
  Clock::time_point goaway_at_ = Clock::time_point::max();
  std::vector<std::unique_ptr<Stream>> streams_;  // all ever made
  std::vector<Stream*> free_;
};

}  // namespace nodemesh::proxy
