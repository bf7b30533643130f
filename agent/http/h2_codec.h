#pragma once

// HTTP/2 framing for the proxy: an nghttp2 session in memory-buffer mode.
// The caller owns the socket and the event loop (Feed what it read, send
// what Produce appends); the codec owns nothing but the protocol state. One
// class for both roles: the proxy is a server to clients and a client to
// endpoints.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/http/header_list.h"

struct nghttp2_session;

namespace nodemesh::http {

// One received header block, pseudo-header fields apart. Views into the
// codec's storage, valid during H2Visitor::OnHeaders only.
struct H2HeaderBlock {
  // Requests.
  std::string_view method;
  std::string_view scheme;
  std::string_view authority;
  std::string_view path;
  std::string_view protocol;  // extended CONNECT (RFC 8441), e.g. websocket
  // Responses: the :status, 0 for a trailer block.
  int status = 0;
  HeaderList headers;  // regular fields, lowercase names (HTTP/2 rule)
};

// Bytes a stream has to send as DATA frames, owned by the sender. The codec
// pulls from it when the peer's flow-control windows allow.
struct H2OutBody {
  std::string data;
  size_t off = 0;
  bool end = false;       // nothing follows `data` (but the trailers)
  bool deferred = false;  // the codec waits for more: ResumeData
  // Sent as a trailer block after the data; names lowercase.
  std::vector<std::pair<std::string, std::string>> trailers;

  size_t pending() const { return data.size() - off; }
  void Clear() {
    data.clear();
    off = 0;
    end = false;
    deferred = false;
    trailers.clear();
  }
};

// What a codec reports, in wire order, from inside Feed() (and
// OnBodyDrained from Produce()).
class H2Visitor {
 public:
  virtual ~H2Visitor() = default;
  // A complete header block (request or response head, or trailers).
  // `end_stream`: the peer sends nothing more on the stream.
  virtual void OnHeaders(int32_t stream_id, const H2HeaderBlock& block,
                         bool end_stream) = 0;
  // Call H2Codec::Consume(stream_id, data.size()) once the bytes are passed
  // on: until then they count against the peer's window (no unbounded
  // buffering: a slow reader stops the sender).
  virtual void OnData(int32_t stream_id, std::string_view data) = 0;
  // END_STREAM on a DATA frame.
  virtual void OnEndStream(int32_t stream_id) = 0;
  // The stream is gone; error_code 0 after a normal end (RST_STREAM codes
  // otherwise, e.g. 7 REFUSED_STREAM after a GOAWAY, 8 CANCEL).
  virtual void OnStreamClose(int32_t stream_id, uint32_t error_code) = 0;
  virtual void OnGoaway(int32_t /*last_stream_id*/, uint32_t /*error*/) {}
  // The peer's SETTINGS arrived (PeerMaxConcurrentStreams is now its own).
  virtual void OnSettings() {}
  // The stream's outgoing body for the codec to pull; null resets it.
  virtual H2OutBody* BodyOf(int32_t stream_id) = 0;
  // After Produce(): the stream's queued body was all taken.
  virtual void OnBodyDrained(int32_t /*stream_id*/) {}
};

struct H2CodecOptions {
  // SETTINGS_MAX_CONCURRENT_STREAMS we announce (server).
  uint32_t max_concurrent_streams = 1024;
  // Per-stream and connection receive windows: the most a peer may have in
  // flight before we pass bytes on.
  uint32_t stream_window = 256 * 1024;
  uint32_t connection_window = 4 * 1024 * 1024;
};

class H2Codec {
 public:
  enum class Role { kServer, kClient };
  // The server expects the client preface first; the client sends it.
  H2Codec(Role role, H2Visitor* visitor, const H2CodecOptions& options = {});
  ~H2Codec();
  H2Codec(const H2Codec&) = delete;
  H2Codec& operator=(const H2Codec&) = delete;

  // Parses received bytes. False: a connection error (bad preface, frame
  // flood, protocol violation); a GOAWAY is queued: Produce, send, close.
  bool Feed(std::string_view data);
  // Appends frames ready to go to `out` until it holds at least `limit`
  // bytes or nothing is left. False: fatal, close the connection.
  bool Produce(std::string* out, size_t limit);
  // Neither side has anything more to say (after GOAWAY, all streams done).
  bool Finished() const;

  // Server, after answering an HTTP/1.1 "Upgrade: h2c" with 101: applies
  // the client's HTTP2-Settings (decoded) and opens stream 1 for the
  // request that asked, half-closed by the client. False when invalid.
  bool UpgradeFromHttp1(std::string_view settings_payload, bool head_request);
  // Client: opens a stream with `fields` (pseudo-header fields first);
  // `body` null ends the stream with the headers. Returns the stream id,
  // negative on failure (e.g. ids used up). After a GOAWAY the id is still
  // returned but the stream never goes out: the next Produce reports it to
  // OnStreamClose with 7 REFUSED_STREAM, like the streams the GOAWAY refused.
  int32_t SubmitRequest(std::span<const HeaderField> fields, H2OutBody* body);
  // Server: the response head; `body` null ends the stream with it.
  bool SubmitResponse(int32_t stream_id, std::span<const HeaderField> fields,
                      H2OutBody* body);
  // `body` has more (or ended): the codec pulls again.
  void ResumeData(int32_t stream_id, H2OutBody* body);
  void ResetStream(int32_t stream_id, uint32_t error_code);
  // Received DATA bytes were passed on: the window opens again.
  void Consume(int32_t stream_id, size_t bytes);
  // Graceful shutdown, two steps: tell the peer to open no more streams,
  // then (GoawayFinal) name the last stream that will be served.
  void ShutdownNotice();
  void GoawayFinal(uint32_t error_code = 0);

  void SetStreamData(int32_t stream_id, void* data);
  void* StreamData(int32_t stream_id) const;
  // The peer's SETTINGS_MAX_CONCURRENT_STREAMS (100 until it says).
  uint32_t PeerMaxConcurrentStreams() const;
  bool ReceivedGoaway() const { return goaway_received_; }
  // Frames the peer got wrong (each answered with RST_STREAM or GOAWAY)
  // since the last call.
  uint32_t TakeProtocolErrors() {
    uint32_t n = protocol_errors_;
    protocol_errors_ = 0;
    return n;
  }
  size_t OpenStreams() const { return open_streams_; }

 private:
  struct Callbacks;
  friend struct Callbacks;
  void DeliverBlock(int32_t stream_id, bool end_stream);

  nghttp2_session* session_ = nullptr;
  H2Visitor* const visitor_;
  // The header block being received: names and values copied here, the
  // views made once it is complete (no reallocation under them).
  std::string block_bytes_;
  struct FieldAt {
    uint32_t name, name_len, value, value_len;
  };
  std::vector<FieldAt> block_fields_;
  H2HeaderBlock block_;
  std::vector<int32_t> drained_;  // reported after Produce
  size_t open_streams_ = 0;
  uint32_t protocol_errors_ = 0;
  bool goaway_sent_ = false;
  bool goaway_received_ = false;
};

}  // namespace nodemesh::http
