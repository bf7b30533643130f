#include "agent/model/config_dir_source.h"

#include <sys/inotify.h>
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

bool IsModelFile(const fs::path& rel) {
  if (IsHidden(rel)) return false;
  if (!rel.empty() && *rel.begin() == "cluster") return false;
  std::string ext = rel.extension().string();
  return ext == ".json" || ext == ".yaml" || ext == ".yml";
}

}  // namespace

std::vector<std::string> ListModelFiles(const std::string& config_dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(
           config_dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    fs::path rel = fs::relative(it->path(), config_dir, ec);
    if (it->is_directory(ec)) {
      if (IsHidden(rel) || rel == "cluster") it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && IsModelFile(rel))
      files.push_back(rel.string());
  }
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
