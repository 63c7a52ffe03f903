// Leaf frames (ft/leaf_frame.h): what a point read that misses the cache decodes of a
// default 16 KiB basement stored in chunks, from memory (no I/O): the whole frame as a first
// read gets it (the partition checksum over the whole frame, the chunk table parsed, the
// key's chunk decoded) against the span a kept LeafChunkIndex names (only that chunk's
// checksum and decode). A read from disk also copies the bytes it reads: the whole frame, or
// only the span.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "fern/options.h"
#include "ft/basement.h"
#include "ft/leaf_frame.h"
#include "ft/node.h"
#include "ft/node_format.h"
#include "micro/micro_util.h"
#include "util/checksum.h"

namespace fern::micro {
namespace {

constexpr size_t kBasementBytes = size_t{16} << 10;  // TableOptions::basement_bytes
constexpr uint64_t kFirstKey = 1'000'000;
constexpr size_t kProbes = 1024;  // a power of two

struct ChunkedFrame {
  std::string frame;
  PartitionExtent extent;
  size_t rows = 0;
  std::vector<std::string> keys;  // probe keys, each a row of the basement
};

ChunkedFrame MakeChunkedFrame() {
  ChunkedFrame f;
  Basement basement;
  f.rows = FillBasement(kFirstKey, kBasementBytes, &basement);
  size_t raw_size = 0;
  if (!EncodeLeafFrame(basement, Compression::kZstd, 0, kLeafChunkBytes, &f.frame, &raw_size)
           .ok()) {
    return f;
  }
  f.extent.size = static_cast<uint32_t>(f.frame.size());
  f.extent.raw_size = static_cast<uint32_t>(raw_size);
  f.extent.checksum = Checksum32(f.frame);
  for (uint64_t i : RandomIndexes(kProbes, f.rows, /*seed=*/3)) {
    f.keys.push_back(MakeRow(kFirstKey + i).key);
  }
  return f;
}

// One iteration: a point read's decode (rows_above 0) of the whole frame. bytes/s counts the
// frame's bytes.
void BM_LeafPointReadWholeFrame(benchmark::State& state) {
  const ChunkedFrame f = MakeChunkedFrame();
  if (!IsChunkedLeafFrame(f.frame)) {
    state.SkipWithError("the basement was not stored in chunks");
    return;
  }
  std::unique_ptr<Basement> rows;
  const std::string where = "bench";
  size_t next = 0;
  for (auto _ : state) {
    const Basement::Prefix prefix{f.keys[next++ & (kProbes - 1)], 0};
    Status s = DecodeLeafPartition(f.frame, f.extent, *BytewiseComparator(), where, &rows, nullptr,
                                   &prefix);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(rows->count());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.frame.size()));
}

// One iteration: the same read through the frame's LeafChunkIndex, given the span it names.
// bytes/s counts the span's bytes, what a read from disk would copy.
void BM_LeafPointReadThroughChunkIndex(benchmark::State& state) {
  const ChunkedFrame f = MakeChunkedFrame();
  std::shared_ptr<const LeafChunkIndex> index;
  if (!IsChunkedLeafFrame(f.frame) ||
      !LeafChunkIndex::Build(f.frame, f.extent.raw_size, *BytewiseComparator(), 1, &index).ok()) {
    state.SkipWithError("the basement was not stored in chunks");
    return;
  }
  std::unique_ptr<Basement> rows;
  uint64_t span_bytes = 0;
  size_t next = 0;
  for (auto _ : state) {
    const Basement::Prefix prefix{f.keys[next++ & (kProbes - 1)], 0};
    const LeafChunkIndex::Span span = index->SpanFor(prefix, *BytewiseComparator());
    const std::string_view bytes =
        std::string_view(f.frame).substr(span.begin, span.end - span.begin);
    uint64_t decoded = 0;
    Status s = DecodeChunkedLeafPrefix(*index, span, bytes, *BytewiseComparator(), prefix, &rows,
                                       &decoded);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    span_bytes += bytes.size();
    benchmark::DoNotOptimize(rows->count());
  }
  state.counters["index_bytes"] = static_cast<double>(index->memory_bytes());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(span_bytes));
}

// One iteration: a whole-basement decode (what a scan or a kept basement's load does) of the
// 16 KiB basement stored with chunks of state.range(0) bytes (0: one compression frame for
// the whole basement). Shows what the chunking costs reads that want every row.
void BM_LeafFullDecode(benchmark::State& state) {
  Basement basement;
  FillBasement(kFirstKey, kBasementBytes, &basement);
  const size_t chunk_bytes =
      state.range(0) == 0 ? 2 * kBasementBytes : static_cast<size_t>(state.range(0));
  std::string frame;
  size_t raw_size = 0;
  if (!EncodeLeafFrame(basement, Compression::kZstd, 0, chunk_bytes, &frame, &raw_size).ok()) {
    state.SkipWithError("encode failed");
    return;
  }
  PartitionExtent extent;
  extent.size = static_cast<uint32_t>(frame.size());
  extent.raw_size = static_cast<uint32_t>(raw_size);
  extent.checksum = Checksum32(frame);
  std::unique_ptr<Basement> rows;
  const std::string where = "bench";
  for (auto _ : state) {
    Status s = DecodeLeafPartition(frame, extent, *BytewiseComparator(), where, &rows, nullptr);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(rows->count());
  }
  state.counters["frame_bytes"] = static_cast<double>(frame.size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * raw_size));
}

BENCHMARK(BM_LeafPointReadWholeFrame);
BENCHMARK(BM_LeafPointReadThroughChunkIndex);
BENCHMARK(BM_LeafFullDecode)->ArgName("chunk_bytes")->Arg(0)->Arg(2048)->Arg(4096)->Arg(8192);

}  // namespace
}  // namespace fern::micro
