#pragma once

// A node to test the proxy on: a fresh network namespace (lo only, no
// routes), a real nodemesh-agent in it serving a given App Mesh model, real
// upstream servers (tests/integration/upstream_server.py) and real clients
// (curl, wrk) run inside the namespace with nsenter.

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/integration/agent_process.h"
#include "tests/integration/fixtures.h"

namespace nodemesh::testing {

// One upstream_server.py process serving several named upstreams, each on
// its own port (or on the given one); killed on destruction.
class Upstreams {
 public:
  struct Spec {
    std::string name;
    uint16_t port = 0;  // 0: any free port
    std::string host = "127.0.0.1";
  };
  // `wrapper`: argv put before the server's, e.g. `nodemeshctl run ... --`
  // to run it as a workload.
  // `server`: the script run, upstream_server.py (HTTP/1.1) or
  // grpc_peer.py (gRPC); both print "ready NAME PORT".
  Upstreams(int netns_fd, std::vector<Spec> specs,
            std::vector<std::string> wrapper = {},
            const std::string& server = NODEMESH_UPSTREAM_SERVER,
            std::vector<std::string> server_args = {});
  ~Upstreams();
  Upstreams(const Upstreams&) = delete;
  Upstreams& operator=(const Upstreams&) = delete;

  uint16_t port(const std::string& name) const { return ports_.at(name); }
  pid_t pid() const { return pid_; }
  // SIGKILL now (the destructor then has nothing to do).
  void Kill();

 private:
  pid_t pid_ = -1;
  std::map<std::string, uint16_t> ports_;
};

// The agent under test with its own cgroups, pin dir, ports and config dir.
class ProxyNode {
 public:
  ProxyNode();
  ~ProxyNode();

  int netns_fd() const { return ns_.fd(); }
  const NetnsScope& netns() const { return ns_; }
  // Starts upstreams in this node's namespace; they live until the node
  // goes (or the returned object does).
  Upstreams* AddUpstreams(std::vector<Upstreams::Spec> specs);
  // gRPC servers (grpc_peer.py serve): service demo.Echo.
  Upstreams* AddGrpcUpstreams(std::vector<Upstreams::Spec> specs,
                              std::vector<std::string> server_args = {});
  // grpc_peer.py call ... in this node's namespace; its output.
  std::string GrpcCall(const std::string& args, int* exit_code = nullptr) const;
  // The same, run as a workload of virtual node `vn` of mesh `mesh`
  // (nodemeshctl run), listening on `specs` (one host for all).
  Upstreams* AddWorkloadUpstreams(const std::string& mesh,
                                  const std::string& vn,
                                  std::vector<Upstreams::Spec> specs);
  // `nodemeshctl run --mesh M --virtual-node V -- sh -c COMMAND` in the
  // namespace; returns stdout.
  std::string RunAsWorkload(const std::string& mesh, const std::string& vn,
                            const std::string& command,
                            int* exit_code = nullptr) const;
  // The agent's root-only control socket and state dir.
  std::string admin_socket() const { return state_dir() + "/agent.sock"; }
  std::string state_dir() const { return "/tmp/nmtest-state-" + name_; }

  // Writes the model (an App Mesh API-shape JSON array; null: no model
  // file, the agent gets its model elsewhere, e.g. from etcd) and starts
  // the agent; false (with the log printed) when it does not become ready.
  bool Start(const nlohmann::json& model,
             std::vector<std::string> extra_flags = {});
  // /etc/hosts lines the agent sees (set before Start), e.g.
  // "127.0.0.2 app.test".
  void SetHosts(const std::string& lines) { hosts_ = lines; }
  AgentProcess& agent() { return *agent_; }
  // SIGKILL, as a crash: the pins and the registrations stay.
  void KillAgent();
  // A new agent with the flags of the last Start() (after KillAgent() or
  // agent().Terminate()); false (with its log) when it does not come up.
  bool RestartAgent();

  // Runs a command inside the namespace; returns stdout.
  std::string Run(const std::string& command, int* exit_code = nullptr) const;
  // curl inside the namespace: "-s" plus `args`.
  std::string Curl(const std::string& args, int* exit_code = nullptr) const;
  // The JSON an upstream's /__stats returns.
  nlohmann::json UpstreamStats(uint16_t port,
                               const std::string& host = "127.0.0.1") const;
  nlohmann::json AdminJson(const std::string& path) const;
  std::string Metrics() const;

  uint16_t outbound_port() const { return outbound_port_; }
  const std::string& admin() const { return admin_; }
  const std::string& pin_dir() const { return pin_dir_; }
  std::string workloads_cgroup() const { return parent_ + "/workloads"; }
  std::string config_dir() const { return config_dir_; }
  std::vector<std::string> Flags() const;

 private:
  NetnsScope ns_;
  std::string name_, parent_, pin_dir_, admin_, config_dir_, hosts_;
  uint16_t outbound_port_;
  std::unique_ptr<CgroupScope> parent_scope_;
  std::vector<std::unique_ptr<Upstreams>> upstreams_;
  std::unique_ptr<AgentProcess> agent_;
  std::vector<std::string> started_flags_;
  std::string started_hosts_file_;
  bool StartAgent();
};

// Raw HTTP/1.1 over one socket in a namespace: for requests no real
// client would send.
struct RawResponse {
  int status = 0;
  std::string head;  // status line and fields
  std::string body;
  bool closed = false;  // the server closed the connection after it
};
class RawClient {
 public:
  RawClient(const NetnsScope& netns, uint16_t port);
  bool connected() const { return fd_.valid(); }
  // Sends `bytes` and reads one response (framed by Content-Length);
  // status 0 when none came within `timeout_ms`.
  RawResponse Exchange(std::string_view bytes, int timeout_ms = 5000);
  // Whether the server closes the connection within `timeout_ms`.
  bool ClosedWithin(int timeout_ms);

 private:
  net::UniqueFd fd_;
  std::string buffered_;
};

// One exchange on a new connection, then whether it was closed.
RawResponse RawExchange(const NetnsScope& netns, uint16_t port,
                        std::string_view bytes, int close_wait_ms = 1000);

}  // namespace nodemesh::testing

namespace nodemesh::testing::appmesh {

// App Mesh resources in the API shape (`aws appmesh create-*` input), for
// the model of a test. Mesh name: "m".
inline nlohmann::json Mesh() {
  return {{"meshName", "m"}, {"spec", nlohmann::json::object()}};
}

inline nlohmann::json Node(
    const std::string& name, uint16_t port,
    const std::string& hostname = "127.0.0.1",
    const std::string& protocol = "http",
    nlohmann::json listener_extra = nlohmann::json::object(),
    const std::string& response_type = "") {
  nlohmann::json listener = {
      {"portMapping", {{"port", port}, {"protocol", protocol}}}};
  listener.update(listener_extra);
  nlohmann::json dns = {{"hostname", hostname}};
  if (!response_type.empty()) dns["responseType"] = response_type;
  return {{"meshName", "m"},
          {"virtualNodeName", name},
          {"spec",
           {{"listeners", {listener}}, {"serviceDiscovery", {{"dns", dns}}}}}};
}

inline nlohmann::json Router(const std::string& name, uint16_t port,
                             const std::string& protocol = "http") {
  return {{"meshName", "m"},
          {"virtualRouterName", name},
          {"spec",
           {{"listeners",
             {{{"portMapping", {{"port", port}, {"protocol", protocol}}}}}}}}};
}

inline nlohmann::json Route(const std::string& router, const std::string& name,
                            nlohmann::json spec) {
  return {{"meshName", "m"},
          {"virtualRouterName", router},
          {"routeName", name},
          {"spec", std::move(spec)}};
}

inline nlohmann::json Targets(
    std::vector<std::pair<std::string, int>> weighted) {
  nlohmann::json t = nlohmann::json::array();
  for (auto& [node, w] : weighted)
    t.push_back({{"virtualNode", node}, {"weight", w}});
  return {{"weightedTargets", t}};
}

inline nlohmann::json ServiceByRouter(const std::string& name,
                                      const std::string& router) {
  return {
      {"meshName", "m"},
      {"virtualServiceName", name},
      {"spec",
       {{"provider", {{"virtualRouter", {{"virtualRouterName", router}}}}}}}};
}

// A virtual node with one http listener and no service discovery: its
// endpoints are the workloads registered for it (on any node).
inline nlohmann::json RegistryNode(
    const std::string& name, uint16_t port,
    const std::vector<std::string>& backends = {}) {
  nlohmann::json spec = {
      {"listeners",
       {{{"portMapping", {{"port", port}, {"protocol", "http"}}}}}}};
  nlohmann::json b = nlohmann::json::array();
  for (const auto& s : backends)
    b.push_back({{"virtualService", {{"virtualServiceName", s}}}});
  if (!b.empty()) spec["backends"] = b;
  return {{"meshName", "m"}, {"virtualNodeName", name}, {"spec", spec}};
}

inline nlohmann::json ServiceByNode(const std::string& name,
                                    const std::string& node) {
  return {
      {"meshName", "m"},
      {"virtualServiceName", name},
      {"spec", {{"provider", {{"virtualNode", {{"virtualNodeName", node}}}}}}}};
}

inline nlohmann::json Gateway(const std::string& name, uint16_t port) {
  return {{"meshName", "m"},
          {"virtualGatewayName", name},
          {"spec",
           {{"listeners",
             {{{"portMapping", {{"port", port}, {"protocol", "http"}}}}}}}}};
}

inline nlohmann::json GatewayRoute(const std::string& gateway,
                                   const std::string& name,
                                   const std::string& prefix,
                                   const std::string& service) {
  return {
      {"meshName", "m"},
      {"virtualGatewayName", gateway},
      {"gatewayRouteName", name},
      {"spec",
       {{"httpRoute",
         {{"match", {{"prefix", prefix}}},
          {"action",
           {{"target",
             {{"virtualService", {{"virtualServiceName", service}}}}}}}}}}}};
}

}  // namespace nodemesh::testing::appmesh
