#include "util/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "util/mutex.h"

namespace fern {
namespace {

TEST(ThreadPoolTest, SizeIsTheThreadCountAndAtLeastOne) {
  EXPECT_EQ(ThreadPool(3).size(), 3);
  EXPECT_EQ(ThreadPool(0).size(), 1);
  EXPECT_EQ(ThreadPool(-2).size(), 1);
}

TEST(ThreadPoolTest, ScheduleRunsEveryTask) {
  std::atomic<int> ran{0};
  // fern::Mutex, not absl::Mutex: a TSan build sees through it (see util/mutex.h).
  Mutex mu;
  std::set<std::thread::id> threads;
  {
    ThreadPool pool(4);
    for (int i = 0; i < 1000; ++i) {
      pool.Schedule([&] {
        ran.fetch_add(1);
        MutexLock lock(&mu);
        threads.insert(std::this_thread::get_id());
      });
    }
  }
  EXPECT_EQ(ran.load(), 1000);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u) << "tasks run on the workers";
}

TEST(ThreadPoolTest, ScheduleFromManyThreads) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(2);
    std::vector<std::thread> schedulers;
    for (int t = 0; t < 4; ++t) {
      schedulers.emplace_back([&] {
        for (int i = 0; i < 500; ++i) pool.Schedule([&] { ran.fetch_add(1); });
      });
    }
    for (std::thread& t : schedulers) t.join();
  }
  EXPECT_EQ(ran.load(), 2000);
}

TEST(ThreadPoolTest, SingleWorkerRunsTasksInOrder) {
  std::vector<int> order;
  {
    ThreadPool pool(1);
    for (int i = 0; i < 100; ++i) pool.Schedule([&order, i] { order.push_back(i); });
  }
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(ThreadPoolTest, DestructorDrainsTheQueue) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(1);
    // The worker is held up while the queue fills, so the destructor starts with 100 tasks
    // still queued.
    pool.Schedule([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      ran.fetch_add(1);
    });
    for (int i = 0; i < 100; ++i) pool.Schedule([&] { ran.fetch_add(1); });
  }
  EXPECT_EQ(ran.load(), 101);
}

TEST(ThreadPoolTest, TasksScheduledDuringShutdownStillRun) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(2);
    pool.Schedule([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      pool.Schedule([&] {
        pool.Schedule([&] { ran.fetch_add(1); });
        ran.fetch_add(1);
      });
      ran.fetch_add(1);
    });
  }
  EXPECT_EQ(ran.load(), 3);
}

TEST(ThreadPoolTest, ParallelForCoversEachIndexOnce) {
  ThreadPool pool(3);
  for (size_t n : {0, 1, 2, 3, 4, 17, 10000}) {
    std::vector<std::atomic<int>> calls(n);
    pool.ParallelFor(n, [&](size_t i) {
      ASSERT_LT(i, n);
      calls[i].fetch_add(1);
    });
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(calls[i].load(), 1) << "n " << n << " index " << i;
  }
}

TEST(ThreadPoolTest, ParallelForRunsIndicesConcurrently) {
  ThreadPool pool(2);
  // Indices 0 and 1 each wait for the other to start: only a concurrent ParallelFor gets
  // past this (the timeout turns a serial one into a failure, not a hang).
  Mutex mu;
  absl::CondVar started_cv;
  int started = 0;
  std::atomic<int> met{0};
  pool.ParallelFor(2, [&](size_t) {
    MutexLock lock(&mu);
    ++started;
    started_cv.SignalAll();
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (started < 2) {
      if (mu.WaitWithDeadline(&started_cv, deadline)) break;
    }
    if (started == 2) met.fetch_add(1);
  });
  EXPECT_EQ(met.load(), 2);
}

TEST(ThreadPoolTest, ParallelForCompletesWhileEveryWorkerIsBusy) {
  ThreadPool pool(2);
  absl::Notification release;
  for (int i = 0; i < pool.size(); ++i) pool.Schedule([&] { release.WaitForNotification(); });
  std::vector<int> calls(50, 0);
  // The calling thread runs every index itself; the helpers it queued find nothing left to
  // do when they finally run, after ParallelFor has returned.
  pool.ParallelFor(calls.size(), [&](size_t i) { ++calls[i]; });
  for (int c : calls) EXPECT_EQ(c, 1);
  release.Notify();
}

TEST(ThreadPoolTest, ParallelForFromInsideATaskCompletes) {
  ThreadPool pool(1);
  std::atomic<int> sum{0};
  absl::Notification done;
  pool.Schedule([&] {
    pool.ParallelFor(100, [&](size_t i) { sum.fetch_add(static_cast<int>(i)); });
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(sum.load(), 4950);
}

}  // namespace
}  // namespace fern
