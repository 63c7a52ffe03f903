// Checkpoint clones of a fractal tree: a writer that changes a node the checkpoint still
// has to write copies it and goes on; the checkpoint holds the tree as of its begin while
// the live tree moves on.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "cachetable/cachetable.h"
#include "ft/tree.h"
#include "ft/tree_inspector.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "util/fault_injection.h"

namespace fern {
namespace {

std::string Value(const std::string& version, int i, size_t size) {
  std::string value = version + "-" + std::to_string(i) + "-";
  value.resize(size, static_cast<char>('a' + i % 26));
  return value;
}

// A write log whose SyncThrough runs `during_checkpoint` once: FractalTree::Checkpoint
// syncs the log after the cachetable's begin and before its end, with no tree lock held,
// which is exactly where writers race a checkpoint.
class HookLog final : public TreeWriteLog {
 public:
  Status LogWrite(const Message& message, Lsn* lsn) override {
    *lsn = ++last_;
    return Status::OK();
  }
  void ApplyFailed(const Status& status) override { ADD_FAILURE() << status.ToString(); }
  Status SyncThrough(Lsn lsn) override {
    std::function<void()> hook = std::move(during_checkpoint);
    during_checkpoint = nullptr;
    if (hook) hook();
    return Status::OK();
  }
  Lsn LastLsn() const override { return last_; }
  void BlockResolutions() override {}
  void UnblockResolutions() override {}
  uint64_t NextTxnIdHint() const override { return 1; }
  TxnId OldestReferencedXid() const override { return kNoTxn; }

  std::function<void()> during_checkpoint;

 private:
  std::atomic<Lsn> last_{0};
};

// Compares every key of `expected` (and only those) with the tree.
void ExpectContents(FractalTree* tree, int rows, const std::map<int, std::string>& expected) {
  for (int i = 0; i < rows; ++i) {
    std::string value;
    const Status s = tree->Get(testing::NumberedKey(i), &value);
    auto it = expected.find(i);
    if (it == expected.end()) {
      EXPECT_TRUE(s.IsNotFound()) << testing::NumberedKey(i) << ": " << s.ToString() << " "
                                  << value;
    } else {
      ASSERT_TRUE(s.ok()) << testing::NumberedKey(i) << ": " << s.ToString();
      EXPECT_EQ(value, it->second) << testing::NumberedKey(i);
    }
  }
}

void ExpectVerifies(const std::string& path) {
  TreeReport report;
  ASSERT_TRUE(InspectTreeFile(path, InspectOptions(), &report).ok());
  for (const InspectProblem& problem : report.problems) {
    ADD_FAILURE() << path << ": block " << problem.block << ": " << problem.what;
  }
  EXPECT_GT(report.nodes_visited, 0u);
}

// The checkpointed file as it is now, under another name, opened on its own cache.
void ExpectCheckpointHolds(const std::string& path, const TreeConfig& config, int rows,
                           const std::map<int, std::string>& expected) {
  const std::string copy = path + ".checkpoint";
  std::filesystem::copy_file(path, copy, std::filesystem::copy_options::overwrite_existing);
  ExpectVerifies(copy);
  Cachetable cache(size_t{16} << 20);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Open(copy, config, &cache, &tree).ok());
  ExpectContents(tree.get(), rows, expected);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
}

TEST(TreeCheckpointCloneTest, WritersClonePendingNodesAndTheCheckpointKeepsTheBegin) {
  testing::ScratchDir dir;
  const std::string path = dir.Sub("t.ft");
  TreeConfig config;
  config.comparator = BytewiseComparator();
  config.compression = Compression::kZstd;
  config.node_bytes = 16 << 10;  // many small nodes: ~100 leaves under three levels
  config.basement_bytes = 2 << 10;
  config.fanout = 4;
  constexpr int kRows = 12000;
  CachetableOptions options;
  options.budget_bytes = size_t{1} << 20;  // below the tree's size: evictions run throughout
  Cachetable cache(options);
  HookLog log;
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Create(path, config, &cache, &tree).ok());
  tree->SetWriteLog(&log);
  std::map<int, std::string> model;
  for (int i = 0; i < kRows; ++i) {
    model[i] = Value("one", i, 60);
    ASSERT_TRUE(tree->Put(testing::NumberedKey(i), model[i]).ok());
  }
  ASSERT_TRUE(tree->Checkpoint().ok());
  // Dirty nodes all over the tree: they are checkpoint-pending at the next begin.
  for (int i = 0; i < kRows; i += 2) {
    model[i] = Value("two", i, 60);
    ASSERT_TRUE(tree->Put(testing::NumberedKey(i), model[i]).ok());
  }
  const std::map<int, std::string> at_begin = model;
  const CachetableStats before = cache.stats();
  log.during_checkpoint = [&] {
    for (int i = 0; i < kRows; ++i) {
      if (i % 10 == 3) {
        model.erase(i);
        ASSERT_TRUE(tree->Delete(testing::NumberedKey(i)).ok());
      } else {
        model[i] = Value("three", i, 60);
        ASSERT_TRUE(tree->Put(testing::NumberedKey(i), model[i]).ok());
      }
    }
  };
  ASSERT_TRUE(tree->Checkpoint().ok());
  ASSERT_FALSE(log.during_checkpoint);
  const CachetableStats after = cache.stats();
  const uint64_t clones = after.clones - before.clones;
  EXPECT_GT(clones, 10u);
  EXPECT_EQ(tree->stats().checkpoint_clones.load(), clones);
  EXPECT_EQ(tree->stats().checkpoint_clones_written.load(), clones);
  EXPECT_GE(after.checkpoint_pairs_written - before.checkpoint_pairs_written, clones);

  ExpectContents(tree.get(), kRows, model);
  ExpectCheckpointHolds(path, config, kRows, at_begin);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
  tree.reset();
  ExpectVerifies(path);
  ASSERT_TRUE(FractalTree::Open(path, config, &cache, &tree).ok());
  ExpectContents(tree.get(), kRows, model);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
}

// Holds the checkpoint writer's reads of one file until released, so that the test can
// rewrite the original node elsewhere while its clone waits to be written.
class CloneReadGate final : public FaultInjector {
 public:
  CloneReadGate(std::string path, std::thread::id client)
      : path_(std::move(path)), client_(client) {}
  Status AfterRead(const std::string& path, uint64_t offset, std::string* data) override {
    if (path == path_ && std::this_thread::get_id() != client_) {
      held_reads.fetch_add(1);
      release.WaitForNotificationWithTimeout(absl::Seconds(30));
    }
    return Status::OK();
  }

  absl::Notification release;
  std::atomic<int> held_reads{0};

 private:
  const std::string path_;
  const std::thread::id client_;
};

TEST(TreeCheckpointCloneTest, LeafWithEvictedBasementsIsClonedFromItsBlockAsOfTheBegin) {
  testing::ScratchDir dir;
  const std::string path = dir.Sub("t.ft");
  TreeConfig config;
  config.comparator = BytewiseComparator();
  config.compression = Compression::kZstd;
  config.node_bytes = 1 << 20;  // the root stays one leaf of ~70 basements
  config.basement_bytes = 2 << 10;
  constexpr int kRows = 1500;
  std::map<int, std::string> model;
  {
    Cachetable cache(size_t{16} << 20);
    std::unique_ptr<FractalTree> tree;
    ASSERT_TRUE(FractalTree::Create(path, config, &cache, &tree).ok());
    for (int i = 0; i < kRows; ++i) {
      model[i] = Value("one", i, 80);
      ASSERT_TRUE(tree->Put(testing::NumberedKey(i), model[i]).ok());
    }
    ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
  }
  // Reopened, the root leaf is fetched without its basements (partial fetch). A budget of
  // a few basements, evicted synchronously at unpin, so the test controls when it happens.
  CachetableOptions options;
  options.budget_bytes = 48 << 10;
  options.evictor_thread = false;
  Cachetable cache(options);
  HookLog log;
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Open(path, config, &cache, &tree).ok());
  tree->SetWriteLog(&log);
  // One basement changed (copied by the clone), one read (in memory and on disk), the
  // rest only on disk.
  model[10] = Value("two", 10, 80);
  ASSERT_TRUE(tree->Put(testing::NumberedKey(10), model[10]).ok());
  std::string value;
  ASSERT_TRUE(tree->Get(testing::NumberedKey(700), &value).ok());
  const std::map<int, std::string> at_begin = model;

  CloneReadGate gate(path, std::this_thread::get_id());
  SetFaultInjector(&gate);
  uint64_t plain_writes = 0;
  log.during_checkpoint = [&] {
    model[1200] = Value("three", 1200, 80);
    ASSERT_TRUE(tree->Put(testing::NumberedKey(1200), model[1200]).ok());  // clones the root leaf
    ASSERT_EQ(tree->stats().checkpoint_clones.load(), 1u);
    // Load basements until the cache evicts the root, writing it elsewhere while its clone
    // waits for the frames of the begin's block.
    const uint64_t written = tree->stats().nodes_written.load();
    for (int n = 0; n < kRows && tree->stats().nodes_written.load() == written; ++n) {
      const int i = (n * 37) % kRows;
      model[i] = Value("three", i, 80);
      ASSERT_TRUE(tree->Put(testing::NumberedKey(i), model[i]).ok());
    }
    plain_writes = tree->stats().nodes_written.load() - written;
    // Refetched from its new block, basement by basement.
    ExpectContents(tree.get(), kRows, model);
    gate.release.Notify();
  };
  ASSERT_TRUE(tree->Checkpoint().ok());
  SetFaultInjector(nullptr);
  EXPECT_GE(plain_writes, 1u);
  EXPECT_GT(gate.held_reads.load(), 0);
  EXPECT_EQ(cache.stats().clones, 1u);
  EXPECT_EQ(tree->stats().checkpoint_clones_written.load(), 1u);

  ExpectCheckpointHolds(path, config, kRows, at_begin);
  ExpectContents(tree.get(), kRows, model);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
  tree.reset();
  ExpectVerifies(path);
  ASSERT_TRUE(FractalTree::Open(path, config, &cache, &tree).ok());
  ExpectContents(tree.get(), kRows, model);
  ASSERT_TRUE(tree->Close(/*checkpoint=*/false).ok());
}

// Checkpoints taken while a writer thread runs are sharp: each holds exactly the writes
// made before some moment, whatever the clones, evictions and clone writes did meanwhile.
TEST(TreeCheckpointCloneTest, CheckpointsRacingAWriterHoldAPrefixOfItsWrites) {
  testing::ScratchDir dir;
  const std::string path = dir.Sub("t.ft");
  TreeConfig config;
  config.comparator = BytewiseComparator();
  config.compression = Compression::kZstd;
  config.node_bytes = 16 << 10;
  config.basement_bytes = 2 << 10;
  config.fanout = 4;
  constexpr int kKeys = 3000;
  constexpr int kCheckpoints = 6;
  CachetableOptions options;
  options.budget_bytes = 512 << 10;
  Cachetable cache(options);
  std::unique_ptr<FractalTree> tree;
  ASSERT_TRUE(FractalTree::Create(path, config, &cache, &tree).ok());

  // history[k]: the sequence numbers written to key k, ascending. Written by the writer
  // only; read by the main thread after it stopped.
  std::vector<std::vector<int>> history(kKeys);
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    uint64_t x = 12345;
    for (int seq = 0; !stop.load(); ++seq) {
      x = x * 6364136223846793005u + 1442695040888963407u;
      const int k = static_cast<int>((x >> 33) % kKeys);
      std::string value = "s" + std::to_string(seq) + "-";
      value.resize(60, 'x');
      ASSERT_TRUE(tree->Put(testing::NumberedKey(k), value).ok());
      history[k].push_back(seq);
      written.store(seq + 1);
    }
  });
  std::vector<std::string> copies;
  for (int c = 0; c < kCheckpoints; ++c) {
    const int target = (c + 1) * 4000;
    while (written.load() < target) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_TRUE(tree->Checkpoint().ok());
    copies.push_back(path + ".copy" + std::to_string(c));
    std::filesystem::copy_file(path, copies.back());
  }
  stop.store(true);
  writer.join();
  // Whether the writer met a pending node inside a checkpoint's window depends on timing
  // (on a loaded machine it may not): clones are asserted by the tests above; this one
  // checks that each checkpoint holds a prefix of the writes, with or without them.
  std::printf("clones made while racing: %llu\n",
              static_cast<unsigned long long>(cache.stats().clones));

  for (const std::string& copy : copies) {
    SCOPED_TRACE(copy);
    ExpectVerifies(copy);
    Cachetable copy_cache(size_t{16} << 20);
    std::unique_ptr<FractalTree> snapshot;
    ASSERT_TRUE(FractalTree::Open(copy, config, &copy_cache, &snapshot).ok());
    std::vector<int> seen(kKeys, -1);
    int newest = -1;
    for (int k = 0; k < kKeys; ++k) {
      std::string value;
      const Status s = snapshot->Get(testing::NumberedKey(k), &value);
      if (s.IsNotFound()) continue;
      ASSERT_TRUE(s.ok()) << s.ToString();
      seen[k] = std::stoi(value.substr(1));
      newest = std::max(newest, seen[k]);
    }
    // Every key holds its last write up to the newest write the checkpoint holds.
    for (int k = 0; k < kKeys; ++k) {
      auto it = std::upper_bound(history[k].begin(), history[k].end(), newest);
      const int expected = it == history[k].begin() ? -1 : *(it - 1);
      ASSERT_EQ(seen[k], expected)
          << testing::NumberedKey(k) << " in a checkpoint holding writes up to " << newest;
    }
    ASSERT_TRUE(snapshot->Close(/*checkpoint=*/false).ok());
  }
  ASSERT_TRUE(tree->Close(/*checkpoint=*/true).ok());
  tree.reset();
  ExpectVerifies(path);
}

}  // namespace
}  // namespace fern
