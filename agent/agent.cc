#include "agent/agent.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "agent/admin/admin_server.h"
#include "agent/datapath/datapath.h"
#include "agent/datapath/datapath_metrics.h"
#include "agent/datapath/kernel_fs.h"
#include "agent/net/event_loop.h"
#include "agent/net/socket.h"
#include "agent/net/unique_fd.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace nodemesh {
namespace {

using admin::AdminRequest;
using admin::AdminResponse;

AdminResponse Json(int status, const nlohmann::json& body) {
  // replace: invalid UTF-8 (a host name, say) must not throw in the loop.
  return AdminResponse{
      status, "application/json",
      body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
          "\n"};
}

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

void RegisterAdminEndpoints(admin::AdminServer* server,
                            const datapath::Datapath* dp,
                            const AgentConfig* config) {
  server->Handle("GET", "/healthz", [](const AdminRequest&) {
    return AdminResponse{200, "text/plain", "ok\n"};
  });
  server->Handle("GET", "/ready", [dp, config](const AdminRequest&) {
    auto cfg = dp->maps().ReadConfig();
    bool datapath_ok = cfg.ok() && cfg->outbound_port == config->outbound_port;
    nlohmann::json body = {
        {"ready", datapath_ok},
        {"node", config->node_name},
        {"components",
         {{"datapath",
           {{"ready", datapath_ok},
            {"pin_dir", config->bpf_pin_dir},
            {"pin_state", datapath::PinStateName(dp->pin_state())},
            {"sockmap", config->sockmap}}},
          // The mesh model source arrives with the model work; until then
          // there is no configuration to be out of date.
          {"config_source", {{"ready", true}, {"source", "none"}}},
          {"last_config_error", nullptr}}}};
    return Json(datapath_ok ? 200 : 503, body);
  });
  server->Handle("GET", "/metrics", [dp](const AdminRequest&) {
    stats::PrometheusText text;
    if (auto s = datapath::RenderDatapathMetrics(*dp, &text); !s.ok())
      return AdminResponse{500, "text/plain", s.ToString() + "\n"};
    return AdminResponse{200, "text/plain; version=0.0.4", text.Take()};
  });
  server->Handle("GET", "/stats", [dp, config](const AdminRequest&) {
    nlohmann::json body = {{"node", config->node_name},
                           {"datapath", datapath::DatapathStatsJson(*dp)}};
    return Json(200, body);
  });
}

}  // namespace

absl::Status Agent::Run() {
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
  options.config.dns_port = 0;  // no DNS server in the agent yet
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
  admin::AdminServer admin_server(loop->get());
  RegisterAdminEndpoints(&admin_server, dp->get(), &config_);
  if (auto s = admin_server.Listen(*admin_addr); !s.ok()) return s;

  auto signals = BlockTerminationSignals();
  if (!signals.ok()) return signals.status();
  net::EventLoop* l = loop->get();
  auto drain_deadline = std::chrono::steady_clock::time_point::max();
  std::function<void()> check_drained = [&] {
    if (admin_server.open_connections() == 0 ||
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
    drain_deadline = std::chrono::steady_clock::now() +
                     std::chrono::seconds(config_.drain_seconds);
    check_drained();
  });
  if (!added.ok()) return added;
  std::cout << "nodemesh-agent ready: admin " << config_.admin_address
            << ", pins " << config_.bpf_pin_dir << std::endl;
  l->Run();
  l->Remove(signal_fd);
  LOG(INFO) << "drained; exiting";
  return absl::OkStatus();
}

absl::Status Agent::Cleanup() {
  absl::Status s = datapath::Datapath::Cleanup(config_.bpf_pin_dir);
  // Decommissioning: the agent's cgroups go too, when nothing runs in them.
  std::error_code ec;
  for (const auto& cg : {config_.agent_cgroup, config_.cgroup_root}) {
    if (cg.empty() || !std::filesystem::exists(cg, ec)) continue;
    if (::rmdir(cg.c_str()) != 0)
      LOG(WARNING) << "left cgroup " << cg
                   << " in place: " << std::strerror(errno);
  }
  return s;
}

}  // namespace nodemesh
