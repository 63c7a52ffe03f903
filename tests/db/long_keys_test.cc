// Long keys: the pivots that splits and loads place between partitions are short prefixes
// (PivotBetween), not whole keys, and every read still finds exactly the rows it should —
// above all at keys equal to a pivot or lying between a partition's last row and its pivot.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fern/fern.h"
#include "ft/tree_inspector.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

using testing::ScratchDir;

constexpr int kRows = 3000;
constexpr size_t kKeyBytes = 1024;

// A 16-digit number, then letters: keys differ within their first 16 bytes.
std::string LongKey(int i) {
  const std::string digits = std::to_string(i);
  std::string key = std::string(16 - digits.size(), '0') + digits;
  std::mt19937_64 rng(static_cast<uint64_t>(i));
  while (key.size() < kKeyBytes) key.push_back(static_cast<char>('a' + rng() % 26));
  return key;
}

std::string ValueOf(std::string_view key, int version) {
  return std::string(key.substr(0, 16)) + "#" + std::to_string(version);
}

// Keys a read may be asked for between stored rows: each row's prefixes of 13 to 17 bytes
// (pivots are such prefixes) and the row with a byte appended or its last byte removed.
std::vector<std::string> Probes(const std::map<std::string, std::string>& model) {
  std::vector<std::string> probes;
  for (const auto& [key, value] : model) {
    for (size_t n = 13; n <= 17 && n < key.size(); ++n) probes.push_back(key.substr(0, n));
    probes.push_back(key + '\0');
    probes.push_back(key.substr(0, key.size() - 1));
  }
  return probes;
}

// Every Get, Seek, SeekForPrev and both full scans agree with the model.
void ExpectMatches(Table* table, const std::map<std::string, std::string>& model) {
  std::string value;
  for (const auto& [key, expected] : model) {
    Status s = table->Get(nullptr, key, &value);
    ASSERT_TRUE(s.ok()) << key.substr(0, 20) << ": " << s.ToString();
    ASSERT_EQ(value, expected);
  }
  std::unique_ptr<Cursor> cursor = table->NewCursor(nullptr);
  size_t checked = 0;
  for (const std::string& probe : Probes(model)) {
    if (model.count(probe) == 0) {
      ASSERT_TRUE(table->Get(nullptr, probe, &value).IsNotFound()) << probe.substr(0, 20);
    }
    // Every 7th probe through the cursor: enough to cross every pivot, quicker than all.
    if (++checked % 7 != 0) continue;
    auto at_or_after = model.lower_bound(probe);
    cursor->Seek(probe);
    ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
    ASSERT_EQ(cursor->Valid(), at_or_after != model.end()) << probe.substr(0, 20);
    if (cursor->Valid()) {
      ASSERT_EQ(cursor->key(), at_or_after->first) << probe.substr(0, 20);
    }
    auto after = model.upper_bound(probe);
    cursor->SeekForPrev(probe);
    ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
    ASSERT_EQ(cursor->Valid(), after != model.begin()) << probe.substr(0, 20);
    if (cursor->Valid()) {
      ASSERT_EQ(cursor->key(), std::prev(after)->first) << probe.substr(0, 20);
    }
  }
  auto it = model.begin();
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next(), ++it) {
    ASSERT_NE(it, model.end());
    ASSERT_EQ(cursor->key(), it->first);
    ASSERT_EQ(cursor->value(), it->second);
  }
  ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  ASSERT_EQ(it, model.end());
  auto rit = model.rbegin();
  for (cursor->SeekToLast(); cursor->Valid(); cursor->Prev(), ++rit) {
    ASSERT_NE(rit, model.rend());
    ASSERT_EQ(cursor->key(), rit->first);
  }
  ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  ASSERT_EQ(rit, model.rend());
}

// The closed table's file checks clean, and its pivots average under `max_average` bytes.
void ExpectShortPivots(const std::string& dir, double max_average) {
  TreeReport report;
  ASSERT_TRUE(InspectTreeFile(dir + "/table-1.ft", InspectOptions(), &report).ok());
  for (const InspectProblem& p : report.problems) ADD_FAILURE() << p.block << ": " << p.what;
  uint64_t pivots = 0;
  uint64_t bytes = 0;
  for (size_t level = 0; level < report.nodes_per_level.size(); ++level) {
    // A node with n partitions has n - 1 pivots.
    pivots += report.partitions_per_level[level] - report.nodes_per_level[level];
    bytes += report.pivot_bytes_per_level[level];
  }
  ASSERT_GT(pivots, 100u) << "the test needs a tree of many partitions";
  EXPECT_LT(static_cast<double>(bytes) / static_cast<double>(pivots), max_average)
      << bytes << " pivot bytes over " << pivots << " pivots";
}

class LongKeysTest : public ::testing::Test {
 protected:
  void Open() {
    Options options;
    options.cache_bytes = size_t{4} << 20;  // below the data: nodes are evicted and re-read
    options.sync_commits = false;
    ASSERT_TRUE(Env::Open(dir_.path(), options, &env_).ok());
    ASSERT_TRUE(env_->OpenTable("t", testing::SmallTreeOptions(), &table_).ok());
  }
  void Close() {
    table_ = nullptr;
    env_.reset();
  }

  ScratchDir dir_;
  std::unique_ptr<Env> env_;
  Table* table_ = nullptr;
  std::map<std::string, std::string> model_;
};

TEST_F(LongKeysTest, SplitsPlaceShortPivotsAndReadsFindEveryRow) {
  ASSERT_NO_FATAL_FAILURE(Open());
  std::vector<int> order(kRows);
  for (int i = 0; i < kRows; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(3));
  for (int i : order) {
    const std::string key = LongKey(i);
    ASSERT_TRUE(table_->Put(nullptr, key, ValueOf(key, 0)).ok());
    model_[key] = ValueOf(key, 0);
  }
  ASSERT_TRUE(table_->Optimize().ok());
  ASSERT_NO_FATAL_FAILURE(ExpectMatches(table_, model_));
  Close();
  // Whole keys would average over 1,000 bytes.
  ASSERT_NO_FATAL_FAILURE(ExpectShortPivots(dir_.path(), 24.0));

  // Rows at the pivots themselves (the short prefixes) and beside them, deletes of every
  // third long key, then the same reads before and after a reopen.
  ASSERT_NO_FATAL_FAILURE(Open());
  std::mt19937_64 rng(5);
  std::vector<std::string> probes = Probes(model_);
  for (size_t i = 0; i < probes.size(); i += 1 + rng() % 5) {
    ASSERT_TRUE(table_->Put(nullptr, probes[i], ValueOf(probes[i], 1)).ok());
    model_[probes[i]] = ValueOf(probes[i], 1);
  }
  for (int i = 0; i < kRows; i += 3) {
    ASSERT_TRUE(table_->Delete(nullptr, LongKey(i)).ok());
    model_.erase(LongKey(i));
  }
  ASSERT_NO_FATAL_FAILURE(ExpectMatches(table_, model_));
  ASSERT_TRUE(table_->Optimize().ok());
  ASSERT_NO_FATAL_FAILURE(ExpectMatches(table_, model_));
  Close();
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_NO_FATAL_FAILURE(ExpectMatches(table_, model_));
  Close();
  TreeReport report;
  ASSERT_TRUE(InspectTreeFile(dir_.path() + "/table-1.ft", InspectOptions(), &report).ok());
  for (const InspectProblem& p : report.problems) ADD_FAILURE() << p.block << ": " << p.what;
}

TEST_F(LongKeysTest, ALoadPlacesShortPivotsAndReadsFindEveryRow) {
  ASSERT_NO_FATAL_FAILURE(Open());
  std::unique_ptr<Loader> loader;
  ASSERT_TRUE(env_->NewLoader(table_, &loader).ok());
  for (int i = 0; i < kRows; ++i) {
    const std::string key = LongKey(i);
    ASSERT_TRUE(loader->Add(key, ValueOf(key, 0)).ok());
    model_[key] = ValueOf(key, 0);
  }
  Status s = loader->Finish();
  ASSERT_TRUE(s.ok()) << s.ToString();
  loader.reset();
  ASSERT_NO_FATAL_FAILURE(ExpectMatches(table_, model_));
  Close();
  ASSERT_NO_FATAL_FAILURE(ExpectShortPivots(dir_.path(), 24.0));

  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_NO_FATAL_FAILURE(ExpectMatches(table_, model_));
  std::vector<std::string> probes = Probes(model_);
  for (size_t i = 0; i < probes.size(); i += 3) {
    ASSERT_TRUE(table_->Put(nullptr, probes[i], ValueOf(probes[i], 1)).ok());
    model_[probes[i]] = ValueOf(probes[i], 1);
  }
  ASSERT_NO_FATAL_FAILURE(ExpectMatches(table_, model_));
  Close();
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_NO_FATAL_FAILURE(ExpectMatches(table_, model_));
}

}  // namespace
}  // namespace fern
