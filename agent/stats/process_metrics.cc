#include "agent/stats/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace nodemesh::stats {
namespace {

// Fields of /proc/self/stat after the command name (which may hold spaces),
// numbered as proc(5) numbers them: fields[0] is field 3 (state).
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  size_t close = line.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 2));
  std::string f;
  while (rest >> f) fields.push_back(f);
  return fields;
}

double BootTime() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

}  // namespace

void RenderProcessMetrics(PrometheusText* out) {
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  std::vector<std::string> f = StatFields();
  // proc(5): utime 14, stime 15, num_threads 20, starttime 22, vsize 23,
  // rss 24 -> indices (field - 3).
  if (f.size() > 21) {
    double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
    out->Family("process_cpu_seconds_total", "counter",
                "User and system CPU time of the agent");
    out->Sample("process_cpu_seconds_total", {}, cpu);
    out->Family("process_resident_memory_bytes", "gauge",
                "Resident memory of the agent");
    out->Sample("process_resident_memory_bytes", {},
                static_cast<uint64_t>(std::stod(f[21]) * page));
    out->Family("process_virtual_memory_bytes", "gauge",
                "Virtual memory of the agent");
    out->Sample("process_virtual_memory_bytes", {},
                static_cast<uint64_t>(std::stoull(f[20])));
    out->Family("process_threads", "gauge", "Threads of the agent");
    out->Sample("process_threads", {},
                static_cast<uint64_t>(std::stoull(f[17])));
    out->Family("process_start_time_seconds", "gauge",
                "Start time of the agent, seconds since the epoch");
    out->Sample("process_start_time_seconds", {},
                BootTime() + std::stod(f[19]) / ticks);
  }
  uint64_t fds = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++fds;
    ::closedir(d);
  }
  out->Family("process_open_fds", "gauge", "Open file descriptors");
  // Minus the one opendir() holds.
  out->Sample("process_open_fds", {}, fds > 0 ? fds - 1 : 0);
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    out->Family("process_max_fds", "gauge", "File descriptor limit");
    out->Sample("process_max_fds", {}, static_cast<uint64_t>(lim.rlim_cur));
  }
}

}  // namespace nodemesh::stats
