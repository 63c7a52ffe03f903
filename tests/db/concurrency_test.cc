// Many threads on one table: puts, deletes, gets and scans on overlapping keys while a
// checkpoint runs every 100 ms. Every result is checked against what the threads wrote.
// Keys below kOwnedKeys belong to one thread (key % threads), which alone writes them and
// must read back exactly its last write; all threads write and delete the keys above, which
// may hold any value some thread wrote for that key, never anything else.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

constexpr int kThreads = 4;
constexpr int kKeys = 3000;
constexpr int kOwnedKeys = 2000;

std::string KeyOf(int k) { return "key" + std::to_string(100000 + k); }
std::string ValueOf(int k, int thread, uint64_t seq) {
  return KeyOf(k) + "|" + std::to_string(thread) + "|" + std::to_string(seq) +
         std::string(static_cast<size_t>(seq % 50), 'p');
}
// A value is valid for key k if it names k (written by some thread for k).
bool ValidFor(std::string_view value, int k) {
  std::string prefix = KeyOf(k) + "|";
  return value.substr(0, prefix.size()) == prefix;
}

// No fsync, no periodic checkpoint, `cache_bytes` of cache.
Options SmallCacheOptions(size_t cache_bytes) {
  Options options;
  options.sync_commits = false;
  options.cache_bytes = cache_bytes;
  options.checkpoint_period_ms = 0;
  return options;
}

// Opens an Env in `dir` (SmallCacheOptions) and table `name` with small trees in it.
void OpenSmallTable(const testing::ScratchDir& dir, size_t cache_bytes, const std::string& name,
                    std::unique_ptr<Env>* env, Table** table) {
  ASSERT_TRUE(Env::Open(dir.path(), SmallCacheOptions(cache_bytes), env).ok());
  ASSERT_TRUE((*env)->OpenTable(name, testing::SmallTreeOptions(), table).ok());
}

TEST(ConcurrencyTest, ThreadsMixWritesReadsScansAndCheckpoints) {
  testing::ScratchDir dir;
  const Options options = SmallCacheOptions(size_t{4} << 20);
  const TableOptions table_options = testing::SmallTreeOptions();
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("shared", table_options, &table).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  auto fail = [&](const std::string& what) {
    if (failures.fetch_add(1) < 10) ADD_FAILURE() << what;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(1000 + t);
      std::map<int, std::string> mine;  // owned keys: exact expected state
      uint64_t seq = 0;
      while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
        int k = static_cast<int>(rng() % kKeys);
        bool shared = k >= kOwnedKeys;
        bool owned = !shared && k % kThreads == t;
        int dice = static_cast<int>(rng() % 100);
        if (dice < 45 && (owned || shared)) {
          std::string value = ValueOf(k, t, ++seq);
          if (!table->Put(nullptr, KeyOf(k), value).ok()) fail("put failed");
          if (owned) mine[k] = value;
        } else if (dice < 55 && (owned || shared)) {
          if (!table->Delete(nullptr, KeyOf(k)).ok()) fail("delete failed");
          mine.erase(k);
        } else if (dice < 97) {
          std::string value;
          Status s = table->Get(nullptr, KeyOf(k), &value);
          if (owned) {
            auto it = mine.find(k);
            if (it == mine.end() ? !s.IsNotFound() : (!s.ok() || value != it->second)) {
              fail("owned key " + KeyOf(k) + " read back wrong: " + s.ToString());
            }
          } else if (!s.ok() && !s.IsNotFound()) {
            fail("get failed: " + s.ToString());
          } else if (s.ok() && !ValidFor(value, k)) {
            fail("key " + KeyOf(k) + " holds a value written for another key");
          }
        } else {
          // A short scan from a random key: ordered, and every value valid for its key.
          auto cursor = table->NewCursor(nullptr);
          std::string previous;
          int steps = 0;
          for (cursor->Seek(KeyOf(k)); cursor->Valid() && steps < 200; cursor->Next(), ++steps) {
            std::string key(cursor->key());
            if (!previous.empty() && key <= previous) fail("scan out of order");
            int scanned = std::stoi(key.substr(3)) - 100000;
            if (!ValidFor(cursor->value(), scanned)) fail("scan found a foreign value at " + key);
            if (scanned < kOwnedKeys && scanned % kThreads == t) {
              auto it = mine.find(scanned);
              if (it == mine.end() || it->second != cursor->value()) {
                fail("scan disagrees with owner's writes at " + key);
              }
            }
            previous = key;
          }
          if (!cursor->status().ok()) fail("scan failed: " + cursor->status().ToString());
        }
      }
    });
  }
  std::thread checkpointer([&] {
    while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      Status s = env->Checkpoint();
      if (!s.ok()) fail("checkpoint failed: " + s.ToString());
    }
  });
  for (std::thread& thread : threads) thread.join();
  stop = true;
  checkpointer.join();
  EXPECT_EQ(failures.load(), 0);

  // Reopen: the same rows, in order.
  std::map<std::string, std::string> before;
  auto cursor = table->NewCursor(nullptr);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    before.emplace(std::string(cursor->key()), std::string(cursor->value()));
  }
  cursor.reset();
  env.reset();
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  ASSERT_TRUE(env->OpenTable("shared", table_options, &table).ok());
  std::map<std::string, std::string> after;
  cursor = table->NewCursor(nullptr);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    after.emplace(std::string(cursor->key()), std::string(cursor->value()));
  }
  EXPECT_EQ(before, after);
}

// Data several times the cache, read by gets and seeks while a writer overwrites rows:
// once the cache is full most point reads decode a transient copy of their basement
// (BasementAdmission), and every read still finds its key with a value written for it.
TEST(ConcurrencyTest, PointReadsBeyondTheCacheRaceOverwrites) {
  testing::ScratchDir dir;
  std::unique_ptr<Env> env;
  Table* table;
  ASSERT_NO_FATAL_FAILURE(OpenSmallTable(dir, size_t{1} << 20, "big", &env, &table));
  constexpr int kRows = 40000;  // ~5 MB of rows
  for (int k = 0; k < kRows; ++k) {
    ASSERT_TRUE(table->Put(nullptr, KeyOf(k), ValueOf(k, 0, static_cast<uint64_t>(k))).ok());
  }
  ASSERT_TRUE(env->Checkpoint().ok());

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  auto fail = [&](const std::string& what) {
    if (failures.fetch_add(1) < 10) ADD_FAILURE() << what;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(77 + t);
      while (!stop.load()) {
        const int k = static_cast<int>(rng() % kRows);
        if (rng() % 2 == 0) {
          std::string value;
          Status s = table->Get(nullptr, KeyOf(k), &value);
          if (!s.ok())
            fail("get " + KeyOf(k) + ": " + s.ToString());
          else if (!ValidFor(value, k))
            fail("key " + KeyOf(k) + " read a foreign value");
          continue;
        }
        auto cursor = table->NewCursor(nullptr);
        cursor->Seek(KeyOf(k));
        for (int step = 0; step < 10 && k + step < kRows; ++step, cursor->Next()) {
          if (!cursor->Valid()) {
            fail("seek to " + KeyOf(k) + " ended early: " + cursor->status().ToString());
            break;
          }
          if (cursor->key() != KeyOf(k + step)) fail("seek to " + KeyOf(k) + " skipped a row");
          if (!ValidFor(cursor->value(), k + step)) fail("seek found a foreign value");
        }
      }
    });
  }
  std::thread writer([&] {
    std::mt19937_64 rng(5);
    for (uint64_t seq = 1; seq <= 20000; ++seq) {
      const int k = static_cast<int>(rng() % kRows);
      if (!table->Put(nullptr, KeyOf(k), ValueOf(k, 1, seq)).ok()) fail("put failed");
    }
  });
  writer.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  std::string stats;
  ASSERT_TRUE(env->GetProperty("fern.stats", &stats));
  const std::string name = "table.big.basements_read_uncached: ";
  const size_t at = stats.find(name);
  ASSERT_NE(at, std::string::npos);
  EXPECT_GT(std::stoull(stats.substr(at + name.size())), 100u)
      << "few reads took the transient path";
}

// Cursors opened on one thread and sought, stepped and destroyed on another (a thread
// keeps a destroyed cursor's row batch for its next cursor: a batch may move between
// threads with its cursor), many small ones and some that scan far, while a writer
// overwrites the keys. Every row a cursor returns names its key, in ascending order.
TEST(ConcurrencyTest, CursorsHandedBetweenThreadsReadRightAndRecycleTheirBatches) {
  testing::ScratchDir dir;
  std::unique_ptr<Env> env;
  Table* table;
  ASSERT_NO_FATAL_FAILURE(OpenSmallTable(dir, size_t{8} << 20, "t", &env, &table));
  for (int k = 0; k < kKeys; ++k) ASSERT_TRUE(table->Put(nullptr, KeyOf(k), ValueOf(k, 0, 0)).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  auto fail = [&](const std::string& what) {
    if (failures.fetch_add(1) < 10) ADD_FAILURE() << what;
  };
  // One slot per pair of threads: the opener fills it, the user empties it.
  constexpr int kPairs = 2;
  std::mutex mu;
  std::vector<std::unique_ptr<Cursor>> handed[kPairs];
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    std::mt19937 rng(3);
    for (uint64_t seq = 1; !stop.load(); ++seq) {
      const int k = static_cast<int>(rng() % kKeys);
      if (!table->Put(nullptr, KeyOf(k), ValueOf(k, 1, seq)).ok()) fail("put failed");
    }
  });
  for (int pair = 0; pair < kPairs; ++pair) {
    threads.emplace_back([&, pair] {  // opens cursors
      while (!stop.load()) {
        std::unique_ptr<Cursor> cursor = table->NewCursor(nullptr);
        std::lock_guard<std::mutex> lock(mu);
        if (handed[pair].size() < 64) handed[pair].push_back(std::move(cursor));
      }
    });
    threads.emplace_back([&, pair] {  // uses and destroys them
      std::mt19937 rng(100 + pair);
      while (!stop.load()) {
        std::unique_ptr<Cursor> cursor;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (!handed[pair].empty()) {
            cursor = std::move(handed[pair].back());
            handed[pair].pop_back();
          }
        }
        if (cursor == nullptr) {
          std::this_thread::yield();
          continue;
        }
        const int from = static_cast<int>(rng() % kKeys);
        const int steps = rng() % 8 == 0 ? 400 : 10;
        cursor->Seek(KeyOf(from));
        std::string previous;
        for (int step = 0; step <= steps && cursor->Valid(); ++step) {
          const std::string key(cursor->key());
          const int k = std::stoi(key.substr(3)) - 100000;
          if (!previous.empty() && key <= previous) fail("keys out of order at " + key);
          if (step == 0 && k != from) fail("seek to " + KeyOf(from) + " landed on " + key);
          if (!ValidFor(cursor->value(), k)) fail("wrong value for " + key);
          previous = key;
          cursor->Next();
        }
        if (!cursor->status().ok()) fail(cursor->status().ToString());
      }  // the cursor goes here, on this thread
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  stop.store(true);
  for (std::thread& t : threads) t.join();
  for (auto& slot : handed) slot.clear();  // destroyed on this thread
  EXPECT_EQ(failures.load(), 0);
}

// API.md: several Envs (different directories) may live in one process. Three Envs with
// small caches, each written and read by two threads and checkpointed by a third, while a
// fourth Env is opened, written, closed and reopened over and over: every thread reads back
// exactly its own writes (each value names its Env), and each Env reopens with its rows.
TEST(ConcurrencyTest, SeveralEnvsInOneProcessWorkAtOnce) {
  constexpr int kEnvs = 3;
  constexpr int kWriters = 2;
  constexpr int kRows = 5000;  // per writer: with the values, about twice each cache
  testing::ScratchDir dir;
  const Options options = SmallCacheOptions(size_t{2} << 20);
  const TableOptions table_options = testing::SmallTreeOptions();
  std::vector<std::unique_ptr<Env>> envs(kEnvs);
  std::vector<Table*> tables(kEnvs);
  for (int e = 0; e < kEnvs; ++e) {
    ASSERT_TRUE(Env::Open(dir.Sub("env" + std::to_string(e)), options, &envs[e]).ok());
    ASSERT_TRUE(envs[e]->OpenTable("t", table_options, &tables[e]).ok());
  }
  auto value_of = [](int e, int w, int row, int round) {
    return "env" + std::to_string(e) + "|w" + std::to_string(w) + "|" + std::to_string(row) + "|" +
           std::to_string(round) + std::string(static_cast<size_t>(100 + row % 80), 'v');
  };
  auto key_of = [](int w, int row) { return "w" + std::to_string(w) + KeyOf(row); };

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  auto fail = [&](const std::string& what) {
    if (failures.fetch_add(1) < 10) ADD_FAILURE() << what;
  };
  std::vector<std::thread> threads;
  for (int e = 0; e < kEnvs; ++e) {
    for (int w = 0; w < kWriters; ++w) {
      threads.emplace_back([&, e, w] {
        std::mt19937_64 rng(e * 10 + w);
        std::vector<int> last(kRows, -1);  // the round each row was last written in
        for (int round = 0; round < 4; ++round) {
          for (int row = 0; row < kRows; ++row) {
            if (!tables[e]->Put(nullptr, key_of(w, row), value_of(e, w, row, round)).ok()) {
              fail("put failed");
            }
            last[row] = round;
            const int probe = static_cast<int>(rng() % (row + 1));
            std::string value;
            Status s = tables[e]->Get(nullptr, key_of(w, probe), &value);
            if (!s.ok() || value != value_of(e, w, probe, last[probe])) {
              fail("env" + std::to_string(e) + " read back " + value.substr(0, 24) + " (" +
                   s.ToString() + ") for " + key_of(w, probe));
            }
          }
        }
      });
    }
    threads.emplace_back([&, e] {
      while (!stop.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        Status s = envs[e]->Checkpoint();
        if (!s.ok()) fail("checkpoint failed: " + s.ToString());
      }
    });
  }
  std::thread churner([&] {
    const std::string path = dir.Sub("churn");
    for (int round = 0; !stop.load(); ++round) {
      std::unique_ptr<Env> env;
      Table* table;
      if (!Env::Open(path, options, &env).ok() ||
          !env->OpenTable("t", table_options, &table).ok()) {
        fail("churn open failed");
        return;
      }
      std::string value;
      Status s = table->Get(nullptr, "round", &value);
      if (round > 0 && (!s.ok() || value != std::to_string(round - 1))) {
        fail("churn Env lost its last round: " + s.ToString());
      }
      if (!table->Put(nullptr, "round", std::to_string(round)).ok()) fail("churn put failed");
    }
  });
  for (size_t i = 0; i < threads.size(); ++i) {
    if (i % (kWriters + 1) != kWriters) threads[i].join();  // the writers
  }
  stop = true;
  for (size_t i = 0; i < threads.size(); ++i) {
    if (threads[i].joinable()) threads[i].join();
  }
  churner.join();
  EXPECT_EQ(failures.load(), 0);

  for (int e = 0; e < kEnvs; ++e) {
    envs[e].reset();
    ASSERT_TRUE(Env::Open(dir.Sub("env" + std::to_string(e)), options, &envs[e]).ok());
    ASSERT_TRUE(envs[e]->OpenTable("t", table_options, &tables[e]).ok());
    int rows = 0;
    auto cursor = tables[e]->NewCursor(nullptr);
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next(), ++rows) {
      const std::string key(cursor->key());
      const int w = key[1] - '0';
      const int row = std::stoi(key.substr(5)) - 100000;
      EXPECT_EQ(cursor->value(), value_of(e, w, row, 3)) << "env" << e << " " << key;
    }
    EXPECT_TRUE(cursor->status().ok()) << cursor->status().ToString();
    EXPECT_EQ(rows, kWriters * kRows) << "env" << e;
  }
}

}  // namespace
}  // namespace fern
