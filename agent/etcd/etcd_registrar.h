#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "agent/etcd/etcd_client.h"

namespace nodemesh::etcd {

// Keeps this node's registrations (its node record and its local
// workloads' endpoints) in etcd under one lease that it renews every third
// of the TTL. When the agent dies the lease expires and etcd deletes the
// keys: every other node drops the endpoints. The lease's id is kept in
// `lease_file` (the state dir), so a restarted agent renews the same lease
// within the TTL and nothing is deregistered in between; a lease that did
// expire (a long partition) is replaced and the keys written again.
// Runs on a thread of its own.
class Registrar {
 public:
  struct Status {
    bool ok = false;  // the lease is alive and every key is written
    std::string error;
    int64_t lease = 0;
    int64_t ttl_left = 0;  // seconds, at the last renewal
    uint64_t grants = 0;   // leases granted (1 unless one was lost)
    uint64_t renewals = 0;
    uint64_t failures = 0;  // calls that failed (then retried)
    uint64_t writes = 0;    // keys put or deleted
  };

  Registrar(Client::Options options, int64_t ttl_seconds,
            std::string lease_file, std::string owned_prefix);
  ~Registrar();
  Registrar(const Registrar&) = delete;
  Registrar& operator=(const Registrar&) = delete;

  // The keys this node must hold (any thread). Keys under `owned_prefix`
  // that are not in the first set given are deleted (what a predecessor
  // registered and this agent no longer has).
  void SetDesired(std::map<std::string, std::string> kvs);
  // Writes every key again (one was deleted under us).
  void Resync();
  void Start();
  // Stops renewing. The lease stays: a successor renews it, or it expires.
  void Stop();
  Status status() const;

  // --cleanup: revokes the lease named in `lease_file` (etcd deletes its
  // keys) and deletes what is left under `owned_prefix` and `node_key`.
  static absl::Status Deregister(Client* client, const std::string& lease_file,
                                 const std::string& owned_prefix,
                                 const std::string& node_key);

 private:
  void Run();
  // Grants or adopts the lease; true when the keys must be written again.
  absl::Status EnsureLease(bool* rewrite_all);
  absl::Status WriteKeys(bool all);

  Client client_;
  int64_t ttl_;
  std::string lease_file_;
  std::string owned_prefix_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool dirty_ = false;   // desired_ changed since the last write
  bool resync_ = false;  // write everything
  bool have_desired_ = false;
  std::map<std::string, std::string> desired_;
  Status status_;
  std::thread thread_;

  // The thread's own.
  int64_t lease_ = 0;
  std::map<std::string, std::string> written_;
};

}  // namespace nodemesh::etcd
