#pragma once

#include "agent/stats/prometheus_text.h"

namespace nodemesh::stats {

// The standard process_* families of Prometheus client libraries, for the
// agent itself, from /proc/self: CPU seconds, resident and virtual memory,
// open and maximum file descriptors, threads, start time.
void RenderProcessMetrics(PrometheusText* out);

}  // namespace nodemesh::stats
