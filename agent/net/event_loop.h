#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/net/unique_fd.h"

namespace nodemesh::net {

// One epoll loop per thread (Envoy style): everything a connection touches is
// owned by the loop that runs it, so the request path needs no locks. Other
// threads talk to a loop only through Post() and Stop().
//
// Readiness is level-triggered: a handler may read once per wakeup and leave
// the rest for the next turn, which keeps connections fair and saves the
// read() that edge-triggered code needs to see EAGAIN.
//
// Add/Modify/Remove/AddTimer/CancelTimer must run on the loop thread (the
// thread inside Run(), or the creating thread before Run() starts).
class EventLoop {
 public:
  using IoCallback = std::function<void(uint32_t epoll_events)>;
  using TimerId = uint64_t;
  static constexpr TimerId kInvalidTimer = 0;

  static absl::StatusOr<std::unique_ptr<EventLoop>> Create();
  ~EventLoop();

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Watches `fd` for `events` (EPOLLIN, EPOLLOUT, ...). The loop does not own
  // the fd; call Remove() before closing it.
  absl::Status Add(int fd, uint32_t events, IoCallback cb);
  absl::Status Modify(int fd, uint32_t events);
  // Safe from inside any callback, including the fd's own: the running
  // callback stays alive until it returns, and events already fetched for a
  // removed fd are dropped.
  void Remove(int fd);

  // One-shot timer; ids are never reused, so cancelling a fired or unknown id
  // is a no-op.
  TimerId AddTimer(std::chrono::milliseconds delay, std::function<void()> cb);
  void CancelTimer(TimerId id);

  // Thread-safe; `fn` runs on the loop thread in posting order. Work still
  // queued when the loop is destroyed is dropped without running.
  void Post(std::function<void()> fn);

  // Dispatches events until Stop(). May be called again after it returns.
  void Run();
  // Thread-safe; Run() returns after the current iteration. A Stop() before
  // Run() makes the next Run() return at once.
  void Stop();

  bool IsInLoopThread() const;

  // Runs on the loop thread after each batch of events has been dispatched:
  // where owners free objects whose callbacks may still have been on the
  // stack during the batch (deferred deletion). Set before Run().
  void SetAfterBatch(std::function<void()> fn) { after_batch_ = std::move(fn); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Registration {
    uint32_t tag;  // distinguishes this registration from an earlier one
    std::shared_ptr<IoCallback> cb;
  };
  // Timers ordered by deadline, ties by id so equal deadlines fire in the
  // order they were added.
  using TimerKey = std::pair<Clock::time_point, TimerId>;

  EventLoop(UniqueFd epoll_fd, UniqueFd wake_fd, UniqueFd timer_fd);
  void Dispatch(const epoll_event& ev);
  void RunPosted();
  void RunTimers();
  void ArmTimerFd();

  UniqueFd epoll_fd_;
  UniqueFd wake_fd_;   // eventfd: Post() and Stop() wake epoll_wait
  UniqueFd timer_fd_;  // timerfd armed for the earliest deadline only
  std::atomic<std::thread::id> owner_;
  std::atomic<bool> stop_requested_{false};

  absl::flat_hash_map<int, Registration> handlers_;
  uint32_t next_tag_ = 1;

  std::map<TimerKey, std::function<void()>> timers_;
  absl::flat_hash_map<TimerId, Clock::time_point> timer_deadlines_;
  TimerId next_timer_id_ = 1;
  // Deadline the timerfd is set to; time_point::max() when disarmed.
  Clock::time_point armed_deadline_ = Clock::time_point::max();

  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;   // guarded by posted_mu_
  std::vector<std::function<void()>> running_;  // loop thread only
  std::function<void()> after_batch_;
};

}  // namespace nodemesh::net
