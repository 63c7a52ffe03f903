// big_values: what rows with big values cost, the two cases out-of-line values are for.
//
// hot: one row of --value_kb overwritten --updates times by autocommitted puts while a
//   snapshot transaction is begun (and kept, reading the row once) every
//   updates / snapshots puts, so the row keeps a version for each: prints the time and the
//   process's peak RSS.
// gets: --rows rows of --value_kb each, then --gets random point reads (the cache is big
//   enough for all of them): prints puts and gets a second.
// deep: --small_rows rows of 100 bytes and a checkpoint (a tree with internal levels, whose
//   buffers big values then pass through), then --updates puts of --value_kb at random
//   keys among them: prints the puts' time.
//   big_values [--case hot|gets|deep] [--snapshots 100] [--updates 400] [--rows 1000]
//              [--gets 500000] [--small_rows 200000] [--value_kb 1024] [--cache_mb 16]
//              [--dir DIR]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fern/fern.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string which = "hot";
  int snapshots = 100;
  int updates = 400;
  int rows = 1000;
  int gets = 500000;
  int small_rows = 200000;
  size_t value_kb = 1024;
  size_t cache_mb = 16;
  std::string dir = "/tmp/big_values";
};

bool ParseArgs(int argc, char** argv, Options* options) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    const char* value = argv[i + 1];
    if (arg == "--case") {
      options->which = value;
    } else if (arg == "--snapshots") {
      options->snapshots = std::atoi(value);
    } else if (arg == "--updates") {
      options->updates = std::atoi(value);
    } else if (arg == "--rows") {
      options->rows = std::atoi(value);
    } else if (arg == "--gets") {
      options->gets = std::atoi(value);
    } else if (arg == "--small_rows") {
      options->small_rows = std::atoi(value);
    } else if (arg == "--value_kb") {
      options->value_kb = std::strtoull(value, nullptr, 10);
    } else if (arg == "--cache_mb") {
      options->cache_mb = std::strtoull(value, nullptr, 10);
    } else if (arg == "--dir") {
      options->dir = value;
    } else {
      return false;
    }
  }
  return (argc % 2 == 1) &&
         (options->which == "hot" || options->which == "gets" || options->which == "deep") &&
         options->snapshots > 0 && options->updates >= options->snapshots && options->rows > 0 &&
         options->value_kb > 0;
}

long PeakRssMb() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Values that half compress: a random first half, the same in every value but for its first
// 8 bytes (the version), then a run of a letter. Each value is compressed on its own, so the
// shared half costs what a fresh one would. One buffer is refilled for every put: building a
// fresh one (first touches of its pages, a random number every 8 bytes) cost as much as a
// 32 MiB put itself.
class Values {
 public:
  explicit Values(size_t bytes) : value_(bytes, '\0') {
    std::mt19937_64 rng(1);
    for (size_t i = 0; i + 8 <= bytes / 2; i += 8) {
      const uint64_t r = rng();
      std::memcpy(value_.data() + i, &r, 8);
    }
  }

  const std::string& Get(int version) {
    const auto v = static_cast<uint64_t>(version);
    if (value_.size() >= 8) std::memcpy(value_.data(), &v, 8);
    const size_t half = value_.size() / 2;
    std::memset(value_.data() + half, 'a' + version % 26, value_.size() - half);
    return value_;
  }

 private:
  std::string value_;
};

int Fail(const fern::Status& s) {
  std::fprintf(stderr, "big_values: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!ParseArgs(argc, argv, &options)) {
    std::fprintf(stderr,
                 "usage: big_values [--case hot|gets|deep] [--snapshots N] [--updates N] "
                 "[--rows N] [--gets N] [--small_rows N] [--value_kb N] [--cache_mb N] "
                 "[--dir DIR]\n");
    return 2;
  }
  std::filesystem::remove_all(options.dir);
  fern::Options env_options;
  env_options.cache_bytes = options.cache_mb << 20;
  env_options.sync_commits = false;
  std::unique_ptr<fern::Env> env;
  fern::Status s = fern::Env::Open(options.dir, env_options, &env);
  if (!s.ok()) return Fail(s);
  fern::Table* table;
  s = env->OpenTable("t", fern::TableOptions(), &table);
  if (!s.ok()) return Fail(s);
  Values values(options.value_kb << 10);

  if (options.which == "hot") {
    std::vector<std::unique_ptr<fern::Txn>> snapshots;
    const int every = options.updates / options.snapshots;
    const Clock::time_point start = Clock::now();
    for (int i = 0; i < options.updates; ++i) {
      s = table->Put(nullptr, "hot", values.Get(i));
      if (!s.ok()) return Fail(s);
      if (i % every == 0 && static_cast<int>(snapshots.size()) < options.snapshots) {
        fern::TxnOptions txn_options;
        txn_options.isolation = fern::Isolation::kSnapshot;
        snapshots.emplace_back();
        s = env->Begin(txn_options, &snapshots.back());
        std::string value;
        if (s.ok()) s = table->Get(snapshots.back().get(), "hot", &value);
        if (!s.ok()) return Fail(s);
      }
    }
    std::printf(
        "hot: %d snapshots, %d updates of %zu KiB at a %zu MiB cache: %.2f s, "
        "peak RSS %ld MiB\n",
        static_cast<int>(snapshots.size()), options.updates, options.value_kb, options.cache_mb,
        SecondsSince(start), PeakRssMb());
    return 0;
  }

  if (options.which == "deep") {
    const auto key = [](uint64_t i) {
      char buffer[32];
      std::snprintf(buffer, sizeof(buffer), "k%09llu", static_cast<unsigned long long>(i));
      return std::string(buffer);
    };
    const uint64_t n = static_cast<uint64_t>(std::max(options.small_rows, 1));
    for (uint64_t i = 0; i < n; ++i) {
      s = table->Put(nullptr, key(i * 7919 % n), std::string(100, 'x'));
      if (!s.ok()) return Fail(s);
    }
    s = env->Checkpoint();
    if (!s.ok()) return Fail(s);
    std::mt19937_64 rng(3);
    const Clock::time_point start = Clock::now();
    for (int i = 0; i < options.updates; ++i) {
      s = table->Put(nullptr, key(rng() % n), values.Get(i));
      if (!s.ok()) return Fail(s);
    }
    std::printf(
        "deep: %d puts of %zu KiB among %d rows at a %zu MiB cache: %.2f s, "
        "peak RSS %ld MiB\n",
        options.updates, options.value_kb, options.small_rows, options.cache_mb,
        SecondsSince(start), PeakRssMb());
    return 0;
  }

  Clock::time_point start = Clock::now();
  for (int i = 0; i < options.rows; ++i) {
    s = table->Put(nullptr, "row" + std::to_string(i), values.Get(i));
    if (!s.ok()) return Fail(s);
  }
  const double put_seconds = SecondsSince(start);
  std::mt19937_64 rng(7);
  std::string value;
  start = Clock::now();
  for (int i = 0; i < options.gets; ++i) {
    s = table->Get(nullptr, "row" + std::to_string(rng() % options.rows), &value);
    if (!s.ok()) return Fail(s);
  }
  const double get_seconds = SecondsSince(start);
  std::printf("gets: %d rows of %zu KiB at a %zu MiB cache: puts %.0f/s, gets %.0f/s\n",
              options.rows, options.value_kb, options.cache_mb, options.rows / put_seconds,
              options.gets / get_seconds);
  return 0;
}
