#include "agent/compile/service_map_writer.h"

#include <arpa/inet.h>

#include <cstring>

#include "glog/logging.h"

namespace nodemesh::compile {
namespace {

std::string KeyBytes(const datapath::ServiceAddress& a) {
  nm_service_key k = a.Key();
  return std::string(reinterpret_cast<const char*>(&k), sizeof(k));
}

bool SameEntry(const ServiceMapEntry& a, const ServiceMapEntry& b) {
  if (std::memcmp(&a.value, &b.value, sizeof(a.value)) != 0) return false;
  if (a.backends.size() != b.backends.size()) return false;
  return a.backends.empty() ||
         std::memcmp(a.backends.data(), b.backends.data(),
                     a.backends.size() * sizeof(nm_backend)) == 0;
}

}  // namespace

absl::Status ServiceMapWriter::Apply(const ServiceMapContents& next) {
  absl::Status first_error;
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    ++counts_.errors;
    LOG(ERROR) << "service map: " << s.message();
    if (first_error.ok()) first_error = s;
  };
  ++counts_.applies;

  // Services: slots before counts, so connect() never reads past a table.
  std::map<std::string, const ServiceMapEntry*> wanted;
  for (const ServiceMapEntry& e : next.services)
    wanted[KeyBytes(e.address)] = &e;
  for (const auto& [key, e] : wanted) {
    auto old = services_.find(key);
    if (old != services_.end() && SameEntry(old->second, *e)) continue;
    uint32_t old_count = old == services_.end() ? 0
                         : old->second.value.service_id == e->value.service_id
                             ? old->second.value.backend_count
                             : 0;
    if (!e->backends.empty() || old_count > 0)
      note(maps_->WriteBackends(e->value.service_id, e->backends, old_count));
    note(maps_->UpsertService(e->address, e->value));
    services_[key] = *e;
  }
  for (auto it = services_.begin(); it != services_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    note(maps_->DeleteService(it->second.address));
    if (it->second.value.backend_count > 0)
      note(maps_->WriteBackends(it->second.value.service_id, {},
                                it->second.value.backend_count));
    it = services_.erase(it);
  }

  for (const auto& [cg, w] : next.workloads) {
    auto old = workloads_.find(cg);
    if (old != workloads_.end() &&
        std::memcmp(&old->second, &w, sizeof(w)) == 0)
      continue;
    note(maps_->UpsertWorkload(cg, w));
    workloads_[cg] = w;
  }
  for (auto it = workloads_.begin(); it != workloads_.end();) {
    if (next.workloads.count(it->first)) {
      ++it;
      continue;
    }
    note(maps_->DeleteWorkload(it->first));
    it = workloads_.erase(it);
  }

  for (const auto& [key, verdict] : next.policy) {
    auto old = policy_.find(key);
    if (old != policy_.end() && old->second == verdict) continue;
    note(maps_->SetPolicy(key.first, key.second, verdict));
    policy_[key] = verdict;
  }
  for (auto it = policy_.begin(); it != policy_.end();) {
    if (next.policy.count(it->first)) {
      ++it;
      continue;
    }
    note(maps_->DeletePolicy(it->first.first, it->first.second));
    it = policy_.erase(it);
  }

  if (!reconciled_) {
    note(Reconcile());
    reconciled_ = true;
  }
  counts_.services = services_.size();
  counts_.direct = next.direct_services;
  counts_.workloads = workloads_.size();
  counts_.policy = policy_.size();
  return first_error;
}

absl::Status ServiceMapWriter::Reconcile() {
  // Entries pinned by an earlier agent that this one did not write.
  auto services = maps_->Keys("nm_services");
  if (!services.ok()) return services.status();
  for (const std::string& key : *services) {
    if (services_.count(key)) continue;
    nm_service_key k;
    std::memcpy(&k, key.data(), sizeof(k));
    datapath::ServiceAddress a;
    std::memcpy(a.addr, k.addr, 16);
    a.port = ntohs(k.port);
    a.protocol = k.protocol;
    if (auto s = maps_->DeleteService(a); !s.ok()) return s;
  }
  auto workloads = maps_->Keys("nm_workloads");
  if (!workloads.ok()) return workloads.status();
  for (const std::string& key : *workloads) {
    uint64_t cg;
    std::memcpy(&cg, key.data(), sizeof(cg));
    if (!workloads_.count(cg))
      if (auto s = maps_->DeleteWorkload(cg); !s.ok()) return s;
  }
  auto policy = maps_->Keys("nm_policy");
  if (!policy.ok()) return policy.status();
  for (const std::string& key : *policy) {
    nm_policy_key k;
    std::memcpy(&k, key.data(), sizeof(k));
    if (!policy_.count({k.workload_id, k.service_id}))
      if (auto s = maps_->DeletePolicy(k.workload_id, k.service_id); !s.ok())
        return s;
  }
  return absl::OkStatus();
}

}  // namespace nodemesh::compile
