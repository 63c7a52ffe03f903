// The cleaner: which pair it picks, that it calls the owner with nothing held, and that
// CloseFile waits for a call in flight.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cachetable/cachetable.h"
#include "cachetable/fake_disk.h"

namespace fern {
namespace {

using Lock = Cachetable::Lock;

bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 10000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

class CleanerTest : public ::testing::Test {
 protected:
  CleanerTest() : table_(std::make_unique<Cachetable>(size_t{1} << 20)) {
    file_ = table_->OpenFile(&disk_);
  }
  ~CleanerTest() override { Close(); }
  // Closes the file (waiting for a cleaner call in flight) and stops the threads; tests
  // whose hooks use their locals call it before returning.
  void Close() {
    if (table_ == nullptr) return;
    table_->SetCleanerPeriod(0);
    EXPECT_TRUE(table_->CloseFile(file_, /*write_dirty=*/false).ok());
    table_.reset();
  }
  // Adds block `block` with the given cleaner priority (in clock order of the calls).
  void Add(BlockNum block, size_t priority) {
    PinnedPair pin;
    table_->PinNew(file_, block, disk_.NewValue(StrCat("b", block)), &pin);
    pin.as<FakeValue>()->cleaner_priority = priority;
  }
  std::vector<BlockNum> Called() {
    std::lock_guard<std::mutex> lock(mu_);
    return called_;
  }
  void Record(BlockNum block) {
    std::lock_guard<std::mutex> lock(mu_);
    called_.push_back(block);
  }

  FakeDisk disk_;
  std::unique_ptr<Cachetable> table_;
  CacheFileId file_ = 0;
  std::mutex mu_;
  std::vector<BlockNum> called_;
};

TEST_F(CleanerTest, CleanerThreadCallsCleanerRunOnTheHighestPriorityPairWithNothingHeld) {
  const size_t priorities[] = {10, 50, 30, 0, 20};
  for (int i = 0; i < 5; ++i) Add(i, priorities[i]);
  std::atomic<int> pinned_in_callback{0};
  disk_.SetCleanerRun([&](BlockNum block) {
    // The cachetable holds no lock: the owner can pin the very pair for write without
    // waiting (TryPin would be Busy under a read lock held by the cleaner), and the table
    // mutex is free (TryPin takes it).
    PinnedPair pin;
    Status status = table_->TryPin(file_, block, Lock::kWrite, &pin);
    EXPECT_TRUE(status.ok()) << status.ToString();
    if (status.ok()) {
      pin.as<FakeValue>()->cleaner_priority = 0;  // "flushed"
      pinned_in_callback.fetch_add(1);
    }
    Record(block);
  });
  table_->SetCleanerPeriod(5);
  const bool four_calls = Eventually([&] { return Called().size() >= 4; });
  table_->SetCleanerPeriod(0);
  const CachetableStats stats = table_->stats();
  Close();
  ASSERT_TRUE(four_calls);
  // Each call zeroes the chosen pair's priority, so the calls come in priority order and
  // never reach the pair whose priority was 0.
  const std::vector<BlockNum> called = Called();
  EXPECT_EQ(called[0], 1);
  EXPECT_EQ(called[1], 2);
  EXPECT_EQ(called[2], 4);
  EXPECT_EQ(called[3], 0);
  EXPECT_EQ(pinned_in_callback.load(), static_cast<int>(called.size()));
  EXPECT_GE(stats.cleaner_runs, stats.cleaner_calls);
  EXPECT_EQ(stats.cleaner_calls, called.size());
}

TEST_F(CleanerTest, PassSkipsPinnedPairsAndDoesNothingWhenNoPriority) {
  Add(0, 0);
  Add(1, 0);
  disk_.SetCleanerRun([&](BlockNum block) { Record(block); });
  EXPECT_FALSE(table_->RunCleanerPass());
  Add(2, 70);
  Add(3, 40);
  {
    PinnedPair pin;
    ASSERT_TRUE(table_->Pin(file_, 2, Lock::kRead, &pin).ok());
    EXPECT_TRUE(table_->RunCleanerPass());
  }
  EXPECT_EQ(Called(), std::vector<BlockNum>({3}));
  EXPECT_EQ(table_->stats().cleaner_runs, 2u);
  EXPECT_EQ(table_->stats().cleaner_calls, 1u);
}

TEST_F(CleanerTest, PassInspectsEightPairsFromItsOwnHead) {
  // 16 pairs in clock order; the best of all is in the second half.
  for (int i = 0; i < 16; ++i) Add(i, i == 12 ? 100 : 1 + i % 8);
  disk_.SetCleanerRun([&](BlockNum block) { Record(block); });
  EXPECT_TRUE(table_->RunCleanerPass());  // sees 0..7: best is 7 (priority 8)
  EXPECT_TRUE(table_->RunCleanerPass());  // sees 8..15: best is 12
  EXPECT_TRUE(table_->RunCleanerPass());  // around again: 0..7
  EXPECT_EQ(Called(), std::vector<BlockNum>({7, 12, 7}));
}

TEST_F(CleanerTest, CloseFileWaitsForACleanerCallInFlight) {
  Add(0, 5);
  Gate entered, release;
  std::atomic<bool> callback_done{false};
  std::atomic<bool> close_returned{false};
  std::atomic<bool> close_returned_before_callback_ended{false};
  disk_.SetCleanerRun([&](BlockNum block) {
    entered.Open();
    static_cast<void>(release.Wait());
    // CloseFile is waiting, yet the owner's pins still work until the call ends.
    PinnedPair pin;
    EXPECT_TRUE(table_->Pin(file_, block, Lock::kWrite, &pin).ok());
    if (close_returned.load()) close_returned_before_callback_ended = true;
    pin.Unpin();
    callback_done = true;
  });
  table_->SetCleanerPeriod(1);
  if (!entered.Wait()) {
    ADD_FAILURE() << "no cleaner call";
    release.Open();
    Close();
    return;
  }
  std::thread closer([&] {
    EXPECT_TRUE(table_->CloseFile(file_, /*write_dirty=*/true).ok());
    close_returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(close_returned.load()) << "CloseFile did not wait for the cleaner call";
  release.Open();
  closer.join();
  EXPECT_TRUE(callback_done.load());
  EXPECT_FALSE(close_returned_before_callback_ended.load());
  // The file is closed: no more calls, whatever the period.
  const int runs = disk_.cleaner_runs.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(disk_.cleaner_runs.load(), runs);
  EXPECT_EQ(disk_.writes.load(), 1);  // block 0 was still dirty
  table_->SetCleanerPeriod(0);
  table_.reset();
}

TEST_F(CleanerTest, PeriodZeroTurnsTheCleanerOff) {
  Add(0, 5);
  disk_.SetCleanerRun([&](BlockNum block) { Record(block); });
  table_->SetCleanerPeriod(1);
  ASSERT_TRUE(Eventually([&] { return table_->stats().cleaner_runs > 0; }));
  table_->SetCleanerPeriod(0);
  const uint64_t runs = table_->stats().cleaner_runs;
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  // At most the pass that was already under way when the period changed.
  EXPECT_LE(table_->stats().cleaner_runs, runs + 1);
}

}  // namespace
}  // namespace fern
