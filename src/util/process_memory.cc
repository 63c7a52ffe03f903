#include "util/process_memory.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "util/chunk_allocator.h"

namespace fern {

size_t ResidentBytes() {
#if defined(__linux__)
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[128];
  const ssize_t got = ::read(fd, text, sizeof(text));
  ::close(fd);
  if (got <= 0) return 0;
  // "size resident shared text lib data dt", in pages.
  const char* end = text + got;
  const char* p = text;
  while (p < end && *p != ' ') ++p;
  if (p == end) return 0;
  ++p;
  size_t pages = 0;
  if (std::from_chars(p, end, pages).ec != std::errc()) return 0;
  const long page = ::sysconf(_SC_PAGESIZE);
  return page > 0 ? pages * static_cast<size_t>(page) : 0;
#else
  return 0;
#endif
}

bool ReturnFreeMemoryToSystem() {
  chunk_memory::ReleaseEmptyChunks();
#if defined(__GLIBC__)
  ::malloc_trim(0);
  return true;
#else
  return false;
#endif
}

}  // namespace fern
