#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "agent/datapath/datapath.h"
#include "agent/stats/prometheus_text.h"
#include "nlohmann/json.hpp"

namespace nodemesh::datapath {

// Names for the ids the kernel counts by: (workload id, service id) ->
// extra labels (mesh, source_virtual_node, virtual_service).
using CounterNamer =
    std::function<stats::Labels(uint32_t workload_id, uint32_t service_id)>;

// nodemesh_bpf_* families from the pinned counters (per-CPU values summed).
absl::Status RenderDatapathMetrics(const Datapath& datapath,
                                   stats::PrometheusText* out,
                                   const CounterNamer& namer = nullptr);

// The same numbers, plus attachments and map sizes, as JSON for /stats.
nlohmann::json DatapathStatsJson(const Datapath& datapath);

}  // namespace nodemesh::datapath
