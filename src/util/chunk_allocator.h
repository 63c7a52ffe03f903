// Memory for the byte buffers Fern keeps many of (basement arenas and key indexes, message
// buffers of internal nodes), carved from 2 MiB chunks that a background thread faults in
// ahead of need.
//
// Why: a basement read into fresh memory touched four or five new 4 KiB pages, and on a
// virtual machine each first touch is an expensive fault (~10 us on one host, and several
// more while the host backs memory the guest had given back after a few idle seconds). With
// the data in memory but not yet loaded (a fresh process, a cache of 1 GiB), those faults
// were a third of seekrandom and readseq. Chunks first asked for transparent huge pages (one
// fault per 2 MiB: seekrandom 55k to 115k seeks/s on that host), but on a later host a
// fresh huge page faulted in at a sixth of the speed of 4 KiB pages, and seekrandom ran 35%
// slower with them; chunks now stay in 4 KiB pages and rely on the faulting ahead.
//
// Blocks of kMinChunkedBytes..kMaxChunkedBytes allocated inside a Scope are rounded up to
// a size class (256-byte steps to 2 KiB, 1 KiB steps to 4 KiB, 4 KiB steps to 64 KiB,
// 32 KiB steps to 256 KiB, 64 KiB steps to 1 MiB); each
// class fills chunks of its own, slot by slot, inside one range of address space reserved
// up front (64 GiB, no memory until used). A freed slot is reused by the next block of its
// class; a chunk whose slots are all free is given back to the system unless it is its
// class's last chunk with free slots. Other blocks, and every block under a sanitizer (which
// must see each block) or once the range is full, come from operator new; so does a block
// whose class needs a new chunk while the chunks in use hold more than 32 MiB in free slots
// (free slots serve only their class: unbounded, they piled up as the mix of sizes moved).
//
// A background thread, started with the first chunk, keeps a few chunks mapped and faulted
// in ahead of need (see kReadyChunks), so that a reader does not wait for fresh memory;
// chunks emptied by frees refill that stock before any is given back. Giving a chunk back
// (~0.2 ms for 2 MiB on the development VM) is that thread's job too, so that the thread
// freeing a block neither waits for it nor holds the allocator's lock through it: closing an
// Env that had loaded 330 MiB spent ~35 ms there. A chunk awaiting its give-back is still
// mapped and is taken again, as a ready one, by the next chunk needed.
//
// Thread-safe. Allocation failure throws std::bad_alloc, as operator new does.
#ifndef FERN_UTIL_CHUNK_ALLOCATOR_H_
#define FERN_UTIL_CHUNK_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace fern {
namespace chunk_memory {

constexpr size_t kChunkBytes = size_t{2} << 20;
constexpr size_t kMinChunkedBytes = 256;
constexpr size_t kMaxChunkedBytes = size_t{1} << 20;

// Allocate serves chunked sizes from chunks only on a thread inside a Scope (the code that
// reads basements from disk): memory that writes grow and shrink stays with malloc, whose
// reuse of odd sizes beats size classes there (fillrandom at 64 MiB peaked at 182 MiB RSS
// with every arena in chunks, against 123 MiB).
class Scope {
 public:
  // An inactive scope changes nothing (for callers that choose at run time).
  explicit Scope(bool active = true);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  const bool active_;
};

void* Allocate(size_t bytes);
// REQUIRES: p came from Allocate(bytes) with this same `bytes` (from any thread, in a
// Scope or not).
void Deallocate(void* p, size_t bytes);
// The bytes Allocate(bytes) sets aside inside a Scope (its size class, or `bytes`).
size_t RoundedSize(size_t bytes);
// The bytes really set aside for p, a block of `bytes` from Allocate.
size_t BlockBytes(const void* p, size_t bytes);
// Whether blocks of chunked sizes can come from chunks in this process.
bool Enabled();

struct Stats {
  size_t chunks = 0;            // chunks in use by size classes
  size_t slot_bytes = 0;        // bytes of slots handed out and not freed
  size_t ready_chunks = 0;      // mapped and faulted in, for the next chunks needed
  size_t prepared_chunks = 0;   // chunks the background thread has faulted in, in all
  size_t releasing_chunks = 0;  // emptied, still mapped, waiting for the background thread
  size_t released_chunks = 0;   // chunks given back to the system, in all
  size_t declined_blocks = 0;   // blocks sent to operator new: the chunks held enough free
  size_t purged_bytes = 0;      // pages of free slots given back to the system, in all
};
Stats GetStats();
// Gives back the emptied chunks that size classes keep for their next blocks (into the
// ready stock, the rest to the system by the background thread) and, while the chunks in
// use hold more than 8 MiB free, the pages of free slots of 8 KiB and more but each one's
// first (the next block in such a slot faults them in again). The evictor's trims call it
// (ReturnFreeMemoryToSystem).
void ReleaseEmptyChunks();

}  // namespace chunk_memory

// A standard allocator over chunk_memory, for containers of bytes.
template <typename T>
struct ChunkAllocator {
  using value_type = T;
  ChunkAllocator() noexcept = default;
  template <typename U>
  ChunkAllocator(const ChunkAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  T* allocate(size_t n) { return static_cast<T*>(chunk_memory::Allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { chunk_memory::Deallocate(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const ChunkAllocator<U>&) const noexcept {
    return true;
  }
};

// A byte string in chunk memory.
using ChunkString = std::basic_string<char, std::char_traits<char>, ChunkAllocator<char>>;

}  // namespace fern

#endif  // FERN_UTIL_CHUNK_ALLOCATOR_H_
