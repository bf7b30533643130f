#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/model/config_dir_source.h"
#include "agent/model/snapshot.h"
#include "agent/net/event_loop.h"

namespace nodemesh::model {

// The mesh model as the agent serves it: built from the config dir, rebuilt
// when files change, and published as an immutable snapshot. An invalid
// change never replaces a valid snapshot: the last good one keeps serving
// and the error is kept (with file, resource and field) for /ready, the log
// and the metrics. Lives on the main (control) thread; current() may be
// called from any thread.
class ModelSource {
 public:
  struct Status {
    uint64_t reloads_ok = 0;
    uint64_t reloads_failed = 0;
    // The errors of the last attempt, if it failed ("" after a success).
    std::string last_error;
    size_t last_error_count = 0;
    std::chrono::system_clock::time_point last_attempt, last_success;
    SnapshotBuilder::Stats last_stats;
    std::chrono::microseconds last_build_time{0};
  };

  ModelSource(net::EventLoop* loop, std::string config_dir);

  // Creates the config dir when missing, builds the first snapshot (an
  // invalid start leaves an empty model serving and the error reported) and
  // starts watching.
  absl::Status Start();

  // Rebuilds now (what a file change triggers after the debounce).
  void Reload();

  // Checks a change to files of the config dir before making it: builds the
  // state as it would be; when valid, writes the files (atomically, by
  // rename), publishes the new snapshot at once and returns it; when not,
  // writes nothing and returns the errors. The App Mesh API's writes come
  // through here.
  struct ApplyResult {
    std::shared_ptr<const Snapshot> snapshot;  // null when refused
    std::vector<Diagnostic> errors;
    std::string write_error;  // set when the state was valid but a file
                              // could not be written
    // With an external store: the commit's error (AlreadyExists when the
    // store changed since it was read, Unavailable when it is down).
    absl::Status commit_error;
  };
  ApplyResult Apply(const SnapshotBuilder::Overlay& change);

  // Cluster mode: the files under `root` (e.g. "api/") live in an external
  // store (etcd), fed in with ApplyExternal(), and Apply() commits changes
  // to them with `commit` instead of writing files. `expected_revision` is
  // the revision this source holds for the file (0: it holds none): the
  // commit must fail when the store's differs (compare-and-swap).
  struct ExternalWrite {
    std::string path;
    std::string key;  // "" for a file the store does not hold yet
    std::optional<std::string> text;  // nullopt: delete
    int64_t expected_revision = 0;
  };
  // Returns the store's revision after the commit.
  using Committer =
      std::function<absl::StatusOr<int64_t>(const std::vector<ExternalWrite>&)>;
  void UseExternal(std::string root, Committer commit);
  struct ExternalChange {
    std::string path, key;
    int64_t revision = 0;             // the change's (mod) revision
    std::optional<std::string> text;  // nullopt: deleted
  };
  // What the store says changed (with `reset`, its whole content at
  // `list_revision`), then a rebuild when anything did. Changes older than
  // what this source holds (its own commits, seen again) are ignored.
  void ApplyExternal(const std::vector<ExternalChange>& changes, bool reset,
                     int64_t list_revision = 0);
  // A model file's text, from the external store or the config dir.
  std::optional<std::string> ReadModelFile(const std::string& rel) const;
  size_t external_files() const { return external_.size(); }
  const SnapshotBuilder::ExternalFiles& external() const { return external_; }

  std::shared_ptr<const Snapshot> current() const {
    return std::atomic_load(&current_);
  }
  const Status& status() const { return status_; }

  // Called on the main thread with each new snapshot once it serves (not
  // for the first one Start() builds: read current() after Start()).
  void Subscribe(std::function<void(std::shared_ptr<const Snapshot>)> fn) {
    subscribers_.push_back(std::move(fn));
  }
  const std::string& config_dir() const { return config_dir_; }

 private:
  net::EventLoop* loop_;
  std::string config_dir_;
  SnapshotBuilder builder_;
  std::unique_ptr<ConfigDirSource> watcher_;
  void Publish(std::shared_ptr<const Snapshot> next,
               const SnapshotBuilder::Result& result);
  // Apply()'s two ways of making a checked change: a compare-and-swap
  // commit to the external store, or files written by rename ("" when all
  // were written, else what failed).
  absl::Status CommitExternal(const SnapshotBuilder::Overlay& change);
  std::string WriteFiles(const SnapshotBuilder::Overlay& change);

  std::shared_ptr<const Snapshot> current_;
  Status status_;
  std::string external_root_;
  Committer commit_;
  SnapshotBuilder::ExternalFiles external_;
  // Files this source deleted by commit, with the delete's revision: an
  // older put of theirs still on its way from the store is stale.
  std::map<std::string, int64_t> deleted_at_;
  std::vector<std::function<void(std::shared_ptr<const Snapshot>)>>
      subscribers_;
};

}  // namespace nodemesh::model
