// The transaction manager: transaction ids, the live set, snapshots and the visibility
// oracle the tree uses to choose among a key's versions (docs/transactions.md).
//
// Ids. One 64-bit counter hands out every id, roots and children alike, in Begin order, so a
// child's id is above its parent's and a transaction that began later has a larger id. After
// recovery the counter starts above every id in the log (the constructor's `first_id`).
//
// Visibility. A snapshot copies the set of live root transactions and the next id. A version
// written by root transaction W is visible to snapshot S iff W == kNoTxn, or W < S.next_id,
// W was not live in S, and W committed. Since W had finished before S was taken, "committed"
// is decided by a record of finished roots kept while any snapshot may ask about W: records
// of ids at or above OldestReferencedXid() are kept; an id below it reads as committed.
//
// The caller's obligations that make that last rule sound:
//  - Abort and Commit are called after the transaction's abort or commit messages have been
//    injected into every tree it wrote (PerconaFT's order for aborts; src/db/txn_impl.cc),
//    so no reader meets a provisional version of a root that has left the live set, and no
//    snapshot sees some of a committing transaction's keys resolved and others not.
//  - The oracle is asked about root (outermost) ids: committed versions carry their root as
//    writer, and a reader of another family decides by the provisional stack's outermost id.
//
// Thread safety: every TxnManager method may be called from any thread. A TxnState's id,
// parent, xids and isolation never change; status() and xid() may be read from any thread;
// snapshot() belongs to the thread using the transaction (a Txn is used by one thread at a
// time), because the root's end drops it.
#ifndef FERN_TXN_TXN_MANAGER_H_
#define FERN_TXN_TXN_MANAGER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "fern/options.h"
#include "fern/status.h"
#include "ft/live_readers.h"
#include "ft/message.h"
#include "util/mutex.h"

namespace fern {

class TxnManager;

enum class TxnStatus : uint8_t { kLive, kPrepared, kCommitted, kAborted };

// What a reader may see: the root transactions live when it was taken and the id the next
// Begin would have received. Immutable; shared by the readers that use it. While any copy
// of the SnapshotPtr lives, the manager keeps the records its readers may ask about and
// OldestReferencedXid() stays at or below oldest_referenced(). O(1) in size: which roots were
// live is answered from the manager's records (each finished root's place in the order of
// ends), not from a copy of the live set, so N live snapshots cost O(N), not O(N^2).
class Snapshot {
 public:
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  TxnId next_id() const { return next_id_; }
  // Whether root transaction `id` was live (or prepared) when the snapshot was taken. O(1)
  // outside [oldest_referenced(), next_id()), else O(log n) under the manager's mutex.
  bool WasLive(TxnId id) const;
  // The smallest id this snapshot cannot judge by next_id alone: the oldest live root, or
  // next_id if none was live.
  TxnId oldest_referenced() const { return oldest_referenced_; }

 private:
  friend class TxnManager;
  Snapshot(const TxnManager* manager, TxnId next_id, TxnId oldest_referenced, uint64_t ends)
      : manager_(manager), next_id_(next_id), oldest_referenced_(oldest_referenced), ends_(ends) {}

  const TxnManager* const manager_;
  const TxnId next_id_;
  const TxnId oldest_referenced_;
  const uint64_t ends_;  // roots that had ended when it was taken (TxnManager::ends_)
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

class TxnState;
using TxnStatePtr = std::shared_ptr<TxnState>;

// One transaction as the manager sees it. Created only by TxnManager.
class TxnState {
 public:
  TxnState(const TxnState&) = delete;
  TxnState& operator=(const TxnState&) = delete;

  TxnId id() const { return xids_.innermost(); }
  TxnId root_id() const { return xids_.outermost(); }
  bool is_root() const { return parent_ == nullptr; }
  const TxnStatePtr& parent() const { return parent_; }
  // Outermost first; the last is id().
  const XidStack& xids() const { return xids_; }
  // A child has its root's isolation.
  Isolation isolation() const { return isolation_; }
  TxnStatus status() const { return status_.load(std::memory_order_acquire); }
  bool is_live() const {
    TxnStatus s = status();
    return s == TxnStatus::kLive || s == TxnStatus::kPrepared;
  }
  // kSnapshot: the snapshot taken at the root's Begin (children share it) until the
  // transaction ends. Otherwise null: read-committed and serializable readers take a
  // snapshot per call, read-uncommitted readers need none.
  const SnapshotPtr& snapshot() const { return snapshot_; }
  // The XA id given to Prepare; empty if never prepared.
  std::string xid() const;
  // Counts the writes of this transaction's family (its root and every descendant), so that
  // a cursor of any of them sees when rows it copied may have changed under it.
  void NoteFamilyWrite() { Root()->family_writes_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t family_writes() const { return Root()->family_writes_.load(std::memory_order_relaxed); }

 private:
  friend class TxnManager;
  TxnState(TxnStatePtr parent, XidStack xids, Isolation isolation)
      : parent_(std::move(parent)), xids_(xids), isolation_(isolation) {}

  const TxnState* Root() const {
    const TxnState* root = this;
    while (root->parent_ != nullptr) root = root->parent_.get();
    return root;
  }
  TxnState* Root() {
    TxnState* root = this;
    while (root->parent_ != nullptr) root = root->parent_.get();
    return root;
  }

  const TxnStatePtr parent_;
  const XidStack xids_;
  const Isolation isolation_;
  std::atomic<TxnStatus> status_{TxnStatus::kLive};  // written under the manager's mutex
  SnapshotPtr snapshot_;
  TxnId live_child_ = kNoTxn;               // guarded by the manager's mutex
  std::atomic<uint64_t> family_writes_{0};  // on the root only
  mutable Mutex xid_mu_;
  std::string xid_ ABSL_GUARDED_BY(xid_mu_);
};

class TxnManager {
 public:
  // Ids start at max(first_id, 1).
  explicit TxnManager(TxnId first_id = 1);
  // REQUIRES: every SnapshotPtr it returned has been released (a snapshot's release calls
  // back into the manager). Live transactions are simply forgotten.
  ~TxnManager();
  TxnManager(const TxnManager&) = delete;
  TxnManager& operator=(const TxnManager&) = delete;

  // Starts a root transaction. kSnapshot takes its snapshot here, after the new id is
  // registered (so the transaction is in its own snapshot's live set). Waits for
  // autocommitted writes in progress (BeginAutocommit).
  Status Begin(Isolation isolation, TxnStatePtr* txn);
  // Starts a child of `parent`, which must be live (not prepared), have no live child (a
  // family runs one transaction at a time) and be less than kMaxXidDepth deep. The child has
  // the root's isolation and snapshot. InvalidArgument otherwise.
  Status BeginChild(const TxnStatePtr& parent, TxnStatePtr* txn);
  // For recovery: registers a transaction with an id from the log (a root when `parent` is
  // null, else a child under BeginChild's rules). REQUIRES (InvalidArgument otherwise): no
  // snapshot is live, and `id` is not kNoTxn nor live nor recorded as finished. Ids handed
  // out afterwards are above `id`.
  Status BeginRecovered(TxnId id, const TxnStatePtr& parent, Isolation isolation, TxnStatePtr* txn);

  // XA phase one for a live root without a live child: records `xid` (non-empty, not used by
  // another prepared transaction: AlreadyExists). The transaction stays live.
  Status Prepare(const TxnStatePtr& txn, std::string_view xid);
  // Takes back a Prepare whose record could not be made durable: the transaction is live
  // again, without an xid. No effect unless it is prepared.
  void Unprepare(const TxnStatePtr& txn);
  // For a closing Env whose user still holds `txn`, prepared: the transaction stays
  // prepared in the log (the next open brings it back), but its snapshot is released now,
  // while this manager exists (the release calls back into it, and the handle may be
  // destroyed after the manager). Nothing else changes.
  void ReleaseSnapshotForClose(const TxnStatePtr& txn);
  // End a live or prepared transaction. REQUIRES (InvalidArgument otherwise): it has not
  // ended and has no live child. A root leaves the live set; a committed child's work is its
  // parent's (nothing changes for readers until the root commits). See the header comment
  // for when the caller may call Abort.
  Status Commit(const TxnStatePtr& txn);
  Status Abort(const TxnStatePtr& txn);

  // The prepared transaction with that xid, or null.
  TxnStatePtr FindPrepared(std::string_view xid) const;
  // Every prepared transaction, by ascending id.
  std::vector<TxnStatePtr> PreparedTransactions() const;

  // O(number of live roots). Waits for autocommitted writes in progress (below).
  SnapshotPtr TakeSnapshot();

  // Autocommitted writes (a Table call with txn == nullptr) run outside any transaction:
  // such a write calls BeginAutocommit before it is logged and EndAutocommit once it is in
  // the tree. In between no snapshot is taken and no root transaction begins, so each
  // snapshot sees the write from its first read to its last or never.
  struct AutocommitTicket {
    // The writer the write's committed version records (Message::committed_by): kNoTxn when
    // no snapshot is live (every reader that can meet the version sees it, and older
    // versions need not be kept), else a fresh id, which the live snapshots cannot see (it
    // is at or above their next_id) and every later snapshot can.
    TxnId stamp = kNoTxn;
    // kNoTxn when no transaction is live (none can hold a row lock). Otherwise a fresh id
    // for the write to take its row lock under, without waiting, before it writes: a live
    // transaction may hold the row.
    TxnId lock_owner = kNoTxn;
  };
  // REQUIRES: matched by one EndAutocommit on the same thread, which meanwhile takes no
  // snapshot and begins no transaction.
  AutocommitTicket BeginAutocommit() ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Counts an autocommitted write that found its row locked and ran in a transaction of its
  // own instead.
  void NoteAutocommitInOwnTransaction() {
    autocommits_in_own_txn_.fetch_add(1, std::memory_order_relaxed);
  }
  struct AutocommitStats {
    uint64_t stamped = 0;     // tickets with a stamp (a snapshot was live)
    uint64_t row_locked = 0;  // tickets with a lock owner (a transaction was live)
    uint64_t in_own_txn = 0;  // NoteAutocommitInOwnTransaction calls
  };
  AutocommitStats autocommit_stats() const {
    return {autocommits_stamped_.load(std::memory_order_relaxed),
            autocommits_row_locked_.load(std::memory_order_relaxed),
            autocommits_in_own_txn_.load(std::memory_order_relaxed)};
  }
  void EndAutocommit() ABSL_NO_THREAD_SAFETY_ANALYSIS;

  // See the header comment. `writer` is a root id or kNoTxn.
  bool IsVisible(const Snapshot& snapshot, TxnId writer) const;
  // Whether root transaction `writer` has committed (true for kNoTxn and for ids below
  // OldestReferencedXid() without a record; false for live and unused ids).
  bool IsCommitted(TxnId writer) const;

  // The smallest id that is live or may be live in a live snapshot: the minimum over live
  // roots, every live snapshot's oldest_referenced() and the next id. A committed version by a
  // writer below it is seen by every present and future reader that sees no newer version,
  // which is what ApplyContext::oldest_live_snapshot asks for (src/ft/basement.h). It never
  // decreases, except when BeginRecovered registers an older id. O(log n).
  TxnId OldestReferencedXid() const;

  // A picture of the live roots and live snapshots now, for garbage collection of keys with
  // many versions (src/ft/live_readers.h). O(live roots + live snapshots). The picture holds
  // the snapshots until it is dropped; REQUIRES: dropped before this manager.
  std::shared_ptr<const LiveReaders> TakeLiveReaders() const;

  TxnId next_id() const;
  // Live and prepared transactions, children included.
  size_t live_count() const;
  size_t snapshot_count() const;
  // Finished roots whose record is still kept (for tests and stats).
  size_t finished_record_count() const;

 private:
  Status CheckCanBeginChild(const TxnStatePtr& parent) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  TxnStatePtr Register(TxnId id, const TxnStatePtr& parent, Isolation isolation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  SnapshotPtr TakeSnapshotLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Status End(const TxnStatePtr& txn, TxnStatus outcome);
  // Snapshot::WasLive for ids in [oldest_referenced, next_id) of a snapshot taken after
  // `ends` roots had ended.
  friend class Snapshot;
  bool WasLiveAfter(TxnId id, uint64_t ends) const;
  void ReleaseSnapshot(const Snapshot* snapshot, TxnId oldest_referenced);
  TxnId OldestReferencedLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void PruneFinished() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Held shared by autocommitted writes in progress, exclusively (before mu_) while a
  // snapshot is taken or a root transaction begins.
  Mutex autocommit_gate_;
  mutable Mutex mu_;
  TxnId next_id_ ABSL_GUARDED_BY(mu_);
  // snapshot_floors_.size() and live_count_, for BeginAutocommit to read without mu_.
  std::atomic<size_t> live_snapshots_{0};
  std::atomic<size_t> live_txns_{0};
  std::atomic<uint64_t> autocommits_stamped_{0};
  std::atomic<uint64_t> autocommits_row_locked_{0};
  std::atomic<uint64_t> autocommits_in_own_txn_{0};
  absl::btree_set<TxnId> live_roots_ ABSL_GUARDED_BY(mu_);
  size_t live_count_ ABSL_GUARDED_BY(mu_) = 0;
  // oldest_referenced() of each live snapshot.
  absl::btree_multiset<TxnId> snapshot_floors_ ABSL_GUARDED_BY(mu_);
  // Every live snapshot, for TakeLiveReaders; its release erases it.
  absl::flat_hash_map<const Snapshot*, std::weak_ptr<const Snapshot>> snapshots_
      ABSL_GUARDED_BY(mu_);
  // Finished roots at or above the last pruning horizon, and how they finished.
  struct Finished {
    bool committed = false;
    uint64_t end = 0;  // its place among root ends: ends_ just after it ended
  };
  absl::btree_map<TxnId, Finished> finished_ ABSL_GUARDED_BY(mu_);
  uint64_t ends_ ABSL_GUARDED_BY(mu_) = 0;  // roots ended so far
  // That horizon: every id below it is a finished root without a record (it reads as
  // committed), so IsCommitted answers for it without taking mu_. Written under mu_.
  std::atomic<TxnId> pruned_below_{kNoTxn};
  // Keyed by xid. std::string keys: see src/util/strings.h on heterogeneous lookup.
  absl::flat_hash_map<std::string, TxnStatePtr> prepared_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fern

#endif  // FERN_TXN_TXN_MANAGER_H_
