// Progress display for the command-line tools: a single updating line on a terminal,
// nothing when stderr is not a terminal.
#ifndef FERN_TOOLS_TOOL_PROGRESS_H_
#define FERN_TOOLS_TOOL_PROGRESS_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <functional>

namespace fern {

inline std::function<void(uint64_t, uint64_t)> TerminalProgress(const char* verb) {
  if (!::isatty(STDERR_FILENO)) return nullptr;
  return [verb](uint64_t done, uint64_t total) {
    if (done % 16 == 0 || done == total) {
      std::fprintf(stderr, "\r%s %llu / %llu blocks", verb, static_cast<unsigned long long>(done),
                   static_cast<unsigned long long>(total));
      if (done >= total) std::fprintf(stderr, "\n");
    }
  };
}

inline void EndProgress() {
  if (::isatty(STDERR_FILENO)) std::fprintf(stderr, "\r\033[K");
}

}  // namespace fern

#endif  // FERN_TOOLS_TOOL_PROGRESS_H_
