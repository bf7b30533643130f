#include "agent/model/model_source.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "glog/logging.h"

namespace nodemesh::model {
namespace {

// Changes settle for this long before a rebuild: editors write a file in
// several steps, `cp -r` many files at once.
constexpr std::chrono::milliseconds kDebounce{100};
// How many errors a log line and /ready carry before "... and N more".
constexpr size_t kErrorsShown = 20;

}  // namespace

ModelSource::ModelSource(net::EventLoop* loop, std::string config_dir)
    : loop_(loop), config_dir_(config_dir), builder_(std::move(config_dir)) {
  std::atomic_store(&current_, std::make_shared<const Snapshot>());
}

absl::Status ModelSource::Start() {
  std::error_code ec;
  std::filesystem::create_directories(config_dir_, ec);
  if (ec)
    return absl::InternalError("--config_dir " + config_dir_ +
                               " cannot be created: " + ec.message());
  Reload();
  watcher_ = std::make_unique<ConfigDirSource>(loop_, config_dir_, kDebounce,
                                               [this] { Reload(); });
  return watcher_->Start();
}

void ModelSource::Reload() {
  auto started = std::chrono::steady_clock::now();
  auto previous = current();
  SnapshotBuilder::Result result = builder_.Build(previous.get());
  status_.last_attempt = std::chrono::system_clock::now();
  status_.last_stats = result.stats;
  status_.last_build_time =
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - started);
  if (!result.snapshot) {
    ++status_.reloads_failed;
    std::string text;
    size_t shown = 0, errors = 0;
    for (const auto& d : result.diagnostics.items()) {
      if (d.severity != Diagnostic::Severity::kError) continue;
      ++errors;
      if (shown++ < kErrorsShown) {
        if (!text.empty()) text += "\n";
        text += d.ToString();
      }
    }
    if (errors > kErrorsShown)
      text += "\n... and " + std::to_string(errors - kErrorsShown) + " more";
    status_.last_error = text;
    status_.last_error_count = errors;
    LOG(ERROR) << "config in " << config_dir_ << " rejected (" << errors
               << " error" << (errors == 1 ? "" : "s")
               << "); still serving snapshot v" << previous->version << ":\n"
               << text;
    return;
  }
  Publish(result.snapshot, result);
}

void ModelSource::Publish(std::shared_ptr<const Snapshot> next,
                          const SnapshotBuilder::Result& result) {
  auto previous = current();
  ++status_.reloads_ok;
  status_.last_error.clear();
  status_.last_error_count = 0;
  status_.last_success = status_.last_attempt;
  if (previous->version != 0 && next->hash == previous->hash) {
    return;  // nothing that matters changed (a touched file, a comment)
  }
  for (const auto& d : next->warnings)
    if (d.severity == Diagnostic::Severity::kWarning)
      LOG(WARNING) << "config: " << d.ToString();
  std::atomic_store(&current_, std::move(next));
  const auto& s = *current();
  LOG(INFO) << "config snapshot v" << s.version << " (" << s.HashText()
            << ") applied: " << s.resources.size() << " resources from "
            << s.files << " files in " << status_.last_build_time.count()
            << " us (" << result.stats.files_read << " files read, "
            << result.stats.resources_decoded << " resources decoded)";
  for (const auto& fn : subscribers_) fn(current());
}

void ModelSource::UseExternal(std::string root, Committer commit) {
  external_root_ = std::move(root);
  commit_ = std::move(commit);
  builder_.SetExternal(external_root_, &external_);
}

void ModelSource::ApplyExternal(const std::vector<ExternalChange>& changes,
                                bool reset, int64_t list_revision) {
  bool changed = false;
  int64_t newest = 0;
  if (reset) {
    // A store whose history restarted below what this source holds (etcd
    // rebuilt from nothing): its list is the whole truth.
    int64_t held = 0;
    for (const auto& [path, f] : external_) held = std::max(held, f.revision);
    if (list_revision > 0 && list_revision < held) {
      external_.clear();
      deleted_at_.clear();
      changed = true;
    }
    // What a list does not hold is gone, unless this source wrote it after
    // the list's revision.
    int64_t listed = list_revision;
    std::set<std::string_view> listed_paths;
    for (const auto& c : changes) {
      listed = std::max(listed, c.revision);
      listed_paths.insert(c.path);
    }
    for (auto it = external_.begin(); it != external_.end();) {
      if (!listed_paths.count(it->first) && it->second.revision <= listed) {
        it = external_.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
  }
  for (const ExternalChange& c : changes) {
    newest = std::max(newest, c.revision);
    auto it = external_.find(c.path);
    if (it != external_.end() && it->second.revision >= c.revision) continue;
    if (auto d = deleted_at_.find(c.path);
        d != deleted_at_.end() && d->second >= c.revision)
      continue;
    if (!c.text) {
      if (it == external_.end()) continue;
      external_.erase(it);
    } else {
      auto& f = external_[c.path];
      f.revision = c.revision;
      f.text = *c.text;
      f.key = c.key;
    }
    changed = true;
  }
  // The store's changes arrive in order: a delete older than what it sent
  // now can no longer be overtaken.
  for (auto it = deleted_at_.begin(); it != deleted_at_.end();)
    it = it->second <= newest ? deleted_at_.erase(it) : std::next(it);
  if (changed || reset) Reload();
}

std::optional<std::string> ModelSource::ReadModelFile(
    const std::string& rel) const {
  if (commit_ && rel.rfind(external_root_, 0) == 0) {
    auto it = external_.find(rel);
    if (it == external_.end()) return std::nullopt;
    return it->second.text;
  }
  std::ifstream in(config_dir_ + "/" + rel, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace nodemesh::model

namespace nodemesh::model {

ModelSource::ApplyResult ModelSource::Apply(
    const SnapshotBuilder::Overlay& change) {
  ApplyResult out;
  auto previous = current();
  SnapshotBuilder::Result result = builder_.Build(previous.get(), &change);
  if (!result.snapshot) {
    for (const auto& d : result.diagnostics.items())
      if (d.severity == Diagnostic::Severity::kError) out.errors.push_back(d);
    return out;
  }
  if (commit_) {
    out.commit_error = CommitExternal(change);
    if (!out.commit_error.ok()) return out;
  } else {
    out.write_error = WriteFiles(change);
    if (!out.write_error.empty()) return out;
  }
  status_.last_attempt = std::chrono::system_clock::now();
  Publish(result.snapshot, result);
  out.snapshot = current();
  return out;
}

absl::Status ModelSource::CommitExternal(
    const SnapshotBuilder::Overlay& change) {
  std::vector<ExternalWrite> writes;
  for (const auto& [rel, content] : change) {
    ExternalWrite w;
    w.path = rel;
    w.text = content;
    if (auto it = external_.find(rel); it != external_.end()) {
      w.key = it->second.key;
      w.expected_revision = it->second.revision;
    }
    writes.push_back(std::move(w));
  }
  auto revision = commit_(writes);
  if (!revision.ok()) return revision.status();
  for (const ExternalWrite& w : writes) {
    if (w.text) {
      auto& f = external_[w.path];
      f.revision = *revision;
      f.text = *w.text;
      if (!w.key.empty()) f.key = w.key;
    } else {
      external_.erase(w.path);
      deleted_at_[w.path] = *revision;
    }
  }
  return absl::OkStatus();
}

std::string ModelSource::WriteFiles(const SnapshotBuilder::Overlay& change) {
  namespace fs = std::filesystem;
  for (const auto& [rel, content] : change) {
    fs::path path = fs::path(config_dir_) / rel;
    std::error_code ec;
    if (!content) {
      fs::remove(path, ec);
      continue;
    }
    fs::create_directories(path.parent_path(), ec);
    fs::path tmp =
        path.parent_path() / ("." + path.filename().string() + ".tmp");
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f << *content;
      f.flush();
      if (!f) return "cannot write " + tmp.string();
    }
    fs::rename(tmp, path, ec);
    if (ec) return "cannot rename into " + path.string() + ": " + ec.message();
  }
  return "";
}

}  // namespace nodemesh::model
