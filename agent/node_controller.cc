#include "agent/node_controller.h"

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/compile/service_map.h"
#include "agent/net/netns.h"
#include "glog/logging.h"

namespace nodemesh {
namespace {

using admin::AdminRequest;
using admin::AdminResponse;

using admin::JsonResponse;

AdminResponse Error(int status, absl::string_view message) {
  return JsonResponse(status, {{"error", message}});
}

constexpr std::chrono::milliseconds kSweepInterval{1000};
constexpr std::chrono::milliseconds kDeclaredPollInterval{2000};

}  // namespace

NodeController::NodeController(net::EventLoop* loop, const AgentConfig& config,
                               datapath::Datapath* datapath,
                               proxy::Proxy* proxy)
    : loop_(loop),
      config_(config),
      proxy_(proxy),
      registry_(
          workload::RegistryOptions{config.state_dir, config.cgroup_root}),
      writer_(&datapath->maps()),
      inbound_(&datapath->maps(), &registry_) {}

absl::Status NodeController::Start(
    std::shared_ptr<const model::Snapshot> first) {
  if (auto s = registry_.Load(); !s.ok()) return s;
  auto vips =
      dns::VipAllocator::Create(config_.service_cidr, config_.state_dir);
  if (!vips.ok()) return vips.status();
  vips_ = std::make_unique<dns::VipAllocator>(std::move(*vips));
  proxy_->SetWorkloads(&registry_);
  registry_.Subscribe([this] {
    PublishLocal();
    SyncPodNamespaces();
    proxy_->WorkloadsChanged();
    Recompile();
  });
  if (config_.dns_port != 0) {
    dns::DnsServerOptions options;
    options.mark = NM_DEFAULT_AGENT_MARK;
    for (const std::string& u : config_.dns_upstreams) {
      auto a = net::SocketAddress::Parse(u);
      if (!a.ok())
        return absl::InvalidArgumentError(
            absl::StrCat("--dns_upstreams: ", u, ": ", a.status().message()));
      options.upstreams.push_back(*a);
    }
    dns_ = std::make_unique<dns::DnsServer>(loop_, options);
    auto v4 =
        net::SocketAddress::Parse(absl::StrCat("127.0.0.1:", config_.dns_port));
    if (auto s = dns_->Listen(*v4); !s.ok()) return s;
    auto v6 =
        net::SocketAddress::Parse(absl::StrCat("[::1]:", config_.dns_port));
    if (auto s = dns_->Listen(*v6); !s.ok())
      LOG(WARNING) << s.message() << "; DNS on IPv4 only";
  }
  snapshot_ = std::move(first);
  PublishLocal();
  SyncPodNamespaces();
  PollDeclared();
  proxy_->WorkloadsChanged();
  Recompile();
  // Timers that re-arm themselves.
  struct Rearm {
    static void Sweep(NodeController* self) {
      // A draining agent leaves the registry to its successor.
      if (self->draining_) return;
      self->registry_.Sweep();
      self->loop_->AddTimer(kSweepInterval, [self] { Sweep(self); });
    }
    static void Declared(NodeController* self) {
      self->PollDeclared();
      self->loop_->AddTimer(kDeclaredPollInterval, [self] { Declared(self); });
    }
  };
  loop_->AddTimer(kSweepInterval, [this] { Rearm::Sweep(this); });
  loop_->AddTimer(kDeclaredPollInterval, [this] { Rearm::Declared(this); });
  return absl::OkStatus();
}

void NodeController::OnSnapshot(std::shared_ptr<const model::Snapshot> snap) {
  snapshot_ = std::move(snap);
  Recompile();
}

void NodeController::Recompile() {
  if (snapshot_ == nullptr || proxy_->config() == nullptr) return;
  std::set<std::string> services;
  for (const compile::VirtualHost& h : proxy_->config()->virtual_hosts)
    services.insert(absl::StrCat(h.mesh, "/", h.virtual_service));
  vips_->Sync(services);
  compile::ServiceMapInputs in;
  in.snapshot = snapshot_.get();
  in.proxy = proxy_->config().get();
  in.vips = &vips_->vips();
  in.workloads = &registry_.workloads();
  in.node_id = [this](const std::string& mesh, const std::string& vn) {
    return registry_.VirtualNodeId(mesh, vn);
  };
  warnings_.clear();
  compile::ServiceMapContents contents =
      compile::CompileServiceMap(in, &warnings_);
  for (const std::string& w : warnings_) LOG(WARNING) << "service map: " << w;
  if (auto s = writer_.Apply(contents); !s.ok())
    LOG(ERROR) << "service map not fully written: " << s.message();
  inbound_.Sync(*snapshot_);
  dns_names_ = contents.dns_names.size();
  if (dns_) dns_->SetNames(std::move(contents.dns_names));
  RecompileTunnel();
}

void NodeController::RecompileTunnel() {
  if (snapshot_ == nullptr || proxy_->config() == nullptr) return;
  compile::TunnelInputs in;
  in.snapshot = snapshot_.get();
  in.proxy = proxy_->config().get();
  in.workloads = &registry_.workloads();
  in.nodes = &nodes_;
  in.node_name = config_.node_name;
  in.trust_domain = config_.trust_domain;
  in.ca_trust = ca_trust_;
  in.node_id = [this](const std::string& mesh, const std::string& vn) {
    return registry_.VirtualNodeId(mesh, vn);
  };
  in.identities = identities_;
  std::vector<std::string> warnings;
  auto tunnel = compile::CompileTunnelConfig(in, &warnings);
  if (identities_ != nullptr) {
    if (auto s = identities_->SetIdentities(tunnel->identities); !s.ok())
      LOG(ERROR) << "identities: " << s.message();
    // A gateway presenting its minted (sds) certificate needs it minted.
    bool again = false;
    for (const auto& [port, t] : tunnel->gateway_tls)
      again = again || t.context == nullptr;
    if (again) {
      warnings.clear();
      tunnel = compile::CompileTunnelConfig(in, &warnings);
    }
  }
  if (warnings != tunnel_warnings_) {
    for (const std::string& w : warnings) LOG(WARNING) << "tunnel: " << w;
    tunnel_warnings_ = std::move(warnings);
  }
  proxy_->SetTunnel(std::move(tunnel));
}

void NodeController::SyncPodNamespaces() {
  if (draining_) return;
  std::set<std::string> paths;
  for (const auto& [id, w] : registry_.workloads())
    if (w.local() && !w.netns.empty()) paths.insert(w.netns);
  proxy_->SetPodNamespaces(paths);
  if (!dns_) return;
  for (auto it = dns_pods_.begin(); it != dns_pods_.end();) {
    if (paths.count(*it)) {
      ++it;
      continue;
    }
    dns_->Close("netns:" + *it);
    it = dns_pods_.erase(it);
  }
  for (const std::string& path : paths) {
    if (dns_pods_.count(path)) continue;
    net::UniqueFd fd;
    auto addr =
        net::SocketAddress::Parse(absl::StrCat("127.0.0.1:", config_.dns_port));
    absl::Status s = net::RunInNetns(path, [&]() -> absl::Status {
      auto bound = dns::BindDnsSocket(*addr, NM_DEFAULT_AGENT_MARK);
      if (!bound.ok()) return bound.status();
      fd = std::move(*bound);
      return absl::OkStatus();
    });
    if (s.ok()) s = dns_->Adopt(std::move(fd), "netns:" + path);
    if (!s.ok()) {
      LOG(ERROR) << "dns: no socket in " << path << ": " << s;
      continue;
    }
    dns_pods_.insert(path);
  }
}

std::vector<uint16_t> NodeController::ListenerPorts(
    const std::string& mesh, const std::string& vn) const {
  std::vector<uint16_t> ports;
  if (snapshot_ == nullptr) return ports;
  auto it = snapshot_->resources.find(
      model::ResourceIdView(model::ResourceKind::kVirtualNode, mesh, "", vn));
  if (it == snapshot_->resources.end()) return ports;
  for (const auto& l :
       std::get<model::VirtualNodeSpec>(it->second->spec).listeners)
    ports.push_back(static_cast<uint16_t>(l.port_mapping.port));
  return ports;
}

void NodeController::UseEtcdCluster(
    std::function<void(std::map<std::string, nlohmann::json>)> publish) {
  etcd_ = true;
  publish_ = std::move(publish);
  PublishLocal();
}

void NodeController::PublishLocal() {
  if (!publish_) return;
  std::map<std::string, nlohmann::json> local;
  for (const auto& [id, w] : registry_.workloads()) {
    if (!w.local() || w.origin != "api") continue;
    nlohmann::json j = {{"node", config_.node_name},
                        {"mesh", w.mesh},
                        {"virtualNode", w.virtual_node},
                        {"address", w.address},
                        {"ports", w.ports}};
    if (!w.attributes.empty()) j["attributes"] = w.attributes;
    local[id] = std::move(j);
  }
  publish_(std::move(local));
}

void NodeController::SetClusterNodes(std::vector<compile::ClusterNode> nodes) {
  LOG(INFO) << "cluster: " << nodes.size() << " nodes from etcd";
  nodes_ = std::move(nodes);
  RecompileTunnel();
}

void NodeController::SetRemoteWorkloads(
    const std::vector<nlohmann::json>& workloads) {
  std::vector<workload::Workload> remote;
  for (const nlohmann::json& j : workloads) {
    if (j.value("node", "") == config_.node_name) continue;  // ours: local
    auto w = DeclaredWorkload(j, "etcd");
    if (!w.ok()) {
      LOG(ERROR) << "etcd: workload " << j.dump() << ": "
                 << w.status().message() << "; skipped";
      continue;
    }
    remote.push_back(std::move(*w));
  }
  declared_etcd_ = std::move(remote);
  UpdateDeclared();
}

void NodeController::UpdateDeclared() {
  std::vector<workload::Workload> all = declared_file_;
  all.insert(all.end(), declared_etcd_.begin(), declared_etcd_.end());
  registry_.SetDeclared(std::move(all));
}

absl::StatusOr<workload::Workload> NodeController::DeclaredWorkload(
    const nlohmann::json& entry, const std::string& origin) const {
  auto req = workload::WorkloadRequest::FromJson(entry);
  if (!req.ok()) return req.status();
  workload::Workload w;
  std::string node = entry.value("node", "");
  w.node = node == config_.node_name ? "" : node;
  w.mesh = req->mesh;
  w.virtual_node = req->virtual_node;
  if (!req->address.empty()) w.address = req->address;
  w.ports = req->ports;
  w.attributes = req->attributes;
  w.origin = origin;
  w.id = absl::StrCat(origin, ":", node.empty() ? config_.node_name : node, "/",
                      w.virtual_node, "/", w.address);
  return w;
}

void NodeController::PollNodes() {
  if (etcd_) return;  // nodes come from etcd
  std::string path = config_.config_dir + "/cluster/nodes.json";
  struct stat st {};
  int64_t mtime =
      ::stat(path.c_str(), &st) == 0
          ? int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec
          : 0;
  if (mtime == nodes_mtime_) return;
  nodes_mtime_ = mtime;
  std::vector<compile::ClusterNode> nodes;
  if (mtime != 0) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    auto j = nlohmann::json::parse(text.str(), nullptr, false);
    auto parsed = compile::ParseClusterNodes(j);
    if (!parsed.ok()) {
      LOG(ERROR) << path << ": " << parsed.status().message()
                 << "; keeping the last good one";
      return;
    }
    nodes = std::move(*parsed);
  }
  LOG(INFO) << "cluster: " << nodes.size() << " nodes from " << path;
  nodes_ = std::move(nodes);
  RecompileTunnel();
}

void NodeController::PollDeclared() {
  PollNodes();
  std::string path = config_.config_dir + "/cluster/workloads.json";
  struct stat st {};
  int64_t mtime =
      ::stat(path.c_str(), &st) == 0
          ? int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec
          : 0;
  if (mtime == declared_mtime_) return;
  declared_mtime_ = mtime;
  std::vector<workload::Workload> declared;
  if (mtime != 0) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    auto j = nlohmann::json::parse(text.str(), nullptr, false);
    if (!j.is_array()) {
      LOG(ERROR) << path << ": not a JSON array; keeping the last good one";
      return;
    }
    for (size_t i = 0; i < j.size(); ++i) {
      auto w = DeclaredWorkload(j[i], "file");
      if (!w.ok()) {
        LOG(ERROR) << path << "[" << i << "]: " << w.status().message()
                   << "; keeping the last good file";
        return;
      }
      declared.push_back(std::move(*w));
    }
  }
  declared_file_ = std::move(declared);
  UpdateDeclared();
}

nlohmann::json NodeController::WorkloadsJson() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [id, w] : registry_.workloads()) {
    nlohmann::json j = w.ToJson();
    j["workloadId"] = registry_.VirtualNodeId(w.mesh, w.virtual_node);
    list.push_back(j);
  }
  return {{"node", config_.node_name}, {"workloads", list}};
}

AdminResponse NodeController::PostWorkload(const AdminRequest& req) {
  auto body = nlohmann::json::parse(req.body, nullptr, false);
  auto request = workload::WorkloadRequest::FromJson(body);
  if (!request.ok()) {
    ++registrations_refused_;
    return Error(400, request.status().message());
  }
  auto w = registry_.Add(*request,
                         ListenerPorts(request->mesh, request->virtual_node));
  if (!w.ok()) {
    ++registrations_refused_;
    int status = absl::IsAlreadyExists(w.status())     ? 409
                 : absl::IsInvalidArgument(w.status()) ? 400
                                                       : 500;
    return Error(status, w.status().message());
  }
  nlohmann::json out = w->ToJson();
  if (snapshot_ != nullptr &&
      !snapshot_->resources.count(model::ResourceIdView(
          model::ResourceKind::kVirtualNode, w->mesh, "", w->virtual_node)))
    out["warning"] =
        absl::StrCat("virtual node ", w->mesh, "/", w->virtual_node,
                     " is not in the model (yet)");
  return JsonResponse(201, out);
}

AdminResponse NodeController::DeleteWorkload(const AdminRequest& req) {
  if (req.method != "DELETE") return Error(405, "use DELETE /workloads/{id}");
  std::string id(req.path.substr(std::string_view("/workloads/").size()));
  if (auto s = registry_.Remove(id); !s.ok())
    return Error(absl::IsNotFound(s) ? 404 : 500, s.message());
  return JsonResponse(200, {{"id", id}, {"deleted", true}});
}

void NodeController::RegisterEndpoints(admin::AdminServer* read_only,
                                       admin::AdminServer* control) {
  auto list = [this](const AdminRequest&) {
    return JsonResponse(200, WorkloadsJson());
  };
  read_only->Handle("GET", "/workloads", list);
  control->Handle("GET", "/workloads", list);
  control->Handle("POST", "/workloads",
                  [this](const AdminRequest& r) { return PostWorkload(r); });
  control->HandlePrefix("/workloads/", [this](const AdminRequest& r) {
    return DeleteWorkload(r);
  });
  read_only->Handle("GET", "/vips", [this](const AdminRequest&) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, v] : vips_->vips())
      out[key] = {{"address", v.ToString()}, {"serviceId", v.service_id}};
    return JsonResponse(
        200, {{"service_cidr", config_.service_cidr}, {"vips", out}});
  });
}

void NodeController::Drain() {
  draining_ = true;
  if (dns_) dns_->CloseAll();
}

void NodeController::RenderMetrics(stats::PrometheusText* out) const {
  std::map<std::string, uint64_t> by_origin = {
      {"api", 0}, {"file", 0}, {"etcd", 0}};
  for (const auto& [id, w] : registry_.workloads()) ++by_origin[w.origin];
  out->Family("nodemesh_workloads", "gauge",
              "Workloads known to this agent, by origin (api: registered "
              "here; file: declared in cluster/workloads.json; etcd: "
              "registered by other nodes)");
  for (const auto& [origin, n] : by_origin)
    out->Sample("nodemesh_workloads", {{"origin", origin}}, n);
  out->Family("nodemesh_workload_registrations_refused_total", "counter",
              "POST /workloads requests refused (invalid, or a cgroup "
              "already registered)");
  out->Sample("nodemesh_workload_registrations_refused_total", {},
              registrations_refused_);
  const auto& c = writer_.counts();
  out->Family("nodemesh_service_map_entries", "gauge",
              "Entries this agent keeps in the datapath maps, by kind");
  out->Sample("nodemesh_service_map_entries", {{"kind", "service"}},
              c.services);
  out->Sample("nodemesh_service_map_entries", {{"kind", "direct"}}, c.direct);
  out->Sample("nodemesh_service_map_entries", {{"kind", "workload"}},
              c.workloads);
  out->Sample("nodemesh_service_map_entries", {{"kind", "policy"}}, c.policy);
  out->Family("nodemesh_service_map_write_errors_total", "counter",
              "Map writes that failed (the datapath keeps the old entry)");
  out->Sample("nodemesh_service_map_write_errors_total", {}, c.errors);
  inbound_.RenderMetrics(out);
  if (dns_) {
    const dns::DnsStats& d = dns_->stats();
    out->Family("nodemesh_dns_queries_total", "counter",
                "Mesh DNS queries from workloads, by outcome");
    out->Sample("nodemesh_dns_queries_total", {{"outcome", "mesh"}},
                d.mesh_answers);
    out->Sample("nodemesh_dns_queries_total", {{"outcome", "forwarded"}},
                d.forwarded);
    out->Sample("nodemesh_dns_queries_total", {{"outcome", "malformed"}},
                d.malformed);
    out->Family("nodemesh_dns_forward_errors_total", "counter",
                "Queries the host's resolver did not answer (SERVFAIL or "
                "timeout)");
    out->Sample("nodemesh_dns_forward_errors_total", {}, d.forward_errors);
  }
}

stats::Labels NodeController::CounterLabels(uint32_t workload_id,
                                            uint32_t service_id) const {
  std::string mesh, source = workload_id == 0 ? "unknown" : "", service;
  auto vn = registry_.virtual_node_names().find(workload_id);
  if (vn != registry_.virtual_node_names().end()) {
    mesh = vn->second.first;
    source = vn->second.second;
  }
  if (const std::string* key =
          vips_ != nullptr ? vips_->KeyOf(service_id) : nullptr) {
    size_t slash = key->find('/');
    if (mesh.empty()) mesh = key->substr(0, slash);
    service = key->substr(slash + 1);
  }
  return {{"mesh", mesh},
          {"source_virtual_node", source},
          {"virtual_service", service}};
}

nlohmann::json NodeController::StatsJson() const {
  const auto& c = writer_.counts();
  nlohmann::json j = {{"workloads", registry_.workloads().size()},
                      {"registrations_refused", registrations_refused_},
                      {"service_map",
                       {{"services", c.services},
                        {"direct", c.direct},
                        {"workloads", c.workloads},
                        {"policy", c.policy},
                        {"applies", c.applies},
                        {"write_errors", c.errors}}},
                      {"dns_names", dns_names_}};
  if (dns_) {
    const dns::DnsStats& d = dns_->stats();
    j["dns"] = {{"queries", d.queries},
                {"mesh_answers", d.mesh_answers},
                {"forwarded", d.forwarded},
                {"forward_errors", d.forward_errors},
                {"malformed", d.malformed}};
  }
  return j;
}

}  // namespace nodemesh
