#pragma once

// OpenSSL reports failures through a per-thread error queue.

#include <string>

namespace nodemesh::tls {

// The queued errors of this thread as one line ("; " between them), oldest
// first; the queue is left empty. "no detail from OpenSSL" when empty.
std::string TakeOpenSslErrors();

}  // namespace nodemesh::tls
