#include "db/write_set.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "test_util.h"
#include "util/file.h"
#include "util/memory_budget.h"

namespace fern {
namespace {

using Entry = std::tuple<TableImpl*, std::string, bool>;  // table, key, sole write

// The set never looks through its table pointers: distinct addresses are enough.
TableImpl* FakeTable(uintptr_t n) { return reinterpret_cast<TableImpl*>(n * 64); }

std::vector<Entry> Entries(const WriteSet& set) {
  std::vector<Entry> out;
  Status s = set.ForEach([&out](TableImpl* table, std::string_view key, bool sole_write) {
    out.emplace_back(table, std::string(key), sole_write);
    return Status::OK();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

TEST(WriteSetTest, KeepsEachKeyOnceInTheOrderFirstWritten) {
  WriteSet set;
  EXPECT_TRUE(set.empty());
  set.Note(FakeTable(1), "b", /*own=*/true);
  set.Note(FakeTable(1), "a", /*own=*/true);
  set.Note(FakeTable(1), "b", /*own=*/true);   // written twice: no longer a sole write
  set.Note(FakeTable(2), "a", /*own=*/true);   // another table's key is another entry
  set.Note(FakeTable(1), "c", /*own=*/false);  // a committed child's: never sole
  set.Note(FakeTable(1), "", /*own=*/true);    // the empty key is a key
  ASSERT_EQ(set.size(), 5u);
  EXPECT_EQ(Entries(set), (std::vector<Entry>{{FakeTable(1), "b", false},
                                              {FakeTable(1), "a", true},
                                              {FakeTable(2), "a", true},
                                              {FakeTable(1), "c", false},
                                              {FakeTable(1), "", true}}));
}

TEST(WriteSetTest, ReleaseEmptiesTheSetForReuse) {
  WriteSet set;
  for (int i = 0; i < 1000; ++i) set.Note(FakeTable(1), std::to_string(i), true);
  set.Release();
  EXPECT_TRUE(set.empty());
  set.Note(FakeTable(1), "7", true);
  set.Note(FakeTable(1), "7", true);
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(Entries(set), (std::vector<Entry>{{FakeTable(1), "7", false}}));
}

TEST(WriteSetTest, ForEachStopsAtTheFirstError) {
  WriteSet set;
  for (int i = 0; i < 10; ++i) set.Note(FakeTable(1), std::to_string(i), true);
  int visited = 0;
  Status s = set.ForEach([&visited](TableImpl*, std::string_view, bool) {
    return ++visited == 3 ? Status::IOError("stop") : Status::OK();
  });
  EXPECT_TRUE(s.IsIOError());
  EXPECT_EQ(visited, 3);
}

// Random writes over three tables, keys of 0 to 300 bytes with many repeats, against a model
// of the contract: in memory each (table, key) once, in the order first written; when the
// set spills (spilled() grows), what was in memory goes to the rollback file, no longer a sole
// write, and the model starts a new chunk.
// `rollback_dir` empty: no rollback file.
void CheckAgainstModel(size_t memory_limit, const std::string& rollback_dir) {
  WriteSet set(memory_limit);
  if (!rollback_dir.empty()) set.SetRollbackFile(&rollback_dir, 42);
  const std::string rollback_path = rollback_dir + "/" + RollbackFileName(42);
  std::vector<Entry> spilled;
  std::map<std::pair<TableImpl*, std::string>, size_t> position;  // in `chunk`
  std::vector<Entry> chunk;
  std::mt19937 rng(5);
  size_t spills = 0;
  for (int step = 0; step < 200000; ++step) {
    TableImpl* table = FakeTable(1 + rng() % 3);
    std::string key = std::to_string(rng() % 50000);
    if (rng() % 8 == 0) key.append(rng() % 300, static_cast<char>('a' + rng() % 26));
    const bool own = rng() % 5 != 0;
    const size_t spilled_before = set.spilled();
    set.Note(table, key, own);
    auto [it, inserted] = position.try_emplace({table, key}, chunk.size());
    if (inserted) {
      chunk.emplace_back(table, key, own && spilled.empty());
    } else {
      std::get<2>(chunk[it->second]) = false;
    }
    if (set.spilled() != spilled_before) {
      ASSERT_EQ(set.spilled(), spilled_before + chunk.size()) << step;
      for (Entry& e : chunk) spilled.emplace_back(std::get<0>(e), std::get<1>(e), false);
      chunk.clear();
      position.clear();
      ++spills;
    }
    if (!rollback_dir.empty()) {
      ASSERT_LE(set.memory_bytes(), memory_limit + 1024) << step;
    }
  }
  if (rollback_dir.empty()) {
    EXPECT_EQ(spills, 0u);
  } else if (memory_limit < (size_t{1} << 20)) {
    EXPECT_GT(spills, 10u);
  }
  std::vector<Entry> expected = spilled;
  expected.insert(expected.end(), chunk.begin(), chunk.end());
  ASSERT_EQ(set.size(), expected.size());
  std::vector<Entry> got = Entries(set);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], expected[i]) << i;
  if (spills > 0) {
    EXPECT_TRUE(std::filesystem::exists(rollback_path));
  }
}

TEST(WriteSetTest, MatchesAModelOverManyWrites) {
  ASSERT_NO_FATAL_FAILURE(CheckAgainstModel(WriteSet::kDefaultMemoryLimit * 64, ""));
}

TEST(WriteSetTest, SpillsToItsRollbackFileAndReadsItBackInOrder) {
  testing::ScratchDir dir;
  ASSERT_NO_FATAL_FAILURE(CheckAgainstModel(size_t{64} << 10, dir.path()));
  EXPECT_FALSE(std::filesystem::exists(dir.Sub(RollbackFileName(42))));  // gone with its set
}

TEST(WriteSetTest, WithoutARollbackPathItNeverSpills) {
  ASSERT_NO_FATAL_FAILURE(CheckAgainstModel(size_t{64} << 10, ""));
}

TEST(WriteSetTest, ReleaseRemovesTheRollbackFile) {
  testing::ScratchDir dir;
  const std::string path = dir.Sub(RollbackFileName(7));
  {
    WriteSet set(4096);
    set.SetRollbackFile(&dir.path(), 7);
    for (int i = 0; i < 1000; ++i) set.Note(FakeTable(1), testing::NumberedKey(i), true);
    EXPECT_GT(set.spilled(), 0u);
    EXPECT_TRUE(std::filesystem::exists(path));
    set.Release();
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_TRUE(set.empty());
    // Reusable, and it spills again.
    for (int i = 0; i < 1000; ++i) set.Note(FakeTable(2), testing::NumberedKey(i), true);
    EXPECT_GT(set.spilled(), 0u);
    EXPECT_EQ(Entries(set).size(), 1000u);
  }
  EXPECT_FALSE(std::filesystem::exists(path));  // the destructor too
}

TEST(WriteSetTest, AnUnwritableRollbackFileKeepsTheEntriesInMemory) {
  testing::ScratchDir dir;
  WriteSet set(4096);
  const std::string missing = dir.Sub("missing");
  set.SetRollbackFile(&missing, 1);
  for (int i = 0; i < 2000; ++i) set.Note(FakeTable(1), testing::NumberedKey(i), true);
  EXPECT_EQ(set.spilled(), 0u);
  std::vector<Entry> got = Entries(set);
  ASSERT_EQ(got.size(), 2000u);
  for (int i = 0; i < 2000; ++i) {
    EXPECT_EQ(got[i], Entry(FakeTable(1), testing::NumberedKey(i), true)) << i;
  }
}

TEST(WriteSetTest, DamageToTheRollbackFileIsCorruptionNamingIt) {
  for (int damage = 0; damage < 3; ++damage) {
    testing::ScratchDir dir;
    const std::string path = dir.Sub(RollbackFileName(9));
    WriteSet set(4096);
    set.SetRollbackFile(&dir.path(), 9);
    for (int i = 0; i < 1000; ++i) set.Note(FakeTable(1), testing::NumberedKey(i), true);
    ASSERT_GT(set.spilled(), 0u);
    uint64_t size = std::filesystem::file_size(path);
    std::unique_ptr<File> file;
    ASSERT_TRUE(File::Open(path, File::Mode::kReadWrite, &file).ok());
    if (damage == 0) {
      ASSERT_TRUE(file->Write(0, "XXXX").ok());  // the magic
    } else if (damage == 1) {
      ASSERT_TRUE(file->Write(size / 2, "\x7f\x7f\x7f").ok());  // inside a block
    } else {
      ASSERT_TRUE(file->Truncate(size - 5).ok());
    }
    Status s = set.ForEach([](TableImpl*, std::string_view, bool) { return Status::OK(); });
    EXPECT_TRUE(s.IsCorruption()) << damage << ": " << s.ToString();
    EXPECT_NE(s.ToString().find(path), std::string::npos) << s.ToString();
  }
}

TEST(WriteSetTest, AbsorbAddsASmallerChildsKeysAsNotSole) {
  WriteSet parent;
  WriteSet child;
  parent.Note(FakeTable(1), "p", /*own=*/true);
  parent.Note(FakeTable(1), "both", /*own=*/true);
  parent.Note(FakeTable(2), "p2", /*own=*/true);
  child.Note(FakeTable(1), "c", /*own=*/true);
  child.Note(FakeTable(1), "both", /*own=*/true);
  ASSERT_TRUE(parent.Absorb(&child).ok());
  EXPECT_TRUE(child.empty());
  EXPECT_EQ(Entries(parent), (std::vector<Entry>{{FakeTable(1), "p", true},
                                                 {FakeTable(1), "both", false},
                                                 {FakeTable(2), "p2", true},
                                                 {FakeTable(1), "c", false}}));
}

// A child larger than its parent gives it its contents, rollback file included; the
// parent's own keys join them, and no key is a sole write any more.
TEST(WriteSetTest, AbsorbKeepsALargerChildsSetRollbackFileAndBudgetIncluded) {
  testing::ScratchDir dir;
  MemoryBudget budget(size_t{1} << 30);
  WriteSet parent(4096);
  WriteSet child(4096);
  parent.SetRollbackFile(&dir.path(), 1, nullptr, &budget);
  child.SetRollbackFile(&dir.path(), 2, nullptr, &budget);
  for (int i = 0; i < 600; ++i) parent.Note(FakeTable(1), testing::NumberedKey(i), true);
  for (int i = 300; i < 2000; ++i) child.Note(FakeTable(2), testing::NumberedKey(i), true);
  child.Note(FakeTable(1), testing::NumberedKey(5), true);
  ASSERT_GT(parent.spilled(), 0u);
  ASSERT_GT(child.spilled(), 0u);
  ASSERT_TRUE(parent.Absorb(&child).ok());
  EXPECT_TRUE(child.empty());
  EXPECT_EQ(budget.used(), parent.memory_bytes());
  // The parent's former file is gone; the child's now holds the parent's spilled entries.
  EXPECT_FALSE(std::filesystem::exists(dir.Sub(RollbackFileName(1))));
  EXPECT_TRUE(std::filesystem::exists(dir.Sub(RollbackFileName(2))));
  std::map<std::pair<TableImpl*, std::string>, int> seen;
  for (const auto& [table, key, sole] : Entries(parent)) {
    EXPECT_FALSE(sole) << key;
    ++seen[std::make_pair(table, key)];
  }
  auto times = [&](uintptr_t table, int i) {
    return seen[std::make_pair(FakeTable(table), testing::NumberedKey(i))];
  };
  // Keys recorded again after a spill may appear twice; none is missing.
  for (int i = 0; i < 600; ++i) EXPECT_GE(times(1, i), 1) << i;
  for (int i = 300; i < 2000; ++i) EXPECT_GE(times(2, i), 1) << i;
  // It goes on as the parent's set: more keys, then its release removes the file.
  for (int i = 0; i < 1000; ++i) parent.Note(FakeTable(3), testing::NumberedKey(i), true);
  parent.Release();
  EXPECT_FALSE(std::filesystem::exists(dir.Sub(RollbackFileName(2))));
  EXPECT_EQ(budget.used(), 0u);
}

TEST(WriteSetTest, RollbackFileNames) {
  EXPECT_EQ(RollbackFileName(123), "txn-123.rollback");
  EXPECT_TRUE(IsRollbackFileName("txn-123.rollback"));
  EXPECT_FALSE(IsRollbackFileName("txn-.rollback"));
  EXPECT_FALSE(IsRollbackFileName("txn-12a.rollback"));
  EXPECT_FALSE(IsRollbackFileName("txn-12.rollback.tmp"));
  EXPECT_FALSE(IsRollbackFileName("table-12.ft"));
}

}  // namespace
}  // namespace fern
