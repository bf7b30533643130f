#include "agent/net/event_loop.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace nodemesh::net {
namespace {

using std::chrono::milliseconds;

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Pipe MakePipe() {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void WriteByte(int fd) { ASSERT_EQ(::write(fd, "x", 1), 1); }

class EventLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
  }

  // Runs the loop with a watchdog so a broken test fails instead of hanging.
  void RunWithWatchdog(milliseconds limit = milliseconds(5000)) {
    bool fired = false;
    EventLoop::TimerId id = loop_->AddTimer(limit, [&] {
      fired = true;
      loop_->Stop();
    });
    loop_->Run();
    loop_->CancelTimer(id);
    EXPECT_FALSE(fired) << "loop did not stop on its own";
  }

  std::unique_ptr<EventLoop> loop_;
};

TEST_F(EventLoopTest, ReadableFdRunsCallback) {
  Pipe p = MakePipe();
  uint32_t seen = 0;
  ASSERT_TRUE(loop_
                  ->Add(p.read.get(), EPOLLIN,
                        [&](uint32_t ev) {
                          seen = ev;
                          char c;
                          EXPECT_EQ(::read(p.read.get(), &c, 1), 1);
                          loop_->Stop();
                        })
                  .ok());
  WriteByte(p.write.get());
  RunWithWatchdog();
  EXPECT_TRUE(seen & EPOLLIN);
  loop_->Remove(p.read.get());
}

TEST_F(EventLoopTest, ModifyChangesInterest) {
  Pipe p = MakePipe();
  std::vector<uint32_t> seen;
  ASSERT_TRUE(loop_
                  ->Add(p.write.get(), 0,
                        [&](uint32_t ev) {
                          seen.push_back(ev);
                          loop_->Stop();
                        })
                  .ok());
  // Writable all along, but not reported until asked for.
  bool timer_ran = false;
  loop_->AddTimer(milliseconds(20), [&] {
    timer_ran = true;
    EXPECT_TRUE(seen.empty());
    EXPECT_TRUE(loop_->Modify(p.write.get(), EPOLLOUT).ok());
  });
  RunWithWatchdog();
  EXPECT_TRUE(timer_ran);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0] & EPOLLOUT);
}

TEST_F(EventLoopTest, AddTwiceAndModifyUnknownFail) {
  Pipe p = MakePipe();
  ASSERT_TRUE(loop_->Add(p.read.get(), EPOLLIN, [](uint32_t) {}).ok());
  absl::Status again = loop_->Add(p.read.get(), EPOLLIN, [](uint32_t) {});
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(loop_->Modify(p.write.get(), EPOLLOUT).code(),
            absl::StatusCode::kNotFound);
  loop_->Remove(p.read.get());
  loop_->Remove(p.read.get());  // twice is harmless
  EXPECT_TRUE(loop_->Add(p.read.get(), EPOLLIN, [](uint32_t) {}).ok());
  loop_->Remove(p.read.get());
}

TEST_F(EventLoopTest, TimersFireInDeadlineOrder) {
  std::string order;
  loop_->AddTimer(milliseconds(30), [&] {
    order += "c";
    loop_->Stop();
  });
  loop_->AddTimer(milliseconds(10), [&] { order += "a"; });
  loop_->AddTimer(milliseconds(20), [&] { order += "b"; });
  loop_->AddTimer(milliseconds(0), [&] { order += "0"; });
  loop_->AddTimer(milliseconds(0), [&] { order += "1"; });
  RunWithWatchdog();
  EXPECT_EQ(order, "01abc");
}

TEST_F(EventLoopTest, CancelledTimersDoNotFire) {
  bool cancelled_ran = false;
  bool sibling_ran = false;
  EventLoop::TimerId cancelled =
      loop_->AddTimer(milliseconds(10), [&] { cancelled_ran = true; });
  loop_->CancelTimer(cancelled);
  loop_->CancelTimer(cancelled);  // twice is a no-op
  loop_->CancelTimer(987654);     // unknown id too

  // A timer cancelling one due in the same wakeup.
  EventLoop::TimerId sibling = 0;
  loop_->AddTimer(milliseconds(5), [&] { loop_->CancelTimer(sibling); });
  sibling = loop_->AddTimer(milliseconds(5), [&] { sibling_ran = true; });
  loop_->AddTimer(milliseconds(40), [&] { loop_->Stop(); });
  RunWithWatchdog();
  EXPECT_FALSE(cancelled_ran);
  EXPECT_FALSE(sibling_ran);
}

TEST_F(EventLoopTest, TimerAddedFromTimerRuns) {
  int runs = 0;
  loop_->AddTimer(milliseconds(5), [&] {
    ++runs;
    loop_->AddTimer(milliseconds(5), [&] {
      ++runs;
      loop_->Stop();
    });
  });
  RunWithWatchdog();
  EXPECT_EQ(runs, 2);
}

TEST_F(EventLoopTest, EarlierTimerAddedAfterLaterOneStillFiresFirst) {
  // The timerfd is armed for the later deadline first and must be re-armed.
  std::string order;
  loop_->AddTimer(milliseconds(200), [&] {
    order += "late";
    loop_->Stop();
  });
  loop_->AddTimer(milliseconds(10), [&] { order += "early,"; });
  RunWithWatchdog();
  EXPECT_EQ(order, "early,late");
}

TEST_F(EventLoopTest, PostFromOtherThreadsRunsOnLoopThreadInOrder) {
  std::thread runner([&] { loop_->Run(); });
  constexpr int kPerThread = 1000;
  std::vector<int> seen_a, seen_b;
  std::atomic<int> done{0};
  std::atomic<bool> all_in_loop{true};
  auto poster = [&](std::vector<int>* seen) {
    for (int i = 0; i < kPerThread; ++i) {
      loop_->Post([&, seen, i] {
        if (!loop_->IsInLoopThread()) all_in_loop = false;
        seen->push_back(i);
        if (++done == 2 * kPerThread) loop_->Stop();
      });
    }
  };
  std::thread a(poster, &seen_a);
  std::thread b(poster, &seen_b);
  a.join();
  b.join();
  runner.join();
  EXPECT_TRUE(all_in_loop);
  ASSERT_EQ(seen_a.size(), static_cast<size_t>(kPerThread));
  ASSERT_EQ(seen_b.size(), static_cast<size_t>(kPerThread));
  for (int i = 0; i < kPerThread; ++i) {
    EXPECT_EQ(seen_a[i], i);
    EXPECT_EQ(seen_b[i], i);
  }
  EXPECT_FALSE(loop_->IsInLoopThread());
}

TEST_F(EventLoopTest, StopFromOtherThreadEndsRun) {
  std::atomic<bool> running{false};
  loop_->Post([&] { running = true; });
  std::thread runner([&] { loop_->Run(); });
  while (!running) std::this_thread::yield();
  loop_->Stop();
  runner.join();  // hangs (and times out in CTest) if Stop is lost
}

TEST_F(EventLoopTest, StopBeforeRunAndRunAgain) {
  loop_->Stop();
  loop_->Run();  // returns at once
  bool ran = false;
  loop_->Post([&] {
    ran = true;
    loop_->Stop();
  });
  RunWithWatchdog();
  EXPECT_TRUE(ran);
}

TEST_F(EventLoopTest, RemoveInsideOwnCallback) {
  Pipe p = MakePipe();
  int calls = 0;
  // State owned by the closure: it must outlive Remove() during the call.
  auto state = std::make_shared<std::string>(1000, 'x');
  ASSERT_TRUE(loop_
                  ->Add(p.read.get(), EPOLLIN,
                        [&, state](uint32_t) {
                          ++calls;
                          loop_->Remove(p.read.get());
                          EXPECT_EQ(state->size(), 1000u);  // ASan checks
                        })
                  .ok());
  WriteByte(p.write.get());  // stays unread: level-triggered would repeat
  loop_->AddTimer(milliseconds(30), [&] { loop_->Stop(); });
  RunWithWatchdog();
  EXPECT_EQ(calls, 1);
}

TEST_F(EventLoopTest, RemovedFdInSameBatchIsNotDispatched) {
  Pipe p1 = MakePipe();
  Pipe p2 = MakePipe();
  int calls = 0;
  auto cb = [&](uint32_t) {
    ++calls;
    // Whichever runs first removes both; the other's event is stale.
    loop_->Remove(p1.read.get());
    loop_->Remove(p2.read.get());
  };
  ASSERT_TRUE(loop_->Add(p1.read.get(), EPOLLIN, cb).ok());
  ASSERT_TRUE(loop_->Add(p2.read.get(), EPOLLIN, cb).ok());
  WriteByte(p1.write.get());
  WriteByte(p2.write.get());
  loop_->AddTimer(milliseconds(30), [&] { loop_->Stop(); });
  RunWithWatchdog();
  EXPECT_EQ(calls, 1);
}

TEST_F(EventLoopTest, StaleEventDoesNotReachNewRegistrationOfSameFd) {
  Pipe p1 = MakePipe();
  Pipe p2 = MakePipe();
  Pipe replacement;
  int first_calls = 0;
  int replacement_calls = 0;
  auto first = [&](uint32_t) {
    if (++first_calls > 1) return;
    // Drop the other pipe and register a new one, which likely reuses its
    // fd number, while the old event may still be in this batch.
    loop_->Remove(p1.read.get());
    loop_->Remove(p2.read.get());
    p1.read.Reset();
    p2.read.Reset();
    replacement = MakePipe();
    EXPECT_TRUE(loop_
                    ->Add(replacement.read.get(), EPOLLIN,
                          [&](uint32_t) { ++replacement_calls; })
                    .ok());
  };
  ASSERT_TRUE(loop_->Add(p1.read.get(), EPOLLIN, first).ok());
  ASSERT_TRUE(loop_->Add(p2.read.get(), EPOLLIN, first).ok());
  WriteByte(p1.write.get());
  WriteByte(p2.write.get());
  loop_->AddTimer(milliseconds(30), [&] { loop_->Stop(); });
  RunWithWatchdog();
  EXPECT_EQ(first_calls, 1);
  EXPECT_EQ(replacement_calls, 0);  // nothing was written to it
  loop_->Remove(replacement.read.get());
}

TEST_F(EventLoopTest, PostedWorkRunsFromCallbacksToo) {
  std::string order;
  loop_->Post([&] {
    order += "a";
    loop_->Post([&] {
      order += "c";
      loop_->Stop();
    });
    order += "b";
  });
  RunWithWatchdog();
  EXPECT_EQ(order, "abc");
}

}  // namespace
}  // namespace nodemesh::net
