#pragma once

// A small client for the etcd v3 API through its gRPC gateway (HTTP/1.1 and
// JSON: /v3/kv/range, /v3/kv/txn, /v3/lease/*, /v3/watch), which every etcd
// since 3.4 serves on its client URLs. Blocking calls with a deadline, meant
// for the agent's etcd threads and for the App Mesh API's writes (which the
// caller waits for anyway). One instance is one keep-alive connection: use
// one per thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/net/socket.h"
#include "nlohmann/json.hpp"

namespace nodemesh::etcd {

// One key as etcd holds it (keys and values are bytes; the gateway's base64
// is undone).
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for a delete: the key and mod_revision (the delete's)
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;  // the store's revision the answer is consistent at
};

// A compare of a transaction: the key's mod_revision (0: the key does not
// exist) must equal `mod_revision`.
struct Compare {
  std::string key;
  int64_t mod_revision = 0;
};

// A write of a transaction: put `value` (under `lease` when non-zero), or
// delete the key when `value` is empty.
struct Write {
  std::string key;
  std::optional<std::string> value;
  int64_t lease = 0;
};

struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;  // the revision the transaction produced (or saw)
};

// One answer on a watch stream.
struct WatchResponse {
  int64_t header_revision = 0;
  bool created = false;
  // The watch ended because `compact_revision` was compacted away: list
  // again, then watch from the list's revision.
  bool canceled = false;
  int64_t compact_revision = 0;
  std::vector<Event> events;
};

// "http://10.0.0.1:2379" or "10.0.0.1:2379" (names are not resolved: give
// addresses).
absl::StatusOr<net::SocketAddress> ParseEndpoint(const std::string& url);
// The end of the key range holding every key that starts with `prefix`.
std::string PrefixEnd(const std::string& prefix);

class Client {
 public:
  struct Options {
    std::vector<net::SocketAddress> endpoints;
    // Connect and each call (not a watch, which lasts) end after this long.
    std::chrono::milliseconds timeout{2000};
    uint32_t socket_mark = 0;  // SO_MARK: the agent's sockets are never
                               // redirected by its own datapath
  };
  explicit Client(Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Every key in [key, range_end) (range_end empty: just `key`).
  absl::StatusOr<RangeResult> Range(const std::string& key,
                                    const std::string& range_end);
  // All compares hold -> all writes are made, atomically.
  absl::StatusOr<TxnResult> Txn(const std::vector<Compare>& compares,
                                const std::vector<Write>& writes);
  absl::StatusOr<int64_t> DeleteRange(const std::string& key,
                                      const std::string& range_end);

  // Grants a lease of `ttl` seconds with the given id (0: etcd picks one).
  absl::StatusOr<int64_t> LeaseGrant(int64_t ttl_seconds, int64_t id = 0);
  // Renews the lease; its remaining TTL, 0 when the lease is gone.
  absl::StatusOr<int64_t> LeaseKeepAlive(int64_t id);
  absl::Status LeaseRevoke(int64_t id);

  // Watches [key, range_end) from `start_revision` and calls `on_response`
  // for each answer until it returns false, the watch is canceled, the
  // connection fails, or Abort() is called from another thread. Returns
  // OK after a cancel or `false`, an error otherwise.
  absl::Status Watch(
      const std::string& key, const std::string& range_end,
      int64_t start_revision,
      const std::function<bool(const WatchResponse&)>& on_response);
  // Ends a Watch() in progress (any thread).
  void Abort();

  // The endpoint of the last connection attempt, for messages.
  std::string endpoint() const;

 private:
  // POSTs `body` to `path` and returns the JSON body of a 200 answer.
  absl::StatusOr<std::string> Call(const std::string& path,
                                   const std::string& body);
  // Call() with a JSON request, the answer parsed.
  absl::StatusOr<nlohmann::json> CallJson(const std::string& path,
                                          const nlohmann::json& request);
  absl::Status Connect();
  void Disconnect();
  absl::Status SendRequest(const std::string& path, const std::string& body);
  // Reads the status line and headers; `chunked` or `content_length`.
  absl::Status ReadHead(int* status, bool* chunked, int64_t* content_length,
                        std::chrono::steady_clock::time_point deadline);
  absl::Status ReadBody(bool chunked, int64_t content_length,
                        std::chrono::steady_clock::time_point deadline,
                        std::string* body);
  // The next chunk's bytes ("" at the last chunk).
  absl::Status ReadChunk(std::chrono::steady_clock::time_point deadline,
                         std::string* out, bool* last);
  absl::Status ReadLine(std::chrono::steady_clock::time_point deadline,
                        std::string* line);
  absl::Status Fill(std::chrono::steady_clock::time_point deadline);

  Options options_;
  size_t next_endpoint_ = 0;
  std::atomic<int> fd_{-1};
  std::atomic<bool> aborted_{false};
  std::string in_;  // bytes read, not yet consumed
  size_t in_pos_ = 0;
  std::string endpoint_;
};

}  // namespace nodemesh::etcd
