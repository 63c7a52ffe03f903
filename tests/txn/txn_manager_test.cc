#include "txn/txn_manager.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace fern {
namespace {

TxnStatePtr BeginOk(TxnManager* m, Isolation isolation = Isolation::kReadCommitted) {
  TxnStatePtr txn;
  Status s = m->Begin(isolation, &txn);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return txn;
}

TxnStatePtr ChildOk(TxnManager* m, const TxnStatePtr& parent) {
  TxnStatePtr txn;
  Status s = m->BeginChild(parent, &txn);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return txn;
}

// ---- ids and states ------------------------------------------------------------------------

TEST(TxnManagerTest, IdsStartAtTheFloorAndGrowInBeginOrder) {
  TxnManager m(100);
  TxnStatePtr a = BeginOk(&m);
  TxnStatePtr child = ChildOk(&m, a);
  TxnStatePtr b = BeginOk(&m);
  EXPECT_EQ(a->id(), 100u);
  EXPECT_EQ(child->id(), 101u);
  EXPECT_EQ(b->id(), 102u);
  EXPECT_EQ(m.next_id(), 103u);
  EXPECT_EQ(m.live_count(), 3u);
}

TEST(TxnManagerTest, FloorZeroStartsAtOneBecauseZeroIsNoTxn) {
  TxnManager m(0);
  EXPECT_EQ(BeginOk(&m)->id(), 1u);
}

TEST(TxnManagerTest, ChildCarriesItsParentsStackAndRootIsolation) {
  TxnManager m;
  TxnStatePtr root = BeginOk(&m, Isolation::kSnapshot);
  TxnStatePtr child = ChildOk(&m, root);
  TxnStatePtr grandchild = ChildOk(&m, child);
  EXPECT_TRUE(root->is_root());
  EXPECT_FALSE(grandchild->is_root());
  EXPECT_EQ(grandchild->parent(), child);
  EXPECT_EQ(grandchild->xids(), (XidStack{root->id(), child->id(), grandchild->id()}));
  EXPECT_EQ(grandchild->root_id(), root->id());
  EXPECT_EQ(grandchild->isolation(), Isolation::kSnapshot);
  ASSERT_NE(root->snapshot(), nullptr);
  EXPECT_EQ(grandchild->snapshot(), root->snapshot());
}

TEST(TxnManagerTest, StatusFollowsPrepareCommitAndAbort) {
  TxnManager m;
  TxnStatePtr a = BeginOk(&m);
  TxnStatePtr b = BeginOk(&m);
  EXPECT_EQ(a->status(), TxnStatus::kLive);
  ASSERT_TRUE(m.Prepare(a, "xa-1").ok());
  EXPECT_EQ(a->status(), TxnStatus::kPrepared);
  EXPECT_TRUE(a->is_live());
  ASSERT_TRUE(m.Commit(a).ok());
  EXPECT_EQ(a->status(), TxnStatus::kCommitted);
  EXPECT_FALSE(a->is_live());
  ASSERT_TRUE(m.Abort(b).ok());
  EXPECT_EQ(b->status(), TxnStatus::kAborted);
  EXPECT_EQ(m.live_count(), 0u);
}

TEST(TxnManagerTest, EndingAnEndedTransactionIsInvalidArgument) {
  TxnManager m;
  TxnStatePtr a = BeginOk(&m);
  ASSERT_TRUE(m.Commit(a).ok());
  EXPECT_TRUE(m.Commit(a).IsInvalidArgument());
  EXPECT_TRUE(m.Abort(a).IsInvalidArgument());
  EXPECT_EQ(a->status(), TxnStatus::kCommitted);
  EXPECT_TRUE(m.Commit(nullptr).IsInvalidArgument());
}

TEST(TxnManagerTest, ParentCannotEndOrBranchWhileItsChildIsLive) {
  TxnManager m;
  TxnStatePtr parent = BeginOk(&m);
  TxnStatePtr child = ChildOk(&m, parent);
  TxnStatePtr second;
  EXPECT_TRUE(m.BeginChild(parent, &second).IsInvalidArgument());
  EXPECT_TRUE(m.Commit(parent).IsInvalidArgument());
  EXPECT_TRUE(m.Abort(parent).IsInvalidArgument());
  EXPECT_TRUE(m.Prepare(parent, "x").IsInvalidArgument());
  ASSERT_TRUE(m.Commit(child).ok());
  EXPECT_TRUE(m.BeginChild(parent, &second).ok());
  ASSERT_TRUE(m.Abort(second).ok());
  EXPECT_TRUE(m.Commit(parent).ok());
}

TEST(TxnManagerTest, NoChildOfAnEndedOrPreparedTransaction) {
  TxnManager m;
  TxnStatePtr a = BeginOk(&m);
  TxnStatePtr b = BeginOk(&m);
  ASSERT_TRUE(m.Prepare(a, "p").ok());
  ASSERT_TRUE(m.Commit(b).ok());
  TxnStatePtr child;
  EXPECT_TRUE(m.BeginChild(a, &child).IsInvalidArgument());
  EXPECT_TRUE(m.BeginChild(b, &child).IsInvalidArgument());
  EXPECT_TRUE(m.BeginChild(nullptr, &child).IsInvalidArgument());
}

TEST(TxnManagerTest, NestingStopsAtMaxXidDepth) {
  TxnManager m;
  TxnStatePtr txn = BeginOk(&m);
  for (size_t depth = 1; depth < kMaxXidDepth; ++depth) txn = ChildOk(&m, txn);
  EXPECT_EQ(txn->xids().size(), kMaxXidDepth);
  TxnStatePtr too_deep;
  EXPECT_TRUE(m.BeginChild(txn, &too_deep).IsInvalidArgument());
}

TEST(TxnManagerTest, ConcurrentBeginsGetDistinctIds) {
  TxnManager m;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  std::vector<std::vector<TxnId>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, &ids, t] {
      for (int i = 0; i < kPerThread; ++i) {
        TxnStatePtr txn;
        if (!m.Begin(Isolation::kReadCommitted, &txn).ok()) return;
        ids[t].push_back(txn->id());
        SnapshotPtr snapshot = m.TakeSnapshot();
        (void)((i % 2 == 0) ? m.Commit(txn) : m.Abort(txn));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<TxnId> all;
  for (const auto& v : ids) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(m.live_count(), 0u);
  EXPECT_EQ(m.snapshot_count(), 0u);
  EXPECT_EQ(m.finished_record_count(), 0u);
}

// ---- visibility ----------------------------------------------------------------------------

TEST(TxnManagerTest, AutocommittedVersionsAreVisibleToEverySnapshot) {
  TxnManager m;
  TxnStatePtr live = BeginOk(&m);
  SnapshotPtr s = m.TakeSnapshot();
  EXPECT_TRUE(m.IsVisible(*s, kNoTxn));
  EXPECT_TRUE(m.IsCommitted(kNoTxn));
}

TEST(TxnManagerTest, WriterCommittedBeforeTheSnapshotIsVisible) {
  TxnManager m;
  TxnStatePtr w = BeginOk(&m);
  ASSERT_TRUE(m.Commit(w).ok());
  SnapshotPtr s = m.TakeSnapshot();
  EXPECT_TRUE(m.IsVisible(*s, w->id()));
}

TEST(TxnManagerTest, WriterLiveInTheSnapshotStaysInvisibleAfterItCommits) {
  TxnManager m;
  TxnStatePtr w = BeginOk(&m);
  SnapshotPtr s = m.TakeSnapshot();
  EXPECT_TRUE(s->WasLive(w->id()));
  EXPECT_FALSE(m.IsVisible(*s, w->id()));
  ASSERT_TRUE(m.Commit(w).ok());
  EXPECT_FALSE(m.IsVisible(*s, w->id()));
  SnapshotPtr later = m.TakeSnapshot();
  EXPECT_TRUE(m.IsVisible(*later, w->id()));
}

TEST(TxnManagerTest, WriterThatBeganAfterTheSnapshotIsInvisible) {
  TxnManager m;
  SnapshotPtr s = m.TakeSnapshot();
  TxnStatePtr w = BeginOk(&m);
  ASSERT_TRUE(m.Commit(w).ok());
  EXPECT_GE(w->id(), s->next_id());
  EXPECT_FALSE(m.IsVisible(*s, w->id()));
  EXPECT_TRUE(m.IsVisible(*m.TakeSnapshot(), w->id()));
}

TEST(TxnManagerTest, AbortedWriterIsNeverVisibleNorCommitted) {
  TxnManager m;
  TxnStatePtr w = BeginOk(&m);
  SnapshotPtr during = m.TakeSnapshot();
  ASSERT_TRUE(m.Abort(w).ok());
  SnapshotPtr after = m.TakeSnapshot();
  EXPECT_FALSE(m.IsVisible(*during, w->id()));
  EXPECT_FALSE(m.IsVisible(*after, w->id()));
  EXPECT_FALSE(m.IsCommitted(w->id()));
}

TEST(TxnManagerTest, AbortRecordIsKeptWhileASnapshotPinsItsId) {
  TxnManager m;
  TxnStatePtr w = BeginOk(&m);
  SnapshotPtr pin = m.TakeSnapshot();  // w was live in it: the horizon stays at w
  ASSERT_TRUE(m.Abort(w).ok());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(m.Commit(BeginOk(&m)).ok());
  SnapshotPtr after = m.TakeSnapshot();
  EXPECT_FALSE(after->WasLive(w->id()));
  EXPECT_FALSE(m.IsVisible(*after, w->id()));
  EXPECT_FALSE(m.IsCommitted(w->id()));
  EXPECT_EQ(m.finished_record_count(), 101u);
  pin.reset();
  after.reset();
  EXPECT_EQ(m.finished_record_count(), 0u);
}

// The contract in txn_manager.h: once no live transaction or snapshot references an id, its
// record is dropped and it reads as committed. Sound because Abort is called only after the
// aborted transaction's versions are gone, so no reader asks about it.
TEST(TxnManagerTest, IdsBelowTheHorizonReadAsCommitted) {
  TxnManager m;
  TxnStatePtr aborted = BeginOk(&m);
  ASSERT_TRUE(m.Abort(aborted).ok());
  EXPECT_LT(aborted->id(), m.OldestReferencedXid());
  EXPECT_EQ(m.finished_record_count(), 0u);
  EXPECT_TRUE(m.IsCommitted(aborted->id()));
}

TEST(TxnManagerTest, LiveAndUnusedIdsAreNotCommitted) {
  TxnManager m;
  TxnStatePtr w = BeginOk(&m);
  EXPECT_FALSE(m.IsCommitted(w->id()));
  EXPECT_FALSE(m.IsCommitted(m.next_id()));
  EXPECT_FALSE(m.IsCommitted(m.next_id() + 1000));
  ASSERT_TRUE(m.Commit(w).ok());
  EXPECT_TRUE(m.IsCommitted(w->id()));
}

TEST(TxnManagerTest, PreparedTransactionIsStillLiveForReaders) {
  TxnManager m;
  TxnStatePtr w = BeginOk(&m);
  ASSERT_TRUE(m.Prepare(w, "xa").ok());
  SnapshotPtr s = m.TakeSnapshot();
  EXPECT_TRUE(s->WasLive(w->id()));
  EXPECT_FALSE(m.IsVisible(*s, w->id()));
  EXPECT_FALSE(m.IsCommitted(w->id()));
  ASSERT_TRUE(m.Commit(w).ok());
  EXPECT_TRUE(m.IsCommitted(w->id()));
}

// A read-committed reader takes a snapshot per call and so sees each commit as it happens;
// a snapshot reader keeps the view of its Begin across the same interleaving.
TEST(TxnManagerTest, ReadCommittedFollowsCommitsWhileSnapshotKeepsItsBeginView) {
  TxnManager m;
  TxnStatePtr early = BeginOk(&m);  // live when both readers begin
  TxnStatePtr rc_reader = BeginOk(&m, Isolation::kReadCommitted);
  TxnStatePtr snap_reader = BeginOk(&m, Isolation::kSnapshot);
  TxnStatePtr late = BeginOk(&m);  // begins after both readers
  EXPECT_EQ(rc_reader->snapshot(), nullptr);
  ASSERT_NE(snap_reader->snapshot(), nullptr);
  const Snapshot& view = *snap_reader->snapshot();
  EXPECT_TRUE(view.WasLive(snap_reader->id()));

  EXPECT_FALSE(m.IsVisible(*m.TakeSnapshot(), early->id()));
  EXPECT_FALSE(m.IsVisible(*m.TakeSnapshot(), late->id()));

  ASSERT_TRUE(m.Commit(early).ok());
  EXPECT_TRUE(m.IsVisible(*m.TakeSnapshot(), early->id()));
  EXPECT_FALSE(m.IsVisible(view, early->id()));

  ASSERT_TRUE(m.Commit(late).ok());
  EXPECT_TRUE(m.IsVisible(*m.TakeSnapshot(), late->id()));
  EXPECT_FALSE(m.IsVisible(view, late->id()));

  TxnStatePtr after_both = BeginOk(&m);
  ASSERT_TRUE(m.Commit(after_both).ok());
  EXPECT_TRUE(m.IsVisible(*m.TakeSnapshot(), after_both->id()));
  EXPECT_FALSE(m.IsVisible(view, after_both->id()));
}

TEST(TxnManagerTest, SnapshotsHoldOnlyRootTransactions) {
  TxnManager m;
  TxnStatePtr root = BeginOk(&m);
  TxnStatePtr child = ChildOk(&m, root);
  SnapshotPtr s = m.TakeSnapshot();
  EXPECT_TRUE(s->WasLive(root->id()));
  EXPECT_FALSE(s->WasLive(child->id()));
  EXPECT_EQ(s->oldest_referenced(), root->id());
  EXPECT_EQ(m.live_count(), 2u);
}

TEST(TxnManagerTest, CommittedChildChangesNothingUntilItsRootCommits) {
  TxnManager m;
  TxnStatePtr root = BeginOk(&m);
  TxnStatePtr child = ChildOk(&m, root);
  ASSERT_TRUE(m.Commit(child).ok());
  EXPECT_FALSE(m.IsVisible(*m.TakeSnapshot(), root->id()));
  ASSERT_TRUE(m.Commit(root).ok());
  EXPECT_TRUE(m.IsVisible(*m.TakeSnapshot(), root->id()));
}

// ---- OldestReferencedXid -------------------------------------------------------------------

TEST(TxnManagerTest, OldestReferencedIsTheNextIdWhenNothingIsLive) {
  TxnManager m(7);
  EXPECT_EQ(m.OldestReferencedXid(), 7u);
  ASSERT_TRUE(m.Commit(BeginOk(&m)).ok());
  EXPECT_EQ(m.OldestReferencedXid(), 8u);
}

TEST(TxnManagerTest, OldestReferencedIsTheOldestLiveRoot) {
  TxnManager m;
  TxnStatePtr a = BeginOk(&m);
  TxnStatePtr b = BeginOk(&m);
  TxnStatePtr b_child = ChildOk(&m, b);
  EXPECT_EQ(m.OldestReferencedXid(), a->id());
  ASSERT_TRUE(m.Commit(a).ok());
  EXPECT_EQ(m.OldestReferencedXid(), b->id());
  ASSERT_TRUE(m.Commit(b_child).ok());
  ASSERT_TRUE(m.Abort(b).ok());
  EXPECT_EQ(m.OldestReferencedXid(), m.next_id());
}

TEST(TxnManagerTest, SnapshotPinsTheTransactionsLiveInItUntilReleased) {
  TxnManager m;
  TxnStatePtr a = BeginOk(&m);
  SnapshotPtr s = m.TakeSnapshot();
  ASSERT_TRUE(m.Commit(a).ok());
  TxnStatePtr b = BeginOk(&m);
  ASSERT_TRUE(m.Commit(b).ok());
  EXPECT_EQ(m.OldestReferencedXid(), a->id());
  s.reset();
  EXPECT_EQ(m.snapshot_count(), 0u);
  EXPECT_EQ(m.OldestReferencedXid(), m.next_id());
}

// A writer that begins after a snapshot is invisible to it, so a snapshot with no live
// transactions still pins its next id: a version by such a writer must not make an older
// version collectable.
TEST(TxnManagerTest, SnapshotWithNothingLivePinsItsNextId) {
  TxnManager m;
  SnapshotPtr s = m.TakeSnapshot();
  TxnStatePtr w = BeginOk(&m);
  ASSERT_TRUE(m.Commit(w).ok());
  EXPECT_EQ(m.OldestReferencedXid(), s->next_id());
  EXPECT_LE(m.OldestReferencedXid(), w->id());
}

TEST(TxnManagerTest, SnapshotTransactionReleasesItsSnapshotWhenItEnds) {
  TxnManager m;
  TxnStatePtr old = BeginOk(&m);
  TxnStatePtr reader = BeginOk(&m, Isolation::kSnapshot);
  ASSERT_TRUE(m.Commit(old).ok());
  EXPECT_EQ(m.OldestReferencedXid(), old->id());
  ASSERT_TRUE(m.Commit(reader).ok());
  EXPECT_EQ(reader->snapshot(), nullptr);
  EXPECT_EQ(m.snapshot_count(), 0u);
  EXPECT_EQ(m.OldestReferencedXid(), m.next_id());
}

TEST(TxnManagerTest, OldestReferencedNeverDecreasesAndBoundsEveryReference) {
  TxnManager m;
  std::mt19937 rng(1234);
  std::vector<TxnStatePtr> live;
  std::vector<SnapshotPtr> snapshots;
  TxnId last = m.OldestReferencedXid();
  for (int step = 0; step < 5000; ++step) {
    switch (rng() % 5) {
      case 0:
      case 1:
        live.push_back(
            BeginOk(&m, rng() % 3 == 0 ? Isolation::kSnapshot : Isolation::kReadCommitted));
        break;
      case 2:
        if (!live.empty()) {
          size_t i = rng() % live.size();
          ASSERT_TRUE((rng() % 2 ? m.Commit(live[i]) : m.Abort(live[i])).ok());
          live.erase(live.begin() + static_cast<ptrdiff_t>(i));
        }
        break;
      case 3:
        snapshots.push_back(m.TakeSnapshot());
        break;
      case 4:
        if (!snapshots.empty()) snapshots.erase(snapshots.begin() + rng() % snapshots.size());
        break;
    }
    TxnId oldest = m.OldestReferencedXid();
    ASSERT_GE(oldest, last) << "step " << step;
    last = oldest;
    for (const auto& txn : live) {
      ASSERT_LE(oldest, txn->id());
      if (txn->snapshot()) {
        ASSERT_LE(oldest, txn->snapshot()->oldest_referenced());
      }
    }
    for (const auto& s : snapshots) ASSERT_LE(oldest, s->oldest_referenced());
  }
  EXPECT_EQ(m.live_count(), live.size());
}

// ---- prepared transactions and recovery ----------------------------------------------------

TEST(TxnManagerTest, PreparedTransactionsAreFoundByXid) {
  TxnManager m;
  TxnStatePtr a = BeginOk(&m);
  TxnStatePtr b = BeginOk(&m);
  ASSERT_TRUE(m.Prepare(b, "second").ok());
  ASSERT_TRUE(m.Prepare(a, "first").ok());
  EXPECT_EQ(m.FindPrepared("first"), a);
  EXPECT_EQ(m.FindPrepared("second"), b);
  EXPECT_EQ(m.FindPrepared("third"), nullptr);
  EXPECT_EQ(a->xid(), "first");
  EXPECT_EQ(m.PreparedTransactions(), (std::vector<TxnStatePtr>{a, b}));
  ASSERT_TRUE(m.Abort(a).ok());
  EXPECT_EQ(m.FindPrepared("first"), nullptr);
  EXPECT_EQ(m.PreparedTransactions(), std::vector<TxnStatePtr>{b});
}

TEST(TxnManagerTest, PrepareRejectsBadRequests) {
  TxnManager m;
  TxnStatePtr a = BeginOk(&m);
  TxnStatePtr b = BeginOk(&m);
  EXPECT_TRUE(m.Prepare(a, "").IsInvalidArgument());
  ASSERT_TRUE(m.Prepare(a, "x").ok());
  EXPECT_TRUE(m.Prepare(a, "y").IsInvalidArgument());  // already prepared
  EXPECT_TRUE(m.Prepare(b, "x").IsAlreadyExists());
  TxnStatePtr child = ChildOk(&m, b);
  EXPECT_TRUE(m.Prepare(child, "c").IsInvalidArgument());
  EXPECT_TRUE(m.Prepare(nullptr, "n").IsInvalidArgument());
  ASSERT_TRUE(m.Commit(a).ok());
  ASSERT_TRUE(m.Commit(child).ok());
  EXPECT_TRUE(m.Prepare(b, "x").ok());  // the xid is free again
}

TEST(TxnManagerTest, RecoveredTransactionsKeepTheirIdsBelowTheFloor) {
  TxnManager m(50);
  TxnStatePtr root;
  TxnStatePtr child;
  ASSERT_TRUE(m.BeginRecovered(10, nullptr, Isolation::kReadCommitted, &root).ok());
  ASSERT_TRUE(m.BeginRecovered(12, root, Isolation::kReadCommitted, &child).ok());
  EXPECT_EQ(child->xids(), (XidStack{10, 12}));
  EXPECT_EQ(m.OldestReferencedXid(), 10u);
  EXPECT_EQ(m.next_id(), 50u);
  EXPECT_FALSE(m.IsCommitted(10));
  EXPECT_TRUE(m.IsCommitted(11));  // an id from before the restart, not recovered
  ASSERT_TRUE(m.Commit(child).ok());
  ASSERT_TRUE(m.Prepare(root, "recovered").ok());
  EXPECT_EQ(m.FindPrepared("recovered"), root);
  EXPECT_FALSE(m.IsVisible(*m.TakeSnapshot(), 10));
  EXPECT_EQ(BeginOk(&m)->id(), 50u);
}

TEST(TxnManagerTest, RecoveredIdAboveTheCounterMovesIt) {
  TxnManager m(5);
  TxnStatePtr txn;
  ASSERT_TRUE(m.BeginRecovered(9, nullptr, Isolation::kReadCommitted, &txn).ok());
  EXPECT_EQ(m.next_id(), 10u);
}

TEST(TxnManagerTest, BeginRecoveredRejectsKnownIdsAndLiveSnapshots) {
  TxnManager m(50);
  TxnStatePtr txn;
  ASSERT_TRUE(m.BeginRecovered(10, nullptr, Isolation::kReadCommitted, &txn).ok());
  TxnStatePtr again;
  EXPECT_TRUE(m.BeginRecovered(10, nullptr, Isolation::kReadCommitted, &again).IsInvalidArgument());
  EXPECT_TRUE(m.BeginRecovered(0, nullptr, Isolation::kReadCommitted, &again).IsInvalidArgument());
  EXPECT_TRUE(m.BeginRecovered(9, txn, Isolation::kReadCommitted, &again).IsInvalidArgument());
  SnapshotPtr s = m.TakeSnapshot();
  EXPECT_TRUE(m.BeginRecovered(20, nullptr, Isolation::kReadCommitted, &again).IsInvalidArgument());
}

// Snapshots answer from the manager's records of ended roots; checked against a copy of the
// live set taken with each snapshot, over random interleavings of begins, ends, children,
// autocommit stamps and snapshots taken and dropped.
TEST(TxnManagerTest, SnapshotsAnswerAsACopyOfTheLiveSetWould) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 20; ++round) {
    TxnManager m;
    std::vector<TxnStatePtr> live;
    std::map<TxnId, bool> outcome;  // ended roots: committed?
    std::vector<TxnId> stamps;
    struct Taken {
      SnapshotPtr snapshot;
      std::set<TxnId> live_roots;
    };
    std::vector<Taken> snapshots;
    for (int step = 0; step < 400; ++step) {
      switch (rng() % 6) {
        case 0:
        case 1:
          live.push_back(BeginOk(&m, rng() % 2 ? Isolation::kSnapshot : Isolation::kReadCommitted));
          if (rng() % 4 == 0) {  // a child id, never a root
            TxnStatePtr child = ChildOk(&m, live.back());
            ASSERT_TRUE(m.Commit(child).ok());
          }
          break;
        case 2:
          if (!live.empty()) {
            size_t i = rng() % live.size();
            bool commit = rng() % 3 != 0;
            ASSERT_TRUE((commit ? m.Commit(live[i]) : m.Abort(live[i])).ok());
            outcome[live[i]->id()] = commit;
            live.erase(live.begin() + static_cast<ptrdiff_t>(i));
          }
          break;
        case 3: {
          TxnManager::AutocommitTicket ticket = m.BeginAutocommit();
          if (ticket.stamp != kNoTxn) stamps.push_back(ticket.stamp);
          m.EndAutocommit();
          break;
        }
        case 4: {
          std::set<TxnId> roots;
          for (const TxnStatePtr& t : live) roots.insert(t->id());
          snapshots.push_back({m.TakeSnapshot(), roots});
          break;
        }
        case 5:
          if (!snapshots.empty()) snapshots.erase(snapshots.begin() + rng() % snapshots.size());
          break;
      }
      for (const Taken& taken : snapshots) {
        const Snapshot& snap = *taken.snapshot;
        for (TxnId id = 1; id < m.next_id(); ++id) {
          const bool was_live = taken.live_roots.contains(id);
          ASSERT_EQ(snap.WasLive(id), was_live) << "round " << round << " step " << step;
          auto ended = outcome.find(id);
          // A root's versions are committed ones only if it committed; stamps always are.
          const bool committed = ended != outcome.end()
                                     ? ended->second
                                     : std::find(stamps.begin(), stamps.end(), id) != stamps.end();
          if (!committed) continue;
          const bool expected = id < snap.next_id() && !was_live;
          ASSERT_EQ(m.IsVisible(snap, id), expected) << "round " << round << " id " << id;
        }
      }
    }
    for (const TxnStatePtr& t : live) ASSERT_TRUE(m.Abort(t).ok());
  }
}

}  // namespace
}  // namespace fern
