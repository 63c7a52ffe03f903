// checkpoint_latency: put latency with and without background checkpoints.
//
// Loads N rows of WORKLOADS.md-style data (bench/fernbench/data.h: 16-byte keys, 100-byte values,
// the random order) into a fresh Env twice: once with a checkpoint every --period_ms, once with
// checkpoints off, and prints the median, 99th, 99.9th, 99.99th percentile and maximum put
// latency of each, the puts slower than 1 ms and 10 ms, and the checkpoint clones and pairs
// written, so that a checkpoint's cost to writers shows as a ratio.
//   checkpoint_latency [--n 1000000] [--cache_mb 64] [--period_ms 1000] [--dir DIR]
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "fern/fern.h"
#include "fernbench/data.h"

namespace {

struct Result {
  double seconds;
  std::vector<double> latencies_us;
  int64_t checkpoints;
  int64_t clones;            // checkpoint clones made by write pins
  int64_t checkpoint_pairs;  // pairs written for checkpoints, clones included
};

int64_t StatValue(const std::string& stats, const std::string& name) {
  size_t at = stats.find(name + ": ");
  return at == std::string::npos ? -1 : std::atoll(stats.c_str() + at + name.size() + 2);
}

Result Run(const std::string& dir, uint64_t n, size_t cache_mb, uint32_t period_ms) {
  std::filesystem::remove_all(dir);
  fern::Options options;
  options.cache_bytes = cache_mb << 20;
  options.sync_commits = false;
  options.checkpoint_period_ms = period_ms;
  std::unique_ptr<fern::Env> env;
  fern::Status s = fern::Env::Open(dir, options, &env);
  fern::Table* table = nullptr;
  if (s.ok()) s = env->OpenTable("data", fern::TableOptions(), &table);
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.ToString().c_str());
    std::exit(1);
  }
  Result result;
  result.latencies_us.reserve(n);
  const fern::bench::Permutation permutation(n);
  auto start = std::chrono::steady_clock::now();
  for (uint64_t j = 0; j < n; ++j) {
    uint64_t i = permutation(j);
    fern::bench::Key key(i);
    fern::bench::Value value(i);
    auto t0 = std::chrono::steady_clock::now();
    s = table->Put(nullptr, key.view(), value.view());
    auto t1 = std::chrono::steady_clock::now();
    if (!s.ok()) {
      std::fprintf(stderr, "put: %s\n", s.ToString().c_str());
      std::exit(1);
    }
    result.latencies_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string stats;
  env->GetProperty("fern.stats", &stats);
  result.checkpoints = StatValue(stats, "checkpoint.taken");
  result.clones = StatValue(stats, "checkpoint.clones");
  result.checkpoint_pairs = StatValue(stats, "checkpoint.pairs_written");
  env.reset();
  std::filesystem::remove_all(dir);
  return result;
}

double Percentile(std::vector<double>* v, double p) {
  size_t k = std::min(v->size() - 1, static_cast<size_t>(p * static_cast<double>(v->size())));
  std::nth_element(v->begin(), v->begin() + static_cast<long>(k), v->end());
  return (*v)[k];
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t n = 1000000;
  size_t cache_mb = 64;
  uint32_t period_ms = 1000;
  std::string dir = "/tmp/fern-checkpoint-latency";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--n")
      n = std::strtoull(argv[i + 1], nullptr, 10);
    else if (flag == "--cache_mb")
      cache_mb = std::strtoull(argv[i + 1], nullptr, 10);
    else if (flag == "--period_ms")
      period_ms = static_cast<uint32_t>(std::atoi(argv[i + 1]));
    else if (flag == "--dir")
      dir = argv[i + 1];
    else {
      std::fprintf(
          stderr,
          "usage: checkpoint_latency [--n N] [--cache_mb MB] [--period_ms MS] [--dir DIR]\n");
      return 2;
    }
  }
  std::printf(
      "checkpoints,n,seconds,puts_per_sec,p50_us,p99_us,p999_us,p9999_us,max_us,over_1ms,over_10ms,"
      "checkpoints_taken,"
      "clones,checkpoint_pairs_written\n");
  for (uint32_t period : {period_ms, 0u}) {
    Result r = Run(dir, n, cache_mb, period);
    double max = *std::max_element(r.latencies_us.begin(), r.latencies_us.end());
    double p50 = Percentile(&r.latencies_us, 0.50);
    double p99 = Percentile(&r.latencies_us, 0.99);
    double p999 = Percentile(&r.latencies_us, 0.999);
    double p9999 = Percentile(&r.latencies_us, 0.9999);
    const auto over = [&](double us) {
      return std::count_if(r.latencies_us.begin(), r.latencies_us.end(),
                           [us](double l) { return l > us; });
    };
    std::printf("%s,%" PRIu64 ",%.2f,%.0f,%.1f,%.1f,%.1f,%.1f,%.0f,%ld,%ld,%" PRId64 ",%" PRId64
                ",%" PRId64 "\n",
                period ? ("every " + std::to_string(period) + " ms").c_str() : "off", n, r.seconds,
                static_cast<double>(n) / r.seconds, p50, p99, p999, p9999, max,
                static_cast<long>(over(1000)), static_cast<long>(over(10000)), r.checkpoints,
                r.clones, r.checkpoint_pairs);
  }
  return 0;
}
