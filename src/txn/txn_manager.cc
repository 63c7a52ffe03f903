#include "txn/txn_manager.h"

#include <algorithm>
#include <cassert>
#include <utility>
#include <vector>

#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

const char* StatusName(TxnStatus status) {
  switch (status) {
    case TxnStatus::kLive:
      return "live";
    case TxnStatus::kPrepared:
      return "prepared";
    case TxnStatus::kCommitted:
      return "committed";
    case TxnStatus::kAborted:
      return "aborted";
  }
  return "unknown";
}

// What TakeLiveReaders returns: copies of the live roots and next id, and the live
// snapshots themselves (held, so that they stay comparable while the picture is used).
class PicturedReaders final : public LiveReaders {
 public:
  PicturedReaders(TxnId next_id, std::vector<TxnId> live_roots, std::vector<SnapshotPtr> snapshots)
      : next_id_(next_id), live_roots_(std::move(live_roots)), snapshots_(std::move(snapshots)) {}

  bool MaybeHidden(TxnId writer) const override {
    if (writer == kNoTxn) return false;
    return writer >= next_id_ || std::binary_search(live_roots_.begin(), live_roots_.end(), writer);
  }
  size_t snapshot_count() const override { return snapshots_.size(); }
  // The writer had finished when the picture was taken (!MaybeHidden), and a committed
  // version's writer committed, so the snapshot's own list decides.
  bool Sees(size_t i, TxnId writer) const override {
    if (writer == kNoTxn) return true;
    const Snapshot& snapshot = *snapshots_[i];
    return writer < snapshot.next_id() && !snapshot.WasLive(writer);
  }

 private:
  const TxnId next_id_;
  const std::vector<TxnId> live_roots_;  // ascending
  const std::vector<SnapshotPtr> snapshots_;
};

}  // namespace

bool Snapshot::WasLive(TxnId id) const {
  if (id < oldest_referenced_ || id >= next_id_) return false;
  return manager_->WasLiveAfter(id, ends_);
}

std::string TxnState::xid() const {
  MutexLock lock(&xid_mu_);
  return xid_;
}

TxnManager::TxnManager(TxnId first_id)
    : next_id_(std::max<TxnId>(first_id, 1)), pruned_below_(std::max<TxnId>(first_id, 1)) {}

TxnManager::~TxnManager() {
  MutexLock lock(&mu_);
  assert(snapshot_floors_.empty() && "a snapshot outlives its TxnManager");
}

Status TxnManager::CheckCanBeginChild(const TxnStatePtr& parent) const {
  if (parent->status() != TxnStatus::kLive) {
    return Status::InvalidArgument(StrCat("cannot begin a child of transaction ", parent->id(),
                                          ": it is ", StatusName(parent->status())));
  }
  if (parent->live_child_ != kNoTxn) {
    return Status::InvalidArgument(
        StrCat("transaction ", parent->id(), " already has a live child ", parent->live_child_));
  }
  if (parent->xids().size() >= kMaxXidDepth) {
    return Status::InvalidArgument(StrCat("transactions nest at most ", kMaxXidDepth,
                                          " deep (transaction ", parent->id(), ")"));
  }
  return Status::OK();
}

TxnStatePtr TxnManager::Register(TxnId id, const TxnStatePtr& parent, Isolation isolation) {
  XidStack xids;
  if (parent != nullptr) xids = parent->xids();
  xids.Push(id);
  TxnStatePtr txn(new TxnState(parent, xids, parent ? parent->isolation() : isolation));
  ++live_count_;
  live_txns_.store(live_count_, std::memory_order_release);
  if (parent == nullptr) {
    live_roots_.insert(id);
  } else {
    parent->live_child_ = id;
    txn->snapshot_ = parent->snapshot_;
  }
  return txn;
}

Status TxnManager::Begin(Isolation isolation, TxnStatePtr* txn) {
  MutexLock gate(&autocommit_gate_);  // see BeginAutocommit; it comes before mu_
  MutexLock lock(&mu_);
  TxnStatePtr state = Register(next_id_++, nullptr, isolation);
  if (isolation == Isolation::kSnapshot) state->snapshot_ = TakeSnapshotLocked();
  *txn = std::move(state);
  return Status::OK();
}

Status TxnManager::BeginChild(const TxnStatePtr& parent, TxnStatePtr* txn) {
  if (parent == nullptr) return Status::InvalidArgument("BeginChild without a parent");
  MutexLock lock(&mu_);
  FERN_RETURN_IF_ERROR(CheckCanBeginChild(parent));
  *txn = Register(next_id_++, parent, parent->isolation());
  return Status::OK();
}

Status TxnManager::BeginRecovered(TxnId id, const TxnStatePtr& parent, Isolation isolation,
                                  TxnStatePtr* txn) {
  MutexLock lock(&mu_);
  if (id == kNoTxn) return Status::InvalidArgument("recovered transaction id 0");
  if (!snapshot_floors_.empty()) {
    return Status::InvalidArgument(
        StrCat("cannot recover transaction ", id, " while snapshots are live"));
  }
  if (live_roots_.contains(id) || finished_.contains(id)) {
    return Status::InvalidArgument(StrCat("recovered transaction ", id, " is already known"));
  }
  if (parent != nullptr) {
    FERN_RETURN_IF_ERROR(CheckCanBeginChild(parent));
    if (id <= parent->id()) {
      return Status::InvalidArgument(
          StrCat("recovered child ", id, " is not newer than its parent ", parent->id()));
    }
  }
  *txn = Register(id, parent, isolation);
  next_id_ = std::max(next_id_, id + 1);
  if (pruned_below_.load(std::memory_order_relaxed) > id) {
    pruned_below_.store(id, std::memory_order_release);
  }
  return Status::OK();
}

Status TxnManager::Prepare(const TxnStatePtr& txn, std::string_view xid) {
  if (txn == nullptr) return Status::InvalidArgument("Prepare without a transaction");
  if (xid.empty()) return Status::InvalidArgument("Prepare needs a non-empty xid");
  MutexLock lock(&mu_);
  if (!txn->is_root()) {
    return Status::InvalidArgument(
        StrCat("transaction ", txn->id(), " is a child; only a root can be prepared"));
  }
  if (txn->status() != TxnStatus::kLive) {
    return Status::InvalidArgument(
        StrCat("cannot prepare transaction ", txn->id(), ": it is ", StatusName(txn->status())));
  }
  if (txn->live_child_ != kNoTxn) {
    return Status::InvalidArgument(
        StrCat("cannot prepare transaction ", txn->id(), " with live child ", txn->live_child_));
  }
  std::string key(xid);
  if (prepared_.contains(key)) {
    return Status::AlreadyExists(StrCat("xid '", EscapeBytes(xid), "' is already prepared"));
  }
  {
    MutexLock xid_lock(&txn->xid_mu_);
    txn->xid_ = key;
  }
  txn->status_.store(TxnStatus::kPrepared, std::memory_order_release);
  prepared_.emplace(std::move(key), txn);
  return Status::OK();
}

void TxnManager::Unprepare(const TxnStatePtr& txn) {
  if (txn == nullptr) return;
  MutexLock lock(&mu_);
  if (txn->status() != TxnStatus::kPrepared) return;
  MutexLock xid_lock(&txn->xid_mu_);
  prepared_.erase(txn->xid_);
  txn->xid_.clear();
  txn->status_.store(TxnStatus::kLive, std::memory_order_release);
}

Status TxnManager::Commit(const TxnStatePtr& txn) { return End(txn, TxnStatus::kCommitted); }

Status TxnManager::Abort(const TxnStatePtr& txn) { return End(txn, TxnStatus::kAborted); }

void TxnManager::ReleaseSnapshotForClose(const TxnStatePtr& txn) {
  SnapshotPtr dropped;  // released after mu_ is unlocked: its release locks mu_
  MutexLock lock(&mu_);
  dropped = std::move(txn->snapshot_);
}

Status TxnManager::End(const TxnStatePtr& txn, TxnStatus outcome) {
  if (txn == nullptr) return Status::InvalidArgument("no transaction to end");
  SnapshotPtr dropped;  // released after mu_ is unlocked: its release locks mu_
  {
    MutexLock lock(&mu_);
    TxnStatus status = txn->status();
    if (status == TxnStatus::kCommitted || status == TxnStatus::kAborted) {
      return Status::InvalidArgument(
          StrCat("transaction ", txn->id(), " has already ", StatusName(status)));
    }
    if (txn->live_child_ != kNoTxn) {
      return Status::InvalidArgument(
          StrCat("transaction ", txn->id(), " still has live child ", txn->live_child_));
    }
    txn->status_.store(outcome, std::memory_order_release);
    --live_count_;
    live_txns_.store(live_count_, std::memory_order_release);
    if (txn->parent_ != nullptr) {
      txn->parent_->live_child_ = kNoTxn;
    } else {
      live_roots_.erase(txn->id());
      finished_[txn->id()] = Finished{outcome == TxnStatus::kCommitted, ++ends_};
      if (status == TxnStatus::kPrepared) prepared_.erase(txn->xid());
      PruneFinished();
    }
    dropped = std::move(txn->snapshot_);
  }
  return Status::OK();
}

TxnStatePtr TxnManager::FindPrepared(std::string_view xid) const {
  ReaderMutexLock lock(&mu_);
  auto it = prepared_.find(std::string(xid));
  return it == prepared_.end() ? nullptr : it->second;
}

std::vector<TxnStatePtr> TxnManager::PreparedTransactions() const {
  std::vector<TxnStatePtr> out;
  {
    ReaderMutexLock lock(&mu_);
    out.reserve(prepared_.size());
    for (const auto& [xid, txn] : prepared_) out.push_back(txn);
  }
  std::sort(out.begin(), out.end(),
            [](const TxnStatePtr& a, const TxnStatePtr& b) { return a->id() < b->id(); });
  return out;
}

SnapshotPtr TxnManager::TakeSnapshot() {
  MutexLock gate(&autocommit_gate_);
  MutexLock lock(&mu_);
  return TakeSnapshotLocked();
}

TxnManager::AutocommitTicket TxnManager::BeginAutocommit() {
  AutocommitTicket ticket;
  autocommit_gate_.ReaderLock();
  // No transaction begins and no snapshot appears while the gate is held; one that ends
  // meanwhile only makes the ticket more cautious than needed.
  const bool snapshots = live_snapshots_.load(std::memory_order_acquire) > 0;
  const bool transactions = live_txns_.load(std::memory_order_acquire) > 0;
  if (snapshots || transactions) {
    MutexLock lock(&mu_);
    const TxnId id = next_id_++;
    if (snapshots) ticket.stamp = id;
    if (transactions) ticket.lock_owner = id;
  }
  if (snapshots) autocommits_stamped_.fetch_add(1, std::memory_order_relaxed);
  if (transactions) autocommits_row_locked_.fetch_add(1, std::memory_order_relaxed);
  return ticket;
}

void TxnManager::EndAutocommit() { autocommit_gate_.ReaderUnlock(); }

SnapshotPtr TxnManager::TakeSnapshotLocked() {
  const TxnId oldest = live_roots_.empty() ? next_id_ : *live_roots_.begin();
  auto* snapshot = new Snapshot(this, next_id_, oldest, ends_);
  TxnId floor = snapshot->oldest_referenced();
  snapshot_floors_.insert(floor);
  live_snapshots_.store(snapshot_floors_.size(), std::memory_order_release);
  SnapshotPtr ptr(snapshot, [this, floor](const Snapshot* s) {
    ReleaseSnapshot(s, floor);
    delete s;
  });
  snapshots_[snapshot] = ptr;
  return ptr;
}

void TxnManager::ReleaseSnapshot(const Snapshot* snapshot, TxnId oldest_referenced) {
  MutexLock lock(&mu_);
  snapshots_.erase(snapshot);
  auto it = snapshot_floors_.find(oldest_referenced);
  assert(it != snapshot_floors_.end());
  if (it != snapshot_floors_.end()) snapshot_floors_.erase(it);
  live_snapshots_.store(snapshot_floors_.size(), std::memory_order_release);
  PruneFinished();
}

bool TxnManager::IsVisible(const Snapshot& snapshot, TxnId writer) const {
  if (writer == kNoTxn) return true;
  if (writer >= snapshot.next_id()) return false;
  if (writer < snapshot.oldest_referenced()) return IsCommitted(writer);
  // Kept while the snapshot lives: the horizon is at or below its oldest_referenced().
  ReaderMutexLock lock(&mu_);
  if (live_roots_.contains(writer)) return false;
  auto it = finished_.find(writer);
  // No record: never a live root (an autocommitted write's stamp), so committed.
  if (it == finished_.end()) return true;
  return it->second.committed && it->second.end <= snapshot.ends_;
}

bool TxnManager::WasLiveAfter(TxnId id, uint64_t ends) const {
  ReaderMutexLock lock(&mu_);
  if (live_roots_.contains(id)) return true;
  auto it = finished_.find(id);
  return it != finished_.end() && it->second.end > ends;
}

bool TxnManager::IsCommitted(TxnId writer) const {
  if (writer < pruned_below_.load(std::memory_order_acquire)) return true;  // kNoTxn too
  if (writer == kNoTxn) return true;
  ReaderMutexLock lock(&mu_);
  if (writer >= next_id_ || live_roots_.contains(writer)) return false;
  auto it = finished_.find(writer);
  return it == finished_.end() || it->second.committed;
}

TxnId TxnManager::OldestReferencedXid() const {
  ReaderMutexLock lock(&mu_);
  return OldestReferencedLocked();
}

std::shared_ptr<const LiveReaders> TxnManager::TakeLiveReaders() const {
  TxnId next_id;
  std::vector<TxnId> live_roots;
  // Dropped only after mu_ is unlocked: releasing the last reference to a snapshot locks mu_.
  std::vector<SnapshotPtr> snapshots;
  {
    ReaderMutexLock lock(&mu_);
    next_id = next_id_;
    live_roots.assign(live_roots_.begin(), live_roots_.end());
    snapshots.reserve(snapshots_.size());
    for (const auto& [raw, weak] : snapshots_) {
      // Null once its last holder let go (its release is waiting for mu_).
      if (SnapshotPtr held = weak.lock()) snapshots.push_back(std::move(held));
    }
  }
  return std::make_shared<PicturedReaders>(next_id, std::move(live_roots), std::move(snapshots));
}

TxnId TxnManager::OldestReferencedLocked() const {
  TxnId oldest = next_id_;
  if (!live_roots_.empty()) oldest = std::min(oldest, *live_roots_.begin());
  if (!snapshot_floors_.empty()) oldest = std::min(oldest, *snapshot_floors_.begin());
  return oldest;
}

void TxnManager::PruneFinished() {
  TxnId horizon = OldestReferencedLocked();
  finished_.erase(finished_.begin(), finished_.lower_bound(horizon));
  pruned_below_.store(horizon, std::memory_order_release);
}

TxnId TxnManager::next_id() const {
  ReaderMutexLock lock(&mu_);
  return next_id_;
}

size_t TxnManager::live_count() const {
  ReaderMutexLock lock(&mu_);
  return live_count_;
}

size_t TxnManager::snapshot_count() const {
  ReaderMutexLock lock(&mu_);
  return snapshot_floors_.size();
}

size_t TxnManager::finished_record_count() const {
  ReaderMutexLock lock(&mu_);
  return finished_.size();
}

}  // namespace fern
