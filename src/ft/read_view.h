// ReadView: whose versions a read may see.
#ifndef FERN_FT_READ_VIEW_H_
#define FERN_FT_READ_VIEW_H_

#include <functional>

#include "ft/leaf_entry.h"
#include "ft/message.h"

namespace fern {

struct ReadView {
  // The reader's transaction-id stack, outermost first (empty: not in a transaction). A
  // reader sees its own family's provisional versions.
  XidStack reader;
  // Whether a committed version by this writer is visible (snapshot rules); null: every
  // committed version is. Versions by kNoTxn (autocommitted) are always visible.
  std::function<bool(TxnId)> is_visible;
  // Read uncommitted: the innermost provisional version of whichever transaction has one on
  // the key comes first (a dirty read); committed versions as above otherwise.
  bool dirty = false;
  // When set, each Read also records here whether the entry's newest committed version is
  // hidden from this view (LeafEntryView::NewestCommittedHiddenFrom): a snapshot writer's
  // conflict check.
  bool* newest_hidden = nullptr;

  // Reads the visible value of `entry` as stored (an out-of-line one the caller resolves);
  // false if absent or deleted for this reader.
  bool Read(const LeafEntryView& entry, StoredValue* value) const {
    if (newest_hidden != nullptr) {
      *newest_hidden = entry.NewestCommittedHiddenFrom(reader, is_visible);
    }
    static const std::function<bool(TxnId)> kAll = [](TxnId) { return true; };
    if (dirty && entry.provisional_count() > 0) {
      LeafEntryView::Version newest = entry.innermost_provisional();
      if (newest.is_delete) return false;
      *value = newest.stored();
      return true;
    }
    return entry.ReadVisible(reader, is_visible ? is_visible : kAll, value);
  }
};

}  // namespace fern

#endif  // FERN_FT_READ_VIEW_H_
