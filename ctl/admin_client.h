#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace nodemesh::ctl {

struct AdminReply {
  int status = 0;
  std::string body;
};

// One blocking HTTP/1.1 request to the agent, parsed with the project's
// codec. `agent` is "http://127.0.0.1:15000" (the admin address) or
// "unix:/run/nodemesh/agent.sock" (the root-only control socket).
absl::StatusOr<AdminReply> Call(const std::string& agent,
                                const std::string& method,
                                const std::string& path,
                                const std::string& body = "");

inline absl::StatusOr<AdminReply> Get(const std::string& agent,
                                      const std::string& path) {
  return Call(agent, "GET", path);
}

}  // namespace nodemesh::ctl
