#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/net/socket.h"
#include "agent/net/unique_fd.h"
#include "nodemesh/abi.h"

struct bpf_map_info;
namespace nodemesh::datapath {

// A service address in the form the maps take: 16 address bytes (IPv4 as
// ::ffff:a.b.c.d) and a host-order port.
struct ServiceAddress {
  uint8_t addr[16] = {};
  uint16_t port = 0;  // host order
  uint8_t protocol = 6;

  // "127.0.0.1:80", "[::1]:80"; protocol TCP unless given.
  static absl::StatusOr<ServiceAddress> Parse(const std::string& text,
                                              uint8_t protocol = 6);
  static ServiceAddress From(const net::SocketAddress& address,
                             uint8_t protocol = 6);
  // `ipv4` in host order.
  static ServiceAddress FromIpv4(uint32_t ipv4, uint16_t port,
                                 uint8_t protocol = 6);
  nm_service_key Key() const;
};

// Sum over CPUs of one (workload, service) counter set.
struct CounterTotals {
  uint64_t connections = 0, rewrites = 0, refusals = 0, redirects = 0,
           bytes = 0;
};

// Sum over CPUs of one (workload, mode) inbound counter set.
struct InboundTotals {
  uint64_t via_agent = 0, direct_admitted = 0, direct_refused = 0;
};

// Typed access to the pinned maps of one pin dir, by path: the agent, the
// tests and nodemeshctl all go through here, never through raw fds.
class DatapathMaps {
 public:
  static absl::StatusOr<DatapathMaps> Open(const std::string& pin_dir);

  absl::Status WriteConfig(const nm_config& config);
  absl::StatusOr<nm_config> ReadConfig() const;

  absl::Status UpsertService(const ServiceAddress& address,
                             const nm_service& service);
  absl::Status DeleteService(const ServiceAddress& address);
  absl::StatusOr<std::optional<nm_service>> LookupService(
      const ServiceAddress& address) const;
  // Replaces the slot table of a DIRECT service; the caller then publishes
  // backend_count in its nm_service (slots are written first, so connect
  // never sees a count larger than the table).
  absl::Status WriteBackends(uint32_t service_id,
                             const std::vector<nm_backend>& backends,
                             uint32_t old_count);

  absl::Status UpsertWorkload(uint64_t cgroup_id, const nm_workload& workload);
  absl::Status DeleteWorkload(uint64_t cgroup_id);
  absl::Status SetPolicy(uint32_t workload_id, uint32_t service_id,
                         nm_policy_verdict verdict);
  absl::Status DeletePolicy(uint32_t workload_id, uint32_t service_id);

  // Inbound enforcement: one listening port of one workload cgroup.
  absl::Status UpsertInbound(const nm_inbound_key& key,
                             const nm_inbound& value);
  absl::Status DeleteInbound(const nm_inbound_key& key);
  absl::StatusOr<std::optional<nm_inbound>> LookupInbound(
      const nm_inbound_key& key) const;
  // By (workload id, enum nm_inbound_mode).
  absl::StatusOr<std::map<std::pair<uint32_t, uint32_t>, InboundTotals>>
  ReadInboundCounters() const;

  // Every key of a hash map, as raw bytes of its key size (a starting agent
  // reconciles what an earlier one left pinned).
  absl::StatusOr<std::vector<std::string>> Keys(
      const std::string& map_name) const;
  // One raw value (for nodemeshctl maps); nullopt when absent.
  absl::StatusOr<std::optional<std::string>> RawLookup(
      const std::string& map_name, const std::string& key) const;

  // Per-CPU values summed.
  absl::StatusOr<std::vector<uint64_t>> ReadStats() const;  // by nm_stat
  absl::StatusOr<std::map<std::pair<uint32_t, uint32_t>, CounterTotals>>
  ReadCounters() const;

  absl::StatusOr<std::optional<nm_layout>> ReadLayout() const;
  absl::Status WriteLayout(const nm_layout& layout);

  // Number of live entries (for a quick look in /stats and tests).
  absl::StatusOr<size_t> CountEntries(const std::string& map_name) const;

 private:
  DatapathMaps() = default;
  // The fd of a map and what the kernel says about it.
  absl::StatusOr<std::pair<int, struct bpf_map_info>> Info(
      const std::string& map_name) const;
  int fd(const std::string& name) const;

  std::string pin_dir_;
  std::map<std::string, net::UniqueFd> fds_;
  int num_cpus_ = 1;
};

// Every map the datapath pins, by name.
const std::vector<std::string>& PinnedMapNames();

// Human-readable names of enum nm_stat, in order ("proxy_rewrites", ...).
const std::vector<std::string>& StatNames();

}  // namespace nodemesh::datapath
