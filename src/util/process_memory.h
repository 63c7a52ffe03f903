// What the operating system says about this process's memory.
#ifndef FERN_UTIL_PROCESS_MEMORY_H_
#define FERN_UTIL_PROCESS_MEMORY_H_

#include <cstddef>

namespace fern {

// The process's resident set size in bytes (Linux: /proc/self/statm), or 0 where it cannot
// be read. Thread-safe; costs an open, a read and a close.
size_t ResidentBytes();

// Hands the memory the allocator holds free back to the system (glibc: malloc_trim, which
// also releases free pages inside its heaps), with the emptied chunks size classes keep
// (chunk_memory::ReleaseEmptyChunks). Returns false where there is no malloc_trim.
// Thread-safe; takes each allocator arena's lock while it walks it, ~20-60 ms for a
// fragmented heap of ~300 MB, and the pages given back fault in again when reused.
bool ReturnFreeMemoryToSystem();

}  // namespace fern

#endif  // FERN_UTIL_PROCESS_MEMORY_H_
