#pragma once

// Access log lines in App Mesh's `logging.accessLog.file.format`: Envoy
// command operators (%START_TIME%, %REQ(X?Y):Z%, ...) in a text format or as
// the values of a JSON format. A format is compiled once per config into
// literal and operator pieces; a request only evaluates them and appends
// into a caller's buffer.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/http/header_list.h"
#include "agent/proxy/local_reply.h"

namespace nodemesh::proxy {

// %RESPONSE_FLAGS%, printed in this order joined by ",", "-" when none.
enum ResponseFlag : uint32_t {
  kFlagNoHealthyUpstream = 1u << 0,                // UH
  kFlagUpstreamRequestTimeout = 1u << 1,           // UT
  kFlagUpstreamConnectFailure = 1u << 2,           // UF
  kFlagUpstreamConnectionTermination = 1u << 3,    // UC
  kFlagUpstreamOverflow = 1u << 4,                 // UO
  kFlagNoRoute = 1u << 5,                          // NR
  kFlagDownstreamConnectionTermination = 1u << 6,  // DC
  kFlagUpstreamRetryLimitExceeded = 1u << 7,       // URX
  kFlagStreamIdleTimeout = 1u << 8,                // SI
  kFlagDownstreamProtocolError = 1u << 9,          // DPE
  kFlagUpstreamProtocolError = 1u << 10,           // UPE
};

// The Envoy flag and %RESPONSE_CODE_DETAILS% of a local reply.
uint32_t ReasonResponseFlags(LocalReason reason);
std::string_view ReasonCodeDetails(LocalReason reason);

enum class HeaderSource : uint8_t { kRequest, kResponse, kTrailer };

// The header fields some format of a config reads, each with a slot: only
// those are copied out of a message while it is in flight.
class AccessLogHeaderTable {
 public:
  AccessLogHeaderTable();
  // The slot of `name` (case-insensitive) in `source`; the same name twice
  // gets the same slot.
  uint32_t Slot(HeaderSource source, std::string_view name);
  size_t size() const { return slots_.size(); }
  HeaderSource source(uint32_t slot) const { return slots_[slot].first; }
  const std::string& name(uint32_t slot) const { return slots_[slot].second; }
  // Unique per table: headers captured under one config are not read
  // through another's slots.
  uint64_t id() const { return id_; }

 private:
  uint64_t id_;
  std::vector<std::pair<HeaderSource, std::string>> slots_;
};

// Copies of the slotted fields of one exchange, in one buffer whose
// capacity is kept between requests.
class CapturedHeaders {
 public:
  // Forgets the previous exchange and starts one under `table`.
  void Reset(const AccessLogHeaderTable& table);
  // Copies the fields of `headers` that `table` has slots for in
  // `source`; nothing when `table` is not the one of Reset.
  void Capture(const AccessLogHeaderTable& table, HeaderSource source,
               const http::HeaderList& headers);
  // The value in `slot` when it was captured under `table`; empty when
  // the message had no such field.
  std::string_view Get(const AccessLogHeaderTable& table, uint32_t slot) const;

 private:
  static constexpr uint32_t kMissing = UINT32_MAX;
  uint64_t table_id_ = 0;
  std::string data_;
  std::vector<std::pair<uint32_t, uint32_t>> spans_;  // offset, length
};

// What one request (or TCP connection) did. Empty views and negative
// numbers are missing values ("-" in text, null in JSON).
struct AccessLogEntry {
  // The calling virtual node, "mesh/virtualNode", whose Envoy saw this
  // request as egress: it is logged to that node's path too. Empty when
  // unknown.
  std::string_view source;

  std::chrono::system_clock::time_point start_time;
  std::string_view method;
  std::string_view path;  // the request target as received
  std::string_view authority;
  std::string_view scheme;
  std::string_view protocol;  // "HTTP/1.1"; empty for TCP
  int response_code = -1;
  uint32_t response_flags = 0;
  std::string_view response_code_details;
  int64_t bytes_received = -1;  // request body (TCP: all bytes)
  int64_t bytes_sent = -1;      // response body (TCP: all bytes)
  int64_t duration_ms = -1;
  int64_t request_duration_ms = -1;   // to the request's last byte
  int64_t response_duration_ms = -1;  // to the response's first byte
  std::string_view upstream_host;
  std::string_view upstream_cluster;
  std::string_view upstream_transport_failure_reason;
  std::string_view route_name;
  std::string_view downstream_remote_address;
  std::string_view downstream_remote_address_without_port;
  std::string_view downstream_local_address;
  uint64_t connection_id = 0;  // 0: missing
  // The values the proxy sent upstream (generated or appended), which
  // REQ(X-REQUEST-ID) and REQ(X-FORWARDED-FOR) print, as Envoy's do.
  std::string_view request_id;
  std::string_view forwarded_for;
  const CapturedHeaders* headers = nullptr;
};

// Envoy's default format (without %RESPONSE_FLAGS%'s Envoy-only flags).
inline constexpr std::string_view kDefaultAccessLogFormat =
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% "
    "%PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% "
    "%BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "
    "\"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" "
    "\"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

class AccessLogFormat {
 public:
  struct Operator;
  struct Piece;
  struct JsonField;

  // A text format. Header names go into `headers`; operators this proxy
  // does not know print "-" and add a line to `warnings`. A format that
  // does not end in a newline gets one: a sink holds one line per request.
  static std::shared_ptr<const AccessLogFormat> Text(
      std::string_view format, AccessLogHeaderTable* headers,
      std::vector<std::string>* warnings);
  // A JSON format: one object per line with the keys in the given order.
  // A value that is a single operator is typed (numbers, null when
  // missing); one that mixes text and operators is a string.
  static std::shared_ptr<const AccessLogFormat> Json(
      const std::vector<std::pair<std::string, std::string>>& fields,
      AccessLogHeaderTable* headers, std::vector<std::string>* warnings);

  AccessLogFormat();
  ~AccessLogFormat();
  AccessLogFormat(const AccessLogFormat&) = delete;
  AccessLogFormat& operator=(const AccessLogFormat&) = delete;

  // Appends one line (newline included) for `entry`; `headers` is the
  // table the format was compiled against.
  void Append(const AccessLogEntry& entry, const AccessLogHeaderTable& headers,
              std::string* out) const;

 private:
  bool json_ = false;
  std::vector<Piece> pieces_;      // text
  std::vector<JsonField> fields_;  // json
};

}  // namespace nodemesh::proxy
