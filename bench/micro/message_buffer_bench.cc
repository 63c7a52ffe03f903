// MessageBuffer (ft/message_buffer.h): appending autocommitted inserts of WORKLOADS.md rows
// in random key order, looking keys up in a full buffer, and rebuilding a buffer from its
// serialized form (what reading an internal node from disk pays per buffer).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "fern/options.h"
#include "fernbench/data.h"
#include "ft/message.h"
#include "ft/message_buffer.h"
#include "micro/micro_util.h"

namespace fern::micro {
namespace {

// The first n rows fillrandom puts into a 2,000,000-key table: distinct keys in random order.
std::vector<Row> RandomRows(size_t n) {
  const bench::Permutation order(2'000'000);
  std::vector<Row> rows;
  rows.reserve(n);
  for (uint64_t j = 0; j < n; ++j) rows.push_back(MakeRow(order(j)));
  return rows;
}

Message InsertOf(const Row& row, Msn msn) {
  return Message{MessageType::kInsert, msn, XidStack(), row.key, row.value};
}

// Appends an insert of each row, with MSNs 1, 2, ..., to an empty buffer.
void AppendAll(const std::vector<Row>& rows, MessageBuffer* buffer) {
  Msn msn = 0;
  for (const Row& row : rows) buffer->Append(InsertOf(row, ++msn), *BytewiseComparator());
}

// Args: n messages per buffer; reuse (1: Clear() one buffer and refill it, keeping its
// memory, as a node reuses its buffers; 0: a new buffer each time, paying for its growth).
// One iteration fills a buffer with n messages; items/s is messages appended per second.
void BM_MessageBufferAppend(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const bool reuse = state.range(1) != 0;
  const std::vector<Row> rows = RandomRows(n);
  const Comparator& cmp = *BytewiseComparator();
  MessageBuffer reused;
  Msn msn = 0;
  for (auto _ : state) {
    MessageBuffer fresh;
    MessageBuffer& buffer = reuse ? reused : fresh;
    buffer.Clear();
    for (const Row& row : rows) buffer.Append(InsertOf(row, ++msn), cmp);
    benchmark::DoNotOptimize(buffer.count());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

// Arg: n messages in the buffer. One iteration is ForEachWithKey for one key the buffer
// holds (picked at random); items/s is lookups per second.
void BM_MessageBufferFindKey(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::vector<Row> rows = RandomRows(n);
  const Comparator& cmp = *BytewiseComparator();
  MessageBuffer buffer;
  AppendAll(rows, &buffer);
  const std::vector<uint64_t> probes = RandomIndexes(4096, n, /*seed=*/7);
  size_t next = 0;
  size_t found = 0;
  for (auto _ : state) {
    const std::string& key = rows[probes[next++ & 4095]].key;
    buffer.ForEachWithKey(key, cmp, [&found](const Message& m) { found += m.value.size(); });
  }
  benchmark::DoNotOptimize(found);
  if (found == 0) state.SkipWithError("no lookup found its key");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// Arg: n messages in the buffer. One iteration deserializes it (copying the bytes and
// building the key index); items/s is messages per second.
void BM_MessageBufferDeserialize(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const Comparator& cmp = *BytewiseComparator();
  MessageBuffer buffer;
  AppendAll(RandomRows(n), &buffer);
  std::string bytes;
  buffer.Serialize(&bytes);
  for (auto _ : state) {
    MessageBuffer reloaded;
    if (!MessageBuffer::Deserialize(bytes, cmp, &reloaded).ok()) {
      state.SkipWithError("Deserialize failed");
      break;
    }
    benchmark::DoNotOptimize(reloaded.count());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

BENCHMARK(BM_MessageBufferAppend)
    ->ArgNames({"n", "reuse"})
    ->ArgsProduct({{1000, 10000, 40000}, {0, 1}});
BENCHMARK(BM_MessageBufferFindKey)->ArgName("n")->Arg(1000)->Arg(10000)->Arg(40000);
BENCHMARK(BM_MessageBufferDeserialize)->ArgName("n")->Arg(1000)->Arg(10000)->Arg(40000);

}  // namespace
}  // namespace fern::micro
