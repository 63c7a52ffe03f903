// fernbench's command line: `--name=value` or `--name value`, parsed by hand.
#ifndef FERN_BENCH_FERNBENCH_FLAGS_H_
#define FERN_BENCH_FERNBENCH_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "fern/status.h"

namespace fern::bench {

struct Flags {
  // Default: every backend built, in registry order, less those without the --compression
  // codec (listed in `skipped`). Named engines must all have it.
  std::vector<std::string> engines;
  std::vector<std::string> skipped;     // "<engine>: <why>", engines the default list left out
  uint64_t n = 2000000;                 // keys; gcd(2654435761, n) must be 1
  uint64_t cache_mb = 64;               // each engine's cache budget
  std::string compression = "default";  // default | none | snappy | zlib | zstd | lzma
  int threads = 1;                      // each workload's operations split across this many
  std::vector<std::string> workloads;   // default: all, in WORKLOADS.md order
  std::string dir;                      // default: /tmp/fernbench-<pid>
  std::string baseline;                 // default: rocksdb if run, else the first engine
  bool keep = false;                    // keep the databases after the run
  // Run on the main databases a --keep run left in --dir (after fillrandom and overwrite),
  // instead of fresh ones; implies --keep; only workloads that leave them unchanged.
  bool reuse = false;
  // Fern's TableOptions::basement_bytes in KiB for tables fernbench creates (0: Fern's
  // default); a reused or reopened table keeps the size it was created with.
  uint64_t fern_basement_kb = 0;
  uint64_t fern_node_kb = 0;         // 0: Fern's default
  int64_t fern_buffer_percent = -1;  // Fern's Options::buffer_budget_percent; -1: Fern's default
  bool help = false;
};

// Parses argv into `flags`, fills defaults and validates every value (engines built, N
// coprime with the permutation multiplier, known workloads and codecs). InvalidArgument
// names the offending flag.
Status ParseFlags(int argc, char** argv, Flags* flags);

// The --help text, including which backends this binary was built with.
std::string Usage();

}  // namespace fern::bench

#endif  // FERN_BENCH_FERNBENCH_FLAGS_H_
