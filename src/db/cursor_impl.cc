#include "db/cursor_impl.h"

#include <algorithm>

#include "db/cursor_registry.h"
#include "util/strings.h"

namespace fern {

CursorImpl::~CursorImpl() {
  if (registry_ != nullptr) registry_->Remove(this);
  RowBatch::KeepSpare(std::move(batch_));
}

void CursorImpl::Detach(const Status& why) {
  ahead_.reset();
  batch_->Clear();
  lock_batch_ = nullptr;
  txn_ = TxnLink();
  view_ = ReadView();  // its snapshot's release calls into the Env's transaction manager
  tree_.reset();
  status_ = why;
  valid_ = false;
}

Status CursorImpl::EndedWhy() const {
  if (table_gate_ != nullptr && table_gate_->closed()) {
    return Status::InvalidArgument(
        StrCat("cursor: table \"", EscapeBytes(table_name_), "\" was dropped"));
  }
  if (txn_.state != nullptr && !txn_.state->is_live()) {
    return Status::InvalidArgument(StrCat("cursor: transaction ", txn_.state->id(), " has ended"));
  }
  return Status::OK();
}

bool CursorImpl::Usable() {
  if (status_.ok()) {
    status_ = EndedWhy();
    if (!status_.ok()) batch_->Clear();
  }
  if (!status_.ok()) {
    valid_ = false;
    return false;
  }
  return true;
}

bool CursorImpl::UsableForSeek() {
  // A seek starts over: a lock wait that timed out or lost a deadlock in an earlier call is
  // not this one's (a serializable cursor retries its read lock). Other errors stay.
  if (status_.IsBusy() || status_.IsDeadlock()) status_ = Status::OK();
  return Usable();
}

void CursorImpl::StartView() {
  if (txn_.state != nullptr) seen_writes_ = txn_.state->family_writes();
  // Before the view: a change after this point shows at the next step.
  if (txn_.reads_each_call) seen_changes_ = CurrentChanges();
  if (txn_.fresh_view) view_ = txn_.fresh_view();
}

void CursorImpl::Reread(bool forward) {
  bound_.assign(batch_->key(pos_));
  if (OthersChanged()) {
    StartView();
    batch_rows_ = kSeekRows;
  }
  seen_writes_ = txn_.state->family_writes();
  // Not from the stream ahead, which stays positioned for the batches after this one; a
  // streaming scan still keeps nothing it rereads.
  const FractalTree::Caching caching =
      Streaming() ? FractalTree::Caching::kStream : FractalTree::Caching::kKeep;
  if (forward) {
    if (!Load(FractalTree::Locate::kAtOrAfter, bound_, caching, /*take_ahead=*/false)) return;
    // Every row of the batch is >= the current key; the current key itself may be gone.
    const bool same =
        batch_->size() > 0 && tree_->config().comparator->Compare(batch_->key(0), bound_) == 0;
    SettleForward(same ? 1 : 0);
  } else {
    if (!Load(FractalTree::Locate::kBefore, bound_, caching, /*take_ahead=*/false)) return;
    SettleBackward(batch_->size());
  }
}

bool CursorImpl::Load(FractalTree::Locate where, std::string_view key, FractalTree::Caching caching,
                      bool take_ahead) {
  StreamAhead* ahead = take_ahead && caching == FractalTree::Caching::kStream &&
                               where == FractalTree::Locate::kAtOrAfter
                           ? ahead_.get()
                           : nullptr;
  Status s = tree_->ReadBatch(where, key, batch_rows_, batch_.get(), &view_, caching, ahead);
  if (s.ok() && lock_batch_) {
    // Lock what the batch covers, then read it again with a view taken under the lock:
    // nothing in it can change while the lock is held, and nothing committed before it was
    // taken is missed. The second read may reach further (a flush removed rows it counts),
    // so it is clipped to the locked range.
    s = lock_batch_(*batch_, &view_);
    if (s.ok()) {
      locked_has_lower_ = batch_->has_lower;
      locked_has_upper_ = batch_->has_upper;
      locked_lower_.assign(batch_->lower);
      locked_upper_.assign(batch_->upper);
      s = tree_->ReadBatch(where, key, batch_rows_, batch_.get(), &view_, caching, ahead);
    }
    if (s.ok()) {
      batch_->ClipTo(locked_has_lower_, locked_lower_, locked_has_upper_, locked_upper_,
                     *tree_->config().comparator);
    }
  }
  if (!s.ok()) {
    status_ = s;
    valid_ = false;
    batch_->Clear();
    return false;
  }
  return true;
}

void CursorImpl::SettleForward(size_t pos) {
  while (pos >= batch_->size()) {
    if (!batch_->has_upper) {
      valid_ = false;
      return;
    }
    // The next batch starts at this one's upper bound, so it holds no row already seen.
    bound_.swap(batch_->upper);
    batch_rows_ = std::min(batch_rows_ * 2, kMaxBatchRows);
    const FractalTree::Caching caching = CachingForNextBatch();
    if (!Load(FractalTree::Locate::kAtOrAfter, bound_, caching)) return;
    scanned_bytes_ += batch_->basement_bytes;
    // A cursor that has read past a few batches is scanning: have the basements after this
    // batch's loaded in the background meanwhile (installed in the cache), or, once it
    // streams, decoded for it alone.
    if (caching == FractalTree::Caching::kStream && batch_->has_upper) {
      if (ahead_ == nullptr) ahead_ = tree_->NewStreamAhead();
      tree_->StreamAheadFrom(ahead_, batch_->upper);
    } else if (batch_rows_ >= kReadaheadRows && batch_->has_upper && !Streaming()) {
      tree_->ReadAhead(batch_->upper);
    }
    pos = 0;
  }
  pos_ = pos;
  valid_ = true;
}

void CursorImpl::SettleBackward(size_t pos_plus_one) {
  while (pos_plus_one == 0) {
    if (!batch_->has_lower) {
      valid_ = false;
      return;
    }
    // The previous batch ends just below this one's lower bound.
    bound_.swap(batch_->lower);
    batch_rows_ = std::min(batch_rows_ * 2, kMaxBatchRows);
    if (!Load(FractalTree::Locate::kBefore, bound_, CachingForNextBatch())) return;
    scanned_bytes_ += batch_->basement_bytes;
    pos_plus_one = batch_->size();
  }
  pos_ = pos_plus_one - 1;
  valid_ = true;
}

void CursorImpl::SeekToFirst() {
  if (!UsableForSeek()) return;
  StartView();
  StartScan();
  if (!Load(FractalTree::Locate::kFirst, {})) return;
  SettleForward(0);
}

void CursorImpl::SeekToLast() {
  if (!UsableForSeek()) return;
  StartView();
  StartScan();
  if (!Load(FractalTree::Locate::kLast, {})) return;
  SettleBackward(batch_->size());
}

void CursorImpl::Seek(std::string_view target) {
  if (!UsableForSeek()) return;
  bound_.assign(target);  // target may point into this cursor's own batch
  StartView();
  StartScan();
  if (!Load(FractalTree::Locate::kAtOrAfter, bound_, FractalTree::Caching::kKeepIfHot)) return;
  // Every row of the batch is >= target.
  SettleForward(0);
}

void CursorImpl::SeekForPrev(std::string_view target) {
  if (!UsableForSeek()) return;
  bound_.assign(target);  // target may point into this cursor's own batch
  StartView();
  StartScan();
  if (!Load(FractalTree::Locate::kAtOrBefore, bound_, FractalTree::Caching::kKeepIfHot)) return;
  // The batch may hold rows above target (pending inserts up to its upper bound).
  SettleBackward(batch_->UpperBound(bound_, *tree_->config().comparator));
}

void CursorImpl::Next() {
  if (!valid_ || !Usable()) return;
  if (Stale()) return Reread(/*forward=*/true);
  SettleForward(pos_ + 1);
}

void CursorImpl::Prev() {
  if (!valid_ || !Usable()) return;
  if (Stale()) return Reread(/*forward=*/false);
  SettleBackward(pos_);
}

}  // namespace fern
