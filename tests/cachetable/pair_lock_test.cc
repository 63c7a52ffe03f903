#include "cachetable/pair_lock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

namespace fern {
namespace {

// Polls `flag` for up to 10 s.
bool Eventually(const std::atomic<bool>& flag) {
  for (int i = 0; i < 10000 && !flag.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return flag.load();
}

TEST(PairLockTest, ReadersShareWritersExclude) {
  PairLock lock;
  EXPECT_TRUE(lock.TryLockRead());
  EXPECT_TRUE(lock.TryLockRead());
  EXPECT_FALSE(lock.TryLockWrite());
  lock.UnlockRead();
  lock.UnlockRead();
  EXPECT_TRUE(lock.TryLockWrite());
  EXPECT_FALSE(lock.TryLockRead());
  EXPECT_FALSE(lock.TryLockWrite());
  lock.UnlockWrite();
}

TEST(PairLockTest, AWaitingWriterHoldsBackNewReaders) {
  PairLock lock;
  lock.LockRead();
  std::atomic<bool> writer_in{false};
  std::thread writer([&] {
    lock.LockWrite();
    writer_in = true;
    lock.UnlockWrite();
  });
  // Once the writer waits, a new reader is refused.
  bool refused = false;
  for (int i = 0; i < 10000 && !refused; ++i) {
    if (lock.TryLockRead()) {
      lock.UnlockRead();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } else {
      refused = true;
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_FALSE(writer_in.load());
  lock.UnlockRead();
  writer.join();
  EXPECT_TRUE(writer_in.load());
}

TEST(PairLockTest, ReleasedByAnotherThread) {
  PairLock lock;
  lock.LockWrite();
  std::thread other([&] { lock.UnlockWrite(); });
  other.join();
  EXPECT_TRUE(lock.TryLockWrite());
  lock.UnlockWrite();
}

TEST(PairLockTest, DowngradeLetsReadersInButNotWriters) {
  PairLock lock;
  lock.LockWrite();
  std::atomic<bool> reader_in{false};
  std::thread reader([&] {
    lock.LockRead();
    reader_in = true;
    lock.UnlockRead();
  });
  lock.DowngradeToRead();
  EXPECT_TRUE(Eventually(reader_in));
  reader.join();
  EXPECT_FALSE(lock.TryLockWrite());
  lock.UnlockRead();
  EXPECT_TRUE(lock.TryLockWrite());
  lock.UnlockWrite();
}

// Threads take and drop the lock in every way at once; a writer must always be alone and
// readers never beside a writer. `guarded` is a plain variable: a broken lock is also a data
// race for TSan.
TEST(PairLockTest, StressKeepsWritersAloneAndWakesEveryWaiter) {
  PairLock lock;
  std::atomic<int> readers_in{0};
  std::atomic<int> writers_in{0};
  std::atomic<int> violations{0};
  uint64_t guarded = 0;
  constexpr int kThreads = 6;
  constexpr int kRounds = 200000;
  std::vector<uint64_t> writes(kThreads, 0);
  // What a holder of each kind does inside the lock.
  auto read_inside = [&](uint64_t* seen) {
    readers_in.fetch_add(1);
    if (writers_in.load() != 0) violations.fetch_add(1);
    *seen += guarded;
    readers_in.fetch_sub(1);
  };
  auto write_inside = [&](int t) {
    if (writers_in.fetch_add(1) != 0 || readers_in.load() != 0) violations.fetch_add(1);
    ++guarded;
    ++writes[t];
    writers_in.fetch_sub(1);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      uint64_t seen = 0;
      for (int i = 0; i < kRounds; ++i) {
        const unsigned op = rng() % 6;
        if (op <= 1) {
          lock.LockRead();
          read_inside(&seen);
          lock.UnlockRead();
        } else if (op == 2) {
          if (!lock.TryLockRead()) continue;
          read_inside(&seen);
          lock.UnlockRead();
        } else if (op == 3) {
          lock.LockWrite();
          write_inside(t);
          lock.UnlockWrite();
        } else if (op == 4) {
          if (!lock.TryLockWrite()) continue;
          write_inside(t);
          lock.UnlockWrite();
        } else {
          // The downgrade keeps the lock: no writer may get in while this reads.
          lock.LockWrite();
          write_inside(t);
          lock.DowngradeToRead();
          read_inside(&seen);
          lock.UnlockRead();
        }
      }
      static_cast<void>(seen);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(violations.load(), 0);
  uint64_t total = 0;
  for (uint64_t w : writes) total += w;
  EXPECT_EQ(guarded, total);
  // Free again: every lock taken was released.
  EXPECT_TRUE(lock.TryLockWrite());
  lock.UnlockWrite();
}

}  // namespace
}  // namespace fern
