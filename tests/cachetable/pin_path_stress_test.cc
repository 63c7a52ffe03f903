// The pin path without a table-wide mutex, under races it must survive: worker threads pin
// overlapping blocks for read and write (hits under a bucket mutex, misses under the list
// mutex), a budget of a few pairs keeps the evictor and the workers' own sweeps removing
// pairs, workers Remove pairs others are waiting for and PinNew/Remove private blocks, and a
// closer thread closes and reopens a second file while the workers pin it. Every value a
// pin shows must be its key's current version; the disks must end at the last versions;
// the accounting must end at zero. Meant to pass under -DFERN_SANITIZE=thread too.
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

constexpr int kKeys = 48;                // blocks of the file that stays open
constexpr int kReopenedKeys = 16;        // blocks of the file the closer closes and reopens
constexpr BlockNum kPrivateBase = 1000;  // worker w's private blocks: 1000 + 16w + i
constexpr int kPrivatePerWorker = 16;
constexpr int kWorkers = 6;
constexpr size_t kBaseBytes = 1000;
constexpr size_t kBudget = 6 * (kBaseBytes + 64);
constexpr auto kRunTime = std::chrono::milliseconds(1500);
constexpr int kMaxOpsPerThread = 300000;

CachetableOptions StressOptions() {
  CachetableOptions options;
  options.budget_bytes = kBudget;
  options.evictor_period_ms = 5;
  return options;
}

// The versions each key of one disk must have.
class Ledger {
 public:
  explicit Ledger(FakeDisk* disk, int keys) : disk_(disk), keys_(keys) {
    for (int key = 0; key < keys; ++key) disk->Put(key, MakeData(key, 0));
  }
  uint64_t expected(int key) const { return expected_[key].load(); }
  // REQUIRES: the caller holds `key` pinned for write (or otherwise excludes its writers).
  uint64_t Bump(int key) { return expected_[key].fetch_add(1) + 1; }
  // After every file of the disk is closed with write_dirty: the disk holds each last version.
  void ExpectDiskCurrent() const {
    for (int key = 0; key < keys_; ++key) {
      auto data = disk_->Get(key);
      ASSERT_TRUE(data.has_value()) << "key " << key;
      EXPECT_TRUE(HoldsVersion(*data, key, expected(key)))
          << "key " << key << " expected v=" << expected(key) << " found '" << *data << "'";
    }
  }

 private:
  FakeDisk* const disk_;
  const int keys_;
  std::array<std::atomic<uint64_t>, kKeys> expected_{};
};

class PinPathStress {
 public:
  PinPathStress()
      : disk_(kBaseBytes, /*warm_bytes=*/200),
        reopened_disk_(kBaseBytes, /*warm_bytes=*/0),
        ledger_(&disk_, kKeys),
        reopened_ledger_(&reopened_disk_, kReopenedKeys),
        table_(StressOptions()) {
    file_ = table_.OpenFile(&disk_);
    reopened_file_.store(table_.OpenFile(&reopened_disk_));
  }

  void Run() {
    const auto deadline = std::chrono::steady_clock::now() + kRunTime;
    std::vector<std::thread> threads;
    for (int w = 0; w < kWorkers; ++w) {
      threads.emplace_back([this, w, deadline] { Worker(w, deadline); });
    }
    threads.emplace_back([this, deadline] { Closer(deadline); });
    for (auto& thread : threads) thread.join();
  }

  void Finish() {
    ASSERT_TRUE(table_.CloseFile(file_, /*write_dirty=*/true).ok());
    ASSERT_TRUE(table_.CloseFile(reopened_file_.load(), /*write_dirty=*/true).ok());
    ledger_.ExpectDiskCurrent();
    reopened_ledger_.ExpectDiskCurrent();
    const CachetableStats stats = table_.stats();
    ::testing::Test::RecordProperty("ops", ops_.load());
    ::testing::Test::RecordProperty("closes", closes_.load());
    ::testing::Test::RecordProperty("refused_pins", refused_pins_.load());
    ::testing::Test::RecordProperty("removes", removes_.load());
    ::testing::Test::RecordProperty("hits", static_cast<int>(stats.hits));
    ::testing::Test::RecordProperty("misses", static_cast<int>(stats.misses));
    ::testing::Test::RecordProperty("full_evictions", static_cast<int>(stats.full_evictions));
    EXPECT_EQ(mismatches_.load(), 0) << first_mismatch_;
    EXPECT_EQ(errors_.load(), 0) << first_error_;
    EXPECT_EQ(stats.pairs, 0u);
    EXPECT_EQ(stats.size_bytes, 0u);  // the accounting did not drift
    EXPECT_GT(ops_.load(), 1000);
    EXPECT_GT(closes_.load(), 5);
    EXPECT_GT(removes_.load(), 50);
    EXPECT_GT(stats.hits, 1000u);
    EXPECT_GT(stats.full_evictions, 100u);
    EXPECT_GT(stats.evictor_runs, 0u);
  }

 private:
  void Mismatch(const std::string& what) {
    if (mismatches_.fetch_add(1) == 0) {
      std::lock_guard<std::mutex> lock(mu_);
      first_mismatch_ = what;
    }
  }
  void Failed(const Status& status, const char* what) {
    if (errors_.fetch_add(1) == 0) {
      std::lock_guard<std::mutex> lock(mu_);
      first_error_ = StrCat(what, ": ", status.ToString());
    }
  }
  void Check(const PinnedPair& pin, const Ledger& ledger, int key) {
    const std::string& data = pin.as<FakeValue>()->data;
    if (!HoldsVersion(data, key, ledger.expected(key))) {
      Mismatch(StrCat("key ", key, " block ", pin.block(), " expected v=", ledger.expected(key),
                      " found '", data, "'"));
    }
  }
  // REQUIRES: `pin` holds `key` for write.
  void Mutate(PinnedPair* pin, Ledger* ledger, int key) {
    Check(*pin, *ledger, key);
    pin->as<FakeValue>()->data = MakeData(key, ledger->Bump(key));
    pin->MarkDirty();
    pin->UpdateSize();
  }

  // A pin of the file that is stays open: it must succeed.
  bool PinOpen(int key, Lock lock, PinnedPair* pin) {
    const Status status = table_.Pin(file_, key, lock, pin);
    if (!status.ok()) Failed(status, "pin");
    return status.ok();
  }

  // The block's newest version goes to disk by another route (as if the owner had moved it)
  // and the cached pair, changed and dirty, is dropped: if the dropped pair were ever seen
  // again or written back, the stale version would show up.
  void RemoveRace(int key) {
    PinnedPair pin;
    if (!PinOpen(key, Lock::kWrite, &pin)) return;
    Mutate(&pin, &ledger_, key);
    const uint64_t moved = ledger_.Bump(key);
    disk_.Put(key, MakeData(key, moved));
    table_.Remove(&pin);
    removes_.fetch_add(1, std::memory_order_relaxed);
  }

  // A private block: created, pinned again (maybe refetched after eviction), then removed.
  void PrivateLifecycle(int worker, std::mt19937& rng) {
    const BlockNum block = kPrivateBase + worker * kPrivatePerWorker + rng() % kPrivatePerWorker;
    const std::string data = StrCat("private ", block, " ", rng() % 1000);
    {
      PinnedPair pin;
      table_.PinNew(file_, block, disk_.NewValue(data), &pin);
      if (!pin.pinned()) return Failed(Status::InvalidArgument("the file refused it"), "PinNew");
    }
    PinnedPair pin;
    if (!PinOpen(static_cast<int>(block), rng() % 2 == 0 ? Lock::kRead : Lock::kWrite, &pin)) {
      return;
    }
    if (pin.as<FakeValue>()->data != data) {
      Mismatch(StrCat("private block ", block, " expected '", data, "' found '",
                      pin.as<FakeValue>()->data, "'"));
    }
    if (!pin.write_locked()) {
      pin.Unpin();
      if (!PinOpen(static_cast<int>(block), Lock::kWrite, &pin)) return;
    }
    table_.Remove(&pin);
    removes_.fetch_add(1, std::memory_order_relaxed);
    if (table_.IsCached(file_, block)) Mismatch(StrCat("private block ", block, " removed"));
  }

  // Pins of the file the closer closes: refused (InvalidArgument) while it closes or after,
  // correct whenever granted.
  void PinReopened(int key, Lock lock) {
    PinnedPair pin;
    const Status status = table_.Pin(reopened_file_.load(), key, lock, &pin);
    if (status.IsInvalidArgument()) {
      refused_pins_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!status.ok()) return Failed(status, "pin of the reopened file");
    if (lock == Lock::kWrite) {
      Mutate(&pin, &reopened_ledger_, key);
    } else {
      Check(pin, reopened_ledger_, key);
    }
  }

  void Worker(int worker, std::chrono::steady_clock::time_point deadline) {
    std::mt19937 rng(worker * 104729 + 11);
    // Most pins go to a few hot keys so that threads meet on the same pairs and buckets.
    auto key_of = [&] { return static_cast<int>(rng() % 4 == 0 ? rng() % kKeys : rng() % 6); };
    for (int op = 0; op < kMaxOpsPerThread; ++op) {
      if (op % 64 == 0 && std::chrono::steady_clock::now() >= deadline) break;
      ops_.fetch_add(1, std::memory_order_relaxed);
      const int dice = static_cast<int>(rng() % 100);
      if (dice < 40) {
        const int key = key_of();
        PinnedPair pin;
        if (PinOpen(key, Lock::kRead, &pin)) Check(pin, ledger_, key);
      } else if (dice < 60) {
        const int key = key_of();
        PinnedPair pin;
        if (PinOpen(key, Lock::kWrite, &pin)) Mutate(&pin, &ledger_, key);
      } else if (dice < 68) {
        // A parent and a child in key order, as a tree descent takes them.
        int parent = key_of();
        int child = key_of();
        if (parent == child) continue;
        if (parent > child) std::swap(parent, child);
        PinnedPair parent_pin, child_pin;
        if (!PinOpen(parent, Lock::kRead, &parent_pin)) continue;
        if (!PinOpen(child, Lock::kWrite, &child_pin)) continue;
        Mutate(&child_pin, &ledger_, child);
        child_pin.Unpin();  // may sweep or wait for the evictor while the parent stays pinned
        Check(parent_pin, ledger_, parent);
      } else if (dice < 74) {
        const int key = key_of();
        const Lock lock = dice % 2 == 0 ? Lock::kWrite : Lock::kRead;
        PinnedPair pin;
        const Status status = table_.TryPin(file_, key, lock, &pin);
        if (status.IsBusy()) continue;
        if (!status.ok()) {
          Failed(status, "TryPin");
        } else if (lock == Lock::kWrite) {
          Mutate(&pin, &ledger_, key);
        } else {
          Check(pin, ledger_, key);
        }
      } else if (dice < 78) {
        RemoveRace(key_of());
      } else if (dice < 82) {
        PrivateLifecycle(worker, rng);
      } else if (dice < 97) {
        PinReopened(static_cast<int>(rng() % kReopenedKeys),
                    dice % 3 == 0 ? Lock::kWrite : Lock::kRead);
      } else {
        table_.EvictIfOverBudget();
      }
    }
  }

  // Closes the second file (writing its dirty pairs) while workers pin it, then reopens it.
  void Closer(std::chrono::steady_clock::time_point deadline) {
    std::mt19937 rng(7);
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200 + rng() % 2000));
      const Status status = table_.CloseFile(reopened_file_.load(), /*write_dirty=*/true);
      if (!status.ok()) return Failed(status, "CloseFile");
      closes_.fetch_add(1, std::memory_order_relaxed);
      reopened_file_.store(table_.OpenFile(&reopened_disk_));
    }
  }

  FakeDisk disk_;
  FakeDisk reopened_disk_;
  Ledger ledger_;
  Ledger reopened_ledger_;
  Cachetable table_;
  CacheFileId file_ = 0;
  std::atomic<CacheFileId> reopened_file_{0};
  std::atomic<int> ops_{0};
  std::atomic<int> closes_{0};
  std::atomic<int> refused_pins_{0};
  std::atomic<int> removes_{0};
  std::atomic<int> mismatches_{0};
  std::atomic<int> errors_{0};
  std::mutex mu_;
  std::string first_mismatch_;
  std::string first_error_;
};

TEST(PinPathStressTest, PinsEvictionRemoveAndCloseFileRacingKeepEveryVersion) {
  PinPathStress run;
  run.Run();
  run.Finish();
}

}  // namespace
}  // namespace fern
