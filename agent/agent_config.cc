#include "agent/agent_config.h"

#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "agent/datapath/kernel_fs.h"
#include "gflags/gflags.h"

// The agent's flags, defined here and nowhere else (DESIGN "Contracts").
DEFINE_string(node_name, "", "This node's name (default: the host name)");
DEFINE_string(cgroup_root, "",
              "cgroup v2 directory under which workloads run; connect, "
              "sendmsg, recvmsg and sockops attach here (default: "
              "<cgroup2 mount>/nodemesh)");
DEFINE_string(
    agent_cgroup, "",
    "cgroup v2 directory the agent moves itself into; getsockopt "
    "and sockops attach here (default: <cgroup2 mount>/nodemesh-agent)");
DEFINE_string(bpf_pin_dir, "/sys/fs/bpf/nodemesh",
              "Where the datapath's maps and links are pinned");
// Off by default: on this kernel (6.18) a blocking recv() on a spliced
// socket can fail with EAGAIN while bytes are still in flight
// (tests/integration/proxy_tcp_test.cc shows it with --sockmap), which
// breaks ordinary clients; see README "Splicing".
DEFINE_bool(sockmap, false,
            "Splice local socket pairs with sockops + sk_msg (SOCKHASH); "
            "off by default, see the README");
DEFINE_string(
    admin_address, "127.0.0.1:15000",
    "Read-only admin HTTP endpoint (/healthz /ready /metrics /stats)");
DEFINE_string(config_dir, "/etc/nodemesh",
              "Mesh model files (App Mesh JSON, appmesh.k8s.aws YAML), "
              "watched and hot-reloaded; created when missing");
DEFINE_string(api_auth, "sigv4",
              "App Mesh API authentication: sigv4 (requests signed with a "
              "key from --api_credentials_file; without one the API is "
              "read-only) or none (unsigned writes accepted: demos only)");
DEFINE_string(api_credentials_file, "",
              "AWS credentials file (the AWS CLI's INI format) whose keys "
              "may sign App Mesh API requests");
DEFINE_int32(outbound_port, 15001,
             "Port of the agent's outbound listener that connect4/6 redirect "
             "service connections to, in the caller's network namespace");
DEFINE_int32(dns_port, 15053,
             "Port of the mesh DNS that workloads' port-53 queries are "
             "redirected to, on the loopback of their network namespace; 0 "
             "turns the mesh DNS off");
DEFINE_string(dns_upstreams, "",
              "Resolvers for names outside the mesh, comma-separated ip:port "
              "(default: the nameservers of /etc/resolv.conf)");
DEFINE_string(admin_socket, "/run/nodemesh/agent.sock",
              "Unix socket (mode 0600, root only) for the mutating endpoints: "
              "POST /workloads, DELETE /workloads/{id}");
DEFINE_string(state_dir, "/var/lib/nodemesh",
              "State that outlives the agent: workload registrations and "
              "VIP allocations");
DEFINE_string(service_cidr, "127.128.0.0/16",
              "IPv4 range of virtual service VIPs; inside 127.0.0.0/8 by "
              "default so that a connection that escapes redirection stays "
              "on the host");
DEFINE_int32(workers, 0, "Worker threads (default: the number of cores)");
DEFINE_string(gateway_address, "0.0.0.0",
              "IP address the VirtualGateway listeners bind (each on its "
              "listener's port)");
DEFINE_string(gateways, "",
              "VirtualGateways this node runs, comma-separated mesh/name "
              "(default: every VirtualGateway in the model)");
DEFINE_string(lb_policy, "least_request",
              "Endpoint balancing: least_request (power of two choices) or "
              "round_robin");
DEFINE_bool(cleanup, false,
            "Detach and unpin everything under --bpf_pin_dir, then exit");
DEFINE_int32(drain_seconds, 5,
             "On SIGTERM, how long to wait for in-flight requests");

DEFINE_int32(tunnel_port, 15008,
             "Port of the mutual-TLS tunnel other nodes' agents connect to "
             "(HTTP/2 CONNECT, the HBONE convention); 0: none");
DEFINE_string(trust_domain, "cluster.local",
              "SPIFFE trust domain of the identities this node mints "
              "(spiffe://<trust domain>/ns/<mesh>/vn/<virtual node>)");
DEFINE_string(ca_bundle, "",
              "PEM file of the mesh's root CAs: every tunnel peer must chain "
              "to one");
DEFINE_string(signing_cert, "",
              "PEM file of this node's intermediate CA certificate (further "
              "intermediates may follow): it signs the workloads' leaves");
DEFINE_string(signing_key, "", "PEM file of --signing_cert's private key");
DEFINE_string(cert_lifetime, "24h",
              "Lifetime of minted leaf certificates (e.g. 24h, 90m, 30s); "
              "each is renewed at half its life");

DEFINE_string(etcd_endpoints, "",
              "Cluster mode: etcd v3 client URLs, comma-separated "
              "(http://host:port). The mesh model, the nodes and the "
              "workload registrations then live in etcd under "
              "--etcd_prefix; empty: one node, files only");
DEFINE_string(etcd_prefix, "/nodemesh/",
              "Key prefix of everything this mesh keeps in etcd (model/, "
              "nodes/, workloads/ below it)");
DEFINE_int32(lease_ttl, 10,
             "Seconds this node's etcd registrations (its node record and "
             "local workloads) outlive the agent when it stops renewing "
             "them, e.g. after a crash");
DEFINE_string(node_address, "",
              "Cluster mode: the IP address other nodes reach this node's "
              "tunnel at (published in etcd); default: the first global "
              "IPv4 address of the host's interfaces");

namespace nodemesh {
namespace {}  // namespace

absl::StatusOr<AgentConfig> AgentConfigFromFlags() {
  AgentConfig c;
  c.node_name = FLAGS_node_name;
  if (c.node_name.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    c.node_name = host;
  }
  c.cgroup_root = FLAGS_cgroup_root;
  c.agent_cgroup = FLAGS_agent_cgroup;
  if (c.cgroup_root.empty() || c.agent_cgroup.empty()) {
    auto found = datapath::FindCgroup2Mount();
    if (!found.ok() && !FLAGS_cleanup) return found.status();
    std::string mount = found.ok() ? *found : "";
    if (c.cgroup_root.empty()) c.cgroup_root = mount + "/nodemesh";
    if (c.agent_cgroup.empty()) c.agent_cgroup = mount + "/nodemesh-agent";
  }
  c.bpf_pin_dir = FLAGS_bpf_pin_dir;
  c.admin_address = FLAGS_admin_address;
  c.config_dir = FLAGS_config_dir;
  if (FLAGS_api_auth != "sigv4" && FLAGS_api_auth != "none")
    return absl::InvalidArgumentError("--api_auth=" + FLAGS_api_auth +
                                      ": use sigv4 or none");
  c.api_auth = FLAGS_api_auth;
  c.api_credentials_file = FLAGS_api_credentials_file;
  if (FLAGS_outbound_port <= 0 || FLAGS_outbound_port > 65535)
    return absl::InvalidArgumentError(absl::StrCat(
        "--outbound_port=", FLAGS_outbound_port, " is not a port (1-65535)"));
  c.outbound_port = static_cast<uint16_t>(FLAGS_outbound_port);
  c.sockmap = FLAGS_sockmap;
  if (FLAGS_dns_port < 0 || FLAGS_dns_port > 65535)
    return absl::InvalidArgumentError(absl::StrCat(
        "--dns_port=", FLAGS_dns_port, " is not a port (0 turns DNS off)"));
  c.dns_port = static_cast<uint16_t>(FLAGS_dns_port);
  c.admin_socket = FLAGS_admin_socket;
  c.state_dir = FLAGS_state_dir;
  c.service_cidr = FLAGS_service_cidr;
  for (absl::string_view u :
       absl::StrSplit(FLAGS_dns_upstreams, ',', absl::SkipEmpty())) {
    c.dns_upstreams.emplace_back(u);
  }
  c.workers = FLAGS_workers > 0
                  ? FLAGS_workers
                  : static_cast<int>(std::thread::hardware_concurrency());
  if (c.workers <= 0) c.workers = 1;
  c.gateway_address = FLAGS_gateway_address;
  for (absl::string_view g :
       absl::StrSplit(FLAGS_gateways, ',', absl::SkipEmpty())) {
    if (g.find('/') == absl::string_view::npos)
      return absl::InvalidArgumentError(
          absl::StrCat("--gateways: '", g, "' is not mesh/virtual-gateway"));
    c.gateways.emplace_back(g);
  }
  if (FLAGS_lb_policy != "least_request" && FLAGS_lb_policy != "round_robin")
    return absl::InvalidArgumentError("--lb_policy=" + FLAGS_lb_policy +
                                      ": use least_request or round_robin");
  c.lb_policy = FLAGS_lb_policy;
  c.cleanup = FLAGS_cleanup;
  c.drain_seconds = FLAGS_drain_seconds;
  if (FLAGS_tunnel_port < 0 || FLAGS_tunnel_port > 65535)
    return absl::InvalidArgumentError(
        absl::StrCat("--tunnel_port=", FLAGS_tunnel_port,
                     " is not a port (0 turns it off)"));
  c.tunnel_port = static_cast<uint16_t>(FLAGS_tunnel_port);
  c.trust_domain = FLAGS_trust_domain;
  if (c.trust_domain.empty() ||
      c.trust_domain.find_first_of("/:") != std::string::npos)
    return absl::InvalidArgumentError(
        "--trust_domain=" + FLAGS_trust_domain +
        ": a SPIFFE trust domain is a name such as cluster.local");
  c.ca_bundle = FLAGS_ca_bundle;
  c.signing_cert = FLAGS_signing_cert;
  c.signing_key = FLAGS_signing_key;
  const bool any =
      !c.ca_bundle.empty() || !c.signing_cert.empty() || !c.signing_key.empty();
  const bool all =
      !c.ca_bundle.empty() && !c.signing_cert.empty() && !c.signing_key.empty();
  if (any && !all)
    return absl::InvalidArgumentError(
        "--ca_bundle, --signing_cert and --signing_key go together: give all "
        "three (or none: no identities, no tunnel)");
  absl::Duration lifetime;
  if (!absl::ParseDuration(FLAGS_cert_lifetime, &lifetime) ||
      lifetime < absl::Seconds(2))
    return absl::InvalidArgumentError("--cert_lifetime=" + FLAGS_cert_lifetime +
                                      ": a duration of at least 2s, e.g. 24h");
  c.cert_lifetime_seconds = absl::ToInt64Seconds(lifetime);
  for (absl::string_view e :
       absl::StrSplit(FLAGS_etcd_endpoints, ',', absl::SkipEmpty())) {
    c.etcd_endpoints.emplace_back(e);
  }
  c.etcd_prefix = FLAGS_etcd_prefix;
  if (c.etcd_prefix.empty() || c.etcd_prefix.front() != '/' ||
      c.etcd_prefix.back() != '/')
    return absl::InvalidArgumentError("--etcd_prefix=" + FLAGS_etcd_prefix +
                                      ": a key prefix such as /nodemesh/");
  if (FLAGS_lease_ttl < 2 || FLAGS_lease_ttl > 3600)
    return absl::InvalidArgumentError(
        absl::StrCat("--lease_ttl=", FLAGS_lease_ttl, ": seconds, 2 to 3600"));
  c.lease_ttl_seconds = FLAGS_lease_ttl;
  c.node_address = FLAGS_node_address;
  return c;
}

}  // namespace nodemesh
