#include "agent/proxy/access_log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <ctime>

#include "absl/strings/str_cat.h"

namespace nodemesh::proxy {

// ---- Local replies as Envoy names them ----

uint32_t ReasonResponseFlags(LocalReason reason) {
  switch (reason) {
    case LocalReason::kBadRequest:
      return kFlagDownstreamProtocolError;
    case LocalReason::kNoRoute:
      return kFlagNoRoute;
    case LocalReason::kNoHealthyUpstream:
      return kFlagNoHealthyUpstream;
    case LocalReason::kConnectFailure:
      return kFlagUpstreamConnectFailure;
    case LocalReason::kUpstreamReset:
      return kFlagUpstreamConnectionTermination;
    case LocalReason::kBadResponse:
      return kFlagUpstreamProtocolError;
    case LocalReason::kRequestTimeout:
    case LocalReason::kPerTryTimeout:
      return kFlagUpstreamRequestTimeout;
    case LocalReason::kIdleTimeout:
      return kFlagStreamIdleTimeout;
    case LocalReason::kOverflow:
      return kFlagUpstreamOverflow;
    case LocalReason::kCount:
      break;
  }
  return 0;
}

std::string_view ReasonCodeDetails(LocalReason reason) {
  switch (reason) {
    case LocalReason::kBadRequest:
      return "http1.codec_error";
    case LocalReason::kNoRoute:
      return "route_not_found";
    case LocalReason::kNoHealthyUpstream:
      return "no_healthy_upstream";
    case LocalReason::kConnectFailure:
      return "upstream_reset_before_response_started{connection_failure}";
    case LocalReason::kUpstreamReset:
      return "upstream_reset_before_response_started{connection_termination}";
    case LocalReason::kBadResponse:
      return "upstream_reset_before_response_started{protocol_error}";
    case LocalReason::kRequestTimeout:
      return "response_timeout";
    case LocalReason::kPerTryTimeout:
      return "upstream_per_try_timeout";
    case LocalReason::kIdleTimeout:
      return "stream_idle_timeout";
    case LocalReason::kOverflow:
      return "overflow";
    case LocalReason::kCount:
      break;
  }
  return {};
}

namespace {

constexpr std::pair<uint32_t, std::string_view> kFlagNames[] = {
    {kFlagNoHealthyUpstream, "UH"},
    {kFlagUpstreamRequestTimeout, "UT"},
    {kFlagUpstreamConnectFailure, "UF"},
    {kFlagUpstreamConnectionTermination, "UC"},
    {kFlagUpstreamOverflow, "UO"},
    {kFlagNoRoute, "NR"},
    {kFlagDownstreamConnectionTermination, "DC"},
    {kFlagUpstreamRetryLimitExceeded, "URX"},
    {kFlagStreamIdleTimeout, "SI"},
    {kFlagDownstreamProtocolError, "DPE"},
    {kFlagUpstreamProtocolError, "UPE"},
};

char Lower(char c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }

std::string Lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Read once: the name does not change under a running agent.
std::string_view Hostname() {
  static const std::string name = [] {
    char buf[256] = {};
    if (::gethostname(buf, sizeof(buf) - 1) != 0) buf[0] = '\0';
    return std::string(buf);
  }();
  return name;
}

void AppendJsonEscaped(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (u < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[u >> 4]);
          out->push_back(kHex[u & 15]);
        } else {
          out->push_back(c);
        }
    }
  }
}

void AppendNumber(int64_t n, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), n);
  out->append(buf, r.ptr);
}

}  // namespace

// ---- Header slots ----

AccessLogHeaderTable::AccessLogHeaderTable() {
  static std::atomic<uint64_t> next{1};
  id_ = next.fetch_add(1, std::memory_order_relaxed);
}

uint32_t AccessLogHeaderTable::Slot(HeaderSource source,
                                    std::string_view name) {
  std::string lowered = Lowered(name);
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].first == source && slots_[i].second == lowered) return i;
  }
  slots_.emplace_back(source, std::move(lowered));
  return static_cast<uint32_t>(slots_.size() - 1);
}

void CapturedHeaders::Reset(const AccessLogHeaderTable& table) {
  table_id_ = table.id();
  data_.clear();
  spans_.assign(table.size(), {kMissing, 0});
}

void CapturedHeaders::Capture(const AccessLogHeaderTable& table,
                              HeaderSource source,
                              const http::HeaderList& headers) {
  if (table.id() != table_id_ || table.size() != spans_.size()) return;
  for (uint32_t i = 0; i < spans_.size(); ++i) {
    if (table.source(i) != source || spans_[i].first != kMissing) continue;
    std::optional<std::string_view> v = headers.Get(table.name(i));
    if (!v) continue;
    spans_[i] = {static_cast<uint32_t>(data_.size()),
                 static_cast<uint32_t>(v->size())};
    data_.append(*v);
  }
}

std::string_view CapturedHeaders::Get(const AccessLogHeaderTable& table,
                                      uint32_t slot) const {
  if (table.id() != table_id_ || slot >= spans_.size() ||
      spans_[slot].first == kMissing) {
    return {};
  }
  std::string_view data = data_;
  return data.substr(spans_[slot].first, spans_[slot].second);
}

// ---- Compiled formats ----

namespace {

enum class OpKind {
  kUnknown,  // prints as missing
  kStartTime,
  kRequestHeader,
  kResponseHeader,
  kTrailer,
  kResponseCode,
  kResponseFlags,
  kResponseCodeDetails,
  kBytesReceived,
  kBytesSent,
  kDuration,
  kRequestDuration,
  kResponseDuration,
  kUpstreamHost,
  kUpstreamCluster,
  kDownstreamRemoteAddress,
  kDownstreamRemoteAddressWithoutPort,
  kDownstreamLocalAddress,
  kProtocol,
  kUpstreamTransportFailureReason,
  kRouteName,
  kRequestedServerName,
  kConnectionId,
  kHostname,
};

struct NamedOp {
  std::string_view name;
  OpKind kind;
};

constexpr NamedOp kOperators[] = {
    {"START_TIME", OpKind::kStartTime},
    {"REQ", OpKind::kRequestHeader},
    {"RESP", OpKind::kResponseHeader},
    {"TRAILER", OpKind::kTrailer},
    {"RESPONSE_CODE", OpKind::kResponseCode},
    {"RESPONSE_FLAGS", OpKind::kResponseFlags},
    {"RESPONSE_CODE_DETAILS", OpKind::kResponseCodeDetails},
    {"BYTES_RECEIVED", OpKind::kBytesReceived},
    {"BYTES_SENT", OpKind::kBytesSent},
    {"DURATION", OpKind::kDuration},
    {"REQUEST_DURATION", OpKind::kRequestDuration},
    {"RESPONSE_DURATION", OpKind::kResponseDuration},
    {"UPSTREAM_HOST", OpKind::kUpstreamHost},
    {"UPSTREAM_CLUSTER", OpKind::kUpstreamCluster},
    {"DOWNSTREAM_REMOTE_ADDRESS", OpKind::kDownstreamRemoteAddress},
    {"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
     OpKind::kDownstreamRemoteAddressWithoutPort},
    {"DOWNSTREAM_LOCAL_ADDRESS", OpKind::kDownstreamLocalAddress},
    {"PROTOCOL", OpKind::kProtocol},
    {"UPSTREAM_TRANSPORT_FAILURE_REASON",
     OpKind::kUpstreamTransportFailureReason},
    {"ROUTE_NAME", OpKind::kRouteName},
    {"REQUESTED_SERVER_NAME", OpKind::kRequestedServerName},
    {"CONNECTION_ID", OpKind::kConnectionId},
    {"HOSTNAME", OpKind::kHostname},
};

enum class Pseudo { kNone, kMethod, kPath, kAuthority, kScheme };
// Headers whose value is what the proxy sent upstream rather than what
// the client sent.
enum class Sent { kNone, kRequestId, kForwardedFor };

struct HeaderRef {
  Pseudo pseudo = Pseudo::kNone;
  Sent sent = Sent::kNone;
  uint32_t slot = UINT32_MAX;  // UINT32_MAX: none (unknown pseudo-header)
};

// START_TIME's format: strftime text, with Envoy's %s (epoch seconds),
// %f / %1f..%9f (fractions of a second) and %E1S..%E9S handled here.
struct TimePart {
  enum Kind { kStrftime, kFraction, kEpoch } kind = kStrftime;
  std::string text;
  int digits = 0;
};

std::vector<TimePart> CompileTimeFormat(std::string_view f) {
  std::vector<TimePart> parts;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) parts.push_back({TimePart::kStrftime, std::move(cur), 0});
    cur.clear();
  };
  for (size_t i = 0; i < f.size();) {
    if (f[i] != '%' || i + 1 >= f.size()) {
      cur.push_back(f[i++]);
      continue;
    }
    char c = f[i + 1];
    if (c == 's') {
      flush();
      parts.push_back({TimePart::kEpoch, "", 0});
      i += 2;
    } else if (c == 'f') {
      flush();
      parts.push_back({TimePart::kFraction, "", 9});
      i += 2;
    } else if (c >= '1' && c <= '9' && i + 2 < f.size() && f[i + 2] == 'f') {
      flush();
      parts.push_back({TimePart::kFraction, "", c - '0'});
      i += 3;
    } else if (c == 'E' && i + 3 < f.size() && f[i + 2] >= '1' &&
               f[i + 2] <= '9' && f[i + 3] == 'S') {
      cur.append("%S.");
      flush();
      parts.push_back({TimePart::kFraction, "", f[i + 2] - '0'});
      i += 4;
    } else {
      cur.push_back('%');
      cur.push_back(c);
      i += 2;
    }
  }
  flush();
  return parts;
}

// Formats `t` (UTC, as Envoy does) into `buf`; returns the length.
size_t FormatTime(const std::vector<TimePart>& parts,
                  std::chrono::system_clock::time_point t, char* buf,
                  size_t cap) {
  auto since = t.time_since_epoch();
  auto secs = std::chrono::floor<std::chrono::seconds>(since);
  int64_t nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(since - secs)
          .count();
  time_t tt = static_cast<time_t>(secs.count());
  struct tm tm {};
  gmtime_r(&tt, &tm);
  size_t len = 0;
  for (const TimePart& p : parts) {
    if (len >= cap) break;
    switch (p.kind) {
      case TimePart::kStrftime:
        len += strftime(buf + len, cap - len, p.text.c_str(), &tm);
        break;
      case TimePart::kEpoch: {
        auto r = std::to_chars(buf + len, buf + cap,
                               static_cast<int64_t>(secs.count()));
        if (r.ec == std::errc()) len = static_cast<size_t>(r.ptr - buf);
        break;
      }
      case TimePart::kFraction: {
        int64_t v = nanos;
        for (int d = 9; d > p.digits; --d) v /= 10;
        if (len + static_cast<size_t>(p.digits) > cap) break;
        for (int d = p.digits - 1; d >= 0; --d) {
          buf[len + static_cast<size_t>(d)] = static_cast<char>('0' + v % 10);
          v /= 10;
        }
        len += static_cast<size_t>(p.digits);
        break;
      }
    }
  }
  return len;
}

}  // namespace

struct AccessLogFormat::Operator {
  OpKind kind = OpKind::kUnknown;
  HeaderRef header;
  HeaderRef alternate;
  bool has_alternate = false;
  size_t max_length = 0;  // 0: no limit
  std::vector<TimePart> time;
};

struct AccessLogFormat::Piece {
  std::string literal;  // when !is_operator
  bool is_operator = false;
  Operator op;
};

struct AccessLogFormat::JsonField {
  std::string prefix;  // `"key":`, escaped
  std::vector<Piece> pieces;
  bool typed = false;  // exactly one operator: its value keeps its type
};

namespace {

using Operator = AccessLogFormat::Operator;
using Piece = AccessLogFormat::Piece;

HeaderRef CompileHeader(HeaderSource source, std::string_view name,
                        AccessLogHeaderTable* table, const std::string& where,
                        std::vector<std::string>* warnings) {
  HeaderRef ref;
  std::string lowered = Lowered(name);
  if (!lowered.empty() && lowered.front() == ':') {
    if (source == HeaderSource::kRequest) {
      if (lowered == ":method") ref.pseudo = Pseudo::kMethod;
      if (lowered == ":path") ref.pseudo = Pseudo::kPath;
      if (lowered == ":authority") ref.pseudo = Pseudo::kAuthority;
      if (lowered == ":scheme") ref.pseudo = Pseudo::kScheme;
    }
    if (ref.pseudo == Pseudo::kNone) {
      warnings->push_back(absl::StrCat(where, ": pseudo-header ",
                                       std::string(name),
                                       " is not known; it prints \"-\""));
    }
    return ref;
  }
  if (source == HeaderSource::kRequest && lowered == "x-request-id")
    ref.sent = Sent::kRequestId;
  if (source == HeaderSource::kRequest && lowered == "x-forwarded-for")
    ref.sent = Sent::kForwardedFor;
  ref.slot = table->Slot(source, lowered);
  return ref;
}

Operator CompileOperator(std::string_view name, std::string_view arg,
                         bool has_arg, size_t max_length,
                         AccessLogHeaderTable* table, const std::string& where,
                         std::vector<std::string>* warnings) {
  Operator op;
  op.max_length = max_length;
  for (const NamedOp& n : kOperators) {
    if (n.name == name) op.kind = n.kind;
  }
  std::string shown = absl::StrCat("%", std::string(name), "%");
  switch (op.kind) {
    case OpKind::kUnknown:
      warnings->push_back(absl::StrCat(where, ": command operator ", shown,
                                       " is not supported; it prints \"-\""));
      return op;
    case OpKind::kRequestHeader:
    case OpKind::kResponseHeader:
    case OpKind::kTrailer: {
      HeaderSource source =
          op.kind == OpKind::kRequestHeader
              ? HeaderSource::kRequest
              : (op.kind == OpKind::kResponseHeader ? HeaderSource::kResponse
                                                    : HeaderSource::kTrailer);
      if (!has_arg || arg.empty()) {
        warnings->push_back(
            absl::StrCat(where, ": ", shown, " needs a header name, e.g. ",
                         std::string(name), "(USER-AGENT); it prints \"-\""));
        op.kind = OpKind::kUnknown;
        return op;
      }
      size_t q = arg.find('?');
      op.header =
          CompileHeader(source, arg.substr(0, q), table, where, warnings);
      if (q != std::string_view::npos) {
        op.has_alternate = true;
        op.alternate =
            CompileHeader(source, arg.substr(q + 1), table, where, warnings);
      }
      return op;
    }
    case OpKind::kStartTime:
      op.time = CompileTimeFormat(
          has_arg && !arg.empty() ? arg
                                  : std::string_view("%Y-%m-%dT%H:%M:%S.%3fZ"));
      return op;
    default:
      if (has_arg) {
        warnings->push_back(absl::StrCat(where, ": ", shown,
                                         " takes no argument; it is ignored"));
      }
      return op;
  }
}

void PushLiteral(std::string* literal, std::vector<Piece>* out) {
  if (literal->empty()) return;
  Piece p;
  p.literal = std::move(*literal);
  out->push_back(std::move(p));
  literal->clear();
}

// Splits a format string into literal and operator pieces. Text that
// looks like the start of an operator but is not one stays literal.
std::vector<Piece> CompilePieces(std::string_view f,
                                 AccessLogHeaderTable* table,
                                 const std::string& where,
                                 std::vector<std::string>* warnings) {
  std::vector<Piece> out;
  std::string literal;
  size_t i = 0;
  while (i < f.size()) {
    if (f[i] != '%') {
      literal.push_back(f[i++]);
      continue;
    }
    size_t j = i + 1;
    while (j < f.size() && IsNameChar(f[j])) ++j;
    std::string_view name = f.substr(i + 1, j - i - 1);
    if (name.empty()) {
      literal.push_back(f[i++]);
      continue;
    }
    std::string_view arg;
    bool has_arg = false;
    bool ok = true;
    if (j < f.size() && f[j] == '(') {
      size_t close = f.find(')', j);
      if (close == std::string_view::npos) {
        ok = false;
      } else {
        arg = f.substr(j + 1, close - j - 1);
        has_arg = true;
        j = close + 1;
      }
    }
    size_t max_length = 0;
    if (ok && j < f.size() && f[j] == ':') {
      size_t k = j + 1;
      while (k < f.size() && IsDigit(f[k])) {
        max_length = max_length * 10 + static_cast<size_t>(f[k] - '0');
        if (max_length > 1000000) max_length = 1000000;
        ++k;
      }
      ok = k > j + 1;
      j = k;
    }
    if (!ok || j >= f.size() || f[j] != '%') {
      warnings->push_back(absl::StrCat(
          where, ": \"", std::string(f.substr(i, std::min<size_t>(j - i, 40))),
          "\" is not a complete command operator (%NAME(arg):length%); it is "
          "printed as text"));
      literal.push_back(f[i++]);
      continue;
    }
    PushLiteral(&literal, &out);
    Piece p;
    p.is_operator = true;
    p.op =
        CompileOperator(name, arg, has_arg, max_length, table, where, warnings);
    out.push_back(std::move(p));
    i = j + 1;
  }
  PushLiteral(&literal, &out);
  return out;
}

struct Value {
  enum Type { kMissing, kString, kNumber } type = kMissing;
  std::string_view s;
  int64_t n = 0;
};

Value Str(std::string_view s) {
  Value v;
  if (!s.empty()) {
    v.type = Value::kString;
    v.s = s;
  }
  return v;
}

Value Num(int64_t n) {
  Value v;
  if (n >= 0) {
    v.type = Value::kNumber;
    v.n = n;
  }
  return v;
}

std::string_view HeaderValue(const HeaderRef& ref, const AccessLogEntry& e,
                             const AccessLogHeaderTable& table) {
  switch (ref.pseudo) {
    case Pseudo::kMethod:
      return e.method;
    case Pseudo::kPath:
      return e.path;
    case Pseudo::kAuthority:
      return e.authority;
    case Pseudo::kScheme:
      return e.scheme;
    case Pseudo::kNone:
      break;
  }
  if (ref.sent == Sent::kRequestId && !e.request_id.empty())
    return e.request_id;
  if (ref.sent == Sent::kForwardedFor && !e.forwarded_for.empty())
    return e.forwarded_for;
  if (ref.slot == UINT32_MAX || e.headers == nullptr) return {};
  return e.headers->Get(table, ref.slot);
}

constexpr size_t kScratch = 1024;

Value Eval(const Operator& op, const AccessLogEntry& e,
           const AccessLogHeaderTable& table, char* scratch) {
  Value v;
  switch (op.kind) {
    case OpKind::kUnknown:
    case OpKind::kRequestedServerName:  // no TLS on this path: no SNI
      return v;
    case OpKind::kStartTime:
      if (e.start_time.time_since_epoch().count() == 0) return v;
      return Str(std::string_view(
          scratch, FormatTime(op.time, e.start_time, scratch, kScratch)));
    case OpKind::kRequestHeader:
    case OpKind::kResponseHeader:
    case OpKind::kTrailer: {
      std::string_view s = HeaderValue(op.header, e, table);
      if (s.empty() && op.has_alternate)
        s = HeaderValue(op.alternate, e, table);
      return Str(s);
    }
    case OpKind::kResponseCode:
      return Num(e.response_code);
    case OpKind::kResponseFlags: {
      size_t len = 0;
      for (const auto& [flag, name] : kFlagNames) {
        if ((e.response_flags & flag) == 0) continue;
        if (len > 0) scratch[len++] = ',';
        name.copy(scratch + len, name.size());
        len += name.size();
      }
      // Envoy prints "-" for no flags, in JSON too.
      if (len == 0) return Str("-");
      return Str(std::string_view(scratch, len));
    }
    case OpKind::kResponseCodeDetails:
      return Str(e.response_code_details);
    case OpKind::kBytesReceived:
      return Num(e.bytes_received);
    case OpKind::kBytesSent:
      return Num(e.bytes_sent);
    case OpKind::kDuration:
      return Num(e.duration_ms);
    case OpKind::kRequestDuration:
      return Num(e.request_duration_ms);
    case OpKind::kResponseDuration:
      return Num(e.response_duration_ms);
    case OpKind::kUpstreamHost:
      return Str(e.upstream_host);
    case OpKind::kUpstreamCluster:
      return Str(e.upstream_cluster);
    case OpKind::kDownstreamRemoteAddress:
      return Str(e.downstream_remote_address);
    case OpKind::kDownstreamRemoteAddressWithoutPort:
      return Str(e.downstream_remote_address_without_port);
    case OpKind::kDownstreamLocalAddress:
      return Str(e.downstream_local_address);
    case OpKind::kProtocol:
      return Str(e.protocol);
    case OpKind::kUpstreamTransportFailureReason:
      return Str(e.upstream_transport_failure_reason);
    case OpKind::kRouteName:
      return Str(e.route_name);
    case OpKind::kConnectionId:
      return e.connection_id == 0 ? v
                                  : Num(static_cast<int64_t>(e.connection_id));
    case OpKind::kHostname:
      return Str(Hostname());
  }
  return v;
}

std::string_view Truncated(std::string_view s, size_t max_length) {
  return max_length > 0 && s.size() > max_length ? s.substr(0, max_length) : s;
}

// As text: "-" when missing.
void AppendText(const Value& v, size_t max_length, bool json_escape,
                std::string* out) {
  std::string_view s;
  switch (v.type) {
    case Value::kMissing:
      s = "-";
      break;
    case Value::kNumber:
      AppendNumber(v.n, out);
      return;
    case Value::kString:
      s = Truncated(v.s, max_length);
      break;
  }
  if (json_escape) {
    AppendJsonEscaped(s, out);
  } else {
    out->append(s);
  }
}

}  // namespace

AccessLogFormat::AccessLogFormat() = default;
AccessLogFormat::~AccessLogFormat() = default;

std::shared_ptr<const AccessLogFormat> AccessLogFormat::Text(
    std::string_view format, AccessLogHeaderTable* headers,
    std::vector<std::string>* warnings) {
  auto f = std::make_shared<AccessLogFormat>();
  f->pieces_ =
      CompilePieces(format, headers, std::string("format.text"), warnings);
  if (format.empty() || format.back() != '\n') {
    if (!f->pieces_.empty() && !f->pieces_.back().is_operator) {
      f->pieces_.back().literal.push_back('\n');
    } else {
      Piece nl;
      nl.literal = "\n";
      f->pieces_.push_back(std::move(nl));
    }
  }
  return f;
}

std::shared_ptr<const AccessLogFormat> AccessLogFormat::Json(
    const std::vector<std::pair<std::string, std::string>>& fields,
    AccessLogHeaderTable* headers, std::vector<std::string>* warnings) {
  auto f = std::make_shared<AccessLogFormat>();
  f->json_ = true;
  std::vector<std::string> keys;
  for (const auto& [key, value] : fields) {
    std::string where = absl::StrCat("format.json key \"", key, "\"");
    JsonField field;
    field.prefix.push_back('"');
    AppendJsonEscaped(key, &field.prefix);
    field.prefix.append("\":");
    field.pieces = CompilePieces(value, headers, where, warnings);
    field.typed = field.pieces.size() == 1 && field.pieces[0].is_operator;
    auto same = std::find(keys.begin(), keys.end(), key);
    if (same != keys.end()) {
      warnings->push_back(
          absl::StrCat(where, " appears twice; the last value is used"));
      f->fields_[same - keys.begin()] = std::move(field);
    } else {
      keys.push_back(key);
      f->fields_.push_back(std::move(field));
    }
  }
  return f;
}

void AccessLogFormat::Append(const AccessLogEntry& entry,
                             const AccessLogHeaderTable& headers,
                             std::string* out) const {
  char scratch[kScratch];
  if (!json_) {
    for (const Piece& p : pieces_) {
      if (!p.is_operator) {
        out->append(p.literal);
        continue;
      }
      AppendText(Eval(p.op, entry, headers, scratch), p.op.max_length, false,
                 out);
    }
    return;
  }
  out->push_back('{');
  bool first = true;
  for (const JsonField& field : fields_) {
    if (!first) out->push_back(',');
    first = false;
    out->append(field.prefix);
    if (field.typed) {
      const Operator& op = field.pieces[0].op;
      Value v = Eval(op, entry, headers, scratch);
      switch (v.type) {
        case Value::kMissing:
          out->append("null");
          break;
        case Value::kNumber:
          AppendNumber(v.n, out);
          break;
        case Value::kString:
          out->push_back('"');
          AppendJsonEscaped(Truncated(v.s, op.max_length), out);
          out->push_back('"');
          break;
      }
      continue;
    }
    out->push_back('"');
    for (const Piece& p : field.pieces) {
      if (!p.is_operator) {
        AppendJsonEscaped(p.literal, out);
        continue;
      }
      AppendText(Eval(p.op, entry, headers, scratch), p.op.max_length, true,
                 out);
    }
    out->push_back('"');
  }
  out->append("}\n");
}

}  // namespace nodemesh::proxy
