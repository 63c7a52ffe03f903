// Big buffers: fresh memory for records and value blocks of big values.
//
// A first write to a fresh 4 KiB page costs a page fault, ~11 us on the virtual machines Fern
// is measured on: ~90 ms for 32 MiB. A put or get of a value of several MiB fills several
// fresh buffers of its size (the log record, its snappy copy, the value block's frame, the
// decoded value), so faults were most of its time (a 32 MiB put took ~0.85 s). Buffers of
// kBigBufferBytes or more ask for transparent huge pages, which the kernel faults in 2 MiB at
// a time (2-3 ms for 32 MiB here, 36 ms when the kernel first had to compact memory). This
// is advice only: where huge pages are off, or the kernel has none to give, pages come 4 KiB
// at a time as before. Small buffers never ask: on one earlier host a fresh huge page
// faulted in slower than 4 KiB pages did (util/chunk_allocator.h), which costs little
// against a big value's other work but would have slowed every point read. The advice
// stays with the address range: where malloc served a big buffer from its heap (glibc does
// for sizes up to 32 MiB once it has freed a mapped chunk of that size), small blocks later
// placed there may get huge pages too, as all memory does where huge pages are "always".
#ifndef FERN_UTIL_BIG_BUFFER_H_
#define FERN_UTIL_BIG_BUFFER_H_

#include <algorithm>
#include <cstddef>
#include <string>

namespace fern {

inline constexpr size_t kBigBufferBytes = size_t{4} << 20;

// Advises huge pages for the 2 MiB-aligned part of [p, p + n), for the pages not touched yet.
// Does nothing when n is below kBigBufferBytes.
void AdviseHugePages(void* p, size_t n);

// Makes the capacity of `buffer` (a std::string or a ChunkString) at least `bytes`, keeping
// its contents, and advises huge pages for the room past its size when that room is big.
template <typename String>
void ReserveBuffer(String* buffer, size_t bytes) {
  if (bytes <= buffer->capacity()) return;
  // At least doubling, as appends grow (an exact reserve per append would be quadratic).
  buffer->reserve(std::max(bytes, 2 * buffer->capacity()));
  AdviseHugePages(buffer->data() + buffer->size(), buffer->capacity() - buffer->size());
}

}  // namespace fern

#endif  // FERN_UTIL_BIG_BUFFER_H_
