#include "fernbench/report.h"

#include <cstdio>

#include "fernbench/data.h"
#include "fernbench/workloads.h"
#include "util/strings.h"

namespace fern::bench {

namespace {

const WorkloadResult* Find(const std::vector<WorkloadResult>& results, std::string_view engine,
                           std::string_view workload) {
  for (const WorkloadResult& result : results) {
    if (result.engine == engine && result.workload == workload && result.measured) {
      return &result;
    }
  }
  return nullptr;
}

std::string Ratio(double value, double base) {
  if (base <= 0) return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f", value / base);
  return text;
}

bool WritesRows(std::string_view workload) {
  const WorkloadSpec* spec = FindWorkload(workload);
  if (spec == nullptr) return false;
  switch (spec->workload) {
    case Workload::kFillRandom:
    case Workload::kOverwrite:
    case Workload::kFillSeq:
    case Workload::kFillSync:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string RatioTable(const std::vector<WorkloadResult>& results,
                       const std::vector<std::string>& engines,
                       const std::vector<std::string>& workloads, std::string_view baseline) {
  std::string table =
      StrCat("Ratios to ", baseline, " (engine / ", baseline,
             "): x ops/s above 1 is faster; x wchar, x db_bytes and x rss below 1 are smaller.\n"
             "write_amp = wchar / (n * ",
             kEntryBytes, "), for workloads that put rows.\n\n");
  char line[256];
  std::snprintf(line, sizeof(line), "%-13s %-8s %12s %8s %8s %10s %9s %7s %10s\n", "workload",
                "engine", "ops/s", "x ops/s", "x wchar", "x db_bytes", "rss_mb", "x rss",
                "write_amp");
  table += line;
  for (const std::string& workload : workloads) {
    const WorkloadResult* base = Find(results, baseline, workload);
    for (const std::string& engine : engines) {
      const WorkloadResult* result = Find(results, engine, workload);
      if (result == nullptr) {
        std::snprintf(line, sizeof(line), "%-13s %-8s %12s\n", workload.c_str(), engine.c_str(),
                      "(failed)");
        table += line;
        continue;
      }
      auto ratio = [&](auto field) {
        return base == nullptr ? std::string("-") : Ratio(result->*field, base->*field);
      };
      std::string write_amp = "-";
      if (WritesRows(workload) && result->n > 0) {
        char amp[32];
        std::snprintf(amp, sizeof(amp), "%.2f",
                      static_cast<double>(result->wchar) / (result->n * kEntryBytes));
        write_amp = amp;
      }
      std::snprintf(line, sizeof(line), "%-13s %-8s %12.0f %8s %8s %10s %9.1f %7s %10s\n",
                    workload.c_str(), engine.c_str(), result->ops_per_sec,
                    ratio(&WorkloadResult::ops_per_sec).c_str(),
                    ratio(&WorkloadResult::wchar).c_str(), ratio(&WorkloadResult::db_bytes).c_str(),
                    result->max_rss_kb / 1024.0, ratio(&WorkloadResult::max_rss_kb).c_str(),
                    write_amp.c_str());
      table += line;
    }
  }
  return table;
}

}  // namespace fern::bench
