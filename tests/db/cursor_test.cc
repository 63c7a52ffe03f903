// Cursors and point reads over trees whose ancestors hold pending messages: every seek
// position, keys between basements, batches that pending deletes empty, broadcasts, walks
// that turn around across basement bounds, the ReadBatch range contract itself, and readers
// in several threads while one thread writes.
//
// The trees are built directly (FractalTree over a Cachetable) with 4 KiB nodes, 512-byte
// basements and fanout 4, so a few thousand rows make a tree of several levels with
// hundreds of basements and messages buffered at every level.
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cachetable/cachetable.h"
#include "db/cursor_impl.h"
#include "fern/fern.h"
#include "ft/row_batch.h"
#include "ft/tree.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

using testing::ScratchDir;
using Locate = FractalTree::Locate;

std::string Key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "k%06d", i);
  return buf;
}

class CursorTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(size_t{64} << 20); }

  void Open(size_t cache_bytes) {
    cache_ = std::make_unique<Cachetable>(cache_bytes);
    model_.clear();
    update_ = [](std::string_view, const std::string_view* old,
                 std::string_view extra) -> std::optional<std::string> {
      if (extra == "delete") return std::nullopt;
      return (old ? std::string(*old) : std::string()) + std::string(extra);
    };
    TreeConfig config;
    config.comparator = BytewiseComparator();
    config.node_bytes = 4096;
    config.basement_bytes = 512;
    config.fanout = 4;
    config.update_function = &update_;
    std::unique_ptr<FractalTree> tree;
    Status s = FractalTree::Create(dir_.Sub("t" + std::to_string(opens_++) + ".ft"), config,
                                   cache_.get(), &tree);
    ASSERT_TRUE(s.ok()) << s.ToString();
    tree_ = std::move(tree);
  }

  void TearDown() override {
    if (tree_ != nullptr) {
      EXPECT_TRUE(tree_->Close(/*checkpoint=*/false).ok());
    }
    tree_.reset();
    cache_.reset();
  }

  std::unique_ptr<CursorImpl> NewCursor() {
    return std::make_unique<CursorImpl>(tree_, Status::OK());
  }

  void Put(const std::string& key, const std::string& value) {
    ASSERT_TRUE(tree_->Put(key, value).ok());
    model_[key] = value;
  }
  void Delete(const std::string& key) {
    ASSERT_TRUE(tree_->Delete(key).ok());
    model_.erase(key);
  }
  void Append(const std::string& key, const std::string& extra) {
    ASSERT_TRUE(tree_->Update(key, extra).ok());
    model_[key] += extra;
  }
  void AppendToAll(const std::string& extra) {
    ASSERT_TRUE(tree_->UpdateAll(extra).ok());
    for (auto& [key, value] : model_) value += extra;
  }

  // Rows at every third key, pushed down to the leaves, then a second wave of writes of
  // every kind that stays buffered above them. Returns the number of key slots used.
  int BuildWithPendingMessages() {
    constexpr int kSlots = 6000;
    for (int i = 0; i < kSlots; i += 3) Put(Key(i), "base" + std::to_string(i));
    EXPECT_TRUE(tree_->Optimize().ok());
    std::mt19937 rng(7);
    for (int n = 0; n < 700; ++n) {
      int i = static_cast<int>(rng() % kSlots);
      switch (rng() % 5) {
        case 0:
        case 1:
          Put(Key(i), "new" + std::to_string(n));
          break;
        case 2:
          Delete(Key(i));
          break;
        case 3:
          Append(Key(i), "+u" + std::to_string(n));
          break;
        case 4:
          if (model_.count(Key(i)) != 0) Append(Key(i), "+v");
          break;
      }
    }
    AppendToAll("!");
    Put(Key(1), "after the broadcast");
    return kSlots;
  }

  uint64_t BufferedMessages() {
    TreeShape shape;
    EXPECT_TRUE(tree_->Shape(&shape).ok());
    uint64_t total = 0;
    for (uint64_t m : shape.messages_per_level) total += m;
    return total;
  }

  // Seek and SeekForPrev to `target`, each followed by `steps` moves, against the model.
  void CheckSeeksAt(Cursor* cursor, const std::string& target, int steps) {
    cursor->Seek(target);
    auto it = model_.lower_bound(target);
    for (int step = 0; step < steps; ++step, ++it) {
      if (it == model_.end()) {
        ASSERT_FALSE(cursor->Valid()) << "Seek " << target << " step " << step;
        break;
      }
      ASSERT_TRUE(cursor->Valid()) << "Seek " << target << " step " << step;
      ASSERT_EQ(cursor->key(), it->first) << "Seek " << target << " step " << step;
      ASSERT_EQ(cursor->value(), it->second) << "Seek " << target << " step " << step;
      cursor->Next();
    }
    cursor->SeekForPrev(target);
    auto rit = model_.upper_bound(target);
    for (int step = 0; step < steps; ++step) {
      if (rit == model_.begin()) {
        ASSERT_FALSE(cursor->Valid()) << "SeekForPrev " << target << " step " << step;
        break;
      }
      --rit;
      ASSERT_TRUE(cursor->Valid()) << "SeekForPrev " << target << " step " << step;
      ASSERT_EQ(cursor->key(), rit->first) << "SeekForPrev " << target << " step " << step;
      ASSERT_EQ(cursor->value(), rit->second) << "SeekForPrev " << target << " step " << step;
      cursor->Prev();
    }
    ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  }

  void CheckFullScans() {
    auto cursor = NewCursor();
    auto it = model_.begin();
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next(), ++it) {
      ASSERT_NE(it, model_.end());
      ASSERT_EQ(cursor->key(), it->first);
      ASSERT_EQ(cursor->value(), it->second) << it->first;
    }
    ASSERT_EQ(it, model_.end());
    auto rit = model_.rbegin();
    for (cursor->SeekToLast(); cursor->Valid(); cursor->Prev(), ++rit) {
      ASSERT_NE(rit, model_.rend());
      ASSERT_EQ(cursor->key(), rit->first);
      ASSERT_EQ(cursor->value(), rit->second) << rit->first;
    }
    ASSERT_EQ(rit, model_.rend());
    ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  }

  ScratchDir dir_;
  UpdateFunction update_;
  std::unique_ptr<Cachetable> cache_;
  std::shared_ptr<FractalTree> tree_;
  std::map<std::string, std::string> model_;
  int opens_ = 0;
};

TEST_F(CursorTest, SeeksAtEveryPositionSeePendingMessages) {
  const int slots = BuildWithPendingMessages();
  ASSERT_GT(BufferedMessages(), 200u) << "the test needs messages pending above the leaves";
  auto cursor = NewCursor();
  // Every stored key, every key between two stored keys (so also every key between two
  // basements), and keys beyond both ends.
  for (int i = 0; i < slots + 2; ++i)
    ASSERT_NO_FATAL_FAILURE(CheckSeeksAt(cursor.get(), Key(i), 4));
  ASSERT_NO_FATAL_FAILURE(CheckSeeksAt(cursor.get(), "", 4));
  ASSERT_NO_FATAL_FAILURE(CheckSeeksAt(cursor.get(), "k", 4));
  ASSERT_NO_FATAL_FAILURE(CheckSeeksAt(cursor.get(), "l", 4));
  ASSERT_NO_FATAL_FAILURE(CheckFullScans());
}

TEST_F(CursorTest, PointReadsSeePendingMessages) {
  const int slots = BuildWithPendingMessages();
  ASSERT_GT(BufferedMessages(), 200u);
  for (int i = 0; i < slots; ++i) {
    std::string value;
    Status s = tree_->Get(Key(i), &value);
    auto it = model_.find(Key(i));
    if (it == model_.end()) {
      ASSERT_TRUE(s.IsNotFound()) << Key(i) << ": " << s.ToString();
    } else {
      ASSERT_TRUE(s.ok()) << Key(i) << ": " << s.ToString();
      ASSERT_EQ(value, it->second) << Key(i);
    }
  }
}

TEST_F(CursorTest, PendingDeletesThatEmptyManyBasementsAreSkipped) {
  for (int i = 0; i < 4000; ++i) Put(Key(i), "v" + std::to_string(i));
  ASSERT_TRUE(tree_->Optimize().ok());
  // Thousands of rows (dozens of basements) deleted by messages still above the leaves.
  for (int i = 1000; i < 3000; ++i) Delete(Key(i));
  ASSERT_GT(BufferedMessages(), 0u);
  auto cursor = NewCursor();
  cursor->Seek(Key(1500));
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(3000));
  cursor->Prev();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(999));
  cursor->SeekForPrev(Key(2500));
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(999));
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(3000));
  ASSERT_NO_FATAL_FAILURE(CheckFullScans());
}

TEST_F(CursorTest, PendingBroadcastReachesEveryRowOfEveryBatch) {
  for (int i = 0; i < 3000; ++i) Put(Key(i), "v");
  ASSERT_TRUE(tree_->Optimize().ok());
  AppendToAll("!");
  Append(Key(10), "?");   // keyed after the broadcast
  Delete(Key(11));        // a delete after it
  Put(Key(12), "fresh");  // an overwrite after it
  AppendToAll("#");       // and a second broadcast after those
  ASSERT_GT(BufferedMessages(), 0u);
  ASSERT_NO_FATAL_FAILURE(CheckFullScans());
  auto cursor = NewCursor();
  ASSERT_NO_FATAL_FAILURE(CheckSeeksAt(cursor.get(), Key(10), 3));
  std::string value;
  ASSERT_TRUE(tree_->Get(Key(10), &value).ok());
  EXPECT_EQ(value, "v!?#");
  EXPECT_TRUE(tree_->Get(Key(11), &value).IsNotFound());
  ASSERT_TRUE(tree_->Get(Key(12), &value).ok());
  EXPECT_EQ(value, "fresh#");
}

TEST_F(CursorTest, RandomWalkTurnsAroundAcrossBasementBounds) {
  BuildWithPendingMessages();
  auto cursor = NewCursor();
  std::mt19937 rng(11);
  cursor->Seek(Key(3000));
  auto it = model_.lower_bound(Key(3000));
  bool forward = true;
  int run = 0;
  for (int step = 0; step < 30000; ++step) {
    ASSERT_TRUE(cursor->Valid()) << step;
    ASSERT_EQ(cursor->key(), it->first) << step;
    ASSERT_EQ(cursor->value(), it->second) << step;
    // Runs of up to 80 steps one way, so walks cross several basements before turning.
    if (run-- == 0) {
      forward = !forward;
      run = static_cast<int>(rng() % 80);
    }
    if (forward && std::next(it) != model_.end()) {
      cursor->Next();
      ++it;
    } else if (it != model_.begin()) {
      cursor->Prev();
      --it;
    } else {
      cursor->Next();
      ++it;
    }
  }
  ASSERT_TRUE(cursor->status().ok());
}

// The contract of ReadBatch itself: the batch holds exactly the model's rows in
// [lower, upper), the range starts or ends where the request says, and its stored rows
// stay within max_rows plus whatever pending messages add.
TEST_F(CursorTest, ReadBatchHoldsExactlyTheRowsOfItsRange) {
  const int slots = BuildWithPendingMessages();
  const Comparator& cmp = *BytewiseComparator();
  RowBatch batch;
  std::mt19937 rng(5);
  const Locate kinds[] = {Locate::kFirst, Locate::kAtOrAfter, Locate::kLast, Locate::kAtOrBefore,
                          Locate::kBefore};
  for (int n = 0; n < 4000; ++n) {
    Locate where = kinds[rng() % 5];
    std::string key = Key(static_cast<int>(rng() % (slots + 1)));
    size_t max_rows = 1 + rng() % 40;
    ASSERT_TRUE(tree_->ReadBatch(where, key, max_rows, &batch).ok());
    auto first = batch.has_lower ? model_.lower_bound(batch.lower) : model_.begin();
    auto last = batch.has_upper ? model_.lower_bound(batch.upper) : model_.end();
    size_t i = 0;
    for (auto it = first; it != last; ++it, ++i) {
      ASSERT_LT(i, batch.size()) << "missing " << it->first;
      ASSERT_EQ(batch.key(i), it->first);
      ASSERT_EQ(batch.value(i), it->second);
    }
    ASSERT_EQ(i, batch.size());
    switch (where) {
      case Locate::kFirst:
        EXPECT_FALSE(batch.has_lower);
        break;
      case Locate::kLast:
        EXPECT_FALSE(batch.has_upper);
        break;
      case Locate::kAtOrAfter:
        ASSERT_TRUE(batch.has_lower);
        EXPECT_EQ(batch.lower, key);
        EXPECT_TRUE(!batch.has_upper || cmp.Compare(batch.upper, key) > 0);
        break;
      case Locate::kBefore:
        ASSERT_TRUE(batch.has_upper);
        EXPECT_EQ(batch.upper, key);
        EXPECT_TRUE(!batch.has_lower || cmp.Compare(batch.lower, key) < 0);
        break;
      case Locate::kAtOrBefore:
        EXPECT_TRUE(!batch.has_upper || cmp.Compare(batch.upper, key) > 0);
        EXPECT_TRUE(!batch.has_lower || cmp.Compare(batch.lower, key) <= 0);
        break;
    }
    if (batch.has_lower && batch.has_upper) {
      EXPECT_LT(cmp.Compare(batch.lower, batch.upper), 0);
    }
  }
}

// Opens an Env in `dir` with a 50 ms lock timeout and its table "t" with `table_options`,
// and begins a serializable transaction in *reader.
void OpenForSerializableReads(const std::string& dir, const TableOptions& table_options,
                              std::unique_ptr<Env>* env, Table** table,
                              std::unique_ptr<Txn>* reader) {
  Options options;
  options.lock_timeout_ms = 50;
  ASSERT_TRUE(Env::Open(dir, options, env).ok());
  ASSERT_TRUE((*env)->OpenTable("t", table_options, table).ok());
  TxnOptions serializable;
  serializable.isolation = Isolation::kSerializable;
  ASSERT_TRUE((*env)->Begin(serializable, reader).ok());
}

// A serializable cursor read-locks each batch's range (and reads the batch again under the
// lock): writers into what it has read wait, writers far from it do not.
TEST(SerializableCursorTest, BatchesAreReadLockedAsTheCursorMoves) {
  ScratchDir dir;
  TableOptions table_options;
  table_options.node_bytes = 4096;
  table_options.basement_bytes = 512;
  std::unique_ptr<Env> env;
  Table* table;
  std::unique_ptr<Txn> reader;
  ASSERT_NO_FATAL_FAILURE(
      OpenForSerializableReads(dir.path(), table_options, &env, &table, &reader));
  for (int i = 0; i < 3000; i += 2) ASSERT_TRUE(table->Put(nullptr, Key(i), "v").ok());
  auto cursor = table->NewCursor(reader.get());
  cursor->Seek(Key(1000));
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(cursor->Valid());
    ASSERT_EQ(cursor->key(), Key(1000 + 2 * i));
    cursor->Next();
  }
  ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  std::unique_ptr<Txn> writer;
  ASSERT_TRUE(env->Begin(TxnOptions(), &writer).ok());
  // A key the cursor walked past, and a gap between two of them (a phantom).
  EXPECT_TRUE(table->Put(writer.get(), Key(1010), "w").IsBusy());
  EXPECT_TRUE(table->Put(writer.get(), Key(1041), "w").IsBusy());
  EXPECT_TRUE(table->Put(writer.get(), Key(2901), "w").ok());
  cursor.reset();
  ASSERT_TRUE(reader->Commit().ok());
  EXPECT_TRUE(table->Put(writer.get(), Key(1010), "w").ok());
  ASSERT_TRUE(writer->Commit().ok());
}

// A serializable scan that reaches the end of the table locks the gap after its last row
// (and a scan of an empty table the whole key space), under any comparator; a cursor whose
// transaction ended fails rather than take locks for it.
TEST(SerializableCursorTest, ScansToTheEndLockOutRowsInsertedPastTheLastOne) {
  const testing::ReverseComparator reverse_order;
  for (const Comparator* comparator :
       {BytewiseComparator(), static_cast<const Comparator*>(&reverse_order)}) {
    SCOPED_TRACE(comparator->Name());
    ScratchDir dir;
    TableOptions table_options;
    table_options.comparator = comparator;
    std::unique_ptr<Env> env;
    Table* table;
    std::unique_ptr<Txn> reader, writer;
    ASSERT_NO_FATAL_FAILURE(
        OpenForSerializableReads(dir.path(), table_options, &env, &table, &reader));
    TxnOptions serializable;
    serializable.isolation = Isolation::kSerializable;
    auto empty_scan = table->NewCursor(reader.get());
    empty_scan->SeekToFirst();
    EXPECT_FALSE(empty_scan->Valid());
    ASSERT_TRUE(empty_scan->status().ok()) << empty_scan->status().ToString();
    ASSERT_TRUE(env->Begin(TxnOptions(), &writer).ok());
    EXPECT_TRUE(table->Put(writer.get(), "anything", "w").IsBusy());
    EXPECT_TRUE(table->Put(nullptr, "", "w").IsBusy());
    empty_scan.reset();
    ASSERT_TRUE(reader->Commit().ok());

    for (const char* key : {"b", "d", "f"}) ASSERT_TRUE(table->Put(writer.get(), key, "v").ok());
    ASSERT_TRUE(writer->Commit().ok());
    ASSERT_TRUE(env->Begin(serializable, &reader).ok());
    auto cursor = table->NewCursor(reader.get());
    int rows = 0;
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) ++rows;
    ASSERT_TRUE(cursor->status().ok()) << cursor->status().ToString();
    EXPECT_EQ(rows, 3);
    ASSERT_TRUE(env->Begin(TxnOptions(), &writer).ok());
    // Past the last row in the comparator's order, and before the first.
    const bool reverse = comparator != BytewiseComparator();
    EXPECT_TRUE(table->Put(writer.get(), reverse ? "a" : "g", "w").IsBusy());
    EXPECT_TRUE(table->Put(writer.get(), reverse ? "z" : "a", "w").IsBusy());
    ASSERT_TRUE(reader->Commit().ok());
    EXPECT_TRUE(table->Put(writer.get(), "g", "w").ok());
    cursor->SeekToFirst();
    EXPECT_TRUE(cursor->status().IsInvalidArgument()) << cursor->status().ToString();
    ASSERT_TRUE(writer->Commit().ok());
  }
}

// A serializable cursor reads each batch as of the lock it took on it, not as of the
// cursor's creation: a commit in between is seen, so a read-modify-write through it loses
// no update.
TEST(SerializableCursorTest, ReadsWhatWasCommittedBeforeItsLock) {
  ScratchDir dir;
  std::unique_ptr<Env> env;
  Table* table;
  std::unique_ptr<Txn> reader;
  ASSERT_NO_FATAL_FAILURE(
      OpenForSerializableReads(dir.path(), TableOptions(), &env, &table, &reader));
  ASSERT_TRUE(table->Put(nullptr, "k", "1").ok());
  auto cursor = table->NewCursor(reader.get());
  ASSERT_TRUE(table->Put(nullptr, "k", "2").ok());
  cursor->SeekToFirst();
  ASSERT_TRUE(cursor->Valid()) << cursor->status().ToString();
  EXPECT_EQ(cursor->value(), "2");
  EXPECT_TRUE(table->Put(nullptr, "k", "3").IsBusy());  // now locked
  ASSERT_TRUE(reader->Commit().ok());
}

// A scan that has read past FractalTree::StreamingScanBytes() reads the basements it finds
// on disk into transient copies instead of installing them: a full scan of a tree many
// times that size installs only its first stretch, counts the rest as streamed, and still
// returns every row with the messages pending above it, forward and backward; a short
// range scan keeps what it reads.
TEST(CursorStreamingTest, LongScansStreamWhatIsNotCachedShortScansKeepIt) {
  ScratchDir dir;
  TreeConfig config;
  config.comparator = BytewiseComparator();
  config.node_bytes = 64 << 10;
  config.basement_bytes = 2 << 10;
  const std::string path = dir.Sub("t.ft");
  constexpr int kRows = 30000;  // ~2.9 MB of rows in ~2,000 basements
  std::map<std::string, std::string> model;
  {
    Cachetable cache(size_t{64} << 20);
    std::unique_ptr<FractalTree> tree;
    ASSERT_TRUE(FractalTree::Create(path, config, &cache, &tree).ok());
    for (int i = 0; i < kRows; ++i) {
      model[Key(i)] = std::string(80, static_cast<char>('a' + i % 26));
      ASSERT_TRUE(tree->Put(Key(i), model[Key(i)]).ok());
    }
    ASSERT_TRUE(tree->Optimize().ok());
    ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
  }
  constexpr size_t kBudget = size_t{4} << 20;  // a scan streams after 512 KiB
  Cachetable cache(kBudget);
  std::unique_ptr<FractalTree> opened;
  ASSERT_TRUE(FractalTree::Open(path, config, &cache, &opened).ok());
  std::shared_ptr<FractalTree> tree = std::move(opened);
  ASSERT_EQ(tree->StreamingScanBytes(), kBudget / 8);
  // Messages that stay buffered above the leaves: the streamed copies must see them.
  for (int i = 5; i < kRows; i += 500) {
    ASSERT_TRUE(tree->Delete(Key(i)).ok());
    model.erase(Key(i));
    ASSERT_TRUE(tree->Put(Key(i + 1), "changed").ok());
    model[Key(i + 1)] = "changed";
  }
  const TreeStats& stats = tree->stats();

  // A short range scan: a seek and a few hundred rows, all kept.
  CursorImpl short_scan(tree, Status::OK());
  auto it = model.lower_bound(Key(kRows / 2));
  short_scan.Seek(Key(kRows / 2));
  for (int n = 0; n < 300; ++n, ++it, short_scan.Next()) {
    ASSERT_TRUE(short_scan.Valid());
    ASSERT_EQ(short_scan.key(), it->first);
    ASSERT_EQ(short_scan.value(), it->second);
  }
  EXPECT_EQ(stats.basements_streamed.load(), 0u);

  for (bool forward : {true, false}) {
    SCOPED_TRACE(forward ? "forward" : "backward");
    const uint64_t streamed_before = stats.basements_streamed.load();
    const uint64_t fetched_before = stats.basements_fetched.load();
    CursorImpl cursor(tree, Status::OK());
    size_t rows = 0;
    if (forward) {
      auto expected = model.begin();
      for (cursor.SeekToFirst(); cursor.Valid(); cursor.Next(), ++expected, ++rows) {
        ASSERT_NE(expected, model.end());
        ASSERT_EQ(cursor.key(), expected->first);
        ASSERT_EQ(cursor.value(), expected->second);
      }
    } else {
      auto expected = model.rbegin();
      for (cursor.SeekToLast(); cursor.Valid(); cursor.Prev(), ++expected, ++rows) {
        ASSERT_NE(expected, model.rend());
        ASSERT_EQ(cursor.key(), expected->first);
        ASSERT_EQ(cursor.value(), expected->second);
      }
    }
    ASSERT_TRUE(cursor.status().ok()) << cursor.status().ToString();
    EXPECT_EQ(rows, model.size());
    const uint64_t streamed = stats.basements_streamed.load() - streamed_before;
    const uint64_t fetched = stats.basements_fetched.load() - fetched_before;
    // Those of the first 512 KiB and a readahead's worth are installed (and some again
    // by the backward scan, partial eviction having dropped them), the rest streamed.
    EXPECT_GT(streamed, 2 * fetched) << "fetched " << fetched << ", streamed " << streamed;
    EXPECT_GT(streamed + fetched, 1000u) << "fetched " << fetched << ", streamed " << streamed;
  }
  EXPECT_LE(cache.size_bytes(), kBudget * 2);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
}

TEST(RowBatchTest, ClipToDropsRowsOutsideTheNarrowerRange) {
  const Comparator& cmp = *BytewiseComparator();
  RowBatch batch;
  for (int i = 10; i < 20; ++i) batch.Add(Key(i), "v");
  batch.has_lower = true;
  batch.lower = Key(10);
  batch.has_upper = false;
  // A wider lower bound and a narrower upper one: only the upper side is clipped.
  batch.ClipTo(true, Key(5), true, Key(15), cmp);
  ASSERT_EQ(batch.size(), 5u);
  EXPECT_EQ(batch.key(4), Key(14));
  EXPECT_EQ(batch.lower, Key(10));
  ASSERT_TRUE(batch.has_upper);
  EXPECT_EQ(batch.upper, Key(15));
  batch.ClipTo(true, Key(12), false, "", cmp);
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch.key(0), Key(12));
  EXPECT_EQ(batch.value(0), "v");
  EXPECT_EQ(batch.lower, Key(12));
  EXPECT_EQ(batch.upper, Key(15));
}

TEST_F(CursorTest, ReadersInSeveralThreadsWhileOneThreadWrites) {
  TearDown();
  Open(size_t{512} << 10);  // small: readers fetch and evict basements while they read
  // Even keys are written once and never change; odd keys come and go while readers run.
  constexpr int kSlots = 4000;
  for (int i = 0; i < kSlots; i += 2) Put(Key(i), Key(i) + "=stable");
  ASSERT_TRUE(tree_->Checkpoint().ok());

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    std::mt19937 rng(3);
    for (int n = 0; n < 20000 && failures.load() == 0; ++n) {
      std::string key = Key(static_cast<int>(rng() % (kSlots / 2)) * 2 + 1);
      Status s =
          rng() % 3 == 0 ? tree_->Delete(key) : tree_->Put(key, key + "=" + std::to_string(n));
      if (!s.ok()) failures++;
    }
    stop.store(true);
  });
  auto reader = [&](int seed) {
    std::mt19937 rng(seed);
    auto cursor = NewCursor();
    std::string value;
    while (!stop.load() && failures.load() == 0) {
      int i = static_cast<int>(rng() % (kSlots / 2)) * 2;
      // A stable key is always found, by Get and by Seek; rows always carry their key.
      if (!tree_->Get(Key(i), &value).ok() || value != Key(i) + "=stable") failures++;
      cursor->Seek(Key(i));
      if (!cursor->Valid() || cursor->key() != Key(i)) failures++;
      // Walking on, the next stable key comes after at most one odd key, in order.
      std::string previous(cursor->key());
      for (int step = 0; step < 6 && cursor->Valid(); ++step) {
        cursor->Next();
        if (!cursor->Valid()) break;
        if (cursor->key() <= previous) failures++;
        if (cursor->value().substr(0, cursor->key().size()) != cursor->key()) failures++;
        previous.assign(cursor->key());
      }
      cursor->SeekForPrev(Key(i) + "~");
      if (!cursor->Valid() || cursor->key() != Key(i)) failures++;
      if (!cursor->status().ok()) failures++;
    }
  };
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) readers.emplace_back(reader, 100 + t);
  writer.join();
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace fern
