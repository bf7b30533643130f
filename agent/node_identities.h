#pragma once

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "agent/agent_config.h"
#include "agent/net/event_loop.h"
#include "agent/stats/prometheus_text.h"
#include "agent/tls/tls.h"
#include "nlohmann/json.hpp"

namespace nodemesh {

// This node's certificate authority (--ca_bundle, --signing_cert,
// --signing_key) and the leaves it mints for the identities of local
// workloads and gateways, renewed at half their life on the main loop.
class NodeIdentities {
 public:
  // Null (and OK) when no CA is configured: the node then has no
  // identities, and endpoints on other nodes are unreachable.
  static absl::StatusOr<std::unique_ptr<NodeIdentities>> Create(
      const AgentConfig& config);

  tls::IdentityStore* store() { return &store_; }
  X509_STORE* trust() const { return ca_->trust(); }
  // Checks for renewals every second from now on.
  // `renewed` runs after certificates were renewed.
  void StartRotation(net::EventLoop* loop, std::function<void()> renewed);

  // nodemesh_tls_* metrics; GET /certs.
  void RenderMetrics(stats::PrometheusText* out) const;
  nlohmann::json Json() const;

 private:
  NodeIdentities(std::unique_ptr<tls::CertificateAuthority> ca,
                 std::chrono::seconds lifetime)
      : ca_(std::move(ca)), store_(ca_.get(), lifetime) {}
  void Rotate(net::EventLoop* loop);
  std::function<void()> renewed_;

  std::unique_ptr<tls::CertificateAuthority> ca_;
  tls::IdentityStore store_;
};

}  // namespace nodemesh
