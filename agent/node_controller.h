#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/admin/admin_server.h"
#include "agent/agent_config.h"
#include "agent/compile/inbound_policy_writer.h"
#include "agent/compile/service_map_writer.h"
#include "agent/compile/tunnel_config.h"
#include "agent/datapath/datapath.h"
#include "agent/dns/dns_server.h"
#include "agent/dns/vip_allocator.h"
#include "agent/model/snapshot.h"
#include "agent/net/event_loop.h"
#include "agent/proxy/proxy.h"
#include "agent/stats/prometheus_text.h"
#include "agent/workload/workload_registry.h"
#include "nlohmann/json.hpp"

namespace nodemesh {

// The node's half of the control plane, on the main thread: keeps the
// workload registry, the VIPs and the mesh DNS, and turns every model
// snapshot and registry change into the proxy's endpoints and the
// datapath's maps (services, DIRECT backends, workloads, DROP_ALL policy).
class NodeController {
 public:
  NodeController(net::EventLoop* loop, const AgentConfig& config,
                 datapath::Datapath* datapath, proxy::Proxy* proxy);

  // Loads the state dir, opens the DNS sockets, and compiles `first` (the
  // proxy has compiled it already).
  absl::Status Start(std::shared_ptr<const model::Snapshot> first);
  // After the proxy took a new snapshot.
  void OnSnapshot(std::shared_ptr<const model::Snapshot> snapshot);

  // GET /workloads on the read-only endpoint; POST and DELETE on the
  // root-only control socket (which serves the GETs too).
  void RegisterEndpoints(admin::AdminServer* read_only,
                         admin::AdminServer* control);
  void Drain();

  void RenderMetrics(stats::PrometheusText* out) const;
  // Labels for the datapath's (workload id, service id) counters.
  stats::Labels CounterLabels(uint32_t workload_id, uint32_t service_id) const;
  nlohmann::json StatsJson() const;
  const workload::WorkloadRegistry& registry() const { return registry_; }
  // Identities to mint for local workloads and the mesh's roots (before
  // Start; null without --signing_cert).
  // The tunnel's tables (remote endpoints, identities, authorization,
  // gateway TLS); again after certificates were renewed.
  void RecompileTunnel();
  // Cluster mode (etcd): the nodes and the other nodes' workloads come from
  // etcd instead of cluster/nodes.json (cluster/workloads.json still
  // declares endpoints outside the cluster). Each workload is a
  // cluster/workloads.json entry ({"node", "mesh", "virtualNode", ...});
  // invalid ones are skipped with a log line.
  void UseEtcdCluster(
      std::function<void(std::map<std::string, nlohmann::json>)> publish);
  void SetClusterNodes(std::vector<compile::ClusterNode> nodes);
  void SetRemoteWorkloads(const std::vector<nlohmann::json>& workloads);
  void SetTls(tls::IdentityStore* identities, X509_STORE* ca_trust) {
    identities_ = identities;
    ca_trust_ = ca_trust;
  }

 private:
  void Recompile();
  // Listeners and DNS sockets inside the namespaces of pod-style workloads.
  void SyncPodNamespaces();
  void PollDeclared();
  void PollNodes();
  // A cluster/workloads.json entry as a declared workload ("" and the
  // error when invalid); `origin` prefixes its id.
  absl::StatusOr<workload::Workload> DeclaredWorkload(
      const nlohmann::json& entry, const std::string& origin) const;
  // The registry's declared set: the file's and etcd's.
  void UpdateDeclared();
  // Hands the local registrations to etcd (cluster mode).
  void PublishLocal();
  std::vector<uint16_t> ListenerPorts(const std::string& mesh,
                                      const std::string& vn) const;
  admin::AdminResponse PostWorkload(const admin::AdminRequest& req);
  admin::AdminResponse DeleteWorkload(const admin::AdminRequest& req);
  nlohmann::json WorkloadsJson() const;

  net::EventLoop* loop_;
  const AgentConfig& config_;
  proxy::Proxy* proxy_;
  workload::WorkloadRegistry registry_;
  std::unique_ptr<dns::VipAllocator> vips_;
  std::unique_ptr<dns::DnsServer> dns_;
  compile::ServiceMapWriter writer_;
  compile::InboundPolicyWriter inbound_;
  std::shared_ptr<const model::Snapshot> snapshot_;
  std::vector<std::string> warnings_;
  int64_t declared_mtime_ = -1;
  uint64_t registrations_refused_ = 0;
  size_t dns_names_ = 0;
  bool draining_ = false;
  std::set<std::string> dns_pods_;
  // The cluster: cluster/nodes.json, its mtime, the tunnel tables.
  std::vector<compile::ClusterNode> nodes_;
  int64_t nodes_mtime_ = -1;
  tls::IdentityStore* identities_ = nullptr;
  X509_STORE* ca_trust_ = nullptr;
  std::vector<std::string> tunnel_warnings_;
  // Cluster mode.
  bool etcd_ = false;
  std::function<void(std::map<std::string, nlohmann::json>)> publish_;
  std::vector<workload::Workload> declared_file_, declared_etcd_;
};

}  // namespace nodemesh
