#pragma once

#include <string>

#include "absl/status/status.h"
#include "agent/datapath/datapath.h"
#include "agent/stats/prometheus_text.h"
#include "nlohmann/json.hpp"

namespace nodemesh::datapath {

// nodemesh_bpf_* families from the pinned counters (per-CPU values summed).
absl::Status RenderDatapathMetrics(const Datapath& datapath,
                                   stats::PrometheusText* out);

// The same numbers, plus attachments and map sizes, as JSON for /stats.
nlohmann::json DatapathStatsJson(const Datapath& datapath);

}  // namespace nodemesh::datapath
