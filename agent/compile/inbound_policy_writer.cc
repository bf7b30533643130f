#include "agent/compile/inbound_policy_writer.h"

#include <cstring>
#include <string>
#include <vector>

#include "glog/logging.h"

namespace nodemesh::compile {
namespace {

nm_inbound_key Key(const std::pair<uint64_t, uint16_t>& k) {
  nm_inbound_key key{};
  key.cgroup_id = k.first;
  key.port = k.second;
  return key;
}

bool Same(const nm_inbound& a, const nm_inbound& b) {
  return a.mode == b.mode && a.workload_id == b.workload_id;
}

}  // namespace

void InboundPolicyWriter::Sync(const model::Snapshot& snapshot) {
  std::vector<std::string> warnings;
  InboundPolicy next = CompileInboundPolicy(
      snapshot, registry_->workloads(),
      [this](const std::string& mesh, const std::string& vn) {
        return registry_->VirtualNodeId(mesh, vn);
      },
      &warnings);
  for (const std::string& w : warnings) LOG(WARNING) << "inbound: " << w;
  if (auto s = Apply(next); !s.ok())
    LOG(ERROR) << "inbound enforcement not fully written: " << s.message();
}

absl::Status InboundPolicyWriter::Apply(const InboundPolicy& next) {
  absl::Status first_error;
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    ++counts_.errors;
    if (first_error.ok()) first_error = s;
  };
  ++counts_.applies;
  // New and changed ports first, then the stale ones go.
  for (const auto& [k, v] : next) {
    auto old = written_.find(k);
    if (old != written_.end() && Same(old->second, v)) continue;
    absl::Status s = maps_->UpsertInbound(Key(k), v);
    note(s);
    if (s.ok()) {
      written_[k] = v;
      LOG(INFO) << "inbound: cgroup " << k.first << " port " << k.second
                << " is " << InboundModeName(v.mode);
    }
  }
  for (auto it = written_.begin(); it != written_.end();) {
    if (next.count(it->first)) {
      ++it;
      continue;
    }
    absl::Status s = maps_->DeleteInbound(Key(it->first));
    note(s);
    if (!s.ok()) {
      ++it;
      continue;
    }
    LOG(INFO) << "inbound: cgroup " << it->first.first << " port "
              << it->first.second << " no longer enforced";
    it = written_.erase(it);
  }
  if (!reconciled_) {
    absl::Status s = Reconcile();
    note(s);
    reconciled_ = s.ok();
  }
  counts_.strict = counts_.permissive = 0;
  for (const auto& [k, v] : written_)
    (v.mode == NM_INBOUND_STRICT ? counts_.strict : counts_.permissive)++;
  return first_error;
}

absl::Status InboundPolicyWriter::Reconcile() {
  auto keys = maps_->Keys("nm_inbound");
  if (!keys.ok()) return keys.status();
  for (const std::string& bytes : *keys) {
    nm_inbound_key k;
    std::memcpy(&k, bytes.data(), sizeof(k));
    if (written_.count({k.cgroup_id, k.port})) continue;
    if (auto s = maps_->DeleteInbound(k); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void InboundPolicyWriter::RenderMetrics(stats::PrometheusText* out) const {
  constexpr char kConnections[] = "nodemesh_bpf_inbound_connections_total";
  out->Family(kConnections, "counter",
              "Connections into workload listeners with tls STRICT or "
              "PERMISSIVE, judged in the kernel: through the agent, or "
              "direct (admitted when PERMISSIVE, refused when STRICT)");
  if (auto counters = maps_->ReadInboundCounters(); counters.ok()) {
    const auto& names = registry_->virtual_node_names();
    for (const auto& [key, t] : *counters) {
      const char* mode = InboundModeName(key.second);
      if (*mode == '\0') continue;
      std::string mesh, vn;
      if (auto it = names.find(key.first); it != names.end()) {
        mesh = it->second.first;
        vn = it->second.second;
      }
      auto labels = [&](const char* path, const char* verdict) {
        return stats::Labels{{"mesh", mesh},
                             {"virtual_node", vn},
                             {"mode", mode},
                             {"path", path},
                             {"verdict", verdict}};
      };
      out->Sample(kConnections, labels("agent", "admitted"), t.via_agent);
      if (key.second == NM_INBOUND_STRICT)
        out->Sample(kConnections, labels("direct", "refused"),
                    t.direct_refused);
      else
        out->Sample(kConnections, labels("direct", "admitted"),
                    t.direct_admitted);
    }
  } else {
    LOG_EVERY_N(WARNING, 100) << "inbound counters: " << counters.status();
  }
  out->Family("nodemesh_inbound_ports", "gauge",
              "Workload listening ports the kernel enforces, by tls mode");
  out->Sample("nodemesh_inbound_ports", {{"mode", "strict"}},
              uint64_t{counts_.strict});
  out->Sample("nodemesh_inbound_ports", {{"mode", "permissive"}},
              uint64_t{counts_.permissive});
  out->Family("nodemesh_inbound_write_errors_total", "counter",
              "nm_inbound writes that failed (the kernel keeps the old "
              "entry)");
  out->Sample("nodemesh_inbound_write_errors_total", {}, counts_.errors);
}

}  // namespace nodemesh::compile
