// Node-level concurrency of one FractalTree: writers, readers, scans (keeping and streaming
// what they read), background flushes, the cleaner and checkpoints all at once on a tree
// small enough to split, merge and change height while they run. Every result is checked
// against what the writers wrote.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cachetable/cachetable.h"
#include "ft/buffer_budget.h"
#include "ft/row_batch.h"
#include "ft/tree.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "util/thread_pool.h"

namespace fern {
namespace {

constexpr int kWriters = 4;
constexpr int kKeysPerWriter = 3000;

std::string Key(int writer, int i) {
  char buf[24];
  // Interleaved so that every writer touches every leaf.
  std::snprintf(buf, sizeof(buf), "k%06d", i * kWriters + writer);
  return buf;
}

// A value names its key and a version, so a reader can tell a torn or misplaced row.
std::string Value(const std::string& key, int version) {
  return key + "/v" + std::to_string(version) + std::string(40, 'x');
}

bool WellFormed(std::string_view key, std::string_view value) {
  return value.size() > key.size() + 2 && value.substr(0, key.size()) == key &&
         value.substr(key.size(), 2) == "/v";
}

TreeConfig SmallTree(ThreadPool* flushers) {
  TreeConfig config;
  config.comparator = BytewiseComparator();
  config.compression = Compression::kSnappy;
  config.node_bytes = 16 << 10;  // many small nodes: splits, merges, root splits
  config.basement_bytes = 2 << 10;
  config.fanout = 6;
  config.flusher_pool = flushers;
  return config;
}

// Scans the whole tree batch by batch, as a cursor does (streaming what is not cached, as a
// long scan does, with kStream, and then with basements decoded ahead on the tree's
// readahead pool, if it has one); returns false on an unordered or malformed row.
bool ScanIsOrderedAndWellFormed(FractalTree* tree, size_t* rows,
                                FractalTree::Caching caching = FractalTree::Caching::kKeep) {
  RowBatch batch;
  std::string from;
  bool first = true;
  std::string last;
  *rows = 0;
  std::shared_ptr<StreamAhead> ahead;
  if (caching == FractalTree::Caching::kStream) {
    ahead = tree->NewStreamAhead();
  }
  for (;;) {
    Status s =
        tree->ReadBatch(first ? FractalTree::Locate::kFirst : FractalTree::Locate::kAtOrAfter, from,
                        64, &batch, nullptr, caching, first ? nullptr : ahead.get());
    if (!s.ok()) return false;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!WellFormed(batch.key(i), batch.value(i))) return false;
      if (!last.empty() && batch.key(i) <= last) return false;
      last.assign(batch.key(i));
      ++*rows;
    }
    if (!batch.has_upper) return true;
    from.assign(batch.upper);
    if (ahead != nullptr) tree->StreamAheadFrom(ahead, from);
    first = false;
  }
}

TEST(TreeConcurrencyTest, WritersReadersScansFlushesAndCheckpointsAgree) {
  testing::ScratchDir dir;
  const std::string path = dir.Sub("t.ft");
  ThreadPool flushers(2);
  CachetableOptions cache_options;
  cache_options.budget_bytes = size_t{512} << 10;  // eviction all along
  cache_options.cleaner_period_ms = 5;
  Cachetable cache(cache_options);
  // Height-1 buffers may grow past node_bytes while the cache is full, and go back to it as
  // the tree gains height-1 nodes: their limit moves under the writers and flushers.
  BufferBudget budget(size_t{128} << 10, size_t{256} << 10);
  TreeConfig config = SmallTree(&flushers);
  config.buffer_budget = &budget;
  ThreadPool readahead(1);
  config.readahead_pool = &readahead;
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Create(path, config, &cache, &tree).ok());

  // Each writer owns its keys; the final version of each key is known to its writer.
  std::vector<std::vector<int>> final_version(kWriters, std::vector<int>(kKeysPerWriter, -1));
  std::atomic<int> writers_left{kWriters};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      std::vector<int>& versions = final_version[w];
      for (int round = 0; round < 3; ++round) {
        for (int j = 0; j < kKeysPerWriter; ++j) {
          const int i = (j * 7919 + round * 31) % kKeysPerWriter;
          const std::string key = Key(w, i);
          const int version = round * kKeysPerWriter + j;
          Status s;
          if ((i + round) % 5 == 4) {
            s = tree->Delete(key);
            versions[i] = -1;
          } else {
            s = tree->Put(key, Value(key, version));
            versions[i] = version;
          }
          if (!s.ok()) failures++;
          // Read-your-writes on a key nobody else writes.
          std::string got;
          s = tree->Get(key, &got);
          if (versions[i] < 0 ? !s.IsNotFound() : (!s.ok() || got != Value(key, versions[i]))) {
            failures++;
          }
        }
      }
      writers_left--;
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      int n = 0;
      while (writers_left.load() > 0) {
        const std::string key = Key(n % kWriters, (n * 131 + r) % kKeysPerWriter);
        std::string got;
        Status s = tree->Get(key, &got);
        if (!(s.IsNotFound() || (s.ok() && WellFormed(key, got)))) failures++;
        ++n;
      }
    });
  }
  threads.emplace_back([&] {
    for (int pass = 0; writers_left.load() > 0; ++pass) {
      size_t rows;
      const auto caching =
          pass % 2 == 0 ? FractalTree::Caching::kKeep : FractalTree::Caching::kStream;
      if (!ScanIsOrderedAndWellFormed(tree.get(), &rows, caching)) failures++;
    }
  });
  threads.emplace_back([&] {
    while (writers_left.load() > 0) {
      if (!tree->Checkpoint().ok()) failures++;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);

  auto check_all = [&](FractalTree* t) {
    size_t expected_rows = 0;
    for (int w = 0; w < kWriters; ++w) {
      for (int i = 0; i < kKeysPerWriter; ++i) {
        const std::string key = Key(w, i);
        std::string got;
        Status s = t->Get(key, &got);
        if (final_version[w][i] < 0) {
          EXPECT_TRUE(s.IsNotFound()) << key;
        } else {
          ++expected_rows;
          EXPECT_TRUE(s.ok()) << key << " " << s.ToString();
          EXPECT_EQ(got, Value(key, final_version[w][i]));
        }
      }
    }
    for (auto caching : {FractalTree::Caching::kKeep, FractalTree::Caching::kStream}) {
      size_t rows;
      EXPECT_TRUE(ScanIsOrderedAndWellFormed(t, &rows, caching));
      EXPECT_EQ(rows, expected_rows);
    }
  };
  check_all(tree.get());
  const TreeStats& stats = tree->stats();
  std::printf(
      "root splits %llu, leaf splits %llu, leaf merges %llu, background flushes %llu, "
      "cleaner flushes %llu, read restarts %llu\n",
      static_cast<unsigned long long>(stats.root_splits.load()),
      static_cast<unsigned long long>(stats.leaf_splits.load()),
      static_cast<unsigned long long>(stats.leaf_merges.load()),
      static_cast<unsigned long long>(stats.background_flushes.load()),
      static_cast<unsigned long long>(stats.cleaner_flushes.load()),
      static_cast<unsigned long long>(stats.read_restarts.load()));
  // The shapes the run was meant to exercise did occur.
  EXPECT_GT(stats.root_splits.load(), 0u);
  EXPECT_GT(stats.leaf_splits.load(), 0u);
  EXPECT_GT(stats.background_flushes.load() + stats.cleaner_flushes.load(), 0u);
  EXPECT_EQ(stats.flush_errors.load(), 0u);
  EXPECT_GT(stats.basements_streamed.load(), 0u);
  std::printf("basements streamed %llu, of them decoded ahead %llu\n",
              static_cast<unsigned long long>(stats.basements_streamed.load()),
              static_cast<unsigned long long>(stats.basements_streamed_ahead.load()));
  ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
  tree.reset();

  std::unique_ptr<FractalTree> reopened;
  ASSERT_TRUE(FractalTree::Open(path, SmallTree(nullptr), &cache, &reopened).ok());
  check_all(reopened.get());
  ASSERT_TRUE(reopened->Close(/*checkpoint=*/false).ok());
}

// A root that grows and shrinks a level keeps its block number: readers find it by that
// number without any tree-wide lock.
TEST(TreeConcurrencyTest, RootKeepsItsBlockAcrossSplitsAndCollapses) {
  testing::ScratchDir dir;
  Cachetable cache(size_t{64} << 20);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Create(dir.Sub("t.ft"), SmallTree(nullptr), &cache, &tree).ok());
  const BlockNum root = tree->file()->header().root;
  TreeShape shape;
  ASSERT_TRUE(tree->Shape(&shape).ok());
  ASSERT_EQ(shape.height, 1);
  for (int i = 0; i < 4000; ++i) ASSERT_TRUE(tree->Put(Key(0, i), Value(Key(0, i), 0)).ok());
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Shape(&shape).ok());
  EXPECT_GE(shape.height, 3);
  EXPECT_GT(tree->stats().root_splits.load(), 0u);
  ASSERT_TRUE(tree->Checkpoint().ok());
  EXPECT_EQ(tree->file()->header().root, root);
  for (int i = 0; i < 4000; ++i) ASSERT_TRUE(tree->Delete(Key(0, i)).ok());
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Optimize().ok());
  ASSERT_TRUE(tree->Shape(&shape).ok());
  EXPECT_LT(shape.height, 3);
  EXPECT_EQ(shape.rows, 0u);
  ASSERT_TRUE(tree->Put("a", "1").ok());
  std::string got;
  ASSERT_TRUE(tree->Get("a", &got).ok());
  EXPECT_EQ(got, "1");
  ASSERT_TRUE(tree->Checkpoint().ok());
  EXPECT_EQ(tree->file()->header().root, root);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
}

}  // namespace
}  // namespace fern

namespace fern {
namespace {

// Readahead loads basements on the pool while a scan and writers run; a tree closed with a
// readahead queued waits for it.
TEST(TreeConcurrencyTest, ReadAheadLoadsBasementsBesideScansAndWriters) {
  testing::ScratchDir dir;
  const std::string path = dir.Sub("t.ft");
  ThreadPool pool(2);
  TreeConfig config = SmallTree(nullptr);
  config.readahead_pool = &pool;
  {
    Cachetable cache(size_t{64} << 20);
    std::unique_ptr<FractalTree> tree;
    ASSERT_TRUE(FractalTree::Create(path, config, &cache, &tree).ok());
    for (int i = 0; i < kKeysPerWriter; ++i) {
      ASSERT_TRUE(tree->Put(Key(0, i), Value(Key(0, i), 0)).ok());
    }
    ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
  }
  Cachetable cache(size_t{64} << 20);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Open(path, config, &cache, &tree).ok());
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; !done.load(); i = (i + 1) % kKeysPerWriter) {
      ASSERT_TRUE(tree->Put(Key(0, i), Value(Key(0, i), 1)).ok());
    }
  });
  for (int pass = 0; pass < 5; ++pass) {
    // A scan that asks for readahead at every batch, as a cursor does.
    RowBatch batch;
    std::string from;
    size_t rows = 0;
    bool first = true;
    for (;;) {
      ASSERT_TRUE(
          tree->ReadBatch(first ? FractalTree::Locate::kFirst : FractalTree::Locate::kAtOrAfter,
                          from, 256, &batch)
              .ok());
      for (size_t i = 0; i < batch.size(); ++i)
        ASSERT_TRUE(WellFormed(batch.key(i), batch.value(i)));
      rows += batch.size();
      if (!batch.has_upper) break;
      from.assign(batch.upper);
      tree->ReadAhead(from);
      first = false;
    }
    EXPECT_EQ(rows, static_cast<size_t>(kKeysPerWriter));
  }
  done.store(true);
  writer.join();
  // On a loaded machine the scans may finish before the pool ran any readahead: ask until
  // one has run (each call is dropped while another is in flight).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (tree->stats().basements_read_ahead.load() == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    tree->ReadAhead(Key(0, 0));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GT(tree->stats().basements_read_ahead.load(), 0u);
  tree->ReadAhead(Key(0, 0));  // possibly still queued when Close runs
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
}

}  // namespace
}  // namespace fern
