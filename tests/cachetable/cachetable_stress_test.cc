// Several threads pin random pairs for read and write under a budget that forces constant
// eviction, mutating values under write pins, and check every value they see against the
// version the key must have. Any lost write, stale refetch, torn accounting or broken lock
// shows up as a version mismatch, a non-zero size after close, or a TSAN report (this file
// is meant to pass under -DFERN_SANITIZE=thread too).
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cachetable/cachetable.h"
#include "cachetable/fake_disk.h"
#include "cachetable/versioned_data.h"

namespace fern {
namespace {

using Lock = Cachetable::Lock;

constexpr int kKeys = 64;
constexpr int kThreads = 4;
constexpr size_t kBaseBytes = 1000;
constexpr size_t kBudget = 8 * (kBaseBytes + 64);
constexpr auto kRunTime = std::chrono::milliseconds(1500);
constexpr int kMaxOpsPerThread = 300000;

CachetableOptions StressOptions(bool evictor_thread) {
  CachetableOptions options;
  options.budget_bytes = kBudget;
  options.evictor_thread = evictor_thread;
  return options;
}

class StressRun {
 public:
  StressRun(int fail_every_nth_write, bool evictor_thread)
      : disk_(kBaseBytes, /*warm_bytes=*/200), table_(StressOptions(evictor_thread)) {
    for (int key = 0; key < kKeys; ++key) disk_.Put(key, MakeData(key, 0));
    file_ = table_.OpenFile(&disk_);
    disk_.FailEveryNthWrite(fail_every_nth_write);
  }

  void Run() {
    std::vector<std::thread> threads;
    const auto deadline = std::chrono::steady_clock::now() + kRunTime;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([this, t, deadline] { Worker(t, deadline); });
    }
    for (auto& thread : threads) thread.join();
  }

  void Finish() {
    disk_.FailEveryNthWrite(0);
    table_.EvictIfOverBudget();
    EXPECT_LE(table_.size_bytes(), kBudget);
    ASSERT_TRUE(table_.CloseFile(file_, /*write_dirty=*/true).ok());
    for (int key = 0; key < kKeys; ++key) {
      auto data = disk_.Get(key);
      ASSERT_TRUE(data.has_value());
      EXPECT_EQ(VersionOf(*data), expected_[key].load()) << "key " << key;
    }
    const CachetableStats stats = table_.stats();
    ::testing::Test::RecordProperty("ops", ops_.load());
    ::testing::Test::RecordProperty("hits", static_cast<int>(stats.hits));
    ::testing::Test::RecordProperty("misses", static_cast<int>(stats.misses));
    ::testing::Test::RecordProperty("full_evictions", static_cast<int>(stats.full_evictions));
    ::testing::Test::RecordProperty("partial_evictions", static_cast<int>(stats.partial_evictions));
    ::testing::Test::RecordProperty("dirty_writes", static_cast<int>(stats.dirty_writes));
    ::testing::Test::RecordProperty("write_errors", static_cast<int>(stats.write_errors));
    EXPECT_EQ(stats.pairs, 0u);
    EXPECT_EQ(stats.size_bytes, 0u);  // the accounting did not drift
    EXPECT_GT(stats.full_evictions, 100u);
    EXPECT_GT(stats.dirty_writes, 100u);
    EXPECT_EQ(mismatches_.load(), 0) << first_mismatch_;
    EXPECT_EQ(errors_.load(), 0) << first_error_;
    EXPECT_GT(ops_.load(), 1000);
  }

  const CachetableStats stats() const { return table_.stats(); }

 private:
  void Check(const PinnedPair& pin, int key) {
    const std::string& data = pin.as<FakeValue>()->data;
    const uint64_t want = expected_[key].load();
    if (VersionOf(data) != want || data.rfind(StrCat("k=", key, " "), 0) != 0) {
      if (mismatches_.fetch_add(1) == 0) {
        std::lock_guard<std::mutex> lock(mu_);
        first_mismatch_ = StrCat("key ", key, " expected v=", want, " found '", data, "'");
      }
    }
  }

  // REQUIRES: `pin` holds `key` for write.
  void Mutate(PinnedPair* pin, int key, bool update_size) {
    Check(*pin, key);
    const uint64_t next = expected_[key].load() + 1;
    pin->as<FakeValue>()->data = MakeData(key, next);
    expected_[key].store(next);
    pin->MarkDirty();
    if (update_size) pin->UpdateSize();
  }

  void Failed(const Status& status) {
    if (errors_.fetch_add(1) == 0) {
      std::lock_guard<std::mutex> lock(mu_);
      first_error_ = status.ToString();
    }
  }

  void Worker(int seed, std::chrono::steady_clock::time_point deadline) {
    std::mt19937 rng(seed * 7919 + 17);
    auto key_of = [&] { return static_cast<int>(rng() % kKeys); };
    for (int op = 0; op < kMaxOpsPerThread; ++op) {
      if (op % 64 == 0 && std::chrono::steady_clock::now() >= deadline) break;
      ops_.fetch_add(1, std::memory_order_relaxed);
      const int dice = static_cast<int>(rng() % 100);
      if (dice < 45) {
        const int key = key_of();
        PinnedPair pin;
        Status status = table_.Pin(file_, key, Lock::kRead, &pin);
        if (!status.ok()) {
          Failed(status);
          continue;
        }
        Check(pin, key);
      } else if (dice < 75) {
        const int key = key_of();
        PinnedPair pin;
        Status status = table_.Pin(file_, key, Lock::kWrite, &pin);
        if (!status.ok()) {
          Failed(status);
          continue;
        }
        Mutate(&pin, key, dice % 2 == 0);
      } else if (dice < 87) {
        // A parent and a child, in key order as a tree descent takes them.
        int parent = key_of();
        int child = key_of();
        if (parent == child) continue;
        if (parent > child) std::swap(parent, child);
        PinnedPair parent_pin, child_pin;
        const Lock parent_lock = dice % 3 == 0 ? Lock::kWrite : Lock::kRead;
        Status status = table_.Pin(file_, parent, parent_lock, &parent_pin);
        if (status.ok()) status = table_.Pin(file_, child, Lock::kWrite, &child_pin);
        if (!status.ok()) {
          Failed(status);
          continue;
        }
        Check(parent_pin, parent);
        if (parent_lock == Lock::kWrite) Mutate(&parent_pin, parent, true);
        Mutate(&child_pin, child, false);
        child_pin.Unpin();  // may sweep while the parent stays pinned
        Check(parent_pin, parent);
      } else if (dice < 95) {
        const int key = key_of();
        const Lock lock = dice % 2 == 0 ? Lock::kWrite : Lock::kRead;
        PinnedPair pin;
        Status status = table_.TryPin(file_, key, lock, &pin);
        if (status.IsBusy()) continue;
        if (!status.ok()) {
          Failed(status);
          continue;
        }
        if (lock == Lock::kWrite) {
          Mutate(&pin, key, true);
        } else {
          Check(pin, key);
        }
      } else if (dice < 98) {
        // Injected write failures are expected here; the data must survive them.
        Status status = table_.WriteDirty(file_);
        if (!status.ok() && !status.IsIOError()) Failed(status);
      } else {
        table_.EvictIfOverBudget();
      }
    }
  }

  FakeDisk disk_;
  Cachetable table_;
  CacheFileId file_ = 0;
  std::array<std::atomic<uint64_t>, kKeys> expected_{};
  std::atomic<int> ops_{0};
  std::atomic<int> mismatches_{0};
  std::atomic<int> errors_{0};
  std::mutex mu_;
  std::string first_mismatch_;
  std::string first_error_;
};

TEST(CachetableStressTest, ConcurrentPinsUnderConstantEvictionKeepEveryVersion) {
  StressRun run(/*fail_every_nth_write=*/0, /*evictor_thread=*/false);
  run.Run();
  run.Finish();
  EXPECT_GT(run.stats().partial_evictions, 0u);
}

TEST(CachetableStressTest, ConcurrentPinsWithTheEvictorThreadKeepEveryVersion) {
  StressRun run(/*fail_every_nth_write=*/0, /*evictor_thread=*/true);
  run.Run();
  EXPECT_GT(run.stats().evictor_runs, 0u);
  run.Finish();
}

TEST(CachetableStressTest, FailedWritesDuringEvictionLoseNoVersion) {
  StressRun run(/*fail_every_nth_write=*/5, /*evictor_thread=*/true);
  run.Run();
  EXPECT_GT(run.stats().write_errors, 0u);
  run.Finish();
}

}  // namespace
}  // namespace fern
