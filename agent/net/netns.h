#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"

namespace nodemesh::net {

// Runs `fn` on a short-lived thread that has joined the network namespace
// at `path` (e.g. /var/run/netns/pod1 or /proc/PID/ns/net); the caller's own
// namespace never changes. Sockets `fn` creates stay in that namespace:
// this is how the agent opens listeners inside a pod (ztunnel's in-pod
// mode). Returns fn's status, or why the namespace could not be entered.
absl::Status RunInNetns(const std::string& path,
                        const std::function<absl::Status()>& fn);

}  // namespace nodemesh::net
