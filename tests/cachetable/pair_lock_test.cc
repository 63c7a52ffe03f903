#include "cachetable/pair_lock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

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

}  // namespace
}  // namespace fern
