#include "db/cursor_impl.h"

#include <algorithm>

namespace fern {

bool CursorImpl::Usable() {
  if (!status_.ok()) {
    valid_ = false;
    return false;
  }
  return true;
}

bool CursorImpl::Load(FractalTree::Locate where, std::string_view key) {
  Status s = tree_->ReadBatch(where, key, &batch_, &view_);
  if (s.ok() && lock_batch_) {
    // Lock what the batch covers, then read it again: it cannot change under the lock.
    s = lock_batch_(batch_);
    if (s.ok()) s = tree_->ReadBatch(where, key, &batch_, &view_);
  }
  if (!s.ok()) {
    status_ = s;
    valid_ = false;
    batch_.Clear();
    return false;
  }
  return true;
}

void CursorImpl::SettleForward(size_t pos) {
  while (pos >= batch_.size()) {
    if (!batch_.has_upper) {
      valid_ = false;
      return;
    }
    bound_ = batch_.upper;
    if (!Load(FractalTree::Locate::kContaining, bound_)) return;
    // If the tree changed since the last batch, the new one may start below `bound_`.
    const Comparator& cmp = *tree_->config().comparator;
    pos = 0;
    while (pos < batch_.size() && cmp.Compare(batch_.key(pos), bound_) < 0) ++pos;
  }
  pos_ = pos;
  valid_ = true;
}

void CursorImpl::SettleBackward(size_t pos_plus_one) {
  while (pos_plus_one == 0) {
    if (!batch_.has_lower) {
      valid_ = false;
      return;
    }
    bound_ = batch_.lower;
    if (!Load(FractalTree::Locate::kBefore, bound_)) return;
    // The batch before `bound_` may also hold keys >= bound_ if the tree changed; skip them.
    const Comparator& cmp = *tree_->config().comparator;
    pos_plus_one = batch_.size();
    while (pos_plus_one > 0 && cmp.Compare(batch_.key(pos_plus_one - 1), bound_) >= 0) {
      --pos_plus_one;
    }
  }
  pos_ = pos_plus_one - 1;
  valid_ = true;
}

void CursorImpl::SeekToFirst() {
  if (!Usable() || !Load(FractalTree::Locate::kFirst, {})) return;
  SettleForward(0);
}

void CursorImpl::SeekToLast() {
  if (!Usable() || !Load(FractalTree::Locate::kLast, {})) return;
  SettleBackward(batch_.size());
}

void CursorImpl::Seek(std::string_view target) {
  if (!Usable()) return;
  std::string t(target);  // target may point into this cursor's own batch
  if (!Load(FractalTree::Locate::kContaining, t)) return;
  const Comparator& cmp = *tree_->config().comparator;
  size_t pos = 0;
  while (pos < batch_.size() && cmp.Compare(batch_.key(pos), t) < 0) ++pos;
  SettleForward(pos);
}

void CursorImpl::SeekForPrev(std::string_view target) {
  if (!Usable()) return;
  std::string t(target);
  if (!Load(FractalTree::Locate::kContaining, t)) return;
  const Comparator& cmp = *tree_->config().comparator;
  size_t end = batch_.size();
  while (end > 0 && cmp.Compare(batch_.key(end - 1), t) > 0) --end;
  SettleBackward(end);
}

void CursorImpl::Next() {
  if (!valid_ || !Usable()) return;
  SettleForward(pos_ + 1);
}

void CursorImpl::Prev() {
  if (!valid_ || !Usable()) return;
  SettleBackward(pos_);
}

}  // namespace fern
