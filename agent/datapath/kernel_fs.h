#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace nodemesh::datapath {

// Where the kernel's filesystems are: never hard-coded, read from
// /proc/mounts (this machine kind mounts cgroup2 at /sys/fs/cgroup/unified in
// a hybrid layout, and bpffs not at all until someone does).

// The first cgroup2 mount point listed in `mounts_file`.
absl::StatusOr<std::string> FindCgroup2Mount(
    const std::string& mounts_file = "/proc/mounts");

// Makes `pin_dir` usable for pinning: when no bpf filesystem covers it,
// mounts one at /sys/fs/bpf (if pin_dir lies below it), then creates
// pin_dir. Fails, naming the path, when pin_dir lies on another filesystem.
absl::Status EnsureBpffs(const std::string& pin_dir,
                         const std::string& mounts_file = "/proc/mounts");

// mkdir -p for a cgroup path; it must lie on a cgroup2 filesystem.
absl::Status EnsureCgroup(const std::string& path);

// Moves a whole process (all its threads) into the cgroup.
absl::Status MoveToCgroup(const std::string& path, pid_t pid);

// The cgroup id (what bpf_get_current_cgroup_id() returns) of a cgroup dir.
absl::StatusOr<uint64_t> CgroupId(const std::string& path);

// The cgroup v2 path of a process ("/a/b"), from /proc/<pid>/cgroup.
absl::StatusOr<std::string> ProcessCgroup(pid_t pid);

// Writes a sysctl under /proc/sys, e.g. "net/ipv4/tcp_migrate_req".
absl::Status WriteSysctl(const std::string& name, const std::string& value);

}  // namespace nodemesh::datapath
