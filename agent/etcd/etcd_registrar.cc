#include "agent/etcd/etcd_registrar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace nodemesh::etcd {
namespace {

using Clock = std::chrono::steady_clock;

// etcd refuses transactions with more operations (--max-txn-ops, 128).
constexpr size_t kOpsPerTxn = 100;
constexpr std::chrono::milliseconds kRetry{500};

int64_t ReadLeaseFile(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  int64_t id = 0;
  if (in >> text && absl::SimpleAtoi(text, &id)) return id;
  return 0;
}

absl::Status WriteLeaseFile(const std::string& path, int64_t id) {
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << "\n";
    out.flush();
    if (!out) return absl::InternalError("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return absl::InternalError("cannot rename " + tmp + " to " + path);
  return absl::OkStatus();
}

}  // namespace

Registrar::Registrar(Client::Options options, int64_t ttl_seconds,
                     std::string lease_file, std::string owned_prefix)
    : client_(std::move(options)),
      ttl_(ttl_seconds),
      lease_file_(std::move(lease_file)),
      owned_prefix_(std::move(owned_prefix)) {}

Registrar::~Registrar() { Stop(); }

void Registrar::SetDesired(std::map<std::string, std::string> kvs) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (have_desired_ && kvs == desired_) return;
    desired_ = std::move(kvs);
    have_desired_ = true;
    dirty_ = true;
  }
  cv_.notify_all();
}

void Registrar::Resync() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    resync_ = true;
  }
  cv_.notify_all();
}

void Registrar::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Registrar::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  client_.Abort();
  if (thread_.joinable()) thread_.join();
}

Registrar::Status Registrar::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

absl::Status Registrar::EnsureLease(bool* rewrite_all) {
  if (lease_ != 0) return absl::OkStatus();
  int64_t id = ReadLeaseFile(lease_file_);
  if (id != 0) {
    auto ttl = client_.LeaseKeepAlive(id);
    if (!ttl.ok()) return ttl.status();
    if (*ttl > 0) {
      // A predecessor's lease, still alive: take it over, and with it what
      // it registered (compared below, so an unchanged restart writes
      // nothing).
      auto held = client_.Range(owned_prefix_, PrefixEnd(owned_prefix_));
      if (!held.ok()) return held.status();
      written_.clear();
      for (const KeyValue& kv : held->kvs)
        if (kv.lease == id) written_[kv.key] = kv.value;
      std::vector<std::string> others;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [k, v] : desired_)
          if (k.rfind(owned_prefix_, 0) != 0) others.push_back(k);
      }
      // Keys outside the owned prefix (the node record): read singly.
      for (const std::string& k : others) {
        auto one = client_.Range(k, "");
        if (!one.ok()) return one.status();
        if (!one->kvs.empty() && one->kvs[0].lease == id)
          written_[k] = one->kvs[0].value;
      }
      lease_ = id;
      LOG(INFO) << "etcd: renewed lease " << id << " of the previous agent ("
                << *ttl << " s left); " << written_.size()
                << " registrations kept";
      return absl::OkStatus();
    }
  }
  auto granted = client_.LeaseGrant(ttl_);
  if (!granted.ok()) return granted.status();
  lease_ = *granted;
  written_.clear();
  *rewrite_all = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++status_.grants;
  }
  if (auto s = WriteLeaseFile(lease_file_, lease_); !s.ok())
    LOG(WARNING) << "etcd: " << s.message()
                 << "; a restart will register under a new lease";
  LOG(INFO) << "etcd: granted lease " << lease_ << " (" << ttl_ << " s)";
  return absl::OkStatus();
}

absl::Status Registrar::WriteKeys(bool all) {
  std::map<std::string, std::string> desired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!have_desired_) return absl::OkStatus();
    desired = desired_;
    dirty_ = false;
    if (resync_) all = true;
    resync_ = false;
  }
  std::vector<Write> ops;
  for (const auto& [k, v] : desired) {
    auto it = written_.find(k);
    if (all || it == written_.end() || it->second != v)
      ops.push_back({k, v, lease_});
  }
  for (const auto& [k, v] : written_)
    if (!desired.count(k)) ops.push_back({k, std::nullopt, 0});
  for (size_t i = 0; i < ops.size(); i += kOpsPerTxn) {
    std::vector<Write> part(ops.begin() + static_cast<std::ptrdiff_t>(i),
                            ops.begin() + static_cast<std::ptrdiff_t>(std::min(
                                              ops.size(), i + kOpsPerTxn)));
    auto r = client_.Txn({}, part);
    if (!r.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      dirty_ = true;  // try again
      return r.status();
    }
    for (const Write& w : part) {
      if (w.value)
        written_[w.key] = *w.value;
      else
        written_.erase(w.key);
    }
    std::lock_guard<std::mutex> lock(mu_);
    status_.writes += part.size();
  }
  return absl::OkStatus();
}

void Registrar::Run() {
  const auto renew_every = std::max(std::chrono::milliseconds(ttl_ * 1000 / 3),
                                    std::chrono::milliseconds(500));
  auto next_renew = Clock::now();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, next_renew,
                     [this] { return stop_ || dirty_ || resync_; });
      if (stop_) return;
    }
    absl::Status s;
    bool all = false;
    const bool had_lease = lease_ != 0;
    s = EnsureLease(&all);
    if (s.ok() && had_lease && Clock::now() >= next_renew) {
      auto ttl = client_.LeaseKeepAlive(lease_);
      if (!ttl.ok()) {
        s = ttl.status();
      } else if (*ttl == 0) {
        // Expired while we could not reach etcd: its keys are gone.
        LOG(WARNING) << "etcd: lease " << lease_
                     << " expired; registering again under a new one";
        lease_ = 0;
        s = EnsureLease(&all);
      } else {
        std::lock_guard<std::mutex> lock(mu_);
        ++status_.renewals;
        status_.ttl_left = *ttl;
      }
    }
    if (s.ok()) s = WriteKeys(all);
    {
      std::lock_guard<std::mutex> lock(mu_);
      status_.lease = lease_;
      if (s.ok()) {
        if (!status_.ok && !status_.error.empty())
          LOG(INFO) << "etcd: registrations written again";
        status_.ok = true;
        status_.error.clear();
      } else {
        if (status_.error != s.message())
          LOG(WARNING) << "etcd: registration: " << s.message() << "; retrying";
        ++status_.failures;
        status_.ok = false;
        status_.error = absl::StrCat(s.message());
      }
    }
    auto now = Clock::now();
    if (!s.ok()) {
      next_renew = now + kRetry;
    } else if (!had_lease || now >= next_renew) {
      next_renew = now + renew_every;
    }
  }
}

absl::Status Registrar::Deregister(Client* client,
                                   const std::string& lease_file,
                                   const std::string& owned_prefix,
                                   const std::string& node_key) {
  int64_t id = ReadLeaseFile(lease_file);
  if (id != 0)
    if (auto s = client->LeaseRevoke(id); !s.ok()) return s;
  if (auto n = client->DeleteRange(owned_prefix, PrefixEnd(owned_prefix));
      !n.ok())
    return n.status();
  if (auto n = client->DeleteRange(node_key, ""); !n.ok()) return n.status();
  std::remove(lease_file.c_str());
  return absl::OkStatus();
}

}  // namespace nodemesh::etcd
