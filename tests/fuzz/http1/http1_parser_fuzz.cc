// Fuzzes the HTTP/1.1 parser in both modes. Besides memory errors (ASan,
// UBSan), it checks the property smuggling defences rely on: the events do
// not depend on how the bytes were split into Feed() calls.
//
// Input: byte 0 selects the mode (bit 0: response), whether the first
// request was HEAD (bit 1) or CONNECT (bit 2), and the slice size for the
// split run (bits 3-7, 1..32 bytes). The rest is the stream.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "agent/http/http1_parser.h"

namespace nodemesh::http {
namespace {

class Transcript : public Http1Visitor {
 public:
  void OnMessageBegin() override { Event("B"); }
  void OnHeaders(const MessageHead& h) override {
    Event("H");
    log_.append(h.method).append(" ").append(h.target).append(" ");
    log_ += std::to_string(h.status_code) + " " +
            std::to_string(static_cast<int>(h.framing)) + " " +
            std::to_string(h.content_length) + (h.keep_alive ? "k" : "") +
            (h.upgrade ? "u" : "") + (h.connect ? "c" : "") +
            (h.expect_continue ? "e" : "");
    for (const HeaderField& f : h.headers) {
      log_.append("|").append(f.name).append(":").append(f.value);
    }
    if (h.framing == BodyFraming::kContentLength) {
      expected_body_ = h.content_length;
    }
    body_bytes_ = 0;
  }
  void OnBody(std::string_view d) override {
    if (d.empty()) __builtin_trap();  // empty slices are never delivered
    if (!in_body_) log_ += "\nD";
    in_body_ = true;
    log_.append(d);
    body_bytes_ += d.size();
  }
  void OnTrailers(const HeaderList& t) override {
    Event("T");
    for (const HeaderField& f : t) {
      log_.append("|").append(f.name).append(":").append(f.value);
    }
  }
  void OnMessageComplete() override {
    // A Content-Length body is delivered exactly.
    if (expected_body_ && body_bytes_ != *expected_body_) __builtin_trap();
    expected_body_.reset();
    Event("C");
  }

  std::string& log() { return log_; }

 private:
  void Event(const char* e) {
    in_body_ = false;
    log_ += "\n";
    log_ += e;
  }
  std::string log_;
  bool in_body_ = false;
  std::optional<uint64_t> expected_body_;
  uint64_t body_bytes_ = 0;
};

std::string Run(uint8_t control, std::string_view input, size_t step) {
  const bool response = control & 1;
  Transcript t;
  Http1ParserOptions options;
  options.max_header_bytes = 2048;  // reach the limit paths with small inputs
  options.max_header_count = 16;
  Http1Parser p(
      response ? Http1Parser::Mode::kResponse : Http1Parser::Mode::kRequest, &t,
      options);
  if (response) {
    p.ExpectResponseTo((control & 2)   ? "HEAD"
                       : (control & 4) ? "CONNECT"
                                       : "GET");
    p.ExpectResponseTo("GET");
  }
  size_t consumed = 0;
  while (consumed < input.size()) {
    std::string_view slice = input.substr(consumed, step);
    size_t n = p.Feed(slice);
    if (n > slice.size()) __builtin_trap();
    consumed += n;
    if (n < slice.size()) break;
  }
  if (consumed == input.size()) p.FeedEof();
  std::string& log = t.log();
  if (p.has_error()) {
    const int s = p.error().status;
    if (s != 400 && s != 431 && s != 502 && s != 505) __builtin_trap();
    log += "\nE" + std::to_string(s) + std::string(p.error().reason);
  } else {
    log += "\nconsumed " + std::to_string(consumed);
  }
  if (p.upgraded()) log += "\nU";
  return log;
}

}  // namespace
}  // namespace nodemesh::http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t control = data[0];
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t step = (control >> 3) + 1;
  std::string whole =
      nodemesh::http::Run(control, input, input.empty() ? 1 : input.size());
  std::string split = nodemesh::http::Run(control, input, step);
  if (whole != split) __builtin_trap();
  return 0;
}
