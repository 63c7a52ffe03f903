// LiveReaders: which of a key's older committed versions some reader may still need.
//
// Garbage collection keeps, by default, every committed version newer than the oldest
// referenced id (ApplyContext::oldest_live_snapshot). One long-lived snapshot pins that id, so
// a key overwritten a million times under it would keep a million versions, and each write
// would re-encode them all. For an entry with many versions the collector instead asks a
// LiveReaders picture, taken at one moment, and keeps only:
//  - the newest version whose writer a reader beginning now surely sees, and every newer one
//    (their writers were live, or began after the picture: a later reader may not see them);
//  - for each snapshot live at the picture, the newest version that snapshot sees.
// A picture stays sound after it was taken: writers live then count as possibly hidden,
// snapshots taken later see the newest settled version or a newer one, and snapshots
// released later only make it keep more than needed.
#ifndef FERN_FT_LIVE_READERS_H_
#define FERN_FT_LIVE_READERS_H_

#include <cstddef>
#include <memory>

#include "ft/message.h"

namespace fern {

class LiveReaders {
 public:
  virtual ~LiveReaders() = default;
  // Whether a reader beginning now might not see a committed version by root `writer`: the
  // writer was live when the picture was taken, or is unknown to it (a later id). False for
  // kNoTxn.
  virtual bool MaybeHidden(TxnId writer) const = 0;
  // Snapshots live when the picture was taken.
  virtual size_t snapshot_count() const = 0;
  // Whether snapshot `i` sees a committed version by `writer`. REQUIRES: i <
  // snapshot_count(), !MaybeHidden(writer).
  virtual bool Sees(size_t i, TxnId writer) const = 0;
};

// Takes pictures; implemented by the Env (its transaction manager).
class LiveReadersSource {
 public:
  virtual ~LiveReadersSource() = default;
  // A picture of the readers now; null when no picture can be taken (then only the oldest
  // referenced id guides the collection).
  virtual std::shared_ptr<const LiveReaders> TakeLiveReaders() const { return nullptr; }
};

}  // namespace fern

#endif  // FERN_FT_LIVE_READERS_H_
