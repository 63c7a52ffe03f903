// A table written with a big cache and read with a small one. While the cache is big, the
// nodes above the leaves buffer up to their share of it; reopened with a cache too small
// for those buffers, every read that passes a node needed it whole, so the evictor froze
// (compressed) its buffers and the next read thawed them again: fernbench's readrandom
// over a table written at 256 MiB and read at 64 MiB ran at 21k gets/s instead of ~150k.
// The evictor now has a node over its share of this cache flushed down to it
// (FractalTree::PartialEvict), after which the nodes fit and reads stop fetching them.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

constexpr int kRows = 300'000;

std::string Key(int i) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%016d", i);
  return buffer;
}

std::string Value(int i) { return std::string(100, static_cast<char>('a' + i % 26)); }

int64_t Stat(Env* env, const std::string& name) {
  std::string stats;
  EXPECT_TRUE(env->GetProperty("fern.stats", &stats));
  return testing::StatValue(stats, name);
}

TEST(SmallerCacheTest, BuffersWrittenForABigCacheAreFlushedToTheSmallOnesShare) {
  testing::ScratchDir dir;
  Options options;
  options.sync_commits = false;
  options.cache_bytes = size_t{64} << 20;
  {
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    for (int j = 0; j < kRows; ++j) {
      const int i = static_cast<int>((uint64_t{2654435761} * j + 12345) % kRows);
      ASSERT_TRUE(table->Put(nullptr, Key(i), Value(i)).ok());
    }
  }
  options.cache_bytes = size_t{4} << 20;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  // Reads, in rounds of 5,000 gets, until a round fetches few internal nodes: while the
  // nodes did not fit, every other get fetched one.
  int64_t fetched_in_round = 0;
  int key = 0;
  for (int round = 0; round < 60; ++round) {
    const int64_t before = Stat(env.get(), "table.t.internal_nodes_read");
    for (int g = 0; g < 5'000; ++g) {
      key = static_cast<int>((uint64_t{2654435761} * (key + 7) + 1) % kRows);
      std::string value;
      ASSERT_TRUE(table->Get(nullptr, Key(key), &value).ok()) << key;
      ASSERT_EQ(value, Value(key)) << key;
    }
    fetched_in_round = Stat(env.get(), "table.t.internal_nodes_read") - before;
    if (fetched_in_round < 50) break;
  }
  EXPECT_LT(fetched_in_round, 50);
  // The evictor had the nodes flushed (before, only the cleaner's one flush a second
  // brought them down, after ~35 rounds of thrashing, or a scan made them dirty).
  // The flushes run on the flusher pool: wait for the first (up to 20 s).
  for (int wait = 0; wait < 2'000 && Stat(env.get(), "table.t.kept_flushes") == 0; ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(Stat(env.get(), "table.t.kept_flushes"), 0);
  // Every row is still there after the flushes, and a scan fetches no internal node again.
  const int64_t internal_before_scan = Stat(env.get(), "table.t.internal_nodes_read");
  std::unique_ptr<Cursor> cursor = table->NewCursor(nullptr);
  int count = 0;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    ASSERT_EQ(cursor->key(), Key(count));
    ASSERT_EQ(cursor->value(), Value(count));
    ++count;
  }
  ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  EXPECT_EQ(count, kRows);
  EXPECT_LT(Stat(env.get(), "table.t.internal_nodes_read") - internal_before_scan, 50);
}

}  // namespace
}  // namespace fern
