// Cursors of transactions, through the public API: a cursor sees its own transaction's
// writes made after it was positioned (and its family's, once a child commits), a
// read-committed or read-uncommitted cursor reads as of each call (seeks and steps), a
// snapshot cursor as of its transaction's start, a child's abort leaves its family's
// cursors at once, a seek retries a read lock an earlier call gave up on, a cursor whose
// transaction ended or whose Env closed fails with InvalidArgument, and a cursor may be
// destroyed after its Env.
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "util/strings.h"

namespace fern {
namespace {

using testing::ScratchDir;

std::string Key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "k%06d", i);
  return buf;
}

class TxnCursorTest : public ::testing::TestWithParam<Isolation> {
 protected:
  void SetUp() override {
    Options options;
    options.sync_commits = false;
    ASSERT_TRUE(Env::Open(dir_.path(), options, &env_).ok());
    TableOptions table_options;
    // Small nodes: a few hundred rows span many basements and batches.
    table_options.node_bytes = 4096;
    table_options.basement_bytes = 512;
    ASSERT_TRUE(env_->OpenTable("t", table_options, &table_).ok());
  }

  std::unique_ptr<Txn> Begin() {
    TxnOptions options;
    options.isolation = GetParam();
    std::unique_ptr<Txn> txn;
    EXPECT_TRUE(env_->Begin(options, &txn).ok());
    return txn;
  }

  // The keys a full forward scan of `cursor` returns, from SeekToFirst.
  static std::vector<std::string> Scan(Cursor* cursor) {
    std::vector<std::string> keys;
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
      keys.emplace_back(cursor->key());
    }
    EXPECT_TRUE(cursor->status().ok()) << cursor->status().ToString();
    return keys;
  }

  ScratchDir dir_;
  std::unique_ptr<Env> env_;
  Table* table_ = nullptr;
};

// Writes made by the cursor's transaction after the cursor read its batch are seen by the
// next step: a new row ahead of it, a row it deleted ahead of it, a changed value, forward
// and backward, far inside a batch and across batches.
TEST_P(TxnCursorTest, StepsSeeTheTransactionsOwnLaterWrites) {
  for (int i = 0; i < 400; i += 4) ASSERT_TRUE(table_->Put(nullptr, Key(i), "old").ok());
  std::unique_ptr<Txn> txn = Begin();
  std::unique_ptr<Cursor> cursor = table_->NewCursor(txn.get());
  cursor->Seek(Key(100));
  ASSERT_TRUE(cursor->Valid());
  ASSERT_EQ(cursor->key(), Key(100));
  ASSERT_TRUE(table_->Put(txn.get(), Key(102), "new").ok());
  ASSERT_TRUE(table_->Delete(txn.get(), Key(104)).ok());
  ASSERT_TRUE(table_->Put(txn.get(), Key(108), "changed").ok());
  cursor->Next();
  ASSERT_TRUE(cursor->Valid()) << cursor->status().ToString();
  EXPECT_EQ(cursor->key(), Key(102));
  EXPECT_EQ(cursor->value(), "new");
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(108));
  EXPECT_EQ(cursor->value(), "changed");

  // Backward: a row inserted just behind, and the row behind that deleted.
  ASSERT_TRUE(table_->Put(txn.get(), Key(107), "behind").ok());
  ASSERT_TRUE(table_->Delete(txn.get(), Key(102)).ok());
  cursor->Prev();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(107));
  cursor->Prev();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(100));

  // The row under the cursor deleted: the next step goes on from its key.
  ASSERT_TRUE(table_->Delete(txn.get(), Key(100)).ok());
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(107));

  // A long scan that writes ahead of itself as it goes sees every row it added.
  int added = 0;
  int seen_added = 0;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    const std::string key(cursor->key());
    if (cursor->value() == "added") ++seen_added;
    if (key.size() == Key(0).size() && added < 50 && key < Key(300)) {
      ASSERT_TRUE(table_->Put(txn.get(), key + "+", "added").ok());
      ++added;
    }
  }
  ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  EXPECT_EQ(seen_added, added);
  ASSERT_TRUE(txn->Commit().ok());
}

// A child's writes become visible to a cursor of its parent once the child commits; an
// aborted child's never do.
TEST_P(TxnCursorTest, ParentCursorSeesWhatACommittedChildWrote) {
  for (int i = 0; i < 100; i += 2) ASSERT_TRUE(table_->Put(nullptr, Key(i), "v").ok());
  std::unique_ptr<Txn> parent = Begin();
  std::unique_ptr<Cursor> cursor = table_->NewCursor(parent.get());
  cursor->Seek(Key(10));
  ASSERT_TRUE(cursor->Valid());
  std::unique_ptr<Txn> child;
  ASSERT_TRUE(parent->BeginChild(&child).ok());
  ASSERT_TRUE(table_->Put(child.get(), Key(11), "child").ok());
  ASSERT_TRUE(child->Commit().ok());
  ASSERT_TRUE(parent->BeginChild(&child).ok());
  ASSERT_TRUE(table_->Put(child.get(), Key(13), "aborted").ok());
  ASSERT_TRUE(child->Abort().ok());
  cursor->Next();
  ASSERT_TRUE(cursor->Valid()) << cursor->status().ToString();
  EXPECT_EQ(cursor->key(), Key(11));
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(12));
  ASSERT_TRUE(parent->Commit().ok());
}

// Once its transaction commits or aborts, a cursor fails with InvalidArgument on every
// call, is never valid, and key() and value() are empty.
TEST_P(TxnCursorTest, CursorOfAnEndedTransactionFails) {
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(table_->Put(nullptr, Key(i), "v").ok());
  for (bool commit : {true, false}) {
    SCOPED_TRACE(commit ? "commit" : "abort");
    std::unique_ptr<Txn> txn = Begin();
    std::unique_ptr<Cursor> cursor = table_->NewCursor(txn.get());
    cursor->Seek(Key(5));
    ASSERT_TRUE(cursor->Valid());
    ASSERT_TRUE((commit ? txn->Commit() : txn->Abort()).ok());
    // At once, before the cursor moves.
    EXPECT_FALSE(cursor->Valid());
    EXPECT_TRUE(cursor->status().IsInvalidArgument()) << cursor->status().ToString();
    EXPECT_TRUE(cursor->key().empty());
    cursor->Next();
    EXPECT_FALSE(cursor->Valid());
    EXPECT_TRUE(cursor->status().IsInvalidArgument()) << cursor->status().ToString();
    EXPECT_TRUE(cursor->key().empty());
    EXPECT_TRUE(cursor->value().empty());
    cursor->SeekToFirst();
    EXPECT_FALSE(cursor->Valid());
    EXPECT_TRUE(cursor->status().IsInvalidArgument());
    txn.reset();
    cursor->SeekToLast();
    EXPECT_FALSE(cursor->Valid());
  }
  // A cursor outside any transaction is not tied to one.
  std::unique_ptr<Cursor> free_cursor = table_->NewCursor(nullptr);
  EXPECT_EQ(Scan(free_cursor.get()).size(), 50u);
}

INSTANTIATE_TEST_SUITE_P(Isolations, TxnCursorTest,
                         ::testing::Values(Isolation::kReadUncommitted, Isolation::kReadCommitted,
                                           Isolation::kSnapshot, Isolation::kSerializable),
                         [](const ::testing::TestParamInfo<Isolation>& info) {
                           switch (info.param) {
                             case Isolation::kReadUncommitted:
                               return std::string("ReadUncommitted");
                             case Isolation::kReadCommitted:
                               return std::string("ReadCommitted");
                             case Isolation::kSnapshot:
                               return std::string("Snapshot");
                             case Isolation::kSerializable:
                               return std::string("Serializable");
                           }
                           return std::string("Unknown");
                         });

// A child's abort takes its writes out of its family's view at once: a parent's cursor
// that copied the child's rows (a write, a delete) while the child was live reads again at
// its next step, at every isolation level.
TEST_P(TxnCursorTest, ParentCursorForgetsWhatAnAbortedChildWrote) {
  for (const char* key : {"a", "m", "z"}) ASSERT_TRUE(table_->Put(nullptr, key, "1").ok());
  std::unique_ptr<Txn> root = Begin();
  auto cursor = table_->NewCursor(root.get());
  cursor->SeekToFirst();
  std::unique_ptr<Txn> child;
  ASSERT_TRUE(root->BeginChild(&child).ok());
  ASSERT_TRUE(table_->Put(child.get(), "n", "child").ok());
  ASSERT_TRUE(table_->Delete(child.get(), "m").ok());
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "n");
  cursor->Prev();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "a");
  ASSERT_TRUE(child->Abort().ok());
  std::vector<std::string> rest;
  for (cursor->Next(); cursor->Valid(); cursor->Next()) rest.emplace_back(cursor->key());
  ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  EXPECT_EQ(rest, (std::vector<std::string>{"m", "z"}));
  ASSERT_TRUE(root->Commit().ok());
}

// An Env without synced commits and its table "t", for the view tests.
class TxnCursorViewTest : public ::testing::Test {
 protected:
  void Open(Options options = Options(), TableOptions table_options = TableOptions()) {
    options.sync_commits = false;
    ASSERT_TRUE(Env::Open(dir_.path(), options, &env_).ok());
    ASSERT_TRUE(env_->OpenTable("t", table_options, &table_).ok());
  }

  ScratchDir dir_;
  std::unique_ptr<Env> env_;
  Table* table_ = nullptr;
};

// Read committed reads as of each call: a seek sees what was committed before it, even on a
// cursor made earlier; a snapshot cursor keeps its transaction's start; a cursor outside a
// transaction keeps its creation's.
TEST_F(TxnCursorViewTest, ReadCommittedSeeksReadAsOfEachSeek) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(table_->Put(nullptr, "a", "1").ok());
  ASSERT_TRUE(table_->Put(nullptr, "x", "1").ok());
  std::unique_ptr<Txn> committed_reader;
  ASSERT_TRUE(env_->Begin(TxnOptions(), &committed_reader).ok());
  TxnOptions snapshot_options;
  snapshot_options.isolation = Isolation::kSnapshot;
  std::unique_ptr<Txn> snapshot_reader;
  ASSERT_TRUE(env_->Begin(snapshot_options, &snapshot_reader).ok());
  auto committed = table_->NewCursor(committed_reader.get());
  auto snapshot = table_->NewCursor(snapshot_reader.get());
  auto outside = table_->NewCursor(nullptr);
  for (Cursor* cursor : {committed.get(), snapshot.get(), outside.get()}) {
    cursor->Seek("w");
    ASSERT_TRUE(cursor->Valid());
    EXPECT_EQ(cursor->key(), "x");
  }
  std::unique_ptr<Txn> writer;
  ASSERT_TRUE(env_->Begin(TxnOptions(), &writer).ok());
  ASSERT_TRUE(table_->Put(writer.get(), "w", "2").ok());
  ASSERT_TRUE(table_->Put(writer.get(), "x", "2").ok());
  ASSERT_TRUE(writer->Commit().ok());

  committed->Seek("w");
  ASSERT_TRUE(committed->Valid());
  EXPECT_EQ(committed->key(), "w");
  committed->Next();
  ASSERT_TRUE(committed->Valid());
  EXPECT_EQ(committed->value(), "2");
  for (Cursor* cursor : {snapshot.get(), outside.get()}) {
    cursor->Seek("w");
    ASSERT_TRUE(cursor->Valid());
    EXPECT_EQ(cursor->key(), "x");
    EXPECT_EQ(cursor->value(), "1");
  }
  ASSERT_TRUE(committed_reader->Commit().ok());
  ASSERT_TRUE(snapshot_reader->Commit().ok());
}

// The steps after a seek read as of each step too under read committed: rows committed or
// deleted after the seek (autocommitted or by a transaction) show as the cursor reaches
// them, in both directions; another transaction's uncommitted writes never do. A snapshot
// cursor's steps keep its transaction's start.
TEST_F(TxnCursorViewTest, ReadCommittedStepsReadAsOfEachStep) {
  ASSERT_NO_FATAL_FAILURE(Open());
  for (const char* key : {"a", "c", "e", "g"}) ASSERT_TRUE(table_->Put(nullptr, key, "1").ok());
  std::unique_ptr<Txn> reader;
  ASSERT_TRUE(env_->Begin(TxnOptions(), &reader).ok());  // kReadCommitted, the default
  TxnOptions snapshot_options;
  snapshot_options.isolation = Isolation::kSnapshot;
  std::unique_ptr<Txn> snapshot_reader;
  ASSERT_TRUE(env_->Begin(snapshot_options, &snapshot_reader).ok());
  auto cursor = table_->NewCursor(reader.get());
  auto snapshot = table_->NewCursor(snapshot_reader.get());
  cursor->Seek("a");
  snapshot->Seek("a");
  ASSERT_TRUE(cursor->Valid() && snapshot->Valid());

  ASSERT_TRUE(table_->Put(nullptr, "b", "2").ok());  // autocommitted after the seek
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "b");

  std::unique_ptr<Txn> writer;
  ASSERT_TRUE(env_->Begin(TxnOptions(), &writer).ok());
  ASSERT_TRUE(table_->Put(writer.get(), "c", "2").ok());
  ASSERT_TRUE(table_->Put(writer.get(), "d", "2").ok());
  ASSERT_TRUE(table_->Delete(writer.get(), "e").ok());
  std::unique_ptr<Txn> uncommitted;
  ASSERT_TRUE(env_->Begin(TxnOptions(), &uncommitted).ok());
  ASSERT_TRUE(table_->Put(uncommitted.get(), "f", "2").ok());
  cursor->Next();  // the writer has not committed yet
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "c");
  EXPECT_EQ(cursor->value(), "1");
  ASSERT_TRUE(writer->Commit().ok());
  std::vector<std::string> rest;
  for (cursor->Next(); cursor->Valid(); cursor->Next()) {
    rest.push_back(StrCat(cursor->key(), "=", cursor->value()));
  }
  ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  EXPECT_EQ(rest, (std::vector<std::string>{"d=2", "g=1"}));

  cursor->SeekForPrev("g");
  ASSERT_TRUE(cursor->Valid());
  std::unique_ptr<Txn> second_writer;
  ASSERT_TRUE(env_->Begin(TxnOptions(), &second_writer).ok());
  ASSERT_TRUE(table_->Put(second_writer.get(), "e", "4").ok());  // "f" is locked
  ASSERT_TRUE(second_writer->Commit().ok());
  cursor->Prev();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "e");
  EXPECT_EQ(cursor->value(), "4");
  ASSERT_TRUE(table_->Delete(nullptr, "d").ok());
  ASSERT_TRUE(table_->Put(nullptr, "c", "3").ok());
  cursor->Prev();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "c");
  EXPECT_EQ(cursor->value(), "3");

  std::vector<std::string> seen;
  for (snapshot->Next(); snapshot->Valid(); snapshot->Next()) {
    seen.push_back(StrCat(snapshot->key(), "=", snapshot->value()));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"c=1", "e=1", "g=1"}));
  ASSERT_TRUE(uncommitted->Abort().ok());
  ASSERT_TRUE(reader->Commit().ok());
  ASSERT_TRUE(snapshot_reader->Commit().ok());
}

// Under read uncommitted the steps after a seek see another transaction's writes made
// after it, and stop seeing them once it aborts.
TEST_F(TxnCursorViewTest, ReadUncommittedStepsSeeLaterDirtyWrites) {
  ASSERT_NO_FATAL_FAILURE(Open());
  for (const char* key : {"a", "c", "e"}) ASSERT_TRUE(table_->Put(nullptr, key, "1").ok());
  TxnOptions dirty_options;
  dirty_options.isolation = Isolation::kReadUncommitted;
  std::unique_ptr<Txn> reader;
  ASSERT_TRUE(env_->Begin(dirty_options, &reader).ok());
  auto cursor = table_->NewCursor(reader.get());
  cursor->Seek("a");
  ASSERT_TRUE(cursor->Valid());
  std::unique_ptr<Txn> writer;
  ASSERT_TRUE(env_->Begin(TxnOptions(), &writer).ok());
  ASSERT_TRUE(table_->Put(writer.get(), "b", "2").ok());
  ASSERT_TRUE(table_->Put(writer.get(), "d", "2").ok());
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "b");
  ASSERT_TRUE(writer->Abort().ok());
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "c");
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "e");
  ASSERT_TRUE(reader->Commit().ok());
}

// Read-committed scans racing writers that commit and abort inserts, deletes and updates of
// the odd keys: every scan returns each even key (never written) exactly once, keys in
// strictly increasing order (or decreasing, backward), and no error.
TEST_F(TxnCursorViewTest, ReadCommittedScansStayOrderedWhileWritersCommit) {
  Options options;
  options.cache_bytes = size_t{4} << 20;
  TableOptions table_options;
  table_options.node_bytes = 16 << 10;
  table_options.basement_bytes = 1 << 10;
  ASSERT_NO_FATAL_FAILURE(Open(options, table_options));
  constexpr int kRows = 4000;
  for (int i = 0; i < kRows; i += 2) ASSERT_TRUE(table_->Put(nullptr, Key(i), "even").ok());
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    uint64_t round = 0;
    while (!stop.load()) {
      std::unique_ptr<Txn> txn;
      ASSERT_TRUE(env_->Begin(TxnOptions(), &txn).ok());
      for (int k = 0; k < 8; ++k) {
        const int odd = 2 * static_cast<int>((round * 7919 + k * 104729) % (kRows / 2)) + 1;
        Status s = (round + k) % 3 == 0 ? table_->Delete(txn.get(), Key(odd))
                                        : table_->Put(txn.get(), Key(odd), StrCat("odd", round));
        ASSERT_TRUE(s.ok() || s.IsBusy()) << s.ToString();
      }
      ASSERT_TRUE((round % 5 == 0 ? txn->Abort() : txn->Commit()).ok());
      if (round % 4 == 0) {
        Status s = table_->Put(nullptr, Key(2 * static_cast<int>(round % (kRows / 2)) + 1), "auto");
        ASSERT_TRUE(s.ok() || s.IsBusy()) << s.ToString();
      }
      ++round;
    }
  });
  // Stops and joins the writer however the scans end (an ASSERT returns early).
  struct StopWriter {
    std::atomic<bool>* stop;
    std::thread* writer;
    ~StopWriter() {
      stop->store(true);
      writer->join();
    }
  } stop_writer{&stop, &writer};
  for (int scan = 0; scan < 12; ++scan) {
    std::unique_ptr<Txn> reader;
    ASSERT_TRUE(env_->Begin(TxnOptions(), &reader).ok());
    auto cursor = table_->NewCursor(reader.get());
    const bool forward = scan % 2 == 0;
    int evens = 0;
    std::string last;
    for (forward ? cursor->SeekToFirst() : cursor->SeekToLast(); cursor->Valid();
         forward ? cursor->Next() : cursor->Prev()) {
      const std::string key(cursor->key());
      if (!last.empty()) {
        ASSERT_TRUE(forward ? last < key : last > key) << last << " " << key;
      }
      const int i = std::stoi(key.substr(1));
      if (i % 2 == 0) {
        ++evens;
        ASSERT_EQ(cursor->value(), "even");
      }
      last = key;
    }
    ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
    EXPECT_EQ(evens, kRows / 2) << "scan " << scan;
    ASSERT_TRUE(reader->Commit().ok());
  }
}

// A serializable cursor whose read lock waited out the lock timeout (Busy) is not stuck:
// its next seek, once the writer is gone, takes the lock and reads.
TEST(TxnCursorLockTest, ASeekAfterBusyRetriesTheReadLock) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  Options options;
  options.sync_commits = false;
  options.lock_timeout_ms = 5;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
  ASSERT_TRUE(table->Put(nullptr, "a", "1").ok());
  TxnOptions serializable;
  serializable.isolation = Isolation::kSerializable;
  std::unique_ptr<Txn> reader, writer;
  ASSERT_TRUE(env->Begin(serializable, &reader).ok());
  ASSERT_TRUE(env->Begin(TxnOptions(), &writer).ok());
  ASSERT_TRUE(table->Put(writer.get(), "k", "x").ok());
  auto cursor = table->NewCursor(reader.get());
  cursor->SeekToFirst();
  EXPECT_FALSE(cursor->Valid());
  EXPECT_TRUE(cursor->status().IsBusy()) << cursor->status().ToString();
  ASSERT_TRUE(writer->Commit().ok());
  cursor->SeekToFirst();
  ASSERT_TRUE(cursor->Valid()) << cursor->status().ToString();
  EXPECT_EQ(cursor->key(), "a");
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "k");
  ASSERT_TRUE(reader->Commit().ok());
}

// Closing the Env while cursors are alive, in the middle of a streaming scan among them,
// leaves each failing with InvalidArgument; destroying them afterwards is safe.
TEST(TxnCursorLifetimeTest, CursorsOutliveTheirEnv) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  Options options;
  options.sync_commits = false;
  options.cache_bytes = size_t{4} << 20;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("t", testing::SmallTreeOptions(), &table).ok());
  const std::string value(200, 'v');
  for (int i = 0; i < 60000; ++i) ASSERT_TRUE(table->Put(nullptr, Key(i), value).ok());
  ASSERT_TRUE(env->Checkpoint().ok());
  std::unique_ptr<Txn> txn;
  ASSERT_TRUE(env->Begin(TxnOptions(), &txn).ok());
  std::vector<std::unique_ptr<Cursor>> cursors;
  cursors.push_back(table->NewCursor(nullptr));
  cursors.push_back(table->NewCursor(txn.get()));
  cursors.push_back(table->NewCursor(nullptr));
  cursors[1]->Seek(Key(10));
  ASSERT_TRUE(cursors[1]->Valid());
  // Far enough that the scan streams with basements decoded ahead.
  cursors[2]->SeekToFirst();
  for (int i = 0; i < 30000 && cursors[2]->Valid(); ++i) cursors[2]->Next();
  ASSERT_TRUE(cursors[2]->Valid()) << cursors[2]->status().ToString();
  env.reset();
  for (auto& cursor : cursors) {
    EXPECT_FALSE(cursor->Valid());
    EXPECT_TRUE(cursor->status().IsInvalidArgument()) << cursor->status().ToString();
    cursor->SeekToFirst();
    cursor->Next();
    EXPECT_FALSE(cursor->Valid());
    EXPECT_TRUE(cursor->key().empty());
  }
  txn.reset();
  cursors.clear();
}

// A cursor of a table that was dropped under it fails with a clear Status, never reads the
// removed file's rows or crashes.
TEST(TxnCursorLifetimeTest, CursorOfADroppedTableFails) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  Options options;
  options.sync_commits = false;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  TableOptions table_options;
  table_options.node_bytes = 4096;
  table_options.basement_bytes = 512;
  ASSERT_TRUE(env->OpenTable("t", table_options, &table).ok());
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(table->Put(nullptr, Key(i), "v").ok());
  ASSERT_TRUE(env->Checkpoint().ok());
  std::unique_ptr<Cursor> cursor = table->NewCursor(nullptr);
  cursor->Seek(Key(10));
  ASSERT_TRUE(cursor->Valid());
  ASSERT_TRUE(env->DropTable("t").ok());
  // At once, before the cursor moves.
  EXPECT_FALSE(cursor->Valid());
  EXPECT_TRUE(cursor->key().empty());
  cursor->Next();
  EXPECT_FALSE(cursor->Valid());
  EXPECT_TRUE(cursor->status().IsInvalidArgument()) << cursor->status().ToString();
  EXPECT_NE(cursor->status().ToString().find("table \"t\" was dropped"), std::string::npos)
      << cursor->status().ToString();
  cursor->SeekToFirst();
  EXPECT_FALSE(cursor->Valid());
  EXPECT_FALSE(cursor->status().ok()) << cursor->status().ToString();
}

}  // namespace
}  // namespace fern
