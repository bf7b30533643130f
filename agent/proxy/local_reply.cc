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

}  // namespace nodemesh::proxy
