// The evictor thread, back-pressure on clients, and the background threads' lifetime.
//
// The evictor wakes every evictor_period_ms, and whenever a client finds memory above
// wake_bytes (1.05x the budget), and sweeps from its own clock head down to the budget. A
// client that finds memory above block_bytes (1.1x) waits until it falls to release_bytes
// (1.05x), until an evictor run that began after the client started waiting has ended (that
// run evicted all it could: the rest is pinned, locked or failing to write), or for
// kMaxBackPressureWait, whichever comes first. Clients that only read wait only if they
// fetched, and for at most kMaxReadBackPressureWait. A waiting client holds no cachetable mutex
// and no lock of the pair it unpinned; the pins it still holds are passed over by the sweep.
// While write-backs fail (a full disk), clients do not wait and the evictor rests between
// runs (see Impl::failing_files).
#include <algorithm>
#include <thread>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cachetable/cachetable.h"
#include "cachetable/cachetable_internal.h"
#include "cachetable/trim_pacer.h"
#include "util/process_memory.h"
#include "util/thread_pool.h"

namespace fern {

namespace {

int DefaultCheckpointWriters() {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, cores / 4);
}

}  // namespace

void Cachetable::Impl::StartThreads() {
  checkpoint_writers = std::make_unique<ThreadPool>(
      options.checkpoint_writers > 0 ? options.checkpoint_writers : DefaultCheckpointWriters());
  {
    AnnotatedMutexLock lock(&cleaner_mu);
    cleaner_period_ms = options.cleaner_period_ms;
  }
  cleaner_thread = std::thread([this] { CleanerLoop(); });
  if (options.evictor_thread) evictor_thread = std::thread([this] { EvictorLoop(); });
}

void Cachetable::Impl::StopThreads() {
  {
    AnnotatedMutexLock lock(&evictor_mu);
    evictor_stopping = true;
    evictor_cv.SignalAll();
    pressure_cv.SignalAll();
  }
  {
    AnnotatedMutexLock lock(&cleaner_mu);
    cleaner_stopping = true;
    cleaner_cv.SignalAll();
  }
  if (evictor_thread.joinable()) evictor_thread.join();
  if (cleaner_thread.joinable()) cleaner_thread.join();
  checkpoint_writers.reset();
}

namespace {

// Hands memory the allocator keeps free back to the system. glibc gives each thread that
// allocates its own arena, and a node built by one thread (a writer) and freed by another
// (the evictor, a flusher) leaves free but resident pages in several arenas: the memory test
// (2,000,000 rows, 32 MiB cache, background flushes on) peaked at 138-155 MiB without
// trimming and 104-111 MiB with it (89 MiB with a single arena). A trim is not free: it
// madvises every free page away (a TLB shootdown on each core) and the next allocations
// fault them back in, which halved fillrandom's rate and took a third of seekrandom's time
// at 64 MiB when it ran after every quarter budget evicted. So it runs only when the
// process's resident memory is over the budget by more than `slack`; where that cannot be
// read, only if `when_unknown`. Returns whether it trimmed, and in *freed what it gave back
// (0 when unknown).
//
// Memory held outside the cache (a big transaction's write set, many open cursors) keeps
// the resident size over that line however much is trimmed, and a trim of a large,
// fragmented heap is slow (20-60 ms for ~300 MB) and holds each arena's lock while it
// walks it: trimming after every sixteenth budget evicted made a 300,000-row commit take
// 28 s, 26 of them in 1,120 trims that gave back nothing. The caller backs off after such
// trims (TrimPacer).
bool ReturnFreedMemory(size_t budget, size_t slack, bool when_unknown, size_t* freed) {
  *freed = 0;
  const size_t resident = ResidentBytes();
  if (resident == 0 ? !when_unknown : resident <= budget + slack) return false;
  if (!ReturnFreeMemoryToSystem()) return false;
  const size_t after = resident == 0 ? 0 : ResidentBytes();
  if (after != 0 && after < resident) *freed = resident - after;
  return true;
}

}  // namespace

void Cachetable::Impl::EvictorLoop() {
  const absl::Duration period = absl::Milliseconds(options.evictor_period_ms);
  const size_t slack = options.trim_slack_bytes;
  TrimPacer pacer(budget, slack);
  // The quiet spell: since the evictor last swept or was woken, and whether its one idle
  // trim has been tried.
  absl::Time last_busy = absl::Now();
  bool idle_trim_tried = false;
  evictor_mu.Lock();
  for (;;) {
    if (AnyWriteBackFailing()) {
      // Wake-ups cannot bring this rest forward: they come with every unpin over budget.
      const absl::Time rest_until = absl::Now() + kFailingEvictorRest;
      for (absl::Time now = absl::Now(); !evictor_stopping && now < rest_until; now = absl::Now()) {
        evictor_mu.WaitWithTimeout(&evictor_cv, rest_until - now);
      }
    }
    // One wait: a spurious wake-up only brings a run forward.
    if (!evictor_wake && !evictor_stopping) evictor_mu.WaitWithTimeout(&evictor_cv, period);
    if (evictor_stopping) break;
    const bool woken = evictor_wake;
    evictor_wake = false;
    evictor_wake_hint.store(false, std::memory_order_relaxed);
    const uint64_t run = ++evictor_runs_started;
    evictor_mu.Unlock();
    const bool sweep = size_bytes.load(std::memory_order_relaxed) > budget;
    if (sweep || woken) {
      last_busy = absl::Now();
      idle_trim_tried = false;
    } else if (!idle_trim_tried && options.idle_trim_after_ms > 0 &&
               absl::Now() - last_busy >= absl::Milliseconds(options.idle_trim_after_ms)) {
      idle_trim_tried = true;
      size_t freed = 0;
      if (ReturnFreedMemory(budget, slack, /*when_unknown=*/false, &freed)) {
        trims.fetch_add(1, std::memory_order_relaxed);
      }
    } else if (options.quiet_trims && pacer.QuietRunDue()) {
      size_t freed = 0;
      if (ReturnFreedMemory(budget, slack, /*when_unknown=*/false, &freed)) {
        trims.fetch_add(1, std::memory_order_relaxed);
        pacer.Trimmed(freed);
      }
    }
    if (sweep) {
      evictor_runs.fetch_add(1, std::memory_order_relaxed);
      const uint64_t before = bytes_evicted.load(std::memory_order_relaxed);
      Sweep(&evictor, budget, /*wait_if_running=*/true);
      pacer.AddEvicted(bytes_evicted.load(std::memory_order_relaxed) - before);
      // The allocator can gain more than the slack between two full-due trims, hence the
      // early one at a higher line.
      const TrimPacer::Due due = pacer.due();
      if (due != TrimPacer::Due::kNo) {
        const bool full = due == TrimPacer::Due::kFull;
        size_t freed = 0;
        if (ReturnFreedMemory(budget, full ? slack : slack + slack / 4, /*when_unknown=*/full,
                              &freed)) {
          trims.fetch_add(1, std::memory_order_relaxed);
          pacer.Trimmed(freed);
        } else {
          pacer.NotNeeded(due);
        }
      }
    }
    if (trim_requested.exchange(false, std::memory_order_relaxed)) {
      size_t freed = 0;
      if (ReturnFreedMemory(budget, slack, /*when_unknown=*/false, &freed)) {
        trims.fetch_add(1, std::memory_order_relaxed);
        pacer.Trimmed(freed);
      }
    }
    evictor_mu.Lock();
    evictor_runs_finished = run;
    pressure_cv.SignalAll();
  }
  evictor_mu.Unlock();
}

bool Cachetable::ReturnFreedMemoryNow() {
  size_t freed = 0;
  if (!ReturnFreedMemory(budget_, impl_->options.trim_slack_bytes / 2, /*when_unknown=*/false,
                         &freed)) {
    return false;
  }
  impl_->trims.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Cachetable::Impl::AfterUnpin(bool write) {
  const bool grew = std::exchange(pin_grew_cache, false);
  const size_t size = size_bytes.load(std::memory_order_relaxed);
  if (size <= budget) return;
  if (!options.evictor_thread) {
    // The synchronous fallback: this client evicts; a client that finds a sweep running
    // goes on instead of queueing behind it.
    Sweep(&evictor, budget, /*wait_if_running=*/false);
    return;
  }
  if (size > block_bytes && (write || grew)) {
    WaitForEvictor(write ? kMaxBackPressureWait : kMaxReadBackPressureWait);
  } else if (size > wake_bytes) {
    WakeEvictor();
  }
}

void Cachetable::Impl::BeforePin(const PairKey* read_of) {
  if (!options.evictor_thread) return;
  if (size_bytes.load(std::memory_order_relaxed) <= block_bytes) return;
  if (read_of != nullptr) {
    PairBucket& bucket = table.BucketOf(*read_of);
    bool cached;
    {
      AnnotatedMutexLock lock(&bucket.mu);
      cached = bucket.pairs.contains(*read_of);
    }
    if (cached) {
      WakeEvictor();
      return;
    }
  }
  WaitForEvictor(read_of != nullptr ? kMaxReadBackPressureWait : kMaxBackPressureWait);
}

void Cachetable::Impl::AfterOutsideCharge() {
  if (options.evictor_thread && size_bytes.load(std::memory_order_relaxed) > wake_bytes) {
    WakeEvictor();
  }
}

void Cachetable::Impl::WakeEvictor() {
  if (evictor_wake_hint.load(std::memory_order_relaxed)) return;  // already asked
  AnnotatedMutexLock lock(&evictor_mu);
  evictor_wake = true;
  evictor_wake_hint.store(true, std::memory_order_relaxed);
  evictor_cv.Signal();
}

void Cachetable::Impl::WaitForEvictor(absl::Duration max_wait) {
  if (AnyWriteBackFailing()) {
    // The evictor cannot free what it cannot write: waiting would only stall this client.
    // New writes are refused instead (Cachetable::WriteBackStatus).
    WakeEvictor();
    return;
  }
  client_waits.fetch_add(1, std::memory_order_relaxed);
  const absl::Time deadline = absl::Now() + max_wait;
  AnnotatedMutexLock lock(&evictor_mu);
  evictor_wake = true;
  evictor_wake_hint.store(true, std::memory_order_relaxed);
  evictor_cv.Signal();
  // The next run to begin (or a later one) must end; the one running now may have begun
  // before this client's memory arrived.
  const uint64_t ticket = evictor_runs_started;
  clients_waiting.fetch_add(1, std::memory_order_relaxed);
  while (!evictor_stopping && evictor_runs_finished <= ticket &&
         size_bytes.load(std::memory_order_relaxed) > release_bytes) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    // Short slices: the sweep's notification is a hint (it reads clients_waiting without
    // this mutex), so the size is re-read now and then.
    evictor_mu.WaitWithTimeout(&pressure_cv, std::min(left, absl::Milliseconds(10)));
  }
  clients_waiting.fetch_sub(1, std::memory_order_relaxed);
}

void Cachetable::Impl::NotifyWaitingClients() {
  AnnotatedMutexLock lock(&evictor_mu);
  pressure_cv.SignalAll();
}

}  // namespace fern
