// What the operating system says about this process's memory.
#ifndef FERN_UTIL_PROCESS_MEMORY_H_
#define FERN_UTIL_PROCESS_MEMORY_H_

#include <cstddef>

namespace fern {

// The process's resident set size in bytes (Linux: /proc/self/statm), or 0 where it cannot
// be read. Thread-safe; costs an open, a read and a close.
size_t ResidentBytes();

}  // namespace fern

#endif  // FERN_UTIL_PROCESS_MEMORY_H_
