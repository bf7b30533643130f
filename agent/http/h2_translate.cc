#include "agent/http/h2_translate.h"

#include <charconv>
#include <optional>

#include "agent/http/http1_writer.h"

namespace nodemesh::http {

bool IsConnectionSpecific(std::string_view name) {
  return IsHopByHopHeader(name) || EqualsIgnoreCase(name, "http2-settings");
}

bool H1RequestHead(const H2HeaderBlock& block, bool end_stream,
                   std::string_view websocket_key, MessageHead* out) {
  const bool websocket = block.method == "CONNECT" &&
                         EqualsIgnoreCase(block.protocol, "websocket");
  if (block.method.empty()) return false;
  out->status_code = 0;
  out->reason = {};
  out->version_minor = 1;
  out->headers.Clear();
  out->keep_alive = true;
  out->expect_continue = false;
  out->upgrade = websocket;
  out->connect = block.method == "CONNECT" && !websocket;
  out->content_length = 0;
  out->framing = BodyFraming::kNone;
  if (out->connect) {
    if (block.authority.empty() || !block.protocol.empty()) return false;
    out->method = block.method;
    out->target = block.authority;
  } else {
    if (block.path.empty()) return false;
    out->method = websocket ? std::string_view("GET") : block.method;
    out->target = block.path;
  }
  std::string_view host = block.authority;
  if (host.empty()) host = block.headers.Get("host").value_or("");
  if (host.empty()) return false;  // HTTP/1.1 requires Host
  out->headers.Add("host", host);
  bool has_length = false;
  for (const HeaderField& f : block.headers) {
    if (IsConnectionSpecific(f.name) || f.name == "host") continue;
    if (websocket && f.name == "sec-websocket-key") continue;
    if (f.name == "content-length") {
      // nghttp2 takes any run of digits ("0005"); the number is what
      // counts (written plainly on the HTTP/1.1 side).
      uint64_t length = 0;
      const char* end = f.value.data() + f.value.size();
      auto r = std::from_chars(f.value.data(), end, length);
      if (r.ec != std::errc() || r.ptr != end) return false;
      // A CONNECT request has no content (RFC 9110 9.3.6).
      if (out->connect && length > 0) return false;
      out->content_length = length;
      has_length = true;
      continue;
    }
    out->headers.Add(f.name, f.value);
  }
  if (websocket) {
    out->headers.Add("connection", "upgrade");
    out->headers.Add("upgrade", "websocket");
    out->headers.Add("sec-websocket-key", websocket_key);
  } else if (out->connect || (end_stream && !has_length)) {
    out->framing = BodyFraming::kNone;
  } else if (has_length) {
    out->framing = out->content_length > 0 ? BodyFraming::kContentLength
                                           : BodyFraming::kNone;
  } else {
    out->framing = BodyFraming::kChunked;
  }
  return true;
}

bool AppendH1Request(const H2HeaderBlock& block, bool end_stream,
                     std::string_view websocket_key, std::string* out,
                     bool* chunked) {
  thread_local MessageHead head;  // its header list keeps its capacity
  *chunked = false;
  if (!H1RequestHead(block, end_stream, websocket_key, &head)) return false;
  out->append(head.method).append(" ").append(head.target);
  out->append(" HTTP/1.1\r\n");
  for (const HeaderField& f : head.headers)
    out->append(f.name).append(": ").append(f.value).append("\r\n");
  if (head.framing == BodyFraming::kContentLength) {
    char digits[20];
    auto d =
        std::to_chars(digits, digits + sizeof(digits), head.content_length);
    out->append("content-length: ").append(digits, d.ptr).append("\r\n");
  } else if (head.framing == BodyFraming::kChunked) {
    out->append("transfer-encoding: chunked\r\n");
    *chunked = true;
  }
  out->append("\r\n");
  return true;
}

void H2ResponseFields(const MessageHead& head, char (&status_buf)[4],
                      std::vector<HeaderField>* out) {
  out->clear();
  int status = head.status_code;
  const bool websocket = status == 101;
  if (websocket) status = 200;
  status_buf[0] = static_cast<char>('0' + status / 100 % 10);
  status_buf[1] = static_cast<char>('0' + status / 10 % 10);
  status_buf[2] = static_cast<char>('0' + status % 10);
  status_buf[3] = 0;
  out->push_back({":status", std::string_view(status_buf, 3)});
  const HopByHopFields hop_by_hop(head.headers);
  for (const HeaderField& f : head.headers) {
    if (hop_by_hop.Contains(f.name) || IsConnectionSpecific(f.name)) continue;
    if (websocket && EqualsIgnoreCase(f.name, "sec-websocket-accept")) continue;
    out->push_back(f);
  }
}

void H2RequestFields(const MessageHead& head, std::vector<HeaderField>* out) {
  out->clear();
  std::string_view host = head.headers.Get("host").value_or("");
  out->push_back({":method", head.method});
  out->push_back({":scheme", "http"});
  out->push_back({":authority", host});
  out->push_back({":path", head.target});
  bool grpc = false;
  const HopByHopFields hop_by_hop(head.headers);
  for (const HeaderField& f : head.headers) {
    if (hop_by_hop.Contains(f.name) || IsConnectionSpecific(f.name) ||
        EqualsIgnoreCase(f.name, "host")) {
      continue;
    }
    if (EqualsIgnoreCase(f.name, "content-type") &&
        f.value.substr(0, 16) == "application/grpc") {
      grpc = true;
    }
    out->push_back(f);
  }
  if (grpc) out->push_back({"te", "trailers"});
}

namespace {

// HTTP/1.1 carries trailers only after a chunked body: a gRPC response (its
// status is a trailer) or one announcing trailers is chunked on that side
// even when the endpoint sent a content-length.
bool MayHaveTrailers(const HeaderList& headers) {
  if (headers.Has("trailer")) return true;
  std::optional<std::string_view> type = headers.Get("content-type");
  return type && type->substr(0, 16) == "application/grpc";
}

}  // namespace

void H1ResponseHead(const H2HeaderBlock& block, bool end_stream,
                    bool head_request, MessageHead* out) {
  out->status_code = block.status;
  out->reason = {};
  out->version_minor = 1;
  out->headers.Clear();
  out->keep_alive = true;
  out->upgrade = false;
  out->connect = false;
  out->content_length = 0;
  std::optional<uint64_t> length;
  for (const HeaderField& f : block.headers) {
    if (IsConnectionSpecific(f.name)) continue;
    if (f.name == "content-length") {
      uint64_t v = 0;
      auto r =
          std::from_chars(f.value.data(), f.value.data() + f.value.size(), v);
      if (r.ec == std::errc() && r.ptr == f.value.data() + f.value.size())
        length = v;
    }
    out->headers.Add(f.name, f.value);
  }
  const bool no_body = head_request || block.status == 204 ||
                       block.status == 304 || block.status < 200;
  if (no_body) {
    out->framing = BodyFraming::kNone;
  } else if (end_stream) {
    out->framing = BodyFraming::kContentLength;
    out->content_length = 0;
  } else if (length && !MayHaveTrailers(block.headers)) {
    out->framing = BodyFraming::kContentLength;
    out->content_length = *length;
  } else {
    out->framing = BodyFraming::kChunked;
  }
}

}  // namespace nodemesh::http
