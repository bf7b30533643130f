#include "agent/model/config_dir_source.h"

#include <dirent.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "glog/logging.h"

namespace nodemesh::model {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kWatchMask = IN_CREATE | IN_DELETE | IN_MODIFY |
                                IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
                                IN_DELETE_SELF | IN_ATTRIB;

bool IsHidden(const fs::path& p) {
  for (const auto& part : p)
    if (!part.empty() && part.string()[0] == '.' && part != "." && part != "..")
      return true;
  return false;
}

}  // namespace

namespace {

bool HasModelExtension(std::string_view name) {
  for (std::string_view ext : {".json", ".yaml", ".yml"})
    if (name.size() > ext.size() &&
        name.substr(name.size() - ext.size()) == ext)
      return true;
  return false;
}

// readdir, not std::filesystem: a config dir of thousands of files is walked
// on every reload, and path objects per entry cost more than the walk.
void Walk(const std::string& root, const std::string& rel,
          std::vector<std::string>* out) {
  DIR* dir = ::opendir((rel.empty() ? root : root + "/" + rel).c_str());
  if (!dir) return;
  while (dirent* e = ::readdir(dir)) {
    std::string_view name = e->d_name;
    if (name.empty() || name[0] == '.') continue;  // hidden, . and ..
    std::string child =
        rel.empty() ? std::string(name) : rel + "/" + std::string(name);
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN || type == DT_LNK) {
      struct stat st {};
      if (::stat((root + "/" + child).c_str(), &st) != 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : 0;
    }
    if (type == DT_DIR) {
      if (rel.empty() && name == "cluster") continue;
      Walk(root, child, out);
    } else if (type == DT_REG && HasModelExtension(name)) {
      out->push_back(std::move(child));
    }
  }
  ::closedir(dir);
}

}  // namespace

std::vector<std::string> ListModelFiles(const std::string& config_dir) {
  std::vector<std::string> files;
  Walk(config_dir, "", &files);
  std::sort(files.begin(), files.end());
  return files;
}

ConfigDirSource::ConfigDirSource(net::EventLoop* loop, std::string config_dir,
                                 std::chrono::milliseconds debounce,
                                 std::function<void()> on_change)
    : loop_(loop),
      config_dir_(std::move(config_dir)),
      debounce_(debounce),
      on_change_(std::move(on_change)) {}

ConfigDirSource::~ConfigDirSource() {
  if (timer_ != net::EventLoop::kInvalidTimer) loop_->CancelTimer(timer_);
  if (inotify_.valid()) loop_->Remove(inotify_.get());
}

absl::Status ConfigDirSource::Start() {
  inotify_.Reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify_.valid())
    return absl::InternalError(std::string("inotify_init1: ") +
                               std::strerror(errno));
  WatchTree(config_dir_);
  return loop_->Add(inotify_.get(), EPOLLIN,
                    [this](uint32_t) { OnReadable(); });
}

void ConfigDirSource::WatchTree(const std::string& dir) {
  int wd = ::inotify_add_watch(inotify_.get(), dir.c_str(), kWatchMask);
  if (wd < 0) {
    LOG(WARNING) << "config dir: cannot watch " << dir << ": "
                 << std::strerror(errno);
    return;
  }
  watches_.emplace_back(wd, dir);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_directory(ec) &&
        !IsHidden(fs::relative(entry.path(), config_dir_, ec)))
      WatchTree(entry.path().string());
}

void ConfigDirSource::OnReadable() {
  alignas(inotify_event) char buf[16384];
  bool changed = false;
  for (;;) {
    ssize_t n = ::read(inotify_.get(), buf, sizeof(buf));
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      changed = true;
      if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)) &&
          ev->len > 0) {
        for (const auto& [wd, dir] : watches_)
          if (wd == ev->wd) {
            WatchTree(dir + "/" + ev->name);
            break;
          }
      }
      if (ev->mask & IN_IGNORED)
        std::erase_if(watches_,
                      [&](const auto& w) { return w.first == ev->wd; });
    }
  }
  if (!changed) return;
  if (timer_ != net::EventLoop::kInvalidTimer) loop_->CancelTimer(timer_);
  timer_ = loop_->AddTimer(debounce_, [this] {
    timer_ = net::EventLoop::kInvalidTimer;
    on_change_();
  });
}

}  // namespace nodemesh::model
