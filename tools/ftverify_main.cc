// ftverify FILE: checks every block of a Fern table file.
// Exit status: 0 clean, 1 problems found (each named with its block), 2 cannot open.
#include <cstdio>
#include <cstring>
#include <string>

#include "ft/tree_inspector.h"
#include "tool_progress.h"

int main(int argc, char** argv) {
  if (argc != 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fprintf(stderr,
                 "usage: ftverify FILE.ft\n"
                 "Reads every block of a Fern table file and checks checksums, decompression,\n"
                 "pivot order and key bounds, MSN order and sizes.\n"
                 "Exit status: 0 clean, 1 problems found, 2 the file cannot be opened.\n");
    return argc == 2 ? 0 : 2;
  }
  const std::string path = argv[1];
  fern::InspectOptions options;
  options.verify = true;
  options.progress = fern::TerminalProgress("verified");
  fern::TreeReport report;
  fern::Status s = fern::InspectTreeFile(path, options, &report);
  fern::EndProgress();
  if (!s.ok()) {
    std::fprintf(stderr, "ftverify: cannot open %s: %s\n", path.c_str(), s.ToString().c_str());
    return 2;
  }
  for (const fern::InspectProblem& problem : report.problems) {
    if (problem.block >= 0) {
      std::printf("block %lld: %s\n", static_cast<long long>(problem.block), problem.what.c_str());
    } else {
      std::printf("file: %s\n", problem.what.c_str());
    }
  }
  // An unknown comparator limits the checks but is not damage.
  size_t damage = 0;
  for (const fern::InspectProblem& problem : report.problems) damage += problem.block >= 0;
  std::printf("%s: %llu nodes, %llu rows, %zu problem%s\n", path.c_str(),
              static_cast<unsigned long long>(report.nodes_visited),
              static_cast<unsigned long long>(report.rows), damage, damage == 1 ? "" : "s");
  return damage == 0 ? 0 : 1;
}
