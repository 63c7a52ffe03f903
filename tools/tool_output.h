// How the command-line tools end: a tool whose output could not be written (a full disk,
// an output file on a failed device) must not exit as if it had said everything, or a
// script redirecting it would take a cut-short dump or report for a whole one.
#ifndef FERN_TOOLS_TOOL_OUTPUT_H_
#define FERN_TOOLS_TOOL_OUTPUT_H_

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace fern {

// Flushes stdout and returns `code`; if stdout could not be written, now or earlier, says
// so on stderr and returns `failure_code` instead.
inline int FinishOutput(const char* tool, int code, int failure_code) {
  errno = 0;
  const bool flush_failed = std::fflush(stdout) != 0;
  if (!flush_failed && !std::ferror(stdout)) return code;
  if (flush_failed && errno != 0) {
    std::fprintf(stderr, "%s: cannot write the output: %s\n", tool, std::strerror(errno));
  } else {
    std::fprintf(stderr, "%s: cannot write the output\n", tool);
  }
  return failure_code;
}

}  // namespace fern

#endif  // FERN_TOOLS_TOOL_OUTPUT_H_
