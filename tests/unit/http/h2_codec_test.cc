#include "agent/http/h2_codec.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace nodemesh::http {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

// One side of a connection: records what its codec reports, copies of
// everything (the codec's views last only for the callback).
class Peer : public H2Visitor {
 public:
  struct Stream {
    std::string method, authority, path;
    int status = 0;
    Fields head;
    Fields trailers;
    bool head_ended = false;  // END_STREAM on the head
    std::string data;
    bool ended = false;  // END_STREAM seen
    bool closed = false;
    uint32_t close_code = 0;
    void* data_at_close = nullptr;  // H2Codec::StreamData in OnStreamClose
    H2OutBody body;
  };

  explicit Peer(H2Codec::Role role, const H2CodecOptions& options = {})
      : codec(role, this, options) {}

  void OnHeaders(int32_t id, const H2HeaderBlock& block,
                 bool end_stream) override {
    Stream& s = streams[id];
    Fields fields;
    for (const HeaderField& f : block.headers) {
      fields.emplace_back(std::string(f.name), std::string(f.value));
    }
    if (s.method.empty() && s.status == 0) {
      s.method = block.method;
      s.authority = block.authority;
      s.path = block.path;
      s.status = block.status;
      s.head = std::move(fields);
      s.head_ended = end_stream;
    } else {
      s.trailers = std::move(fields);
    }
    if (end_stream) s.ended = true;
  }
  void OnData(int32_t id, std::string_view data) override {
    streams[id].data.append(data);
    if (auto_consume) {
      codec.Consume(id, data.size());
    } else {
      unconsumed[id] += data.size();
    }
  }
  void OnEndStream(int32_t id) override { streams[id].ended = true; }
  void OnStreamClose(int32_t id, uint32_t error_code) override {
    streams[id].closed = true;
    streams[id].close_code = error_code;
    streams[id].data_at_close = codec.StreamData(id);
  }
  void OnGoaway(int32_t last_stream_id, uint32_t error) override {
    goaway_last = last_stream_id;
    goaway_error = error;
  }
  H2OutBody* BodyOf(int32_t id) override {
    auto it = streams.find(id);
    return it == streams.end() ? nullptr : &it->second.body;
  }

  // Opens a client stream whose body is `data` (+ trailers), ended.
  int32_t Request(const std::vector<HeaderField>& fields, std::string data,
                  Fields trailers = {}, bool end = true) {
    H2OutBody* body = &next_body;
    next_body.Clear();
    next_body.data = std::move(data);
    next_body.end = end;
    next_body.trailers = std::move(trailers);
    int32_t id = codec.SubmitRequest(fields, body);
    if (id > 0) streams[id].body = std::move(next_body);
    return id;
  }

  std::map<int32_t, Stream> streams;
  std::map<int32_t, size_t> unconsumed;
  bool auto_consume = true;
  int32_t goaway_last = -1;
  uint32_t goaway_error = 0;
  H2OutBody next_body;
  H2Codec codec;
};

// Moves bytes both ways until neither side has anything to say. Returns the
// bytes carried.
size_t Pump(Peer& a, Peer& b) {
  size_t total = 0;
  for (int round = 0; round < 1000; ++round) {
    std::string ab, ba;
    EXPECT_TRUE(a.codec.Produce(&ab, 1 << 20));
    EXPECT_TRUE(b.codec.Produce(&ba, 1 << 20));
    if (ab.empty() && ba.empty()) return total;
    total += ab.size() + ba.size();
    EXPECT_TRUE(b.codec.Feed(ab));
    EXPECT_TRUE(a.codec.Feed(ba));
  }
  ADD_FAILURE() << "the peers never went quiet";
  return total;
}

const std::vector<HeaderField> kPost = {{":method", "POST"},
                                        {":scheme", "http"},
                                        {":authority", "svc.local"},
                                        {":path", "/upload"},
                                        {"Content-Type", "text/plain"}};

TEST(H2Codec, RequestWithBodyAndTrailersArrivesIntact) {
  Peer client(H2Codec::Role::kClient);
  Peer server(H2Codec::Role::kServer);
  std::string body;
  for (int i = 0; i < 5000; ++i) body += static_cast<char>('a' + i % 26);
  int32_t id = client.Request(kPost, body, {{"x-checksum", "c0ffee"}});
  ASSERT_GT(id, 0);
  Pump(client, server);

  ASSERT_EQ(server.streams.count(id), 1u);
  const Peer::Stream& s = server.streams[id];
  EXPECT_EQ(s.method, "POST");
  EXPECT_EQ(s.authority, "svc.local");
  EXPECT_EQ(s.path, "/upload");
  // Names go out lowercase.
  EXPECT_EQ(s.head, (Fields{{"content-type", "text/plain"}}));
  EXPECT_FALSE(s.head_ended);
  EXPECT_EQ(s.data, body);
  EXPECT_EQ(s.trailers, (Fields{{"x-checksum", "c0ffee"}}));
  EXPECT_TRUE(s.ended);
  EXPECT_EQ(server.codec.OpenStreams(), 1u);  // not answered yet
}

TEST(H2Codec, TrailersOnlyResponseEndsTheStreamWithItsHead) {
  Peer client(H2Codec::Role::kClient);
  Peer server(H2Codec::Role::kServer);
  int32_t id = client.codec.SubmitRequest(
      std::vector<HeaderField>{{":method", "POST"},
                               {":scheme", "http"},
                               {":authority", "greeter"},
                               {":path", "/helloworld.Greeter/SayHello"},
                               {"content-type", "application/grpc"},
                               {"te", "trailers"}},
      nullptr);
  ASSERT_GT(id, 0);
  Pump(client, server);
  ASSERT_TRUE(server.streams[id].head_ended);

  const std::vector<HeaderField> response = {
      {":status", "200"},
      {"content-type", "application/grpc"},
      {"grpc-status", "14"},
      {"grpc-message", "unavailable"}};
  ASSERT_TRUE(server.codec.SubmitResponse(id, response, nullptr));
  Pump(client, server);

  const Peer::Stream& s = client.streams[id];
  EXPECT_EQ(s.status, 200);
  EXPECT_TRUE(s.head_ended);
  EXPECT_EQ(s.head, (Fields{{"content-type", "application/grpc"},
                            {"grpc-status", "14"},
                            {"grpc-message", "unavailable"}}));
  EXPECT_TRUE(s.trailers.empty());
  EXPECT_TRUE(s.data.empty());
  EXPECT_TRUE(s.closed);
  EXPECT_EQ(s.close_code, 0u);
  EXPECT_EQ(client.codec.OpenStreams(), 0u);
  EXPECT_EQ(server.codec.OpenStreams(), 0u);
}

TEST(H2Codec, ResponseBodyAndTrailersReachTheClient) {
  Peer client(H2Codec::Role::kClient);
  Peer server(H2Codec::Role::kServer);
  int32_t id = client.Request(kPost, "ping");
  Pump(client, server);
  Peer::Stream& s = server.streams[id];
  s.body.Clear();
  s.body.data = "pong";
  s.body.end = true;
  s.body.trailers = {{"grpc-status", "0"}};
  ASSERT_TRUE(server.codec.SubmitResponse(
      id, std::vector<HeaderField>{{":status", "200"}}, &s.body));
  Pump(client, server);
  const Peer::Stream& r = client.streams[id];
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.head_ended);
  EXPECT_EQ(r.data, "pong");
  EXPECT_EQ(r.trailers, (Fields{{"grpc-status", "0"}}));
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.close_code, 0u);
}

TEST(H2Codec, SenderStopsAtTheStreamWindowUntilTheReceiverConsumes) {
  Peer client(H2Codec::Role::kClient);
  Peer server(H2Codec::Role::kServer);  // 256 KiB stream window
  server.auto_consume = false;
  const size_t kWindow = 256 * 1024;
  const std::string body(1024 * 1024, 'w');
  int32_t id = client.Request(kPost, body);
  Pump(client, server);
  // Exactly one window in flight, then nothing more however often we pump.
  EXPECT_EQ(server.streams[id].data.size(), kWindow);
  EXPECT_EQ(Pump(client, server), 0u);
  EXPECT_EQ(server.streams[id].data.size(), kWindow);
  EXPECT_FALSE(server.streams[id].ended);

  // Passing bytes on opens the window again, a window at a time.
  while (server.unconsumed[id] > 0) {
    size_t n = server.unconsumed[id];
    server.unconsumed[id] = 0;
    server.codec.Consume(id, n);
    Pump(client, server);
  }
  EXPECT_EQ(server.streams[id].data, body);
  EXPECT_TRUE(server.streams[id].ended);
}

TEST(H2Codec, ResetStreamReachesThePeerWithItsCode) {
  Peer client(H2Codec::Role::kClient);
  Peer server(H2Codec::Role::kServer);
  // A body that never ends: the stream stays open until the reset.
  int32_t id = client.Request(kPost, "partial", {}, /*end=*/false);
  Pump(client, server);
  ASSERT_EQ(server.streams[id].data, "partial");
  ASSERT_FALSE(client.streams[id].closed);

  server.codec.ResetStream(id, 8);  // CANCEL
  Pump(client, server);
  EXPECT_TRUE(client.streams[id].closed);
  EXPECT_EQ(client.streams[id].close_code, 8u);
  EXPECT_TRUE(server.streams[id].closed);
  EXPECT_EQ(server.streams[id].close_code, 8u);
  EXPECT_EQ(client.codec.OpenStreams(), 0u);
  EXPECT_EQ(server.codec.OpenStreams(), 0u);
}

TEST(H2Codec, NoRequestAfterGoaway) {
  Peer client(H2Codec::Role::kClient);
  Peer server(H2Codec::Role::kServer);
  const std::vector<HeaderField> get = {{":method", "GET"},
                                        {":scheme", "http"},
                                        {":authority", "svc.local"},
                                        {":path", "/"}};
  int32_t id = client.codec.SubmitRequest(get, nullptr);
  ASSERT_GT(id, 0);
  Pump(client, server);
  EXPECT_FALSE(client.codec.ReceivedGoaway());

  server.codec.GoawayFinal();
  Pump(client, server);
  EXPECT_TRUE(client.codec.ReceivedGoaway());
  EXPECT_EQ(client.goaway_last, id);
  EXPECT_EQ(client.goaway_error, 0u);
  // A request submitted after the GOAWAY never goes out: the codec closes
  // it as refused (7), so the caller retries elsewhere.
  int32_t late = client.codec.SubmitRequest(get, nullptr);
  ASSERT_GT(late, 0);
  int owner = 0;
  client.codec.SetStreamData(late, &owner);
  Pump(client, server);
  // The caller finds its stream when told (the proxy retries through it).
  EXPECT_EQ(client.streams[late].data_at_close, &owner);
  EXPECT_TRUE(client.streams[late].closed);
  EXPECT_EQ(client.streams[late].close_code, 7u);
  EXPECT_EQ(server.streams.count(late), 0u);
  EXPECT_EQ(client.codec.OpenStreams(), 1u);  // `id` still awaits its answer
  EXPECT_FALSE(client.streams[id].closed);
}

TEST(H2Codec, PeerMaxConcurrentStreamsFollowsTheServerSettings) {
  H2CodecOptions options;
  options.max_concurrent_streams = 7;
  Peer client(H2Codec::Role::kClient);
  Peer server(H2Codec::Role::kServer, options);
  EXPECT_EQ(client.codec.PeerMaxConcurrentStreams(), 100u);  // until told
  Pump(client, server);
  EXPECT_EQ(client.codec.PeerMaxConcurrentStreams(), 7u);
}

}  // namespace
}  // namespace nodemesh::http
