#include "ctl/maps_command.h"

#include <arpa/inet.h>

#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/datapath/datapath_maps.h"
#include "ctl/admin_client.h"
#include "nlohmann/json.hpp"
#include "nodemesh/abi.h"

namespace nodemesh::ctl {
namespace {

std::string AddrText(const uint8_t addr[16], uint16_t port_host) {
  char buf[INET6_ADDRSTRLEN] = {};
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0,    0,
                                          0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(addr, kMapped, 12) == 0) {
    inet_ntop(AF_INET, addr + 12, buf, sizeof(buf));
    return absl::StrCat(buf, ":", port_host);
  }
  inet_ntop(AF_INET6, addr, buf, sizeof(buf));
  return absl::StrCat("[", buf, "]:", port_host);
}

struct Names {
  std::map<uint32_t, std::string> services;   // service id -> mesh/name
  std::map<uint32_t, std::string> workloads;  // workload id -> mesh/vn
  std::map<uint64_t, std::string> cgroups;    // cgroup id -> workload id
  std::string Service(uint32_t id) const {
    auto it = services.find(id);
    return it == services.end() ? "" : it->second;
  }
  std::string Workload(uint32_t id) const {
    if (id == 0) return "(unregistered)";
    auto it = workloads.find(id);
    return it == workloads.end() ? "" : it->second;
  }
};

Names FetchNames(const std::string& agent) {
  Names n;
  if (auto r = Get(agent, "/vips"); r.ok() && r->status == 200) {
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (j.is_object() && j["vips"].is_object())
      for (const auto& [key, v] : j["vips"].items())
        n.services[v.value("serviceId", 0u)] = key;
  }
  if (auto r = Get(agent, "/workloads"); r.ok() && r->status == 200) {
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (j.is_object() && j["workloads"].is_array())
      for (const auto& w : j["workloads"]) {
        n.workloads[w.value("workloadId", 0u)] =
            w.value("mesh", "") + "/" + w.value("virtualNode", "");
        if (w.value("cgroupId", uint64_t{0}) != 0)
          n.cgroups[w.value("cgroupId", uint64_t{0})] = w.value("id", "");
      }
  }
  return n;
}

// One value of a map, decoded as V; nullopt when absent or short.
template <typename V, typename K>
std::optional<V> Value(const datapath::DatapathMaps& maps,
                       const std::string& map, const K& key) {
  auto v = maps.RawLookup(
      map, std::string(reinterpret_cast<const char*>(&key), sizeof(key)));
  if (!v.ok() || !v->has_value() || (*v)->size() < sizeof(V))
    return std::nullopt;
  V out;
  std::memcpy(&out, (*v)->data(), sizeof(out));
  return out;
}

// Every entry of a hash map, decoded as (K, V).
template <typename K, typename V>
std::vector<std::pair<K, V>> Entries(const datapath::DatapathMaps& maps,
                                     const std::string& map) {
  std::vector<std::pair<K, V>> out;
  auto keys = maps.Keys(map);
  if (!keys.ok()) return out;
  for (const std::string& k : *keys) {
    if (k.size() < sizeof(K)) continue;
    K key;
    std::memcpy(&key, k.data(), sizeof(key));
    if (auto v = Value<V>(maps, map, key)) out.emplace_back(key, *v);
  }
  return out;
}

}  // namespace

int PrintMaps(const std::string& pin_dir, const std::string& agent,
              const std::string& output) {
  auto maps = datapath::DatapathMaps::Open(pin_dir);
  if (!maps.ok()) {
    std::cerr << "nodemeshctl: " << maps.status().message()
              << " (is the agent's --bpf_pin_dir " << pin_dir << "?)\n";
    return 1;
  }
  Names names = FetchNames(agent);
  nlohmann::json out;
  nlohmann::json services = nlohmann::json::array();
  for (const auto& [key, s] :
       Entries<nm_service_key, nm_service>(*maps, "nm_services")) {
    nlohmann::json e = {
        {"address", AddrText(key.addr, ntohs(key.port))},
        {"protocol", key.protocol == 6 ? "tcp" : "udp"},
        {"service_id", s.service_id},
        {"service", names.Service(s.service_id)},
        {"action", s.action == NM_ACTION_DIRECT ? "DIRECT" : "PROXY"}};
    if (s.action == NM_ACTION_DIRECT) {
      nlohmann::json backends = nlohmann::json::array();
      for (uint32_t slot = 0; slot < s.backend_count; ++slot) {
        auto b = Value<nm_backend>(*maps, "nm_backends",
                                   nm_backend_key{s.service_id, slot});
        if (b) backends.push_back(AddrText(b->addr, ntohs(b->port)));
      }
      e["backends"] = backends;
    }
    services.push_back(e);
  }
  out["nm_services"] = services;

  nlohmann::json workloads = nlohmann::json::array();
  for (const auto& [cg, w] :
       Entries<uint64_t, nm_workload>(*maps, "nm_workloads")) {
    workloads.push_back(
        {{"cgroup_id", cg},
         {"workload", names.cgroups.count(cg) ? names.cgroups[cg] : ""},
         {"workload_id", w.workload_id},
         {"virtual_node", names.Workload(w.workload_id)},
         {"egress",
          (w.flags & NM_WORKLOAD_EGRESS_DROP_ALL) ? "DROP_ALL" : "ALLOW_ALL"}});
  }
  out["nm_workloads"] = workloads;

  nlohmann::json policy = nlohmann::json::array();
  for (const auto& [key, p] :
       Entries<nm_policy_key, nm_policy>(*maps, "nm_policy")) {
    policy.push_back(
        {{"workload_id", key.workload_id},
         {"virtual_node", names.Workload(key.workload_id)},
         {"service_id", key.service_id},
         {"service", names.Service(key.service_id)},
         {"verdict", p.verdict == NM_POLICY_ALLOW ? "ALLOW" : "DENY"}});
  }
  out["nm_policy"] = policy;

  nlohmann::json counters = nlohmann::json::array();
  if (auto c = maps->ReadCounters(); c.ok()) {
    for (const auto& [key, t] : *c)
      counters.push_back(
          {{"workload_id", key.first},
           {"virtual_node", names.Workload(key.first)},
           {"service_id", key.second},
           {"service", key.second == 0 ? "(none)" : names.Service(key.second)},
           {"connections", t.connections},
           {"rewrites", t.rewrites},
           {"refusals", t.refusals},
           {"redirects", t.redirects},
           {"bytes", t.bytes}});
  }
  out["nm_counters"] = counters;

  for (const auto& name : datapath::PinnedMapNames())
    if (auto n = maps->CountEntries(name); n.ok() && name != "nm_stats" &&
                                           name != "nm_config" &&
                                           name != "nm_layout")
      out["entries"][name] = *n;
  if (auto stats = maps->ReadStats(); stats.ok())
    for (size_t i = 0; i < stats->size(); ++i)
      out["nm_stats"][datapath::StatNames()[i]] = (*stats)[i];
  if (auto c = maps->ReadConfig(); c.ok())
    out["nm_config"] = {{"outbound_port", c->outbound_port},
                        {"dns_port", c->dns_port},
                        {"sockmap", c->sockmap != 0},
                        {"agent_mark", c->agent_mark}};

  if (output == "json") {
    std::cout << out.dump(2, ' ', false,
                          nlohmann::json::error_handler_t::replace)
              << "\n";
    return 0;
  }
  auto label = [](const std::string& name) {
    return name.empty() ? std::string() : " (" + name + ")";
  };
  std::cout << "nm_services (" << pin_dir << "/nm_services)\n";
  for (const auto& s : out["nm_services"]) {
    std::cout << "  " << s["address"].get<std::string>() << "/"
              << s["protocol"].get<std::string>() << "  service "
              << s["service_id"] << label(s["service"]) << "  "
              << s["action"].get<std::string>();
    if (s.contains("backends")) std::cout << " -> " << s["backends"].dump();
    std::cout << "\n";
  }
  std::cout << "nm_workloads\n";
  for (const auto& w : out["nm_workloads"])
    std::cout << "  cgroup " << w["cgroup_id"] << label(w["workload"])
              << "  workload " << w["workload_id"] << label(w["virtual_node"])
              << "  egress " << w["egress"].get<std::string>() << "\n";
  std::cout << "nm_policy\n";
  for (const auto& p : out["nm_policy"])
    std::cout << "  workload " << p["workload_id"] << label(p["virtual_node"])
              << " -> service " << p["service_id"] << label(p["service"])
              << "  " << p["verdict"].get<std::string>() << "\n";
  std::cout << "nm_counters (per source workload and service)\n";
  for (const auto& c : out["nm_counters"])
    std::cout << "  workload " << c["workload_id"] << label(c["virtual_node"])
              << " -> service " << c["service_id"] << label(c["service"])
              << "  connections " << c["connections"] << " rewrites "
              << c["rewrites"] << " refusals " << c["refusals"] << " redirects "
              << c["redirects"] << " bytes " << c["bytes"] << "\n";
  std::cout << "nm_stats\n";
  for (const auto& [k, v] : out["nm_stats"].items())
    std::cout << "  " << k << " " << v << "\n";
  std::cout << "nm_config " << out["nm_config"].dump() << "\n";
  return 0;
}

}  // namespace nodemesh::ctl
