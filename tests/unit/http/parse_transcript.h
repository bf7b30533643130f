#pragma once

// Shared by the parser tests: records parse events as a transcript so a test
// can compare whole, byte-at-a-time and sliced feeding.

#include <string>
#include <string_view>
#include <vector>

#include "agent/http/http1_parser.h"
#include "gtest/gtest.h"

namespace nodemesh::http::parse_test {

using Mode = Http1Parser::Mode;

// Writes every event into a transcript; consecutive body slices are merged
// so the transcript does not depend on how the input was split.
class Recorder : public Http1Visitor {
 public:
  void OnMessageBegin() override {
    EndBody();
    log_ += "begin\n";
  }
  void OnHeaders(const MessageHead& h) override {
    EndBody();
    if (!h.method.empty()) {
      log_ += "request " + std::string(h.method) + " " + std::string(h.target);
    } else {
      log_ += "response " + std::to_string(h.status_code) + " " +
              std::string(h.reason);
    }
    log_ += " 1." + std::to_string(h.version_minor);
    static const char* kFraming[] = {"none", "length", "chunked", "close"};
    log_ += std::string(" framing=") + kFraming[static_cast<int>(h.framing)];
    if (h.framing == BodyFraming::kContentLength) {
      log_ += "/" + std::to_string(h.content_length);
    }
    if (!h.keep_alive) log_ += " close";
    if (h.expect_continue) log_ += " expect-continue";
    if (h.upgrade) log_ += " upgrade";
    if (h.connect) log_ += " connect";
    log_ += "\n";
    for (const HeaderField& f : h.headers) {
      log_ += "  " + std::string(f.name) + ": " + std::string(f.value) + "\n";
    }
    last_head_keep_alive = h.keep_alive;
    if (pause_on_headers) parser->Pause();
  }
  void OnBody(std::string_view data) override {
    if (!in_body_) log_ += "body[";
    in_body_ = true;
    log_ += std::string(data);
    body_slices++;
  }
  void OnTrailers(const HeaderList& t) override {
    EndBody();
    log_ += "trailers\n";
    for (const HeaderField& f : t) {
      log_ += "  " + std::string(f.name) + ": " + std::string(f.value) + "\n";
    }
  }
  void OnMessageComplete() override {
    EndBody();
    log_ += "done\n";
    ++messages;
  }

  std::string log() {
    EndBody();
    return log_;
  }

  Http1Parser* parser = nullptr;
  bool pause_on_headers = false;
  bool last_head_keep_alive = false;
  int messages = 0;
  int body_slices = 0;

 private:
  void EndBody() {
    if (in_body_) log_ += "]\n";
    in_body_ = false;
  }
  std::string log_;
  bool in_body_ = false;
};

struct Outcome {
  std::string log;
  size_t consumed = 0;
  int error_status = 0;
  std::string error_reason;
  bool upgraded = false;
};

// Feeds `input` in slices of `step` bytes (0 = all at once), like a socket
// would, stopping where the parser stops.
inline Outcome Parse(Mode mode, std::string_view input, size_t step = 0,
                     bool eof = false,
                     const std::vector<std::string>& requests = {},
                     Http1ParserOptions options = {}) {
  Recorder rec;
  Http1Parser parser(mode, &rec, options);
  rec.parser = &parser;
  for (const std::string& m : requests) parser.ExpectResponseTo(m);
  Outcome out;
  if (step == 0) step = input.size() ? input.size() : 1;
  while (out.consumed < input.size()) {
    std::string_view slice = input.substr(out.consumed, step);
    size_t n = parser.Feed(slice);
    out.consumed += n;
    if (n < slice.size()) break;
  }
  if (eof && out.consumed == input.size()) parser.FeedEof();
  out.log = rec.log();
  out.upgraded = parser.upgraded();
  if (parser.has_error()) {
    out.error_status = parser.error().status;
    out.error_reason = std::string(parser.error().reason);
    out.log += "error " + std::to_string(out.error_status) + "\n";
  }
  return out;
}

// The same outcome whole, byte by byte, and in 7-byte slices.
inline Outcome ParseAllWays(Mode mode, std::string_view input, bool eof = false,
                            const std::vector<std::string>& requests = {}) {
  Outcome whole = Parse(mode, input, 0, eof, requests);
  for (size_t step : {size_t{1}, size_t{7}}) {
    Outcome split = Parse(mode, input, step, eof, requests);
    EXPECT_EQ(split.log, whole.log) << "step " << step;
    // Where exactly an error stops consumption depends on the slicing.
    if (whole.error_status == 0) {
      EXPECT_EQ(split.consumed, whole.consumed) << "step " << step;
    }
    EXPECT_EQ(split.upgraded, whole.upgraded) << "step " << step;
  }
  return whole;
}

inline int RequestError(std::string_view input) {
  Outcome whole = ParseAllWays(Mode::kRequest, input);
  return whole.error_status;
}

}  // namespace nodemesh::http::parse_test
