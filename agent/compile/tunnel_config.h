#pragma once

// What the tunnel between nodes needs to know, compiled on the main thread
// from the model, the workload registry and the cluster's nodes, and
// published to the workers with their ProxySnapshot:
//  - which endpoints live on other nodes, and through which node's tunnel;
//  - the identity (SPIFFE ID) of every local caller and target;
//  - per local target, who may reach it (App Mesh backends as an
//    allow-list) and what its listener's TLS validation demands;
//  - per (caller, target), what the caller's clientPolicy tls demands of
//    the target's certificate.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "agent/compile/proxy_config.h"
#include "agent/model/snapshot.h"
#include "agent/net/socket.h"
#include "agent/tls/tls.h"
#include "agent/workload/workload.h"
#include "nlohmann/json.hpp"

namespace nodemesh::compile {

// One entry of <config_dir>/cluster/nodes.json (or, later, etcd).
struct ClusterNode {
  std::string name;
  std::string address;  // where its tunnel listens
  uint16_t tunnel_port = 15008;
  std::vector<std::string> workload_cidrs;
};
// [{"name", "address", "tunnelPort", "workloadCidrs"}]; errors name the
// entry and field.
absl::StatusOr<std::vector<ClusterNode>> ParseClusterNodes(
    const nlohmann::json& j);

// Trust material loaded from files the specs name (main thread).
using TrustStore = std::shared_ptr<X509_STORE>;

// What a caller demands of a target's certificate (its clientPolicy tls).
struct ClientTlsPolicy {
  std::vector<std::string> sans;  // exact; empty: any the trust verifies
  TrustStore trust;               // null: the mesh's CA bundle only
  // A client certificate from files (clientPolicy tls certificate file):
  // a context presenting it; null: the caller's minted identity.
  tls::SslCtxPtr client_context;
};

// An endpoint on another node.
struct RemoteEndpoint {
  net::SocketAddress tunnel;  // that node's agent
  std::string node;
  std::string identity;  // the target virtual node's
};

// An endpoint on this node that the tunnel delivers to.
struct LocalTarget {
  std::string mesh;
  std::string virtual_node;
  std::string identity;
  model::TlsMode mode = model::TlsMode::kDisabled;
  // The listener's validation (mTLS): the caller's certificate must verify
  // against `trust` (null: the CA bundle) and carry one of `sans`.
  bool validate = false;
  std::vector<std::string> sans;
  TrustStore trust;
  // Identities whose virtual node (or gateway) lists a backend that
  // resolves to this target.
  absl::flat_hash_set<std::string> allowed;
};

// A VirtualGateway listener's tls: clients from outside the mesh.
struct GatewayTls {
  model::TlsMode mode = model::TlsMode::kDisabled;
  // Presents the listener's certificate (file, or sds: the gateway's
  // minted identity), offers h2 and http/1.1; with validation it asks
  // for a client certificate and verifies it. Null: the certificate could
  // not be had (acm, an unreadable file): the listener refuses TLS.
  tls::SslCtxPtr context;
  std::vector<std::string> sans;  // validation SANs; empty: any
};

struct TunnelConfig {
  std::string trust_domain;
  std::string node_name;
  // "address:port" (SocketAddress::ToString) of endpoints.
  absl::flat_hash_map<std::string, RemoteEndpoint> remote;
  absl::flat_hash_map<std::string, LocalTarget> local;
  // Callers: datapath workload id -> identity; gateway name -> identity.
  absl::flat_hash_map<uint32_t, std::string> workload_identity;
  absl::flat_hash_map<std::string, std::string> gateway_identity;
  // "<caller identity> <target identity> <port>" -> policy; absent: the
  // caller only demands a certificate its CA bundle verifies.
  absl::flat_hash_map<std::string, ClientTlsPolicy> client_tls;
  // Listener certificates from files, by the identity a caller names
  // (SNI); others present their minted certificate.
  absl::flat_hash_map<std::string, tls::SslCtxPtr> server_contexts;
  // Every identity this node acts as: minted and rotated.
  std::vector<std::string> identities;
  // VirtualGateway listeners with tls, by port.
  absl::flat_hash_map<uint16_t, GatewayTls> gateway_tls;

  const ClientTlsPolicy* ClientPolicy(const std::string& caller,
                                      const std::string& target,
                                      uint16_t port) const;
};

struct TunnelInputs {
  const model::Snapshot* snapshot = nullptr;
  const ProxyConfig* proxy = nullptr;
  const std::map<std::string, workload::Workload>* workloads = nullptr;
  const std::vector<ClusterNode>* nodes = nullptr;
  std::string node_name;
  std::string trust_domain = "cluster.local";
  // The mesh's roots (--ca_bundle): the trust of `acm` and `sds`
  // validation, and of every tunnel handshake.
  X509_STORE* ca_trust = nullptr;
  // The minted certificates (sds gateway certificates); may be null.
  const tls::IdentityStore* identities = nullptr;
  std::function<uint32_t(const std::string& mesh, const std::string& vn)>
      node_id;
};

// Problems (an unknown node, an unreadable file) go to `warnings`; the
// affected endpoint or policy is left out (fails closed).
std::shared_ptr<const TunnelConfig> CompileTunnelConfig(
    const TunnelInputs& in, std::vector<std::string>* warnings);

// The identity of a virtual node: the SPIFFE ID a listener's (or a client
// policy's) sds certificate names, else spiffe://<td>/ns/<mesh>/vn/<name>.
std::string VirtualNodeIdentity(const model::VirtualNodeSpec* spec,
                                std::string_view trust_domain,
                                std::string_view mesh, std::string_view name);
std::string GatewayIdentity(std::string_view trust_domain,
                            std::string_view mesh, std::string_view name);

}  // namespace nodemesh::compile
