#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "agent/http/header_list.h"

namespace nodemesh::http {

// Serializers for HTTP/1.1 messages. They append to a caller-owned buffer
// (a connection's output buffer), so writing a message costs no allocation
// once that buffer has grown. Header fields that could split the message
// (CR, LF, NUL, bad name characters) are dropped, never written.

// "OK", "Not Found", ...; "Unknown" for codes without a registered phrase.
std::string_view ReasonPhrase(int status);

bool IsValidHeaderName(std::string_view name);
bool IsValidHeaderValue(std::string_view value);

// Connection, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade,
// Trailer: fields that describe one hop and are never forwarded
// (RFC 9110 7.6.1).
bool IsHopByHopHeader(std::string_view name);
// The same, plus any field that `headers` names in its Connection field.
bool IsHopByHopHeader(std::string_view name, const HeaderList& headers);

// The hop-by-hop fields of one message, for checking each of its fields in
// turn: the Connection field is read once, not once per field. Views into
// `headers`, which must outlive this.
class HopByHopFields {
 public:
  explicit HopByHopFields(const HeaderList& headers);
  bool Contains(std::string_view name) const;

 private:
  static constexpr size_t kMaxConnectionLines = 4;
  std::string_view connection_[kMaxConnectionLines];
  size_t count_ = 0;
  const HeaderList* many_ = nullptr;  // more Connection lines: the slow path
};

// "HTTP/1.1 <status> <reason>" CRLF, the fields, "Content-Length" when
// `content_length` is set, then the empty line. Without a length the caller
// adds Transfer-Encoding: chunked or closes after the body.
void AppendResponseHead(int status, std::span<const HeaderField> headers,
                        std::optional<uint64_t> content_length,
                        std::string* out);

// The head and the whole body, with Content-Length. With `omit_body` (a
// response to HEAD) the length is announced but the body not written.
void AppendResponse(int status, std::span<const HeaderField> headers,
                    std::string_view body, std::string* out,
                    bool omit_body = false);

// "<method> <target> HTTP/1.1" CRLF, fields, optional Content-Length, CRLF.
void AppendRequestHead(std::string_view method, std::string_view target,
                       std::span<const HeaderField> headers,
                       std::optional<uint64_t> content_length,
                       std::string* out);

// One chunk of a chunked body; empty data writes nothing, since an empty
// chunk would end the body.
void AppendChunk(std::string_view data, std::string* out);
// The last chunk, optional trailer fields, and the final empty line.
void AppendLastChunk(std::span<const HeaderField> trailers, std::string* out);

}  // namespace nodemesh::http
