#include "util/chunk_allocator.h"

#include <pthread.h>
#include <sys/mman.h>

#include <atomic>
#include <bitset>
#include <cassert>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace fern {
namespace chunk_memory {

namespace {

// Size classes: 256-byte steps up to 2 KiB (a basement's key index: four bytes per row),
// 1 KiB steps up to 4 KiB, 4 KiB steps up to 64 KiB (where basements are: a 16 KiB basement
// wastes 2 KiB on average), 32 KiB steps up to 256 KiB, then 64 KiB steps up to 1 MiB (an
// internal node's message buffers). Only the classes in use hold chunks, each with up to
// 2 MiB not yet handed out, so few classes matter more than a tight fit: with 1 KiB steps
// to 32 KiB the basements of fernbench's readrandom at 64 MiB spread over some twenty
// classes and held 36-42 chunks for 41 MiB of slots (peak RSS 126-131 MiB); with 4 KiB
// steps, 30-31 chunks (107-110 MiB).
struct ClassRange {
  size_t limit;  // largest size of the range
  size_t step;
};
constexpr ClassRange kRanges[] = {
    {size_t{2} << 10, size_t{256}},       {size_t{4} << 10, size_t{1} << 10},
    {size_t{64} << 10, size_t{4} << 10},  {size_t{256} << 10, size_t{32} << 10},
    {kMaxChunkedBytes, size_t{64} << 10},
};
constexpr size_t kClasses = (size_t{2} << 10) / size_t{256} +
                            ((size_t{4} << 10) - (size_t{2} << 10)) / (size_t{1} << 10) +
                            ((size_t{64} << 10) - (size_t{4} << 10)) / (size_t{4} << 10) +
                            ((size_t{256} << 10) - (size_t{64} << 10)) / (size_t{32} << 10) +
                            (kMaxChunkedBytes - (size_t{256} << 10)) / (size_t{64} << 10);

// REQUIRES: bytes <= kMaxChunkedBytes.
size_t ClassIndex(size_t bytes) {
  size_t first = 0;  // index of the range's first class
  size_t floor = 0;  // the size below the range
  for (const ClassRange& range : kRanges) {
    if (bytes <= range.limit) return first + (bytes - floor + range.step - 1) / range.step - 1;
    first += (range.limit - floor) / range.step;
    floor = range.limit;
  }
  assert(false);
  return kClasses - 1;
}

size_t ClassBytes(size_t index) {
  size_t floor = 0;
  for (const ClassRange& range : kRanges) {
    const size_t classes = (range.limit - floor) / range.step;
    if (index < classes) return floor + (index + 1) * range.step;
    index -= classes;
    floor = range.limit;
  }
  assert(false);
  return kMaxChunkedBytes;
}

bool Chunked(size_t bytes) { return bytes >= kMinChunkedBytes && bytes <= kMaxChunkedBytes; }

bool DetectEnabled() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return false;  // the sanitizer must see every block as an allocation of its own
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return false;
#endif
#endif
  return true;
}

// Slots of at least this size have the pages after their first given back to the system
// while free (PurgeFreeSlots): a chunk of them holds at most kMaxPurgedSlots.
constexpr size_t kMinPurgedSlotBytes = size_t{8} << 10;
constexpr size_t kMaxPurgedSlots = kChunkBytes / kMinPurgedSlotBytes;
constexpr size_t kPageBytes = 4096;

struct Chunk {
  char* base = nullptr;
  size_t class_index = 0;
  uint32_t slots = 0;
  uint32_t bumped = 0;  // slots [0, bumped) have been handed out at least once
  uint32_t live = 0;
  void* free_list = nullptr;        // freed slots, each holding the next one's address
  size_t partial_index = SIZE_MAX;  // position in its class's list of chunks with room
  // Free slots whose pages after the first went back to the system (classes of at least
  // kMinPurgedSlotBytes only); a slot handed out again leaves the set.
  std::bitset<kMaxPurgedSlots> purged;
};

// Chunks live in one range of address space reserved up front (no memory until a chunk is
// committed), so that telling a chunk block from an operator-new one is a range check.
constexpr size_t kReservedBytes = size_t{64} << 30;
constexpr size_t kMaxChunks = kReservedBytes / kChunkBytes;

// Chunks kept mapped and faulted in, not yet given to a size class. A background thread
// (started with the first chunk) keeps this many ready, so that the faults of fresh memory
// (on a virtual machine ~3.5 ms per 2 MiB when the host must back it again) are taken on
// another core rather than by the reader that needs the chunk. Emptied chunks refill the
// stock before any is given back. At most this many chunks (8 MiB) are held beyond use,
// besides emptied chunks for as long as the background thread takes to give them back.
constexpr size_t kReadyChunks = 4;

// A size class needing a chunk gets none while the chunks in use hold more than this in
// free slots (and in the unused tails of their slots): its block comes from operator new.
// Free slots serve only their own class, so without a bound they piled up wherever the mix
// of sizes moved on; reads of 10,000,000 rows through a full 1 GiB cache left 259 MiB
// free in 506 chunks and the process at 1,453 MiB resident. Bounded, the chunks in use
// stay within what their classes hold plus this; malloc's free memory goes back to the
// system with the evictor's trims. Each class in use keeps one chunk partly free as it
// fills, so this is several chunks' worth; past it, a class's emptied last chunk is given
// back too.
constexpr size_t kMaxFreeBytesInChunks = size_t{32} << 20;

// The evictor's trims give back the pages of free slots (PurgeFreeSlots) while the chunks in
// use hold more than this free: slots freed after their chunks filled (a cache churning
// through data larger than itself evicts basements its cold start put in chunks) are
// otherwise resident until their chunk empties. Reads of 10,000,000 rows through a 1 GiB
// cache ended with 49 MB free in chunks, the process 39 MiB over cache + 64 MiB.
constexpr size_t kPurgeAboveFreeBytes = size_t{8} << 20;

// The allocator's lock. Not an absl::Mutex: the fork handlers must be able to release it in
// a child, and absl keeps per-thread records of held locks, while unlocking one that lists
// the parent's threads as waiters spins forever.
class ABSL_LOCKABLE ChunkMutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // Releases the lock while waiting on `cv`, holds it again on return; spurious wake-ups
  // happen.
  void Wait(std::condition_variable* cv) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    std::unique_lock<std::mutex> lock(mu_, std::adopt_lock);
    cv->wait(lock);
    lock.release();
  }
  // In a forked child only, by the thread that held the lock across fork() (the child's
  // only thread). A plain std::mutex neither checks its owner nor keeps a list of waiters:
  // the parent's threads that waited for it cost at most a wake-up call that finds no one.
  // Unlocking rather than constructing a new mutex over the held one keeps a thread checker
  // (TSan) from seeing the child's next lock as a second lock of a held mutex.
  void UnlockInChild() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu_.unlock(); }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE ChunkLock {
 public:
  explicit ChunkLock(ChunkMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~ChunkLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  ChunkLock(const ChunkLock&) = delete;
  ChunkLock& operator=(const ChunkLock&) = delete;

 private:
  ChunkMutex* const mu_;
};

struct State {
  ChunkMutex mu;
  std::vector<Chunk*> partial[kClasses] ABSL_GUARDED_BY(mu);
  std::vector<std::unique_ptr<Chunk>> chunks ABSL_GUARDED_BY(mu);  // by chunk number
  std::vector<size_t> released ABSL_GUARDED_BY(mu);                // numbers of chunks given back
  std::vector<size_t> ready ABSL_GUARDED_BY(mu);  // numbers of mapped, faulted-in spare chunks
  // Numbers of emptied chunks beyond the stock, still mapped, for the preparer to give back.
  std::vector<size_t> releasing ABSL_GUARDED_BY(mu);
  size_t released_in_all ABSL_GUARDED_BY(mu) = 0;
  size_t preparing ABSL_GUARDED_BY(mu) = 0;  // chunks the preparer is faulting in
  size_t prepared ABSL_GUARDED_BY(mu) = 0;   // chunks it has faulted in, in all
  bool preparer_running ABSL_GUARDED_BY(mu) = false;
  // Signalled when a chunk left the ready stock or joined `releasing`. Replaced in a forked
  // child (see AfterForkInChild).
  std::condition_variable* preparer_wake ABSL_GUARDED_BY(mu) = new std::condition_variable;
  size_t committed ABSL_GUARDED_BY(mu) = 0;
  size_t slot_bytes ABSL_GUARDED_BY(mu) = 0;
  // Blocks of chunked sizes given to operator new because the chunks held too much free.
  size_t declined_blocks ABSL_GUARDED_BY(mu) = 0;
  size_t purged_bytes ABSL_GUARDED_BY(mu) = 0;  // given back from free slots, in all
  bool reserve_failed ABSL_GUARDED_BY(mu) = false;
};

std::atomic<uintptr_t> reserved_base{0};  // 0 until the range is reserved

// Never destroyed: blocks may be freed by static destructors after main returns.
State& GlobalState() {
  static State* state = new State;
  return *state;
}

thread_local int scope_depth = 0;

bool InReserve(const void* p) {
  const uintptr_t base = reserved_base.load(std::memory_order_acquire);
  const auto at = reinterpret_cast<uintptr_t>(p);
  return base != 0 && at >= base && at < base + kReservedBytes;
}

// Reserves the range on first use; false if the system refuses it (every block then comes
// from operator new).
bool Reserve(State& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  if (reserved_base.load(std::memory_order_relaxed) != 0) return true;
  if (state.reserve_failed) return false;
  void* raw = ::mmap(nullptr, kReservedBytes + kChunkBytes, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) {
    state.reserve_failed = true;
    return false;
  }
  // A block's chunk is its offset / kChunkBytes.
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kChunkBytes - 1) & ~(kChunkBytes - 1);
  if (aligned > start) ::munmap(raw, aligned - start);
  const uintptr_t end = start + kReservedBytes + kChunkBytes;
  if (end > aligned + kReservedBytes) {
    ::munmap(reinterpret_cast<void*>(aligned + kReservedBytes), end - aligned - kReservedBytes);
  }
  reserved_base.store(aligned, std::memory_order_release);
  return true;
}

char* ChunkBase(size_t number) {
  return reinterpret_cast<char*>(reserved_base.load(std::memory_order_relaxed) +
                                 number * kChunkBytes);
}

// The number of the chunk holding `p`. REQUIRES: InReserve(p).
size_t ChunkNumber(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) - reserved_base.load(std::memory_order_relaxed)) /
         kChunkBytes;
}

// A number for a chunk to map: a given-back one first. False when the range is full.
bool TakeChunkNumber(State& state, size_t* number) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  if (!state.released.empty()) {
    *number = state.released.back();
    state.released.pop_back();
    return true;
  }
  if (state.chunks.size() >= kMaxChunks) return false;
  *number = state.chunks.size();
  state.chunks.emplace_back();
  return true;
}

// Makes chunk `number` usable memory; false (leaving it unmapped) if the system refuses.
bool MapChunk(size_t number) {
  char* base = ChunkBase(number);
  if (::mprotect(base, kChunkBytes, PROT_READ | PROT_WRITE) != 0) return false;
  // 4 KiB pages, even where transparent huge pages are "always": on the development VM a
  // fresh huge page took ~4.7 ms to fault in when the host had to back it again (441 MB/s,
  // against 2.4 GB/s in 4 KiB pages), and a cold process at 1 GiB reading right after other
  // processes freed gigabytes ran seekrandom at 106-108k seeks/s with huge pages against
  // 164-167k without (fernbench --reuse, 3 rounds). Measured again on a later host where
  // 4 KiB faults cost ~11 us: Fern's reads alone, one process after another, ran seekrandom
  // at 161-179k with huge pages against 113-117k without, but with RocksDB's and LMDB's
  // processes between (fernbench's order) at 83k and 112k against 109k and 118k, and
  // readrandom 4% slower. Advice only: the chunk works either way.
  ::madvise(base, kChunkBytes, MADV_NOHUGEPAGE);
  return true;
}

// Faults the chunk's memory in now. MADV_POPULATE_WRITE (Linux 5.14) does it in one call;
// elsewhere a write to each page does the same.
void FaultIn(size_t number) {
  char* base = ChunkBase(number);
#ifdef MADV_POPULATE_WRITE
  if (::madvise(base, kChunkBytes, MADV_POPULATE_WRITE) == 0) return;
#endif
  for (size_t offset = 0; offset < kChunkBytes; offset += 4096) {
    reinterpret_cast<volatile char*>(base)[offset] = 0;
  }
}

// Gives chunk `number`'s memory back to the system. The caller owns the number: it is in
// no list, and goes to `released` afterwards.
void UnmapChunk(size_t number) {
  char* base = ChunkBase(number);
  ::madvise(base, kChunkBytes, MADV_DONTNEED);
  ::mprotect(base, kChunkBytes, PROT_NONE);
}

void PreparerLoop(State* state);

// fork() copies only the calling thread: the lock is held across it so that the child's
// state is consistent. The child releases the lock and gets a fresh condition variable (its
// copy may list the parent's preparer as a waiter, a thread the child lacks) and starts a preparer
// of its own when it needs one. Chunks the parent's preparer was faulting in at that moment
// are lost to the child (at most kReadyChunks numbers of the reserved range).
void BeforeFork() ABSL_NO_THREAD_SAFETY_ANALYSIS { GlobalState().mu.Lock(); }
void AfterForkInParent() ABSL_NO_THREAD_SAFETY_ANALYSIS { GlobalState().mu.Unlock(); }
// The condition variable a forked child replaced: left as it is (destroying it could wait
// for the parent's waiter), but kept reachable so that leak checkers do not report it
// (volatile: a store nothing reads would otherwise be dropped).
std::condition_variable* volatile abandoned_in_fork = nullptr;

void AfterForkInChild() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  State& state = GlobalState();
  state.preparer_running = false;
  state.preparing = 0;
  abandoned_in_fork = state.preparer_wake;
  state.preparer_wake = new std::condition_variable;
  state.mu.UnlockInChild();
}

// Registered while the program loads, before any thread can hold the lock: registering at
// the first chunk (under the lock, while another thread may fork) let a child copy the lock
// held with no handler run, and hang at its first allocation.
const bool fork_handlers_registered =
    ::pthread_atfork(BeforeFork, AfterForkInParent, AfterForkInChild) == 0;

// Wakes the preparer, starting it the first time. False if there is none to be had.
bool WakePreparer(State& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  if (state.preparer_running) {
    state.preparer_wake->notify_one();
    return true;
  }
  if (!fork_handlers_registered) return false;  // without them a fork could copy a held lock
  try {
    std::thread(PreparerLoop, &state).detach();
    state.preparer_running = true;
    return true;
  } catch (const std::system_error&) {
    return false;  // chunks are then faulted in by whoever uses them
  }
}

// An emptied chunk (mapped, in no list): into the ready stock if it has room, else given
// back, by the preparer or, without one, here.
void Retire(State& state, size_t number) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  if (state.ready.size() < kReadyChunks) {
    state.ready.push_back(number);
    return;
  }
  state.releasing.push_back(number);
  if (WakePreparer(state)) return;
  state.releasing.pop_back();
  UnmapChunk(number);
  state.released.push_back(number);
  ++state.released_in_all;
}

// The preparer: gives back emptied chunks beyond the stock and tops the stock up to
// kReadyChunks, unmapping, mapping and faulting in outside the lock; sleeps when there is
// neither to do. It never exits; it holds no memory beyond the stock.
void PreparerLoop(State* state) {
  ChunkLock lock(&state->mu);
  for (;;) {
    // A chunk waiting to be given back refills the stock for free.
    while (!state->releasing.empty() && state->ready.size() < kReadyChunks) {
      state->ready.push_back(state->releasing.back());
      state->releasing.pop_back();
    }
    if (!state->releasing.empty()) {
      const size_t number = state->releasing.back();
      state->releasing.pop_back();
      state->mu.Unlock();
      UnmapChunk(number);
      state->mu.Lock();
      state->released.push_back(number);
      ++state->released_in_all;
      continue;
    }
    if (state->ready.size() + state->preparing >= kReadyChunks) {
      state->mu.Wait(state->preparer_wake);
      continue;
    }
    size_t number;
    if (!TakeChunkNumber(*state, &number)) {
      state->mu.Wait(state->preparer_wake);  // the range is full: wait for a change
      continue;
    }
    ++state->preparing;
    state->mu.Unlock();
    const bool mapped = MapChunk(number);
    if (mapped) FaultIn(number);
    state->mu.Lock();
    --state->preparing;
    if (mapped) {
      ++state->prepared;
      // Frees may have refilled the stock meanwhile: then this one goes back, keeping the
      // bound.
      Retire(*state, number);
    } else {
      state->released.push_back(number);
      state->mu.Wait(state->preparer_wake);  // mapping failed: try again on the next need
    }
  }
}

// A committed chunk for `class_index`, or null if the reserve is full or unavailable.
Chunk* CommitChunk(State& state, size_t class_index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  if (!Reserve(state)) return nullptr;
  size_t number;
  if (!state.ready.empty()) {
    number = state.ready.back();
    state.ready.pop_back();
  } else if (!state.releasing.empty()) {  // still mapped and faulted in
    number = state.releasing.back();
    state.releasing.pop_back();
  } else {
    if (!TakeChunkNumber(state, &number)) return nullptr;
    if (!MapChunk(number)) {
      state.released.push_back(number);
      return nullptr;
    }
  }
  WakePreparer(state);
  auto chunk = std::make_unique<Chunk>();
  chunk->base = ChunkBase(number);
  chunk->class_index = class_index;
  chunk->slots = static_cast<uint32_t>(kChunkBytes / ClassBytes(class_index));
  Chunk* raw = chunk.get();
  state.chunks[number] = std::move(chunk);
  ++state.committed;
  return raw;
}

// What the chunks in use hold beyond their live slots.
size_t FreeBytesInChunks(const State& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  return state.committed * kChunkBytes - state.slot_bytes;
}

void AddPartial(State& state, Chunk* chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  std::vector<Chunk*>& list = state.partial[chunk->class_index];
  chunk->partial_index = list.size();
  list.push_back(chunk);
}

void RemovePartial(State& state, Chunk* chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  std::vector<Chunk*>& list = state.partial[chunk->class_index];
  assert(chunk->partial_index < list.size() && list[chunk->partial_index] == chunk);
  Chunk* last = list.back();
  list[chunk->partial_index] = last;
  last->partial_index = chunk->partial_index;
  list.pop_back();
  chunk->partial_index = SIZE_MAX;
}

// An emptied chunk leaves its class: into the ready stock, or to be given back.
void RetireEmpty(State& state, Chunk* chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  assert(chunk->live == 0);
  const size_t number = ChunkNumber(chunk->base);
  RemovePartial(state, chunk);
  state.chunks[number].reset();
  --state.committed;
  Retire(state, number);
}

}  // namespace

bool Enabled() {
  static const bool enabled = DetectEnabled();
  return enabled;
}

Scope::Scope(bool active) : active_(active) {
  if (active_) ++scope_depth;
}
Scope::~Scope() {
  if (active_) --scope_depth;
}

size_t RoundedSize(size_t bytes) {
  return Enabled() && Chunked(bytes) ? ClassBytes(ClassIndex(bytes)) : bytes;
}

size_t BlockBytes(const void* p, size_t bytes) {
  return InReserve(p) ? ClassBytes(ClassIndex(bytes)) : bytes;
}

void* Allocate(size_t bytes) {
  if (scope_depth == 0 || !Enabled() || !Chunked(bytes)) return ::operator new(bytes);
  const size_t class_index = ClassIndex(bytes);
  const size_t slot_bytes = ClassBytes(class_index);
  State& state = GlobalState();
  {
    ChunkLock lock(&state.mu);
    std::vector<Chunk*>& list = state.partial[class_index];
    Chunk* chunk = list.empty() ? nullptr : list.back();
    if (chunk == nullptr) {
      if (FreeBytesInChunks(state) > kMaxFreeBytesInChunks) {
        ++state.declined_blocks;
      } else {
        chunk = CommitChunk(state, class_index);
        if (chunk != nullptr) AddPartial(state, chunk);
      }
    }
    if (chunk != nullptr) {
      void* p;
      if (chunk->free_list != nullptr) {
        p = chunk->free_list;
        std::memcpy(&chunk->free_list, p, sizeof(void*));
        if (slot_bytes >= kMinPurgedSlotBytes) {
          chunk->purged.reset((static_cast<char*>(p) - chunk->base) / slot_bytes);
        }
      } else {
        p = chunk->base + size_t{chunk->bumped} * slot_bytes;
        ++chunk->bumped;
      }
      ++chunk->live;
      if (chunk->live == chunk->slots) RemovePartial(state, chunk);
      state.slot_bytes += slot_bytes;
      return p;
    }
  }
  return ::operator new(bytes);  // no chunk to be had
}

void Deallocate(void* p, size_t bytes) {
  if (p == nullptr) return;
  if (!InReserve(p)) {
    ::operator delete(p);
    return;
  }
  State& state = GlobalState();
  ChunkLock lock(&state.mu);
  Chunk* chunk = state.chunks[ChunkNumber(p)].get();
  assert(chunk != nullptr && chunk->class_index == ClassIndex(bytes));
  static_cast<void>(bytes);
  std::memcpy(p, &chunk->free_list, sizeof(void*));
  chunk->free_list = p;
  const bool was_full = chunk->live == chunk->slots;
  --chunk->live;
  state.slot_bytes -= ClassBytes(chunk->class_index);
  if (was_full) AddPartial(state, chunk);
  // An empty chunk refills the ready stock, or goes back to the system, unless its class
  // would be left without room while the chunks hold little free.
  if (chunk->live == 0 && (state.partial[chunk->class_index].size() > 1 ||
                           FreeBytesInChunks(state) > kMaxFreeBytesInChunks)) {
    RetireEmpty(state, chunk);
  }
}

namespace {

// Gives back the pages after the first of each free slot of at least kMinPurgedSlotBytes
// not given back yet (the first holds the free list's link). Returns the bytes given back.
size_t PurgeFreeSlots(State& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  size_t purged = 0;
  for (size_t class_index = 0; class_index < kClasses; ++class_index) {
    const size_t slot_bytes = ClassBytes(class_index);
    if (slot_bytes < kMinPurgedSlotBytes) continue;
    for (Chunk* chunk : state.partial[class_index]) {
      for (void* slot = chunk->free_list; slot != nullptr;) {
        char* const at = static_cast<char*>(slot);
        const size_t index = (at - chunk->base) / slot_bytes;
        std::memcpy(&slot, at, sizeof(void*));  // the next free slot
        if (chunk->purged.test(index)) continue;
        // Slots start at multiples of a 4 KiB multiple from a 2 MiB-aligned base.
        if (::madvise(at + kPageBytes, slot_bytes - kPageBytes, MADV_DONTNEED) != 0) continue;
        chunk->purged.set(index);
        purged += slot_bytes - kPageBytes;
      }
    }
  }
  return purged;
}

}  // namespace

void ReleaseEmptyChunks() {
  State& state = GlobalState();
  ChunkLock lock(&state.mu);
  for (std::vector<Chunk*>& list : state.partial) {
    for (size_t i = list.size(); i-- > 0;) {
      if (list[i]->live == 0) RetireEmpty(state, list[i]);
    }
  }
  if (FreeBytesInChunks(state) > kPurgeAboveFreeBytes) state.purged_bytes += PurgeFreeSlots(state);
}

Stats GetStats() {
  State& state = GlobalState();
  ChunkLock lock(&state.mu);
  Stats stats;
  stats.chunks = state.committed;
  stats.slot_bytes = state.slot_bytes;
  stats.ready_chunks = state.ready.size();
  stats.prepared_chunks = state.prepared;
  stats.releasing_chunks = state.releasing.size();
  stats.released_chunks = state.released_in_all;
  stats.declined_blocks = state.declined_blocks;
  stats.purged_bytes = state.purged_bytes;
  return stats;
}

}  // namespace chunk_memory
}  // namespace fern
