#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "agent/http/header_list.h"

namespace nodemesh::http {

// How the body of a message is delimited (RFC 9112 section 6).
enum class BodyFraming {
  kNone,           // no body (GET without length, HEAD/204/304 responses...)
  kContentLength,  // exactly content_length bytes
  kChunked,        // chunked transfer coding, maybe with trailers
  kUntilClose,     // response read until the connection closes
};

// The start line and header section of one message. All string_views point
// into the parser's input or its head buffer and are valid only during
// Http1Visitor::OnHeaders(); copy what must outlive it.
struct MessageHead {
  // Requests.
  std::string_view method;
  std::string_view target;
  // Responses.
  int status_code = 0;
  std::string_view reason;

  int version_minor = 1;  // HTTP/1.<minor>; 1.2+ is treated as 1.1
  HeaderList headers;

  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;  // meaningful for kContentLength
  // Whether the connection may carry another message after this one
  // (version default, Connection: close/keep-alive, close-delimited body).
  bool keep_alive = true;
  // HTTP/1.1 request with "Expect: 100-continue": the client waits for an
  // interim 100 (or a final status) before sending the body.
  bool expect_continue = false;
  // Request: asks to switch protocols (Upgrade + Connection: upgrade).
  // Response: 101 Switching Protocols.
  bool upgrade = false;
  // Request: CONNECT. Response: 2xx to a CONNECT.
  bool connect = false;
};

// Why parsing stopped, and the status a server should answer with: 400 bad
// syntax or framing, 431 header section too large, 505 version. Responses
// that cannot be parsed map to 502 (the peer is an upstream).
struct ParseError {
  int status = 0;
  std::string_view reason;  // static text, short
};

// Receives parse events in order. Per message: OnMessageBegin, OnHeaders,
// OnBody* (streamed slices of the input, never buffered whole),
// OnTrailers? (chunked only, when present), OnMessageComplete.
class Http1Visitor {
 public:
  virtual ~Http1Visitor() = default;
  virtual void OnMessageBegin() {}
  virtual void OnHeaders(const MessageHead& head) = 0;
  virtual void OnBody(std::string_view data) = 0;
  virtual void OnTrailers(const HeaderList& /*trailers*/) {}
  virtual void OnMessageComplete() = 0;
};

struct Http1ParserOptions {
  // Start line plus header fields (and, separately, the trailer section).
  size_t max_header_bytes = size_t{60} * 1024;
  size_t max_header_count = 100;
};

// Incremental HTTP/1.1 parser for requests or responses. Feed it bytes as
// they arrive, in slices of any size; the events are the same however the
// input is split. After a message completes it continues with the next one
// (pipelining). Strict by design, because a proxy that reads framing
// differently from its peer enables request smuggling: lines end in CRLF
// only, no obs-fold, no whitespace before ':', no Content-Length together
// with Transfer-Encoding, chunked must be the final transfer coding.
class Http1Parser {
 public:
  enum class Mode { kRequest, kResponse };

  Http1Parser(Mode mode, Http1Visitor* visitor,
              Http1ParserOptions options = {});

  Http1Parser(const Http1Parser&) = delete;
  Http1Parser& operator=(const Http1Parser&) = delete;

  // Parses `data` and returns how many bytes were consumed. Fewer than
  // data.size() means one of: has_error(); paused() (the caller keeps the
  // rest and feeds it after Resume()); upgraded() (the rest belongs to the
  // tunnel).
  size_t Feed(std::string_view data);

  // The peer closed the connection: completes a close-delimited response,
  // or records an error if a message was cut short.
  void FeedEof();

  // Response mode: the method of each request sent on the connection, in
  // order, so a response to HEAD or CONNECT is framed correctly. Interim 1xx
  // responses do not consume an entry. Without an entry, GET is assumed.
  void ExpectResponseTo(std::string_view request_method);

  // Callable from a visitor callback: Feed() returns right after it and no
  // further events arrive until Resume(). Then call Feed() with the bytes it
  // did not consume (possibly none, to deliver a pending completion).
  void Pause() { paused_ = true; }
  // Request mode, when upgraded(): the server declined the upgrade or
  // CONNECT, so parsing continues with the next HTTP request.
  void Resume();
  bool paused() const { return paused_; }

  // The last message switched protocols (101, 2xx to CONNECT, or an
  // upgrade/CONNECT request the caller has not declined): bytes after it
  // are not HTTP/1.1.
  bool upgraded() const { return state_ == State::kUpgraded; }

  bool has_error() const { return state_ == State::kError; }
  const ParseError& error() const { return error_; }
  // The error as a status for module boundaries; OK when there is none.
  absl::Status status() const;

  // True between the first byte of a message and its completion; a
  // connection that is not mid-message can be closed without losing work.
  bool message_in_progress() const;

  // Back to the initial state (e.g. to reuse a parser for a new connection).
  void Reset();

 private:
  enum class State {
    kHead,  // start line and header section
    kBodyLength,
    kBodyUntilClose,
    kChunkSize,
    kChunkSizeWs,
    kChunkExt,
    kChunkSizeLf,
    kChunkData,
    kChunkDataCr,
    kChunkDataLf,
    kTrailers,
    kMessageDone,  // complete, OnMessageComplete not yet delivered
    kUpgraded,
    kError,
  };
  enum class RequestKind { kOther, kHead, kConnect };

  size_t Fail(size_t pos, int request_status, std::string_view reason);
  void StartMessage();
  void StartBlock();
  size_t ConsumeBlock(std::string_view data, size_t pos);
  size_t ConsumeChunkFraming(std::string_view data, size_t pos);
  bool ParseStartLine(std::string_view line);
  bool ParseFields(std::string_view lines, HeaderList* out);
  bool FinishRequestHead();
  bool FinishResponseHead();
  bool ScanFraming(bool* has_cl, bool* has_te, bool* chunked_last);
  void CompleteMessage();

  const Mode mode_;
  Http1Visitor* const visitor_;
  const Http1ParserOptions options_;

  State state_ = State::kHead;
  bool paused_ = false;
  ParseError error_;

  // Header/trailer section collection. A section found whole inside one
  // Feed() slice is parsed in place; otherwise it is copied to block_buf_,
  // whose capacity is reused between messages.
  std::string block_buf_;
  size_t block_bytes_ = 0;  // bytes of the current section seen so far
  size_t line_len_ = 0;     // bytes in the current line before CR
  bool prev_cr_ = false;
  bool block_started_ = false;  // head: past any leading empty lines
  bool leading_cr_ = false;     // head: saw CR of a leading empty line

  MessageHead head_;
  HeaderList trailers_;
  uint64_t remaining_ = 0;  // body or chunk bytes still expected
  int chunk_digits_ = 0;
  size_t chunk_ext_bytes_ = 0;

  std::deque<RequestKind> pending_requests_;  // response mode
  RequestKind current_request_ = RequestKind::kOther;
};

}  // namespace nodemesh::http
