// The WORKLOADS.md workloads: their order, sizes, the operations each performs against an
// Engine (split across threads) and the correctness checks that are part of the run.
#ifndef FERN_BENCH_FERNBENCH_WORKLOADS_H_
#define FERN_BENCH_FERNBENCH_WORKLOADS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fern/status.h"
#include "fernbench/engine.h"

namespace fern::bench {

enum class Workload {
  kFillRandom,
  kOverwrite,
  kReadRandom,
  kReadSeq,
  kSeekRandom,
  kDeleteRandom,
  kFillSeq,
  kFillSync,
};

// The database a workload runs on: the shared one (filled by fillrandom) or its own fresh one.
enum class Database { kMain, kFillSeq, kFillSync };

struct WorkloadSpec {
  Workload workload;
  const char* name;
  Database database;
  bool sync;  // every commit fsyncs
};

// All workloads, in the order WORKLOADS.md runs them.
const std::vector<WorkloadSpec>& AllWorkloads();
const WorkloadSpec* FindWorkload(std::string_view name);
const char* DatabaseName(Database database);

inline constexpr uint64_t kSeekCount = 100000;
inline constexpr int kNextsPerSeek = 10;
inline constexpr uint64_t kFillSyncCount = 10000;

// Operations the workload performs for `n` keys: the CSV `n` column.
uint64_t OperationCount(Workload workload, uint64_t n);

// What one workload run needs to know beyond the engine.
struct WorkloadParams {
  uint64_t n = 0;
  int threads = 1;
  // The seed offset of the values the main database holds when the workload starts: 0 after
  // fillrandom, n after overwrite. readrandom checks every value it gets against it.
  uint64_t stored_value_offset = 0;
};

// Runs the workload's operations on the open `engine` across params.threads threads, each
// a contiguous slice of the order. An engine error stops the run and is returned; failed
// correctness checks (misses, wrong values, a wrong count) are appended to `*failures`.
Status RunWorkload(const WorkloadSpec& spec, const WorkloadParams& params, Engine* engine,
                   std::vector<std::string>* failures);

}  // namespace fern::bench

#endif  // FERN_BENCH_FERNBENCH_WORKLOADS_H_
