// Shared pieces of the micro benchmarks: WORKLOADS.md-style rows, a realistic basement
// partition, scratch directories and error reporting.
//
// Everything here runs outside the timed loops. Not thread-safe unless stated.
#ifndef FERN_BENCH_MICRO_MICRO_UTIL_H_
#define FERN_BENCH_MICRO_MICRO_UTIL_H_

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fern/status.h"
#include "ft/basement.h"

namespace fern::micro {

// A key and value as WORKLOADS.md defines them (16-byte ASCII key, 100-byte value of 50
// pseudo-random bytes written twice).
struct Row {
  std::string key;
  std::string value;
};

// Row i: key i, value seeded with `seed_offset + i`.
Row MakeRow(uint64_t i, uint64_t seed_offset = 0);

// `count` indexes drawn uniformly from [0, bound) by a fixed-seed generator, so every run
// sees the same sequence.
std::vector<uint64_t> RandomIndexes(size_t count, uint64_t bound, uint64_t seed);

// A basement of consecutive rows starting at key `first_key`, filled with autocommitted
// inserts while its serialized form stays within `target_bytes` (a partition as the tree
// writes it). Returns the number of rows.
size_t FillBasement(uint64_t first_key, size_t target_bytes, Basement* basement);

// The serialized basement FillBasement builds for `target_bytes`: a realistic partition for
// the codecs.
std::string BasementPartition(size_t target_bytes);

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  // Empty if the directory could not be created.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Marks the benchmark failed with `what` and the status when `s` is not OK; returns s.ok().
// Any thread may call it for its own `state`.
bool CheckOk(benchmark::State& state, const Status& s, const char* what);

}  // namespace fern::micro

#endif  // FERN_BENCH_MICRO_MICRO_UTIL_H_
