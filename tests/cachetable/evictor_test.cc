// The evictor thread and back-pressure: clients only wake the evictor, wait for it when
// memory is far over budget, and never deadlock with it while they hold pins.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cachetable/cachetable.h"
#include "cachetable/fake_disk.h"

namespace fern {
namespace {

using Lock = Cachetable::Lock;

constexpr size_t kBase = 100;
// Values hold "pair-<n>" (6 or 7 bytes) on top of kBase; blocks below 10 are 106 bytes.
constexpr size_t kValueBytes = kBase + 6;

bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 10000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

class EvictorTest : public ::testing::Test {
 protected:
  void Open(size_t budget, uint32_t evictor_period_ms = 1000,
            size_t trim_slack_bytes = CachetableOptions().trim_slack_bytes,
            uint32_t idle_trim_after_ms = CachetableOptions().idle_trim_after_ms,
            bool quiet_trims = CachetableOptions().quiet_trims) {
    disk_ = std::make_unique<FakeDisk>(kBase);
    CachetableOptions options;
    options.budget_bytes = budget;
    options.evictor_period_ms = evictor_period_ms;
    options.trim_slack_bytes = trim_slack_bytes;
    options.idle_trim_after_ms = idle_trim_after_ms;
    options.quiet_trims = quiet_trims;
    table_ = std::make_unique<Cachetable>(options);
    file_ = table_->OpenFile(disk_.get());
  }
  // Hooks stay in place until the table (and its evictor) is gone: the evictor may still be
  // writing when a test body returns.
  void TearDown() override {
    if (table_ == nullptr) return;
    allow_writes_.Open();
    EXPECT_TRUE(table_->CloseFile(file_, /*write_dirty=*/false).ok());
    table_.reset();
  }
  // Adds dirty block `block` and unpins it.
  void AddDirty(BlockNum block) {
    PinnedPair pin;
    table_->PinNew(file_, block, disk_->NewValue(StrCat("pair-", block % 10)), &pin);
  }

  Gate allow_writes_;  // for hooks: outlives the table
  std::unique_ptr<FakeDisk> disk_;
  std::unique_ptr<Cachetable> table_;
  CacheFileId file_ = 0;
};

TEST_F(EvictorTest, EvictorBringsMemoryUnderBudgetWithoutClientEviction) {
  const size_t budget = 20 * kValueBytes;
  Open(budget);
  // 22 pairs: 1.1x the budget, above the wake mark (1.05x) and not above the blocking one
  // (1.1x), so the clients only wake the evictor.
  for (int i = 0; i < 22; ++i) AddDirty(i);
  ASSERT_TRUE(Eventually([&] { return table_->size_bytes() <= budget; })) << table_->size_bytes();
  const CachetableStats stats = table_->stats();
  EXPECT_GE(stats.evictor_runs, 1u);
  EXPECT_EQ(stats.client_waits, 0u);
  EXPECT_GE(stats.full_evictions, 2u);  // 22 pairs down to the budget of 20
  // Every evicted pair was written first.
  for (int i = 0; i < 22; ++i) {
    if (!table_->IsCached(file_, i)) {
      EXPECT_EQ(disk_->Get(i), StrCat("pair-", i % 10));
    }
  }
}

TEST_F(EvictorTest, PeriodicRunEvictsBelowTheWakeMark) {
  const size_t budget = 20 * kValueBytes;
  Open(budget, /*evictor_period_ms=*/20);
  // 21 pairs: over the budget but not above 1.05x, so no client wakes the evictor; its
  // periodic run must still evict.
  for (int i = 0; i < 21; ++i) AddDirty(i);
  ASSERT_TRUE(Eventually([&] { return table_->size_bytes() <= budget; }));
  EXPECT_GE(table_->stats().evictor_runs, 1u);
  EXPECT_EQ(table_->stats().client_waits, 0u);
}

// The process's resident memory is far above a budget of a few pairs, so with no slack every
// quarter budget evicted returns free memory to the system, and with a slack larger than
// any process here none does.
TEST_F(EvictorTest, TrimsOnlyWhenResidentMemoryExceedsBudgetPlusSlack) {
  const size_t budget = 20 * kValueBytes;
  for (const bool no_slack : {true, false}) {
    SCOPED_TRACE(no_slack ? "no slack" : "large slack");
    TearDown();
    Open(budget, /*evictor_period_ms=*/1000, no_slack ? 0 : size_t{1} << 50);
    // Every pair added past the budget is evicted: 40 pairs, twice the budget.
    for (int i = 0; i < 60; ++i) {
      AddDirty(i);
      ASSERT_TRUE(Eventually([&] { return table_->size_bytes() <= budget * 21 / 20; }));
    }
    ASSERT_TRUE(Eventually([&] { return table_->stats().bytes_evicted >= 2 * budget; }));
    ASSERT_TRUE(Eventually([&] { return table_->size_bytes() <= budget; }));
    const CachetableStats stats = table_->stats();
    if (no_slack) {
      EXPECT_GE(stats.trims, 1u) << stats.bytes_evicted;
    } else {
      EXPECT_EQ(stats.trims, 0u);
    }
  }
}

// Memory freed outside the cache in bulk is handed back at the evictor's next pass though
// nothing is evicted (an idle process after a big transaction ends), and only when asked.
TEST_F(EvictorTest, ReturnFreedMemorySoonTrimsAtTheNextPassWithoutEvictions) {
  // No slack: the process is always over the budget, so any trim that is due runs. No
  // quiet-run trims, which would run at every such pass.
  Open(/*budget=*/size_t{1} << 20, /*evictor_period_ms=*/20, /*trim_slack_bytes=*/0,
       CachetableOptions().idle_trim_after_ms, /*quiet_trims=*/false);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // passes with nothing to do
  EXPECT_EQ(table_->stats().trims, 0u);
  table_->ReturnFreedMemorySoon();
  EXPECT_TRUE(Eventually([&] { return table_->stats().trims == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(table_->stats().trims, 1u);
  EXPECT_EQ(table_->stats().bytes_evicted, 0u);
}

// The evictor wrote a dirty pair to evict it, but a client pinned it meanwhile: the pair
// stays (clean) for that client, and its owner is told (a tree flushes such a node's
// heaviest buffer, so that a hot node too big for the cache shrinks instead of being
// written again at every pass).
TEST_F(EvictorTest, APairPinnedWhileTheEvictorWritesItStaysAndItsOwnerIsTold) {
  Open(20 * kValueBytes);
  // Shared with the hook, which stays installed (and may run) after the test body returns.
  struct State {
    std::atomic<bool> first{true};
    std::atomic<BlockNum> written{0};
    std::thread client;
    ~State() {
      if (client.joinable()) client.join();
    }
  };
  auto state = std::make_shared<State>();
  disk_->SetBeforeWrite([this, state](BlockNum block) {
    if (!state->first.exchange(false)) return;
    state->written = block;
    const uint64_t hits = table_->stats().hits;
    state->client = std::thread([this, block] {
      PinnedPair pin;
      EXPECT_TRUE(table_->Pin(file_, block, Lock::kRead, &pin).ok());
    });
    // A pin counts its hit when it takes its reference to the cached pair, before waiting
    // for the lock this write holds.
    EXPECT_TRUE(Eventually([&] { return table_->stats().hits > hits; }));
  });
  for (int i = 0; i < 22; ++i) AddDirty(i);  // 1.1x: wakes the evictor
  EXPECT_TRUE(Eventually([&] { return !disk_->KeptBlocks().empty(); }));
  ASSERT_TRUE(Eventually([&] { return !state->first.load(); }));
  // The hook assigned the thread before the evictor could report the pair kept.
  ASSERT_TRUE(Eventually([&] { return disk_->KeptBlocks().size() == 1; }));
  state->client.join();
  const BlockNum written = state->written.load();
  EXPECT_EQ(disk_->KeptBlocks(), std::vector<BlockNum>{written});
  EXPECT_TRUE(table_->IsCached(file_, written));
  EXPECT_EQ(table_->stats().written_but_kept, 1u);
  EXPECT_EQ(disk_->PlainWritesOf(written), 1);
}

// Memory freed outside the cache while nothing is evicted (cursors closed, an idle process)
// goes back to the system once the evictor has had nothing to do for idle_trim_after_ms:
// one trim per quiet spell, and a sweep starts a new spell.
TEST_F(EvictorTest, AnIdleEvictorTrimsOnceEachQuietSpell) {
  // No slack: the process is always over the budget, so every trim that is due runs.
  const size_t budget = 20 * kValueBytes;
  Open(budget, /*evictor_period_ms=*/20, /*trim_slack_bytes=*/0, /*idle_trim_after_ms=*/300,
       /*quiet_trims=*/false);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // shorter than the spell
  EXPECT_EQ(table_->stats().trims, 0u);
  ASSERT_TRUE(Eventually([&] { return table_->stats().trims == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(table_->stats().trims, 1u);
  // A sweep (22 pairs, over the wake mark; it may trim after what it evicted), then quiet
  // again: one more trim.
  for (int i = 0; i < 22; ++i) AddDirty(i);
  ASSERT_TRUE(Eventually([&] { return table_->size_bytes() <= budget; }));
  EXPECT_GE(table_->stats().evictor_runs, 1u);
  // The sweep's pass ends (with its own trim, if due) well before the new spell does.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const uint64_t after_sweep = table_->stats().trims;
  ASSERT_TRUE(Eventually([&] { return table_->stats().trims == after_sweep + 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(table_->stats().trims, after_sweep + 1);
}

// Without idle trims (0) and quiet-run trims, an idle evictor never trims.
TEST_F(EvictorTest, IdleTrimsCanBeTurnedOff) {
  Open(20 * kValueBytes, /*evictor_period_ms=*/20, /*trim_slack_bytes=*/0,
       /*idle_trim_after_ms=*/0, /*quiet_trims=*/false);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(table_->stats().trims, 0u);
}

// With quiet-run trims, an evictor with nothing to sweep still trims while the process is
// over its budget by more than the slack (always, with no slack): at its runs, not once a
// spell. With a slack no process here reaches, it never does.
TEST_F(EvictorTest, QuietRunsTrimWhileResidentMemoryIsOverTheLine) {
  Open(20 * kValueBytes, /*evictor_period_ms=*/20, /*trim_slack_bytes=*/0,
       /*idle_trim_after_ms=*/0, /*quiet_trims=*/true);
  EXPECT_TRUE(Eventually([&] { return table_->stats().trims >= 3; }));
  EXPECT_EQ(table_->size_bytes(), 0u);
  EXPECT_EQ(table_->stats().evictor_runs, 0u);  // no sweep brought them
  EXPECT_TRUE(table_->CloseFile(file_, /*write_dirty=*/false).ok());
  table_.reset();

  Open(20 * kValueBytes, /*evictor_period_ms=*/20, /*trim_slack_bytes=*/size_t{1} << 50,
       /*idle_trim_after_ms=*/0, /*quiet_trims=*/true);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(table_->stats().trims, 0u);
}

TEST_F(EvictorTest, ClientAboveTheBlockMarkWaitsForTheEvictor) {
  const size_t budget = 20 * kValueBytes;
  Open(budget);
  disk_->SetBeforeWrite([this](BlockNum) { static_cast<void>(allow_writes_.Wait()); });
  // Exactly 1.1x, the block mark: the evictor is woken and gets stuck in its first (slow)
  // write, but no client waits yet.
  for (int i = 0; i < 22; ++i) AddDirty(i);
  ASSERT_TRUE(Eventually([&] { return disk_->writes.load() >= 1; }));
  EXPECT_EQ(table_->stats().client_waits, 0u);

  std::atomic<bool> returned{false};
  size_t size_on_return = 0;
  std::thread client([&] {
    AddDirty(22);  // 1.15x: its Unpin waits
    size_on_return = table_->size_bytes();
    returned = true;
  });
  // (EXPECT, not ASSERT: the client thread must be joined either way.)
  EXPECT_TRUE(Eventually([&] { return table_->stats().client_waits == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(returned.load()) << "the client did not wait for the evictor";
  allow_writes_.Open();
  client.join();
  // It went on once the evictor had brought memory to the release mark, 1.05x.
  EXPECT_LE(size_on_return, budget + budget / 20);
  // Back under the budget the evictor has written and dropped at least the 3 pairs over it
  // (the client may return after the first 2, at the release mark).
  ASSERT_TRUE(Eventually([&] { return table_->size_bytes() <= budget; }));
  EXPECT_TRUE(Eventually([&] { return table_->stats().full_evictions >= 3u; }))
      << table_->stats().full_evictions;
}

// Above 160 MiB the marks stop growing with the budget: memory may run at most 8 MiB past it
// before the evictor is woken and 16 MiB before a client waits (10% of this 320 MiB budget
// would be 32 MiB).
TEST_F(EvictorTest, MarksRunAtMostSixteenMiBPastALargeBudget) {
  constexpr size_t kBig = size_t{8} << 20;  // each value's accounted size
  disk_ = std::make_unique<FakeDisk>(kBig - 6);
  CachetableOptions options;
  options.budget_bytes = 40 * kBig;
  table_ = std::make_unique<Cachetable>(options);
  file_ = table_->OpenFile(disk_.get());
  disk_->SetBeforeWrite([this](BlockNum) { static_cast<void>(allow_writes_.Wait()); });
  // 42 values: 16 MiB over, at the block mark but not past it. The evictor was woken at 41
  // (past the wake mark) and is stuck in its first write.
  for (int i = 0; i < 42; ++i) AddDirty(i);
  ASSERT_TRUE(Eventually([&] { return disk_->writes.load() >= 1; }));
  EXPECT_EQ(table_->stats().client_waits, 0u);
  std::atomic<bool> returned{false};
  std::thread client([&] {
    AddDirty(42);  // 24 MiB over: waits
    returned = true;
  });
  EXPECT_TRUE(Eventually([&] { return table_->stats().client_waits == 1; }));
  EXPECT_FALSE(returned.load());
  allow_writes_.Open();
  client.join();
  ASSERT_TRUE(Eventually([&] { return table_->size_bytes() <= 40 * kBig; }));
}

// Readers add no memory when they pin what is cached and only clean memory when they fetch,
// so they do not wait (or wait briefly) behind an evictor run stuck writing a writer's
// dirty pairs; a writer still waits for it.
TEST_F(EvictorTest, ReadersDoNotWaitForAnEvictorRunStuckInWrites) {
  const size_t budget = 20 * kValueBytes;
  Open(budget);
  disk_->Put(100, "pair-0");
  disk_->Put(101, "pair-1");
  {
    PinnedPair pin;
    ASSERT_TRUE(table_->Pin(file_, 100, Lock::kRead, &pin).ok());
  }
  disk_->SetBeforeWrite([this](BlockNum) { static_cast<void>(allow_writes_.Wait()); });
  for (int i = 0; i < 23; ++i) AddDirty(i);  // 1.2x: over the block mark; the evictor stuck
  ASSERT_TRUE(Eventually([&] { return disk_->writes.load() >= 1; }));
  ASSERT_GT(table_->size_bytes(), budget + budget / 10);

  auto timed_read = [&](BlockNum block) {
    const auto start = std::chrono::steady_clock::now();
    {
      PinnedPair pin;
      EXPECT_TRUE(table_->Pin(file_, block, Lock::kRead, &pin).ok());
    }
    return std::chrono::steady_clock::now() - start;
  };
  EXPECT_LT(timed_read(100), std::chrono::milliseconds(300)) << "a cached read waited";
  EXPECT_LT(timed_read(101), std::chrono::milliseconds(300)) << "a fetching read waited";

  std::atomic<bool> returned{false};
  std::thread writer([&] {
    AddDirty(23);
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(returned.load()) << "the writer did not wait for the evictor";
  allow_writes_.Open();
  writer.join();
}

TEST_F(EvictorTest, ClientHoldingPinsFarOverBudgetDoesNotDeadlock) {
  const size_t budget = 4 * kValueBytes;
  Open(budget);
  for (int i = 0; i < 12; ++i) disk_->Put(i, StrCat("pair-", i % 10));
  // This thread pins 8 pairs (2x the budget) and keeps them, then pins and unpins more:
  // each Pin and Unpin waits for the evictor, which can evict nothing but the unpinned
  // pairs. The waits must end.
  std::atomic<bool> done{false};
  std::thread client([&] {
    std::vector<PinnedPair> held(8);
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(table_->Pin(file_, i, Lock::kRead, &held[i]).ok());
    for (int round = 0; round < 3; ++round) {
      for (int i = 8; i < 12; ++i) {
        PinnedPair pin;
        ASSERT_TRUE(table_->Pin(file_, i, Lock::kWrite, &pin).ok());
        pin.MarkDirty();
      }
    }
    for (int i = 0; i < 8; ++i) EXPECT_TRUE(table_->IsCached(file_, i));
    done = true;
  });
  const bool finished = Eventually([&] { return done.load(); });
  EXPECT_TRUE(finished) << "the client is stuck behind the evictor";
  client.join();
  EXPECT_GT(table_->stats().client_waits, 0u);
  // Once the pins are gone the evictor can catch up.
  table_->EvictIfOverBudget();
  EXPECT_LE(table_->size_bytes(), budget);
}

TEST_F(EvictorTest, ClientWaitingWhileEverythingIsPinnedGoesOn) {
  const size_t budget = 2 * kValueBytes;
  Open(budget);
  for (int i = 0; i < 4; ++i) disk_->Put(i, StrCat("pair-", i));
  std::vector<PinnedPair> held(4);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(table_->Pin(file_, i, Lock::kRead, &held[i]).ok());
  // 2x the budget, all pinned by this thread: unpinning one waits for an evictor run that
  // can only report that everything else is pinned.
  held[3].Unpin();
  EXPECT_GE(table_->stats().client_waits, 1u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(table_->IsCached(file_, i));
  for (auto& pin : held) pin.Unpin();
  ASSERT_TRUE(Eventually([&] { return table_->size_bytes() <= budget; }));
}

TEST_F(EvictorTest, WithoutTheEvictorThreadUnpinEvictsAtOnce) {
  disk_ = std::make_unique<FakeDisk>(kBase);
  CachetableOptions options;
  options.budget_bytes = 3 * kValueBytes;
  options.evictor_thread = false;
  table_ = std::make_unique<Cachetable>(options);
  file_ = table_->OpenFile(disk_.get());
  for (int i = 0; i < 10; ++i) {
    AddDirty(i);
    EXPECT_LE(table_->size_bytes(), options.budget_bytes);
  }
  EXPECT_EQ(table_->stats().evictor_runs, 0u);
  EXPECT_EQ(table_->stats().client_waits, 0u);
}

}  // namespace
}  // namespace fern
