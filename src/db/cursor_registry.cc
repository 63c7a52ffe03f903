#include "db/cursor_registry.h"

#include "db/cursor_impl.h"

namespace fern {

void CursorRegistry::Add(CursorImpl* cursor) {
  MutexLock lock(&mu_);
  if (closed_) {
    cursor->Detach(why_);
    return;
  }
  cursors_.insert(cursor);
}

void CursorRegistry::Remove(CursorImpl* cursor) {
  MutexLock lock(&mu_);
  cursors_.erase(cursor);
}

void CursorRegistry::CloseAll(const Status& why) {
  MutexLock lock(&mu_);
  closed_ = true;
  why_ = why;
  for (CursorImpl* cursor : cursors_) cursor->Detach(why);
  cursors_.clear();
}

}  // namespace fern
