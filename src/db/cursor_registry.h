// CursorRegistry: the live cursors of one Env, so that closing the Env can detach them.
// A user may destroy a Cursor after its Env (API.md leaves the order open); a detached cursor
// holds nothing of the Env's, and every call on it fails with a clear Status.
#ifndef FERN_DB_CURSOR_REGISTRY_H_
#define FERN_DB_CURSOR_REGISTRY_H_

#include "absl/container/flat_hash_set.h"
#include "fern/status.h"
#include "util/mutex.h"

namespace fern {

class CursorImpl;

class CursorRegistry {
 public:
  // Tracks `cursor` until Remove; once CloseAll ran, detaches it at once instead.
  void Add(CursorImpl* cursor);
  // Called by the cursor's destructor.
  void Remove(CursorImpl* cursor);
  // Detaches every tracked cursor with `why` (CursorImpl::Detach). REQUIRES: no other
  // thread is using any of them.
  void CloseAll(const Status& why);

 private:
  Mutex mu_;
  absl::flat_hash_set<CursorImpl*> cursors_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  Status why_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fern

#endif  // FERN_DB_CURSOR_REGISTRY_H_
