// Codecs (util/compression.h) on one 64 KiB leaf partition: a serialized basement of
// WORKLOADS.md rows, the unit the tree compresses. Bytes/s counts uncompressed bytes both
// ways; `ratio` is uncompressed / compressed (frame included).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "micro/micro_util.h"
#include "util/compression.h"
#include "util/strings.h"

namespace fern::micro {
namespace {

constexpr size_t kPartitionBytes = size_t{64} << 10;

const std::string& Partition() {
  static const std::string* partition = new std::string(BasementPartition(kPartitionBytes));
  return *partition;
}

void SetBytesAndRatio(benchmark::State& state, const std::string& raw, const std::string& frame) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * raw.size()));
  state.counters["ratio"] = static_cast<double>(raw.size()) / static_cast<double>(frame.size());
}

// `level` 0 is Fern's default for the codec. One iteration compresses (or decompresses) the
// whole partition.
void BM_Compress(benchmark::State& state, Compression codec, int level) {
  const std::string& raw = Partition();
  std::string frame;
  for (auto _ : state) {
    frame.clear();
    if (!CheckOk(state, CompressPartition(codec, level, raw, &frame), "CompressPartition")) break;
    benchmark::DoNotOptimize(frame.data());
  }
  SetBytesAndRatio(state, raw, frame);
}

void BM_Decompress(benchmark::State& state, Compression codec, int level) {
  const std::string& raw = Partition();
  std::string frame;
  if (!CheckOk(state, CompressPartition(codec, level, raw, &frame), "CompressPartition")) return;
  std::string decoded;
  for (auto _ : state) {
    if (!CheckOk(state, DecompressPartition(frame, &decoded), "DecompressPartition")) break;
    benchmark::DoNotOptimize(decoded.data());
  }
  if (decoded != raw) state.SkipWithError("decompressed bytes differ from the partition");
  SetBytesAndRatio(state, raw, frame);
}

// Every codec at Fern's default level (zstd's default is level 1, so "zstd" and "zstd/level:1"
// are the same work, run twice as a check), plus zstd at level 3. Named by codec rather than
// by enum value: "BM_Compress/zstd/level:3".
[[maybe_unused]] const bool registered = [] {
  struct Config {
    Compression codec;
    int level;
  };
  for (Config config :
       {Config{Compression::kNone, 0}, Config{Compression::kSnappy, 0},
        Config{Compression::kZlib, 0}, Config{Compression::kZstd, 0}, Config{Compression::kZstd, 1},
        Config{Compression::kZstd, 3}, Config{Compression::kLzma, 0}}) {
    std::string suffix = CompressionName(config.codec);
    if (config.level != 0) suffix = StrCat(suffix, "/level:", config.level);
    benchmark::RegisterBenchmark(StrCat("BM_Compress/", suffix).c_str(), BM_Compress, config.codec,
                                 config.level);
    benchmark::RegisterBenchmark(StrCat("BM_Decompress/", suffix).c_str(), BM_Decompress,
                                 config.codec, config.level);
  }
  return true;
}();

}  // namespace
}  // namespace fern::micro
