#pragma once

// A BIO over a stream socket that writes with send(MSG_NOSIGNAL).
// OpenSSL's own socket BIO uses write(), which raises SIGPIPE when the
// peer has gone, and the agent does not ignore SIGPIPE.

#include <openssl/bio.h>

namespace nodemesh::tls {

// A new BIO over `fd` (not owned, never closed), or null with the reason in
// OpenSSL's error queue. Retryable errors (EAGAIN, EINTR) set the BIO's
// retry flags, so SSL_get_error reports WANT_READ or WANT_WRITE.
BIO* NewSocketBio(int fd);

}  // namespace nodemesh::tls
