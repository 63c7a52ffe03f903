#include "txn/lock_tree.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "util/memory_budget.h"
#include "util/strings.h"

namespace fern {
namespace {

using Mode = LockTree::Mode;
constexpr Mode kRead = Mode::kRead;
constexpr Mode kWrite = Mode::kWrite;
const absl::Duration kNoWait = absl::ZeroDuration();
// Long enough that a test relying on a wait never times out in practice.
const absl::Duration kLong = absl::Seconds(30);

// Polls `done` for up to 10 s.
bool WaitUntil(const std::function<bool()>& done) {
  for (int i = 0; i < 10000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

// An Acquire running on its own thread.
class AsyncAcquire {
 public:
  AsyncAcquire(LockTree* tree, TxnId owner, std::string lo, std::string hi, Mode mode,
               absl::Duration timeout = kLong)
      : thread_([this, tree, owner, lo, hi, mode, timeout] {
          status_ = tree->Acquire(owner, lo, hi, mode, timeout);
          done_.store(true);
        }) {}
  ~AsyncAcquire() {
    if (thread_.joinable()) thread_.join();
  }
  bool done() const { return done_.load(); }
  Status Join() {
    thread_.join();
    return status_;
  }

 private:
  Status status_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

class LockTreeTest : public ::testing::Test {
 protected:
  Status Lock(TxnId owner, std::string_view lo, std::string_view hi, Mode mode,
              absl::Duration timeout = kNoWait) {
    return tree_.Acquire(owner, lo, hi, mode, timeout);
  }
  Status Lock(TxnId owner, std::string_view key, Mode mode, absl::Duration timeout = kNoWait) {
    return tree_.Acquire(owner, key, mode, timeout);
  }

  DeadlockDetector detector_;
  LockTree tree_{*BytewiseComparator(), detector_};
};

// ---- conflicts -----------------------------------------------------------------------------

TEST_F(LockTreeTest, WriteLocksOfDifferentOwnersConflict) {
  ASSERT_TRUE(Lock(1, "k", kWrite).ok());
  Status s = Lock(2, "k", kWrite);
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  EXPECT_TRUE(Lock(2, "j", kWrite).ok());
}

TEST_F(LockTreeTest, UnboundedRangesReachPastEveryKey) {
  const std::string_view m = "m";
  ASSERT_TRUE(tree_.AcquireRange(1, &m, nullptr, kRead, kNoWait).ok());  // [m, +inf)
  EXPECT_TRUE(Lock(2, "m", kWrite).IsBusy());
  EXPECT_TRUE(Lock(2, "zzzzzz", kWrite).IsBusy());
  EXPECT_TRUE(Lock(2, std::string(40000, '\xff'), kWrite).IsBusy());
  EXPECT_TRUE(Lock(2, "l", kWrite).ok());
  EXPECT_TRUE(Lock(3, "q", kRead).ok());  // reads still share
  const std::string_view c = "c";
  ASSERT_TRUE(tree_.AcquireRange(4, nullptr, &c, kWrite, kNoWait).ok());  // (-inf, c]
  EXPECT_TRUE(Lock(5, "", kRead).IsBusy());
  EXPECT_TRUE(Lock(5, "c", kRead).IsBusy());
  EXPECT_TRUE(Lock(5, "d", kRead).ok());
  Status s = tree_.AcquireRange(6, nullptr, nullptr, kWrite, kNoWait);
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  EXPECT_NE(s.ToString().find("[-inf, +inf]"), std::string::npos) << s.ToString();
  tree_.ReleaseAll(1);
  tree_.ReleaseAll(2);
  tree_.ReleaseAll(3);
  tree_.ReleaseAll(4);
  tree_.ReleaseAll(5);
  EXPECT_EQ(tree_.bound_count(), 0u);
  EXPECT_TRUE(tree_.AcquireRange(6, nullptr, nullptr, kWrite, kNoWait).ok());
  EXPECT_TRUE(Lock(7, "anything", kRead).IsBusy());
  tree_.ReleaseAll(6);
  EXPECT_EQ(tree_.bound_count(), 0u);
}

TEST_F(LockTreeTest, ReadAndWriteConflictBothWays) {
  ASSERT_TRUE(Lock(1, "r", kRead).ok());
  EXPECT_TRUE(Lock(2, "r", kWrite).IsBusy());
  ASSERT_TRUE(Lock(3, "w", kWrite).ok());
  EXPECT_TRUE(Lock(4, "w", kRead).IsBusy());
}

TEST_F(LockTreeTest, ReadLocksAreShared) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  EXPECT_TRUE(Lock(2, "k", kRead).ok());
  EXPECT_TRUE(Lock(3, "a", "z", kRead).ok());
  EXPECT_TRUE(tree_.Holds(2, "k", "k", kRead));
  EXPECT_TRUE(tree_.Holds(3, "b", "y", kRead));
  EXPECT_EQ(tree_.owner_count(), 3u);
}

TEST_F(LockTreeTest, OwnerReentersItsOwnLocksWithoutGrowingTheTree) {
  ASSERT_TRUE(Lock(1, "k", kWrite).ok());
  size_t bounds = tree_.bound_count();
  EXPECT_TRUE(Lock(1, "k", kWrite).ok());
  EXPECT_TRUE(Lock(1, "k", kRead).ok());  // a write lock covers reads
  EXPECT_EQ(tree_.bound_count(), bounds);
  EXPECT_TRUE(tree_.Holds(1, "k", "k", kWrite));
  ASSERT_TRUE(Lock(1, "a", "m", kRead).ok());
  EXPECT_TRUE(Lock(1, "c", "d", kRead).ok());
  EXPECT_TRUE(tree_.Holds(1, "a", "m", kRead));
  EXPECT_FALSE(tree_.Holds(1, "a", "m", kWrite));
}

TEST_F(LockTreeTest, SoleReaderUpgradesToWrite) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  ASSERT_TRUE(Lock(1, "k", kWrite).ok());
  EXPECT_TRUE(tree_.Holds(1, "k", "k", kWrite));
  EXPECT_TRUE(Lock(2, "k", kRead).IsBusy());
}

TEST_F(LockTreeTest, UpgradeWaitsForTheOtherReaders) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  ASSERT_TRUE(Lock(2, "k", kRead).ok());
  EXPECT_TRUE(Lock(1, "k", kWrite).IsBusy());
  EXPECT_TRUE(tree_.Holds(1, "k", "k", kRead));  // a failed upgrade keeps the read lock
  tree_.ReleaseAll(2);
  EXPECT_TRUE(Lock(1, "k", kWrite).ok());
}

TEST_F(LockTreeTest, PartialUpgradeOfARangeLeavesTheRestShared) {
  ASSERT_TRUE(Lock(1, "a", "z", kRead).ok());
  ASSERT_TRUE(Lock(1, "m", kWrite).ok());
  EXPECT_TRUE(Lock(2, "l", kRead).ok());
  EXPECT_TRUE(Lock(2, "n", kRead).ok());
  EXPECT_TRUE(Lock(2, "m", kRead).IsBusy());
  EXPECT_TRUE(Lock(3, "a", "z", kWrite).IsBusy());
}

// ---- ranges --------------------------------------------------------------------------------

TEST_F(LockTreeTest, RangeConflictsWithKeysInsideItAndAtItsEnds) {
  ASSERT_TRUE(Lock(1, "b", "d", kWrite).ok());
  EXPECT_TRUE(Lock(2, "b", kWrite).IsBusy());
  EXPECT_TRUE(Lock(2, "c", kRead).IsBusy());
  EXPECT_TRUE(Lock(2, "cat", kWrite).IsBusy());
  EXPECT_TRUE(Lock(2, "d", kWrite).IsBusy());
  EXPECT_TRUE(Lock(2, "a", "b", kRead).IsBusy());
  EXPECT_TRUE(Lock(2, "d", "e", kWrite).IsBusy());
  EXPECT_TRUE(Lock(2, "a", "z", kRead).IsBusy());
  EXPECT_TRUE(Lock(2, "a", kWrite).ok());
  EXPECT_TRUE(Lock(2, "azz", kWrite).ok());
  EXPECT_TRUE(Lock(2, std::string("d\0", 2), kWrite).ok());  // just past "d"
  EXPECT_TRUE(Lock(2, "e", "f", kWrite).ok());
}

TEST_F(LockTreeTest, KeyLockBlocksRangesThatContainIt) {
  ASSERT_TRUE(Lock(1, "m", kWrite).ok());
  EXPECT_TRUE(Lock(2, "a", "z", kRead).IsBusy());
  EXPECT_TRUE(Lock(2, "m", "z", kWrite).IsBusy());
  EXPECT_TRUE(Lock(2, "a", "l", kWrite).ok());
  EXPECT_TRUE(Lock(2, "ma", "z", kWrite).ok());
}

TEST_F(LockTreeTest, EmptyKeyIsLockable) {
  ASSERT_TRUE(Lock(1, "", kWrite).ok());
  EXPECT_TRUE(Lock(2, "", "a", kRead).IsBusy());
  EXPECT_TRUE(Lock(2, std::string(1, '\0'), kWrite).ok());
}

TEST_F(LockTreeTest, AdjacentRangesOfOneOwnerMerge) {
  ASSERT_TRUE(Lock(1, "a", "c", kWrite).ok());
  ASSERT_TRUE(Lock(1, "c", "e", kWrite).ok());
  ASSERT_TRUE(Lock(1, "b", "d", kWrite).ok());
  EXPECT_EQ(tree_.bound_count(), 2u);
  EXPECT_TRUE(tree_.Holds(1, "a", "e", kWrite));
}

TEST_F(LockTreeTest, ReleaseAllFreesEverythingTheOwnerHeld) {
  ASSERT_TRUE(Lock(1, "a", "c", kWrite).ok());
  ASSERT_TRUE(Lock(1, "x", kRead).ok());
  ASSERT_TRUE(Lock(2, "x", kRead).ok());
  ASSERT_TRUE(Lock(2, "f", "h", kWrite).ok());
  tree_.ReleaseAll(1);
  EXPECT_TRUE(Lock(3, "b", kWrite).ok());
  EXPECT_FALSE(tree_.Holds(1, "x", "x", kRead));
  EXPECT_TRUE(tree_.Holds(2, "x", "x", kRead));
  EXPECT_TRUE(Lock(3, "x", kWrite).IsBusy());
  tree_.ReleaseAll(2);
  tree_.ReleaseAll(3);
  tree_.ReleaseAll(99);  // holds nothing
  EXPECT_EQ(tree_.bound_count(), 0u);
  EXPECT_EQ(tree_.owner_count(), 0u);
}

TEST_F(LockTreeTest, RejectsEmptyRangesAndOwnerZero) {
  EXPECT_TRUE(Lock(1, "b", "a", kWrite).IsInvalidArgument());
  EXPECT_TRUE(Lock(kNoTxn, "a", kWrite).IsInvalidArgument());
  EXPECT_EQ(tree_.bound_count(), 0u);
}

// Keys in descending order: "z" comes first.
using fern::testing::ReverseComparator;

TEST(LockTreeComparatorTest, RangesFollowTheTablesComparator) {
  ReverseComparator reverse;
  DeadlockDetector detector;
  LockTree tree(reverse, detector);
  EXPECT_TRUE(tree.Acquire(1, "a", "z", kWrite, kNoWait).IsInvalidArgument());
  ASSERT_TRUE(tree.Acquire(1, "m", "c", kWrite, kNoWait).ok());
  EXPECT_TRUE(tree.Acquire(2, "d", kWrite, kNoWait).IsBusy());
  EXPECT_TRUE(tree.Acquire(2, "n", kWrite, kNoWait).ok());
  EXPECT_TRUE(tree.Acquire(2, "b", kWrite, kNoWait).ok());
}

// Random requests without waiting, checked against a list of every granted lock: a request
// is granted iff no other owner's lock overlaps it with a write on either side, and a key is
// held iff some lock of the owner covers it.
// `prefix` goes before every key: long prefixes take keys past the bounds' inline storage.
// With `escalate_at` small, owners escalate all the time and may hold more than they asked
// for: then a request the model refuses must be refused, one it grants may be, every lock in
// the model must stay held by its owner (escalation never takes another owner's range), and a
// key the model holds must be held.
struct Granted {
  TxnId owner;
  std::string lo;
  std::string hi;
  Mode mode;
};

// The bounds a canonical segment map holds for the locks in `model` (compatible, no
// escalation): one wherever the holders change, walking the keys `universe` (sorted, every
// lock's ends among them) and the gaps between them.
size_t CanonicalBoundCount(const std::vector<Granted>& model,
                           const std::vector<std::string>& universe) {
  // Holders of one piece: the writer, or the readers, ascending.
  auto holders = [&model](auto covers) {
    std::vector<TxnId> readers;
    for (const Granted& g : model) {
      if (!covers(g)) continue;
      if (g.mode == kWrite) return std::vector<TxnId>{0, g.owner};
      readers.push_back(g.owner);
    }
    std::sort(readers.begin(), readers.end());
    readers.erase(std::unique(readers.begin(), readers.end()), readers.end());
    return readers;
  };
  size_t bounds = 0;
  std::vector<TxnId> previous;  // before every key: unlocked
  auto step = [&](const std::vector<TxnId>& now) {
    if (now != previous) ++bounds;
    previous = now;
  };
  for (size_t i = 0; i < universe.size(); ++i) {
    const std::string& key = universe[i];
    step(holders([&key](const Granted& g) { return g.lo <= key && key <= g.hi; }));
    // The gap after the key: inside a lock that spans past it.
    step(holders([&](const Granted& g) {
      return g.lo <= key && i + 1 < universe.size() && universe[i + 1] <= g.hi;
    }));
  }
  return bounds;
}

void CheckAgainstBruteForceModel(const std::string& prefix,
                                 size_t escalate_at = LockTree::kDefaultEscalateAt,
                                 int letters = 12) {
  const bool escalating = escalate_at < 1000;
  DeadlockDetector detector;
  LockTree tree(*BytewiseComparator(), detector, escalate_at);
  std::vector<Granted> model;
  std::mt19937 rng(77);
  auto random_key = [&rng, &prefix, letters] {
    std::string key = prefix;
    key.push_back(static_cast<char>('a' + rng() % letters));
    if (rng() % 3 == 0) key.push_back(static_cast<char>('a' + rng() % 3));
    return key;
  };
  std::vector<std::string> universe;
  for (int first = 0; first < letters; ++first) {
    universe.push_back(prefix + static_cast<char>('a' + first));
    for (int second = 0; second < 3; ++second) {
      universe.push_back(prefix + static_cast<char>('a' + first) + static_cast<char>('a' + second));
    }
  }
  for (int step = 0; step < 20000; ++step) {
    TxnId owner = 1 + rng() % 6;
    if (rng() % 10 == 0) {
      tree.ReleaseAll(owner);
      std::erase_if(model, [owner](const Granted& g) { return g.owner == owner; });
      if (!escalating) {
        ASSERT_EQ(tree.bound_count(), CanonicalBoundCount(model, universe)) << "step " << step;
      }
      continue;
    }
    std::string lo = random_key();
    std::string hi = rng() % 2 == 0 ? lo : random_key();
    if (hi < lo) std::swap(lo, hi);
    Mode mode = rng() % 2 == 0 ? kRead : kWrite;
    bool conflict = false;
    for (const Granted& g : model) {
      if (g.owner != owner && !(g.hi < lo || hi < g.lo) && (g.mode == kWrite || mode == kWrite)) {
        conflict = true;
      }
    }
    Status s = tree.Acquire(owner, lo, hi, mode, kNoWait);
    if (escalating) {
      if (conflict) {
        ASSERT_FALSE(s.ok()) << "step " << step;
      }
    } else {
      ASSERT_EQ(s.ok(), !conflict) << "step " << step << ": " << s.ToString();
    }
    if (s.ok()) model.push_back({owner, lo, hi, mode});
    if (!escalating) {
      ASSERT_EQ(tree.bound_count(), CanonicalBoundCount(model, universe)) << "step " << step;
    }
    if (escalating) {
      for (const Granted& g : model) {
        ASSERT_TRUE(tree.Holds(g.owner, g.lo, g.hi, g.mode))
            << "step " << step << ": owner " << g.owner << " lost [" << g.lo << ", " << g.hi << "]";
      }
    }

    std::string probe = random_key();
    Mode probe_mode = rng() % 2 == 0 ? kRead : kWrite;
    bool held = false;
    for (const Granted& g : model) {
      if (g.owner == owner && g.lo <= probe && probe <= g.hi &&
          (g.mode == kWrite || probe_mode == kRead)) {
        held = true;
      }
    }
    if (escalating) {
      if (held) {
        ASSERT_TRUE(tree.Holds(owner, probe, probe, probe_mode)) << "step " << step;
      }
    } else {
      ASSERT_EQ(tree.Holds(owner, probe, probe, probe_mode), held) << "step " << step;
    }
  }
  if (escalating) {
    EXPECT_GT(tree.escalation_count(), 100u);
  }
  for (TxnId owner = 1; owner <= 6; ++owner) tree.ReleaseAll(owner);
  EXPECT_EQ(tree.bound_count(), 0u);
  EXPECT_EQ(tree.owner_count(), 0u);
}

TEST(LockTreeModelTest, GrantsAndHoldingsMatchABruteForceModel) {
  ASSERT_NO_FATAL_FAILURE(CheckAgainstBruteForceModel(""));
}

// Sparse keys: most requests land in unlocked gaps and most releases leave one behind (the
// cases LockTree grants and releases without a scan).
TEST(LockTreeModelTest, SparseRowLocksMatchTheModelAndStayCanonical) {
  ASSERT_NO_FATAL_FAILURE(
      CheckAgainstBruteForceModel("", LockTree::kDefaultEscalateAt, /*letters=*/26));
}

TEST(LockTreeModelTest, LongKeysMatchTheModelToo) {
  ASSERT_NO_FATAL_FAILURE(CheckAgainstBruteForceModel(std::string(40, 'k')));
}

// Keys of 22 and 23 bytes: on either side of what a bound keeps in place.
TEST(LockTreeModelTest, EscalatingOwnersKeepEveryGrantCompatible) {
  ASSERT_NO_FATAL_FAILURE(CheckAgainstBruteForceModel("", /*escalate_at=*/3));
  ASSERT_NO_FATAL_FAILURE(CheckAgainstBruteForceModel(std::string(40, 'k'), /*escalate_at=*/5));
}

TEST(LockTreeModelTest, KeysAtTheInlineLimitMatchTheModel) {
  ASSERT_NO_FATAL_FAILURE(
      CheckAgainstBruteForceModel(std::string(SegmentBound::kInlineKeyBytes - 1, 'k')));
}

// ---- waiting -------------------------------------------------------------------------------

// ---- escalation ----------------------------------------------------------------------------

std::string RowKey(int i) { return StrCat("k", 10000 + i); }

TEST(LockTreeEscalationTest, AnOwnersRowLocksBecomeOneRange) {
  DeadlockDetector detector;
  LockTree tree(*BytewiseComparator(), detector, /*escalate_at=*/100);
  for (int i = 0; i < 1000; i += 2) ASSERT_TRUE(tree.Acquire(1, RowKey(i), kWrite, kNoWait).ok());
  EXPECT_GE(tree.escalation_count(), 1u);
  EXPECT_LE(tree.bound_count(), 2u * 100);  // ~2 a row without escalation
  // Escalations double their threshold with what stays: rows after the last one are single.
  ASSERT_TRUE(tree.Acquire(1, RowKey(0), RowKey(998), kWrite, kNoWait).ok());
  EXPECT_TRUE(tree.Holds(1, RowKey(0), RowKey(998), kWrite));
  EXPECT_EQ(tree.bound_count(), 2u);
  // The key space between the rows is locked now; outside the first and last it is not.
  EXPECT_TRUE(tree.Acquire(2, RowKey(1), kRead, kNoWait).IsBusy());
  EXPECT_TRUE(tree.Acquire(2, RowKey(-1), kWrite, kNoWait).ok());
  EXPECT_TRUE(tree.Acquire(2, RowKey(999), kWrite, kNoWait).ok());
  tree.ReleaseAll(1);
  tree.ReleaseAll(2);
  EXPECT_EQ(tree.bound_count(), 0u);
  EXPECT_EQ(tree.owner_count(), 0u);
}

TEST(LockTreeEscalationTest, StopsAtOtherOwnersLocks) {
  DeadlockDetector detector;
  LockTree tree(*BytewiseComparator(), detector, /*escalate_at=*/50);
  ASSERT_TRUE(tree.Acquire(2, RowKey(100), kRead, kNoWait).ok());
  ASSERT_TRUE(tree.Acquire(3, RowKey(101), RowKey(102), kRead, kNoWait).ok());
  ASSERT_TRUE(tree.Acquire(1, RowKey(101), RowKey(102), kRead, kNoWait).ok());  // shared
  for (int i = 0; i < 200; ++i) {
    if (i == 100 || i == 101 || i == 102) continue;
    ASSERT_TRUE(tree.Acquire(1, RowKey(i), kWrite, kNoWait).ok()) << i;
  }
  EXPECT_GE(tree.escalation_count(), 1u);
  EXPECT_TRUE(tree.Holds(2, RowKey(100), RowKey(100), kRead));
  EXPECT_TRUE(tree.Holds(3, RowKey(101), RowKey(102), kRead));
  EXPECT_TRUE(tree.Holds(1, RowKey(101), RowKey(102), kRead));
  // Around the other owners' locks the key space stays free; elsewhere owner 1 has it.
  const std::string before = RowKey(99) + "x";
  const std::string after = RowKey(102) + "x";
  EXPECT_TRUE(tree.Acquire(4, before, kWrite, kNoWait).ok());
  EXPECT_TRUE(tree.Acquire(4, RowKey(100), kRead, kNoWait).ok());
  EXPECT_TRUE(tree.Acquire(4, after, kWrite, kNoWait).ok());
  EXPECT_TRUE(tree.Acquire(4, RowKey(50) + "x", kRead, kNoWait).IsBusy());
  EXPECT_TRUE(tree.Acquire(4, RowKey(150) + "x", kRead, kNoWait).IsBusy());
  for (TxnId owner = 1; owner <= 4; ++owner) tree.ReleaseAll(owner);
  EXPECT_EQ(tree.bound_count(), 0u);
}

TEST(LockTreeEscalationTest, ReadLocksEscalateToASharedRange) {
  DeadlockDetector detector;
  LockTree tree(*BytewiseComparator(), detector, /*escalate_at=*/10);
  for (int i = 0; i < 40; i += 2) ASSERT_TRUE(tree.Acquire(1, RowKey(i), kRead, kNoWait).ok());
  EXPECT_GE(tree.escalation_count(), 1u);
  EXPECT_TRUE(tree.Acquire(2, RowKey(3), kRead, kNoWait).ok());
  EXPECT_TRUE(tree.Acquire(2, RowKey(5), kWrite, kNoWait).IsBusy());
  // The sole reader of a range may still upgrade within it.
  EXPECT_TRUE(tree.Acquire(1, RowKey(7), kWrite, kNoWait).ok());
  tree.ReleaseAll(1);
  tree.ReleaseAll(2);
  EXPECT_EQ(tree.bound_count(), 0u);
}

TEST(LockTreeEscalationTest, AlternatingReadsAndWritesEscalateToOneWriteRange) {
  DeadlockDetector detector;
  LockTree tree(*BytewiseComparator(), detector, /*escalate_at=*/100);
  for (int i = 0; i < 1000; i += 2) {
    ASSERT_TRUE(tree.Acquire(1, RowKey(i), i % 4 == 0 ? kRead : kWrite, kNoWait).ok());
  }
  EXPECT_LE(tree.bound_count(), 2u * 100);
  ASSERT_TRUE(tree.Acquire(1, RowKey(0), RowKey(998), kWrite, kNoWait).ok());
  EXPECT_EQ(tree.bound_count(), 2u);
  // A run of reads alone (kept apart from the write range by another owner's lock) stays a
  // read range.
  ASSERT_TRUE(tree.Acquire(3, RowKey(1500), kWrite, kNoWait).ok());
  for (int i = 2000; i < 2400; i += 2) {
    ASSERT_TRUE(tree.Acquire(1, RowKey(i), kRead, kNoWait).ok());
  }
  EXPECT_TRUE(tree.Acquire(2, RowKey(2001), kRead, kNoWait).ok());
  EXPECT_TRUE(tree.Acquire(2, RowKey(2003), kWrite, kNoWait).IsBusy());
  EXPECT_TRUE(tree.Acquire(2, RowKey(1), kRead, kNoWait).IsBusy());
  EXPECT_TRUE(tree.Holds(3, RowKey(1500), RowKey(1500), kWrite));
  for (TxnId owner = 1; owner <= 3; ++owner) tree.ReleaseAll(owner);
  EXPECT_EQ(tree.bound_count(), 0u);
}

TEST(LockTreeEscalationTest, AWaiterWaitsForTheEscalatedOwner) {
  DeadlockDetector detector;
  LockTree tree(*BytewiseComparator(), detector, /*escalate_at=*/2);
  ASSERT_TRUE(tree.Acquire(2, "m", kWrite, kNoWait).ok());
  ASSERT_TRUE(tree.Acquire(1, "k", kWrite, kNoWait).ok());
  AsyncAcquire waiter(&tree, 3, "l", "n", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector.WaitsFor(3, 2); }));
  ASSERT_TRUE(tree.Acquire(1, "lz", kWrite, kNoWait).ok());  // escalates to ["k", "lz"]
  EXPECT_EQ(tree.escalation_count(), 1u);
  EXPECT_TRUE(detector.WaitsFor(3, 1));
  tree.ReleaseAll(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(waiter.done());
  tree.ReleaseAll(1);
  EXPECT_TRUE(waiter.Join().ok());
  tree.ReleaseAll(3);
  EXPECT_EQ(tree.bound_count(), 0u);
}

TEST_F(LockTreeTest, TimeoutReturnsBusyAfterWaitingAtLeastTheTimeout) {
  ASSERT_TRUE(Lock(1, "k", kWrite).ok());
  const absl::Duration timeout = absl::Milliseconds(150);
  absl::Time start = absl::Now();
  Status s = Lock(2, "k", kRead, timeout);
  absl::Duration waited = absl::Now() - start;
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  EXPECT_GE(waited, timeout);
  EXPECT_EQ(tree_.waiter_count(), 0u);
  EXPECT_EQ(detector_.waiter_count(), 0u);
}

TEST_F(LockTreeTest, WaiterIsGrantedWhenTheHolderReleases) {
  ASSERT_TRUE(Lock(1, "a", "m", kWrite).ok());
  AsyncAcquire waiter(&tree_, 2, "k", "k", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(2, 1); }));
  EXPECT_FALSE(waiter.done());
  tree_.ReleaseAll(1);
  EXPECT_TRUE(waiter.Join().ok());
  EXPECT_TRUE(tree_.Holds(2, "k", "k", kWrite));
  EXPECT_EQ(detector_.waiter_count(), 0u);
}

TEST_F(LockTreeTest, WriterWaitsForEveryReader) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  ASSERT_TRUE(Lock(2, "k", kRead).ok());
  AsyncAcquire writer(&tree_, 3, "k", "k", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(3, 1) && detector_.WaitsFor(3, 2); }));
  tree_.ReleaseAll(1);
  ASSERT_TRUE(WaitUntil([&] { return !detector_.WaitsFor(3, 1); }));
  EXPECT_FALSE(writer.done());
  tree_.ReleaseAll(2);
  EXPECT_TRUE(writer.Join().ok());
}

TEST_F(LockTreeTest, ReaderGrantedWhileAWriterWaitsBecomesOneOfItsBlockers) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  AsyncAcquire writer(&tree_, 2, "k", "k", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(2, 1); }));
  ASSERT_TRUE(Lock(3, "a", "z", kRead).ok());
  EXPECT_TRUE(detector_.WaitsFor(2, 3));
  tree_.ReleaseAll(1);
  ASSERT_TRUE(WaitUntil([&] { return !detector_.WaitsFor(2, 1); }));
  EXPECT_FALSE(writer.done());
  tree_.ReleaseAll(3);
  EXPECT_TRUE(writer.Join().ok());
}

// ---- waiting in turn ------------------------------------------------------------------------

TEST_F(LockTreeTest, AReaderThatMayWaitQueuesBehindAWaitingWriter) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  AsyncAcquire writer(&tree_, 2, "k", "k", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(2, 1); }));
  AsyncAcquire reader(&tree_, 3, "a", "z", kRead);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(3, 2); }));
  tree_.ReleaseAll(1);
  EXPECT_TRUE(writer.Join().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(reader.done());
  EXPECT_TRUE(detector_.WaitsFor(3, 2));
  tree_.ReleaseAll(2);
  EXPECT_TRUE(reader.Join().ok());
  EXPECT_TRUE(tree_.Holds(3, "a", "z", kRead));
}

// The livelock this order prevents: readers of k upgrade, one gets Deadlock and its owner
// retries at once as owner 3. The retry's read lock waits for the survivor's upgrade
// instead of being granted first and blocking that upgrade again. (Reader 4 keeps the
// survivor waiting while the retry asks.)
TEST_F(LockTreeTest, ADeadlockVictimRetryingAtOnceWaitsForTheSurvivor) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  ASSERT_TRUE(Lock(2, "k", kRead).ok());
  ASSERT_TRUE(Lock(4, "k", kRead).ok());
  AsyncAcquire survivor(&tree_, 1, "k", "k", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(1, 2) && detector_.WaitsFor(1, 4); }));
  ASSERT_TRUE(Lock(2, "k", kWrite, kLong).IsDeadlock());
  tree_.ReleaseAll(2);
  AsyncAcquire retry(&tree_, 3, "k", "k", kRead);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(3, 1) || retry.done(); }));
  EXPECT_FALSE(retry.done());
  tree_.ReleaseAll(4);
  EXPECT_TRUE(survivor.Join().ok());
  EXPECT_TRUE(tree_.Holds(1, "k", "k", kWrite));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(retry.done());
  tree_.ReleaseAll(1);
  EXPECT_TRUE(retry.Join().ok());
}

TEST_F(LockTreeTest, RequestsThatDoNotWaitAreGrantedPastTheQueue) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  AsyncAcquire writer(&tree_, 2, "k", "k", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(2, 1); }));
  EXPECT_TRUE(Lock(3, "k", kRead, kNoWait).ok());
  EXPECT_TRUE(detector_.WaitsFor(2, 3));
  tree_.ReleaseAll(3);
  tree_.ReleaseAll(1);
  EXPECT_TRUE(writer.Join().ok());
}

// 2 waits for reader 1 and 5 for writer 6, both queued. 1's new request overlaps both: it
// waits its turn behind 5 (and for holder 6), but not behind 2, which waits for 1 anyway.
TEST_F(LockTreeTest, AQueuedRequestWaitingForTheRequesterDoesNotHoldItUp) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  ASSERT_TRUE(Lock(6, "m", kWrite).ok());
  AsyncAcquire two(&tree_, 2, "k", "k", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(2, 1); }));
  AsyncAcquire five(&tree_, 5, "m", "m", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(5, 6); }));
  AsyncAcquire one(&tree_, 1, "a", "z", kRead);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(1, 6); }));
  EXPECT_TRUE(detector_.QueuedBehind(1, 5));
  EXPECT_FALSE(detector_.WaitsFor(1, 2));
  tree_.ReleaseAll(6);
  EXPECT_TRUE(five.Join().ok());
  tree_.ReleaseAll(5);
  EXPECT_TRUE(one.Join().ok());
  tree_.ReleaseAll(1);
  EXPECT_TRUE(two.Join().ok());
}

// 2 waits to write k for reader 1, 1 waits to write m for 3, and 3 asks to read k: waiting
// behind 2 would close the cycle 3 -> 2 -> 1 -> 3, so 3 reads k at once (1's read lock
// does not conflict) instead of getting Deadlock.
TEST_F(LockTreeTest, ARequestWhoseTurnWouldCloseACycleGoesBeforeTheQueue) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  ASSERT_TRUE(Lock(3, "m", kWrite).ok());
  AsyncAcquire two(&tree_, 2, "k", "k", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(2, 1); }));
  AsyncAcquire one(&tree_, 1, "m", "m", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(1, 3); }));
  Status s = Lock(3, "k", kRead, kLong);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(detector_.WaitsFor(2, 3));
  tree_.ReleaseAll(3);
  EXPECT_TRUE(one.Join().ok());
  tree_.ReleaseAll(1);
  EXPECT_TRUE(two.Join().ok());
}

TEST_F(LockTreeTest, ARequestLeavingTheQueueUnsatisfiedLetsThoseBehindItGo) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  AsyncAcquire writer(&tree_, 2, "k", "k", kWrite, absl::Seconds(1));
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(2, 1); }));
  AsyncAcquire reader(&tree_, 3, "k", "k", kRead);
  ASSERT_TRUE(WaitUntil([&] { return detector_.QueuedBehind(3, 2); }));
  Status timed_out = writer.Join();
  EXPECT_TRUE(timed_out.IsBusy()) << timed_out.ToString();
  // Woken by the writer's departure, not by its own 30 s timeout.
  ASSERT_TRUE(WaitUntil([&] { return reader.done(); }));
  EXPECT_TRUE(reader.Join().ok());
  EXPECT_EQ(detector_.waiter_count(), 0u);
}

TEST_F(LockTreeTest, WritersWaitingForOneKeyAreGrantedInTurn) {
  ASSERT_TRUE(Lock(1, "k", kWrite).ok());
  std::vector<std::unique_ptr<AsyncAcquire>> writers;
  for (TxnId owner = 2; owner <= 4; ++owner) {
    writers.push_back(std::make_unique<AsyncAcquire>(&tree_, owner, "k", "k", kWrite));
    ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(owner, 1); }));
  }
  for (TxnId owner = 1; owner <= 3; ++owner) {
    tree_.ReleaseAll(owner);
    EXPECT_TRUE(writers[owner - 1]->Join().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (size_t later = owner; later < writers.size(); ++later) {
      EXPECT_FALSE(writers[later]->done()) << "owner " << later + 2 << " went before " << owner + 1;
    }
  }
  tree_.ReleaseAll(4);
}

TEST_F(LockTreeTest, OnlyConflictingOverlappingRequestsQueue) {
  ASSERT_TRUE(Lock(1, "a", "b", kWrite).ok());
  AsyncAcquire reader(&tree_, 2, "a", "c", kRead);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(2, 1); }));
  // Another read of the waited range, and writes just past its end, go at once.
  EXPECT_TRUE(Lock(3, "c", "d", kRead, kLong).ok());
  tree_.ReleaseAll(3);
  EXPECT_TRUE(Lock(4, std::string("c\0", 2), kWrite, kLong).ok());
  tree_.ReleaseAll(1);
  EXPECT_TRUE(reader.Join().ok());
}

// A request that fails keeps blocking, as a holder, the waiters that wait for its locks:
// when it asks again at once, it must not queue behind them (they wait for it), and none of
// them may get Deadlock for it.
TEST_F(LockTreeTest, ARequestThatTimedOutStillBlocksAsAHolder) {
  ASSERT_TRUE(Lock(1, "a", kWrite).ok());
  ASSERT_TRUE(Lock(2, "b", kWrite).ok());
  Status first;
  std::atomic<bool> first_done{false};
  std::thread one([&] {
    first = tree_.Acquire(1, "b", kWrite, absl::Milliseconds(300));
    first_done.store(true);
  });
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(1, 2); }));
  AsyncAcquire three(&tree_, 3, "a", "b", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(3, 1) && detector_.WaitsFor(3, 2); }));
  ASSERT_TRUE(WaitUntil([&] { return first_done.load(); }));
  one.join();
  EXPECT_TRUE(first.IsBusy()) << first.ToString();
  EXPECT_TRUE(detector_.WaitsFor(3, 1));
  EXPECT_FALSE(detector_.QueuedBehind(3, 1));
  AsyncAcquire again(&tree_, 1, "b", "b", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(1, 2); }));
  EXPECT_FALSE(detector_.WaitsFor(1, 3));
  tree_.ReleaseAll(2);
  EXPECT_TRUE(again.Join().ok());
  tree_.ReleaseAll(1);
  EXPECT_TRUE(three.Join().ok());
}

// 3 queued its write of c behind 2's waiting read of [a, c] (which waits for 1's a); then 1
// asks for 3's z. The cycle 1 -> 3 -> 2 -> 1 runs through a queue edge: 3 leaves the queue
// (taking c, which nobody holds) instead of anyone getting Deadlock.
TEST_F(LockTreeTest, ACycleThroughAnotherRequestsQueueEdgeTakesItOutOfTheQueue) {
  ASSERT_TRUE(Lock(1, "a", kWrite).ok());
  ASSERT_TRUE(Lock(3, "z", kWrite).ok());
  AsyncAcquire two(&tree_, 2, "a", "c", kRead);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(2, 1); }));
  AsyncAcquire three(&tree_, 3, "c", "c", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.QueuedBehind(3, 2); }));
  AsyncAcquire one(&tree_, 1, "z", "z", kWrite);
  EXPECT_TRUE(three.Join().ok());
  EXPECT_TRUE(tree_.Holds(3, "c", "c", kWrite));
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(1, 3); }));
  EXPECT_FALSE(one.done());
  tree_.ReleaseAll(3);
  EXPECT_TRUE(one.Join().ok());
  tree_.ReleaseAll(1);
  EXPECT_TRUE(two.Join().ok());
}

// The same cycle with 1's request in another table: the queue edge is in a tree whose
// waiter cannot be woken from here, so 1 gets Deadlock (docs/transactions.md).
TEST(LockTreeDeadlockTest, ACycleThroughAnotherTablesQueueEdgeIsADeadlock) {
  DeadlockDetector detector;
  LockTree a(*BytewiseComparator(), detector);
  LockTree b(*BytewiseComparator(), detector);
  ASSERT_TRUE(a.Acquire(1, "a", kWrite, kNoWait).ok());
  ASSERT_TRUE(b.Acquire(3, "z", kWrite, kNoWait).ok());
  AsyncAcquire two(&a, 2, "a", "c", kRead);
  ASSERT_TRUE(WaitUntil([&] { return detector.WaitsFor(2, 1); }));
  AsyncAcquire three(&a, 3, "c", "c", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector.QueuedBehind(3, 2); }));
  Status s = b.Acquire(1, "z", kWrite, kLong);
  EXPECT_TRUE(s.IsDeadlock()) << s.ToString();
  a.ReleaseAll(1);
  b.ReleaseAll(1);
  EXPECT_TRUE(two.Join().ok());
  a.ReleaseAll(2);
  EXPECT_TRUE(three.Join().ok());
  a.ReleaseAll(3);
  b.ReleaseAll(3);
  EXPECT_EQ(detector.waiter_count(), 0u);
}

TEST_F(LockTreeTest, BusyNamesTheRequestsItWasQueuedBehind) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  AsyncAcquire writer(&tree_, 2, "k", "k", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(2, 1); }));
  Status s = Lock(3, "k", kRead, absl::Milliseconds(20));
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  EXPECT_NE(s.ToString().find("queued behind 2"), std::string::npos) << s.ToString();
  tree_.ReleaseAll(1);
  EXPECT_TRUE(writer.Join().ok());
}

// ---- deadlocks -----------------------------------------------------------------------------

TEST_F(LockTreeTest, TwoTransactionDeadlockFailsTheOneThatClosesTheCycle) {
  ASSERT_TRUE(Lock(1, "x", kWrite).ok());
  ASSERT_TRUE(Lock(2, "y", kWrite).ok());
  AsyncAcquire first(&tree_, 1, "y", "y", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(1, 2); }));
  Status s = Lock(2, "x", kWrite, kLong);
  EXPECT_TRUE(s.IsDeadlock()) << s.ToString();
  EXPECT_FALSE(first.done());
  tree_.ReleaseAll(2);
  EXPECT_TRUE(first.Join().ok());
}

TEST_F(LockTreeTest, UpgradeDeadlockBetweenTwoReaders) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  ASSERT_TRUE(Lock(2, "k", kRead).ok());
  AsyncAcquire first(&tree_, 1, "k", "k", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(1, 2); }));
  EXPECT_TRUE(Lock(2, "k", kWrite, kLong).IsDeadlock());
  tree_.ReleaseAll(2);
  EXPECT_TRUE(first.Join().ok());
  EXPECT_TRUE(tree_.Holds(1, "k", "k", kWrite));
}

// Owner 3's read lock is granted while 2 waits to write; 3 then waits for 2's lock. The edge
// 2 -> 3 was added at the grant, so 3 closes the cycle at once.
TEST_F(LockTreeTest, DeadlockThroughALockGrantedDuringTheWait) {
  ASSERT_TRUE(Lock(1, "k", kRead).ok());
  ASSERT_TRUE(Lock(2, "j", kWrite).ok());
  AsyncAcquire writer(&tree_, 2, "k", "k", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector_.WaitsFor(2, 1); }));
  ASSERT_TRUE(Lock(3, "k", kRead).ok());
  EXPECT_TRUE(Lock(3, "j", kRead, kLong).IsDeadlock());
  tree_.ReleaseAll(3);
  tree_.ReleaseAll(1);
  EXPECT_TRUE(writer.Join().ok());
}

// A cycle through two tables: 1 waits in `a` for 2, 2 waits in `b` for 3, and 3 closes the
// cycle in `a`. Exactly 3 fails; after it releases, 2 and then 1 proceed.
TEST(LockTreeDeadlockTest, ThreeTransactionCycleAcrossTwoTables) {
  DeadlockDetector detector;
  LockTree a(*BytewiseComparator(), detector);
  LockTree b(*BytewiseComparator(), detector);
  ASSERT_TRUE(a.Acquire(1, "x", kWrite, kNoWait).ok());
  ASSERT_TRUE(b.Acquire(2, "y", kWrite, kNoWait).ok());
  ASSERT_TRUE(a.Acquire(3, "z", kWrite, kNoWait).ok());

  AsyncAcquire one(&b, 1, "y", "y", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector.WaitsFor(1, 2); }));
  AsyncAcquire two(&a, 2, "z", "z", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return detector.WaitsFor(2, 3); }));

  Status three = a.Acquire(3, "x", kWrite, kLong);
  EXPECT_TRUE(three.IsDeadlock()) << three.ToString();
  EXPECT_FALSE(one.done());
  EXPECT_FALSE(two.done());

  a.ReleaseAll(3);
  b.ReleaseAll(3);
  EXPECT_TRUE(two.Join().ok());
  EXPECT_FALSE(one.done());
  a.ReleaseAll(2);
  b.ReleaseAll(2);
  EXPECT_TRUE(one.Join().ok());
  EXPECT_TRUE(b.Holds(1, "y", "y", kWrite));
  EXPECT_EQ(detector.waiter_count(), 0u);
}

// ---- lock memory ----------------------------------------------------------------------------

// 1 KiB keys cost ~3.2 KB a lock: past a 64 KiB threshold (and 128 ranges) the owner's row
// locks (nothing but unlocked key space between them) escalate, and keep escalating as it
// doubles, so its memory stays bounded by the threshold's order, not its row count.
TEST(LockTreeMemoryTest, AnOwnerEscalatesOnceItsLocksCostTooMuch) {
  DeadlockDetector detector;
  MemoryBudget memory(SIZE_MAX);
  LockTree tree(*BytewiseComparator(), detector, LockTree::kDefaultEscalateAt, &memory,
                /*escalate_bytes=*/64 << 10);
  auto key = [](int i) { return StrCat("k", 1000 + i, std::string(1024, 'x')); };
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(tree.Acquire(1, key(i), kWrite, kNoWait).ok());
  EXPECT_GE(tree.escalation_count(), 1u);
  EXPECT_TRUE(tree.Holds(1, key(0), key(127), kWrite));
  EXPECT_LE(tree.bound_count(), 2 * LockTree::kMinRangesToEscalate + 2);
  EXPECT_LT(memory.used(), size_t{LockTree::kMinRangesToEscalate} * 4 << 10);
  tree.ReleaseAll(1);
  EXPECT_EQ(memory.used(), 0u);
}

// With an account, the owner's cost in every table counts: under the threshold in each of
// two tables, over it in both together, it escalates in the one it goes on locking in.
TEST(LockTreeMemoryTest, AnAccountCountsTheOwnersLocksInEveryTable) {
  DeadlockDetector detector;
  LockTree a(*BytewiseComparator(), detector, LockTree::kDefaultEscalateAt, nullptr,
             /*escalate_bytes=*/256 << 10);
  LockTree b(*BytewiseComparator(), detector, LockTree::kDefaultEscalateAt, nullptr,
             /*escalate_bytes=*/256 << 10);
  auto account = std::make_shared<std::atomic<int64_t>>(0);
  for (LockTree* tree : {&a, &b}) {
    for (int i = 0; i < 1000; ++i) {
      const std::string key = testing::NumberedKey(i);
      const std::string_view bound = key;
      ASSERT_TRUE(tree->AcquireRange(1, &bound, &bound, kWrite, kNoWait, account).ok());
    }
  }
  EXPECT_EQ(a.escalation_count(), 0u);
  EXPECT_GE(b.escalation_count(), 1u);
  EXPECT_GT(account->load(), 100000);
  EXPECT_LT(account->load(), 256 << 10);
  a.ReleaseAll(1);
  b.ReleaseAll(1);
  EXPECT_EQ(account->load(), 0);
}

// The threshold is per owner: many owners each below it escalate nothing, however much they
// hold together (escalating them would lock each out of the key space between its rows).
TEST(LockTreeMemoryTest, OwnersBelowTheThresholdDoNotEscalateWhateverTheirSum) {
  DeadlockDetector detector;
  MemoryBudget memory(SIZE_MAX);
  LockTree tree(*BytewiseComparator(), detector, LockTree::kDefaultEscalateAt, &memory,
                /*escalate_bytes=*/256 << 10);
  for (int i = 0; i < 8000; ++i) {
    ASSERT_TRUE(tree.Acquire(1 + i % 8, testing::NumberedKey(i), kWrite, kNoWait).ok());
  }
  EXPECT_EQ(tree.escalation_count(), 0u);
  EXPECT_GT(memory.used(), 8000u * 100);
  EXPECT_LT(memory.used(), 8000u * 300);
  std::vector<std::unique_ptr<LockTree>> more;
  more.push_back(std::make_unique<LockTree>(*BytewiseComparator(), detector,
                                            LockTree::kDefaultEscalateAt, &memory));
  ASSERT_TRUE(more.back()->Acquire(9, "k", kWrite, kNoWait).ok());
  more.clear();  // a tree destroyed with locks held gives their memory back
  for (TxnId owner = 1; owner <= 8; ++owner) tree.ReleaseAll(owner);
  EXPECT_EQ(memory.used(), 0u);
}

// ---- stress --------------------------------------------------------------------------------

// 8 threads take random read and write locks (single keys and short ranges) over 50 keys and
// release them at random; per-key counters of current holders check that a writer is alone.
TEST(LockTreeStressTest, RandomLocksKeepMutualExclusionAndTerminate) {
  constexpr int kThreads = 8;
  constexpr int kKeys = 50;
  constexpr int kTxnsPerThread = 150;
  DeadlockDetector detector;
  LockTree tree(*BytewiseComparator(), detector);
  struct KeyHolders {
    std::atomic<int> writers{0};
    std::atomic<int> readers{0};
  };
  std::vector<KeyHolders> holders(kKeys);
  std::atomic<TxnId> next_owner{1};
  std::atomic<int> violations{0};
  std::atomic<int> granted{0};
  std::atomic<int> conflicts{0};  // requests that had to wait
  std::atomic<int> busy{0};
  std::atomic<int> deadlocks{0};
  auto key = [](int i) { return StrCat(i < 10 ? "k0" : "k", i); };

  auto run = [&](uint32_t seed) {
    std::mt19937 rng(seed);
    for (int t = 0; t < kTxnsPerThread; ++t) {
      TxnId owner = next_owner.fetch_add(1);
      std::map<int, Mode> held;  // counted in `holders`
      auto release = [&] {
        for (const auto& [k, mode] : held) {
          (mode == kWrite ? holders[k].writers : holders[k].readers).fetch_sub(1);
        }
        held.clear();
        tree.ReleaseAll(owner);
      };
      int locks = 1 + static_cast<int>(rng() % 5);
      for (int i = 0; i < locks; ++i) {
        int lo = static_cast<int>(rng() % kKeys);
        int hi = rng() % 4 == 0 ? std::min(kKeys - 1, lo + static_cast<int>(rng() % 3)) : lo;
        Mode mode = rng() % 2 == 0 ? kRead : kWrite;
        Status s = tree.Acquire(owner, key(lo), key(hi), mode, kNoWait);
        if (s.IsBusy()) {
          conflicts.fetch_add(1);
          s = tree.Acquire(owner, key(lo), key(hi), mode, absl::Milliseconds(20));
        }
        if (s.IsBusy() || s.IsDeadlock()) {
          (s.IsBusy() ? busy : deadlocks).fetch_add(1);
          break;  // the transaction gives up
        }
        if (!s.ok()) {
          violations.fetch_add(1);
          break;
        }
        granted.fetch_add(1);
        for (int k = lo; k <= hi; ++k) {
          auto it = held.find(k);
          if (it != held.end() && (it->second == kWrite || mode == kRead)) continue;
          if (mode == kWrite) {
            if (it != held.end()) holders[k].readers.fetch_sub(1);  // upgrade
            held[k] = kWrite;
            if (holders[k].writers.fetch_add(1) != 0) violations.fetch_add(1);
            if (holders[k].readers.load() != 0) violations.fetch_add(1);
          } else {
            held[k] = kRead;
            holders[k].readers.fetch_add(1);
            if (holders[k].writers.load() != 0) violations.fetch_add(1);
          }
        }
        if (rng() % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
        if (rng() % 6 == 0) release();  // a random early release; the owner goes on
      }
      release();
    }
  };

  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(run, 1000u + static_cast<uint32_t>(i));
  for (auto& thread : threads) thread.join();

  EXPECT_EQ(violations.load(), 0);
  EXPECT_GT(granted.load(), 0);
  EXPECT_GT(conflicts.load(), 0);
  EXPECT_EQ(tree.bound_count(), 0u);
  EXPECT_EQ(tree.owner_count(), 0u);
  EXPECT_EQ(tree.waiter_count(), 0u);
  EXPECT_EQ(detector.waiter_count(), 0u);
  for (const auto& h : holders) {
    EXPECT_EQ(h.writers.load(), 0);
    EXPECT_EQ(h.readers.load(), 0);
  }
  std::printf("granted %d, waited %d, busy %d, deadlock %d\n", granted.load(), conflicts.load(),
              busy.load(), deadlocks.load());
}

// ---- giving back a refused write's lock -------------------------------------------------

TEST_F(LockTreeTest, ReleaseNewestKeyGivesBackOnlyThatKey) {
  MemoryBudget memory(size_t{1} << 30);
  LockTree tree(*BytewiseComparator(), detector_, LockTree::kDefaultEscalateAt, &memory);
  ASSERT_TRUE(tree.Acquire(1, "k1", kWrite, kNoWait).ok());
  const size_t one_lock = memory.used();
  const size_t bounds = tree.bound_count();
  const std::string_view k2 = "k2";
  bool granted = false;
  ASSERT_TRUE(tree.AcquireRange(1, &k2, &k2, kWrite, kNoWait, nullptr, &granted).ok());
  EXPECT_TRUE(granted);
  ASSERT_GT(memory.used(), one_lock);
  ASSERT_TRUE(tree.AcquireRange(1, &k2, &k2, kRead, kNoWait, nullptr, &granted).ok());
  EXPECT_FALSE(granted);  // held already: nothing added

  EXPECT_FALSE(tree.ReleaseNewestKey(1, "k1"));  // not the newest grant
  EXPECT_FALSE(tree.ReleaseNewestKey(2, "k2"));  // not its owner's
  EXPECT_TRUE(tree.ReleaseNewestKey(1, "k2"));
  EXPECT_FALSE(tree.Holds(1, "k2", "k2", kRead));
  EXPECT_TRUE(tree.Holds(1, "k1", "k1", kWrite));
  EXPECT_EQ(memory.used(), one_lock);
  EXPECT_EQ(tree.bound_count(), bounds);
  EXPECT_TRUE(tree.Acquire(2, "k2", kWrite, kNoWait).ok());
  EXPECT_TRUE(tree.Acquire(2, "k1", kRead, kNoWait).IsBusy());

  // The owner's last lock: the owner is gone from the tree.
  EXPECT_TRUE(tree.ReleaseNewestKey(2, "k2"));
  EXPECT_EQ(tree.owner_count(), 1u);
  tree.ReleaseAll(1);
  EXPECT_EQ(memory.used(), 0u);
  EXPECT_EQ(tree.bound_count(), 0u);
}

TEST_F(LockTreeTest, ReleaseNewestKeyKeepsTheOwnersNeighbouringRange) {
  // [k1, k3] then k4: the segments of both are the owner's alone and may merge.
  ASSERT_TRUE(Lock(1, "k1", "k3", kWrite).ok());
  ASSERT_TRUE(Lock(1, "k4", kWrite).ok());
  EXPECT_TRUE(tree_.ReleaseNewestKey(1, "k4"));
  EXPECT_TRUE(tree_.Holds(1, "k1", "k3", kWrite));
  EXPECT_FALSE(tree_.Holds(1, "k4", "k4", kRead));
  EXPECT_TRUE(Lock(2, "k4", kWrite).ok());
  EXPECT_TRUE(Lock(2, "k3", kWrite).IsBusy());
}

TEST_F(LockTreeTest, ReleaseNewestKeyKeepsALockItsGrantEscalated) {
  LockTree tree(*BytewiseComparator(), detector_, /*escalate_at=*/2);
  ASSERT_TRUE(tree.Acquire(1, "k1", kWrite, kNoWait).ok());
  ASSERT_TRUE(tree.Acquire(1, "k3", kWrite, kNoWait).ok());  // escalates to [k1, k3]
  ASSERT_EQ(tree.escalation_count(), 1u);
  EXPECT_FALSE(tree.ReleaseNewestKey(1, "k3"));
  EXPECT_TRUE(tree.Holds(1, "k1", "k3", kWrite));
  EXPECT_TRUE(tree.Acquire(2, "k3", kWrite, kNoWait).IsBusy());
}

TEST_F(LockTreeTest, ReleaseNewestKeyWakesAWaiterThatWaitedOnlyForIt) {
  ASSERT_TRUE(Lock(1, "k1", kWrite).ok());
  ASSERT_TRUE(Lock(1, "k2", kWrite).ok());
  // Owner 2 waits first: a request queued ahead of it would hold it up (first come, first
  // served) whatever owner 1 gives back.
  AsyncAcquire on_key(&tree_, 2, "k2", "k2", kWrite);
  ASSERT_TRUE(WaitUntil([&] { return tree_.waiter_count() == 1; }));
  AsyncAcquire on_both(&tree_, 3, "k1", "k2", kRead);
  ASSERT_TRUE(WaitUntil([&] { return tree_.waiter_count() == 2; }));
  ASSERT_TRUE(tree_.ReleaseNewestKey(1, "k2"));
  EXPECT_TRUE(on_key.Join().ok());
  // Owner 3 still waits for owner 1's k1 (and now for owner 2's k2).
  EXPECT_FALSE(on_both.done());
  tree_.ReleaseAll(1);
  tree_.ReleaseAll(2);
  EXPECT_TRUE(on_both.Join().ok());
}

}  // namespace
}  // namespace fern
