// Writes outside any transaction (txn == nullptr) against transactions and snapshots: a
// snapshot never sees an autocommitted write made after it was taken (and keeps seeing the
// version it saw), a cursor made without a transaction is a snapshot, and an autocommitted
// write waits for the row locks of live transactions like any writer.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "txn_fixture.h"

namespace fern {
namespace {

class AutocommitTest : public testing::TxnFixture {
 protected:
  Options EnvOptions() const override {
    Options options = TxnFixture::EnvOptions();
    options.update_function = [](std::string_view, const std::string_view* old_value,
                                 std::string_view extra) -> std::optional<std::string> {
      return std::string(old_value != nullptr ? *old_value : "") + std::string(extra);
    };
    return options;
  }
  // Every row a cursor sees, "key=value" joined by commas.
  static std::string Rows(Cursor* cursor) {
    std::string out;
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
      if (!out.empty()) out += ",";
      out += std::string(cursor->key()) + "=" + std::string(cursor->value());
    }
    EXPECT_TRUE(cursor->status().ok()) << cursor->status().ToString();
    return out;
  }
};

TEST_F(AutocommitTest, SnapshotDoesNotSeeLaterAutocommittedWrites) {
  ASSERT_TRUE(table_->Put(nullptr, "k", "old").ok());
  ASSERT_TRUE(table_->Put(nullptr, "gone", "here").ok());
  auto snapshot = Begin(Isolation::kSnapshot);
  EXPECT_EQ(Read(snapshot.get(), "k"), "old");

  ASSERT_TRUE(table_->Put(nullptr, "k", "new").ok());
  ASSERT_TRUE(table_->Put(nullptr, "added", "x").ok());
  ASSERT_TRUE(table_->Delete(nullptr, "gone").ok());
  ASSERT_TRUE(table_->Update(nullptr, "k", "+u").ok());
  ASSERT_TRUE(table_->UpdateAll(nullptr, "!").ok());
  ASSERT_TRUE(table_->Insert(nullptr, "inserted", "y").ok());

  // The snapshot still reads what it read at Begin, by Get and by cursor, and even after
  // Optimize pushed everything to the leaves and collected old versions.
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(Read(snapshot.get(), "k"), "old");
    EXPECT_EQ(Read(snapshot.get(), "gone"), "here");
    EXPECT_EQ(Read(snapshot.get(), "added"), "<none>");
    EXPECT_EQ(Read(snapshot.get(), "inserted"), "<none>");
    auto cursor = table_->NewCursor(snapshot.get());
    EXPECT_EQ(Rows(cursor.get()), "gone=here,k=old");
    ASSERT_TRUE(table_->Optimize().ok());
  }
  // Readers that start now see every write.
  EXPECT_EQ(Read(nullptr, "k"), "new+u!");
  auto later = Begin(Isolation::kSnapshot);
  EXPECT_EQ(Read(later.get(), "k"), "new+u!");
  EXPECT_EQ(Read(later.get(), "added"), "x!");
  EXPECT_EQ(Read(later.get(), "gone"), "<none>");
  EXPECT_EQ(Read(later.get(), "inserted"), "y");
  ASSERT_TRUE(snapshot->Commit().ok());
  ASSERT_TRUE(later->Commit().ok());

  // The stamped versions stay readable across a restart (ids after it are above them).
  ASSERT_TRUE(env_->Checkpoint().ok());
  Reopen();
  auto after = Begin(Isolation::kSnapshot);
  EXPECT_EQ(Read(after.get(), "k"), "new+u!");
  EXPECT_EQ(Read(after.get(), "added"), "x!");
  auto cursor = table_->NewCursor(after.get());
  EXPECT_EQ(Rows(cursor.get()), "added=x!,inserted=y,k=new+u!");
}

TEST_F(AutocommitTest, CursorWithoutTransactionIsASnapshotTakenAtCreation) {
  ASSERT_TRUE(table_->Put(nullptr, "a", "1").ok());
  ASSERT_TRUE(table_->Put(nullptr, "c", "3").ok());
  auto cursor = table_->NewCursor(nullptr);
  ASSERT_TRUE(table_->Put(nullptr, "b", "2").ok());
  ASSERT_TRUE(table_->Put(nullptr, "a", "changed").ok());
  ASSERT_TRUE(table_->Delete(nullptr, "c").ok());
  EXPECT_EQ(Rows(cursor.get()), "a=1,c=3");
  EXPECT_EQ(Rows(cursor.get()), "a=1,c=3");  // again: still as of creation
  auto fresh = table_->NewCursor(nullptr);
  EXPECT_EQ(Rows(fresh.get()), "a=changed,b=2");
}

TEST_F(AutocommitTest, AutocommittedWriteWaitsForATransactionsRowLock) {
  ASSERT_TRUE(table_->Put(nullptr, "k", "before").ok());
  auto holder = Begin(Isolation::kReadCommitted);
  std::string seen;
  ASSERT_TRUE(table_->GetForUpdate(holder.get(), "k", &seen).ok());
  EXPECT_TRUE(table_->Put(nullptr, "k", "autocommit").IsBusy());
  EXPECT_TRUE(table_->Delete(nullptr, "k").IsBusy());
  EXPECT_TRUE(table_->Update(nullptr, "k", "x").IsBusy());
  // Other rows are not locked.
  ASSERT_TRUE(table_->Put(nullptr, "other", "free").ok());
  ASSERT_TRUE(table_->Put(holder.get(), "k", seen + "+holder").ok());
  ASSERT_TRUE(holder->Commit().ok());
  EXPECT_EQ(Read(nullptr, "k"), "before+holder");
  // Once the lock is gone the write goes through.
  ASSERT_TRUE(table_->Put(nullptr, "k", "autocommit").ok());
  EXPECT_EQ(Read(nullptr, "k"), "autocommit");
}

// A live transaction that holds no lock on the row does not turn autocommitted writes into
// transactions of their own (one log record each, not begin + write + commit), not even
// when each write overlaps another's.
TEST_F(AutocommitTest, WritesStayOutsideTransactionsWhileNoneHoldsTheirRow) {
  auto idle = Begin(Isolation::kReadCommitted);
  ASSERT_TRUE(table_->Put(idle.get(), "held", "by idle").ok());
  auto stat = [&](const std::string& name) {
    std::string stats;
    EXPECT_TRUE(env_->GetProperty("fern.stats", &stats));
    const size_t at = stats.find(name + ": ");
    EXPECT_NE(at, std::string::npos) << name;
    return at == std::string::npos ? uint64_t{0} : std::stoull(stats.substr(at + name.size() + 2));
  };
  auto log_records = [&] { return stat("log.records"); };
  const uint64_t before = log_records();
  const uint64_t locked_before = stat("txn.autocommits_row_locked");
  constexpr int kWrites = 200;
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kWrites / 2; ++i) {
        EXPECT_TRUE(
            table_->Put(nullptr, "w" + std::to_string(w) + "-" + std::to_string(i), "v").ok());
      }
    });
  }
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(log_records() - before, uint64_t{kWrites});
  EXPECT_EQ(stat("txn.autocommits_row_locked") - locked_before, uint64_t{kWrites});
  EXPECT_EQ(stat("txn.autocommits_in_own_txn"), 0u);
  EXPECT_EQ(stat("txn.live"), 1u);
  EXPECT_TRUE(table_->Put(nullptr, "held", "mine").IsBusy());  // the held row still waits
  EXPECT_EQ(stat("txn.autocommits_in_own_txn"), 1u);
  ASSERT_TRUE(idle->Commit().ok());
}

TEST_F(AutocommitTest, AutocommittedInsertSeesAnUncommittedInsertsLock) {
  auto inserter = Begin(Isolation::kReadCommitted);
  ASSERT_TRUE(table_->Insert(inserter.get(), "k", "txn").ok());
  EXPECT_TRUE(table_->Insert(nullptr, "k", "autocommit").IsBusy());
  ASSERT_TRUE(inserter->Commit().ok());
  EXPECT_TRUE(table_->Insert(nullptr, "k", "autocommit").IsAlreadyExists());
  EXPECT_EQ(Read(nullptr, "k"), "txn");
}

TEST_F(AutocommitTest, SnapshotInsertChecksRowsCommittedAfterItsStart) {
  auto snapshot = Begin(Isolation::kSnapshot);
  EXPECT_EQ(Read(snapshot.get(), "k"), "<none>");
  ASSERT_TRUE(table_->Put(nullptr, "k", "committed later").ok());
  EXPECT_TRUE(table_->Insert(snapshot.get(), "k", "mine").IsAlreadyExists());
  ASSERT_TRUE(snapshot->Commit().ok());
  EXPECT_EQ(Read(nullptr, "k"), "committed later");
}

// Writers overwrite keys outside any transaction while readers take snapshots (transactions
// and cursors) and read each key several times: every read of a snapshot returns the value
// its first read returned, and values never go backwards between one snapshot and the next.
TEST_F(AutocommitTest, ConcurrentSnapshotsReadRepeatablyUnderAutocommittedWrites) {
  constexpr int kKeys = 8;
  constexpr int kWriters = 2;
  constexpr int kReaders = 2;
  constexpr int kReaderRounds = 1000;
  auto key = [](int i) { return "key" + std::to_string(i); };
  // Each writer owns kKeys / kWriters keys and writes increasing numbers to them.
  for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(table_->Put(nullptr, key(i), "0").ok());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (long n = 1; !stop.load(); ++n) {
        for (int i = w; i < kKeys; i += kWriters) {
          if (!table_->Put(nullptr, key(i), std::to_string(n)).ok()) failures++;
        }
      }
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      std::vector<long> last(kKeys, 0);
      for (int round = 0; round < kReaderRounds; ++round) {
        std::vector<long> first(kKeys, -1);
        const bool by_cursor = (round + r) % 2 == 0;
        std::unique_ptr<Txn> txn;
        TxnOptions options;
        options.isolation = Isolation::kSnapshot;
        if (!by_cursor && !env_->Begin(options, &txn).ok()) failures++;
        std::unique_ptr<Cursor> cursor = table_->NewCursor(by_cursor ? nullptr : txn.get());
        for (int pass = 0; pass < 3; ++pass) {
          int i = 0;
          for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next(), ++i) {
            long v = std::stol(std::string(cursor->value()));
            if (i >= kKeys || cursor->key() != key(i)) failures++;
            if (first[i] < 0) first[i] = v;
            if (v != first[i]) failures++;
          }
          if (i != kKeys || !cursor->status().ok()) failures++;
          if (txn != nullptr) {
            for (int k = 0; k < kKeys; ++k) {
              std::string value;
              if (!table_->Get(txn.get(), key(k), &value).ok()) failures++;
              if (std::stol(value) != first[k]) failures++;
            }
          }
        }
        for (int k = 0; k < kKeys; ++k) {
          if (first[k] < last[k]) failures++;
          last[k] = first[k];
        }
        cursor.reset();
        if (txn != nullptr && !txn->Commit().ok()) failures++;
      }
    });
  }
  for (int r = 0; r < kReaders; ++r) threads[kWriters + r].join();
  stop = true;
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace fern
