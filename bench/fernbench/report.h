// The human part of fernbench's output: every engine's figures as ratios to a baseline.
#ifndef FERN_BENCH_FERNBENCH_REPORT_H_
#define FERN_BENCH_FERNBENCH_REPORT_H_

#include <string>
#include <string_view>
#include <vector>

#include "fernbench/child_process.h"

namespace fern::bench {

// One row per (workload, engine) in the given orders: ops/s and its ratio to `baseline`'s,
// the ratios of wchar, db_bytes and peak RSS, the RSS itself, and for put workloads the write
// amplification wchar / (n * 116). A ratio whose baseline figure is missing or 0 shows "-".
std::string RatioTable(const std::vector<WorkloadResult>& results,
                       const std::vector<std::string>& engines,
                       const std::vector<std::string>& workloads, std::string_view baseline);

}  // namespace fern::bench

#endif  // FERN_BENCH_FERNBENCH_REPORT_H_
