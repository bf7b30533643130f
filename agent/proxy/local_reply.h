#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nodemesh::proxy {

// Why the proxy answered a request itself. Each has a status, a token for
// the `x-nodemesh-reason` header and metrics, and a one-line body.
enum class LocalReason {
  kBadRequest,         // 400/431/501/505: the request could not be parsed
  kNoRoute,            // 404: no virtual service or route matched
  kNoHealthyUpstream,  // 503: the target has no endpoints
  kConnectFailure,     // 503: every attempt failed to connect
  kUpstreamReset,      // 503: the upstream closed before answering
  kBadResponse,        // 502: the upstream's response was malformed
  kRequestTimeout,     // 504: the route's perRequest timeout expired
  kPerTryTimeout,      // 504: the last attempt's perRetryTimeout expired
  kIdleTimeout,        // 504: nothing moved for the route's idle timeout
  kOverflow,           // 503: a limit of this proxy was reached
  kCount,
};

std::string_view ReasonToken(LocalReason reason);
int ReasonStatus(LocalReason reason);
// The body AppendLocalReply sends for `reason`.
std::string_view ReasonBody(LocalReason reason);

// Appends a complete response: `status` (0: the reason's own), the reason
// header, a short text body, and "Connection: close" when `close`.
void AppendLocalReply(LocalReason reason, int status, bool close,
                      bool head_request, std::string* out);

// The same for a gRPC request: 200 with no body and the status in
// grpc-status/grpc-message (what gRPC clients read; Envoy answers gRPC
// requests alike). Timeouts are DEADLINE_EXCEEDED, a missing route
// UNIMPLEMENTED, the rest UNAVAILABLE.
void AppendGrpcLocalReply(LocalReason reason, bool close, std::string* out);
int GrpcStatusFor(LocalReason reason);

// A gRPC timeout header value ("100m", "5S", ...: digits and a unit of
// H, M, S, m, u, n) as milliseconds, rounded up; nullopt when malformed.
std::optional<int64_t> ParseGrpcTimeout(std::string_view value);

}  // namespace nodemesh::proxy
