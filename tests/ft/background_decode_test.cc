// Decoding on the readahead pool for readers: StreamAhead on its own (the hand-over between
// a scan and its background task); a tree scan that streams with one (every row read,
// decoded copies taken, a copy decoded before a write reached its basement never used);
// and point reads on a cold tree warming their leaves while the cache has room.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "cachetable/cachetable.h"
#include "ft/row_batch.h"
#include "ft/stream_ahead.h"
#include "ft/tree.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "util/thread_pool.h"

namespace fern {
namespace {

// Decodes frame `frame` with upper bound `upper` for the task of `generation`, if the
// StreamAhead wants it, as a basement of `rows` rows of 1 KiB values; returns whether it
// did.
bool DecodeIfWanted(StreamAhead* ahead, uint64_t generation, uint64_t frame,
                    const std::string& upper, int rows = 0) {
  if (!ahead->Wants(generation, frame, &upper, static_cast<size_t>(rows) * 1024)) return false;
  std::unique_ptr<Basement> decoded = ahead->BeginDecode(frame);
  ApplyContext ctx;
  ctx.cmp = BytewiseComparator();
  const std::string value(1024, 'v');
  for (int i = 0; i < rows; ++i) {
    Message m;
    m.type = MessageType::kInsert;
    m.msn = static_cast<Msn>(i + 1);
    const std::string key = upper + std::to_string(1000 + i);
    m.key = key;
    m.value = value;
    decoded->Apply(m, ctx);
  }
  ahead->EndDecode(generation, frame, &upper, std::move(decoded));
  return true;
}

TEST(StreamAheadTest, CopiesAreTakenInKeyOrderAndDroppedOnceThePositionPasses) {
  StreamAhead ahead(BytewiseComparator(), nullptr);
  uint64_t generation;
  ASSERT_TRUE(ahead.WantsTask());
  ASSERT_TRUE(ahead.BeginTask(&generation));
  uint64_t other;
  EXPECT_FALSE(ahead.BeginTask(&other));  // one task at a time
  EXPECT_FALSE(ahead.WantsTask());
  // With nothing queued the scan is about to read the first basement itself: left to it.
  EXPECT_FALSE(DecodeIfWanted(&ahead, generation, 1, "b"));
  EXPECT_TRUE(DecodeIfWanted(&ahead, generation, 2, "c"));
  EXPECT_TRUE(DecodeIfWanted(&ahead, generation, 3, "d"));
  EXPECT_FALSE(DecodeIfWanted(&ahead, generation, 3, "d"));  // queued already
  EXPECT_TRUE(DecodeIfWanted(&ahead, generation, 4, "e"));
  EXPECT_EQ(ahead.queued(), 3u);

  EXPECT_EQ(ahead.Take(1), nullptr);  // never decoded: the scan reads it itself
  ahead.Advance("b");
  EXPECT_EQ(ahead.queued(), 3u);  // frame 2 holds keys from "b"
  const Basement* third = ahead.Take(3);
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(ahead.queued(), 1u);                             // frame 2, passed over, is gone
  EXPECT_EQ(ahead.Take(3), third);                           // asked again (a batch read twice)
  EXPECT_EQ(ahead.Take(2), nullptr);                         // dropped
  EXPECT_FALSE(DecodeIfWanted(&ahead, generation, 3, "d"));  // taken already
  ahead.Advance("e");
  EXPECT_EQ(ahead.queued(), 0u);  // frame 4 holds keys below "e"
  // Nor is a basement the scan has passed decoded.
  EXPECT_FALSE(DecodeIfWanted(&ahead, generation, 5, "d"));
  ahead.EndTask();
  EXPECT_TRUE(ahead.WantsTask());
}

TEST(StreamAheadTest, ARestartDropsCopiesAndWhatTheOldTaskStillDelivers) {
  StreamAhead ahead(BytewiseComparator(), nullptr);
  uint64_t generation;
  ASSERT_TRUE(ahead.BeginTask(&generation));
  EXPECT_FALSE(DecodeIfWanted(&ahead, generation, 1, "b"));
  EXPECT_TRUE(DecodeIfWanted(&ahead, generation, 2, "c"));
  std::unique_ptr<Basement> rows = ahead.BeginDecode(3);
  ahead.Restart();  // a seek
  EXPECT_EQ(ahead.queued(), 0u);
  const std::string upper = "d";
  ahead.EndDecode(generation, 3, &upper, std::move(rows));
  EXPECT_EQ(ahead.queued(), 0u);
  EXPECT_EQ(ahead.Take(3), nullptr);
  EXPECT_FALSE(ahead.HasRoom(generation));
  std::string key = "a";
  EXPECT_FALSE(ahead.NextKey(generation, &key));
  ahead.EndTask();
  uint64_t next;
  ASSERT_TRUE(ahead.BeginTask(&next));
  EXPECT_NE(next, generation);
  EXPECT_TRUE(ahead.HasRoom(next));
  ahead.EndTask();
}

TEST(StreamAheadTest, TheTaskSkipsToTheScanAndWaitsForRoom) {
  StreamAhead ahead(BytewiseComparator(), nullptr);
  uint64_t generation;
  ASSERT_TRUE(ahead.BeginTask(&generation));
  ahead.Advance("m");
  std::string key = "c";
  ASSERT_TRUE(ahead.NextKey(generation, &key));
  EXPECT_EQ(key, "m");  // behind the scan: skips ahead
  key = "x";
  ASSERT_TRUE(ahead.NextKey(generation, &key));
  EXPECT_EQ(key, "x");  // ahead of it: stays

  EXPECT_FALSE(DecodeIfWanted(&ahead, generation, 100, "n"));  // left to the scan
  for (uint64_t frame = 1; frame <= StreamAhead::kMaxQueued; ++frame) {
    ASSERT_TRUE(DecodeIfWanted(&ahead, generation, 100 + frame, "n" + std::to_string(frame)));
  }
  EXPECT_FALSE(ahead.HasRoom(generation));
  EXPECT_FALSE(DecodeIfWanted(&ahead, generation, 999, "z"));
  EXPECT_FALSE(ahead.AwaitRoom(generation, absl::Milliseconds(10)));
  std::thread scan([&ahead] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_NE(ahead.Take(101), nullptr);
  });
  EXPECT_TRUE(ahead.AwaitRoom(generation, absl::Seconds(30)));
  scan.join();
  ahead.EndTask();
}

TEST(StreamAheadTest, ATakeDoesNotWaitLongForADecodeInProgress) {
  StreamAhead ahead(BytewiseComparator(), nullptr);
  uint64_t generation;
  ASSERT_TRUE(ahead.BeginTask(&generation));
  const std::string upper = "q";
  // The task's thread stalls mid-decode: the scan reads the basement itself rather than
  // wait for it.
  std::unique_ptr<Basement> rows = ahead.BeginDecode(7);
  EXPECT_EQ(ahead.Take(7), nullptr);
  ahead.EndDecode(generation, 7, &upper, std::move(rows));
  EXPECT_NE(ahead.Take(7), nullptr);  // queued once done (a scan still before it takes it)
  // A decode that fails delivers nothing.
  rows = ahead.BeginDecode(8);
  ahead.EndDecode(generation, 8, &upper, nullptr);
  EXPECT_EQ(ahead.Take(8), nullptr);
  EXPECT_EQ(ahead.queued(), 0u);
  ahead.EndTask();
}

// ---- with a tree ----

constexpr int kRows = 6000;

std::string Key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "k%06d", i);
  return buf;
}

std::string Value(int i, int version) {
  return Key(i) + "/v" + std::to_string(version) + std::string(60, 'x');
}

TreeConfig Config(ThreadPool* pool) {
  TreeConfig config;
  config.comparator = BytewiseComparator();
  config.compression = Compression::kZstd;
  config.node_bytes = 64 << 10;
  config.basement_bytes = 2 << 10;  // many basements per leaf
  config.readahead_pool = pool;
  return config;
}

// Writes rows 0..kRows-1 at `version` into a new tree at `path` and closes it, so that a
// tree opened afterwards has every basement on disk only.
void Build(const std::string& path, int version) {
  Cachetable cache(size_t{64} << 20);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Create(path, Config(nullptr), &cache, &tree).ok());
  for (int i = 0; i < kRows; ++i) ASSERT_TRUE(tree->Put(Key(i), Value(i, version)).ok());
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
}

// Reads one streaming batch from `from` (the first when empty) with `ahead`, then asks for
// decoding ahead of it, as a cursor does. Waits until the task queued something or ended
// (it finds nothing to decode where the basements are cached), so that the next batch has a
// copy to take when there is one.
Status StreamBatch(FractalTree* tree, const std::shared_ptr<StreamAhead>& ahead,
                   const std::string& from, RowBatch* batch) {
  // A seek's first batch, from the start: kAtOrAfter from the smallest key.
  Status s = tree->ReadBatch(FractalTree::Locate::kAtOrAfter, from, size_t{1} << 20, batch, nullptr,
                             FractalTree::Caching::kStream, ahead.get());
  if (!s.ok() || !batch->has_upper) return s;
  tree->StreamAheadFrom(ahead, batch->upper);
  // StreamAheadFrom claims the task before scheduling it: until it ends, WantsTask is false.
  while (ahead->queued() == 0 && !ahead->WantsTask()) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return s;
}

// Streams from `from` (the start when empty) to the end of the tree, checking that row
// `*rows` onwards are there at `version`; *rows ends as the count of rows seen in all.
void StreamToEnd(FractalTree* tree, const std::shared_ptr<StreamAhead>& ahead, std::string from,
                 int version, int* rows) {
  RowBatch batch;
  for (;;) {
    ASSERT_TRUE(StreamBatch(tree, ahead, from, &batch).ok());
    for (size_t i = 0; i < batch.size(); ++i, ++*rows) {
      ASSERT_EQ(batch.key(i), Key(*rows));
      ASSERT_EQ(batch.value(i), Value(*rows, version)) << "a stale copy was used";
    }
    if (!batch.has_upper) return;
    from.assign(batch.upper);
  }
}

// A tree of kRows rows at version 0, opened cold (every basement on disk only) in a cache of
// `cache_bytes`, with a readahead pool.
class ColdTreeTest : public ::testing::Test {
 protected:
  void OpenBuilt(size_t cache_bytes) {
    const std::string path = dir_.Sub("t.ft");
    Build(path, 0);
    cache_ = std::make_unique<Cachetable>(cache_bytes);
    ASSERT_TRUE(FractalTree::Open(path, Config(&pool_), cache_.get(), &tree_).ok());
  }
  void TearDown() override {
    if (tree_ != nullptr) {
      EXPECT_TRUE(tree_->Close(/*checkpoint=*/false).ok());
    }
    tree_.reset();
  }

  testing::ScratchDir dir_;
  ThreadPool pool_{2};
  std::unique_ptr<Cachetable> cache_;
  std::unique_ptr<FractalTree> tree_;
};

TEST_F(ColdTreeTest, AStreamingScanTakesDecodedBasementsAndReadsEveryRow) {
  OpenBuilt(size_t{64} << 20);
  FractalTree* tree = tree_.get();
  std::shared_ptr<StreamAhead> ahead = tree->NewStreamAhead();
  int rows = 0;
  StreamToEnd(tree, ahead, "", 0, &rows);
  EXPECT_EQ(rows, kRows);
  const TreeStats& stats = tree->stats();
  EXPECT_GT(stats.basements_streamed_ahead.load(), 0u);
  EXPECT_LE(stats.basements_streamed_ahead.load(), stats.basements_decoded_ahead.load());
  EXPECT_LE(stats.basements_streamed_ahead.load(), stats.basements_streamed.load());
  EXPECT_EQ(stats.basements_fetched.load(), 0u);  // nothing installed in the cache
  // The copies it holds count in the cache's size, until it is gone (once its last task
  // has ended too).
  const std::shared_ptr<OutsideMemory>& outside = cache_->outside_memory();
  EXPECT_GT(outside->charged(), 0u);
  EXPECT_EQ(cache_->stats().outside_bytes, outside->charged());
  ahead.reset();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (outside->charged() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(outside->charged(), 0u);
}

TEST_F(ColdTreeTest, ConcurrentStreamingScansStayWithinTheirShareAndReadEveryRow) {
  // A cache so small that the scans' copies contend for its eighth and charges are refused.
  OpenBuilt(size_t{256} << 10);
  FractalTree* tree = tree_.get();
  const std::shared_ptr<OutsideMemory>& outside = cache_->outside_memory();
  constexpr int kScans = 4;
  std::atomic<bool> done{false};
  std::atomic<bool> over_cap{false};
  std::atomic<size_t> most{0};
  std::thread monitor([&] {
    while (!done.load()) {
      const size_t charged = outside->charged();
      if (charged > outside->cap()) over_cap = true;
      if (charged > most.load()) most = charged;
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> scans;
  std::vector<int> rows(kScans, 0);
  for (int t = 0; t < kScans; ++t) {
    scans.emplace_back([tree, &rows, t] {
      std::shared_ptr<StreamAhead> ahead = tree->NewStreamAhead();
      for (int pass = 0; pass < 2; ++pass) {
        rows[t] = 0;
        StreamToEnd(tree, ahead, "", 0, &rows[t]);
        ahead->Restart();  // a seek back to the start
      }
    });
  }
  for (std::thread& scan : scans) scan.join();
  done = true;
  monitor.join();
  for (int t = 0; t < kScans; ++t) EXPECT_EQ(rows[t], kRows) << "scan " << t;
  EXPECT_FALSE(over_cap.load());
  // The scans pressed on the cap (so some charges were refused), yet none went past it.
  EXPECT_GT(most.load(), outside->cap() / 2);
  EXPECT_GT(tree->stats().basements_decoded_ahead.load(), 0u);
  // Every charge is given back once the StreamAheads and their tasks are gone.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (outside->charged() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(outside->charged(), 0u);
  EXPECT_EQ(cache_->stats().outside_bytes, 0u);
}

TEST_F(ColdTreeTest, ACopyDecodedBeforeAWriteReachedItsBasementIsNeverUsed) {
  // Small: after the writes below, eviction drops the leaves and their new frames are read
  // back from disk.
  OpenBuilt(size_t{256} << 10);
  FractalTree* tree = tree_.get();
  std::shared_ptr<StreamAhead> ahead = tree->NewStreamAhead();
  RowBatch batch;
  ASSERT_TRUE(StreamBatch(tree, ahead, "", &batch).ok());
  ASSERT_TRUE(batch.has_upper);
  std::string from(batch.upper);
  int rows = static_cast<int>(batch.size());
  // Let the task fill the queue with copies of the version 0 frames ahead of the scan.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ahead->queued() < StreamAhead::kMaxQueued / 2 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GE(ahead->queued(), StreamAhead::kMaxQueued / 2);

  // Version 1 everywhere, pushed into the leaves (no message left pending above them to
  // correct a stale copy), written, and the leaves evicted.
  for (int i = 0; i < kRows; ++i) ASSERT_TRUE(tree->Put(Key(i), Value(i, 1)).ok());
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Checkpoint().ok());
  cache_->EvictIfOverBudget();

  StreamToEnd(tree, ahead, from, 1, &rows);
  EXPECT_EQ(rows, kRows);
  EXPECT_GT(tree->stats().basements_decoded_ahead.load(), 0u);
}

TEST(StreamAheadTest, HeldBasementsAreChargedToTheBudgetAndGivenBack) {
  // A cap of 64 KiB: room for a few basements of 16 rows of 1 KiB.
  auto memory = std::make_shared<OutsideMemory>(size_t{512} << 10);
  ASSERT_EQ(memory->cap(), size_t{64} << 10);
  {
    StreamAhead ahead(BytewiseComparator(), memory);
    uint64_t generation;
    ASSERT_TRUE(ahead.BeginTask(&generation));
    EXPECT_FALSE(DecodeIfWanted(&ahead, generation, 1, "b", 16));  // left to the scan
    ASSERT_TRUE(DecodeIfWanted(&ahead, generation, 2, "c", 16));
    EXPECT_GT(ahead.charged(), size_t{16} << 10);
    EXPECT_EQ(memory->charged(), ahead.charged());
    // Decode until the cap refuses a charge: then the task has no room until a copy
    // leaves the queue.
    uint64_t frame = 3;
    while (ahead.HasRoom(generation) && frame < 100) {
      DecodeIfWanted(&ahead, generation, frame, "c" + std::to_string(frame), 16);
      ++frame;
    }
    ASSERT_FALSE(ahead.HasRoom(generation));
    ASSERT_LT(ahead.queued(), StreamAhead::kMaxQueued);  // stopped by memory, not the count
    EXPECT_LE(memory->charged(), memory->cap());
    EXPECT_EQ(memory->charged(), ahead.charged());
    ASSERT_NE(ahead.Take(2), nullptr);
    EXPECT_TRUE(ahead.HasRoom(generation));
    // A seek drops the copies, but their memory is kept (and stays charged) for reuse.
    const size_t before = ahead.charged();
    ahead.Restart();
    EXPECT_EQ(ahead.queued(), 0u);
    EXPECT_GT(ahead.charged(), 0u);
    EXPECT_LE(ahead.charged(), before);
    EXPECT_EQ(memory->charged(), ahead.charged());
    ahead.EndTask();
  }
  EXPECT_EQ(memory->charged(), 0u);  // all given back with the StreamAhead
}

TEST(OutsideMemoryTest, ChargesCountInTheCacheSizeUntilTheCacheIsGone) {
  std::shared_ptr<OutsideMemory> memory;
  {
    Cachetable cache(size_t{8} << 20);
    memory = cache.outside_memory();
    EXPECT_EQ(memory->cap(), size_t{1} << 20);
    const size_t before = cache.size_bytes();
    ASSERT_TRUE(memory->TryCharge(size_t{300} << 10));
    EXPECT_EQ(cache.size_bytes(), before + (size_t{300} << 10));
    EXPECT_EQ(cache.stats().outside_bytes, size_t{300} << 10);
    EXPECT_FALSE(memory->TryCharge(size_t{800} << 10));  // past the cap: nothing charged
    EXPECT_EQ(memory->charged(), size_t{300} << 10);
    EXPECT_TRUE(memory->Fits(size_t{700} << 10));
    memory->Release(size_t{100} << 10);
    EXPECT_EQ(cache.size_bytes(), before + (size_t{200} << 10));
  }
  // The holder outlives the cache: releasing touches nothing of it.
  memory->Release(size_t{200} << 10);
  EXPECT_EQ(memory->charged(), 0u);
}

}  // namespace
}  // namespace fern

namespace fern {
namespace {

// Waits (at most 30 s) until warming has loaded at least `at_least` basements.
void AwaitWarming(const TreeStats& stats, uint64_t at_least) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (stats.basements_warmed.load() < at_least && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

TEST_F(ColdTreeTest, AMissWarmsItsLeafWhileTheCacheHasRoom) {
  OpenBuilt(size_t{64} << 20);
  FractalTree* tree = tree_.get();
  const TreeStats& stats = tree->stats();
  std::string got;
  ASSERT_TRUE(tree->Get(Key(kRows / 2), &got).ok());
  EXPECT_EQ(got, Value(kRows / 2, 0));
  AwaitWarming(stats, 1);
  ASSERT_GT(stats.basements_warmed.load(), 0u);
  // Every read is right while (and after) warming installs basements beside it.
  for (int i = 0; i < kRows; i += 7) {
    ASSERT_TRUE(tree->Get(Key(i), &got).ok());
    ASSERT_EQ(got, Value(i, 0));
  }
  EXPECT_GT(stats.basements_warmed.load(), 1u);
}

TEST_F(ColdTreeTest, AMissWarmsNothingOnceTheCacheIsHalfFull) {
  // Far smaller than the tree: a scan that keeps what it reads fills it.
  OpenBuilt(size_t{128} << 10);
  FractalTree* tree = tree_.get();
  RowBatch batch;
  std::string from;
  for (bool first = true;; first = false) {
    ASSERT_TRUE(
        tree->ReadBatch(first ? FractalTree::Locate::kFirst : FractalTree::Locate::kAtOrAfter, from,
                        64, &batch)
            .ok());
    if (!batch.has_upper) break;
    from.assign(batch.upper);
  }
  cache_->EvictIfOverBudget();
  ASSERT_GE(cache_->size_bytes(), cache_->budget() / 2);
  const uint64_t warmed = tree->stats().basements_warmed.load();
  auto misses = [tree] {
    return tree->stats().basements_fetched.load() + tree->stats().basements_read_uncached.load();
  };
  const uint64_t missed = misses();
  std::string got;
  for (int i = 0; i < kRows; i += 97) {
    ASSERT_TRUE(tree->Get(Key(i), &got).ok());
    ASSERT_EQ(got, Value(i, 0));
  }
  EXPECT_GT(misses(), missed);  // the reads did miss
  EXPECT_EQ(tree->stats().basements_warmed.load(), warmed);
}

}  // namespace
}  // namespace fern
