#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace nodemesh::ctl {

struct AdminReply {
  int status = 0;
  std::string body;
};

// One blocking HTTP/1.1 GET to the agent's admin endpoint, e.g.
// Get("http://127.0.0.1:15000", "/ready"). Parsed with the project's codec.
absl::StatusOr<AdminReply> Get(const std::string& agent_url,
                               const std::string& path);

}  // namespace nodemesh::ctl
