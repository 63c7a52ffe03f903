// Big values stored out of line (ft/out_of_line_value.h): a row overwritten while snapshots
// keep its old versions costs one value block a write, not a rewrite of every version; every
// reader sees its own version; the blocks go when the last reader that needs them does, and
// survive reopens and crashes; a damaged value block is reported, never returned.
#include "ft/out_of_line_value.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "db/kill_child.h"
#include "fern/fern.h"
#include "ft/tree_file.h"
#include "ft/tree_inspector.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "util/strings.h"

namespace fern {
namespace {

using testing::ScratchDir;

constexpr size_t kBig = size_t{1} << 20;

// kBig bytes, different for every version; half of them compress.
std::string BigValue(int version) {
  std::mt19937_64 rng(static_cast<uint64_t>(version) + 1);
  std::string value(kBig, static_cast<char>('a' + version % 26));
  for (size_t i = 0; i < value.size() / 2; i += 8) {
    const uint64_t r = rng();
    value.replace(i, 8, reinterpret_cast<const char*>(&r), 8);
  }
  return value;
}

int64_t Stat(Env* env, const std::string& name) {
  std::string stats;
  EXPECT_TRUE(env->GetProperty("fern.stats", &stats));
  return testing::StatValue(stats, name);
}

// Flips a byte inside every value block of the table file at `path`; returns how many.
int DamageEveryValueBlock(const std::string& path) {
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  int damaged = 0;
  for (size_t at = bytes.find("FVAL"); at != std::string::npos; at = bytes.find("FVAL", at + 1)) {
    if (at + 4 + 4 + 100 >= bytes.size()) break;
    bytes[at + 4 + 4 + 100] ^= 0x5a;
    ++damaged;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return damaged;
}

TreeReport Inspect(const std::string& dir) {
  TreeReport report;
  InspectOptions options;
  EXPECT_TRUE(InspectTreeFile(dir + "/table-1.ft", options, &report).ok());
  for (const InspectProblem& p : report.problems) ADD_FAILURE() << p.block << ": " << p.what;
  return report;
}

class OutOfLineValueTest : public ::testing::Test {
 protected:
  void Open(size_t cache_bytes = 16 << 20) {
    Options options;
    options.cache_bytes = cache_bytes;
    options.sync_commits = false;
    options.checkpoint_period_ms = 0;  // the test checkpoints
    options.update_function = [](std::string_view, const std::string_view* old,
                                 std::string_view extra) -> std::optional<std::string> {
      std::string value = old != nullptr ? std::string(*old) : std::string();
      value.append(extra);
      return value;
    };
    ASSERT_TRUE(Env::Open(dir_.path(), options, &env_).ok());
    ASSERT_TRUE(env_->OpenTable("t", TableOptions(), &table_).ok());
  }
  std::string Get(Txn* txn, const std::string& key) { return testing::ReadRow(table_, txn, key); }

  ScratchDir dir_;
  std::unique_ptr<Env> env_;
  Table* table_ = nullptr;
};

TEST_F(OutOfLineValueTest, AHotRowUnderManySnapshotsWritesOneBlockAPut) {
  ASSERT_NO_FATAL_FAILURE(Open());
  constexpr int kPuts = 120;
  constexpr int kEvery = 3;  // a snapshot after every third put: 40 versions kept
  std::vector<std::unique_ptr<Txn>> snapshots;
  std::vector<int> seen_by;  // the version each snapshot sees
  for (int i = 0; i < kPuts; ++i) {
    ASSERT_TRUE(table_->Put(nullptr, "hot", BigValue(i)).ok());
    if (i % kEvery == 0) {
      TxnOptions options;
      options.isolation = Isolation::kSnapshot;
      snapshots.emplace_back();
      ASSERT_TRUE(env_->Begin(options, &snapshots.back()).ok());
      ASSERT_EQ(Get(snapshots.back().get(), "hot"), BigValue(i));
      seen_by.push_back(i);
    }
  }
  const std::string t = "table.t.";
  EXPECT_EQ(Stat(env_.get(), t + "value_blocks_written"), kPuts);
  EXPECT_EQ(Stat(env_.get(), t + "value_bytes_written"), int64_t{kPuts} * int64_t{kBig});
  for (size_t s = 0; s < snapshots.size(); s += 7) {
    EXPECT_EQ(Get(snapshots[s].get(), "hot"), BigValue(seen_by[s])) << s;
    std::unique_ptr<Cursor> cursor = table_->NewCursor(snapshots[s].get());
    cursor->SeekToFirst();
    ASSERT_TRUE(cursor->Valid());
    EXPECT_EQ(cursor->value(), BigValue(seen_by[s]));
  }
  EXPECT_EQ(Get(nullptr, "hot"), BigValue(kPuts - 1));

  // The snapshots end; the next write of the row collects the versions only they saw.
  for (auto& snapshot : snapshots) ASSERT_TRUE(snapshot->Commit().ok());
  snapshots.clear();
  ASSERT_TRUE(table_->Put(nullptr, "hot", BigValue(kPuts)).ok());
  ASSERT_TRUE(table_->Optimize().ok());
  EXPECT_EQ(Stat(env_.get(), t + "value_blocks_written"), kPuts + 1);
  EXPECT_EQ(Stat(env_.get(), t + "value_blocks_freed"), kPuts);
  ASSERT_TRUE(env_->Checkpoint().ok());
  ASSERT_TRUE(env_->Checkpoint().ok());
  // One value left: the file gives the rest back.
  EXPECT_LT(Stat(env_.get(), t + "file_bytes") - Stat(env_.get(), t + "file_free_bytes"), 4 << 20);
  env_.reset();
  TreeReport report = Inspect(dir_.path());
  EXPECT_EQ(report.out_of_line_values, 1u);
  EXPECT_EQ(report.out_of_line_bytes, kBig);
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Get(nullptr, "hot"), BigValue(kPuts));
}

TEST_F(OutOfLineValueTest, TransactionsUpdatesAndReopensKeepEveryValue) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(table_->Put(nullptr, "a", BigValue(1)).ok());
  ASSERT_TRUE(table_->Put(nullptr, "small", "tiny").ok());
  // An aborted transaction's value goes with it; a committed child's stays.
  std::unique_ptr<Txn> aborted;
  ASSERT_TRUE(env_->Begin(TxnOptions(), &aborted).ok());
  ASSERT_TRUE(table_->Put(aborted.get(), "a", BigValue(2)).ok());
  ASSERT_TRUE(table_->Put(aborted.get(), "b", BigValue(3)).ok());
  EXPECT_EQ(Get(aborted.get(), "b"), BigValue(3));
  ASSERT_TRUE(aborted->Abort().ok());
  std::unique_ptr<Txn> parent, child;
  ASSERT_TRUE(env_->Begin(TxnOptions(), &parent).ok());
  ASSERT_TRUE(parent->BeginChild(&child).ok());
  ASSERT_TRUE(table_->Put(child.get(), "c", BigValue(4)).ok());
  ASSERT_TRUE(child->Commit().ok());
  ASSERT_TRUE(parent->Commit().ok());
  ASSERT_TRUE(table_->Update(nullptr, "a", "+").ok());
  ASSERT_TRUE(table_->Optimize().ok());
  EXPECT_EQ(Get(nullptr, "a"), BigValue(1) + "+");
  EXPECT_EQ(Get(nullptr, "b"), "<none>");
  EXPECT_EQ(Get(nullptr, "c"), BigValue(4));
  const std::string t = "table.t.";
  EXPECT_EQ(
      Stat(env_.get(), t + "value_blocks_written") - Stat(env_.get(), t + "value_blocks_freed"),
      2);  // a and c
  env_.reset();
  TreeReport report = Inspect(dir_.path());
  EXPECT_EQ(report.out_of_line_values, 2u);
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(Get(nullptr, "a"), BigValue(1) + "+");
  EXPECT_EQ(Get(nullptr, "c"), BigValue(4));
  EXPECT_EQ(Get(nullptr, "small"), "tiny");
  // Below the threshold a value stays in its leaf.
  ASSERT_TRUE(table_->Put(nullptr, "d", std::string(kOutOfLineValueBytes - 1, 'd')).ok());
  ASSERT_TRUE(table_->Optimize().ok());
  EXPECT_EQ(Stat(env_.get(), t + "value_blocks_written"), 0);  // counts since the open
}

TEST_F(OutOfLineValueTest, TheLoaderStoresBigValuesOutOfLineAndFreesThemOnFailure) {
  constexpr int kRows = 40;
  auto key = [](int i) { return StrCat("row", 100 + i); };
  auto value = [](int i) {
    return i % 2 == 0 ? StrCat("small", i) : BigValue(i).substr(0, 100000);
  };
  ASSERT_NO_FATAL_FAILURE(Open());
  {
    // A load that fails (a key added twice) leaves no value block behind.
    std::unique_ptr<Loader> loader;
    ASSERT_TRUE(env_->NewLoader(table_, &loader).ok());
    for (int i = 0; i < kRows; ++i) ASSERT_TRUE(loader->Add(key(i), value(i)).ok());
    ASSERT_TRUE(loader->Add(key(3), value(3)).ok());
    EXPECT_TRUE(loader->Finish().IsAlreadyExists());
  }
  std::unique_ptr<Loader> loader;
  ASSERT_TRUE(env_->NewLoader(table_, &loader).ok());
  for (int i = kRows - 1; i >= 0; --i) ASSERT_TRUE(loader->Add(key(i), value(i)).ok());
  ASSERT_TRUE(loader->Finish().ok());
  loader.reset();
  for (int i = 0; i < kRows; ++i) EXPECT_EQ(Get(nullptr, key(i)), value(i)) << i;
  env_.reset();
  TreeReport report = Inspect(dir_.path());  // no block of the failed load is left
  EXPECT_EQ(report.out_of_line_values, uint64_t{kRows / 2});
  EXPECT_EQ(report.out_of_line_bytes, uint64_t{kRows / 2} * 100000);
  // Loaded value blocks belong to their rows like any other.
  ASSERT_NO_FATAL_FAILURE(Open());
  for (int i = 1; i < kRows; i += 2) ASSERT_TRUE(table_->Put(nullptr, key(i), "now small").ok());
  ASSERT_TRUE(table_->Optimize().ok());
  EXPECT_EQ(Stat(env_.get(), "table.t.value_blocks_freed"), kRows / 2);
  env_.reset();
  EXPECT_EQ(Inspect(dir_.path()).out_of_line_values, 0u);
}

TEST_F(OutOfLineValueTest, ADamagedValueBlockIsReportedNotReturned) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(table_->Put(nullptr, "k", BigValue(7)).ok());
  ASSERT_TRUE(table_->Put(nullptr, "other", "fine").ok());
  env_.reset();  // the close checkpoints
  const std::string path = dir_.path() + "/table-1.ft";
  ASSERT_EQ(DamageEveryValueBlock(path), 1);
  TreeReport report;
  ASSERT_TRUE(InspectTreeFile(path, InspectOptions(), &report).ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].what.find("checksum mismatch"), std::string::npos)
      << report.problems[0].what;
  ASSERT_NO_FATAL_FAILURE(Open());
  std::string value;
  Status s = table_->Get(nullptr, "k", &value);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_EQ(Get(nullptr, "other"), "fine");
}

TEST_F(OutOfLineValueTest, UpdatesOfRowsWithDamagedValuesLeaveThemDamagedAndStopNothing) {
  // Updates met value blocks that fail their checksum: in a committed transaction, an
  // aborted one and an autocommitted UpdateAll. Each leaves its damaged row as it was (reads
  // report the damage), the other rows take the update, and writes go on; the process then
  // dies, and the open that replays the same updates from the log succeeds.
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(table_->Put(nullptr, "k1", BigValue(1)).ok());
  ASSERT_TRUE(table_->Put(nullptr, "k2", BigValue(2)).ok());
  ASSERT_TRUE(table_->Put(nullptr, "small", "s").ok());
  env_.reset();
  ASSERT_EQ(DamageEveryValueBlock(dir_.path() + "/table-1.ft"), 2);
  auto child = [this](int fd) {
    Options options;
    options.sync_commits = true;
    options.checkpoint_period_ms = 0;
    options.update_function = [](std::string_view, const std::string_view* old,
                                 std::string_view extra) -> std::optional<std::string> {
      return (old != nullptr ? std::string(*old) : std::string()) + std::string(extra);
    };
    std::unique_ptr<Env> env;
    Table* table;
    if (!Env::Open(dir_.path(), options, &env).ok()) return;
    if (!env->OpenTable("t", TableOptions(), &table).ok()) return;
    std::unique_ptr<Txn> txn;
    if (!env->Begin(TxnOptions(), &txn).ok() || !table->Update(txn.get(), "k1", "x").ok() ||
        !txn->Commit().ok()) {
      return;
    }
    if (!env->Begin(TxnOptions(), &txn).ok() || !table->Update(txn.get(), "k2", "y").ok() ||
        !txn->Abort().ok()) {
      return;
    }
    if (!table->UpdateAll(nullptr, "z").ok() || !table->Put(nullptr, "after", "a").ok()) return;
    std::string value;
    if (!table->Get(nullptr, "k1", &value).IsCorruption()) return;
    std::string stats;
    if (!env->GetProperty("fern.stats", &stats) ||
        testing::StatValue(stats, "table.t.updates_of_damaged_rows") != 4) {
      return;
    }
    const uint64_t done = 1;
    if (::write(fd, &done, sizeof(done)) != sizeof(done)) return;
    for (;;) ::pause();  // dies with the log holding the updates, not checkpointed
  };
  std::vector<uint64_t> acknowledged;
  ASSERT_TRUE(testing::RunChildAndKill(child, std::chrono::seconds(3), &acknowledged));
  ASSERT_EQ(acknowledged, std::vector<uint64_t>{1})
      << "the child's updates did not all go as expected";
  ASSERT_NO_FATAL_FAILURE(Open());  // replays them
  EXPECT_EQ(Get(nullptr, "small"), "sz");
  EXPECT_EQ(Get(nullptr, "after"), "a");
  std::string value;
  EXPECT_TRUE(table_->Get(nullptr, "k1", &value).IsCorruption());
  EXPECT_TRUE(table_->Get(nullptr, "k2", &value).IsCorruption());
  EXPECT_EQ(Stat(env_.get(), "table.t.updates_of_damaged_rows"), 4);
  // A put replaces a damaged row.
  ASSERT_TRUE(table_->Put(nullptr, "k1", "new").ok());
  EXPECT_EQ(Get(nullptr, "k1"), "new");
}

TEST_F(OutOfLineValueTest, AValueBlockWithADamagedMagicIsNamedAsAValueBlock) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(table_->Put(nullptr, "k", BigValue(5)).ok());
  env_.reset();
  const std::string path = dir_.path() + "/table-1.ft";
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t at = bytes.find("FVAL");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'X';
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  ASSERT_NO_FATAL_FAILURE(Open());
  std::string value;
  const Status s = table_->Get(nullptr, "k", &value);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("reading the value block"), std::string::npos) << s.ToString();
}

TEST_F(OutOfLineValueTest, AReferenceToANodeIsNamedAsSuch) {
  // A one-leaf tree whose only row's value block V is overwritten with the leaf and made the
  // root: the walk reaches V as a node, then the row's reference reaches it again.
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(table_->Put(nullptr, "k", BigValue(3)).ok());
  env_.reset();
  const std::string path = dir_.path() + "/table-1.ft";
  {
    std::unique_ptr<TreeFile> file;
    ASSERT_TRUE(TreeFile::Open(path, /*read_only=*/false, &file).ok());
    FileHeader header = file->header();
    const BlockNum leaf = header.root;
    std::optional<BlockNum> value;
    file->ForEachBlock([&](BlockNum b, BlockLocation) {
      if (b != leaf) value = b;
    });
    ASSERT_TRUE(value.has_value());
    std::string leaf_bytes;
    ASSERT_TRUE(file->ReadBlock(leaf, &leaf_bytes).ok());
    ASSERT_TRUE(file->WriteBlock(*value, leaf_bytes).ok());
    file->FreeBlock(leaf);
    header.root = *value;
    ASSERT_TRUE(file->Checkpoint(header).ok());
  }
  TreeReport report;
  ASSERT_TRUE(InspectTreeFile(path, InspectOptions(), &report).ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].what, "the value of row \"k\" references this block, a node");
}

TEST_F(OutOfLineValueTest, AcknowledgedBigValuesSurviveAKill) {
  // The child overwrites rows with synced commits and checkpoints now and then; each
  // acknowledgement is a put that returned.
  auto child = [this](int fd) {
    Options options;
    options.cache_bytes = 16 << 20;
    options.checkpoint_period_ms = 50;
    std::unique_ptr<Env> env;
    Table* table;
    if (!Env::Open(dir_.path(), options, &env).ok()) return;
    if (!env->OpenTable("t", TableOptions(), &table).ok()) return;
    std::unique_ptr<Txn> snapshot;  // keeps old versions, and their blocks, alive
    for (uint64_t i = 0;; ++i) {
      if (!table->Put(nullptr, StrCat("k", i % 5), BigValue(static_cast<int>(i))).ok()) return;
      if (::write(fd, &i, sizeof(i)) != sizeof(i)) return;
      if (i % 10 == 0) {
        TxnOptions txn_options;
        txn_options.isolation = Isolation::kSnapshot;
        snapshot.reset();
        if (!env->Begin(txn_options, &snapshot).ok()) return;
      }
    }
  };
  // The kill comes after about 30 of the child's puts (slow builds take longer for each).
  std::chrono::microseconds put_time;
  {
    ScratchDir timing;
    Options options;
    std::unique_ptr<Env> env;
    Table* table;
    ASSERT_TRUE(Env::Open(timing.path(), options, &env).ok());
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(table->Put(nullptr, "k", BigValue(i)).ok());
    put_time = std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::steady_clock::now() - start) /
               5;
  }
  std::vector<uint64_t> acknowledged;
  ASSERT_TRUE(testing::RunChildAndKill(
      child, std::max<std::chrono::microseconds>(std::chrono::milliseconds(300), 30 * put_time),
      &acknowledged));
  ASSERT_FALSE(acknowledged.empty());
  ASSERT_NO_FATAL_FAILURE(Open());
  // Each row holds the last acknowledged put to it (or the next one, which the kill may
  // have cut short after it was logged); a row never acknowledged holds nothing or its
  // first put.
  for (uint64_t row = 0; row < 5; ++row) {
    std::optional<uint64_t> last;
    for (uint64_t i : acknowledged) {
      if (i % 5 == row) last = i;
    }
    const std::string value = Get(nullptr, StrCat("k", row));
    const uint64_t next = last.has_value() ? *last + 5 : row;
    const bool expected =
        (last.has_value() ? value == BigValue(static_cast<int>(*last)) : value == "<none>") ||
        value == BigValue(static_cast<int>(next));
    EXPECT_TRUE(expected) << "row " << row << ", " << acknowledged.size() << " acknowledged";
  }
  env_.reset();
  Inspect(dir_.path());
}

}  // namespace
}  // namespace fern
