#include "agent/datapath/datapath_maps.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace nodemesh::datapath {
namespace {

absl::Status MapError(const std::string& what, const std::string& map,
                      int err) {
  return absl::Status(
      absl::ErrnoToStatusCode(err),
      absl::StrCat(what, " in ", map, ": ", std::strerror(err)));
}

}  // namespace

const std::vector<std::string>& PinnedMapNames() {
  static const std::vector<std::string> names = {
      "nm_services",    "nm_backends",    "nm_workloads", "nm_policy",
      "nm_counters",    "nm_stats",       "nm_sock_meta", "nm_orig_by_peer",
      "nm_sock_pairs",  "nm_config",      "nm_layout",    "nm_inbound",
      "nm_inbound_ctr", "nm_refused_syns"};
  return names;
}

const std::vector<std::string>& StatNames() {
  static const std::vector<std::string> names = {
      "connect_seen",       "connect_skipped_mark", "proxy_rewrites",
      "direct_rewrites",    "policy_refusals",      "direct_no_backend",
      "dns_redirects",      "dns_restores",         "orig_dst_recorded",
      "orig_dst_answers",   "orig_dst_misses",      "sockhash_adds",
      "sockhash_add_fails", "msg_redirects",        "msg_redirect_misses",
      "msg_bytes"};
  static_assert(NM_STAT_MAX == 16, "name every nm_stat");
  return names;
}

absl::StatusOr<ServiceAddress> ServiceAddress::Parse(const std::string& text,
                                                     uint8_t protocol) {
  ServiceAddress out;
  out.protocol = protocol;
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() ||
        text[close + 1] != ':')
      return absl::InvalidArgumentError(absl::StrCat("bad address ", text));
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (inet_pton(AF_INET6, host.c_str(), out.addr) != 1)
      return absl::InvalidArgumentError(absl::StrCat("bad IPv6 in ", text));
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat("no port in ", text));
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    in_addr a4;
    if (inet_pton(AF_INET, host.c_str(), &a4) != 1)
      return absl::InvalidArgumentError(absl::StrCat("bad IPv4 in ", text));
    out = FromIpv4(ntohl(a4.s_addr), 0, protocol);
  }
  uint32_t p;
  if (!absl::SimpleAtoi(port, &p) || p == 0 || p > 65535)
    return absl::InvalidArgumentError(absl::StrCat("bad port in ", text));
  out.port = static_cast<uint16_t>(p);
  return out;
}

ServiceAddress ServiceAddress::FromIpv4(uint32_t ipv4, uint16_t port,
                                        uint8_t protocol) {
  ServiceAddress out;
  out.addr[10] = out.addr[11] = 0xff;
  uint32_t be = htonl(ipv4);
  std::memcpy(out.addr + 12, &be, 4);
  out.port = port;
  out.protocol = protocol;
  return out;
}

ServiceAddress ServiceAddress::From(const net::SocketAddress& address,
                                    uint8_t protocol) {
  if (address.family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address.addr());
    return FromIpv4(ntohl(v4->sin_addr.s_addr), address.port(), protocol);
  }
  ServiceAddress out;
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address.addr());
  std::memcpy(out.addr, &v6->sin6_addr, 16);
  out.port = address.port();
  out.protocol = protocol;
  return out;
}

nm_service_key ServiceAddress::Key() const {
  nm_service_key key{};
  std::memcpy(key.addr, addr, 16);
  key.port = htons(port);
  key.protocol = protocol;
  return key;
}

absl::StatusOr<DatapathMaps> DatapathMaps::Open(const std::string& pin_dir) {
  DatapathMaps maps;
  maps.pin_dir_ = pin_dir;
  for (const auto& name : PinnedMapNames()) {
    std::string path = absl::StrCat(pin_dir, "/", name);
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) return MapError("opening pinned map", path, errno);
    maps.fds_.emplace(name, net::UniqueFd(fd));
  }
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return absl::InternalError("cannot count possible CPUs");
  maps.num_cpus_ = cpus;
  return maps;
}

int DatapathMaps::fd(const std::string& name) const {
  return fds_.at(name).get();
}

absl::Status DatapathMaps::WriteConfig(const nm_config& config) {
  uint32_t zero = 0;
  if (bpf_map_update_elem(fd("nm_config"), &zero, &config, BPF_ANY) != 0)
    return MapError("writing config", "nm_config", errno);
  return absl::OkStatus();
}

absl::StatusOr<nm_config> DatapathMaps::ReadConfig() const {
  uint32_t zero = 0;
  nm_config config{};
  if (bpf_map_lookup_elem(fd("nm_config"), &zero, &config) != 0)
    return MapError("reading config", "nm_config", errno);
  return config;
}

absl::Status DatapathMaps::UpsertService(const ServiceAddress& address,
                                         const nm_service& service) {
  nm_service_key key = address.Key();
  if (bpf_map_update_elem(fd("nm_services"), &key, &service, BPF_ANY) != 0)
    return MapError("writing service", "nm_services", errno);
  return absl::OkStatus();
}

absl::Status DatapathMaps::DeleteService(const ServiceAddress& address) {
  nm_service_key key = address.Key();
  if (bpf_map_delete_elem(fd("nm_services"), &key) != 0 && errno != ENOENT)
    return MapError("deleting service", "nm_services", errno);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<nm_service>> DatapathMaps::LookupService(
    const ServiceAddress& address) const {
  nm_service_key key = address.Key();
  nm_service value{};
  if (bpf_map_lookup_elem(fd("nm_services"), &key, &value) == 0) return value;
  if (errno == ENOENT) return std::nullopt;
  return MapError("reading service", "nm_services", errno);
}

absl::Status DatapathMaps::WriteBackends(
    uint32_t service_id, const std::vector<nm_backend>& backends,
    uint32_t old_count) {
  for (uint32_t slot = 0; slot < backends.size(); ++slot) {
    nm_backend_key key{service_id, slot};
    if (bpf_map_update_elem(fd("nm_backends"), &key, &backends[slot],
                            BPF_ANY) != 0)
      return MapError("writing backend", "nm_backends", errno);
  }
  for (uint32_t slot = backends.size(); slot < old_count; ++slot) {
    nm_backend_key key{service_id, slot};
    bpf_map_delete_elem(fd("nm_backends"), &key);
  }
  return absl::OkStatus();
}

absl::Status DatapathMaps::UpsertWorkload(uint64_t cgroup_id,
                                          const nm_workload& workload) {
  if (bpf_map_update_elem(fd("nm_workloads"), &cgroup_id, &workload, BPF_ANY) !=
      0)
    return MapError("writing workload", "nm_workloads", errno);
  return absl::OkStatus();
}

absl::Status DatapathMaps::DeleteWorkload(uint64_t cgroup_id) {
  if (bpf_map_delete_elem(fd("nm_workloads"), &cgroup_id) != 0 &&
      errno != ENOENT)
    return MapError("deleting workload", "nm_workloads", errno);
  return absl::OkStatus();
}

absl::Status DatapathMaps::SetPolicy(uint32_t workload_id, uint32_t service_id,
                                     nm_policy_verdict verdict) {
  nm_policy_key key{workload_id, service_id};
  nm_policy value{static_cast<uint32_t>(verdict)};
  if (bpf_map_update_elem(fd("nm_policy"), &key, &value, BPF_ANY) != 0)
    return MapError("writing policy", "nm_policy", errno);
  return absl::OkStatus();
}

absl::Status DatapathMaps::DeletePolicy(uint32_t workload_id,
                                        uint32_t service_id) {
  nm_policy_key key{workload_id, service_id};
  if (bpf_map_delete_elem(fd("nm_policy"), &key) != 0 && errno != ENOENT)
    return MapError("deleting policy", "nm_policy", errno);
  return absl::OkStatus();
}

absl::Status DatapathMaps::UpsertInbound(const nm_inbound_key& key,
                                         const nm_inbound& value) {
  if (bpf_map_update_elem(fd("nm_inbound"), &key, &value, BPF_ANY) != 0)
    return MapError("writing inbound port", "nm_inbound", errno);
  return absl::OkStatus();
}

absl::Status DatapathMaps::DeleteInbound(const nm_inbound_key& key) {
  if (bpf_map_delete_elem(fd("nm_inbound"), &key) != 0 && errno != ENOENT)
    return MapError("deleting inbound port", "nm_inbound", errno);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<nm_inbound>> DatapathMaps::LookupInbound(
    const nm_inbound_key& key) const {
  nm_inbound value{};
  if (bpf_map_lookup_elem(fd("nm_inbound"), &key, &value) == 0) return value;
  if (errno == ENOENT) return std::nullopt;
  return MapError("reading inbound port", "nm_inbound", errno);
}

absl::StatusOr<std::map<std::pair<uint32_t, uint32_t>, InboundTotals>>
DatapathMaps::ReadInboundCounters() const {
  std::map<std::pair<uint32_t, uint32_t>, InboundTotals> out;
  std::vector<nm_inbound_ctr> per_cpu(num_cpus_);
  nm_inbound_ctr_key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd("nm_inbound_ctr"), prev, &next) == 0) {
    key = next;
    prev = &key;
    if (bpf_map_lookup_elem(fd("nm_inbound_ctr"), &key, per_cpu.data()) != 0)
      continue;  // deleted between the two calls
    InboundTotals& t = out[{key.workload_id, key.mode}];
    for (const auto& c : per_cpu) {
      t.via_agent += c.via_agent;
      t.direct_admitted += c.direct_admitted;
      t.direct_refused += c.direct_refused;
    }
  }
  return out;
}

absl::StatusOr<std::pair<int, bpf_map_info>> DatapathMaps::Info(
    const std::string& map_name) const {
  auto it = fds_.find(map_name);
  if (it == fds_.end())
    return absl::NotFoundError(absl::StrCat("no map ", map_name));
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(it->second.get(), &info, &len) != 0)
    return MapError("reading map info", map_name, errno);
  return std::make_pair(it->second.get(), info);
}

absl::StatusOr<std::vector<std::string>> DatapathMaps::Keys(
    const std::string& map_name) const {
  auto map = Info(map_name);
  if (!map.ok()) return map.status();
  const auto& [map_fd, info] = *map;
  std::vector<std::string> keys;
  std::string key(info.key_size, '\0'), next(info.key_size, '\0');
  const void* prev = nullptr;
  while (bpf_map_get_next_key(map_fd, prev, next.data()) == 0) {
    keys.push_back(next);
    key = next;
    prev = key.data();
  }
  return keys;
}

absl::StatusOr<std::optional<std::string>> DatapathMaps::RawLookup(
    const std::string& map_name, const std::string& key) const {
  auto map = Info(map_name);
  if (!map.ok()) return map.status();
  const auto& [map_fd, info] = *map;
  bool per_cpu = info.type == BPF_MAP_TYPE_PERCPU_HASH ||
                 info.type == BPF_MAP_TYPE_PERCPU_ARRAY;
  size_t value_size =
      per_cpu ? ((info.value_size + 7) / 8 * 8) * num_cpus_ : info.value_size;
  std::string value(value_size, '\0');
  if (bpf_map_lookup_elem(map_fd, key.data(), value.data()) != 0) {
    if (errno == ENOENT) return std::nullopt;
    return MapError("reading", map_name, errno);
  }
  return value;
}

absl::StatusOr<std::vector<uint64_t>> DatapathMaps::ReadStats() const {
  std::vector<uint64_t> totals(NM_STAT_MAX, 0);
  std::vector<uint64_t> per_cpu(num_cpus_);
  for (uint32_t i = 0; i < NM_STAT_MAX; ++i) {
    if (bpf_map_lookup_elem(fd("nm_stats"), &i, per_cpu.data()) != 0)
      return MapError("reading stats", "nm_stats", errno);
    for (uint64_t v : per_cpu) totals[i] += v;
  }
  return totals;
}

absl::StatusOr<std::map<std::pair<uint32_t, uint32_t>, CounterTotals>>
DatapathMaps::ReadCounters() const {
  std::map<std::pair<uint32_t, uint32_t>, CounterTotals> out;
  std::vector<nm_counters> per_cpu(num_cpus_);
  nm_counter_key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd("nm_counters"), prev, &next) == 0) {
    key = next;
    prev = &key;
    if (bpf_map_lookup_elem(fd("nm_counters"), &key, per_cpu.data()) != 0)
      continue;  // deleted between the two calls
    CounterTotals& t = out[{key.workload_id, key.service_id}];
    for (const auto& c : per_cpu) {
      t.connections += c.connections;
      t.rewrites += c.rewrites;
      t.refusals += c.refusals;
      t.redirects += c.redirects;
      t.bytes += c.bytes;
    }
  }
  return out;
}

absl::StatusOr<std::optional<nm_layout>> DatapathMaps::ReadLayout() const {
  uint32_t zero = 0;
  nm_layout layout{};
  if (bpf_map_lookup_elem(fd("nm_layout"), &zero, &layout) != 0)
    return MapError("reading layout", "nm_layout", errno);
  if (layout.version == 0) return std::nullopt;
  return layout;
}

absl::Status DatapathMaps::WriteLayout(const nm_layout& layout) {
  uint32_t zero = 0;
  if (bpf_map_update_elem(fd("nm_layout"), &zero, &layout, BPF_ANY) != 0)
    return MapError("writing layout", "nm_layout", errno);
  return absl::OkStatus();
}

absl::StatusOr<size_t> DatapathMaps::CountEntries(
    const std::string& map_name) const {
  auto it = fds_.find(map_name);
  if (it == fds_.end())
    return absl::NotFoundError(absl::StrCat("no map ", map_name));
  // Key sizes differ per map; the largest key in the ABI bounds them all.
  alignas(8) unsigned char key[64], next[64];
  const void* prev = nullptr;
  size_t n = 0;
  while (bpf_map_get_next_key(it->second.get(), prev, next) == 0) {
    std::memcpy(key, next, sizeof(key));
    prev = key;
    ++n;
  }
  return n;
}

}  // namespace nodemesh::datapath
