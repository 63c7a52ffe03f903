// The cleaner: every cleaner period it inspects kCleanerPairsPerPass pairs from its own clock
// head, reads the CleanerPriority of each one nobody holds (under a read lock it takes
// without waiting), and calls the owner's CleanerRun for the highest non-zero one — with no
// pin and no cachetable mutex held, so the owner may take its own locks and then pin.
//
// A call in flight is counted on its file; CloseFile blocks new calls and waits for the count
// to reach zero, so no CleanerRun runs once CloseFile has returned.
#include <algorithm>

#include "absl/container/inlined_vector.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cachetable/cachetable.h"
#include "cachetable/cachetable_internal.h"
#include "cachetable/pair.h"

namespace fern {

void Cachetable::Impl::SetCleanerPeriod(uint32_t period_ms) {
  AnnotatedMutexLock lock(&cleaner_mu);
  cleaner_period_ms = period_ms;
  ++cleaner_period_changes;
  cleaner_cv.SignalAll();
}

void Cachetable::Impl::CleanerLoop() {
  cleaner_mu.Lock();
  while (!cleaner_stopping) {
    if (cleaner_period_ms == 0) {
      cleaner_mu.Wait(&cleaner_cv);
      continue;
    }
    const uint64_t changes = cleaner_period_changes;
    const absl::Time due = absl::Now() + absl::Milliseconds(cleaner_period_ms);
    while (!cleaner_stopping && changes == cleaner_period_changes) {
      const absl::Duration left = due - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      cleaner_mu.WaitWithTimeout(&cleaner_cv, left);
    }
    if (cleaner_stopping || changes != cleaner_period_changes) continue;
    cleaner_mu.Unlock();
    CleanerPass();
    cleaner_mu.Lock();
  }
  cleaner_mu.Unlock();
}

bool Cachetable::Impl::CleanerPass() {
  absl::InlinedVector<Pair*, kCleanerPairsPerPass> candidates;
  {
    AnnotatedMutexLock list_lock(&list_mu);
    if (cleaner.running) return false;
    cleaner.running = true;
    cleaner_runs.fetch_add(1, std::memory_order_relaxed);
    const size_t visits = std::min(kCleanerPairsPerPass, clock.size());
    for (size_t i = 0; i < visits; ++i) {
      Pair* pair = static_cast<Pair*>(clock.Advance(&cleaner.hand));
      // refs > 0: pinned, waited for or being fetched (a hint: pins take refs under their
      // bucket's mutex; the read lock below is what counts).
      if (pair->refs() > 0 || pair->file->callbacks_blocked) continue;
      pair->AddRef();
      candidates.push_back(pair);
    }
  }

  Pair* best = nullptr;
  size_t best_priority = 0;
  for (Pair* pair : candidates) {
    if (!pair->lock.TryLockRead()) continue;
    if (!pair->removed() && pair->value != nullptr) {
      const size_t priority = pair->value->CleanerPriority();
      if (priority > best_priority) {
        best = pair;
        best_priority = priority;
      }
    }
    pair->lock.UnlockRead();
  }

  CacheFile* file = nullptr;
  BlockNum block = 0;
  {
    AnnotatedMutexLock list_lock(&list_mu);
    cleaner.running = false;
    // A pair still in the table is in its file's set, so its file is open.
    if (best != nullptr && !best->removed() && !best->file->callbacks_blocked &&
        !best->file->closing.load(std::memory_order_relaxed)) {
      file = best->file;
      block = best->key.block;
      ++file->cleaner_calls_in_flight;
    }
  }
  for (Pair* pair : candidates) ReleaseRef(pair);
  if (file == nullptr) return false;

  cleaner_calls.fetch_add(1, std::memory_order_relaxed);
  file->owner->CleanerRun(block);

  AnnotatedMutexLock list_lock(&list_mu);
  if (--file->cleaner_calls_in_flight == 0) files_cv.SignalAll();
  return true;
}

}  // namespace fern
