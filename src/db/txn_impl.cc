#include "db/txn_impl.h"

#include <algorithm>
#include <optional>

#include "db/env_impl.h"
#include "db/table_impl.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

// Holds the Env's prepared_mu() through the end of a transaction restored by recovery, so
// that a table replayed meanwhile either gives it its keys first or sees how it ended.
class RestoredEndLock {
 public:
  RestoredEndLock(EnvImpl* env, bool restored) ABSL_NO_THREAD_SAFETY_ANALYSIS
      : mu_(restored ? &env->prepared_mu() : nullptr) {
    if (mu_ != nullptr) mu_->Lock();
  }
  ~RestoredEndLock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (mu_ != nullptr) mu_->Unlock();
  }
  RestoredEndLock(const RestoredEndLock&) = delete;
  RestoredEndLock& operator=(const RestoredEndLock&) = delete;

 private:
  Mutex* const mu_;
};

// A write set at least this large (~10 MB with its row locks) is freed in bulk when its
// transaction ends.
constexpr size_t kBulkFreeRows = 20'000;

}  // namespace

TxnImpl::TxnImpl(EnvImpl* env, TxnStatePtr state, TxnImpl* parent, const TxnOptions& options)
    : env_(env), state_(std::move(state)), parent_(parent), options_(options) {
  writes_.SetRollbackFile(&env_->dir(), id(), env_->rollback_spills(), env_->write_set_memory());
  env_->TrackTxn(this);
}

TxnImpl::~TxnImpl() {
  if (env_ == nullptr) return;  // the Env closed first and settled this transaction
  // The parent may already be gone if the user destroyed it first; it aborted us then.
  if (!ended_) Abort().ok();
  env_->UntrackTxn(this);
}

void TxnImpl::EnvClosing() {
  if (!ended_) {
    if (state_->status() == TxnStatus::kPrepared) {
      env_->txn_manager()->ReleaseSnapshotForClose(state_);
      Detach();
    } else if (parent_ == nullptr) {
      Abort().ok();  // aborts a live child too
    }
  }
  ended_ = true;
  // A prepared transaction lives on in the log; its write set and rollback file are of no
  // more use, and the file must not outlive the Env. Its tables close with the Env: their
  // counts of prepared writers no longer matter.
  writes_.Release();
  written_tables_.clear();
  counted_as_prepared_ = false;
  prepared_in_.clear();
  env_ = nullptr;
}

Status TxnImpl::CheckReadable() const {
  if (env_ == nullptr) {
    return Status::InvalidArgument(StrCat("transaction ", id(), ": its Env was closed"));
  }
  if (ended_) return Status::InvalidArgument(StrCat("transaction ", id(), " has ended"));
  if (live_child_ != nullptr) {
    return Status::InvalidArgument(
        StrCat("transaction ", id(), " has a live child; use the child until it ends"));
  }
  return Status::OK();
}

Status TxnImpl::CheckWritable() const {
  FERN_RETURN_IF_ERROR(CheckReadable());
  if (state_->status() == TxnStatus::kPrepared) {
    return Status::InvalidArgument(StrCat("transaction ", id(),
                                          " is prepared: only Commit or "
                                          "Abort may follow"));
  }
  return Status::OK();
}

Status TxnImpl::Lock(TableImpl* table, std::string_view lo, std::string_view hi,
                     LockTree::Mode mode, bool* granted) {
  return LockRange(table, &lo, &hi, mode, granted);
}

Status TxnImpl::LockRange(TableImpl* table, const std::string_view* lo, const std::string_view* hi,
                          LockTree::Mode mode, bool* granted) {
  TxnImpl* root = this;
  while (root->parent_ != nullptr) root = root->parent_;
  Status s = table->locks()->AcquireRange(state_->root_id(), lo, hi, mode, env_->lock_timeout(),
                                          root->lock_account_, granted);
  if (s.ok()) root->locked_tables_.insert(table);
  return s;
}

void TxnImpl::ReleaseNewestLock(TableImpl* table, std::string_view key) {
  table->locks()->ReleaseNewestKey(state_->root_id(), key);
}

Status TxnImpl::BeforeWrite() {
  attempted_write_ = true;
  if (begin_logged_) return Status::OK();
  if (parent_ != nullptr) FERN_RETURN_IF_ERROR(parent_->BeforeWrite());
  FERN_RETURN_IF_ERROR(env_->write_state()->error());
  Lsn lsn;
  FERN_RETURN_IF_ERROR(env_->LogBeginTxn(
      LogRecord::BeginTxn(id(), parent_ != nullptr ? parent_->id() : kNoTxn), id(), &lsn));
  begin_logged_ = true;
  first_lsn_ = lsn;
  return Status::OK();
}

void TxnImpl::NoteWrite(TableImpl* table, std::string_view key, bool own) {
  state_->NoteFamilyWrite();
  writes_.Note(table, key, own);
  NoteTable(table);
}

void TxnImpl::NoteTable(TableImpl* table) {
  if (!written_tables_.empty() && written_tables_.back() == table) return;  // the usual case
  if (std::find(written_tables_.begin(), written_tables_.end(), table) != written_tables_.end()) {
    return;
  }
  written_tables_.push_back(table);
  // A recovered prepared transaction adopts keys of tables replayed late (OpenTable), which
  // cannot be being dropped: they were not open.
  if (counted_as_prepared_ && table->AddPreparedWriter()) prepared_in_.push_back(table);
}

Status TxnImpl::CountAsPrepared() {
  for (TableImpl* table : written_tables_) {
    if (!table->AddPreparedWriter()) {
      UncountPrepared();
      return Status::InvalidArgument(StrCat("transaction ", id(), " wrote to table \"",
                                            table->name(),
                                            "\", which is being dropped; it cannot prepare"));
    }
    prepared_in_.push_back(table);
  }
  counted_as_prepared_ = true;
  return Status::OK();
}

void TxnImpl::UncountPrepared() {
  for (TableImpl* table : prepared_in_) table->RemovePreparedWriter();
  prepared_in_.clear();
  counted_as_prepared_ = false;
}

void TxnImpl::AdoptRecovered(std::vector<std::pair<TableImpl*, std::string>> writes,
                             std::vector<TableImpl*> table_locks, Lsn first_lsn) {
  for (TableImpl* table : table_locks) locked_tables_.insert(table);
  for (auto& [table, key] : writes) {
    locked_tables_.insert(table);
    NoteWrite(table, key, /*own=*/false);  // the log may hold several writes of it
  }
  // Prepared: its tables cannot be dropped until it ends (none is being dropped yet).
  CountAsPrepared().ok();
  begin_logged_ = true;
  first_lsn_ = first_lsn;
  restored_ = true;
  env_->RegisterLiveTxn(id(), first_lsn);
}

Status TxnImpl::CheckRollbackFile() {
  if (writes_.spilled() == 0) return Status::OK();
  Status s = writes_.ForEach([](TableImpl*, std::string_view, bool) { return Status::OK(); });
  if (s.ok()) return s;
  return s.WithContext(StrCat("transaction ", id(),
                              " cannot commit: its rollback file cannot be read back; abort it"));
}

Status TxnImpl::ResolveAll(MessageType type, const UseGateSet* held) {
  Status first;
  Status read = writes_.ForEach([&](TableImpl* table, std::string_view key, bool sole_write) {
    // A table dropped meanwhile needs nothing; one being dropped waits for this.
    const bool open = held != nullptr && held->Holds(table->gate());
    std::optional<UseGate::Scope> use;
    if (!open) use.emplace(table->gate());
    if (use.has_value() && !use->entered()) return Status::OK();
    Status s = table->tree()->Resolve(type, xids(), key, sole_write);
    if (!s.ok() && first.ok()) first = s;
    return Status::OK();
  });
  if (first.ok()) first = read;
  if (!first.ok()) {
    env_->write_state()->SetError(
        first.WithContext(StrCat("transaction ", id(), " could not be resolved")));
  }
  return first;
}

void TxnImpl::ForgetWrites() {
  // Released, not kept: the caller may keep the ended transaction object for long.
  const size_t rows = writes_.size();
  writes_.Release();
  UncountPrepared();
  written_tables_.clear();
  // The allocator keeps what a big set (and its row locks) leaves free, and the evictor,
  // having trimmed for nothing while the set kept the process over budget, has backed off.
  if (rows >= kBulkFreeRows) env_->cache()->ReturnFreedMemorySoon();
}

void TxnImpl::ReleaseLocks() {
  for (TableImpl* table : locked_tables_) table->locks()->ReleaseAll(state_->root_id());
  locked_tables_.clear();
}

void TxnImpl::Unregister() {
  if (begin_logged_) env_->UnregisterLiveTxn(id(), first_lsn_);
}

Status TxnImpl::Commit() {
  FERN_RETURN_IF_ERROR(CheckReadable());
  // A restored prepared transaction takes keys of tables replayed late under the Env's
  // prepared_mu() (AdoptKey): held before anything here reads its write set or tables.
  RestoredEndLock restored_end(env_, restored_);
  if (attempted_write_ && writes_.empty() && !begin_logged_) {
    FERN_RETURN_IF_ERROR(env_->write_state()->error());
  }
  if (!write_failed_.ok()) {
    return write_failed_.WithContext(
        StrCat("transaction ", id(), " cannot commit: one of its writes failed"));
  }
  FERN_RETURN_IF_ERROR(CheckRollbackFile());
  if (parent_ != nullptr) {
    // A child's commit needs no sync: it stands or falls with its root. Nor does it send
    // messages: its provisional level stays in each leaf entry, where the family reads the
    // innermost version and its next write, commit or abort on the key folds the finished
    // level into its parent's (leaf_entry.h). Resolving here made every key travel the tree
    // once per level on its way to the root: 32 nested levels of 2,000 rows committed in
    // 1.6 s, quadratic in depth. The record tells recovery the child's keys are its parent's.
    if (!writes_.empty()) {
      ReaderMutexLock gate(&env_->write_state()->resolution_gate());
      Lsn lsn;
      FERN_RETURN_IF_ERROR(env_->log()->Append(LogRecord::CommitTxn(id()), &lsn));
    }
    // The keys become the parent's: its commit or abort resolves them.
    if (!writes_.empty()) state_->NoteFamilyWrite();
    for (TableImpl* table : written_tables_) parent_->NoteTable(table);
    Status handed = parent_->writes_.Absorb(&writes_);
    if (!handed.ok()) {
      // The parent would not resolve what it was not handed: refuse further writes.
      handed = handed.WithContext(
          StrCat("transaction ", id(), " could not hand its writes to its parent"));
      env_->write_state()->SetError(handed);
      return handed;
    }
    env_->txn_manager()->Commit(state_).ok();
    ended_ = true;
    Unregister();
    ForgetWrites();
    parent_->live_child_ = nullptr;
    return Status::OK();
  }
  // A transaction the log knows of (it wrote, or was prepared without writing) needs its
  // commit record, or recovery would bring it back undecided (a prepared one as prepared).
  const bool logged = !writes_.empty() || begin_logged_;
  // Before anything else: after a failure to resolve a logged commit, only this error may
  // answer a retry (an abort must not follow the commit record).
  if (logged) FERN_RETURN_IF_ERROR(env_->write_state()->error());
  // The tables written stay open from before the commit record until every key is resolved:
  // a DropTable that began earlier has closed a table's gate, and then no commit may report
  // success for writes that went with their table (the whole transaction is aborted); one
  // that begins later waits for this commit to finish. A prepared transaction's tables
  // cannot be being dropped (TableImpl::BeginDrop), so it never takes this way out (nor
  // does a restored one, whose RestoredEndLock Abort would take again).
  UseGateSet tables_open;
  for (TableImpl* table : written_tables_) {
    if (tables_open.Enter(table->gate()) || state_->status() == TxnStatus::kPrepared) continue;
    const std::string name(table->name());
    Status aborted = Abort();
    Status refused = Status::InvalidArgument(
        StrCat("transaction ", id(), " wrote to table \"", name,
               "\", which was dropped before it committed; the transaction was aborted"));
    return aborted.ok() ? refused : refused.WithContext(aborted.ToString());
  }
  Status synced;
  if (logged) {
    Lsn lsn;
    {
      ReaderMutexLock gate(&env_->write_state()->resolution_gate());
      FERN_RETURN_IF_ERROR(env_->log()->Append(LogRecord::CommitTxn(id()), &lsn));
      // Visible to new snapshots only after every key is resolved (TxnManager::Commit below),
      // so no reader sees a state in which some of our keys are committed and others not.
      FERN_RETURN_IF_ERROR(ResolveAll(MessageType::kCommitAny, &tables_open));
    }
    // The decision on a prepared transaction is always made durable: the coordinator may
    // have forgotten it once told it is done.
    const bool prepared = state_->status() == TxnStatus::kPrepared;
    bool sync = options_.sync.value_or(env_->sync_commits()) || prepared;
    if (sync) synced = env_->log()->Sync(lsn);
  }
  // Ends committed even when the sync failed: the commit is applied in this process and its
  // record is in the log, written or kept for the log's retry, so it may yet become durable.
  env_->txn_manager()->Commit(state_).ok();
  ended_ = true;
  // Read-committed cursors on the tables it wrote (every one holds a lock of it) take a
  // fresh view at their next step: the commit messages alone may have come before this.
  for (TableImpl* table : locked_tables_) table->tree()->NoteCommittedChange();
  if (restored_) env_->EndRestoredPrepared(id(), MessageType::kCommitAny);
  Unregister();
  ReleaseLocks();
  ForgetWrites();
  if (!synced.ok()) {
    return synced.WithContext(StrCat("transaction ", id(),
                                     " committed in this process, but its commit may not be "
                                     "durable"));
  }
  return Status::OK();
}

Status TxnImpl::Abort() {
  if (env_ == nullptr) {
    return Status::InvalidArgument(StrCat("transaction ", id(), ": its Env was closed"));
  }
  if (ended_) return Status::InvalidArgument(StrCat("transaction ", id(), " has ended"));
  if (live_child_ != nullptr) FERN_RETURN_IF_ERROR(live_child_->Abort());
  RestoredEndLock restored_end(env_, restored_);
  Status s;
  Lsn lsn = 0;
  if (!writes_.empty()) {
    ReaderMutexLock gate(&env_->write_state()->resolution_gate());
    s = ResolveAll(MessageType::kAbortAny);
    Status logged = env_->log()->Append(LogRecord::AbortTxn(id()), &lsn);
    if (s.ok()) s = logged;
  } else if (begin_logged_) {
    env_->log()->Append(LogRecord::AbortTxn(id()), &lsn).ok();
  }
  // As in Commit: the decision on a prepared transaction is made durable.
  if (s.ok() && lsn != 0 && state_->status() == TxnStatus::kPrepared) {
    s = env_->log()->Sync(lsn);
  }
  env_->txn_manager()->Abort(state_).ok();
  ended_ = true;
  // A child's writes leave its family's view: the family's cursors read again at their next
  // step rather than serve a batch copied while the child was live.
  if (parent_ != nullptr) state_->NoteFamilyWrite();
  if (restored_) env_->EndRestoredPrepared(id(), MessageType::kAbortAny);
  Unregister();
  ForgetWrites();
  if (parent_ != nullptr) {
    parent_->live_child_ = nullptr;
  } else {
    ReleaseLocks();
  }
  return s;
}

Status TxnImpl::Prepare(std::string_view xid) {
  FERN_RETURN_IF_ERROR(CheckWritable());
  if (parent_ != nullptr) return Status::InvalidArgument("only a root transaction can be prepared");
  if (xid.empty()) return Status::InvalidArgument("Prepare needs a non-empty xid");
  FERN_RETURN_IF_ERROR(BeforeWrite());
  FERN_RETURN_IF_ERROR(CountAsPrepared());
  Status s = env_->txn_manager()->Prepare(state_, xid);
  if (!s.ok()) {
    UncountPrepared();
    return s;
  }
  Lsn lsn;
  s = env_->log()->Append(LogRecord::PrepareTxn(id(), xid), &lsn);
  if (s.ok()) s = env_->log()->Sync(lsn);
  if (!s.ok()) {
    // Not prepared: it may only abort now. (A failed sync leaves it unknown whether the
    // record reached the disk; if it did, recovery brings the transaction back prepared,
    // and a table dropped in between, no longer kept by its count, holds none of its writes.)
    env_->txn_manager()->Unprepare(state_);
    UncountPrepared();
  }
  return s;
}

Status TxnImpl::BeginChild(std::unique_ptr<Txn>* child) {
  if (child == nullptr) return Status::InvalidArgument("Txn::BeginChild: child is nullptr");
  FERN_RETURN_IF_ERROR(CheckWritable());
  TxnStatePtr state;
  FERN_RETURN_IF_ERROR(env_->txn_manager()->BeginChild(state_, &state));
  auto impl = std::make_unique<TxnImpl>(env_, std::move(state), this, options_);
  live_child_ = impl.get();
  *child = std::move(impl);
  return Status::OK();
}

}  // namespace fern
