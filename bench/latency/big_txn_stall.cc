// big_txn_stall: how long other threads' reads stall while one big transaction commits.
//
// Loads --base rows (WORKLOADS.md data) with autocommitted puts, then starts a reader thread
// doing random point reads of those rows nonstop, and in the main thread writes --n other
// rows in one transaction and commits it (or aborts it, with --abort). Prints the reads'
// latency percentiles and maximum in each phase (while the transaction writes, while it
// commits or aborts, afterwards) and the commit's own time; --no_reader times the
// transaction alone.
//   big_txn_stall [--base 1000000] [--n 1000000] [--cache_mb 64] [--abort] [--no_reader]
//                 [--dir DIR]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fern/fern.h"
#include "fernbench/data.h"

namespace {

using Clock = std::chrono::steady_clock;

enum Phase { kWriting = 0, kResolving = 1, kAfter = 2, kPhases = 3 };
const char* const kPhaseNames[kPhases] = {"txn writes", "commit/abort", "afterwards"};

struct Options {
  uint64_t base = 1'000'000;
  uint64_t n = 1'000'000;
  size_t cache_mb = 64;
  bool abort = false;
  bool reader = true;
  std::string dir = "/tmp/big_txn_stall";
};

bool ParseArgs(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&](const char** out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    const char* value = nullptr;
    if (arg == "--abort") {
      options->abort = true;
    } else if (arg == "--no_reader") {
      options->reader = false;
    } else if (arg == "--base" && next(&value)) {
      options->base = std::strtoull(value, nullptr, 10);
    } else if (arg == "--n" && next(&value)) {
      options->n = std::strtoull(value, nullptr, 10);
    } else if (arg == "--cache_mb" && next(&value)) {
      options->cache_mb = std::strtoull(value, nullptr, 10);
    } else if (arg == "--dir" && next(&value)) {
      options->dir = value;
    } else {
      std::fprintf(stderr,
                   "usage: big_txn_stall [--base N] [--n N] [--cache_mb MB] [--abort] "
                   "[--no_reader] [--dir DIR]\n");
      return false;
    }
  }
  return options->base > 0 && fern::bench::Permutation::IsValidN(options->base);
}

void Report(const char* name, std::vector<double>* us) {
  if (us->empty()) {
    std::printf("%-13s no reads\n", name);
    return;
  }
  std::sort(us->begin(), us->end());
  auto at = [&](double q) {
    return (*us)[static_cast<size_t>(q * static_cast<double>(us->size() - 1))];
  };
  std::printf("%-13s %9zu reads  p50 %7.1f us  p99 %8.1f us  p99.9 %9.1f us  max %10.1f us\n", name,
              us->size(), at(0.5), at(0.99), at(0.999), us->back());
}

bool Check(const fern::Status& s, const char* what) {
  if (s.ok()) return true;
  std::fprintf(stderr, "big_txn_stall: %s: %s\n", what, s.ToString().c_str());
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  if (!ParseArgs(argc, argv, &opts)) return 2;
  std::filesystem::remove_all(opts.dir);
  fern::Options options;
  options.cache_bytes = opts.cache_mb << 20;
  options.sync_commits = false;
  std::unique_ptr<fern::Env> env;
  if (!Check(fern::Env::Open(opts.dir, options, &env), "open")) return 1;
  fern::Table* table = nullptr;
  if (!Check(env->OpenTable("data", fern::TableOptions(), &table), "open table")) return 1;

  const fern::bench::Permutation perm(opts.base);
  fern::bench::Key key(0);
  fern::bench::Value value(0);
  for (uint64_t j = 0; j < opts.base; ++j) {
    const uint64_t i = perm(j);
    key.Set(i);
    value.Set(i);
    if (!Check(table->Put(nullptr, key.view(), value.view()), "load")) return 1;
  }

  std::atomic<int> phase{kWriting};
  std::atomic<bool> stop{false};
  std::vector<double> latencies[kPhases];
  std::thread reader([&] {
    fern::bench::Key k(0);
    std::string v;
    uint64_t state = 1;
    while (opts.reader && !stop.load(std::memory_order_relaxed)) {
      k.Set(fern::bench::SplitMix64Next(&state) % opts.base);
      const int p = phase.load(std::memory_order_relaxed);
      const Clock::time_point start = Clock::now();
      const fern::Status s = table->Get(nullptr, k.view(), &v);
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
      if (!s.ok()) {
        std::fprintf(stderr, "big_txn_stall: read: %s\n", s.ToString().c_str());
        std::exit(1);
      }
      latencies[p].push_back(us);
    }
  });

  std::unique_ptr<fern::Txn> txn;
  if (!Check(env->Begin(fern::TxnOptions(), &txn), "begin")) return 1;
  const Clock::time_point write_start = Clock::now();
  for (uint64_t j = 0; j < opts.n; ++j) {
    key.Set(opts.base + (j * 7919) % opts.n);  // keys beyond the base rows, in mixed order
    value.Set(j);
    if (!Check(table->Put(txn.get(), key.view(), value.view()), "transaction put")) return 1;
  }
  const Clock::time_point resolve_start = Clock::now();
  phase.store(kResolving);
  const fern::Status ended = opts.abort ? txn->Abort() : txn->Commit();
  const Clock::time_point resolve_end = Clock::now();
  phase.store(kAfter);
  if (!Check(ended, opts.abort ? "abort" : "commit")) return 1;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  stop.store(true);
  reader.join();

  std::printf("big_txn_stall: %" PRIu64 " base rows, a %" PRIu64
              "-row transaction, cache %zu MiB: writes %.2f s, %s %.3f s\n",
              opts.base, opts.n, opts.cache_mb,
              std::chrono::duration<double>(resolve_start - write_start).count(),
              opts.abort ? "abort" : "commit",
              std::chrono::duration<double>(resolve_end - resolve_start).count());
  for (int p = 0; p < kPhases; ++p) Report(kPhaseNames[p], &latencies[p]);
  txn.reset();
  env.reset();
  return 0;
}
