// Cursor: ordered iteration over a Table, in both directions.
#ifndef FERN_CURSOR_H_
#define FERN_CURSOR_H_

#include <string_view>

#include "fern/status.h"

namespace fern {

// A Cursor sees what its transaction may see, the transaction's own writes included, also
// those made after the cursor was positioned. Under Isolation::kReadCommitted (and
// kReadUncommitted) it reads as of each call: each seek and each step sees what was
// committed (or, read uncommitted, written) before it, rows the cursor has already passed
// aside; under kSnapshot, as of the transaction's start; without a transaction, as of
// NewCursor. Once its transaction has ended, or its Env was closed, the cursor is not
// Valid() and status() is InvalidArgument; it may be destroyed after its Env. It is used by
// one thread at a time.
class Cursor {
 public:
  virtual ~Cursor();
  virtual void SeekToFirst() = 0;
  virtual void SeekToLast() = 0;
  virtual void Seek(std::string_view target) = 0;         // first key >= target
  virtual void SeekForPrev(std::string_view target) = 0;  // last key <= target
  virtual void Next() = 0;                                // REQUIRES: Valid()
  virtual void Prev() = 0;                                // REQUIRES: Valid()
  virtual bool Valid() const = 0;
  virtual std::string_view key() const = 0;  // valid until the cursor moves; empty if !Valid()
  virtual std::string_view value() const = 0;
  virtual Status status() const = 0;  // non-OK if iteration stopped on an error
};

}  // namespace fern

#endif  // FERN_CURSOR_H_
