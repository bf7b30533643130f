#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/etcd/etcd_client.h"
#include "agent/net/event_loop.h"

namespace nodemesh::etcd {

// Mirrors every key under a prefix into the main loop: lists the prefix,
// then watches it from the list's revision + 1, and after a lost connection
// resumes from the last revision it delivered — no change missed or seen
// twice. When etcd compacted that revision away it lists again (a reset).
// Runs on a thread of its own; everything it reports is Post()ed to `loop`.
class Watcher {
 public:
  struct Batch {
    bool reset = false;         // `kvs` is the whole prefix, replacing all
    std::vector<KeyValue> kvs;  // with reset
    std::vector<Event> events;  // otherwise, in revision order
    int64_t revision = 0;       // the list's, or the newest event's
  };
  struct State {
    bool connected = false;  // listed, and the watch is open
    std::string error;       // why not, when not
    int64_t revision = 0;
    uint64_t connects = 0;  // watches opened
    uint64_t lists = 0;     // full lists (the first, and after compaction)
  };

  Watcher(net::EventLoop* loop, Client::Options options, std::string prefix,
          std::function<void(Batch)> on_batch,
          std::function<void(const State&)> on_state);
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  void Start();
  void Stop();

 private:
  void Run();
  void Report(bool connected, std::string error);
  // Sleeps up to `d`, less when stopped.
  void Sleep(std::chrono::milliseconds d);

  net::EventLoop* loop_;
  Client client_;
  std::string prefix_;
  std::function<void(Batch)> on_batch_;
  std::function<void(const State&)> on_state_;
  State state_;     // the thread's
  State reported_;  // what the loop was told last
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace nodemesh::etcd
