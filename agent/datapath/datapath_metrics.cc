#include "agent/datapath/datapath_metrics.h"

#include "absl/strings/str_cat.h"

namespace nodemesh::datapath {
namespace {

struct CounterFamily {
  const char* name;
  const char* help;
  uint64_t CounterTotals::*field;
};

constexpr CounterFamily kCounterFamilies[] = {
    {"nodemesh_bpf_service_connects_total",
     "connect() calls to a service, by source workload and service",
     &CounterTotals::connections},
    {"nodemesh_bpf_service_rewrites_total",
     "Service connects rewritten to the proxy or a local endpoint",
     &CounterTotals::rewrites},
    {"nodemesh_bpf_service_refusals_total",
     "Connects refused in the kernel (egress policy, no local endpoint)",
     &CounterTotals::refusals},
    {"nodemesh_bpf_splice_redirects_total",
     "sk_msg redirects between spliced local sockets",
     &CounterTotals::redirects},
    {"nodemesh_bpf_splice_bytes_total",
     "Bytes sk_msg redirected between spliced local sockets",
     &CounterTotals::bytes},
};

}  // namespace

absl::Status RenderDatapathMetrics(const Datapath& datapath,
                                   stats::PrometheusText* out,
                                   const CounterNamer& namer) {
  auto stats = datapath.maps().ReadStats();
  if (!stats.ok()) return stats.status();
  const auto& names = StatNames();
  for (size_t i = 0; i < names.size(); ++i) {
    std::string family = absl::StrCat("nodemesh_bpf_", names[i], "_total");
    out->Family(family, "counter",
                absl::StrCat("Datapath event ", names[i], ", all CPUs"));
    out->Sample(family, {}, (*stats)[i]);
  }
  auto counters = datapath.maps().ReadCounters();
  if (!counters.ok()) return counters.status();
  // One label set per (workload, service), shared by every family.
  std::vector<stats::Labels> labels;
  labels.reserve(counters->size());
  for (const auto& [key, totals] : *counters) {
    stats::Labels& l = labels.emplace_back(
        stats::Labels{{"source_workload_id", absl::StrCat(key.first)},
                      {"service_id", absl::StrCat(key.second)}});
    if (namer) {
      stats::Labels names = namer(key.first, key.second);
      l.insert(l.end(), names.begin(), names.end());
    }
  }
  for (const auto& f : kCounterFamilies) {
    out->Family(f.name, "counter", f.help);
    size_t i = 0;
    for (const auto& [key, totals] : *counters)
      out->Sample(f.name, labels[i++], totals.*(f.field));
  }
  out->Family("nodemesh_bpf_datapath_info", "gauge",
              "The pinned datapath: how this agent found it, its layout");
  out->Sample("nodemesh_bpf_datapath_info",
              {{"pin_state", PinStateName(datapath.pin_state())},
               {"layout_version", absl::StrCat(NM_LAYOUT_VERSION)}},
              uint64_t{1});
  return absl::OkStatus();
}

nlohmann::json DatapathStatsJson(const Datapath& datapath) {
  nlohmann::json j;
  j["pin_state"] = PinStateName(datapath.pin_state());
  j["layout_version"] = NM_LAYOUT_VERSION;
  for (const auto& [point, program] : datapath.attachments())
    j["attachments"].push_back({{"attach_point", point}, {"program", program}});
  if (auto stats = datapath.maps().ReadStats(); stats.ok()) {
    for (size_t i = 0; i < StatNames().size(); ++i)
      j["counters"][StatNames()[i]] = (*stats)[i];
  }
  if (auto counters = datapath.maps().ReadCounters(); counters.ok()) {
    j["services"] = nlohmann::json::array();
    for (const auto& [key, t] : *counters)
      j["services"].push_back({{"source_workload_id", key.first},
                               {"service_id", key.second},
                               {"connections", t.connections},
                               {"rewrites", t.rewrites},
                               {"refusals", t.refusals},
                               {"splice_redirects", t.redirects},
                               {"splice_bytes", t.bytes}});
  }
  for (const char* map :
       {"nm_services", "nm_backends", "nm_workloads", "nm_policy",
        "nm_orig_by_peer", "nm_sock_pairs", "nm_inbound"})
    if (auto n = datapath.maps().CountEntries(map); n.ok())
      j["map_entries"][map] = *n;
  return j;
}

}  // namespace nodemesh::datapath
