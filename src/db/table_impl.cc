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

Status TableImpl::CheckUsable() const {
  if (dropped()) return Status::InvalidArgument(StrCat("table \"", name_, "\" was dropped"));
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

ReadView TableImpl::ViewFor(TxnImpl* txn) const {
  ReadView view;
  TxnManager* manager = env_->txn_manager();
  if (txn == nullptr && manager->live_count() == 0) return view;  // everything is committed
  SnapshotPtr snapshot;
  if (txn != nullptr) {
    view.reader = txn->xids();
    if (txn->isolation() == Isolation::kSnapshot) snapshot = txn->state()->snapshot();
  }
  if (snapshot == nullptr) snapshot = manager->TakeSnapshot();
  view.is_visible = [manager, snapshot](TxnId writer) {
    return manager->IsVisible(*snapshot, writer);
  };
  return view;
}

Status TableImpl::Commit(Status applied, Lsn lsn) {
  if (!applied.ok() || !sync_commits_ || lsn == 0) return applied;
  Status s = state_->log()->Sync(lsn);
  if (!s.ok()) state_->SetError(s);
  return s;
}

Status TableImpl::TxnWrite(TxnImpl* txn, std::string_view key,
                           const std::function<Status()>& write) {
  FERN_RETURN_IF_ERROR(txn->CheckWritable());
  FERN_RETURN_IF_ERROR(txn->Lock(this, key, key, LockTree::Mode::kWrite));
  FERN_RETURN_IF_ERROR(txn->BeforeWrite());
  FERN_RETURN_IF_ERROR(write());
  txn->NoteWrite(this, key);
  return Status::OK();
}

Status TableImpl::Put(Txn* txn, std::string_view key, std::string_view value) {
  FERN_RETURN_IF_ERROR(CheckUsable());
  FERN_RETURN_IF_ERROR(CheckKey(key));
  FERN_RETURN_IF_ERROR(CheckValue(value));
  TxnImpl* t;
  FERN_RETURN_IF_ERROR(Unwrap(txn, &t));
  if (t != nullptr) {
    return TxnWrite(t, key,
                    [&] { return tree_->Write(MessageType::kInsert, t->xids(), key, value); });
  }
  Lsn lsn = 0;
  Status s = tree_->Put(key, value, &lsn);
  return Commit(s, lsn);
}

Status TableImpl::Insert(Txn* txn, std::string_view key, std::string_view value) {
  FERN_RETURN_IF_ERROR(CheckUsable());
  FERN_RETURN_IF_ERROR(CheckKey(key));
  FERN_RETURN_IF_ERROR(CheckValue(value));
  TxnImpl* t;
  FERN_RETURN_IF_ERROR(Unwrap(txn, &t));
  if (t != nullptr) {
    return TxnWrite(t, key, [&] { return tree_->InsertTxn(t->xids(), ViewFor(t), key, value); });
  }
  Lsn lsn = 0;
  Status s = tree_->Insert(key, value, &lsn);
  return Commit(s, lsn);
}

Status TableImpl::Get(Txn* txn, std::string_view key, std::string* value) {
  FERN_RETURN_IF_ERROR(CheckUsable());
  FERN_RETURN_IF_ERROR(CheckKey(key));
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
  FERN_RETURN_IF_ERROR(CheckUsable());
  FERN_RETURN_IF_ERROR(CheckKey(key));
  TxnImpl* t;
  FERN_RETURN_IF_ERROR(Unwrap(txn, &t));
  if (t != nullptr) {
    FERN_RETURN_IF_ERROR(t->CheckWritable());
    FERN_RETURN_IF_ERROR(t->Lock(this, key, key, LockTree::Mode::kWrite));
  }
  // Without a transaction the row lock would be released at once: a plain read.
  ReadView view = ViewFor(t);
  return tree_->Get(key, value, &view);
}

Status TableImpl::Delete(Txn* txn, std::string_view key) {
  FERN_RETURN_IF_ERROR(CheckUsable());
  FERN_RETURN_IF_ERROR(CheckKey(key));
  TxnImpl* t;
  FERN_RETURN_IF_ERROR(Unwrap(txn, &t));
  if (t != nullptr) {
    return TxnWrite(t, key, [&] { return tree_->Write(MessageType::kDelete, t->xids(), key, {}); });
  }
  Lsn lsn = 0;
  Status s = tree_->Delete(key, &lsn);
  return Commit(s, lsn);
}

Status TableImpl::Update(Txn* txn, std::string_view key, std::string_view extra) {
  FERN_RETURN_IF_ERROR(CheckUsable());
  FERN_RETURN_IF_ERROR(CheckKey(key));
  FERN_RETURN_IF_ERROR(CheckValue(extra));
  TxnImpl* t;
  FERN_RETURN_IF_ERROR(Unwrap(txn, &t));
  if (t != nullptr) {
    return TxnWrite(t, key,
                    [&] { return tree_->Write(MessageType::kUpdate, t->xids(), key, extra); });
  }
  Lsn lsn = 0;
  Status s = tree_->Update(key, extra, &lsn);
  return Commit(s, lsn);
}

Status TableImpl::UpdateAll(Txn* txn, std::string_view extra) {
  FERN_RETURN_IF_ERROR(CheckUsable());
  FERN_RETURN_IF_ERROR(CheckValue(extra));
  TxnImpl* t;
  FERN_RETURN_IF_ERROR(Unwrap(txn, &t));
  if (t != nullptr) {
    return Status::NotSupported("UpdateAll runs in a transaction of its own; pass txn=nullptr");
  }
  Lsn lsn = 0;
  Status s = tree_->UpdateAll(extra, &lsn);
  return Commit(s, lsn);
}

std::unique_ptr<Cursor> TableImpl::NewCursor(Txn* txn) {
  Status s = CheckUsable();
  TxnImpl* t = nullptr;
  if (s.ok()) s = Unwrap(txn, &t);
  if (s.ok() && t != nullptr) s = t->CheckReadable();
  // A cursor reads as of its creation (a snapshot), even under read committed.
  ReadView view;
  if (s.ok()) view = ViewFor(t);
  std::function<Status(const RowBatch&)> lock_batch;
  if (t != nullptr && t->isolation() == Isolation::kSerializable) {
    lock_batch = [this, t](const RowBatch& batch) -> Status {
      if (batch.empty() && !batch.has_upper) return Status::OK();
      std::string lo = batch.has_lower ? batch.lower : std::string();
      std::string hi = batch.has_upper ? batch.upper : std::string(batch.key(batch.size() - 1));
      return t->Lock(this, lo, hi, LockTree::Mode::kRead);
    };
  }
  return std::make_unique<CursorImpl>(tree_, s, std::move(view), std::move(lock_batch));
}

Status TableImpl::Optimize() {
  FERN_RETURN_IF_ERROR(CheckUsable());
  return tree_->Optimize();
}

}  // namespace fern
