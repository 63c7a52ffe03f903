// Old versions under long-lived snapshots: a key overwritten many times while an old
// snapshot is live keeps only the versions some reader needs (LeafEntryVersions::
// KeepVisible), not every version since the snapshot, and no reader's view changes.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fern/fern.h"
#include "ft/tree_inspector.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

using testing::ScratchDir;

std::string Value(int i) { return "value-" + std::to_string(i) + std::string(100, 'x'); }

std::string Get(Table* table, Txn* txn, const std::string& key) {
  return testing::ReadRow(table, txn, key);
}

std::string CursorValue(Cursor* cursor, const std::string& key) {
  cursor->Seek(key);
  if (!cursor->Valid() || cursor->key() != key) return "<none>";
  return std::string(cursor->value());
}

// The uncompressed bytes of every partition in the table's file (the only table of `dir`).
uint64_t RawTableBytes(const std::string& dir) {
  TreeReport report;
  InspectOptions options;
  options.verify = false;
  EXPECT_TRUE(InspectTreeFile(dir + "/table-1.ft", options, &report).ok());
  uint64_t raw = 0;
  for (const auto& [codec, usage] : report.codecs) raw += usage.raw_bytes;
  return raw;
}

// Opens the Env in `dir` (commits unsynced) and its table "t".
void OpenTableT(const std::string& dir, std::unique_ptr<Env>* env, Table** table) {
  Options options;
  options.sync_commits = false;
  ASSERT_TRUE(Env::Open(dir, options, env).ok());
  ASSERT_TRUE((*env)->OpenTable("t", TableOptions(), table).ok());
}

// Each test starts with a fresh Env (commits unsynced) and its table "t".
class SnapshotGcTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenTableT(dir.path(), &env, &table); }
  ScratchDir dir;
  std::unique_ptr<Env> env;
  Table* table = nullptr;
};

TEST_F(SnapshotGcTest, OverwritesUnderAnOldSnapshotKeepOnlyWhatReadersNeed) {
  ASSERT_TRUE(table->Put(nullptr, "hot", "orig").ok());

  std::unique_ptr<Cursor> oldest = table->NewCursor(nullptr);  // a snapshot taken now
  std::unique_ptr<Txn> middle;
  constexpr int kWrites = 4000;
  for (int i = 1; i <= kWrites; ++i) {
    if (i % 2 == 0) {
      ASSERT_TRUE(table->Put(nullptr, "hot", Value(i)).ok());
    } else {
      std::unique_ptr<Txn> txn;
      ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
      ASSERT_TRUE(table->Put(txn.get(), "hot", Value(i)).ok());
      ASSERT_TRUE(txn->Commit().ok());
    }
    if (i == kWrites / 2) {
      TxnOptions snapshot;
      snapshot.isolation = Isolation::kSnapshot;
      ASSERT_TRUE(env->Begin(snapshot, &middle).ok());
      ASSERT_EQ(Get(table, middle.get(), "hot"), Value(i));
    }
  }
  EXPECT_EQ(CursorValue(oldest.get(), "hot"), "orig");
  EXPECT_EQ(Get(table, middle.get(), "hot"), Value(kWrites / 2));
  EXPECT_EQ(Get(table, nullptr, "hot"), Value(kWrites));

  // Written out with both snapshots live: a handful of versions, where keeping every one
  // since the oldest snapshot would be ~4000 x 110 bytes.
  ASSERT_TRUE(env->Checkpoint().ok());
  EXPECT_LT(RawTableBytes(dir.path()), 16u << 10);

  // Once the snapshots end, the next write leaves one version.
  oldest.reset();
  ASSERT_TRUE(middle->Commit().ok());
  ASSERT_TRUE(table->Put(nullptr, "hot", "last").ok());
  EXPECT_EQ(Get(table, nullptr, "hot"), "last");
  env.reset();
  OpenTableT(dir.path(), &env, &table);
  EXPECT_EQ(Get(table, nullptr, "hot"), "last");
}

int64_t TableStat(Env* env, const std::string& name) {
  std::string stats;
  EXPECT_TRUE(env->GetProperty("fern.stats", &stats));
  return testing::StatValue(stats, name);
}

// A key overwritten thousands of times under live snapshots in a tree whose root has
// children: the writes wait in the root's buffer, where every read of the key meets them
// all. A reader that sees the newest write answers from it alone; one that must rebuild the
// row keeps only the versions some reader needs while it applies them (a read once copied
// every version at every message: seconds a read after a few thousand writes).
TEST_F(SnapshotGcTest, ReadsOfAKeyBufferedUnderSnapshotsKeepFewVersions) {
  for (int i = 0; i < 60000; ++i) {
    ASSERT_TRUE(table->Put(nullptr, "row" + std::to_string(100000 + i), Value(i)).ok());
  }
  ASSERT_TRUE(table->Put(nullptr, "hot", "orig").ok());
  ASSERT_GT(TableStat(env.get(), "table.t.root_splits"), 0) << "the root must have children";

  TxnOptions snapshot;
  snapshot.isolation = Isolation::kSnapshot;
  std::unique_ptr<Txn> oldest, middle;
  ASSERT_TRUE(env->Begin(snapshot, &oldest).ok());
  ASSERT_EQ(Get(table, oldest.get(), "hot"), "orig");
  constexpr int kWrites = 3000;
  for (int i = 1; i <= kWrites; ++i) {
    ASSERT_TRUE(table->Put(nullptr, "hot", Value(i)).ok());
    if (i == kWrites / 2) {
      ASSERT_TRUE(env->Begin(snapshot, &middle).ok());
      ASSERT_EQ(Get(table, middle.get(), "hot"), Value(i));
    }
  }
  ASSERT_GT(TableStat(env.get(), "table.t.messages_injected_depth0"), kWrites);

  const int64_t rebuilt = TableStat(env.get(), "table.t.rows_rebuilt_for_read");
  EXPECT_EQ(Get(table, nullptr, "hot"), Value(kWrites));
  std::unique_ptr<Cursor> cursor = table->NewCursor(nullptr);
  EXPECT_EQ(CursorValue(cursor.get(), "hot"), Value(kWrites));
  EXPECT_EQ(TableStat(env.get(), "table.t.rows_rebuilt_for_read"), rebuilt)
      << "the newest write settles what a reader after it sees";

  EXPECT_EQ(Get(table, oldest.get(), "hot"), "orig");
  EXPECT_EQ(Get(table, middle.get(), "hot"), Value(kWrites / 2));
  std::unique_ptr<Cursor> old_cursor = table->NewCursor(oldest.get());
  EXPECT_EQ(CursorValue(old_cursor.get(), "hot"), "orig");
  EXPECT_GT(TableStat(env.get(), "table.t.rows_rebuilt_for_read"), rebuilt);
  // The oldest snapshot's, the middle one's, the newest and the few the collection waits
  // for; every write since the oldest snapshot would be ~3000.
  EXPECT_LE(TableStat(env.get(), "table.t.largest_rebuilt_row_versions"), 8);

  cursor.reset();
  old_cursor.reset();
  ASSERT_TRUE(oldest->Commit().ok());
  ASSERT_TRUE(middle->Commit().ok());
  EXPECT_EQ(Get(table, nullptr, "hot"), Value(kWrites));
}

// First-committer-wins survives the collection: a key absent from a kSnapshot
// transaction's snapshot, then written and deleted by others, is a conflict for it.
TEST_F(SnapshotGcTest, ASnapshotWriterStillMeetsAKeyWrittenAndDeletedAfterItsSnapshot) {
  TxnOptions snapshot;
  snapshot.isolation = Isolation::kSnapshot;
  std::unique_ptr<Txn> txn;
  ASSERT_TRUE(env->Begin(snapshot, &txn).ok());
  EXPECT_EQ(Get(table, txn.get(), "k"), "<none>");  // the snapshot is taken
  // Eight versions (collected down to one at the fifth), then the delete as the fifth
  // version kept: the collection leaves only the delete, hidden from the snapshot.
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(table->Put(nullptr, "k", Value(i)).ok());
  ASSERT_TRUE(table->Delete(nullptr, "k").ok());
  Status s = table->Put(txn.get(), "k", "mine");
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  s = table->Insert(txn.get(), "k", "mine");
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  ASSERT_TRUE(txn->Abort().ok());
  // Without a snapshot left, the delete goes with the next write of the key.
  ASSERT_TRUE(table->Put(nullptr, "k", "later").ok());
  EXPECT_EQ(Get(table, nullptr, "k"), "later");
}

// Readers take snapshots while writers overwrite a few keys: every snapshot keeps reading
// what it first read, and never something older than what had committed before it began.
TEST_F(SnapshotGcTest, SnapshotsKeepTheirViewWhileHotKeysAreCollected) {
  constexpr int kKeys = 3;
  std::atomic<int> committed[kKeys];
  for (int k = 0; k < kKeys; ++k) {
    ASSERT_TRUE(table->Put(nullptr, "k" + std::to_string(k), "0").ok());
    committed[k].store(0);
  }
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    for (int i = 1; !stop.load(); ++i) {
      int k = i % kKeys;
      Status s;
      if (i % 3 == 0) {
        std::unique_ptr<Txn> txn;
        s = env->Begin(TxnOptions(), &txn);
        if (s.ok()) s = table->Put(txn.get(), "k" + std::to_string(k), std::to_string(i));
        if (s.ok()) s = txn->Commit();
      } else {
        s = table->Put(nullptr, "k" + std::to_string(k), std::to_string(i));
      }
      if (!s.ok()) {
        ADD_FAILURE() << s.ToString();
        failures++;
        return;
      }
      committed[k].store(i);
    }
  });
  auto reader = [&](int seed) {
    std::vector<std::unique_ptr<Txn>> held;  // some snapshots stay open a while
    std::vector<std::vector<std::string>> first_reads;
    for (int round = 0; !stop.load(); ++round) {
      int floor[kKeys];
      for (int k = 0; k < kKeys; ++k) floor[k] = committed[k].load();
      TxnOptions options;
      options.isolation = Isolation::kSnapshot;
      std::unique_ptr<Txn> txn;
      if (!env->Begin(options, &txn).ok()) {
        failures++;
        return;
      }
      std::vector<std::string> reads;
      for (int k = 0; k < kKeys; ++k) {
        std::string v = Get(table, txn.get(), "k" + std::to_string(k));
        if (v == "<none>" || std::stoi(v) < floor[k]) {
          ADD_FAILURE() << "snapshot read k" << k << " = " << v << ", below " << floor[k];
          failures++;
        }
        reads.push_back(v);
      }
      held.push_back(std::move(txn));
      first_reads.push_back(reads);
      // Every held snapshot still reads what it read first.
      for (size_t h = 0; h < held.size(); ++h) {
        for (int k = 0; k < kKeys; ++k) {
          std::string again = Get(table, held[h].get(), "k" + std::to_string(k));
          if (again != first_reads[h][k]) {
            ADD_FAILURE() << "snapshot changed: k" << k << " " << first_reads[h][k] << " -> "
                          << again;
            failures++;
          }
        }
      }
      if (held.size() > static_cast<size_t>(3 + seed)) {
        held.erase(held.begin());
        first_reads.erase(first_reads.begin());
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200 * (seed + 1)));
    }
  };
  std::thread r1(reader, 0), r2(reader, 2);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  stop.store(true);
  writer.join();
  r1.join();
  r2.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace fern
