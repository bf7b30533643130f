#include "agent/datapath/datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "agent/datapath/kernel_fs.h"
#include "agent/net/unique_fd.h"
#include "glog/logging.h"
#include "nm_datapath.skel.h"

namespace nodemesh::datapath {
namespace {

using net::UniqueFd;

absl::Status Errno(const std::string& what, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(what, ": ", std::strerror(err)));
}

// Where each program attaches. Loop avoidance: connect/sendmsg/recvmsg only
// under the workloads' root; getsockopt only on the agent; sockops on both
// (both ends of a local leg must be seen). Inbound enforcement (ingress) on
// the workloads' root: it judges packets for the workloads' listeners.
enum class AttachPoint { kCgroupRoot, kAgentCgroup, kSockHash };

struct Attachment {
  const char* program;
  AttachPoint point;
};

constexpr Attachment kAttachments[] = {
    {"nm_connect4", AttachPoint::kCgroupRoot},
    {"nm_connect6", AttachPoint::kCgroupRoot},
    {"nm_sendmsg4", AttachPoint::kCgroupRoot},
    {"nm_sendmsg6", AttachPoint::kCgroupRoot},
    {"nm_recvmsg4", AttachPoint::kCgroupRoot},
    {"nm_recvmsg6", AttachPoint::kCgroupRoot},
    {"nm_getpeername4", AttachPoint::kCgroupRoot},
    {"nm_getpeername6", AttachPoint::kCgroupRoot},
    {"nm_sockops", AttachPoint::kCgroupRoot},
    {"nm_sockops", AttachPoint::kAgentCgroup},
    {"nm_getsockopt", AttachPoint::kAgentCgroup},
    {"nm_ingress", AttachPoint::kCgroupRoot},
    {"nm_sk_msg", AttachPoint::kSockHash},
};

const char* PointName(AttachPoint p) {
  switch (p) {
    case AttachPoint::kCgroupRoot:
      return "cgroup_root";
    case AttachPoint::kAgentCgroup:
      return "agent_cgroup";
    case AttachPoint::kSockHash:
      return "nm_sock_pairs";
  }
  return "?";
}

std::string LinkPinPath(const std::string& pin_dir, const Attachment& a) {
  return absl::StrCat(pin_dir, "/link_", a.program, "_", PointName(a.point));
}

// The id of whatever a pinned link attaches to (cgroup id or map id).
absl::StatusOr<uint32_t> LinkProgramId(int link_fd, uint64_t* cgroup_id) {
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(link_fd, &info, &len) != 0)
    return Errno("reading link info", errno);
  if (cgroup_id) *cgroup_id = info.cgroup.cgroup_id;
  return info.prog_id;
}

struct AttachTargets {
  UniqueFd cgroup_root;
  UniqueFd agent_cgroup;
  uint64_t cgroup_root_id = 0;
  uint64_t agent_cgroup_id = 0;
};

absl::StatusOr<AttachTargets> OpenTargets(const DatapathOptions& o) {
  AttachTargets t;
  for (auto [path, fd, id] :
       {std::tuple{&o.cgroup_root, &t.cgroup_root, &t.cgroup_root_id},
        std::tuple{&o.agent_cgroup, &t.agent_cgroup, &t.agent_cgroup_id}}) {
    fd->Reset(::open(path->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd->valid())
      return Errno(absl::StrCat("opening cgroup ", *path), errno);
    auto cg_id = CgroupId(*path);
    if (!cg_id.ok()) return cg_id.status();
    *id = *cg_id;
  }
  if (t.cgroup_root_id == t.agent_cgroup_id)
    return absl::InvalidArgumentError(
        "--cgroup_root and --agent_cgroup must differ: the agent must live "
        "outside the cgroups whose connects it redirects");
  return t;
}

// Makes one pinned link carry `prog`: swaps the program into an existing pin
// that targets the same thing, or attaches and pins a new link.
absl::Status EnsureLink(const std::string& pin_dir, const Attachment& a,
                        bpf_program* prog, int sockhash_fd,
                        const AttachTargets& targets) {
  std::string path = LinkPinPath(pin_dir, a);
  int prog_fd = bpf_program__fd(prog);
  bool is_cgroup = a.point != AttachPoint::kSockHash;
  int target_fd =
      a.point == AttachPoint::kCgroupRoot    ? targets.cgroup_root.get()
      : a.point == AttachPoint::kAgentCgroup ? targets.agent_cgroup.get()
                                             : sockhash_fd;
  uint64_t want_cgroup = a.point == AttachPoint::kCgroupRoot
                             ? targets.cgroup_root_id
                             : targets.agent_cgroup_id;

  UniqueFd existing(bpf_obj_get(path.c_str()));
  if (existing.valid()) {
    uint64_t cgroup_id = 0;
    auto prog_id = LinkProgramId(existing.get(), &cgroup_id);
    if (prog_id.ok() && (!is_cgroup || cgroup_id == want_cgroup)) {
      if (bpf_link_update(existing.get(), prog_fd, nullptr) != 0)
        return Errno(absl::StrCat("updating link ", path), errno);
      return absl::OkStatus();
    }
    // Pinned for another cgroup (the flags changed): move it.
    LOG(INFO) << "re-attaching " << a.program << ": " << path
              << " targets another cgroup";
    bpf_link_detach(existing.get());
    ::unlink(path.c_str());
  }
  bpf_attach_type type =
      is_cgroup ? bpf_program__expected_attach_type(prog) : BPF_SK_MSG_VERDICT;
  // libbpf 1.1 has no sockmap link helper; the kernel (>= 6.10) takes
  // BPF_LINK_CREATE for it all the same.
  UniqueFd link(bpf_link_create(prog_fd, target_fd, type, nullptr));
  if (!link.valid())
    return Errno(
        absl::StrCat("attaching ", a.program, " to ", PointName(a.point)),
        errno);
  if (bpf_obj_pin(link.get(), path.c_str()) != 0)
    return Errno(absl::StrCat("pinning ", path), errno);
  return absl::OkStatus();
}

bool AllLinksPinned(const std::string& pin_dir) {
  for (const auto& a : kAttachments)
    if (::access(LinkPinPath(pin_dir, a).c_str(), F_OK) != 0) return false;
  return true;
}

// Do the pinned cgroup links attach to these cgroups?
bool LinksTarget(const std::string& pin_dir, const AttachTargets& targets) {
  for (const auto& a : kAttachments) {
    if (a.point == AttachPoint::kSockHash) continue;
    UniqueFd fd(bpf_obj_get(LinkPinPath(pin_dir, a).c_str()));
    uint64_t cgroup_id = 0;
    if (!fd.valid() || !LinkProgramId(fd.get(), &cgroup_id).ok()) return false;
    uint64_t want = a.point == AttachPoint::kCgroupRoot
                        ? targets.cgroup_root_id
                        : targets.agent_cgroup_id;
    if (cgroup_id != want) return false;
  }
  return true;
}

int LibbpfLog(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  // Verifier logs run to many kilobytes: size the buffer to the message.
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::string line(n, '\0');
  vsnprintf(line.data(), n + 1, fmt, args);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  if (level == LIBBPF_WARN)
    LOG(WARNING) << line;
  else
    VLOG(1) << line;
  return n;
}

absl::Status LoadAndAttach(const DatapathOptions& options,
                           const AttachTargets& targets) {
  LIBBPF_OPTS(bpf_object_open_opts, open_opts,
              .pin_root_path = options.pin_dir.c_str());
  nm_datapath* skel = nm_datapath__open_opts(&open_opts);
  if (!skel) return Errno("opening the BPF object", errno);
  std::unique_ptr<nm_datapath, void (*)(nm_datapath*)> guard(
      skel, nm_datapath__destroy);
  // Maps are pinned by name: load reuses compatible pins, creates the rest.
  if (int err = nm_datapath__load(skel); err != 0)
    return Errno(absl::StrCat("loading the BPF object (maps pinned in ",
                              options.pin_dir, ")"),
                 -err);
  int sockhash_fd = bpf_map__fd(skel->maps.nm_sock_pairs);
  for (const auto& a : kAttachments) {
    bpf_program* prog = bpf_object__find_program_by_name(skel->obj, a.program);
    if (!prog)
      return absl::InternalError(absl::StrCat("no program ", a.program));
    if (auto s = EnsureLink(options.pin_dir, a, prog, sockhash_fd, targets);
        !s.ok())
      return s;
  }
  return absl::OkStatus();
}

}  // namespace

const char* PinStateName(PinState state) {
  switch (state) {
    case PinState::kCreated:
      return "created";
    case PinState::kAdopted:
      return "adopted";
    case PinState::kUpgraded:
      return "upgraded";
  }
  return "?";
}

uint64_t BpfBuildId() {
  size_t size = 0;
  const auto* bytes =
      static_cast<const unsigned char*>(nm_datapath__elf_bytes(&size));
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < size; ++i) {
    h ^= bytes[i];
    h *= 1099511628211ULL;
  }
  return h;
}

absl::Status Datapath::CheckKernel() {
  if (::geteuid() != 0)
    return absl::PermissionDeniedError(
        "must run as root (needs CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)");
  if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0)
    return absl::FailedPreconditionError(
        "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing; "
        "CONFIG_DEBUG_INFO_BTF=y is required)");
  struct {
    bpf_prog_type type;
    const char* name;
  } const prog_types[] = {
      {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup_sock_addr"},
      {BPF_PROG_TYPE_SOCK_OPS, "sock_ops"},
      {BPF_PROG_TYPE_SK_MSG, "sk_msg"},
      {BPF_PROG_TYPE_CGROUP_SOCKOPT, "cgroup_sockopt"},
      {BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb"},
  };
  for (const auto& p : prog_types)
    if (libbpf_probe_bpf_prog_type(p.type, nullptr) != 1)
      return absl::FailedPreconditionError(
          absl::StrCat("the kernel lacks the BPF program type ", p.name));
  struct {
    bpf_map_type type;
    const char* name;
  } const map_types[] = {{BPF_MAP_TYPE_SOCKHASH, "sockhash"},
                         {BPF_MAP_TYPE_SK_STORAGE, "sk_storage"},
                         {BPF_MAP_TYPE_LRU_HASH, "lru_hash"}};
  for (const auto& m : map_types)
    if (libbpf_probe_bpf_map_type(m.type, nullptr) != 1)
      return absl::FailedPreconditionError(
          absl::StrCat("the kernel lacks the BPF map type ", m.name));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Datapath>> Datapath::Open(
    const DatapathOptions& options) {
  libbpf_set_print(LibbpfLog);
  if (auto s = CheckKernel(); !s.ok()) return s;
  if (auto s = EnsureBpffs(options.pin_dir); !s.ok()) return s;
  for (const auto* cg : {&options.cgroup_root, &options.agent_cgroup})
    if (auto s = EnsureCgroup(*cg); !s.ok()) return s;
  auto targets = OpenTargets(options);
  if (!targets.ok()) return targets.status();

  const uint64_t build_id = BpfBuildId();
  PinState state = PinState::kCreated;
  if (std::filesystem::exists(options.pin_dir + "/nm_layout")) {
    auto pinned = DatapathMaps::Open(options.pin_dir);
    if (!pinned.ok()) return pinned.status();
    auto layout = pinned->ReadLayout();
    if (!layout.ok()) return layout.status();
    if (layout->has_value() && (*layout)->version != NM_LAYOUT_VERSION)
      return absl::FailedPreconditionError(absl::StrCat(
          "pins in ", options.pin_dir, " have layout version ",
          (*layout)->version, " and this agent uses ", NM_LAYOUT_VERSION,
          "; remove them with nodemesh-agent --cleanup"));
    state = layout->has_value() && (*layout)->build_id == build_id &&
                    AllLinksPinned(options.pin_dir) &&
                    LinksTarget(options.pin_dir, *targets)
                ? PinState::kAdopted
                : PinState::kUpgraded;
  }
  if (state != PinState::kAdopted) {
    if (auto s = LoadAndAttach(options, *targets); !s.ok()) return s;
  }
  auto maps = DatapathMaps::Open(options.pin_dir);
  if (!maps.ok()) return maps.status();
  if (auto s = maps->WriteLayout({NM_LAYOUT_VERSION, 0, build_id}); !s.ok())
    return s;
  if (auto s = maps->WriteConfig(options.config); !s.ok()) return s;

  std::vector<std::pair<std::string, std::string>> attachments;
  for (const auto& a : kAttachments)
    attachments.emplace_back(PointName(a.point), a.program);
  return std::unique_ptr<Datapath>(
      new Datapath(std::move(*maps), state, std::move(attachments)));
}

absl::Status Datapath::Cleanup(const std::string& pin_dir) {
  std::error_code ec;
  if (!std::filesystem::exists(pin_dir, ec)) return absl::OkStatus();
  absl::Status first = absl::OkStatus();
  // Links first, detached explicitly: unpinning alone would leave them
  // attached while any agent still holds a reference.
  for (const auto& entry : std::filesystem::directory_iterator(pin_dir, ec)) {
    std::string path = entry.path().string();
    if (entry.path().filename().string().rfind("link_", 0) == 0) {
      UniqueFd fd(bpf_obj_get(path.c_str()));
      if (fd.valid() && bpf_link_detach(fd.get()) != 0 && first.ok())
        first = Errno(absl::StrCat("detaching ", path), errno);
    }
  }
  for (const auto& entry : std::filesystem::directory_iterator(pin_dir, ec))
    std::filesystem::remove(entry.path(), ec);
  std::filesystem::remove(pin_dir, ec);
  if (ec && first.ok())
    first = absl::InternalError(
        absl::StrCat("removing ", pin_dir, ": ", ec.message()));
  return first;
}

}  // namespace nodemesh::datapath
