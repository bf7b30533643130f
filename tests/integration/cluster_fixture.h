#pragma once

// Clusters on one machine: N test nodes, each a network namespace with its
// own nodemesh-agent (a ProxyNode: own cgroups, pin dir, ports, state and
// config dir), joined by a Linux bridge that lives in a "fabric" namespace
// of its own, so that the root namespace's links and routes are never
// touched. Node k (1-based) is "nK" at 198.18.k.1/15 on its eth0; there is
// no default route anywhere, so nothing a test sends can leave the machine.
//
// By default every agent learns the cluster from the same
// <config_dir>/cluster/nodes.json and workloads.json, written by Start()
// from the workloads declared with AddWorkload(), and the model from a file
// in its config dir. With Options::etcd, a real etcd runs in the fabric
// namespace on 198.18.0.100 (an address of the bridge, so every node
// reaches it across its link), the agents get --etcd_endpoints,
// --node_address and --lease_ttl instead of the cluster files, and the
// model goes into etcd (EtcdModelKey()) instead of the config dirs; the
// agents' etcd traffic then crosses the bridge too, which captures see.
// Workloads run as mesh workloads (`nodemeshctl run`) inside their node's
// namespace, listening on their node's address so that other nodes reach
// them across the bridge.
//
// Everything (agents, workloads, captures, cgroups, pins, namespaces and
// files) is removed in the destructor, also when a test fails midway.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/integration/etcd_fixture.h"
#include "tests/integration/fixtures.h"
#include "tests/integration/proxy_fixture.h"

namespace nodemesh::testing {

// The certificates of a test cluster (tests/integration/cluster_certs.sh):
// one root CA, the mesh's CA bundle, and an intermediate CA per node that
// its agent mints workload leaves from. The directory goes with the object.
class ClusterCerts {
 public:
  // Makes the root and one intermediate per name in `nodes` under a fresh
  // /tmp/nmtest-... directory; ok() is false (with a test failure) when
  // openssl failed.
  explicit ClusterCerts(const std::vector<std::string>& nodes);
  ~ClusterCerts();
  ClusterCerts(const ClusterCerts&) = delete;
  ClusterCerts& operator=(const ClusterCerts&) = delete;

  bool ok() const { return ok_; }
  const std::string& dir() const { return dir_; }
  std::string root() const { return dir_ + "/root.pem"; }
  std::string root_key() const { return dir_ + "/root.key"; }
  std::string intermediate(const std::string& node) const {
    return dir_ + "/" + node + "/intermediate.pem";
  }
  std::string intermediate_key(const std::string& node) const {
    return dir_ + "/" + node + "/intermediate.key";
  }

  // A leaf with `spiffe_id` as its URI SAN, for bad-input tests that play
  // a peer: `pem` the leaf, `chain` leaf + intermediate, `key` its key.
  struct Leaf {
    std::string pem, chain, key;
    std::string root;  // untrusted leaves: the root that did sign them
  };
  // Valid for 30 days, signed by `node`'s intermediate.
  Leaf ValidLeaf(const std::string& node, const std::string& spiffe_id,
                 const std::string& name);
  // Signed by `node`'s intermediate, but its notAfter is in 2021.
  Leaf ExpiredLeaf(const std::string& node, const std::string& spiffe_id,
                   const std::string& name);
  // Under a second root that the mesh does not trust.
  Leaf UntrustedLeaf(const std::string& spiffe_id, const std::string& name);

 private:
  bool Script(const std::string& args);
  std::string dir_;
  bool ok_ = false;
};

// tcpdump in the fabric namespace, writing a pcap until Stop() or the
// object goes.
class PacketCapture {
 public:
  // `interface`: "any" (every bridge port: each bridged packet is seen on
  // its way in and out), "br0", or a node's port "pK". `filter`: a pcap
  // filter. Returns once tcpdump is listening.
  PacketCapture(int fabric_netns_fd, const std::string& interface,
                const std::string& filter);
  ~PacketCapture();
  PacketCapture(const PacketCapture&) = delete;
  PacketCapture& operator=(const PacketCapture&) = delete;

  bool listening() const { return listening_; }
  // SIGINT, then waits for tcpdump to write out and exit. Idempotent.
  void Stop();
  const std::string& pcap_path() const { return path_; }
  // Packets the kernel dropped before tcpdump read them (after Stop(); -1
  // when tcpdump did not say): a test that proves an absence needs 0.
  int dropped() const;
  // The pcap file's bytes (after Stop()).
  std::string Bytes() const;
  // Packets of the pcap that a tshark display filter selects (after
  // Stop()), e.g. "tls.handshake.type == 1"; `decode_as` adds
  // `-d tcp.port==15008,tls`-style hints.
  int Count(const std::string& display_filter,
            const std::string& decode_as = "tcp.port==15008,tls") const;
  // tshark's one-line summaries of the matching packets (for messages).
  std::string Summary(const std::string& display_filter = "",
                      const std::string& decode_as = "tcp.port==15008,tls",
                      int max_packets = 40) const;

 private:
  pid_t pid_ = -1;
  bool listening_ = false;
  bool stopped_ = false;  // tcpdump exited on SIGINT and wrote its counts
  std::string path_;
};

class ClusterScope {
 public:
  struct Options {
    // The agents' identity flags (--ca_bundle, --signing_cert,
    // --signing_key, --trust_domain): off, the agents run without
    // identities and so without a tunnel.
    bool tls = true;
    std::string trust_domain = "cluster.local";
    uint16_t tunnel_port = 15008;
    // --cert_lifetime of minted leaves; empty: the agent's default.
    std::string cert_lifetime;
    // More flags for every agent.
    std::vector<std::string> extra_flags;
    // etcd mode (see the top of this file): an EtcdServer in the fabric,
    // the cluster and the model in it, no cluster/ files, no model file.
    bool etcd = false;
    // The agents' --lease_ttl (seconds) in etcd mode.
    std::string lease_ttl = "3";
  };
  // Where the fabric's etcd listens in etcd mode, and its key prefix.
  static constexpr char kEtcdAddress[] = "198.18.0.100";
  static constexpr uint16_t kEtcdClientPort = 23790;
  static constexpr uint16_t kEtcdPeerPort = 23800;
  static constexpr char kEtcdPrefix[] = "/nodemesh/";
  enum class Server {
    kHttp,  // upstream_server.py (HTTP/1.1; /echo, /__stats, ...)
    kGrpc,  // grpc_peer.py serve (demo.Echo)
  };
  struct Workload {
    int node = 0;  // 1-based
    std::string mesh, virtual_node;
    uint16_t port = 0;
    Server server = Server::kHttp;
    // The workload's address is 198.18.<node>.<host>; hosts other than 1
    // (the node's own) are added to the node's eth0.
    int host = 1;
    // The upstream's name (what upstream_server.py answers with); default
    // "<virtual node>@n<node>".
    std::string name;
    nlohmann::json attributes = nlohmann::json::object();

    std::string address() const;
    std::string upstream_name() const;
  };

  explicit ClusterScope(int nodes, Options options);
  explicit ClusterScope(int nodes) : ClusterScope(nodes, Options()) {}
  ~ClusterScope();
  ClusterScope(const ClusterScope&) = delete;
  ClusterScope& operator=(const ClusterScope&) = delete;

  // Declares a workload (before Start): it goes into every node's
  // cluster/workloads.json and is started on its node by Start().
  void AddWorkload(Workload w);
  void AddWorkload(int node, const std::string& mesh, const std::string& vn,
                   uint16_t port, Server server = Server::kHttp) {
    Workload w;
    w.node = node;
    w.mesh = mesh;
    w.virtual_node = vn;
    w.port = port;
    w.server = server;
    AddWorkload(std::move(w));
  }

  // Links the nodes to the fabric's bridge; in etcd mode also starts the
  // fabric's etcd (empty) and waits until it is healthy. No agent yet:
  // a test may look at etcd, or put things into it, before agents start.
  // Start() calls it when the test did not. False (with a test failure)
  // when something did not come up.
  bool StartFabric();
  // StartFabric() unless done; the certificates; the model (an App Mesh
  // API-shape JSON array of create-* inputs) into each node's config dir,
  // or in etcd mode into etcd (PutModel()); cluster/nodes.json and
  // workloads.json (not in etcd mode); starts every agent, waits until
  // each answers /ready with 200, then starts the workloads. False (with a
  // test failure saying which node and why) when something did not come
  // up; the destructor still cleans up.
  bool Start(const nlohmann::json& model);

  int size() const { return static_cast<int>(nodes_.size()); }
  // Node k, 1-based: Run, Curl, RunAsWorkload, Metrics, AdminJson,
  // UpstreamStats, netns, admin_socket, config_dir, pin_dir, agent().
  ProxyNode& Node(int k) { return *nodes_.at(k - 1); }
  const ProxyNode& Node(int k) const { return *nodes_.at(k - 1); }
  static std::string NodeName(int k) { return "n" + std::to_string(k); }
  static std::string NodeAddress(int k) {
    return "198.18." + std::to_string(k) + ".1";
  }
  // `nodemeshctl run` on node k as a workload of `vn`, then `sh -c`.
  std::string RunAsWorkload(int k, const std::string& mesh,
                            const std::string& vn, const std::string& command,
                            int* exit_code = nullptr) const {
    return Node(k).RunAsWorkload(mesh, vn, command, exit_code);
  }
  // The /__stats of a started HTTP workload (queried from its own node,
  // outside the mesh): requests, by_path, ...
  nlohmann::json UpstreamStats(const Workload& w) const;
  const std::vector<Workload>& workloads() const { return workloads_; }

  // The cluster files every node's agent reads (not written in etcd
  // mode).
  nlohmann::json NodesJson() const;
  nlohmann::json WorkloadsJson() const;
  // The flags node k's agent gets (besides ProxyNode::Flags()).
  std::vector<std::string> AgentFlags(int k) const;

  // etcd mode. The fabric's etcd; null in file mode and before
  // StartFabric().
  EtcdServer* etcd() { return etcd_.get(); }
  const EtcdServer* etcd() const { return etcd_.get(); }
  // Where a resource (a create-* input, as in the model) lives in etcd:
  // <prefix>model/<mesh>/<Kind>/<name>, Kind one of Mesh (name: the mesh's),
  // VirtualNode, VirtualService, VirtualRouter, VirtualGateway; and
  // <prefix>model/<mesh>/Route/<virtualRouterName>/<name>,
  // <prefix>model/<mesh>/GatewayRoute/<virtualGatewayName>/<name> (the
  // README's layout; names percent-encoded where a key segment must not
  // hold a character, as the agent does). "" for something that is not a
  // resource (not an object, no meshName, or an empty name).
  static std::string EtcdModelKey(const nlohmann::json& resource);
  // Puts each resource of `resources` (an array, or one resource) at its
  // EtcdModelKey(), the value its JSON as given, one `etcdctl put` each in
  // order: agents already running may see the puts one by one, so put a
  // resource after those it refers to. False (with a test failure) on the
  // first that fails.
  bool PutModel(const nlohmann::json& resources);
  // Deletes one key (e.g. EtcdModelKey(resource)); true when it existed.
  bool DeleteResource(const std::string& key);

  const NetnsScope& fabric() const { return fabric_; }
  // A command inside the fabric namespace (the bridge's); its stdout.
  std::string RunInFabric(const std::string& command,
                          int* exit_code = nullptr) const;
  // Declare it after the ClusterScope, so that it stops first.
  std::unique_ptr<PacketCapture> Capture(const std::string& filter,
                                         const std::string& interface = "any");
  // Null before Start() or with tls off.
  const ClusterCerts* certs() const { return certs_.get(); }
  const Options& options() const { return options_; }

 private:
  bool Wire();
  bool StartEtcd();
  std::string EtcdEndpoint() const;

  Options options_;
  NetnsScope fabric_;
  std::vector<std::unique_ptr<ProxyNode>> nodes_;
  std::vector<Workload> workloads_;
  std::unique_ptr<ClusterCerts> certs_;
  std::vector<std::unique_ptr<Upstreams>> servers_;
  bool fabric_started_ = false;
  std::unique_ptr<EtcdServer> etcd_;  // after fabric_: it runs in there
};

}  // namespace nodemesh::testing
