#include "agent/http/http1_writer.h"

#include <charconv>

#include "agent/http/http1_grammar.h"
#include "glog/logging.h"

namespace nodemesh::http {
namespace {

void AppendNumber(uint64_t v, int base, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, base);
  out->append(buf, end);
}

void AppendFields(std::span<const HeaderField> headers, std::string* out) {
  for (const HeaderField& f : headers) {
    if (!IsValidHeaderName(f.name) || !IsValidHeaderValue(f.value)) {
      // A handler bug, not a peer's: loud in debug builds, harmless in
      // release because the field is dropped instead of splitting the head.
      LOG(DFATAL) << "http writer: dropping invalid header field ("
                  << f.name.size() << "-byte name)";
      continue;
    }
    out->append(f.name).append(": ").append(f.value).append("\r\n");
  }
}

}  // namespace

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

bool IsValidHeaderName(std::string_view name) { return IsToken(name); }

bool IsValidHeaderValue(std::string_view value) {
  // Leading/trailing whitespace would be stripped by the peer, changing the
  // value; refuse it rather than guess.
  return IsFieldText(value) && TrimOws(value).size() == value.size();
}

bool IsHopByHopHeader(std::string_view name) {
  static constexpr std::string_view kHopByHop[] = {
      "connection",        "keep-alive", "proxy-connection", "te",
      "transfer-encoding", "upgrade",    "trailer"};
  for (std::string_view h : kHopByHop) {
    if (EqualsIgnoreCase(name, h)) return true;
  }
  return false;
}

bool IsHopByHopHeader(std::string_view name, const HeaderList& headers) {
  return HopByHopFields(headers).Contains(name);
}

HopByHopFields::HopByHopFields(const HeaderList& headers) {
  for (const HeaderField& f : headers) {
    if (!EqualsIgnoreCase(f.name, "connection")) continue;
    if (count_ < kMaxConnectionLines) {
      connection_[count_++] = f.value;
    } else {
      many_ = &headers;
    }
  }
}

bool HopByHopFields::Contains(std::string_view name) const {
  if (IsHopByHopHeader(name)) return true;
  if (many_ != nullptr) return many_->HasToken("connection", name);
  for (size_t i = 0; i < count_; ++i) {
    bool found = false;
    ForEachListElement(connection_[i], [&](std::string_view token) {
      found = EqualsIgnoreCase(token, name);
      return !found;
    });
    if (found) return true;
  }
  return false;
}

void AppendResponseHead(int status, std::span<const HeaderField> headers,
                        std::optional<uint64_t> content_length,
                        std::string* out) {
  out->append("HTTP/1.1 ");
  AppendNumber(static_cast<uint64_t>(status), 10, out);
  out->append(" ").append(ReasonPhrase(status)).append("\r\n");
  AppendFields(headers, out);
  if (content_length) {
    out->append("Content-Length: ");
    AppendNumber(*content_length, 10, out);
    out->append("\r\n");
  }
  out->append("\r\n");
}

void AppendResponse(int status, std::span<const HeaderField> headers,
                    std::string_view body, std::string* out, bool omit_body) {
  AppendResponseHead(status, headers, body.size(), out);
  if (!omit_body) out->append(body);
}

void AppendRequestHead(std::string_view method, std::string_view target,
                       std::span<const HeaderField> headers,
                       std::optional<uint64_t> content_length,
                       std::string* out) {
  // method and target come from a parsed request or from code, not from
  // arbitrary input; the parser has already rejected spaces and controls.
  out->append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  AppendFields(headers, out);
  if (content_length) {
    out->append("Content-Length: ");
    AppendNumber(*content_length, 10, out);
    out->append("\r\n");
  }
  out->append("\r\n");
}

void AppendChunk(std::string_view data, std::string* out) {
  if (data.empty()) return;
  AppendNumber(data.size(), 16, out);
  out->append("\r\n").append(data).append("\r\n");
}

void AppendLastChunk(std::span<const HeaderField> trailers, std::string* out) {
  out->append("0\r\n");
  AppendFields(trailers, out);
  out->append("\r\n");
}

}  // namespace nodemesh::http
