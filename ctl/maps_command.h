#pragma once

#include <string>

namespace nodemesh::ctl {

// `nodemeshctl maps`: the pinned maps of a pin dir decoded, as bpftool would
// print them, with service and workload names (from the agent's /vips and
// /workloads, when it answers) instead of bare ids. `output`: text or json.
int PrintMaps(const std::string& pin_dir, const std::string& agent,
              const std::string& output);

}  // namespace nodemesh::ctl
