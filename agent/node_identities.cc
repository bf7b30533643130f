#include "agent/node_identities.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace nodemesh {
namespace {

constexpr auto kRotationCheck = std::chrono::seconds(1);

double UnixSeconds(tls::SystemClock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string SerialOf(X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (bn == nullptr) return "";
  char* hex = BN_bn2hex(bn);
  std::string out = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NodeIdentities>> NodeIdentities::Create(
    const AgentConfig& config) {
  if (config.signing_cert.empty()) {
    LOG(INFO) << "no --signing_cert: this node has no identities; endpoints "
                 "on other nodes are unreachable and the tunnel port is "
                 "closed";
    return std::unique_ptr<NodeIdentities>();
  }
  auto ca = tls::CertificateAuthority::Load(
      config.ca_bundle, config.signing_cert, config.signing_key);
  if (!ca.ok()) return ca.status();
  LOG(INFO) << "identities: trust domain " << config.trust_domain
            << ", leaves signed by " << config.signing_cert << ", valid "
            << config.cert_lifetime_seconds << " s, renewed at half life";
  return std::unique_ptr<NodeIdentities>(new NodeIdentities(
      std::move(*ca), std::chrono::seconds(config.cert_lifetime_seconds)));
}

void NodeIdentities::StartRotation(net::EventLoop* loop,
                                   std::function<void()> renewed) {
  renewed_ = std::move(renewed);
  loop->AddTimer(kRotationCheck, [this, loop] { Rotate(loop); });
}

void NodeIdentities::Rotate(net::EventLoop* loop) {
  int n = store_.RotateDue(tls::SystemClock::now());
  if (n > 0) {
    LOG(INFO) << "identities: renewed " << n << " certificate(s)";
    if (renewed_) renewed_();
  }
  loop->AddTimer(kRotationCheck, [this, loop] { Rotate(loop); });
}

void NodeIdentities::RenderMetrics(stats::PrometheusText* out) const {
  auto all = store_.All();
  out->Family("nodemesh_tls_certificates", "gauge",
              "Leaf certificates this node holds for its identities");
  out->Sample("nodemesh_tls_certificates", {},
              static_cast<uint64_t>(all.size()));
  out->Family("nodemesh_tls_certificate_rotations_total", "counter",
              "Leaf certificates renewed (at half their life)");
  out->Sample("nodemesh_tls_certificate_rotations_total", {},
              store_.rotations());
  out->Family("nodemesh_tls_certificate_expiry_timestamp_seconds", "gauge",
              "When each identity's current certificate expires (unix time)");
  for (const auto& c : all)
    out->Sample("nodemesh_tls_certificate_expiry_timestamp_seconds",
                {{"identity", c->spiffe_id}},
                UnixSeconds(c->certificate.not_after));
}

nlohmann::json NodeIdentities::Json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& c : store_.All()) {
    list.push_back({{"identity", c->spiffe_id},
                    {"serial", SerialOf(c->certificate.leaf.get())},
                    {"not_before", UnixSeconds(c->certificate.not_before)},
                    {"not_after", UnixSeconds(c->certificate.not_after)}});
  }
  return {{"certificates", list}, {"rotations", store_.rotations()}};
}

}  // namespace nodemesh
