// The model test: random operations against Fern and against std::map, compared after
// every read, on small nodes so trees grow several levels and every structural change
// (promotion, flush, split, merge, partial fetch, eviction) happens.
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

using testing::ScratchDir;
using testing::StatValue;

class ModelTest : public ::testing::Test {
 protected:
  void OpenEnv() {
    Options options;
    options.cache_bytes = size_t{4} << 20;  // far below the data: forces eviction
    options.sync_commits = false;           // durability is the crash tests' business
    ASSERT_TRUE(Env::Open(dir_.path(), options, &env_).ok());
    TableOptions table_options;
    table_options.node_bytes = 64 << 10;
    table_options.basement_bytes = 4 << 10;
    // Alternate codecs across reopens: old partitions must stay readable.
    static const Compression kCodecs[] = {Compression::kZstd, Compression::kSnappy,
                                          Compression::kZlib, Compression::kNone,
                                          Compression::kLzma};
    table_options.compression = kCodecs[reopens_ % 5];
    Status s = env_->OpenTable("model", table_options, &table_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void AddCounters() {
    std::string stats;
    ASSERT_TRUE(env_->GetProperty("fern.stats", &stats));
    for (const char* counter : kCounters) {
      int64_t v = StatValue(stats, std::string("table.model.") + counter);
      ASSERT_GE(v, 0) << counter << " missing from fern.stats:\n" << stats;
      totals_[counter] += v;
    }
    int64_t evictions = StatValue(stats, "cache.full_evictions");
    ASSERT_GE(evictions, 0) << stats;
    totals_["cache.full_evictions"] += evictions;
  }

  void Reopen() {
    ASSERT_NO_FATAL_FAILURE(AddCounters());
    table_ = nullptr;
    env_.reset();
    ++reopens_;
    OpenEnv();
  }

  std::string RandomKey() {
    // Keys of varied length sharing prefixes, from a bounded space so keys repeat.
    uint64_t k = rng_() % key_space_;
    std::string key = "k" + std::to_string(k * 7919 % 1000003);
    if (k % 3 == 0) key += std::string(k % 40, 'x');
    return key;
  }

  std::string RandomValue() {
    size_t n = rng_() % 160;
    std::string value(n, '\0');
    for (char& c : value) c = static_cast<char>('a' + rng_() % 26);
    return value;
  }

  void CheckGet(const std::string& key) {
    std::string value;
    Status s = table_->Get(nullptr, key, &value);
    auto it = model_.find(key);
    if (it == model_.end()) {
      ASSERT_TRUE(s.IsNotFound()) << key << ": " << s.ToString();
    } else {
      ASSERT_TRUE(s.ok()) << key << ": " << s.ToString();
      ASSERT_EQ(value, it->second) << key;
    }
  }

  void CheckFullScans() {
    auto cursor = table_->NewCursor(nullptr);
    auto it = model_.begin();
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next(), ++it) {
      ASSERT_NE(it, model_.end());
      ASSERT_EQ(cursor->key(), it->first);
      ASSERT_EQ(cursor->value(), it->second);
    }
    ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
    ASSERT_EQ(it, model_.end());

    auto rit = model_.rbegin();
    for (cursor->SeekToLast(); cursor->Valid(); cursor->Prev(), ++rit) {
      ASSERT_NE(rit, model_.rend());
      ASSERT_EQ(cursor->key(), rit->first);
    }
    ASSERT_TRUE(cursor->status().ok());
    ASSERT_EQ(rit, model_.rend());
  }

  void CheckSeeks(int seeks) {
    auto cursor = table_->NewCursor(nullptr);
    for (int i = 0; i < seeks; ++i) {
      std::string target = RandomKey();
      if (rng_() % 2 == 0) {
        cursor->Seek(target);
        auto it = model_.lower_bound(target);
        for (int step = 0; step < 8; ++step, ++it) {
          if (it == model_.end()) {
            ASSERT_FALSE(cursor->Valid());
            break;
          }
          ASSERT_TRUE(cursor->Valid());
          ASSERT_EQ(cursor->key(), it->first);
          ASSERT_EQ(cursor->value(), it->second);
          cursor->Next();
        }
      } else {
        cursor->SeekForPrev(target);
        auto it = model_.upper_bound(target);
        for (int step = 0; step < 8; ++step) {
          if (it == model_.begin()) {
            ASSERT_FALSE(cursor->Valid());
            break;
          }
          --it;
          ASSERT_TRUE(cursor->Valid());
          ASSERT_EQ(cursor->key(), it->first);
          cursor->Prev();
        }
      }
      ASSERT_TRUE(cursor->status().ok());
    }
  }

  ScratchDir dir_;
  std::unique_ptr<Env> env_;
  Table* table_ = nullptr;
  std::map<std::string, std::string> model_;
  std::mt19937_64 rng_{20261122};
  uint64_t key_space_ = 60000;
  int reopens_ = 0;
  std::map<std::string, int64_t> totals_;
  static constexpr const char* kCounters[] = {
      "promotions",  "flushes",         "leaf_splits",     "internal_splits",  "root_splits",
      "leaf_merges", "basement_splits", "basement_merges", "basements_fetched"};
};

TEST_F(ModelTest, MillionRandomOperationsMatchStdMap) {
  OpenEnv();
  constexpr int kOperations = 1'000'000;
  for (int op = 0; op < kOperations; ++op) {
    // Three phases: grow, churn, shrink (so merges happen), by changing the put/delete mix.
    int put_percent = op < 400'000 ? 75 : (op < 700'000 ? 45 : 15);
    uint64_t dice = rng_() % 100;
    std::string key = RandomKey();
    if (dice < static_cast<uint64_t>(put_percent)) {
      std::string value = RandomValue();
      ASSERT_TRUE(table_->Put(nullptr, key, value).ok());
      model_[key] = value;
    } else if (dice < 85) {
      ASSERT_TRUE(table_->Delete(nullptr, key).ok());
      model_.erase(key);
    } else {
      ASSERT_NO_FATAL_FAILURE(CheckGet(key));
    }
    if (op % 50'000 == 49'999) {
      ASSERT_NO_FATAL_FAILURE(CheckSeeks(200));
    }
    if (op % 100'000 == 99'999) {
      ASSERT_NO_FATAL_FAILURE(CheckFullScans());
    }
    if (op % 130'000 == 129'999) {
      ASSERT_TRUE(env_->Checkpoint().ok());
    }
    if (op % 250'000 == 249'999) {
      ASSERT_NO_FATAL_FAILURE(Reopen());
    }
  }
  ASSERT_NO_FATAL_FAILURE(CheckFullScans());
  ASSERT_TRUE(table_->Optimize().ok());
  ASSERT_NO_FATAL_FAILURE(CheckFullScans());

  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_NO_FATAL_FAILURE(CheckFullScans());
  // Counters restart at each reopen; the totals over all segments prove the machinery ran.
  for (const char* counter : kCounters) EXPECT_GT(totals_[counter], 0) << counter;
  EXPECT_GT(totals_["cache.full_evictions"], 0);
  std::cout << "model test totals:";
  for (const auto& [name, value] : totals_) std::cout << " " << name << "=" << value;
  std::cout << "\n";
}

}  // namespace
}  // namespace fern
