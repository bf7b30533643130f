#include "agent/workload/workload_registry.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/datapath/kernel_fs.h"
#include "glog/logging.h"

namespace nodemesh::workload {
namespace {

constexpr char kStateFile[] = "workloads.json";

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Writes `text` to `path` so that a crash leaves the old or the new file,
// never half of one.
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& text) {
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", tmp));
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      return absl::ErrnoToStatus(err, absl::StrCat("write ", tmp));
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return absl::ErrnoToStatus(errno, absl::StrCat("rename to ", path));
  return absl::OkStatus();
}

}  // namespace

WorkloadRegistry::WorkloadRegistry(RegistryOptions options)
    : options_(std::move(options)) {}

// cpu.stat exists in every cgroup v2 directory (the cpu controller need not
// be enabled); usage_usec > 0 means some process has run there.
bool WorkloadRegistry::CgroupHasRun(const std::string& path) {
  std::ifstream in(path + "/cpu.stat");
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "usage_usec") return value > 0;
  }
  return false;
}

bool WorkloadRegistry::CgroupPopulated(const std::string& path, bool* exists) {
  std::ifstream in(path + "/cgroup.events");
  *exists = in.good();
  std::string key, value;
  while (in >> key >> value) {
    if (key == "populated") return value == "1";
  }
  return false;
}

absl::Status WorkloadRegistry::Load() {
  std::error_code ec;
  std::filesystem::create_directories(options_.state_dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("--state_dir=", options_.state_dir, ": ", ec.message()));
  std::string path = absl::StrCat(options_.state_dir, "/", kStateFile);
  std::ifstream in(path);
  if (!in) return absl::OkStatus();  // first start
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (!j.is_object())
    return absl::DataLossError(absl::StrCat(
        path, ": not a JSON object; move it away to start with no workloads"));
  next_id_ = j.value("nextId", uint64_t{1});
  if (auto it = j.find("virtualNodeIds"); it != j.end() && it->is_object()) {
    for (const auto& [key, id] : it->items()) {
      if (!id.is_number_unsigned()) continue;
      size_t slash = key.find('/');
      if (slash == std::string::npos) continue;
      vn_ids_[key] = id.get<uint32_t>();
      vn_names_[id.get<uint32_t>()] = {key.substr(0, slash),
                                       key.substr(slash + 1)};
    }
  }
  if (auto it = j.find("workloads"); it != j.end() && it->is_array()) {
    for (const auto& e : *it) {
      auto w = Workload::FromJson(e);
      if (!w.ok()) {
        LOG(WARNING) << path << ": " << w.status().message() << "; skipped";
        continue;
      }
      // The cgroup may be gone (the node rebooted): nothing to serve.
      bool exists = true;
      if (!w->cgroup.empty()) {
        CgroupPopulated(w->cgroup, &exists);
        auto id = datapath::CgroupId(w->cgroup);
        if (!exists || !id.ok() || *id != w->cgroup_id) {
          LOG(INFO) << "workload " << w->id << ": cgroup " << w->cgroup
                    << " is gone; registration ended";
          continue;
        }
      }
      AllocateId(w->mesh, w->virtual_node);  // a state file without it
      registered_[w->id] = *w;
    }
  }
  Rebuild();
  LOG(INFO) << "workloads: " << registered_.size() << " registered (from "
            << path << ")";
  return Save();
}

absl::Status WorkloadRegistry::Save() const {
  nlohmann::json ws = nlohmann::json::array();
  for (const auto& [id, w] : registered_) ws.push_back(w.ToJson());
  nlohmann::json ids = nlohmann::json::object();
  for (const auto& [key, id] : vn_ids_) ids[key] = id;
  nlohmann::json j = {{"version", 1},
                      {"nextId", next_id_},
                      {"virtualNodeIds", ids},
                      {"workloads", ws}};
  return WriteFileAtomically(absl::StrCat(options_.state_dir, "/", kStateFile),
                             j.dump(2) + "\n");
}

bool WorkloadRegistry::AllocateId(const std::string& mesh,
                                  const std::string& vn) {
  std::string key = absl::StrCat(mesh, "/", vn);
  if (vn_ids_.count(key)) return false;
  uint32_t id = vn_names_.empty() ? 1 : vn_names_.rbegin()->first + 1;
  vn_ids_[key] = id;
  vn_names_[id] = {mesh, vn};
  return true;
}

absl::StatusOr<Workload> WorkloadRegistry::Add(
    const WorkloadRequest& request,
    const std::vector<uint16_t>& ports_of_node) {
  Workload w;
  w.id = absl::StrCat(request.virtual_node, "-", next_id_);
  w.mesh = request.mesh;
  w.virtual_node = request.virtual_node;
  if (!request.address.empty()) w.address = request.address;
  w.ports = request.ports.empty() ? ports_of_node : request.ports;
  w.netns = request.netns;
  w.attributes = request.attributes;
  w.registered_at = NowSeconds();
  if (!w.netns.empty() && ::access(w.netns.c_str(), R_OK) != 0)
    return absl::InvalidArgumentError(
        absl::StrCat("netns: ", w.netns, ": ", std::strerror(errno)));
  if (request.cgroup.empty()) {
    w.cgroup = absl::StrCat(options_.cgroup_root, "/", w.id);
    if (auto s = datapath::EnsureCgroup(w.cgroup); !s.ok()) return s;
    w.owns_cgroup = true;
  } else {
    // connect4 and sockops are attached at cgroup_root: a cgroup elsewhere
    // would never be steered.
    std::string root = options_.cgroup_root + "/";
    if (!absl::StartsWith(request.cgroup, root))
      return absl::InvalidArgumentError(
          absl::StrCat("cgroup: ", request.cgroup,
                       " is not below --cgroup_root ", options_.cgroup_root));
    w.cgroup = request.cgroup;
  }
  auto cgid = datapath::CgroupId(w.cgroup);
  if (!cgid.ok()) return cgid.status();
  w.cgroup_id = *cgid;
  for (const auto& [id, other] : registered_) {
    if (other.cgroup_id == w.cgroup_id)
      return absl::AlreadyExistsError(
          absl::StrCat("cgroup ", w.cgroup, " is already workload ", other.id));
  }
  bool exists = false;
  w.populated = CgroupPopulated(w.cgroup, &exists);
  ++next_id_;
  registered_[w.id] = w;
  AllocateId(w.mesh, w.virtual_node);  // saved with the registration
  if (auto s = Save(); !s.ok()) {
    registered_.erase(w.id);
    return s;
  }
  LOG(INFO) << "workload " << w.id << " registered: " << w.mesh << "/"
            << w.virtual_node << " at " << w.address << ", cgroup " << w.cgroup;
  Changed();
  return w;
}

absl::Status WorkloadRegistry::Remove(const std::string& id) {
  auto it = registered_.find(id);
  if (it == registered_.end())
    return absl::NotFoundError(absl::StrCat("no workload ", id));
  Workload w = std::move(it->second);
  registered_.erase(it);
  if (w.owns_cgroup && ::rmdir(w.cgroup.c_str()) != 0 && errno != ENOENT)
    LOG(WARNING) << "workload " << id << ": left cgroup " << w.cgroup << ": "
                 << std::strerror(errno);
  LOG(INFO) << "workload " << id << " deregistered";
  Changed();
  return Save();
}

void WorkloadRegistry::SetDeclared(std::vector<Workload> declared) {
  std::map<std::string, Workload> next;
  bool new_ids = false;
  for (Workload& w : declared) {
    new_ids |= AllocateId(w.mesh, w.virtual_node);
    next[w.id] = std::move(w);
  }
  if (new_ids) {
    if (auto s = Save(); !s.ok()) LOG(WARNING) << "workloads: " << s.message();
  }
  bool same = next.size() == declared_.size();
  if (same) {
    for (const auto& [id, w] : next) {
      auto it = declared_.find(id);
      if (it == declared_.end() || it->second.ToJson() != w.ToJson()) {
        same = false;
        break;
      }
    }
  }
  if (same) return;
  declared_ = std::move(next);
  Changed();
}

bool WorkloadRegistry::Sweep() {
  std::vector<std::string> ended;
  bool dirty = false;
  int64_t now = NowSeconds();
  for (auto& [id, w] : registered_) {
    if (w.cgroup.empty()) continue;
    bool exists = false;
    bool populated = CgroupPopulated(w.cgroup, &exists);
    // Ended: the cgroup is gone, or empty after holding a process (a short
    // command may have come and gone between two sweeps: cpu.stat tells),
    // or never filled within the grace.
    bool has_run = w.populated || populated || CgroupHasRun(w.cgroup);
    bool expired = now - w.registered_at > options_.unpopulated_grace.count();
    if (!exists || (!populated && (has_run || expired))) {
      ended.push_back(id);
    } else if (populated && !w.populated) {
      w.populated = true;
      dirty = true;
    }
  }
  for (const std::string& id : ended) {
    LOG(INFO) << "workload " << id << ": its cgroup emptied";
    (void)Remove(id);
  }
  if (dirty && ended.empty()) {
    if (auto s = Save(); !s.ok()) LOG(WARNING) << "workloads: " << s.message();
  }
  return !ended.empty();
}

void WorkloadRegistry::Rebuild() {
  all_ = registered_;
  for (const auto& [id, w] : declared_) all_.emplace(id, w);
}

void WorkloadRegistry::Changed() {
  Rebuild();
  ++generation_;
  for (auto& cb : subscribers_) cb();
}

}  // namespace nodemesh::workload
