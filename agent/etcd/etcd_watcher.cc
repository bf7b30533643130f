#include "agent/etcd/etcd_watcher.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace nodemesh::etcd {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{2000};

}  // namespace

Watcher::Watcher(net::EventLoop* loop, Client::Options options,
                 std::string prefix, std::function<void(Batch)> on_batch,
                 std::function<void(const State&)> on_state)
    : loop_(loop),
      client_(std::move(options)),
      prefix_(std::move(prefix)),
      on_batch_(std::move(on_batch)),
      on_state_(std::move(on_state)) {}

Watcher::~Watcher() { Stop(); }

void Watcher::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Watcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  client_.Abort();
  if (thread_.joinable()) thread_.join();
}

void Watcher::Sleep(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [this] { return stop_; });
}

void Watcher::Report(bool connected, std::string error) {
  state_.connected = connected;
  state_.error = std::move(error);
  if (state_.connected == reported_.connected &&
      state_.error == reported_.error && state_.lists == reported_.lists &&
      state_.connects == reported_.connects)
    return;
  reported_ = state_;
  State copy = state_;
  loop_->Post([this, copy] { on_state_(copy); });
}

void Watcher::Run() {
  const std::string end = PrefixEnd(prefix_);
  bool need_list = true;
  auto backoff = kFirstBackoff;
  auto stopped = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  };
  while (!stopped()) {
    if (need_list) {
      auto listed = client_.Range(prefix_, end);
      if (!listed.ok()) {
        Report(false, absl::StrCat(listed.status().message()));
        Sleep(backoff);
        backoff = std::min(backoff * 2, kMaxBackoff);
        continue;
      }
      ++state_.lists;
      state_.revision = listed->revision;
      Batch b;
      b.reset = true;
      b.revision = listed->revision;
      b.kvs = std::move(listed->kvs);
      loop_->Post(
          [this, b = std::move(b)]() mutable { on_batch_(std::move(b)); });
      need_list = false;
    }
    absl::Status s = client_.Watch(
        prefix_, end, state_.revision + 1, [&](const WatchResponse& r) {
          if (r.canceled) {
            // Compacted past our revision: only a list can catch up.
            need_list = r.compact_revision > 0;
            LOG(WARNING) << "etcd: watch canceled"
                         << (need_list ? " (revision compacted); listing "
                                         "again"
                                       : "");
            return false;
          }
          if (r.created && r.header_revision < state_.revision) {
            // The store's history restarted (etcd rebuilt from nothing):
            // a watch from our revision would wait for changes that are
            // already there under lower numbers.
            LOG(WARNING) << "etcd: revision " << r.header_revision
                         << " is behind ours (" << state_.revision
                         << "); listing again";
            need_list = true;
            return false;
          }
          if (r.created) {
            ++state_.connects;
            backoff = kFirstBackoff;
            Report(true, "");
          }
          if (!r.events.empty()) {
            Batch b;
            b.revision = r.events.back().kv.mod_revision;
            b.events = r.events;
            state_.revision = std::max(state_.revision, b.revision);
            b.revision = state_.revision;
            loop_->Post([this, b = std::move(b)]() mutable {
              on_batch_(std::move(b));
            });
          }
          return !stopped();
        });
    if (stopped()) break;
    if (!s.ok()) {
      Report(false, absl::StrCat(s.message()));
      Sleep(backoff);
      backoff = std::min(backoff * 2, kMaxBackoff);
    } else if (!need_list) {
      Sleep(backoff);  // canceled for another reason: do not spin
    }
  }
}

}  // namespace nodemesh::etcd
