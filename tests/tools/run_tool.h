// Runs a command line (a tool under test) and collects its exit code and output.
#ifndef FERN_TESTS_TOOLS_RUN_TOOL_H_
#define FERN_TESTS_TOOLS_RUN_TOOL_H_

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace fern::testing {

struct ToolResult {
  int exit_code = -1;
  std::string output;  // stdout, and stderr where the command redirects it
};

inline ToolResult RunTool(const std::string& command) {
  ToolResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace fern::testing

#endif  // FERN_TESTS_TOOLS_RUN_TOOL_H_
