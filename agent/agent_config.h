#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace nodemesh {

// Everything the agent's flags say, resolved (defaults that depend on the
// machine, such as the cgroup2 mount, filled in). Modules receive this (or
// the part they need), never a flag global.
struct AgentConfig {
  std::string node_name;
  std::string cgroup_root;
  std::string agent_cgroup;
  std::string bpf_pin_dir;
  std::string admin_address;
  std::string config_dir;
  std::string api_auth = "sigv4";  // or "none"
  std::string api_credentials_file;
  uint16_t outbound_port = 15001;
  uint16_t dns_port = 15053;  // 0: no mesh DNS
  std::string admin_socket = "/run/nodemesh/agent.sock";
  std::string state_dir = "/var/lib/nodemesh";
  std::string service_cidr = "127.128.0.0/16";
  std::vector<std::string> dns_upstreams;  // empty: /etc/resolv.conf
  bool sockmap = true;
  int workers = 1;
  std::string gateway_address = "0.0.0.0";
  std::vector<std::string> gateways;  // mesh/name; empty: all
  std::string lb_policy = "least_request";
  bool cleanup = false;
  int drain_seconds = 5;
  // The tunnel between nodes and the identities it carries.
  uint16_t tunnel_port = 15008;
  std::string trust_domain = "cluster.local";
  std::string ca_bundle;     // the mesh's roots (PEM)
  std::string signing_cert;  // this node's intermediate CA (PEM)
  std::string signing_key;
  int64_t cert_lifetime_seconds = 24 * 3600;
  // Cluster mode (etcd); empty endpoints: one node, files only.
  std::vector<std::string> etcd_endpoints;
  std::string etcd_prefix = "/nodemesh/";
  int lease_ttl_seconds = 10;
  std::string node_address;  // "": the host's first global IPv4 address
};

// Reads the flags (gflags must have parsed argv already).
absl::StatusOr<AgentConfig> AgentConfigFromFlags();

}  // namespace nodemesh
