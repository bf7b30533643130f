#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "agent/compile/inbound_policy.h"
#include "agent/datapath/datapath_maps.h"
#include "agent/model/snapshot.h"
#include "agent/stats/prometheus_text.h"
#include "agent/workload/workload_registry.h"

namespace nodemesh::compile {

// Keeps nm_inbound equal to the compiled InboundPolicy, writing only the
// difference against what it wrote last (an unchanged port is never
// touched, so no SYN sees it vanish). The first write also removes entries
// an earlier agent left pinned that are no longer wanted. Renders the
// kernel's inbound counters with virtual node names from the registry.
class InboundPolicyWriter {
 public:
  InboundPolicyWriter(datapath::DatapathMaps* maps,
                      const workload::WorkloadRegistry* registry)
      : maps_(maps), registry_(registry) {}

  // Compiles from `snapshot` and the registry's workloads and applies it;
  // warnings and write errors are logged (and errors counted).
  void Sync(const model::Snapshot& snapshot);
  absl::Status Apply(const InboundPolicy& next);

  // nodemesh_bpf_inbound_connections_total, nodemesh_inbound_ports,
  // nodemesh_inbound_write_errors_total.
  void RenderMetrics(stats::PrometheusText* out) const;

  struct Counts {
    size_t strict = 0, permissive = 0;
    uint64_t applies = 0, errors = 0;
  };
  const Counts& counts() const { return counts_; }

 private:
  absl::Status Reconcile();

  datapath::DatapathMaps* maps_;
  const workload::WorkloadRegistry* registry_;
  bool reconciled_ = false;
  InboundPolicy written_;
  Counts counts_;
};

}  // namespace nodemesh::compile
