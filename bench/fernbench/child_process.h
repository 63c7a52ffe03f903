// Runs one workload on one engine in a child process of its own (fork), so that `seconds`
// covers open, operations and close, and the process-wide figures (/proc/self/io,
// getrusage) belong to that workload alone.
//
// Called from the parent's only thread: fork() is safe because the parent never starts a
// thread or opens an engine itself.
#ifndef FERN_BENCH_FERNBENCH_CHILD_PROCESS_H_
#define FERN_BENCH_FERNBENCH_CHILD_PROCESS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "fernbench/engine.h"
#include "fernbench/workloads.h"

namespace fern::bench {

// One CSV line of the results, and what went wrong while producing it.
struct WorkloadResult {
  std::string engine;
  std::string config;
  std::string workload;
  uint64_t n = 0;  // operations performed
  double seconds = 0;
  double ops_per_sec = 0;
  uint64_t write_bytes = 0;           // /proc/self/io write_bytes delta, open to close
  uint64_t wchar = 0;                 // /proc/self/io wchar delta, open to close
  uint64_t db_bytes = 0;              // total size of the database directory's files after close
  uint64_t max_rss_kb = 0;            // the child's peak resident set
  bool measured = false;              // false when the child failed before reporting figures
  std::vector<std::string> failures;  // failed checks and errors; empty when all is well

  // engine,config,workload,n,seconds,ops_per_sec,write_bytes,wchar,db_bytes,max_rss_kb
  std::string ToCsv() const;
  static const char* CsvHeader();
};

struct ChildTask {
  const EngineInfo* engine = nullptr;
  const WorkloadSpec* workload = nullptr;
  std::string db_dir;  // created by the child if missing
  EngineConfig config;
  WorkloadParams params;
};

// Forks, runs `task` in the child, and returns the child's report. Never fails: a child that
// could not open the engine, hit an error or died is described in `failures`.
WorkloadResult RunInChildProcess(const ChildTask& task);

}  // namespace fern::bench

#endif  // FERN_BENCH_FERNBENCH_CHILD_PROCESS_H_
