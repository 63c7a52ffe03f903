#include "util/chunk_allocator.h"

#include <sys/mman.h>

#include <atomic>
#include <cassert>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "util/mutex.h"

namespace fern {
namespace chunk_memory {

namespace {

// Size classes: 1 KiB steps up to 32 KiB (where basements are: a 16 KiB basement wastes
// half a KiB on average), 4 KiB steps up to 64 KiB, then 32 KiB steps up to 256 KiB. Only
// the classes in use hold chunks, each with up to 2 MiB not yet handed out.
struct ClassRange {
  size_t limit;  // largest size of the range
  size_t step;
};
constexpr ClassRange kRanges[] = {
    {size_t{32} << 10, size_t{1} << 10},
    {size_t{64} << 10, size_t{4} << 10},
    {kMaxChunkedBytes, size_t{32} << 10},
};
constexpr size_t kClasses = (size_t{32} << 10) / (size_t{1} << 10) +
                            (size_t{32} << 10) / (size_t{4} << 10) +
                            (kMaxChunkedBytes - (size_t{64} << 10)) / (size_t{32} << 10);

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
  // "always [madvise] never": chunks pay only where a huge page may back them.
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(in, line)) return false;
  return line.find("[always]") != std::string::npos || line.find("[madvise]") != std::string::npos;
}

struct Chunk {
  char* base = nullptr;
  size_t class_index = 0;
  uint32_t slots = 0;
  uint32_t bumped = 0;  // slots [0, bumped) have been handed out at least once
  uint32_t live = 0;
  void* free_list = nullptr;        // freed slots, each holding the next one's address
  size_t partial_index = SIZE_MAX;  // position in its class's list of chunks with room
};

// Chunks live in one range of address space reserved up front (no memory until a chunk is
// committed), so that telling a chunk block from an operator-new one is a range check.
constexpr size_t kReservedBytes = size_t{64} << 30;
constexpr size_t kMaxChunks = kReservedBytes / kChunkBytes;

struct State {
  Mutex mu;
  std::vector<Chunk*> partial[kClasses] ABSL_GUARDED_BY(mu);
  std::vector<std::unique_ptr<Chunk>> chunks ABSL_GUARDED_BY(mu);  // by chunk number
  std::vector<size_t> released ABSL_GUARDED_BY(mu);                // numbers of chunks given back
  size_t committed ABSL_GUARDED_BY(mu) = 0;
  size_t slot_bytes ABSL_GUARDED_BY(mu) = 0;
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
  // A huge page needs 2 MiB alignment, and a block's chunk is its offset / kChunkBytes.
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

// A committed chunk for `class_index`, or null if the reserve is full or unavailable.
Chunk* CommitChunk(State& state, size_t class_index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  if (!Reserve(state)) return nullptr;
  size_t number;
  if (!state.released.empty()) {
    number = state.released.back();
    state.released.pop_back();
  } else if (state.chunks.size() < kMaxChunks) {
    number = state.chunks.size();
    state.chunks.emplace_back();
  } else {
    return nullptr;
  }
  char* base =
      reinterpret_cast<char*>(reserved_base.load(std::memory_order_relaxed) + number * kChunkBytes);
  if (::mprotect(base, kChunkBytes, PROT_READ | PROT_WRITE) != 0) {
    state.released.push_back(number);
    return nullptr;
  }
  // Advice only: without it the chunk still works, with 4 KiB pages.
  ::madvise(base, kChunkBytes, MADV_HUGEPAGE);
  auto chunk = std::make_unique<Chunk>();
  chunk->base = base;
  chunk->class_index = class_index;
  chunk->slots = static_cast<uint32_t>(kChunkBytes / ClassBytes(class_index));
  Chunk* raw = chunk.get();
  state.chunks[number] = std::move(chunk);
  ++state.committed;
  return raw;
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
    MutexLock lock(&state.mu);
    std::vector<Chunk*>& list = state.partial[class_index];
    Chunk* chunk = list.empty() ? nullptr : list.back();
    if (chunk == nullptr) {
      chunk = CommitChunk(state, class_index);
      if (chunk != nullptr) AddPartial(state, chunk);
    }
    if (chunk != nullptr) {
      void* p;
      if (chunk->free_list != nullptr) {
        p = chunk->free_list;
        std::memcpy(&chunk->free_list, p, sizeof(void*));
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
  MutexLock lock(&state.mu);
  const size_t number =
      (reinterpret_cast<uintptr_t>(p) - reserved_base.load(std::memory_order_relaxed)) /
      kChunkBytes;
  Chunk* chunk = state.chunks[number].get();
  assert(chunk != nullptr && chunk->class_index == ClassIndex(bytes));
  static_cast<void>(bytes);
  std::memcpy(p, &chunk->free_list, sizeof(void*));
  chunk->free_list = p;
  const bool was_full = chunk->live == chunk->slots;
  --chunk->live;
  state.slot_bytes -= ClassBytes(chunk->class_index);
  if (was_full) AddPartial(state, chunk);
  // An empty chunk goes back to the system unless its class would be left without room.
  if (chunk->live == 0 && state.partial[chunk->class_index].size() > 1) {
    RemovePartial(state, chunk);
    ::madvise(chunk->base, kChunkBytes, MADV_DONTNEED);
    ::mprotect(chunk->base, kChunkBytes, PROT_NONE);
    state.chunks[number].reset();
    state.released.push_back(number);
    --state.committed;
  }
}

Stats GetStats() {
  State& state = GlobalState();
  MutexLock lock(&state.mu);
  Stats stats;
  stats.chunks = state.committed;
  stats.slot_bytes = state.slot_bytes;
  return stats;
}

}  // namespace chunk_memory
}  // namespace fern
