// Four threads pin and change pairs under a budget that keeps the evictor busy, the cleaner
// changes pairs from its own thread, and a fifth thread begins and ends checkpoints in a
// loop. After every EndCheckpoint the image the fake owner received must hold each block at
// exactly its version as of the begin — whether it got there as a clone, as a write made at
// pin time (the fake declines to clone some blocks), by eviction, by WriteDirty or by
// EndCheckpoint. The current contents must never lose a version either. Meant to run clean
// under -DFERN_SANITIZE=thread too.
//
// Like a tree, every thread that changes pairs holds a "tree lock" shared while it holds
// write pins, and the checkpointer holds it exclusively around BeginCheckpoint (whose
// contract is that no write pin overlaps it): "tree lock, then pins".
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
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
constexpr int kWorkers = 4;
constexpr size_t kBaseBytes = 1000;
constexpr size_t kBudget = 12 * (kBaseBytes + 64);
constexpr auto kRunTime = std::chrono::milliseconds(2000);
constexpr int kMaxOpsPerThread = 200000;

CachetableOptions StressOptions() {
  CachetableOptions options;
  options.budget_bytes = kBudget;
  options.evictor_period_ms = 10;
  options.cleaner_period_ms = 2;
  options.checkpoint_writers = 2;
  return options;
}

class CheckpointStress {
 public:
  CheckpointStress() : disk_(kBaseBytes, /*warm_bytes=*/200), table_(StressOptions()) {
    for (int key = 0; key < kKeys; ++key) disk_.Put(key, MakeData(key, 0));
    // Blocks 0, 4, 8, ... cannot be cloned: they are written when a write pin meets them.
    disk_.SetCloneRule([](BlockNum block) { return block % 4 == 0; });
    disk_.SetBeforeCloneWrite([](BlockNum block) {
      if (block % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
    });
    disk_.SetCleanerRun([this](BlockNum block) { CleanerRun(block); });
    file_ = table_.OpenFile(&disk_);
  }

  void Run() {
    const auto deadline = std::chrono::steady_clock::now() + kRunTime;
    std::vector<std::thread> threads;
    for (int t = 0; t < kWorkers; ++t) {
      threads.emplace_back([this, t, deadline] { Worker(t, deadline); });
    }
    threads.emplace_back([this, deadline] { Checkpointer(deadline); });
    for (auto& thread : threads) thread.join();
  }

  void Finish() {
    table_.SetCleanerPeriod(0);
    ASSERT_TRUE(table_.CloseFile(file_, /*write_dirty=*/true).ok());
    for (int key = 0; key < kKeys; ++key) {
      auto data = disk_.Get(key);
      ASSERT_TRUE(data.has_value());
      EXPECT_EQ(VersionOf(*data), expected_[key].load()) << "key " << key;
    }
    const CachetableStats stats = table_.stats();
    ::testing::Test::RecordProperty("ops", ops_.load());
    ::testing::Test::RecordProperty("checkpoints", checkpoints_.load());
    ::testing::Test::RecordProperty("clones", static_cast<int>(stats.clones));
    ::testing::Test::RecordProperty("checkpoint_pairs_written",
                                    static_cast<int>(stats.checkpoint_pairs_written));
    ::testing::Test::RecordProperty("evictor_runs", static_cast<int>(stats.evictor_runs));
    ::testing::Test::RecordProperty("client_waits", static_cast<int>(stats.client_waits));
    ::testing::Test::RecordProperty("cleaner_calls", static_cast<int>(stats.cleaner_calls));
    EXPECT_EQ(mismatches_.load(), 0) << first_mismatch_;
    EXPECT_EQ(errors_.load(), 0) << first_error_;
    EXPECT_EQ(stats.pairs, 0u);
    EXPECT_EQ(stats.size_bytes, 0u);  // clones' memory came back too
    EXPECT_GT(ops_.load(), 1000);
    EXPECT_GE(checkpoints_.load(), 5);
    EXPECT_GT(stats.clones, 0u);
    EXPECT_GT(disk_.checkpoint_writes.load(), 0);
    EXPECT_GT(stats.checkpoint_pairs_written, 0u);
    EXPECT_GT(stats.evictor_runs, 0u);
    EXPECT_GT(stats.full_evictions, 100u);
    EXPECT_GT(stats.cleaner_calls, 0u);
  }

 private:
  void Mismatch(const std::string& what) {
    if (mismatches_.fetch_add(1) == 0) {
      std::lock_guard<std::mutex> lock(mu_);
      first_mismatch_ = what;
    }
  }
  void Failed(const Status& status) {
    if (errors_.fetch_add(1) == 0) {
      std::lock_guard<std::mutex> lock(mu_);
      first_error_ = status.ToString();
    }
  }
  void Check(const PinnedPair& pin, int key) {
    const std::string& data = pin.as<FakeValue>()->data;
    const uint64_t want = expected_[key].load();
    if (VersionOf(data) != want || data.rfind(StrCat("k=", key, " "), 0) != 0) {
      Mismatch(StrCat("key ", key, " expected v=", want, " found '", data, "'"));
    }
  }
  // REQUIRES: `pin` holds `key` for write and the tree lock is held shared.
  void Mutate(PinnedPair* pin, int key) {
    Check(*pin, key);
    const uint64_t next = expected_[key].load() + 1;
    FakeValue* value = pin->as<FakeValue>();
    value->data = MakeData(key, next);
    value->cleaner_priority = 1 + next % 5;
    expected_[key].store(next);
    pin->MarkDirty();
  }

  void CleanerRun(BlockNum block) {
    std::shared_lock<std::shared_mutex> tree_lock(tree_lock_);
    PinnedPair pin;
    const Status status = table_.Pin(file_, block, Lock::kWrite, &pin);
    if (!status.ok()) {
      Failed(status);
      return;
    }
    Mutate(&pin, static_cast<int>(block));
    pin.as<FakeValue>()->cleaner_priority = 0;
  }

  void Worker(int seed, std::chrono::steady_clock::time_point deadline) {
    std::mt19937 rng(seed * 7919 + 3);
    auto key_of = [&] { return static_cast<int>(rng() % kKeys); };
    for (int op = 0; op < kMaxOpsPerThread; ++op) {
      if (op % 32 == 0 && std::chrono::steady_clock::now() >= deadline) break;
      ops_.fetch_add(1, std::memory_order_relaxed);
      const int dice = static_cast<int>(rng() % 100);
      if (dice < 40) {
        const int key = key_of();
        PinnedPair pin;
        Status status = table_.Pin(file_, key, Lock::kRead, &pin);
        if (!status.ok()) {
          Failed(status);
          continue;
        }
        Check(pin, key);
      } else if (dice < 75) {
        std::shared_lock<std::shared_mutex> tree_lock(tree_lock_);
        const int key = key_of();
        PinnedPair pin;
        Status status = table_.Pin(file_, key, Lock::kWrite, &pin);
        if (!status.ok()) {
          Failed(status);
          continue;
        }
        Mutate(&pin, key);
        if (dice % 2 == 0) pin.UpdateSize();
      } else if (dice < 88) {
        std::shared_lock<std::shared_mutex> tree_lock(tree_lock_);
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
        if (parent_lock == Lock::kWrite) Mutate(&parent_pin, parent);
        Mutate(&child_pin, child);
        child_pin.Unpin();
        Check(parent_pin, parent);
      } else if (dice < 97) {
        std::shared_lock<std::shared_mutex> tree_lock(tree_lock_);
        const int key = key_of();
        PinnedPair pin;
        Status status = table_.TryPin(file_, key, Lock::kWrite, &pin);
        if (status.IsBusy()) continue;
        if (!status.ok()) {
          Failed(status);
          continue;
        }
        Mutate(&pin, key);
      } else {
        Status status = table_.WriteDirty(file_);
        if (!status.ok()) Failed(status);
      }
    }
  }

  void Checkpointer(std::chrono::steady_clock::time_point deadline) {
    std::mt19937 rng(99);
    while (std::chrono::steady_clock::now() < deadline) {
      std::array<uint64_t, kKeys> as_of_begin{};
      Status status;
      {
        std::unique_lock<std::shared_mutex> tree_lock(tree_lock_);
        status = table_.BeginCheckpoint(file_, [&] {
          disk_.BeginImage();
          for (int key = 0; key < kKeys; ++key) as_of_begin[key] = expected_[key].load();
          return Status::OK();
        });
      }
      if (!status.ok()) {
        Failed(status);
        return;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
      status = table_.EndCheckpoint(file_);
      disk_.EndImage();
      if (!status.ok()) {
        Failed(status);
        return;
      }
      const auto image = disk_.Image();
      for (int key = 0; key < kKeys; ++key) {
        auto it = image.find(key);
        const uint64_t found = it == image.end() ? UINT64_MAX : VersionOf(it->second);
        if (found != as_of_begin[key]) {
          Mismatch(StrCat("checkpoint ", checkpoints_.load(), ": key ", key, " has v=", found,
                          " in the image, v=", as_of_begin[key], " at the begin"));
        }
      }
      checkpoints_.fetch_add(1);
    }
  }

  FakeDisk disk_;
  Cachetable table_;
  CacheFileId file_ = 0;
  std::shared_mutex tree_lock_;
  std::array<std::atomic<uint64_t>, kKeys> expected_{};
  std::atomic<int> ops_{0};
  std::atomic<int> checkpoints_{0};
  std::atomic<int> mismatches_{0};
  std::atomic<int> errors_{0};
  std::mutex mu_;
  std::string first_mismatch_;
  std::string first_error_;
};

TEST(CheckpointStressTest, CheckpointImagesAreSnapshotsAsOfEachBegin) {
  CheckpointStress stress;
  stress.Run();
  stress.Finish();
}

}  // namespace
}  // namespace fern
