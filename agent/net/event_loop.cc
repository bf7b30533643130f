#include "agent/net/event_loop.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace nodemesh::net {
namespace {

// epoll_event.data carries the fd and the registration tag, so an event for
// a registration that was removed (and maybe replaced by a new fd with the
// same number) earlier in the same batch is recognised and dropped.
uint64_t PackData(int fd, uint32_t tag) {
  return (static_cast<uint64_t>(tag) << 32) | static_cast<uint32_t>(fd);
}
int DataFd(uint64_t data) { return static_cast<int>(data & 0xffffffffu); }
uint32_t DataTag(uint64_t data) { return static_cast<uint32_t>(data >> 32); }

constexpr int kMaxEventsPerWait = 256;

}  // namespace

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create() {
  UniqueFd epoll_fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd) return absl::ErrnoToStatus(errno, "event loop: epoll_create1");
  UniqueFd wake_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd) return absl::ErrnoToStatus(errno, "event loop: eventfd");
  UniqueFd timer_fd(
      ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer_fd) return absl::ErrnoToStatus(errno, "event loop: timerfd");

  std::unique_ptr<EventLoop> loop(new EventLoop(
      std::move(epoll_fd), std::move(wake_fd), std::move(timer_fd)));
  absl::Status st =
      loop->Add(loop->wake_fd_.get(), EPOLLIN, [l = loop.get()](uint32_t) {
        uint64_t count;
        // Reset the counter before taking the queue: a Post() racing with us
        // either lands in this batch or writes the eventfd again.
        (void)!::read(l->wake_fd_.get(), &count, sizeof(count));
        l->RunPosted();
      });
  if (!st.ok()) return st;
  st = loop->Add(loop->timer_fd_.get(), EPOLLIN,
                 [l = loop.get()](uint32_t) { l->RunTimers(); });
  if (!st.ok()) return st;
  return loop;
}

EventLoop::EventLoop(UniqueFd epoll_fd, UniqueFd wake_fd, UniqueFd timer_fd)
    : epoll_fd_(std::move(epoll_fd)),
      wake_fd_(std::move(wake_fd)),
      timer_fd_(std::move(timer_fd)),
      owner_(std::this_thread::get_id()) {}

EventLoop::~EventLoop() = default;

absl::Status EventLoop::Add(int fd, uint32_t events, IoCallback cb) {
  DCHECK(IsInLoopThread());
  if (handlers_.contains(fd)) {
    return absl::AlreadyExistsError(
        absl::StrCat("event loop: fd ", fd, " is already registered"));
  }
  uint32_t tag = next_tag_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = PackData(fd, tag);
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("event loop: add fd ", fd));
  }
  handlers_.emplace(
      fd, Registration{tag, std::make_shared<IoCallback>(std::move(cb))});
  return absl::OkStatus();
}

absl::Status EventLoop::Modify(int fd, uint32_t events) {
  DCHECK(IsInLoopThread());
  auto it = handlers_.find(fd);
  if (it == handlers_.end()) {
    return absl::NotFoundError(
        absl::StrCat("event loop: fd ", fd, " is not registered"));
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = PackData(fd, it->second.tag);
  if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("event loop: modify fd ", fd));
  }
  return absl::OkStatus();
}

void EventLoop::Remove(int fd) {
  DCHECK(IsInLoopThread());
  auto it = handlers_.find(fd);
  if (it == handlers_.end()) return;
  // EBADF/ENOENT only mean the kernel already forgot the fd.
  (void)::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  handlers_.erase(it);
}

EventLoop::TimerId EventLoop::AddTimer(std::chrono::milliseconds delay,
                                       std::function<void()> cb) {
  DCHECK(IsInLoopThread());
  TimerId id = next_timer_id_++;
  Clock::time_point deadline =
      Clock::now() + std::max(delay, std::chrono::milliseconds(0));
  timers_.emplace(TimerKey{deadline, id}, std::move(cb));
  timer_deadlines_.emplace(id, deadline);
  if (deadline < armed_deadline_) ArmTimerFd();
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  DCHECK(IsInLoopThread());
  auto it = timer_deadlines_.find(id);
  if (it == timer_deadlines_.end()) return;
  timers_.erase(TimerKey{it->second, id});
  timer_deadlines_.erase(it);
  // The timerfd stays armed: an early wakeup finds nothing due and re-arms,
  // which is cheaper than a timerfd_settime() on every cancel.
}

void EventLoop::ArmTimerFd() {
  itimerspec spec{};
  if (timers_.empty()) {
    armed_deadline_ = Clock::time_point::max();
  } else {
    armed_deadline_ = timers_.begin()->first.first;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  armed_deadline_.time_since_epoch())
                  .count();
    // steady_clock is CLOCK_MONOTONIC; an all-zero value would disarm.
    if (ns <= 0) ns = 1;
    spec.it_value.tv_sec = ns / 1000000000;
    spec.it_value.tv_nsec = ns % 1000000000;
  }
  if (::timerfd_settime(timer_fd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) !=
      0) {
    PLOG(ERROR) << "event loop: timerfd_settime";
  }
}

void EventLoop::RunTimers() {
  uint64_t expirations;
  (void)!::read(timer_fd_.get(), &expirations, sizeof(expirations));
  armed_deadline_ = Clock::time_point::max();
  const Clock::time_point now = Clock::now();
  // Re-check begin() each time: a callback may add or cancel timers.
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    timer_deadlines_.erase(node.key().second);
    node.mapped()();
  }
  if (!timers_.empty() && timers_.begin()->first.first < armed_deadline_) {
    ArmTimerFd();
  }
}

void EventLoop::Post(std::function<void()> fn) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    was_empty = posted_.empty();
    posted_.push_back(std::move(fn));
  }
  // Only the first post of a batch needs to wake the loop.
  if (was_empty) {
    uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof(one));
  }
}

void EventLoop::RunPosted() {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    running_.swap(posted_);
  }
  for (auto& fn : running_) fn();
  running_.clear();  // keeps capacity for the next batch
}

void EventLoop::Stop() {
  stop_requested_.store(true, std::memory_order_release);
  if (!IsInLoopThread()) {
    uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof(one));
  }
}

bool EventLoop::IsInLoopThread() const {
  return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id();
}

void EventLoop::Dispatch(const epoll_event& ev) {
  auto it = handlers_.find(DataFd(ev.data.u64));
  if (it == handlers_.end() || it->second.tag != DataTag(ev.data.u64)) return;
  // Hold a reference so Remove() from inside the callback cannot destroy the
  // closure while it runs.
  std::shared_ptr<IoCallback> cb = it->second.cb;
  (*cb)(ev.events);
}

void EventLoop::Run() {
  owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  std::array<epoll_event, kMaxEventsPerWait> events;
  while (!stop_requested_.load(std::memory_order_acquire)) {
    int n = ::epoll_wait(epoll_fd_.get(), events.data(), events.size(), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      PLOG(FATAL) << "event loop: epoll_wait";
    }
    for (int i = 0; i < n; ++i) Dispatch(events[i]);
    if (after_batch_) after_batch_();
  }
  stop_requested_.store(false, std::memory_order_release);
}

}  // namespace nodemesh::net
