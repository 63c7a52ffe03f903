// Partial fetch and partial eviction of leaves: a fetch reads a leaf's header only, the
// cache drops the least recently read basements first and keeps the ones reads keep coming
// back to, and its accounting of loaded basements stays exact.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cachetable/cachetable.h"
#include "ft/basement_admission.h"
#include "ft/basement_pool.h"
#include "ft/node.h"
#include "ft/tree.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "util/chunk_allocator.h"

namespace fern {
namespace {

TreeConfig Config(Compression codec, uint32_t node_bytes, uint32_t basement_bytes = 4 << 10) {
  TreeConfig config;
  config.comparator = BytewiseComparator();
  config.compression = codec;
  config.node_bytes = node_bytes;
  config.basement_bytes = basement_bytes;
  return config;
}

// A value of 60 letters and the key, distinct per row.
std::string ValueOf(int i) {
  return std::string(60, static_cast<char>('a' + i % 26)) + testing::NumberedKey(i);
}

// Writes rows 0..rows-1 (Key, ValueOf) into a new tree at `path`, flushed to the leaves and
// checkpointed.
void BuildTree(const std::string& path, const TreeConfig& config, int rows) {
  Cachetable cache(size_t{64} << 20);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Create(path, config, &cache, &tree).ok());
  for (int i = 0; i < rows; ++i) ASSERT_TRUE(tree->Put(testing::NumberedKey(i), ValueOf(i)).ok());
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
}

// The setup of the point-read admission tests: a tree of `rows` rows built with `config`,
// reopened with an admission filter of `window` basements under a cache of `budget` bytes.
struct AdmittedTree {
  AdmittedTree(size_t window, size_t budget) : admission(window), cache(budget) {}
  BasementAdmission admission;
  Cachetable cache;
  std::unique_ptr<FractalTree> tree;
};

void OpenAdmittedTree(const std::string& path, TreeConfig config, int rows, AdmittedTree* t) {
  config.admission = &t->admission;
  ASSERT_NO_FATAL_FAILURE(BuildTree(path, config, rows));
  ASSERT_TRUE(FractalTree::Open(path, config, &t->cache, &t->tree).ok());
}

// Reads a forward batch of max_rows rows from `key` twice: as a point read would
// (Caching::kKeepIfHot, transient when the cache is full) and as a scan keeping its basement,
// and expects the same rows and bounds. Returns whether the first read was transient.
bool ExpectTransientBatchLikeCached(FractalTree* tree, const std::string& key, size_t max_rows) {
  const uint64_t uncached = tree->stats().basements_read_uncached.load();
  RowBatch transient;
  RowBatch cached;
  EXPECT_TRUE(tree->ReadBatch(FractalTree::Locate::kAtOrAfter, key, max_rows, &transient, nullptr,
                              FractalTree::Caching::kKeepIfHot)
                  .ok());
  const bool was_transient = tree->stats().basements_read_uncached.load() != uncached;
  EXPECT_TRUE(tree->ReadBatch(FractalTree::Locate::kAtOrAfter, key, max_rows, &cached).ok());
  EXPECT_EQ(transient.size(), cached.size()) << key << " " << max_rows << " " << was_transient;
  for (size_t r = 0; r < std::min(cached.size(), transient.size()); ++r) {
    EXPECT_EQ(transient.key(r), cached.key(r));
    EXPECT_EQ(transient.value(r), cached.value(r));
  }
  EXPECT_EQ(transient.has_upper, cached.has_upper) << key;
  EXPECT_EQ(transient.upper, cached.upper) << key;
  EXPECT_EQ(transient.has_lower, cached.has_lower) << key;
  EXPECT_EQ(transient.lower, cached.lower) << key;
  return was_transient;
}

TEST(TreeEvictionTest, PartialEvictionKeepsTheBasementReadsReturnTo) {
  testing::ScratchDir dir;
  const TreeConfig config = Config(Compression::kNone, 256 << 10);
  const std::string path = dir.Sub("t.ft");
  constexpr int kRows = 20000;  // ~2.6 MB of rows: ~10 leaves of ~60 basements each
  {
    Cachetable cache(size_t{64} << 20);
    std::unique_ptr<FractalTree> tree;
    ASSERT_TRUE(FractalTree::Create(path, config, &cache, &tree).ok());
    const std::string value(100, 'v');
    for (int i = 0; i < kRows; ++i) ASSERT_TRUE(tree->Put(testing::NumberedKey(i), value).ok());
    ASSERT_TRUE(tree->Optimize().ok());
    ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
  }
  // Room for the root, the leaves' headers and a few dozen basements, no more.
  Cachetable cache(size_t{600} << 10);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Open(path, config, &cache, &tree).ok());
  const std::string hot = testing::NumberedKey(kRows / 2);
  std::string value;
  ASSERT_TRUE(tree->Get(hot, &value).ok());
  int hot_misses = 0;
  // Cold reads sweep every basement of the tree, over and over, between reads of one hot
  // key: the hot key's basement is always the most recently read one in its leaf.
  for (int n = 0; n < 3000; ++n) {
    ASSERT_TRUE(tree->Get(testing::NumberedKey((n * 97) % kRows), &value).ok());
    const uint64_t before = tree->stats().basements_fetched.load();
    ASSERT_TRUE(tree->Get(hot, &value).ok());
    if (tree->stats().basements_fetched.load() != before) ++hot_misses;
  }
  // Most cold reads miss: the cache is under pressure all along.
  EXPECT_GT(tree->stats().basements_fetched.load(), 2000u);
  EXPECT_EQ(hot_misses, 0);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
}

// Cold internal nodes keep their message buffers compressed in memory, and every read still
// sees every buffered message: the first pin of a frozen node decompresses its buffers.
TEST(TreeEvictionTest, ColdInternalNodesFreezeTheirBuffersAndThawOnUse) {
  testing::ScratchDir dir;
  const TreeConfig config = Config(Compression::kZstd, 64 << 10);
  CachetableOptions options;
  options.budget_bytes = size_t{1} << 20;
  options.evictor_period_ms = 10;
  Cachetable cache(options);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Create(dir.Sub("t.ft"), config, &cache, &tree).ok());
  constexpr int kRows = 40000;
  for (int i = 0; i < kRows; ++i) {
    ASSERT_TRUE(
        tree->Put(testing::NumberedKey((i * 7919) % kRows), ValueOf((i * 7919) % kRows)).ok());
  }
  ASSERT_TRUE(tree->Checkpoint().ok());  // every node clean: partial eviction may act
  TreeShape shape;
  ASSERT_TRUE(tree->Shape(&shape).ok());
  ASSERT_GE(shape.height, 3);
  ASSERT_GT(shape.messages_per_level[1], 0u);
  // The checkpoint wrote internal nodes as well as leaves; the stats tell them apart.
  EXPECT_GT(tree->stats().leaf_bytes_written.load(), 0u);
  EXPECT_LT(tree->stats().leaf_bytes_written.load(), tree->stats().bytes_written.load());
  // Reads sweep the key space; the evictor works all along and freezes internal nodes on
  // their way out.
  std::string value;
  for (int i = 0; i < kRows; i += 7) {
    ASSERT_TRUE(tree->Get(testing::NumberedKey(i), &value).ok()) << i;
    ASSERT_EQ(value, ValueOf(i));
  }
  EXPECT_GT(tree->stats().buffers_frozen.load(), 0u);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
  tree.reset();

  // Freeze the root's children, as the sweep would (holding their pairs exclusively), in a
  // cache with no evictor to drop them first; then read through them.
  CachetableOptions quiet;
  quiet.budget_bytes = size_t{64} << 20;
  quiet.evictor_thread = false;
  Cachetable big(quiet);
  ASSERT_TRUE(FractalTree::Open(dir.Sub("t.ft"), config, &big, &tree).ok());
  const BlockNum root_block = tree->file()->header().root;
  std::vector<BlockNum> children;
  {
    PinnedPair root;
    ASSERT_TRUE(big.Pin(tree->cache_file_id(), root_block, Cachetable::Lock::kRead, &root).ok());
    children = root.as<Node>()->children;
  }
  const uint64_t frozen_before = tree->stats().buffers_frozen.load();
  for (BlockNum child : children) {
    PinnedPair pin;
    ASSERT_TRUE(big.Pin(tree->cache_file_id(), child, Cachetable::Lock::kWrite, &pin).ok());
    size_t freed = CacheFileOwner::kUnknownSize;
    tree->PartialEvict(child, pin.value(), FractalTree::kFreezeClockCount, &freed);
  }
  EXPECT_GT(tree->stats().buffers_frozen.load(), frozen_before);
  EXPECT_EQ(tree->stats().buffers_thawed.load(), 0u);
  for (int i = 0; i < kRows; ++i) {
    ASSERT_TRUE(tree->Get(testing::NumberedKey(i), &value).ok()) << i;
    ASSERT_EQ(value, ValueOf(i));
  }
  EXPECT_GT(tree->stats().buffers_thawed.load(), 0u);
  // Writes after a thaw land in the thawed buffers; nothing was lost.
  for (int i = 0; i < kRows; i += 3) ASSERT_TRUE(tree->Delete(testing::NumberedKey(i)).ok());
  for (int i = 0; i < kRows; ++i) {
    Status s = tree->Get(testing::NumberedKey(i), &value);
    if (i % 3 == 0) {
      EXPECT_TRUE(s.IsNotFound()) << i;
    } else {
      ASSERT_TRUE(s.ok()) << i;
      EXPECT_EQ(value, ValueOf(i));
    }
  }
  ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
}

TEST(TreeEvictionTest, LeafHeaderLargerThanTheProbeLeavesBasementsOnDisk) {
  testing::ScratchDir dir;
  const TreeConfig config = Config(Compression::kNone, 4 << 20, 512);
  const std::string path = dir.Sub("t.ft");
  constexpr int kRows = 5000;  // ~600 KB: one leaf of ~1,200 basements, a ~30 KB header
  const std::string value(100, 'v');
  {
    Cachetable cache(size_t{64} << 20);
    std::unique_ptr<FractalTree> tree;
    ASSERT_TRUE(FractalTree::Create(path, config, &cache, &tree).ok());
    for (int i = 0; i < kRows; ++i) ASSERT_TRUE(tree->Put(testing::NumberedKey(i), value).ok());
    ASSERT_TRUE(tree->Optimize().ok());
    ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
  }
  Cachetable cache(size_t{64} << 20);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Open(path, config, &cache, &tree).ok());  // fetches the root leaf
  EXPECT_EQ(tree->stats().raw_bytes_decompressed.load(), 0u);
  std::string got;
  ASSERT_TRUE(tree->Get(testing::NumberedKey(kRows / 3), &got).ok());
  EXPECT_EQ(got, value);
  EXPECT_EQ(tree->stats().basements_fetched.load(), 1u);
  EXPECT_LT(tree->stats().raw_bytes_decompressed.load(), 2048u);
  EXPECT_LT(cache.size_bytes(), size_t{200} << 10);
  TreeShape shape;
  ASSERT_TRUE(tree->Shape(&shape).ok());  // loads the rest
  EXPECT_EQ(shape.height, 1);
  EXPECT_EQ(shape.rows, static_cast<uint64_t>(kRows));
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
}

TEST(TreeEvictionTest, ReadsUnderPressureStayNearTheBudgetAndAccountEveryByteBack) {
  testing::ScratchDir dir;
  const TreeConfig config = Config(Compression::kZstd, 256 << 10, 2 << 10);
  const std::string path = dir.Sub("t.ft");
  constexpr int kRows = 20000;  // ~2.6 MB of rows in ~1,300 basements
  {
    Cachetable cache(size_t{64} << 20);
    std::unique_ptr<FractalTree> tree;
    ASSERT_TRUE(FractalTree::Create(path, config, &cache, &tree).ok());
    for (int i = 0; i < kRows; ++i)
      ASSERT_TRUE(tree->Put(testing::NumberedKey(i), std::string(100, 'a')).ok());
    ASSERT_TRUE(tree->Optimize().ok());
    ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
  }
  constexpr size_t kBudget = size_t{500} << 10;
  Cachetable cache(kBudget);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Open(path, config, &cache, &tree).ok());
  std::string value;
  size_t peak = 0;
  for (int n = 0; n < 5000; ++n) {
    ASSERT_TRUE(tree->Get(testing::NumberedKey((n * 7919) % kRows), &value).ok());
    peak = std::max(peak, cache.size_bytes());
  }
  // Partial evictions free a quota of basements each, charged by what the loads added.
  EXPECT_GT(cache.stats().partial_evictions, 50u);
  EXPECT_GT(tree->stats().basements_fetched.load(), 2000u);
  EXPECT_LE(peak, kBudget * 2);  // clients wait for the evictor above 1.5x
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
  EXPECT_EQ(cache.size_bytes(), 0u);
}

// With an admission filter, once the cache is full a point read keeps a basement only on
// its second miss within the filter's window: reads that sweep the tree and come back to a
// basement only after many others are served from transient copies and leave the cache
// alone, while a key read again and again gets its basement cached and then hits. Scans
// (Caching::kKeep) keep what they read regardless. Every read returns its row's value.
TEST(TreeEvictionTest, PointReadsKeepOnlyBasementsTheyComeBackTo) {
  testing::ScratchDir dir;
  constexpr int kRows = 20000;  // ~1,300 basements
  constexpr size_t kBudget = size_t{500} << 10;
  AdmittedTree t(/*window=*/64, kBudget);
  ASSERT_NO_FATAL_FAILURE(
      OpenAdmittedTree(dir.Sub("t.ft"), Config(Compression::kZstd, 256 << 10, 2 << 10), kRows, &t));
  BasementAdmission& admission = t.admission;
  Cachetable& cache = t.cache;
  FractalTree* tree = t.tree.get();
  const TreeStats& stats = tree->stats();
  std::string value;
  // Fill the cache: below the budget every read keeps what it reads.
  int n = 0;
  while (cache.size_bytes() < kBudget && n < kRows) {
    const int i = (n++ * 7919) % kRows;
    ASSERT_TRUE(tree->Get(testing::NumberedKey(i), &value).ok());
    ASSERT_EQ(value, ValueOf(i));
  }
  ASSERT_GE(cache.size_bytes(), kBudget) << "the reads never filled the cache";

  // A sweep with a stride of ~3 basements comes back near a basement only after ~200
  // other reads, more than two windows of 64 misses.
  const std::string hot = testing::NumberedKey(kRows / 3);
  const uint64_t fetched_before = stats.basements_fetched.load();
  const uint64_t uncached_before = stats.basements_read_uncached.load();
  int hot_misses = 0;
  for (int k = 0; k < 2000; ++k) {
    const int i = (k * 97) % kRows;
    ASSERT_TRUE(tree->Get(testing::NumberedKey(i), &value).ok());
    ASSERT_EQ(value, ValueOf(i));
    const uint64_t fetched = stats.basements_fetched.load();
    const uint64_t uncached = stats.basements_read_uncached.load();
    ASSERT_TRUE(tree->Get(hot, &value).ok());
    ASSERT_EQ(value, ValueOf(kRows / 3));
    if (k >= 2 && (stats.basements_fetched.load() != fetched ||
                   stats.basements_read_uncached.load() != uncached)) {
      ++hot_misses;
    }
  }
  const uint64_t fetched = stats.basements_fetched.load() - fetched_before;
  const uint64_t uncached = stats.basements_read_uncached.load() - uncached_before;
  EXPECT_GT(uncached, 1500u);
  EXPECT_LT(fetched, 200u);  // false admissions, and the hot key's basement once
  EXPECT_EQ(hot_misses, 0);
  EXPECT_LE(cache.size_bytes(), kBudget * 2);

  // A cursor's seek is a point read; the batches of a scan keep their basements. A seek
  // keeps what it reads while the cache is below its budget (evictions take it there now and
  // then: refill it first) or when the filter says its basement missed lately: fill the
  // filter's windows with other misses, so that only its false positives (~2%) admit one.
  for (uint64_t id = 0; id < 4 * admission.window(); ++id) {
    admission.RecordMiss(0x5eed000000000000 + id * 0x9e3779b97f4a7c15);
  }
  RowBatch batch;
  int full_seeks = 0;
  uint64_t full_seeks_uncached = 0;
  uint64_t full_seeks_fetched = 0;
  int filler = 0;
  for (int j = 0; j < 40; ++j) {
    while (cache.size_bytes() < kBudget && filler < kRows / 2) {
      // The first half only: the scan below needs a basement no read has kept.
      ASSERT_TRUE(
          tree->Get(testing::NumberedKey((filler++ * 7919 + 13) % (kRows / 2)), &value).ok());
    }
    const int first = kRows / 2 + 7 + 211 * j;
    const bool full = cache.size_bytes() >= kBudget;
    const uint64_t uncached_at_seek = stats.basements_read_uncached.load();
    const uint64_t fetched_at_seek = stats.basements_fetched.load();
    ASSERT_TRUE(tree->ReadBatch(FractalTree::Locate::kAtOrAfter, testing::NumberedKey(first), 4,
                                &batch, nullptr, FractalTree::Caching::kKeepIfHot)
                    .ok());
    if (full) {
      ++full_seeks;
      full_seeks_uncached += stats.basements_read_uncached.load() - uncached_at_seek;
      full_seeks_fetched += stats.basements_fetched.load() - fetched_at_seek;
    }
    ASSERT_GE(batch.size(), 1u);  // up to 4: the batch ends with its basement
    for (size_t r = 0; r < batch.size(); ++r) {
      const int i = first + static_cast<int>(r);
      EXPECT_EQ(batch.key(r), testing::NumberedKey(i));
      EXPECT_EQ(batch.value(r), ValueOf(i));
    }
  }
  ASSERT_GE(full_seeks, 30) << "the cache could not be kept full";
  // Some basements are cached from the reads above; most seeks miss.
  EXPECT_GE(full_seeks_uncached, static_cast<uint64_t>(full_seeks / 2));
  EXPECT_LE(full_seeks_fetched, 5u);
  // Scan batches (Caching::kKeep) in the second half, which only the seeks above read: each
  // keeps its basement unless it is cached already (the first reads kept some).
  const uint64_t fetched_at_scan = stats.basements_fetched.load();
  const uint64_t uncached_at_scan = stats.basements_read_uncached.load();
  for (int t = 0; t < 10; ++t) {
    const int i = kRows - 50 - 293 * t;
    ASSERT_TRUE(
        tree->ReadBatch(FractalTree::Locate::kAtOrAfter, testing::NumberedKey(i), 4, &batch).ok());
    EXPECT_EQ(batch.value(0), ValueOf(i));
  }
  EXPECT_EQ(stats.basements_read_uncached.load(), uncached_at_scan);
  EXPECT_GE(stats.basements_fetched.load(), fetched_at_scan + 5);

  // Transient reads parse only the rows they need: every batch and get agrees with the
  // same read of the cached basement, bounds included.
  int transient_reads = 0;
  for (int k = 0; k < 300; ++k) {
    const int i = (k * 89 + 5) % kRows;
    const std::string key = k % 3 == 0 ? testing::NumberedKey(i) + "~"
                                       : testing::NumberedKey(i);  // "~": between two rows
    const size_t max_rows = size_t{1} << (k % 11);
    if (ExpectTransientBatchLikeCached(tree, key, max_rows)) transient_reads++;
    const std::string absent = testing::NumberedKey((k * 131 + 17) % kRows) + "~";
    EXPECT_TRUE(tree->Get(absent, &value).IsNotFound()) << absent;
  }
  EXPECT_GT(transient_reads, 150);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
  EXPECT_EQ(cache.size_bytes(), 0u);
}

// Basements above 1.5 x kLeafChunkBytes are stored in chunks, and a point read or seek that
// misses the cache decodes only the chunks it needs: every transient batch and get agrees
// with the same read of the cached basement, bounds included, for keys anywhere in a basement
// and batches of any size, and a transient get decodes a fraction of its basement.
TEST(TreeEvictionTest, TransientReadsOfChunkedBasementsAgreeWithCachedReads) {
  testing::ScratchDir dir;
  constexpr int kRows = 20000;  // ~110 basements of 16 KiB, eight chunks each
  constexpr size_t kBudget = size_t{256} << 10;
  AdmittedTree t(/*window=*/4, kBudget);
  ASSERT_NO_FATAL_FAILURE(
      OpenAdmittedTree(dir.Sub("t.ft"), Config(Compression::kZstd, 1 << 20, 16 << 10), kRows, &t));
  Cachetable& cache = t.cache;
  FractalTree* tree = t.tree.get();
  const TreeStats& stats = tree->stats();
  std::string value;
  // A read keeps what it reads while the basement fits in the budget (evictions make room
  // now and then): refill the cache to within half a basement of the budget before each read
  // meant to be transient.
  int filler = 0;
  auto fill = [&] {
    for (int n = 0; cache.size_bytes() + (8 << 10) < kBudget && n < 1000; ++n) {
      ASSERT_TRUE(
          tree->Get(testing::NumberedKey(static_cast<int>((filler++ * int64_t{7919}) % kRows)),
                    &value)
              .ok());
    }
  };
  ASSERT_NO_FATAL_FAILURE(fill());

  int transient_reads = 0;
  int transient_gets = 0;
  uint64_t transient_get_bytes = 0;
  for (int k = 0; k < 400; ++k) {
    const int i = (k * 89 + 5) % kRows;
    const std::string key = k % 3 == 0 ? testing::NumberedKey(i) + "~"
                                       : testing::NumberedKey(i);  // "~": between two rows
    const size_t max_rows = size_t{1} << (k % 10);
    ASSERT_NO_FATAL_FAILURE(fill());
    if (ExpectTransientBatchLikeCached(tree, key, max_rows)) transient_reads++;

    // A get of a row in another basement, and of a key between two rows.
    const int j = (k * 131 + 17) % kRows;
    ASSERT_NO_FATAL_FAILURE(fill());
    const uint64_t uncached = stats.basements_read_uncached.load();
    const uint64_t decoded = stats.raw_bytes_decompressed.load();
    ASSERT_TRUE(tree->Get(testing::NumberedKey(j), &value).ok()) << testing::NumberedKey(j);
    EXPECT_EQ(value, ValueOf(j));
    if (stats.basements_read_uncached.load() != uncached) {
      transient_gets++;
      transient_get_bytes += stats.raw_bytes_decompressed.load() - decoded;
    }
    EXPECT_TRUE(tree->Get(testing::NumberedKey(j) + "~", &value).IsNotFound());
  }
  EXPECT_GT(transient_reads, 100);
  ASSERT_GT(transient_gets, 100);
  // Reads that came back to a basement read only its chunks they needed, and agreed all the
  // same.
  EXPECT_GT(stats.chunk_index_reads.load(), 50u);
  // About one chunk (2 KiB) of a 16 KiB basement per get: under a quarter of it.
  EXPECT_LT(transient_get_bytes / transient_gets, size_t{4} << 10);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
  EXPECT_EQ(cache.size_bytes(), 0u);
}

// After every leaf is rewritten (new frames for every partition), reads that miss agree with
// the new rows, go through chunk indexes of the new frames again, and the cache's accounting
// comes back to zero. (A leaf that stays cached through its write keeps indexes of its old
// frames until a read replaces them; the db tests' loads and memory tests take that path.)
TEST(TreeEvictionTest, ChunkIndexesFollowRewrittenLeavesAndAreAccounted) {
  testing::ScratchDir dir;
  constexpr int kRows = 20000;
  AdmittedTree t(/*window=*/4, /*budget=*/size_t{256} << 10);
  ASSERT_NO_FATAL_FAILURE(
      OpenAdmittedTree(dir.Sub("t.ft"), Config(Compression::kZstd, 64 << 10, 16 << 10), kRows, &t));
  FractalTree* tree = t.tree.get();
  const TreeStats& stats = tree->stats();
  std::string value;
  auto read_rounds = [&](int rounds, int version) {
    for (int round = 0; round < rounds; ++round) {
      for (int i = 0; i < kRows; i += 97) {
        ASSERT_TRUE(tree->Get(testing::NumberedKey(i), &value).ok()) << testing::NumberedKey(i);
        ASSERT_EQ(value, version == 0 ? ValueOf(i) : ValueOf(i) + "+") << testing::NumberedKey(i);
      }
    }
  };
  ASSERT_NO_FATAL_FAILURE(read_rounds(3, 0));
  const uint64_t before = stats.chunk_index_reads.load();
  ASSERT_GT(before, 20u);
  // New values for the rows read, pushed into the leaves and written: every leaf a new frame.
  for (int i = 0; i < kRows; i += 97)
    ASSERT_TRUE(tree->Put(testing::NumberedKey(i), ValueOf(i) + "+").ok());
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Checkpoint().ok());
  ASSERT_NO_FATAL_FAILURE(read_rounds(3, 1));
  EXPECT_GT(stats.chunk_index_reads.load(), before);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
  EXPECT_EQ(t.cache.size_bytes(), 0u);
}

// Once the file's bytes change under a tree whose reads go to disk, and whose partitions
// keep chunk indexes from earlier reads, every read returns its row's value (from what the
// cache holds) or Corruption, never another value. (Whether a given read goes through an
// index then depends on which leaves the evictor kept; LeafFrameTest checks that reads
// through an index check every chunk they decode.)
TEST(TreeEvictionTest, ReadsOfChangedBytesAreCorruptionWithChunkIndexesKept) {
  testing::ScratchDir dir;
  constexpr int kRows = 20000;  // ~110 basements of 16 KiB, eight chunks each
  AdmittedTree t(/*window=*/4, /*budget=*/size_t{256} << 10);
  const std::string path = dir.Sub("t.ft");
  ASSERT_NO_FATAL_FAILURE(
      OpenAdmittedTree(path, Config(Compression::kZstd, 1 << 20, 16 << 10), kRows, &t));
  FractalTree* tree = t.tree.get();
  const TreeStats& stats = tree->stats();
  std::string value;
  // Rounds over keys 97 apart: a basement comes back after the admission window forgot it,
  // so its later misses read through its index.
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kRows; i += 97) {
      ASSERT_TRUE(tree->Get(testing::NumberedKey(i), &value).ok()) << testing::NumberedKey(i);
      ASSERT_EQ(value, ValueOf(i));
    }
  }
  const uint64_t indexed = stats.chunk_index_reads.load();
  ASSERT_GT(indexed, 20u);

  // Change every byte past the file's two header slots (the cache still holds the nodes it
  // read; every basement it does not hold is read from these bytes).
  {
    std::FILE* f = std::fopen(path.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, 0, SEEK_END);
    const long size = std::ftell(f);
    std::vector<char> bytes(static_cast<size_t>(size - 8192));
    std::fseek(f, 8192, SEEK_SET);
    ASSERT_EQ(std::fread(bytes.data(), 1, bytes.size(), f), bytes.size());
    for (char& c : bytes) c = static_cast<char>(c ^ 0x5a);
    std::fseek(f, 8192, SEEK_SET);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    ASSERT_EQ(std::fclose(f), 0);
  }
  int corrupt = 0;
  for (int i = 0; i < kRows; i += 97) {
    Status s = tree->Get(testing::NumberedKey(i), &value);
    if (s.ok()) {
      ASSERT_EQ(value, ValueOf(i)) << testing::NumberedKey(i);
    } else {
      ASSERT_TRUE(s.IsCorruption()) << testing::NumberedKey(i) << " " << s.ToString();
      corrupt++;
    }
  }
  EXPECT_GT(corrupt, 100);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
}

// With a basement pool, partial eviction hands evicted basements to it and misses decode
// into them: every read still returns its row's own value, and the cache's accounting
// comes back to zero. With basements in chunk memory (TreeConfig::chunk_memory) and
// without.
class TreeEvictionPoolTest : public ::testing::TestWithParam<bool> {};

TEST_P(TreeEvictionPoolTest, MissesDecodeIntoBasementsPartialEvictionRecycled) {
  testing::ScratchDir dir;
  BasementPool pool(size_t{256} << 10, size_t{64} << 10);
  TreeConfig config = Config(Compression::kZstd, 256 << 10, 2 << 10);
  config.basement_pool = &pool;
  config.chunk_memory = GetParam();
  const std::string path = dir.Sub("t.ft");
  constexpr int kRows = 20000;
  ASSERT_NO_FATAL_FAILURE(BuildTree(path, config, kRows));
  Cachetable cache(size_t{500} << 10);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Open(path, config, &cache, &tree).ok());
  std::string value;
  for (int n = 0; n < 5000; ++n) {
    const int i = (n * 7919) % kRows;
    ASSERT_TRUE(tree->Get(testing::NumberedKey(i), &value).ok());
    ASSERT_EQ(value, ValueOf(i)) << testing::NumberedKey(i);
  }
  EXPECT_GT(cache.stats().partial_evictions, 50u);
  EXPECT_GT(tree->stats().basements_fetched.load(), 2000u);
  EXPECT_GT(pool.reused(), 1000u);  // most misses reused an evicted basement's memory
  EXPECT_LE(pool.held_bytes(), size_t{256} << 10);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
  EXPECT_EQ(cache.size_bytes(), 0u);
}

INSTANTIATE_TEST_SUITE_P(ChunkMemory, TreeEvictionPoolTest, ::testing::Bool());

// A tree of `rows` rows built with `config`, then opened on a cache of `cache_bytes`.
struct BuiltTree {
  testing::ScratchDir dir;
  std::unique_ptr<Cachetable> cache;  // declared before the tree: destroyed after it
  std::unique_ptr<FractalTree> tree;
};

void OpenBuiltTree(const TreeConfig& config, int rows, size_t cache_bytes, BuiltTree* t) {
  const std::string path = t->dir.Sub("t.ft");
  ASSERT_NO_FATAL_FAILURE(BuildTree(path, config, rows));
  t->cache = std::make_unique<Cachetable>(cache_bytes);
  ASSERT_TRUE(FractalTree::Open(path, config, t->cache.get(), &t->tree).ok());
}

// TreeConfig::chunk_memory_for_basement_loads alone: a basement a read loads on its own
// lands in chunk memory (where the system offers huge pages), and leaving the cache gives
// the slot back.
TEST(TreeEvictionTest, BasementLoadsAloneGoToChunkMemory) {
  if (!chunk_memory::Enabled()) GTEST_SKIP() << "no transparent huge pages here";
  TreeConfig config = Config(Compression::kZstd, 256 << 10, 2 << 10);
  config.chunk_memory = false;
  config.chunk_memory_for_basement_loads = true;
  constexpr int kRows = 5000;
  BuiltTree built;
  ASSERT_NO_FATAL_FAILURE(OpenBuiltTree(config, kRows, size_t{64} << 20, &built));
  FractalTree* tree = built.tree.get();
  const size_t before = chunk_memory::GetStats().slot_bytes;
  std::string value;
  for (int i = 0; i < kRows; i += 97) {
    ASSERT_TRUE(tree->Get(testing::NumberedKey(i), &value).ok());
    ASSERT_EQ(value, ValueOf(i));
  }
  const uint64_t loaded = tree->stats().basements_fetched.load();
  EXPECT_GT(loaded, 10u);
  // Each loaded basement (2 KiB ones here) holds its rows in a slot of at least 512 bytes.
  EXPECT_GE(chunk_memory::GetStats().slot_bytes, before + loaded * 512);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
  EXPECT_EQ(chunk_memory::GetStats().slot_bytes, before);
}

// TreeConfig::chunk_memory: what a tree reads goes to chunk memory only while the cache
// is less than half full; past that, its basements come from operator new.
TEST(TreeEvictionTest, ReadsUseChunkMemoryOnlyWhileTheCacheIsLessThanHalfFull) {
  if (!chunk_memory::Enabled()) GTEST_SKIP() << "chunk memory is off in this build";
  TreeConfig config = Config(Compression::kZstd, 256 << 10, 2 << 10);
  config.chunk_memory = true;
  constexpr int kRows = 20000;
  BuiltTree built;
  ASSERT_NO_FATAL_FAILURE(OpenBuiltTree(config, kRows, size_t{2} << 20, &built));
  FractalTree* tree = built.tree.get();
  const Cachetable& cache = *built.cache;
  const size_t before = chunk_memory::GetStats().slot_bytes;
  std::string value;
  int i = 0;
  for (; i < kRows && cache.size_bytes() < cache.budget() / 4; i += 7) {
    ASSERT_TRUE(tree->Get(testing::NumberedKey(i), &value).ok());
    ASSERT_EQ(value, ValueOf(i));
  }
  ASSERT_GE(cache.size_bytes(), cache.budget() / 4) << "the reads never filled a quarter";
  EXPECT_GT(chunk_memory::GetStats().slot_bytes, before);  // the cold reads went to chunks
  for (; i < kRows && cache.size_bytes() < cache.budget() / 2 + (size_t{256} << 10); i += 7) {
    ASSERT_TRUE(tree->Get(testing::NumberedKey(i), &value).ok());
  }
  ASSERT_GE(cache.size_bytes(), cache.budget() / 2) << "the reads never filled half";
  // From here on (the cache stays past half full as it churns), nothing more goes to chunks.
  const size_t at_half = chunk_memory::GetStats().slot_bytes;
  const uint64_t fetched = tree->stats().basements_fetched.load();
  for (int k = 0; k < 3000; ++k) {
    const int row = (k * 7919) % kRows;
    ASSERT_TRUE(tree->Get(testing::NumberedKey(row), &value).ok());
    ASSERT_EQ(value, ValueOf(row));
  }
  EXPECT_GT(tree->stats().basements_fetched.load(), fetched + 100);
  EXPECT_LE(chunk_memory::GetStats().slot_bytes, at_half);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
  EXPECT_EQ(chunk_memory::GetStats().slot_bytes, before);
}

}  // namespace
}  // namespace fern
