#include "agent/tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include <openssl/x509.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/tls/openssl_error.h"

namespace nodemesh::tls {
namespace {

constexpr unsigned char kSessionIdContext[] = "nodemesh";

struct X509StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};

// The server's ALPN list (wire format) lives as long as its context: it is
// ex_data of the context, freed with it.
void FreeAlpnWire(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/,
                  int /*idx*/, long /*argl*/, void* /*argp*/) {
  delete static_cast<std::string*>(ptr);
}

int AlpnWireIndex() {
  static const int index =
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeAlpnWire);
  return index;
}

int SelectAlpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
               const unsigned char* in, unsigned int inlen, void* arg) {
  const auto* wire = static_cast<const std::string*>(arg);
  unsigned char* selected = nullptr;
  unsigned char selected_len = 0;
  if (SSL_select_next_proto(
          &selected, &selected_len,
          reinterpret_cast<const unsigned char*>(wire->data()),
          static_cast<unsigned int>(wire->size()), in,
          inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
  }
  *out = selected;
  *outlen = selected_len;
  return SSL_TLSEXT_ERR_OK;
}

// The ALPN callback runs only when the client offers ALPN; a client that
// offers none is refused here, before anything else.
int RequireAlpn(SSL* ssl, int* alert, void* /*arg*/) {
  const unsigned char* data = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(
          ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &data,
          &len) == 1) {
    return SSL_CLIENT_HELLO_SUCCESS;
  }
  *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
  return SSL_CLIENT_HELLO_ERROR;
}

int OnServerName(SSL* ssl, int* /*alert*/, void* arg) {
  auto* select = static_cast<std::function<SSL_CTX*(std::string_view)>*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr || select == nullptr || !*select) {
    return SSL_TLSEXT_ERR_OK;
  }
  SSL_CTX* next = (*select)(std::string_view(name));
  if (next == nullptr || next == SSL_get_SSL_CTX(ssl)) {
    return SSL_TLSEXT_ERR_OK;
  }
  if (SSL_set_SSL_CTX(ssl, next) != next) return SSL_TLSEXT_ERR_ALERT_FATAL;
  // SSL_set_SSL_CTX switches certificate and key only: the SSL keeps the
  // verify mode of the context it was made from. Take the new context's.
  SSL_set_verify(ssl, SSL_CTX_get_verify_mode(next),
                 SSL_CTX_get_verify_callback(next));
  if (SSL_set1_verify_cert_store(ssl, SSL_CTX_get_cert_store(next)) != 1) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

absl::StatusOr<SslCtxPtr> MakeContext(const ContextOptions& options,
                                      bool server) {
  const char* side = server ? "server" : "client";
  auto failed = [&](std::string_view step) {
    return absl::InternalError(
        absl::StrCat("tls: ", side,
                     " context: ", absl::string_view(step.data(), step.size()),
                     ": ", TakeOpenSslErrors()));
  };
  if (options.alpn.size() > 255) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls: ", side, " context: ALPN protocol longer than 255 bytes"));
  }
  ERR_clear_error();
  SSL_CTX* raw =
      SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (raw == nullptr) return failed("SSL_CTX_new");
  SslCtxPtr ctx(raw, SSL_CTX_free);

  const bool open = !options.alpn_any_of.empty();
  if (SSL_CTX_set_min_proto_version(
          raw, open ? TLS1_2_VERSION : TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(raw, TLS1_3_VERSION) != 1) {
    return failed("TLS 1.3 only");
  }
  // No resumption: every connection proves its certificate afresh.
  // SSL_OP_NO_TICKET alone still sends (stateful) TLS 1.3 tickets.
  SSL_CTX_set_options(raw, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(raw, 0);
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
  // Buffers stay with the connection (RELEASE_BUFFERS would free and
  // allocate them around every burst: a tunnel connection carries many
  // requests). Read-ahead with a 64 KiB buffer takes several records per
  // read(2) when bytes stream in.
  SSL_CTX_set_mode(
      raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(raw, 1);
  SSL_CTX_set_default_read_buffer_len(raw, 64 * 1024);
  // AES-128-GCM first (as BoringSSL and Envoy order them): the same AEAD
  // strength class at less CPU per byte than AES-256.
  if (SSL_CTX_set_ciphersuites(raw,
                               "TLS_AES_128_GCM_SHA256:"
                               "TLS_CHACHA20_POLY1305_SHA256:"
                               "TLS_AES_256_GCM_SHA384") != 1) {
    return failed("cipher suites");
  }
  if (server &&
      SSL_CTX_set_session_id_context(raw, kSessionIdContext,
                                     sizeof(kSessionIdContext) - 1) != 1) {
    return failed("session id context");
  }

  if (const Certificate* cert = options.certificate; cert != nullptr) {
    if (cert->leaf == nullptr || cert->key == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tls: ", side, " context: the certificate has no leaf or no key"));
    }
    std::unique_ptr<STACK_OF(X509), X509StackFree> chain(sk_X509_new_null());
    if (chain == nullptr) return failed("chain");
    for (const X509Ptr& c : cert->chain) {
      if (sk_X509_push(chain.get(), c.get()) == 0) return failed("chain");
    }
    // Takes its own references to leaf, key and each chain certificate.
    if (SSL_CTX_use_cert_and_key(raw, cert->leaf.get(), cert->key.get(),
                                 chain.get(), /*override=*/1) != 1 ||
        SSL_CTX_check_private_key(raw) != 1) {
      return failed("certificate and key");
    }
  }

  if (options.trust != nullptr) {
    // set1: the context takes a reference; the caller keeps its own.
    SSL_CTX_set1_cert_store(raw, options.trust);
    int mode = SSL_VERIFY_PEER;
    if (server && options.require_peer_cert) {
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(raw, mode, nullptr);
  } else {
    SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
  }

  if (open) {
    std::string wire;
    for (const std::string& p : options.alpn_any_of) {
      if (p.empty() || p.size() > 255)
        return absl::InvalidArgumentError("tls: bad ALPN protocol name");
      wire += static_cast<char>(p.size());
      wire += p;
    }
    auto* owned = new std::string(std::move(wire));
    if (SSL_CTX_set_ex_data(raw, AlpnWireIndex(), owned) != 1) {
      delete owned;
      return failed("ALPN");
    }
    if (server) {
      SSL_CTX_set_alpn_select_cb(raw, SelectAlpn, owned);
    } else if (SSL_CTX_set_alpn_protos(
                   raw, reinterpret_cast<const unsigned char*>(owned->data()),
                   static_cast<unsigned int>(owned->size())) != 0) {
      return failed("ALPN");
    }
  } else if (!options.alpn.empty()) {
    std::string wire = absl::StrCat(
        std::string(1, static_cast<char>(options.alpn.size())), options.alpn);
    if (server) {
      auto* owned = new std::string(std::move(wire));
      if (SSL_CTX_set_ex_data(raw, AlpnWireIndex(), owned) != 1) {
        delete owned;
        return failed("ALPN");
      }
      SSL_CTX_set_alpn_select_cb(raw, SelectAlpn, owned);
      SSL_CTX_set_client_hello_cb(raw, RequireAlpn, nullptr);
    } else if (SSL_CTX_set_alpn_protos(
                   raw, reinterpret_cast<const unsigned char*>(wire.data()),
                   static_cast<unsigned int>(wire.size())) != 0) {
      return failed("ALPN");  // 0 is success here
    }
  }
  return ctx;
}

}  // namespace

absl::StatusOr<SslCtxPtr> MakeServerContext(const ContextOptions& options) {
  return MakeContext(options, /*server=*/true);
}

absl::StatusOr<SslCtxPtr> MakeClientContext(const ContextOptions& options) {
  return MakeContext(options, /*server=*/false);
}

void SetServerNameSelector(
    SSL_CTX* ctx, std::function<SSL_CTX*(std::string_view sni)>* select) {
  SSL_CTX_set_tlsext_servername_callback(ctx, OnServerName);
  SSL_CTX_set_tlsext_servername_arg(ctx, select);
}

}  // namespace nodemesh::tls
