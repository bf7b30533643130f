#include "agent/proxy/local_reply.h"

#include <array>

#include "agent/http/http1_writer.h"

namespace nodemesh::proxy {
namespace {

struct ReasonInfo {
  std::string_view token;
  int status;
  std::string_view body;
};

constexpr std::array<ReasonInfo, static_cast<size_t>(LocalReason::kCount)>
    kReasons = {{
        {"bad_request", 400, "bad request\n"},
        {"no_route", 404, "no route matched this request\n"},
        {"no_healthy_upstream", 503, "no healthy endpoint for the target\n"},
        {"upstream_connect_failure", 503, "could not connect to an endpoint\n"},
        {"upstream_reset", 503, "the upstream closed before a response\n"},
        {"upstream_bad_response", 502,
         "the upstream's response was malformed\n"},
        {"request_timeout", 504, "the route's request timeout expired\n"},
        {"per_try_timeout", 504, "the route's per-retry timeout expired\n"},
        {"idle_timeout", 504, "the route's idle timeout expired\n"},
        {"overflow", 503, "the proxy is over a limit\n"},
    }};

}  // namespace

std::string_view ReasonToken(LocalReason reason) {
  return kReasons[static_cast<size_t>(reason)].token;
}

int ReasonStatus(LocalReason reason) {
  return kReasons[static_cast<size_t>(reason)].status;
}

std::string_view ReasonBody(LocalReason reason) {
  return kReasons[static_cast<size_t>(reason)].body;
}

void AppendLocalReply(LocalReason reason, int status, bool close,
                      bool head_request, std::string* out) {
  const ReasonInfo& info = kReasons[static_cast<size_t>(reason)];
  http::HeaderField fields[3] = {
      {"content-type", "text/plain"},
      {"x-nodemesh-reason", info.token},
      {"connection", "close"},
  };
  http::AppendResponse(
      status != 0 ? status : info.status,
      std::span<const http::HeaderField>(fields, close ? 3 : 2), info.body, out,
      head_request);
}

int GrpcStatusFor(LocalReason reason) {
  switch (reason) {
    case LocalReason::kRequestTimeout:
    case LocalReason::kPerTryTimeout:
    case LocalReason::kIdleTimeout:
      return 4;  // DEADLINE_EXCEEDED
    case LocalReason::kNoRoute:
      return 12;  // UNIMPLEMENTED
    case LocalReason::kBadRequest:
    case LocalReason::kBadResponse:
      return 13;  // INTERNAL
    case LocalReason::kOverflow:
      return 8;  // RESOURCE_EXHAUSTED
    default:
      return 14;  // UNAVAILABLE
  }
}

void AppendGrpcLocalReply(LocalReason reason, bool close, std::string* out) {
  const ReasonInfo& info = kReasons[static_cast<size_t>(reason)];
  char status[4];
  int code = GrpcStatusFor(reason);
  int n = 0;
  if (code >= 10) status[n++] = static_cast<char>('0' + code / 10);
  status[n++] = static_cast<char>('0' + code % 10);
  std::string_view message = info.body.substr(0, info.body.size() - 1);
  http::HeaderField fields[5] = {
      {"content-type", "application/grpc"},
      {"grpc-status", std::string_view(status, static_cast<size_t>(n))},
      {"grpc-message", message},
      {"x-nodemesh-reason", info.token},
      {"connection", "close"},
  };
  http::AppendResponse(
      200, std::span<const http::HeaderField>(fields, close ? 5 : 4), {}, out);
}

std::optional<int64_t> ParseGrpcTimeout(std::string_view value) {
  // At most 8 digits (gRPC's wire spec), then one unit.
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  int64_t n = 0;
  for (char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  switch (value.back()) {
    case 'H':
      return n * 3600 * 1000;
    case 'M':
      return n * 60 * 1000;
    case 'S':
      return n * 1000;
    case 'm':
      return n;
    case 'u':
      return (n + 999) / 1000;
    case 'n':
      return (n + 999999) / 1000000;
    default:
      return std::nullopt;
  }
}

}  // namespace nodemesh::proxy
