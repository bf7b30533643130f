#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/net/event_loop.h"
#include "agent/net/unique_fd.h"

namespace nodemesh::model {

// The model files of a config dir, relative to it and sorted (the order in
// which later definitions replace earlier ones): `.json`, `.yaml`, `.yml`,
// except anything under `cluster/` (node and workload lists, not model) and
// hidden files or folders (editors' swap files).
std::vector<std::string> ListModelFiles(const std::string& config_dir);

// Watches a config dir with inotify on the main loop and calls `on_change`
// once things have been quiet for `debounce`: an editor's save, a `cp -r` or
// a `git checkout` becomes one reload, not dozens. New sub-folders are
// watched as they appear.
class ConfigDirSource {
 public:
  ConfigDirSource(net::EventLoop* loop, std::string config_dir,
                  std::chrono::milliseconds debounce,
                  std::function<void()> on_change);
  ~ConfigDirSource();
  ConfigDirSource(const ConfigDirSource&) = delete;
  ConfigDirSource& operator=(const ConfigDirSource&) = delete;

  absl::Status Start();

 private:
  void WatchTree(const std::string& dir);
  void OnReadable();

  net::EventLoop* loop_;
  std::string config_dir_;
  std::chrono::milliseconds debounce_;
  std::function<void()> on_change_;
  net::UniqueFd inotify_;
  std::vector<std::pair<int, std::string>> watches_;  // wd -> dir
  net::EventLoop::TimerId timer_ = net::EventLoop::kInvalidTimer;
};

}  // namespace nodemesh::model
