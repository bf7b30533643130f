#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/net/unique_fd.h"
#include "agent/proxy/proxy_stats.h"

namespace nodemesh::proxy {

// One worker's access log files: an O_APPEND descriptor and a buffer of
// whole lines per path. Lines are written when the event batch ends (or a
// buffer passes kFlushBytes), one write() per buffer, so a line is never
// split between two writes and other workers' lines land between, never
// inside, ours. Loop thread only: no locks. A write that fails drops its
// lines and counts in access_log_write_errors; traffic never waits.
class AccessLogFiles {
 public:
  static constexpr size_t kFlushBytes = 32 * 1024;
  // Lines held for a descriptor that would block (a full pipe) before
  // they are dropped.
  static constexpr size_t kMaxPending = 1024 * 1024;

  explicit AccessLogFiles(WorkerStats* stats) : stats_(stats) {}
  ~AccessLogFiles();
  AccessLogFiles(const AccessLogFiles&) = delete;
  AccessLogFiles& operator=(const AccessLogFiles&) = delete;

  // The files are now `paths` (index = sink): paths already open keep
  // their descriptor and pending lines, new ones are opened, the others
  // flushed and closed. `log_errors`: say which failed (one worker does).
  void Sync(const std::vector<std::string>& paths, bool log_errors);
  // Opens again the paths that could not be opened (their directory may
  // exist now).
  void RetryFailed(bool log_errors);
  bool has_failed() const { return failed_ > 0; }

  // The buffer to append one line of sink `sink` to, then Commit(); null
  // when that file is not open. `path` finds it when the sink numbering
  // is another config's (a request that began before a config change).
  std::string* Buffer(uint32_t sink, std::string_view path);
  void Commit(std::string* buffer);

  // Writes every buffer (end of an event batch).
  void Flush();

 private:
  struct File {
    std::string path;
    net::UniqueFd fd;
    std::string pending;
  };
  bool Open(File* f, bool log_errors);
  void Write(File* f);

  WorkerStats* stats_;
  std::vector<File> files_;
  size_t failed_ = 0;
  bool dirty_ = false;
};

}  // namespace nodemesh::proxy
