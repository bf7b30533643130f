#pragma once

// TLS termination for a VirtualGateway listener with tls (clients from
// outside the mesh): the handshake (ALPN h2 or http/1.1), the listener's
// validation of client certificates, then the plaintext handed to an
// HttpSession through a socketpair, which serves it like any client —
// an h2 client's preface switches it to HTTP/2 exactly as over cleartext.
// PERMISSIVE listeners also serve plaintext: the first byte tells (a TLS
// record starts with 0x16).

#include <string>

#include "agent/compile/tunnel_config.h"
#include "agent/net/unique_fd.h"
#include "agent/proxy/http_session.h"
#include "agent/proxy/worker.h"
#include "agent/tls/tls.h"

namespace nodemesh::proxy {

class TlsDownstream final : public WorkerObject {
 public:
  // Counted in downstream_cx_active already (as the session will be).
  TlsDownstream(Worker* worker, net::UniqueFd fd, ConnectionInfo info,
                const compile::GatewayTls& config);
  ~TlsDownstream() override;

  void Start();
  void OnTick(Clock::time_point now) override;
  void Abort() override { Close(); }
  void OnFlush() override { Pump(); }

 private:
  void OnEvents(uint32_t events);
  void OnLocalEvents(uint32_t events);
  void Sniff();
  void Handshake();
  void Pump();
  void UpdateInterest();
  void Fail(std::string_view why);
  void Close();

  Worker* const worker_;
  net::UniqueFd fd_;
  ConnectionInfo info_;
  const model::TlsMode mode_;
  tls::SslCtxPtr context_;
  std::vector<std::string> sans_;
  std::unique_ptr<tls::TlsSocket> tls_;
  net::UniqueFd local_;  // our end of the session's socketpair
  std::string to_local_, to_client_;
  size_t to_local_off_ = 0, to_client_off_ = 0;
  uint32_t interest_ = 0, local_interest_ = 0;
  bool client_eof_ = false, local_eof_ = false, local_shut_ = false;
  bool session_started_ = false;
  Clock::time_point started_;
};

}  // namespace nodemesh::proxy
