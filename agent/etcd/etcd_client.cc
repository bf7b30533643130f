#include "agent/etcd/etcd_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace nodemesh::etcd {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// The gateway speaks protobuf's JSON mapping: int64 fields are strings,
// fields at their default value are left out.
int64_t Int64(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  int64_t v = 0;
  if (it->is_string() && absl::SimpleAtoi(it->get<std::string>(), &v)) return v;
  return 0;
}

std::string Bytes(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_string()) return "";
  std::string out;
  absl::Base64Unescape(it->get<std::string>(), &out);
  return out;
}

std::string B64(const std::string& bytes) { return absl::Base64Escape(bytes); }

KeyValue ParseKv(const json& j) {
  KeyValue kv;
  kv.key = Bytes(j, "key");
  kv.value = Bytes(j, "value");
  kv.create_revision = Int64(j, "create_revision");
  kv.mod_revision = Int64(j, "mod_revision");
  kv.version = Int64(j, "version");
  kv.lease = Int64(j, "lease");
  return kv;
}

absl::StatusOr<json> ParseJson(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return absl::InternalError("etcd answered with something not JSON: " +
                               text.substr(0, 200));
  return j;
}

// {"key", "range_end"?}: the key range of a range, delete or watch.
json KeyRange(const std::string& key, const std::string& range_end) {
  json j = {{"key", B64(key)}};
  if (!range_end.empty()) j["range_end"] = B64(range_end);
  return j;
}

int MillisLeft(Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - Clock::now())
                  .count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

}  // namespace

absl::StatusOr<net::SocketAddress> ParseEndpoint(const std::string& url) {
  absl::string_view rest = url;
  if (absl::StartsWith(rest, "http://")) rest.remove_prefix(7);
  if (absl::StartsWith(rest, "https://"))
    return absl::InvalidArgumentError(url +
                                      ": TLS to etcd is not supported yet");
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  auto addr =
      net::SocketAddress::Parse(std::string_view(rest.data(), rest.size()));
  if (!addr.ok())
    return absl::InvalidArgumentError(absl::StrCat(
        url, ": expected http://ip:port (", addr.status().message(), ")"));
  return *addr;
}

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

Client::Client(Options options) : options_(std::move(options)) {}

Client::~Client() { Disconnect(); }

std::string Client::endpoint() const { return endpoint_; }

void Client::Disconnect() {
  int fd = fd_.exchange(-1);
  if (fd >= 0) ::close(fd);
  in_.clear();
  in_pos_ = 0;
}

void Client::Abort() {
  aborted_ = true;
  int fd = fd_.load();
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

absl::Status Client::Connect() {
  if (fd_.load() >= 0) return absl::OkStatus();
  if (options_.endpoints.empty())
    return absl::FailedPreconditionError("no etcd endpoints");
  absl::Status last;
  // Each endpoint once, starting after the one that failed last.
  for (size_t i = 0; i < options_.endpoints.size(); ++i) {
    const net::SocketAddress& addr =
        options_.endpoints[next_endpoint_ % options_.endpoints.size()];
    endpoint_ = addr.ToString();
    auto fd = net::ConnectTcp(addr, options_.socket_mark);
    if (fd.ok()) {
      pollfd p{fd->get(), POLLOUT, 0};
      int n = ::poll(&p, 1, static_cast<int>(options_.timeout.count()));
      absl::Status s = n == 1
                           ? net::SocketError(fd->get())
                           : absl::DeadlineExceededError("connect timed out");
      if (s.ok()) {
        int one = 1, idle = 5, interval = 1, count = 3;
        // A watch waits for events for as long as it takes; keepalives
        // notice a peer that vanished without a FIN.
        ::setsockopt(fd->get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        ::setsockopt(fd->get(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        ::setsockopt(fd->get(), IPPROTO_TCP, TCP_KEEPINTVL, &interval,
                     sizeof(interval));
        ::setsockopt(fd->get(), IPPROTO_TCP, TCP_KEEPCNT, &count,
                     sizeof(count));
        ::setsockopt(fd->get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fd_ = fd->Release();
        in_.clear();
        in_pos_ = 0;
        return absl::OkStatus();
      }
      last = s;
    } else {
      last = fd.status();
    }
    ++next_endpoint_;
  }
  return absl::UnavailableError(
      absl::StrCat("etcd at ", endpoint_, " unreachable: ", last.message()));
}

absl::Status Client::SendRequest(const std::string& path,
                                 const std::string& body) {
  std::string req = absl::StrCat(
      "POST ", path, " HTTP/1.1\r\nHost: ", endpoint_,
      "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
      "\r\n\r\n", body);
  auto deadline = Clock::now() + options_.timeout;
  size_t off = 0;
  while (off < req.size()) {
    ssize_t n =
        ::send(fd_.load(), req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd_.load(), POLLOUT, 0};
      if (::poll(&p, 1, MillisLeft(deadline)) <= 0)
        return absl::DeadlineExceededError("etcd: send timed out");
      continue;
    }
    return absl::UnavailableError(
        absl::StrCat("etcd at ", endpoint_, ": send: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status Client::Fill(Clock::time_point deadline) {
  if (in_pos_ > 0 && in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  }
  char buf[16384];
  for (;;) {
    if (aborted_) return absl::CancelledError("etcd: aborted");
    ssize_t n = ::recv(fd_.load(), buf, sizeof(buf), 0);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      return absl::OkStatus();
    }
    if (n == 0)
      return absl::UnavailableError(
          absl::StrCat("etcd at ", endpoint_, " closed the connection"));
    if (errno == EINTR) continue;
    if (errno != EAGAIN)
      return absl::UnavailableError(absl::StrCat(
          "etcd at ", endpoint_, ": recv: ", std::strerror(errno)));
    pollfd p{fd_.load(), POLLIN, 0};
    int r = ::poll(&p, 1, MillisLeft(deadline));
    if (r == 0)
      return absl::DeadlineExceededError(
          absl::StrCat("etcd at ", endpoint_, " did not answer in time"));
    if (r < 0 && errno != EINTR)
      return absl::UnavailableError(std::strerror(errno));
  }
}

absl::Status Client::ReadLine(Clock::time_point deadline, std::string* line) {
  for (;;) {
    size_t eol = in_.find("\r\n", in_pos_);
    if (eol != std::string::npos) {
      line->assign(in_, in_pos_, eol - in_pos_);
      in_pos_ = eol + 2;
      return absl::OkStatus();
    }
    if (in_.size() - in_pos_ > 65536)
      return absl::InternalError("etcd: header line too long");
    if (auto s = Fill(deadline); !s.ok()) return s;
  }
}

absl::Status Client::ReadHead(int* status, bool* chunked,
                              int64_t* content_length,
                              Clock::time_point deadline) {
  std::string line;
  if (auto s = ReadLine(deadline, &line); !s.ok()) return s;
  // "HTTP/1.1 200 OK"
  if (!absl::StartsWith(line, "HTTP/1.") || line.size() < 12 ||
      !absl::SimpleAtoi(line.substr(9, 3), status))
    return absl::InternalError("etcd: bad status line: " + line);
  *chunked = false;
  *content_length = -1;
  for (;;) {
    if (auto s = ReadLine(deadline, &line); !s.ok()) return s;
    if (line.empty()) return absl::OkStatus();
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    if (name == "transfer-encoding")
      *chunked =
          absl::AsciiStrToLower(value).find("chunked") != std::string::npos;
    if (name == "content-length" && !absl::SimpleAtoi(value, content_length))
      return absl::InternalError("etcd: bad Content-Length: " + value);
  }
}

absl::Status Client::ReadChunk(Clock::time_point deadline, std::string* out,
                               bool* last) {
  std::string line;
  if (auto s = ReadLine(deadline, &line); !s.ok()) return s;
  size_t semi = line.find(';');
  uint64_t size = 0;
  if (!absl::SimpleHexAtoi(line.substr(0, semi), &size))
    return absl::InternalError("etcd: bad chunk size: " + line);
  *last = size == 0;
  while (in_.size() - in_pos_ < size + 2)
    if (auto s = Fill(deadline); !s.ok()) return s;
  out->append(in_, in_pos_, size);
  in_pos_ += size + 2;  // the data and its CRLF
  if (*last) {
    // Trailers (none expected) up to the empty line were the "\r\n" eaten.
  }
  return absl::OkStatus();
}

absl::Status Client::ReadBody(bool chunked, int64_t content_length,
                              Clock::time_point deadline, std::string* body) {
  if (chunked) {
    for (bool last = false; !last;)
      if (auto s = ReadChunk(deadline, body, &last); !s.ok()) return s;
    return absl::OkStatus();
  }
  if (content_length < 0)
    return absl::InternalError("etcd: answer without a length");
  while (in_.size() - in_pos_ < static_cast<size_t>(content_length))
    if (auto s = Fill(deadline); !s.ok()) return s;
  body->assign(in_, in_pos_, static_cast<size_t>(content_length));
  in_pos_ += static_cast<size_t>(content_length);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Client::Call(const std::string& path,
                                         const std::string& body) {
  aborted_ = false;
  // A kept-alive connection that etcd closed meanwhile fails at once: one
  // more try on a fresh connection.
  for (int attempt = 0;; ++attempt) {
    bool reused = fd_.load() >= 0;
    absl::Status s = Connect();
    if (!s.ok()) return s;
    auto deadline = Clock::now() + options_.timeout;
    int status = 0;
    bool chunked = false;
    int64_t length = -1;
    std::string answer;
    s = SendRequest(path, body);
    if (s.ok()) s = ReadHead(&status, &chunked, &length, deadline);
    if (s.ok()) s = ReadBody(chunked, length, deadline, &answer);
    if (!s.ok()) {
      Disconnect();
      ++next_endpoint_;
      if (reused && attempt == 0 && !absl::IsDeadlineExceeded(s)) continue;
      return s;
    }
    if (status != 200) {
      // {"error": "...", "code": N, "message": "..."}
      auto j = json::parse(answer, nullptr, false);
      std::string message = j.is_object() ? j.value("message", answer) : answer;
      int code = j.is_object() ? j.value("code", 0) : 0;
      std::string text =
          absl::StrCat("etcd ", path, ": HTTP ", status, ": ", message);
      // gRPC codes: 5 NotFound, 14 Unavailable, 4 DeadlineExceeded.
      if (code == 5) return absl::NotFoundError(text);
      if (code == 14 || code == 4 || status >= 500)
        return absl::UnavailableError(text);
      return absl::InternalError(text);
    }
    return answer;
  }
}

absl::StatusOr<json> Client::CallJson(const std::string& path,
                                      const json& request) {
  auto answer = Call(path, request.dump());
  if (!answer.ok()) return answer.status();
  return ParseJson(*answer);
}

absl::StatusOr<RangeResult> Client::Range(const std::string& key,
                                          const std::string& range_end) {
  auto j = CallJson("/v3/kv/range", KeyRange(key, range_end));
  if (!j.ok()) return j.status();
  RangeResult out;
  out.revision = Int64((*j)["header"], "revision");
  if (auto kvs = j->find("kvs"); kvs != j->end() && kvs->is_array()) {
    out.kvs.reserve(kvs->size());
    for (const json& kv : *kvs) out.kvs.push_back(ParseKv(kv));
  }
  return out;
}

absl::StatusOr<TxnResult> Client::Txn(const std::vector<Compare>& compares,
                                      const std::vector<Write>& writes) {
  json req = json::object();
  json cmp = json::array();
  for (const Compare& c : compares)
    cmp.push_back({{"key", B64(c.key)},
                   {"target", "MOD"},
                   {"result", "EQUAL"},
                   {"mod_revision", std::to_string(c.mod_revision)}});
  json ops = json::array();
  for (const Write& w : writes) {
    if (w.value) {
      json put = {{"key", B64(w.key)}, {"value", B64(*w.value)}};
      if (w.lease != 0) put["lease"] = std::to_string(w.lease);
      ops.push_back({{"request_put", put}});
    } else {
      ops.push_back({{"request_delete_range", {{"key", B64(w.key)}}}});
    }
  }
  req["compare"] = cmp;
  req["success"] = ops;
  auto j = CallJson("/v3/kv/txn", req);
  if (!j.ok()) return j.status();
  TxnResult out;
  out.succeeded = j->value("succeeded", false);
  out.revision = Int64((*j)["header"], "revision");
  return out;
}

absl::StatusOr<int64_t> Client::DeleteRange(const std::string& key,
                                            const std::string& range_end) {
  auto j = CallJson("/v3/kv/deleterange", KeyRange(key, range_end));
  if (!j.ok()) return j.status();
  return Int64(*j, "deleted");
}

absl::StatusOr<int64_t> Client::LeaseGrant(int64_t ttl_seconds, int64_t id) {
  json req = {{"TTL", std::to_string(ttl_seconds)}};
  if (id != 0) req["ID"] = std::to_string(id);
  auto j = CallJson("/v3/lease/grant", req);
  if (!j.ok()) return j.status();
  if (j->contains("error") && !(*j)["error"].get<std::string>().empty())
    return absl::AlreadyExistsError("etcd lease grant: " +
                                    (*j)["error"].get<std::string>());
  int64_t granted = Int64(*j, "ID");
  if (granted == 0) return absl::InternalError("etcd granted no lease");
  return granted;
}

absl::StatusOr<int64_t> Client::LeaseKeepAlive(int64_t id) {
  auto answer =
      Call("/v3/lease/keepalive", json({{"ID", std::to_string(id)}}).dump());
  if (!answer.ok()) return answer.status();
  // The stream's one answer: {"result": {"ID": ..., "TTL": ...}}; no TTL
  // (0) when the lease expired or was revoked.
  auto j = ParseJson(absl::StrCat(
      absl::StripAsciiWhitespace(answer->substr(0, answer->find('\n')))));
  if (!j.ok()) return j.status();
  auto result = j->find("result");
  if (result == j->end()) {
    if (j->contains("error"))
      return absl::UnavailableError("etcd lease keepalive: " +
                                    (*j)["error"].dump());
    return absl::InternalError("etcd lease keepalive: no result");
  }
  return Int64(*result, "TTL");
}

absl::Status Client::LeaseRevoke(int64_t id) {
  auto answer =
      Call("/v3/lease/revoke", json({{"ID", std::to_string(id)}}).dump());
  if (absl::IsNotFound(answer.status())) return absl::OkStatus();
  return answer.status();
}

absl::Status Client::Watch(
    const std::string& key, const std::string& range_end,
    int64_t start_revision,
    const std::function<bool(const WatchResponse&)>& on_response) {
  aborted_ = false;
  // A watch holds its connection: never reuse one that a call left open.
  Disconnect();
  if (auto s = Connect(); !s.ok()) return s;
  json create = KeyRange(key, range_end);
  if (start_revision > 0)
    create["start_revision"] = std::to_string(start_revision);
  absl::Status s =
      SendRequest("/v3/watch", json({{"create_request", create}}).dump());
  int status = 0;
  bool chunked = false;
  int64_t length = -1;
  if (s.ok())
    s = ReadHead(&status, &chunked, &length, Clock::now() + options_.timeout);
  if (s.ok() && (status != 200 || !chunked))
    s = absl::InternalError(
        absl::StrCat("etcd /v3/watch: HTTP ", status, " (expected a stream)"));
  // One JSON object per line, lines split across chunks at will.
  std::string pending;
  while (s.ok()) {
    bool last = false;
    s = ReadChunk(Clock::time_point::max(), &pending, &last);
    if (!s.ok()) break;
    if (last) {
      s = absl::UnavailableError("etcd ended the watch stream");
      break;
    }
    size_t start = 0;
    for (size_t eol; (eol = pending.find('\n', start)) != std::string::npos;
         start = eol + 1) {
      absl::string_view line(pending.data() + start, eol - start);
      if (absl::StripAsciiWhitespace(line).empty()) continue;
      json j = json::parse(line.begin(), line.end(), nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        s = absl::InternalError("etcd watch: a line that is not JSON");
        break;
      }
      if (j.contains("error")) {
        s = absl::UnavailableError("etcd watch: " + j["error"].dump());
        break;
      }
      const json& r = j["result"];
      WatchResponse w;
      w.header_revision = Int64(r["header"], "revision");
      w.created = r.value("created", false);
      w.canceled = r.value("canceled", false);
      w.compact_revision = Int64(r, "compact_revision");
      if (auto evs = r.find("events"); evs != r.end() && evs->is_array()) {
        w.events.reserve(evs->size());
        for (const json& e : *evs) {
          Event ev;
          ev.type = e.value("type", "PUT") == "DELETE" ? Event::Type::kDelete
                                                       : Event::Type::kPut;
          ev.kv = ParseKv(e["kv"]);
          w.events.push_back(std::move(ev));
        }
      }
      if (!on_response(w) || w.canceled) {
        Disconnect();
        return absl::OkStatus();
      }
    }
    if (!s.ok()) break;
    pending.erase(0, start);
  }
  Disconnect();
  return s;
}

}  // namespace nodemesh::etcd
