#include "db/table_impl.h"

#include "db/cursor_impl.h"
#include "db/env_impl.h"
#include "db/txn_impl.h"
#include "fern/options.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

Status CheckKey(std::string_view key) {
  if (key.size() > kMaxKeyBytes) {
    return Status::InvalidArgument(
        StrCat("key of ", key.size(), " bytes exceeds the limit of ", kMaxKeyBytes));
  }
  return Status::OK();
}

Status CheckValue(std::string_view value) {
  if (value.size() > kMaxValueBytes) {
    return Status::InvalidArgument(
        StrCat("value of ", value.size(), " bytes exceeds the limit of ", kMaxValueBytes));
  }
  return Status::OK();
}

Status TableImpl::Dropped() const {
  return Status::InvalidArgument(StrCat("table \"", name_, "\" was dropped"));
}

bool TableImpl::AddPreparedWriter() {
  MutexLock lock(&prepared_mu_);
  if (dropping_) return false;
  ++prepared_writers_;
  return true;
}

void TableImpl::RemovePreparedWriter() {
  MutexLock lock(&prepared_mu_);
  --prepared_writers_;
}

Status TableImpl::BeginDrop() {
  MutexLock lock(&prepared_mu_);
  if (prepared_writers_ > 0) {
    return Status::Busy(StrCat("table \"", name_, "\" holds writes of ", prepared_writers_,
                               " prepared transaction(s); commit or abort them first"));
  }
  dropping_ = true;
  return Status::OK();
}

Status TableImpl::Unwrap(Txn* txn, TxnImpl** impl) const {
  *impl = nullptr;
  if (txn == nullptr) return Status::OK();
  auto* t = dynamic_cast<TxnImpl*>(txn);
  if (t == nullptr || t->env() != env_) {
    return Status::InvalidArgument("the transaction belongs to another Env");
  }
  *impl = t;
  return Status::OK();
}

namespace {

// The visibility oracle of a view reading as of `snapshot`.
std::function<bool(TxnId)> VisibleIn(TxnManager* manager, SnapshotPtr snapshot) {
  return [manager, snapshot = std::move(snapshot)](TxnId writer) {
    return manager->IsVisible(*snapshot, writer);
  };
}

}  // namespace

ReadView TableImpl::ViewFor(TxnImpl* txn) const {
  ReadView view;
  TxnManager* manager = env_->txn_manager();
  if (txn == nullptr && manager->live_count() == 0) return view;  // everything is committed
  SnapshotPtr snapshot;
  if (txn != nullptr) {
    view.reader = txn->xids();
    // Read uncommitted needs no snapshot: the newest version, committed or not, is read.
    if (txn->isolation() == Isolation::kReadUncommitted) {
      view.dirty = true;
      return view;
    }
    if (txn->isolation() == Isolation::kSnapshot) snapshot = txn->state()->snapshot();
  }
  if (snapshot == nullptr) snapshot = manager->TakeSnapshot();
  view.is_visible = VisibleIn(manager, std::move(snapshot));
  return view;
}

ReadView TableImpl::CurrentViewFor(TxnImpl* txn) const {
  return CurrentViewFor(txn != nullptr ? txn->xids() : XidStack());
}

ReadView TableImpl::CurrentViewFor(const XidStack& reader) const {
  ReadView view;
  TxnManager* manager = env_->txn_manager();
  view.reader = reader;
  view.is_visible = VisibleIn(manager, manager->TakeSnapshot());
  return view;
}

Status TableImpl::Autocommit(absl::FunctionRef<Status(TxnId owner)> lock,
                             absl::FunctionRef<Status(TxnId stamp, Lsn* lsn)> direct,
                             absl::FunctionRef<Status(TxnImpl* own)> in_txn) {
  TxnManager* manager = env_->txn_manager();
  const TxnManager::AutocommitTicket ticket = manager->BeginAutocommit();
  Status locked;
  if (ticket.lock_owner != kNoTxn) locked = lock(ticket.lock_owner);
  if (locked.ok()) {
    Lsn lsn = 0;
    Status s = direct(ticket.stamp, &lsn);
    if (ticket.lock_owner != kNoTxn) locks_->ReleaseAll(ticket.lock_owner);
    manager->EndAutocommit();
    tree_->NoteCommittedChange();  // after the write is visible to new snapshots
    return Commit(s, lsn);
  }
  manager->EndAutocommit();
  if (!locked.IsBusy()) return locked;
  manager->NoteAutocommitInOwnTransaction();
  std::unique_ptr<Txn> own;
  FERN_RETURN_IF_ERROR(env_->Begin(TxnOptions(), &own));
  Status s = in_txn(static_cast<TxnImpl*>(own.get()));
  if (!s.ok()) {
    (void)own->Abort();  // the write's own error is the one to report
    return s;
  }
  s = own->Commit();
  // A drop that began meanwhile aborts the transaction, which the caller never saw.
  if (!s.ok() && dropped()) return Dropped();
  return s;
}

Status TableImpl::Commit(Status applied, Lsn lsn) {
  if (!applied.ok() || !sync_commits_ || lsn == 0) return applied;
  return state_->log()->Sync(lsn);
}

Status TableImpl::TxnWrite(TxnImpl* txn, std::string_view key, const std::function<Status()>& write,
                           bool insert) {
  FERN_RETURN_IF_ERROR(txn->CheckWritable());
  FERN_RETURN_IF_ERROR(LockForWrite(txn, key, insert));
  FERN_RETURN_IF_ERROR(txn->BeforeWrite());
  Status s = write();
  if (!s.ok()) {
    txn->NoteWriteFailed(s);
    return s;
  }
  txn->NoteWrite(this, key);
  return Status::OK();
}

Status TableImpl::LockForWrite(TxnImpl* txn, std::string_view key, bool insert) {
  bool granted = false;
  FERN_RETURN_IF_ERROR(txn->Lock(this, key, key, LockTree::Mode::kWrite, &granted));
  Status s = CheckSnapshotWrite(txn, key, insert);
  // A write conflict refuses the write: a lock taken for it alone goes again, so that other
  // writers of the row need not wait for this transaction to end (RocksDB does the same).
  if (s.IsBusy() && granted) txn->ReleaseNewestLock(this, key);
  return s;
}

Status TableImpl::CheckSnapshotWrite(TxnImpl* txn, std::string_view key, bool insert) {
  if (txn->isolation() != Isolation::kSnapshot) return Status::OK();
  // The row's write lock is held: no other transaction can commit a version of it from
  // here until this one ends, so the answer stays true.
  ReadView view = ViewFor(txn);
  bool hidden = false;
  view.newest_hidden = &hidden;
  Status s = tree_->Get(key, /*value=*/nullptr, &view);
  if (!s.ok() && !s.IsNotFound()) return s;
  if (hidden && insert) {
    ReadView newest = CurrentViewFor(txn);
    s = tree_->Get(key, /*value=*/nullptr, &newest);
    if (s.ok()) return Status::AlreadyExists(StrCat("key \"", EscapeBytes(key), "\" exists"));
    if (!s.IsNotFound()) return s;
  }
  if (hidden) {
    return Status::Busy(StrCat("write conflict: another transaction committed row \"",
                               EscapeBytes(key), "\" after the snapshot of transaction ",
                               txn->id()));
  }
  return Status::OK();
}

Status TableImpl::WriteKey(TxnImpl* txn, std::string_view key,
                           absl::FunctionRef<Status(TxnImpl* in)> tree_write,
                           absl::FunctionRef<Status(TxnId stamp, Lsn* lsn)> direct, bool insert) {
  auto write = [&](TxnImpl* in) {
    return TxnWrite(
        in, key, [&] { return tree_write(in); }, insert);
  };
  if (txn != nullptr) return write(txn);
  return Autocommit(
      [&](TxnId owner) {
        return locks_->Acquire(owner, key, LockTree::Mode::kWrite, absl::ZeroDuration());
      },
      direct, write);
}

Status TableImpl::Put(Txn* txn, std::string_view key, std::string_view value) {
  UseGate::Scope use(&gate_);
  if (!use.entered()) return Dropped();
  FERN_RETURN_IF_ERROR(CheckKey(key));
  FERN_RETURN_IF_ERROR(CheckValue(value));
  TxnImpl* t;
  FERN_RETURN_IF_ERROR(Unwrap(txn, &t));
  return WriteKey(
      t, key,
      [&](TxnImpl* in) { return tree_->Write(MessageType::kInsert, in->xids(), key, value); },
      [&](TxnId stamp, Lsn* lsn) { return tree_->Put(key, value, lsn, stamp); });
}

Status TableImpl::Insert(Txn* txn, std::string_view key, std::string_view value) {
  UseGate::Scope use(&gate_);
  if (!use.entered()) return Dropped();
  FERN_RETURN_IF_ERROR(CheckKey(key));
  FERN_RETURN_IF_ERROR(CheckValue(value));
  TxnImpl* t;
  FERN_RETURN_IF_ERROR(Unwrap(txn, &t));
  return WriteKey(
      t, key,
      [&](TxnImpl* in) { return tree_->InsertTxn(in->xids(), CurrentViewFor(in), key, value); },
      [&](TxnId stamp, Lsn* lsn) { return tree_->Insert(key, value, lsn, stamp); },
      /*insert=*/true);
}

Status TableImpl::Get(Txn* txn, std::string_view key, std::string* value) {
  UseGate::Scope use(&gate_);
  if (!use.entered()) return Dropped();
  FERN_RETURN_IF_ERROR(CheckKey(key));
  if (value == nullptr) return Status::InvalidArgument("Table::Get: value is nullptr");
  TxnImpl* t;
  FERN_RETURN_IF_ERROR(Unwrap(txn, &t));
  if (t != nullptr) {
    FERN_RETURN_IF_ERROR(t->CheckReadable());
    if (t->isolation() == Isolation::kSerializable) {
      FERN_RETURN_IF_ERROR(t->Lock(this, key, key, LockTree::Mode::kRead));
    }
  }
  ReadView view = ViewFor(t);
  return tree_->Get(key, value, &view);
}

Status TableImpl::GetForUpdate(Txn* txn, std::string_view key, std::string* value) {
  UseGate::Scope use(&gate_);
  if (!use.entered()) return Dropped();
  FERN_RETURN_IF_ERROR(CheckKey(key));
  if (value == nullptr) return Status::InvalidArgument("Table::GetForUpdate: value is nullptr");
  TxnImpl* t;
  FERN_RETURN_IF_ERROR(Unwrap(txn, &t));
  if (t != nullptr) {
    FERN_RETURN_IF_ERROR(t->CheckWritable());
    FERN_RETURN_IF_ERROR(LockForWrite(t, key, /*insert=*/false));
  }
  // Without a transaction the row lock would be released at once: a plain read.
  ReadView view = ViewFor(t);
  return tree_->Get(key, value, &view);
}

Status TableImpl::Delete(Txn* txn, std::string_view key) {
  UseGate::Scope use(&gate_);
  if (!use.entered()) return Dropped();
  FERN_RETURN_IF_ERROR(CheckKey(key));
  TxnImpl* t;
  FERN_RETURN_IF_ERROR(Unwrap(txn, &t));
  return WriteKey(
      t, key, [&](TxnImpl* in) { return tree_->Write(MessageType::kDelete, in->xids(), key, {}); },
      [&](TxnId stamp, Lsn* lsn) { return tree_->Delete(key, lsn, stamp); });
}

Status TableImpl::Update(Txn* txn, std::string_view key, std::string_view extra) {
  UseGate::Scope use(&gate_);
  if (!use.entered()) return Dropped();
  FERN_RETURN_IF_ERROR(CheckKey(key));
  FERN_RETURN_IF_ERROR(CheckValue(extra));
  TxnImpl* t;
  FERN_RETURN_IF_ERROR(Unwrap(txn, &t));
  return WriteKey(
      t, key,
      [&](TxnImpl* in) { return tree_->Write(MessageType::kUpdate, in->xids(), key, extra); },
      [&](TxnId stamp, Lsn* lsn) { return tree_->Update(key, extra, lsn, stamp); });
}

Status TableImpl::UpdateAll(Txn* txn, std::string_view extra) {
  UseGate::Scope use(&gate_);
  if (!use.entered()) return Dropped();
  FERN_RETURN_IF_ERROR(CheckValue(extra));
  TxnImpl* t;
  FERN_RETURN_IF_ERROR(Unwrap(txn, &t));
  if (t != nullptr) return UpdateAllInTxn(t, extra);
  // One broadcast message, outside any transaction, when no lock is held in the table:
  // while a transaction is live it first write-locks the whole table without waiting, as
  // an autocommitted Put locks its row. A transaction holding any lock here (a row it
  // wrote or read under kSerializable) would otherwise see the broadcast under its feet or
  // lose it under its own commit; then the UpdateAll runs in a transaction of its own,
  // which waits for the table like any writer (Busy after the lock timeout) and updates
  // each row.
  return Autocommit(
      [&](TxnId owner) {
        return locks_->AcquireRange(owner, nullptr, nullptr, LockTree::Mode::kWrite,
                                    absl::ZeroDuration());
      },
      [&](TxnId stamp, Lsn* lsn) { return tree_->UpdateAll(extra, lsn, stamp); },
      [&](TxnImpl* own) { return UpdateAllInTxn(own, extra); });
}

Status TableImpl::UpdateAllInTxn(TxnImpl* txn, std::string_view extra) {
  FERN_RETURN_IF_ERROR(txn->CheckWritable());
  const UpdateFunction* update = tree_->config().update_function;
  if (update == nullptr || !*update) {
    return Status::InvalidArgument("UpdateAll needs Options::update_function");
  }
  // The whole table, locked for writing, holds still: no other transaction adds, changes
  // or removes a row until this one ends, so "every row" is the rows there now.
  FERN_RETURN_IF_ERROR(txn->LockRange(this, nullptr, nullptr, LockTree::Mode::kWrite));
  if (txn->isolation() == Isolation::kSnapshot) {
    // First-committer-wins, as for a write of one row, before anything is written: Busy if
    // a row was written (changed, added or removed) by a commit the snapshot does not see.
    // The rows there now, then the rows the snapshot sees (to find those removed since).
    for (ReadView view : {CurrentViewFor(txn), ViewFor(txn)}) {
      CursorImpl rows(tree_, Status::OK(), view, nullptr);
      for (rows.SeekToFirst(); rows.Valid(); rows.Next()) {
        FERN_RETURN_IF_ERROR(CheckSnapshotWrite(txn, rows.key()));
      }
      FERN_RETURN_IF_ERROR(rows.status());
    }
  }
  FERN_RETURN_IF_ERROR(txn->BeforeWrite());
  // Logged, so that a prepared transaction takes the table again at recovery.
  Lsn lsn;
  FERN_RETURN_IF_ERROR(
      state_->log()->Append(LogRecord::TableLock(static_cast<TableId>(id_), txn->id()), &lsn));
  // One transactional update per row the transaction sees now (its own writes included).
  // The cursor reads ahead of the updates, which only touch rows it has passed.
  CursorImpl rows(tree_, Status::OK(), CurrentViewFor(txn), nullptr);
  for (rows.SeekToFirst(); rows.Valid(); rows.Next()) {
    const std::string_view key = rows.key();
    FERN_RETURN_IF_ERROR(tree_->Write(MessageType::kUpdate, txn->xids(), key, extra));
    txn->NoteWrite(this, key);
  }
  return rows.status();
}

std::unique_ptr<Cursor> TableImpl::NewCursor(Txn* txn) {
  UseGate::Scope use(&gate_);
  Status s = use.entered() ? Status::OK() : Dropped();
  TxnImpl* t = nullptr;
  if (s.ok()) s = Unwrap(txn, &t);
  if (s.ok() && t != nullptr) s = t->CheckReadable();
  // Outside a transaction a cursor reads as of its creation (a snapshot). In one, it sees
  // the transaction's own writes (CursorImpl rereads after them); under read committed and
  // read uncommitted it reads as of each call (each seek and, after a change, each step
  // takes a fresh view; read uncommitted's reads the newest versions).
  ReadView view;
  CursorImpl::TxnLink link;
  if (s.ok()) {
    const bool own_view = t != nullptr && (t->isolation() == Isolation::kSnapshot ||
                                           t->isolation() == Isolation::kReadUncommitted);
    view = own_view ? ViewFor(t) : CurrentViewFor(t);
    if (t != nullptr) {
      link.state = t->state();
      if (t->isolation() == Isolation::kReadCommitted) {
        link.fresh_view = [this, xids = t->xids()] { return CurrentViewFor(xids); };
      }
      link.reads_each_call = t->isolation() == Isolation::kReadCommitted ||
                             t->isolation() == Isolation::kReadUncommitted;
    }
  }
  std::function<Status(const RowBatch&, ReadView*)> lock_batch;
  if (t != nullptr && t->isolation() == Isolation::kSerializable) {
    // The cursor may outlive its transaction: it then fails rather than take locks for a
    // transaction that will never release them (or touch one that is gone).
    lock_batch = [this, t, state = t->state()](const RowBatch& batch, ReadView* view) -> Status {
      // Locks taken after Prepare would not come back with the transaction after a crash.
      if (state->status() != TxnStatus::kLive) {
        return Status::InvalidArgument(StrCat("transaction ", state->id(),
                                              " has ended or is prepared; its serializable "
                                              "cursor cannot read further"));
      }
      // The batch covers its rows and the gaps between them up to its bounds; a missing
      // bound is the table's edge, so rows inserted past the last one are locked out too.
      const std::string_view lower = batch.lower;
      const std::string_view upper = batch.upper;
      FERN_RETURN_IF_ERROR(t->LockRange(this, batch.has_lower ? &lower : nullptr,
                                        batch.has_upper ? &upper : nullptr, LockTree::Mode::kRead));
      *view = CurrentViewFor(t);
      return Status::OK();
    };
  }
  auto cursor = std::make_unique<CursorImpl>(tree_, s, std::move(view), std::move(lock_batch),
                                             std::move(link));
  cursor->WatchTable(&gate_, name_);
  cursor->SetRegistry(env_->cursors());
  env_->cursors()->Add(cursor.get());
  return cursor;
}

Status TableImpl::Optimize() {
  UseGate::Scope use(&gate_);
  if (!use.entered()) return Dropped();
  return tree_->Optimize();
}

}  // namespace fern
