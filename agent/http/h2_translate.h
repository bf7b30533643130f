#pragma once

// HTTP/1.1 <-> HTTP/2 message translation (RFC 9113 section 8): which fields
// cross, how pseudo-header fields map to the request line and Host, and how
// a body is framed on the HTTP/1.1 side. Used where the two sides of the
// proxy speak different versions.

#include <string>
#include <string_view>
#include <vector>

#include "agent/http/h2_codec.h"
#include "agent/http/header_list.h"
#include "agent/http/http1_parser.h"

namespace nodemesh::http {

// Fields that mean something only on one HTTP/1.1 connection and never
// appear in HTTP/2 (RFC 9113 8.2.2), plus the framing ones.
bool IsConnectionSpecific(std::string_view name);

// An HTTP/2 request head as the MessageHead an HTTP/1.1 parser would have
// produced for it: target and Host from the pseudo-header fields,
// connection-specific fields dropped, framing from content-length or else
// chunked (none when the stream ended with the head); extended CONNECT for
// websocket as the Upgrade handshake with `websocket_key`. Views into
// `block` and `websocket_key`. False for a head HTTP/1.1 cannot carry.
bool H1RequestHead(const H2HeaderBlock& block, bool end_stream,
                   std::string_view websocket_key, MessageHead* out);

// The same head as HTTP/1.1 bytes (request line, Host from :authority, the
// fields, framing). A body without content-length is
// chunked (`*chunked` set). Extended CONNECT for websocket (RFC 8441)
// becomes the HTTP/1.1 Upgrade handshake with `websocket_key` as
// Sec-WebSocket-Key. False for a head HTTP/1.1 cannot carry.
bool AppendH1Request(const H2HeaderBlock& block, bool end_stream,
                     std::string_view websocket_key, std::string* out,
                     bool* chunked);

// An HTTP/1.1 response head as HTTP/2 response fields (":status" first,
// `status_buf` holds its digits). A 101 to a websocket upgrade becomes 200,
// as RFC 8441 answers extended CONNECT.
void H2ResponseFields(const MessageHead& head, char (&status_buf)[4],
                      std::vector<HeaderField>* out);

// An HTTP/1.1 request head as HTTP/2 request fields. gRPC requests get
// "te: trailers" back (HTTP/1.1 hops drop it; gRPC servers require it).
void H2RequestFields(const MessageHead& head, std::vector<HeaderField>* out);

// An HTTP/2 response head as the MessageHead the proxy's HTTP/1.1 side
// frames: content-length when given, no body when the stream ended with
// the head (length 0, so the HTTP/1.1 client is told), else chunked.
void H1ResponseHead(const H2HeaderBlock& block, bool end_stream,
                    bool head_request, MessageHead* out);

}  // namespace nodemesh::http
