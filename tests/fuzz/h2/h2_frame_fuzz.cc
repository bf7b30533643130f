// Fuzzes the HTTP/2 server path the proxy drives: client bytes into a
// server-role H2Codec, each request head translated with AppendH1Request
// and parsed back by our HTTP/1.1 parser together with its DATA (chunked
// when the translation says so) and trailers, responses submitted with
// bodies and trailers, streams reset, GOAWAY sent. Besides memory errors
// (ASan, UBSan) it traps when our own translation yields bytes our parser
// rejects, loses or adds body bytes, or leaves a finished request
// incomplete.
//
// Input: byte 0 chooses behaviour (bits 0-1: when to send the shutdown
// notice / final GOAWAY; bit 2: consume DATA late; bits 3-7: unused), byte
// 1 seeds per-stream choices, bytes 2 and 3 split the rest into three
// slices Fed one after another (Produce after each).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/http/h2_codec.h"
#include "agent/http/h2_translate.h"
#include "agent/http/http1_parser.h"
#include "agent/http/http1_writer.h"

namespace nodemesh::http {
namespace {

constexpr std::string_view kWebsocketKey = "dGhlIHNhbXBsZSBub25jZQ==";

// What the server does with one stream, chosen per stream from the seed.
enum class Answer {
  kAtOnce,        // response with a body as soon as the head arrives
  kHeadOnly,      // response without body (END_STREAM on HEADERS)
  kAfterRequest,  // response once the request ended
  kReset,         // RST_STREAM at the end of the slice
  kDeferred,      // body announced, bytes added at the end of the slice
  kTrailersOnly,  // empty body then trailers
  kCount,
};

// The HTTP/1.1 side of one stream: what the parser saw.
class RequestCheck : public Http1Visitor {
 public:
  RequestCheck() : parser_(Http1Parser::Mode::kRequest, this) {}

  void OnHeaders(const MessageHead& head) override {
    heads_++;
    framing_ = head.framing;
    connect_ = head.connect || head.upgrade;
  }
  void OnBody(std::string_view data) override { body_bytes_ += data.size(); }
  void OnMessageComplete() override {
    complete_ = true;
    parser_.Pause();  // one request per stream
  }

  // Our own bytes: the parser must take all of them. Only its size limits
  // (431) may stop it: HPACK lets a small block carry more fields than an
  // HTTP/1.1 head may.
  void Feed(std::string_view bytes) {
    if (rejected_ || complete_ || parser_.upgraded()) return;
    size_t n = parser_.Feed(bytes);
    if (parser_.has_error()) {
      if (parser_.error().status != 431) __builtin_trap();
      rejected_ = true;
      return;
    }
    if (n != bytes.size() && !complete_ && !parser_.upgraded()) {
      __builtin_trap();
    }
  }

  Http1Parser parser_;
  int heads_ = 0;
  BodyFraming framing_ = BodyFraming::kNone;
  bool connect_ = false;
  bool complete_ = false;
  bool rejected_ = false;
  uint64_t body_bytes_ = 0;
};

struct Stream {
  int32_t id = 0;
  Answer answer = Answer::kAtOnce;
  bool translated = false;
  bool chunked = false;
  bool request_ended = false;
  bool responded = false;
  bool reset = false;
  uint64_t data_bytes = 0;  // DATA payload received
  size_t unconsumed = 0;
  RequestCheck check;
  H2OutBody body;
};

class Server : public H2Visitor {
 public:
  Server(uint8_t control, uint8_t seed)
      : late_consume_((control & 4) != 0),
        seed_(seed),
        codec_(H2Codec::Role::kServer, this, Options()) {}

  static H2CodecOptions Options() {
    H2CodecOptions o;
    o.max_concurrent_streams = 8;
    o.stream_window = 1024;  // reach flow control with small inputs
    o.connection_window = 4096;
    return o;
  }

  void OnHeaders(int32_t stream_id, const H2HeaderBlock& block,
                 bool end_stream) override {
    auto it = streams_.find(stream_id);
    if (it != streams_.end()) {
      Trailers(it->second.get(), block);
      return;
    }
    auto owned = std::make_unique<Stream>();
    Stream* s = owned.get();
    streams_[stream_id] = std::move(owned);
    s->id = stream_id;
    s->answer =
        static_cast<Answer>((seed_ + static_cast<uint32_t>(stream_id) * 7u) %
                            static_cast<uint32_t>(Answer::kCount));
    std::string h1;
    if (!AppendH1Request(block, end_stream, kWebsocketKey, &h1, &s->chunked)) {
      codec_.ResetStream(stream_id, 1);  // PROTOCOL_ERROR, as the proxy
      s->reset = true;
      return;
    }
    s->translated = true;
    s->request_ended = end_stream;
    s->check.Feed(h1);
    if (s->check.rejected_) return;
    // The head is complete in the bytes we wrote.
    if (s->check.heads_ != 1) __builtin_trap();
    // A request that ended with its head is complete (or a tunnel).
    if (end_stream && !s->check.complete_ && !s->check.connect_) {
      __builtin_trap();
    }
    if (s->answer == Answer::kAtOnce || s->answer == Answer::kHeadOnly ||
        s->answer == Answer::kDeferred || s->answer == Answer::kTrailersOnly) {
      Respond(s);
    } else if (s->answer == Answer::kAfterRequest && end_stream) {
      Respond(s);
    }
  }

  void OnData(int32_t stream_id, std::string_view data) override {
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) {
      codec_.Consume(stream_id, data.size());
      return;
    }
    Stream* s = it->second.get();
    s->data_bytes += data.size();
    if (s->translated && !s->request_ended) {
      if (s->chunked) {
        std::string chunk;
        AppendChunk(data, &chunk);
        s->check.Feed(chunk);
      } else {
        s->check.Feed(data);
      }
    }
    if (late_consume_) {
      s->unconsumed += data.size();
    } else {
      codec_.Consume(stream_id, data.size());
    }
  }

  void OnEndStream(int32_t stream_id) override {
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) return;
    Stream* s = it->second.get();
    if (s->request_ended) return;
    s->request_ended = true;
    if (!s->translated) return;
    if (s->chunked) {
      std::string last;
      AppendLastChunk({}, &last);
      s->check.Feed(last);
    }
    EndOfRequest(s);
  }

  void OnStreamClose(int32_t stream_id, uint32_t /*error_code*/) override {
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) return;
    if (it->second->unconsumed > 0) {
      codec_.Consume(stream_id, it->second->unconsumed);
    }
    streams_.erase(it);
  }

  H2OutBody* BodyOf(int32_t stream_id) override {
    auto it = streams_.find(stream_id);
    return it == streams_.end() ? nullptr : &it->second->body;
  }

  // Between slices: what the proxy does from its event loop.
  void AfterSlice(int slice, uint8_t control) {
    std::vector<int32_t> ids;
    for (const auto& [id, s] : streams_) ids.push_back(id);
    for (int32_t id : ids) {
      auto it = streams_.find(id);
      if (it == streams_.end()) continue;
      Stream* s = it->second.get();
      if (s->unconsumed > 0) {
        codec_.Consume(id, s->unconsumed);
        s->unconsumed = 0;
      }
      if (s->answer == Answer::kReset && !s->reset) {
        codec_.ResetStream(id, 8);  // CANCEL
        s->reset = true;
      } else if (s->answer == Answer::kDeferred && s->responded &&
                 !s->body.end) {
        s->body.data.append("late bytes");
        s->body.end = true;
        if (id % 4 == 1) s->body.trailers.emplace_back("grpc-status", "0");
        codec_.ResumeData(id, &s->body);
      }
    }
    const int goaway_at = control & 3;
    if (slice == goaway_at) codec_.ShutdownNotice();
    if (slice == goaway_at + 1) codec_.GoawayFinal();
  }

  H2Codec& codec() { return codec_; }

 private:
  void Trailers(Stream* s, const H2HeaderBlock& block) {
    if (!s->translated || s->request_ended) {
      s->request_ended = true;
      return;
    }
    s->request_ended = true;
    if (s->chunked) {
      std::vector<HeaderField> trailers;
      for (const HeaderField& f : block.headers) {
        if (!IsConnectionSpecific(f.name)) trailers.push_back(f);
      }
      std::string last;
      AppendLastChunk(trailers, &last);
      s->check.Feed(last);
    }
    EndOfRequest(s);
  }

  // The request ended on the HTTP/2 side: the HTTP/1.1 one must agree,
  // with every DATA byte delivered once.
  void EndOfRequest(Stream* s) {
    RequestCheck& c = s->check;
    if (!c.rejected_ && !c.connect_) {
      if (!c.complete_) __builtin_trap();
      if (c.body_bytes_ != s->data_bytes) __builtin_trap();
    }
    if (s->answer == Answer::kAfterRequest && !s->responded) Respond(s);
  }

  void Respond(Stream* s) {
    if (s->responded || s->reset) return;
    s->responded = true;
    std::vector<HeaderField> fields = {{":status", "200"},
                                       {"content-type", "text/plain"}};
    switch (s->answer) {
      case Answer::kHeadOnly:
        fields.push_back({"grpc-status", "0"});
        if (!codec_.SubmitResponse(s->id, fields, nullptr)) s->reset = true;
        return;
      case Answer::kDeferred:
        break;  // bytes follow after the slice
      case Answer::kTrailersOnly:
        s->body.end = true;
        s->body.trailers.emplace_back("grpc-status", "0");
        s->body.trailers.emplace_back("grpc-message", "ok");
        break;
      default:
        s->body.data.assign(static_cast<size_t>(s->id % 5) * 700, 'x');
        s->body.end = true;
        if (s->id % 3 == 0) s->body.trailers.emplace_back("x-checksum", "1");
        break;
    }
    if (!codec_.SubmitResponse(s->id, fields, &s->body)) s->reset = true;
  }

  const bool late_consume_;
  const uint32_t seed_;
  std::map<int32_t, std::unique_ptr<Stream>> streams_;
  H2Codec codec_;  // last: destroyed first, while the streams still exist
};

bool Produce(H2Codec& codec) {
  std::string out;
  for (int i = 0; i < 4; ++i) {
    out.clear();
    if (!codec.Produce(&out, 16 * 1024)) return false;
    if (out.empty()) break;
  }
  return true;
}

}  // namespace
}  // namespace nodemesh::http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const uint8_t control = data[0];
  std::string_view input(reinterpret_cast<const char*>(data + 4), size - 4);
  size_t cut1 = input.size() * data[2] / 256;
  size_t cut2 = input.size() * data[3] / 256;
  if (cut1 > cut2) std::swap(cut1, cut2);
  const std::string_view slices[] = {input.substr(0, cut1),
                                     input.substr(cut1, cut2 - cut1),
                                     input.substr(cut2)};
  nodemesh::http::Server server(control, data[1]);
  int slice = 0;
  for (std::string_view bytes : slices) {
    bool ok = server.codec().Feed(bytes);
    if (ok) server.AfterSlice(slice, control);
    if (!nodemesh::http::Produce(server.codec()) || !ok) break;
    ++slice;
  }
  return 0;
}
