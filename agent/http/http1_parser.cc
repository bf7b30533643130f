#include "agent/http/http1_parser.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/http/http1_grammar.h"

namespace nodemesh::http {

Http1Parser::Http1Parser(Mode mode, Http1Visitor* visitor,
                         Http1ParserOptions options)
    : mode_(mode), visitor_(visitor), options_(options) {
  StartMessage();
}

void Http1Parser::Reset() {
  paused_ = false;
  error_ = ParseError();
  pending_requests_.clear();
  StartMessage();
}

void Http1Parser::StartMessage() {
  state_ = State::kHead;
  head_.method = head_.target = head_.reason = {};
  head_.status_code = 0;
  head_.version_minor = 1;
  head_.headers.Clear();
  head_.framing = BodyFraming::kNone;
  head_.content_length = 0;
  head_.keep_alive = true;
  head_.expect_continue = head_.upgrade = head_.connect = false;
  remaining_ = 0;
  block_started_ = leading_cr_ = false;
  StartBlock();
}

void Http1Parser::StartBlock() {
  block_buf_.clear();
  block_bytes_ = 0;
  line_len_ = 0;
  prev_cr_ = false;
}

void Http1Parser::ExpectResponseTo(std::string_view request_method) {
  RequestKind kind = RequestKind::kOther;
  if (request_method == "HEAD") kind = RequestKind::kHead;
  if (request_method == "CONNECT") kind = RequestKind::kConnect;
  pending_requests_.push_back(kind);
}

void Http1Parser::Resume() {
  paused_ = false;
  if (state_ == State::kUpgraded && mode_ == Mode::kRequest) StartMessage();
}

bool Http1Parser::message_in_progress() const {
  switch (state_) {
    case State::kHead:
      return block_started_;
    case State::kUpgraded:
    case State::kError:
      return false;
    default:
      return true;
  }
}

absl::Status Http1Parser::status() const {
  if (!has_error()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "HTTP/1.1 ", mode_ == Mode::kRequest ? "request" : "response", ": ",
      absl::string_view(error_.reason.data(), error_.reason.size()), " (",
      error_.status, ")"));
}

size_t Http1Parser::Fail(size_t pos, int request_status,
                         std::string_view reason) {
  state_ = State::kError;
  error_.status = mode_ == Mode::kRequest ? request_status : 502;
  error_.reason = reason;
  return pos;
}

size_t Http1Parser::Feed(std::string_view data) {
  size_t pos = 0;
  while (!paused_) {
    if (state_ == State::kMessageDone) {
      CompleteMessage();
      continue;
    }
    if (state_ == State::kUpgraded || state_ == State::kError) return pos;
    if (pos == data.size()) break;
    switch (state_) {
      case State::kHead:
      case State::kTrailers:
        pos = ConsumeBlock(data, pos);
        break;
      case State::kBodyLength:
      case State::kChunkData: {
        size_t n = static_cast<size_t>(
            std::min<uint64_t>(remaining_, data.size() - pos));
        remaining_ -= n;
        if (remaining_ == 0) {
          state_ = state_ == State::kBodyLength ? State::kMessageDone
                                                : State::kChunkDataCr;
        }
        visitor_->OnBody(data.substr(pos, n));
        pos += n;
        break;
      }
      case State::kBodyUntilClose:
        visitor_->OnBody(data.substr(pos));
        pos = data.size();
        break;
      default:
        pos = ConsumeChunkFraming(data, pos);
        break;
    }
  }
  return pos;
}

void Http1Parser::FeedEof() {
  switch (state_) {
    case State::kHead:
      if (block_started_) Fail(0, 400, "connection closed in header section");
      return;
    case State::kBodyUntilClose:
      state_ = State::kMessageDone;
      Feed({});
      return;
    case State::kMessageDone:
    case State::kUpgraded:
    case State::kError:
      return;
    default:
      Fail(0, 400, "connection closed before end of body");
      return;
  }
}

void Http1Parser::CompleteMessage() {
  // Switch state first: the visitor may inspect the parser or pause.
  const bool switched = head_.upgrade || head_.connect;
  StartMessage();
  if (switched) state_ = State::kUpgraded;
  visitor_->OnMessageComplete();
}

size_t Http1Parser::ConsumeBlock(std::string_view data, size_t pos) {
  const bool is_head = state_ == State::kHead;
  if (is_head && !block_started_) {
    // A server should skip empty lines before a request line (RFC 9112
    // 2.2); they count toward the header limit so they cannot go on forever.
    while (pos < data.size()) {
      char c = data[pos];
      if (leading_cr_) {
        if (c != '\n') return Fail(pos, 400, "bare CR");
        leading_cr_ = false;
        ++pos;
      } else if (c == '\r') {
        block_bytes_ += 2;
        if (block_bytes_ > options_.max_header_bytes) {
          return Fail(pos, 431, "header section too large");
        }
        leading_cr_ = true;
        ++pos;
      } else if (c == '\n') {
        return Fail(pos, 400, "bare LF");
      } else {
        block_started_ = true;
        visitor_->OnMessageBegin();
        break;
      }
    }
    if (!block_started_ || paused_) return pos;
  }

  // Find the empty line that ends the section, rejecting bare CR and LF on
  // the way so the field parser can split on CRLF alone. The scan stops at
  // the size limit, so the outcome never depends on how input was sliced.
  const size_t start = pos;
  const size_t budget = options_.max_header_bytes - block_bytes_;
  const size_t scan_end = start + std::min(budget, data.size() - start);
  size_t end = std::string_view::npos;
  while (pos < scan_end) {
    if (prev_cr_) {
      if (data[pos] != '\n') return Fail(pos, 400, "bare CR in header section");
      prev_cr_ = false;
      ++pos;
      if (line_len_ == 0) {
        end = pos;
        break;
      }
      line_len_ = 0;
      continue;
    }
    // The rest of the line up to its CR or LF, found with memchr (the
    // byte-at-a-time scan was the parser's hottest loop).
    const char* from = data.data() + pos;
    const size_t left = scan_end - pos;
    const void* cr = std::memchr(from, '\r', left);
    const void* lf = std::memchr(from, '\n', left);
    size_t run = left;
    if (cr != nullptr) run = static_cast<const char*>(cr) - from;
    if (lf != nullptr)
      run = std::min(run,
                     static_cast<size_t>(static_cast<const char*>(lf) - from));
    line_len_ += run;
    pos += run;
    if (pos == scan_end) break;
    if (data[pos] == '\n') return Fail(pos, 400, "bare LF in header section");
    prev_cr_ = true;
    ++pos;
  }
  if (end == std::string_view::npos) {
    if (pos < data.size()) return Fail(pos, 431, "header section too large");
    block_bytes_ += pos - start;
    block_buf_.append(data.substr(start));
    return data.size();
  }
  block_bytes_ += end - start;
  std::string_view block;
  if (block_buf_.empty()) {
    block = data.substr(start, end - start);  // zero-copy fast path
  } else {
    block_buf_.append(data.substr(start, end - start));
    block = block_buf_;
  }

  if (is_head) {
    const size_t eol = block.find("\r\n");
    if (!ParseStartLine(block.substr(0, eol)) ||
        !ParseFields(block.substr(eol + 2), &head_.headers)) {
      return end;
    }
    bool ok =
        mode_ == Mode::kRequest ? FinishRequestHead() : FinishResponseHead();
    if (!ok) return end;
    visitor_->OnHeaders(head_);
  } else {
    trailers_.Clear();
    if (!ParseFields(block, &trailers_)) return end;
    state_ = State::kMessageDone;
    if (!trailers_.empty()) visitor_->OnTrailers(trailers_);
  }
  return end;
}

bool Http1Parser::ParseStartLine(std::string_view line) {
  int status;
  if (mode_ == Mode::kRequest) {
    // method SP request-target SP HTTP-version, single spaces only.
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? std::string_view::npos
                                                     : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) {
      Fail(0, 400, "malformed request line");
      return false;
    }
    head_.method = line.substr(0, sp1);
    head_.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (!IsToken(head_.method)) {
      Fail(0, 400, "invalid method");
      return false;
    }
    if (!IsRequestTarget(head_.target)) {
      Fail(0, 400, "invalid request target");
      return false;
    }
    status = ParseHttpVersion(line.substr(sp2 + 1), &head_.version_minor);
  } else {
    // HTTP-version SP 3DIGIT [SP reason]; a missing reason is tolerated.
    status = ParseHttpVersion(line.substr(0, 8), &head_.version_minor);
    if (status == 0) {
      if (line.size() < 12 || line[8] != ' ' || !IsDigit(line[9]) ||
          !IsDigit(line[10]) || !IsDigit(line[11]) || line[9] == '0' ||
          (line.size() > 12 && line[12] != ' ')) {
        Fail(0, 502, "malformed status line");
        return false;
      }
      head_.status_code =
          (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
      head_.reason = line.size() > 13 ? line.substr(13) : std::string_view();
      if (!IsFieldText(head_.reason)) {
        Fail(0, 502, "invalid reason phrase");
        return false;
      }
    }
  }
  if (status != 0) {
    Fail(0, status,
         status == 505 ? "unsupported HTTP version" : "malformed HTTP version");
    return false;
  }
  return true;
}

bool Http1Parser::ParseFields(std::string_view lines, HeaderList* out) {
  // `lines` is "field CRLF"* CRLF with CR/LF already checked by the scanner.
  while (true) {
    const size_t eol = lines.find("\r\n");
    std::string_view line = lines.substr(0, eol);
    lines.remove_prefix(eol + 2);
    if (line.empty()) return true;
    if (IsOws(line.front())) {
      Fail(0, 400, "obsolete line folding");
      return false;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      Fail(0, 400, "header line without name and ':'");
      return false;
    }
    std::string_view name = line.substr(0, colon);
    if (IsOws(name.back())) {
      Fail(0, 400, "whitespace before ':' in header");
      return false;
    }
    if (!IsToken(name)) {
      Fail(0, 400, "invalid character in header name");
      return false;
    }
    std::string_view value = TrimOws(line.substr(colon + 1));
    if (!IsFieldText(value)) {
      Fail(0, 400, "invalid character in header value");
      return false;
    }
    if (out->size() >= options_.max_header_count) {
      Fail(0, 431, "too many header fields");
      return false;
    }
    out->Add(name, value);
  }
}

bool Http1Parser::ScanFraming(bool* has_cl, bool* has_te, bool* chunked_last) {
  *has_cl = *has_te = *chunked_last = false;
  bool chunked_seen = false;
  for (const HeaderField& f : head_.headers) {
    if (EqualsIgnoreCase(f.name, "content-length")) {
      // "5, 5" or repeated equal lines are allowed; anything else differing
      // is a smuggling shape.
      bool ok = false;  // stays false for an empty value or list
      ForEachListElement(f.value, [&](std::string_view elem) {
        uint64_t v = 0;
        ok = ParseDecimal(elem, &v) && (!*has_cl || v == head_.content_length);
        if (ok) {
          *has_cl = true;
          head_.content_length = v;
        }
        return ok;
      });
      if (!ok) {
        Fail(0, 400, "invalid or conflicting Content-Length");
        return false;
      }
    } else if (EqualsIgnoreCase(f.name, "transfer-encoding")) {
      *has_te = true;
      bool ok = !f.value.empty();
      ForEachListElement(f.value, [&](std::string_view elem) {
        if (EqualsIgnoreCase(elem, "chunked")) {
          ok = !chunked_seen;  // chunked applied twice
          chunked_seen = true;
          *chunked_last = true;
        } else {
          ok = IsToken(TrimOws(elem.substr(0, elem.find(';'))));
          *chunked_last = false;
        }
        return ok;
      });
      if (!ok) {
        Fail(0, 400, "invalid Transfer-Encoding");
        return false;
      }
    }
  }
  if (chunked_seen && !*chunked_last) {
    Fail(0, 400, "Transfer-Encoding must end with chunked");
    return false;
  }
  if (*has_te && *has_cl) {
    Fail(0, 400, "both Content-Length and Transfer-Encoding");
    return false;
  }
  if (*has_te && head_.version_minor == 0) {
    Fail(0, 400, "Transfer-Encoding in HTTP/1.0");
    return false;
  }
  return true;
}

bool Http1Parser::FinishRequestHead() {
  const HeaderList& h = head_.headers;
  const size_t hosts = h.Count("host");
  if (hosts > 1 || (hosts == 0 && head_.version_minor == 1)) {
    Fail(0, 400, hosts > 1 ? "multiple Host headers" : "missing Host header");
    return false;
  }
  bool has_cl, has_te, chunked_last;
  if (!ScanFraming(&has_cl, &has_te, &chunked_last)) return false;
  if (has_te && !chunked_last) {
    Fail(0, 400, "Transfer-Encoding must end with chunked");
    return false;
  }
  const bool http11 = head_.version_minor == 1;
  head_.keep_alive = !h.HasToken("connection", "close") &&
                     (http11 || h.HasToken("connection", "keep-alive"));
  // An HTTP/1.0 server ignores Upgrade and 100-continue (RFC 9110 7.8, 10.1.1).
  head_.upgrade =
      http11 && h.Has("upgrade") && h.HasToken("connection", "upgrade");
  const std::optional<std::string_view> expect = h.Get("expect");
  head_.expect_continue =
      http11 && expect && EqualsIgnoreCase(*expect, "100-continue");

  if (head_.method == "CONNECT") {
    if (has_te || head_.content_length > 0) {
      Fail(0, 400, "CONNECT request with a body");
      return false;
    }
    head_.connect = true;
    head_.framing = BodyFraming::kNone;
  } else if (has_te) {
    head_.framing = BodyFraming::kChunked;
  } else if (head_.content_length > 0) {
    head_.framing = BodyFraming::kContentLength;
  } else {
    head_.framing = BodyFraming::kNone;
  }
  switch (head_.framing) {
    case BodyFraming::kChunked:
      state_ = State::kChunkSize;
      remaining_ = 0;
      chunk_digits_ = 0;
      break;
    case BodyFraming::kContentLength:
      state_ = State::kBodyLength;
      remaining_ = head_.content_length;
      break;
    default:
      state_ = State::kMessageDone;
      break;
  }
  return true;
}

bool Http1Parser::FinishResponseHead() {
  const HeaderList& h = head_.headers;
  const int code = head_.status_code;
  head_.keep_alive =
      !h.HasToken("connection", "close") &&
      (head_.version_minor == 1 || h.HasToken("connection", "keep-alive"));
  if (code < 200 && code != 101) {
    // Interim response: no body, and the final response is still to come.
    head_.framing = BodyFraming::kNone;
    state_ = State::kMessageDone;
    return true;
  }
  current_request_ = RequestKind::kOther;
  if (!pending_requests_.empty()) {
    current_request_ = pending_requests_.front();
    pending_requests_.pop_front();
  }
  bool has_cl, has_te, chunked_last;
  if (!ScanFraming(&has_cl, &has_te, &chunked_last)) return false;

  head_.upgrade = code == 101;
  head_.connect = current_request_ == RequestKind::kConnect && code < 300;
  if (head_.upgrade || head_.connect ||
      current_request_ == RequestKind::kHead || code == 204 || code == 304) {
    head_.framing = BodyFraming::kNone;
    state_ = State::kMessageDone;
  } else if (has_te && chunked_last) {
    head_.framing = BodyFraming::kChunked;
    state_ = State::kChunkSize;
    remaining_ = 0;
    chunk_digits_ = 0;
  } else if (has_cl) {
    head_.framing = head_.content_length > 0 ? BodyFraming::kContentLength
                                             : BodyFraming::kNone;
    state_ =
        head_.content_length > 0 ? State::kBodyLength : State::kMessageDone;
    remaining_ = head_.content_length;
  } else {
    // No length, or a coding other than chunked last: read until close.
    head_.framing = BodyFraming::kUntilClose;
    head_.keep_alive = false;
    state_ = State::kBodyUntilClose;
  }
  return true;
}

size_t Http1Parser::ConsumeChunkFraming(std::string_view data, size_t pos) {
  // chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF, one byte at a
  // time because the framing is tiny and may be split anywhere.
  for (; pos < data.size(); ++pos) {
    const char c = data[pos];
    switch (state_) {
      case State::kChunkSize: {
        const int v = HexDigitValue(c);
        if (v >= 0) {
          if (++chunk_digits_ > 16) return Fail(pos, 400, "chunk too large");
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
        } else if (chunk_digits_ > 0 && c == ';') {
          state_ = State::kChunkExt;
          chunk_ext_bytes_ = 0;
        } else if (chunk_digits_ > 0 && IsOws(c)) {
          state_ = State::kChunkSizeWs;
        } else if (chunk_digits_ > 0 && c == '\r') {
          state_ = State::kChunkSizeLf;
        } else {
          return Fail(pos, 400, "invalid chunk size");
        }
        break;
      }
      case State::kChunkSizeWs:
        // BWS is allowed only before a chunk extension.
        if (c == ';') {
          state_ = State::kChunkExt;
          chunk_ext_bytes_ = 0;
        } else if (!IsOws(c)) {
          return Fail(pos, 400, "invalid chunk size");
        }
        break;
      case State::kChunkExt:
        // Extensions are ignored, but stay bounded and printable.
        if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else if (!IsFieldTextChar(c) ||
                   ++chunk_ext_bytes_ > options_.max_header_bytes) {
          return Fail(pos, 400, "invalid chunk extension");
        }
        break;
      case State::kChunkSizeLf:
        if (c != '\n') return Fail(pos, 400, "bare CR in chunk size line");
        if (remaining_ == 0) {
          state_ = State::kTrailers;
          StartBlock();
        } else {
          state_ = State::kChunkData;
        }
        return pos + 1;
      case State::kChunkDataCr:
        if (c != '\r') return Fail(pos, 400, "missing CRLF after chunk data");
        state_ = State::kChunkDataLf;
        break;
      case State::kChunkDataLf:
        if (c != '\n') return Fail(pos, 400, "missing CRLF after chunk data");
        state_ = State::kChunkSize;
        remaining_ = 0;
        chunk_digits_ = 0;
        break;
      default:
        return pos;  // not a framing state; let Feed() dispatch
    }
  }
  return pos;
}

}  // namespace nodemesh::http
