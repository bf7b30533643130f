#include "agent/datapath/kernel_fs.h"

#include <errno.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace nodemesh::datapath {
namespace {

constexpr char kDefaultBpffs[] = "/sys/fs/bpf";

absl::Status ErrnoStatus(const std::string& what, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(what, ": ", std::strerror(err)));
}

bool IsUnder(const std::string& path, const std::string& dir) {
  return path == dir || absl::StartsWith(path, dir + "/");
}

// The mount points in `mounts_file` whose filesystem type is `fstype`.
absl::StatusOr<std::vector<std::string>> MountsOfType(
    const std::string& mounts_file, const std::string& fstype) {
  std::ifstream in(mounts_file);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot read ", mounts_file));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string dev, dir, type;
    fields >> dev >> dir >> type;
    if (type == fstype) out.push_back(dir);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> FindCgroup2Mount(const std::string& mounts_file) {
  auto mounts = MountsOfType(mounts_file, "cgroup2");
  if (!mounts.ok()) return mounts.status();
  if (mounts->empty())
    return absl::FailedPreconditionError(
        "no cgroup2 filesystem is mounted (see /proc/mounts); cgroup v2 is "
        "required to attach the datapath");
  return mounts->front();
}

absl::Status EnsureBpffs(const std::string& pin_dir,
                         const std::string& mounts_file) {
  auto mounts = MountsOfType(mounts_file, "bpf");
  if (!mounts.ok()) return mounts.status();
  bool covered = false;
  for (const auto& m : *mounts) covered |= IsUnder(pin_dir, m);
  if (!covered) {
    if (!IsUnder(pin_dir, kDefaultBpffs))
      return absl::FailedPreconditionError(absl::StrCat(
          "--bpf_pin_dir ", pin_dir,
          " is not on a bpf filesystem; mount one there or use a path under ",
          kDefaultBpffs));
    std::filesystem::create_directories(kDefaultBpffs);
    if (::mount("bpf", kDefaultBpffs, "bpf", 0, "mode=0700") != 0)
      return ErrnoStatus(absl::StrCat("mounting bpffs at ", kDefaultBpffs),
                         errno);
  }
  std::error_code ec;
  std::filesystem::create_directories(pin_dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("creating pin dir ", pin_dir, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status EnsureCgroup(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("creating cgroup ", path, ": ", ec.message()));
  struct statfs fs;
  if (::statfs(path.c_str(), &fs) != 0)
    return ErrnoStatus(absl::StrCat("statfs ", path), errno);
  if (fs.f_type != CGROUP2_SUPER_MAGIC)
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not on a cgroup2 filesystem"));
  return absl::OkStatus();
}

absl::Status MoveToCgroup(const std::string& path, pid_t pid) {
  std::ofstream procs(path + "/cgroup.procs");
  procs << pid << std::flush;
  if (!procs)
    return absl::InternalError(
        absl::StrCat("moving pid ", pid, " into cgroup ", path, " failed"));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> CgroupId(const std::string& path) {
  // On cgroup2 the directory's inode number is the cgroup id.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return ErrnoStatus(absl::StrCat("stat ", path), errno);
  return static_cast<uint64_t>(st.st_ino);
}

absl::StatusOr<std::string> ProcessCgroup(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/cgroup"));
  std::string line;
  while (std::getline(in, line))
    if (absl::StartsWith(line, "0::")) return line.substr(3);
  return absl::NotFoundError(
      absl::StrCat("pid ", pid, " has no cgroup v2 entry"));
}

absl::Status WriteSysctl(const std::string& name, const std::string& value) {
  std::ofstream out("/proc/sys/" + name);
  out << value << std::flush;
  if (!out)
    return absl::InternalError(absl::StrCat("cannot set sysctl ", name));
  return absl::OkStatus();
}

}  // namespace nodemesh::datapath
