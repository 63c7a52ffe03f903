#include "db/table_impl.h"

#include "db/cursor_impl.h"
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

Status TableImpl::CheckUsable(Txn* txn) const {
  if (dropped()) return Status::InvalidArgument(StrCat("table \"", name_, "\" was dropped"));
  if (txn != nullptr) {
    return Status::NotSupported("explicit transactions are not available yet; pass txn=nullptr");
  }
  return Status::OK();
}

Status TableImpl::Commit(Status applied, Lsn lsn) {
  if (!applied.ok() || !sync_commits_ || lsn == 0) return applied;
  Status s = state_->log()->Sync(lsn);
  if (!s.ok()) state_->SetError(s);
  return s;
}

Status TableImpl::Put(Txn* txn, std::string_view key, std::string_view value) {
  FERN_RETURN_IF_ERROR(CheckUsable(txn));
  FERN_RETURN_IF_ERROR(CheckKey(key));
  FERN_RETURN_IF_ERROR(CheckValue(value));
  Lsn lsn = 0;
  Status s = tree_->Put(key, value, &lsn);
  return Commit(s, lsn);
}

Status TableImpl::Insert(Txn* txn, std::string_view key, std::string_view value) {
  FERN_RETURN_IF_ERROR(CheckUsable(txn));
  FERN_RETURN_IF_ERROR(CheckKey(key));
  FERN_RETURN_IF_ERROR(CheckValue(value));
  Lsn lsn = 0;
  Status s = tree_->Insert(key, value, &lsn);
  return Commit(s, lsn);
}

Status TableImpl::Get(Txn* txn, std::string_view key, std::string* value) {
  FERN_RETURN_IF_ERROR(CheckUsable(txn));
  FERN_RETURN_IF_ERROR(CheckKey(key));
  return tree_->Get(key, value);
}

Status TableImpl::GetForUpdate(Txn* txn, std::string_view key, std::string* value) {
  // Without an explicit transaction the row lock would be released at once, so this is a
  // plain read.
  return Get(txn, key, value);
}

Status TableImpl::Delete(Txn* txn, std::string_view key) {
  FERN_RETURN_IF_ERROR(CheckUsable(txn));
  FERN_RETURN_IF_ERROR(CheckKey(key));
  Lsn lsn = 0;
  Status s = tree_->Delete(key, &lsn);
  return Commit(s, lsn);
}

Status TableImpl::Update(Txn* txn, std::string_view key, std::string_view extra) {
  FERN_RETURN_IF_ERROR(CheckUsable(txn));
  FERN_RETURN_IF_ERROR(CheckKey(key));
  FERN_RETURN_IF_ERROR(CheckValue(extra));
  Lsn lsn = 0;
  Status s = tree_->Update(key, extra, &lsn);
  return Commit(s, lsn);
}

Status TableImpl::UpdateAll(Txn* txn, std::string_view extra) {
  FERN_RETURN_IF_ERROR(CheckUsable(txn));
  FERN_RETURN_IF_ERROR(CheckValue(extra));
  Lsn lsn = 0;
  Status s = tree_->UpdateAll(extra, &lsn);
  return Commit(s, lsn);
}

std::unique_ptr<Cursor> TableImpl::NewCursor(Txn* txn) {
  Status s = CheckUsable(txn);
  return std::make_unique<CursorImpl>(tree_, s);
}

Status TableImpl::Optimize() {
  FERN_RETURN_IF_ERROR(CheckUsable(nullptr));
  return tree_->Optimize();
}

}  // namespace fern
