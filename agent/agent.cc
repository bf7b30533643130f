#include "agent/agent.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "agent/admin/admin_server.h"
#include "agent/api/appmesh_api.h"
#include "agent/api/config_dir_store.h"
#include "agent/datapath/datapath.h"
#include "agent/datapath/datapath_metrics.h"
#include "agent/datapath/kernel_fs.h"
#include "agent/etcd_cluster.h"
#include "agent/model/config_dump.h"
#include "agent/model/model_source.h"
#include "agent/net/event_loop.h"
#include "agent/net/socket.h"
#include "agent/net/unique_fd.h"
#include "agent/node_controller.h"
#include "agent/node_identities.h"
#include "agent/proxy/proxy.h"
#include "agent/stats/process_metrics.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace nodemesh {
namespace {

using admin::AdminRequest;

// What ARNs and owners say for resources this agent serves through the App
// Mesh API: there is no AWS account behind them.
constexpr char kApiAccount[] = "000000000000";
constexpr char kApiRegion[] = "local";
using admin::AdminResponse;

using admin::JsonResponse;

// SIGTERM and SIGINT arrive as readable events on the main loop.
absl::StatusOr<net::UniqueFd> BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0)
    return absl::InternalError("sigprocmask failed");
  net::UniqueFd fd(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd.valid()) return absl::InternalError("signalfd failed");
  return fd;
}

// `cluster` is null without --etcd_endpoints. With it the config source is
// ready only while etcd is watched: when etcd is unreachable the last state
// keeps serving traffic, and /ready says so.
nlohmann::json ConfigSourceJson(const model::ModelSource& model,
                                const EtcdCluster* cluster) {
  auto snap = model.current();
  const auto& st = model.status();
  nlohmann::json j = {
      {"ready", snap->version > 0},  {"source", "dir"},
      {"dir", model.config_dir()},   {"version", snap->version},
      {"hash", snap->HashText()},    {"resources", snap->resources.size()},
      {"reloads_ok", st.reloads_ok}, {"reloads_failed", st.reloads_failed}};
  if (cluster != nullptr) {
    j["source"] = "etcd";
    j["etcd"] = cluster->StatusJson();
    j["ready"] = snap->version > 0 && cluster->ready();
    j["serving_version"] = snap->version;
  }
  return j;
}

void RenderModelMetrics(const model::ModelSource& model,
                        stats::PrometheusText* out) {
  auto snap = model.current();
  const auto& st = model.status();
  out->Family("nodemesh_config_reloads_total", "counter",
              "Config dir reloads, by result (an error keeps the last good "
              "snapshot serving)");
  out->Sample("nodemesh_config_reloads_total", {{"result", "success"}},
              st.reloads_ok);
  out->Sample("nodemesh_config_reloads_total", {{"result", "error"}},
              st.reloads_failed);
  out->Family("nodemesh_config_errors", "gauge",
              "Errors in the last config reload (0 when it was valid)");
  out->Sample("nodemesh_config_errors", {},
              static_cast<uint64_t>(st.last_error_count));
  out->Family("nodemesh_config_snapshot_version", "gauge",
              "Version of the model snapshot being served");
  out->Sample("nodemesh_config_snapshot_version", {}, snap->version);
  out->Family("nodemesh_config_resources", "gauge",
              "Resources in the snapshot being served, by kind");
  std::map<std::string, uint64_t> by_kind;
  for (auto kind : model::AllKinds())
    by_kind[std::string(model::KindName(kind))] = 0;
  for (const auto& [id, r] : snap->resources)
    ++by_kind[std::string(model::KindName(id.kind))];
  for (const auto& [kind, n] : by_kind)
    out->Sample("nodemesh_config_resources", {{"kind", kind}}, n);
  out->Family("nodemesh_config_last_reload_seconds", "gauge",
              "How long the last reload took (parse, validate, compile)");
  out->Sample("nodemesh_config_last_reload_seconds", {},
              std::chrono::duration<double>(st.last_build_time).count());
}

void RegisterAdminEndpoints(
    admin::AdminServer* server, const datapath::Datapath* dp,
    const model::ModelSource* model, const proxy::Proxy* proxy,
    const NodeController* node, const NodeIdentities* identities,
    const EtcdCluster* cluster, const AgentConfig* config) {
  server->Handle("GET", "/certs", [identities](const AdminRequest&) {
    if (identities == nullptr)
      return JsonResponse(
          200, {{"certificates", nlohmann::json::array()}, {"rotations", 0}});
    return JsonResponse(200, identities->Json());
  });
  server->Handle("GET", "/healthz", [](const AdminRequest&) {
    return AdminResponse{200, "text/plain", "ok\n"};
  });
  server->Handle(
      "GET", "/ready",
      [dp, model, proxy, cluster, config](const AdminRequest&) {
        auto cfg = dp->maps().ReadConfig();
        bool datapath_ok =
            cfg.ok() && cfg->outbound_port == config->outbound_port;
        nlohmann::json source = ConfigSourceJson(*model, cluster);
        bool ready = datapath_ok && source["ready"].get<bool>();
        const std::string& error = model->status().last_error;
        nlohmann::json body = {
            {"ready", ready},
            {"node", config->node_name},
            {"components",
             {{"datapath",
               {{"ready", datapath_ok},
                {"pin_dir", config->bpf_pin_dir},
                {"pin_state", datapath::PinStateName(dp->pin_state())},
                {"sockmap", config->sockmap}}},
              {"config_source", source},
              {"proxy",
               {{"ready", true},
                {"workers", config->workers},
                {"outbound_port", config->outbound_port},
                {"config_warnings", proxy->compile_warnings()}}},
              {"last_config_error", error.empty() ? nlohmann::json(nullptr)
                                                  : nlohmann::json(error)}}}};
        return JsonResponse(ready ? 200 : 503, body);
      });
  server->Handle("GET", "/config_dump", [model](const AdminRequest&) {
    return AdminResponse{200, "application/json",
                         model::ConfigDumpJson(*model->current())};
  });
  server->Handle(
      "GET", "/metrics",
      [dp, model, proxy, node, identities, cluster](const AdminRequest&) {
        stats::PrometheusText text;
        auto namer = [node](uint32_t wid, uint32_t sid) {
          return node->CounterLabels(wid, sid);
        };
        if (auto s = datapath::RenderDatapathMetrics(*dp, &text, namer);
            !s.ok())
          return AdminResponse{500, "text/plain", s.ToString() + "\n"};
        RenderModelMetrics(*model, &text);
        proxy->RenderMetrics(&text);
        node->RenderMetrics(&text);
        if (identities != nullptr) identities->RenderMetrics(&text);
        if (cluster != nullptr) cluster->RenderMetrics(&text);
        stats::RenderProcessMetrics(&text);
        return AdminResponse{200, "text/plain; version=0.0.4", text.Take()};
      });
  server->Handle(
      "GET", "/stats", [dp, proxy, node, config](const AdminRequest&) {
        nlohmann::json body = {{"node", config->node_name},
                               {"datapath", datapath::DatapathStatsJson(*dp)},
                               {"proxy", proxy->StatsJson()},
                               {"workloads", node->StatsJson()}};
        return JsonResponse(200, body);
      });
  server->Handle("GET", "/clusters", [proxy](const AdminRequest&) {
    return JsonResponse(200, {{"clusters", proxy->ClustersJson()}});
  });
  server->Handle("GET", "/routes", [proxy](const AdminRequest&) {
    return JsonResponse(200, proxy->RoutesJson());
  });
}

}  // namespace

absl::Status Agent::Run() {
  // Before any thread starts: threads inherit the mask, and SIGTERM must
  // reach the signalfd, not kill the process from a worker.
  auto signals = BlockTerminationSignals();
  if (!signals.ok()) return signals.status();
  if (auto s = datapath::Datapath::CheckKernel(); !s.ok()) return s;
  // Out of the workload cgroups before anything attaches, so the agent's own
  // connects are never redirected (and sockops sees its accepted sockets).
  if (auto s = datapath::EnsureCgroup(config_.agent_cgroup); !s.ok()) return s;
  if (auto s = datapath::MoveToCgroup(config_.agent_cgroup, ::getpid());
      !s.ok())
    return s;

  datapath::DatapathOptions options;
  options.pin_dir = config_.bpf_pin_dir;
  options.cgroup_root = config_.cgroup_root;
  options.agent_cgroup = config_.agent_cgroup;
  options.config.outbound_port = config_.outbound_port;
  options.config.dns_port = config_.dns_port;
  options.config.sockmap = config_.sockmap ? 1 : 0;
  options.config.agent_mark = NM_DEFAULT_AGENT_MARK;
  auto dp = datapath::Datapath::Open(options);
  if (!dp.ok()) return dp.status();
  LOG(INFO) << "datapath " << datapath::PinStateName((*dp)->pin_state())
            << " in " << config_.bpf_pin_dir << " (workloads under "
            << config_.cgroup_root << ", agent in " << config_.agent_cgroup
            << ", sockmap " << (config_.sockmap ? "on" : "off") << ")";

  // Queued connections move to a surviving listener when this one closes.
  if (auto s = datapath::WriteSysctl("net/ipv4/tcp_migrate_req", "1"); !s.ok())
    LOG(WARNING) << s.message() << "; a restart may reset queued connections";

  auto loop = net::EventLoop::Create();
  if (!loop.ok()) return loop.status();
  auto admin_addr = net::SocketAddress::Parse(config_.admin_address);
  if (!admin_addr.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("--admin_address=", config_.admin_address, ": ",
                     admin_addr.status().message()));
  model::ModelSource model(loop->get(), config_.config_dir);
  std::unique_ptr<EtcdCluster> cluster;
  if (!config_.etcd_endpoints.empty()) {
    auto created = EtcdCluster::Create(loop->get(), config_);
    if (!created.ok()) return created.status();
    cluster = std::move(*created);
    cluster->AttachModel(&model);
  }
  if (auto s = model.Start(); !s.ok()) return s;
  proxy::ProxyOptions proxy_options;
  proxy_options.workers = config_.workers;
  proxy_options.worker.outbound_port = config_.outbound_port;
  proxy_options.worker.gateway_address = config_.gateway_address;
  proxy_options.worker.socket_mark = NM_DEFAULT_AGENT_MARK;
  proxy_options.worker.lb_policy = config_.lb_policy == "round_robin"
                                       ? proxy::LbPolicy::kRoundRobin
                                       : proxy::LbPolicy::kLeastRequest;
  proxy_options.compile.gateways = config_.gateways;
  auto identities = NodeIdentities::Create(config_);
  if (!identities.ok()) return identities.status();
  if (*identities != nullptr) {
    proxy_options.worker.tunnel_port = config_.tunnel_port;
    proxy_options.worker.identities = (*identities)->store();
    proxy_options.worker.ca_trust = (*identities)->trust();
  }
  proxy::Proxy proxy(loop->get(), proxy_options);
  if (auto s = proxy.Start(*model.current()); !s.ok()) return s;
  NodeController node(loop->get(), config_, dp->get(), &proxy);
  if (*identities != nullptr)
    node.SetTls((*identities)->store(), (*identities)->trust());
  if (auto s = node.Start(model.current()); !s.ok()) return s;
  if (cluster) cluster->Start(&node);
  if (*identities != nullptr)
    (*identities)->StartRotation(loop->get(), [&node] {
      node.RecompileTunnel();
    });
  model.Subscribe(
      [&proxy, &node](const std::shared_ptr<const model::Snapshot>& snap) {
        proxy.Update(*snap);
        node.OnSnapshot(snap);
      });
  admin::AdminServer admin_server(loop->get());
  admin::AdminServer control_server(loop->get());
  RegisterAdminEndpoints(&admin_server, dp->get(), &model, &proxy, &node,
                         identities->get(), cluster.get(), &config_);
  node.RegisterEndpoints(&admin_server, &control_server);
  {
    std::error_code ec;
    std::filesystem::path dir =
        std::filesystem::path(config_.admin_socket).parent_path();
    if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
      std::filesystem::create_directories(dir, ec);
      std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
    }
  }
  if (auto s = control_server.ListenUnix(config_.admin_socket); !s.ok())
    return absl::Status(
        s.code(), absl::StrCat("--admin_socket=", config_.admin_socket, ": ",
                               s.message()));
  // The App Mesh control-plane API, writing agent-owned files under
  // <config_dir>/api/.
  api::ConfigDirStore store(&model, kApiAccount, kApiRegion);
  api::ApiAuthConfig auth;
  auth.mode = config_.api_auth == "none" ? api::ApiAuthConfig::Mode::kNone
                                         : api::ApiAuthConfig::Mode::kSigV4;
  auth.credentials_file = config_.api_credentials_file;
  auto appmesh_api = api::AppMeshApi::Create(&store, auth);
  if (!appmesh_api.ok()) return appmesh_api.status();
  (*appmesh_api)->Register(&admin_server);
  if (auto s = admin_server.Listen(*admin_addr, NM_DEFAULT_AGENT_MARK); !s.ok())
    return s;

  net::EventLoop* l = loop->get();
  auto drain_deadline = std::chrono::steady_clock::time_point::max();
  std::function<void()> check_drained = [&] {
    if ((admin_server.open_connections() == 0 &&
         control_server.open_connections() == 0 &&
         proxy.open_connections() == 0) ||
        std::chrono::steady_clock::now() >= drain_deadline) {
      l->Stop();
      return;
    }
    l->AddTimer(std::chrono::milliseconds(50), check_drained);
  };
  int signal_fd = signals->get();
  auto added = l->Add(signal_fd, EPOLLIN, [&](uint32_t) {
    signalfd_siginfo info;
    if (::read(signal_fd, &info, sizeof(info)) != sizeof(info)) return;
    if (drain_deadline != std::chrono::steady_clock::time_point::max())
      return;  // already draining
    LOG(INFO) << "signal " << info.ssi_signo
              << ": draining; the datapath stays pinned";
    admin_server.StopAccepting();
    control_server.StopAccepting();
    node.Drain();
    // The lease stays: a successor renews it, or it expires.
    if (cluster) cluster->Stop();
    proxy.Drain();
    drain_deadline = std::chrono::steady_clock::now() +
                     std::chrono::seconds(config_.drain_seconds);
    check_drained();
  });
  if (!added.ok()) return added;
  std::cout << "nodemesh-agent ready: admin " << config_.admin_address
            << ", pins " << config_.bpf_pin_dir << std::endl;
  l->Run();
  l->Remove(signal_fd);
  proxy.Stop();
  LOG(INFO) << "drained; exiting";
  return absl::OkStatus();
}

absl::Status Agent::Cleanup() {
  absl::Status s = datapath::Datapath::Cleanup(config_.bpf_pin_dir);
  // Decommissioning: this node's registrations leave etcd now, not when
  // the lease runs out.
  if (!config_.etcd_endpoints.empty()) {
    if (auto d = EtcdCluster::Deregister(config_); !d.ok()) {
      LOG(ERROR) << "etcd: could not deregister node " << config_.node_name
                 << ": " << d.message()
                 << " (its registrations expire with its lease)";
      if (s.ok()) s = d;
    } else {
      LOG(INFO) << "etcd: node " << config_.node_name << " deregistered";
    }
  }
  // Decommissioning deregisters every workload: the state goes, and the
  // agent-made workload cgroups with it (when nothing runs in them).
  std::error_code ec;
  for (const char* f : {"workloads.json", "vips.json", "etcd_cache.json"})
    std::filesystem::remove(std::filesystem::path(config_.state_dir) / f, ec);
  if (std::filesystem::is_directory(config_.cgroup_root, ec)) {
    for (const auto& e :
         std::filesystem::directory_iterator(config_.cgroup_root, ec)) {
      if (e.is_directory(ec) && ::rmdir(e.path().c_str()) != 0)
        LOG(WARNING) << "left workload cgroup " << e.path().string() << ": "
                     << std::strerror(errno);
    }
  }
  // Decommissioning: the agent's cgroups go too, when nothing runs in them.
  for (const auto& cg : {config_.agent_cgroup, config_.cgroup_root}) {
    if (cg.empty() || !std::filesystem::exists(cg, ec)) continue;
    if (::rmdir(cg.c_str()) != 0)
      LOG(WARNING) << "left cgroup " << cg
                   << " in place: " << std::strerror(errno);
  }
  return s;
}

}  // namespace nodemesh
