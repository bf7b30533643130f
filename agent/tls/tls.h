#pragma once

// Mutual TLS for the tunnel between nodes: certificates (loaded from files
// or minted from the node's intermediate CA), SSL contexts, peer identities
// and non-blocking TLS over a socket. OpenSSL 3; TLS 1.3 only.
//
// The one include for users of the library; each concept has its header.

#include "agent/tls/certificate.h"            // IWYU pragma: export
#include "agent/tls/certificate_authority.h"  // IWYU pragma: export
#include "agent/tls/identity.h"               // IWYU pragma: export
#include "agent/tls/identity_store.h"         // IWYU pragma: export
#include "agent/tls/tls_context.h"            // IWYU pragma: export
#include "agent/tls/tls_socket.h"             // IWYU pragma: export
