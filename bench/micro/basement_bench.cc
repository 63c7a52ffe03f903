// Basement (ft/basement.h): applying autocommitted inserts to a full partition, and the
// binary searches reads use.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "fern/options.h"
#include "ft/basement.h"
#include "ft/message.h"
#include "micro/micro_util.h"

namespace fern::micro {
namespace {

constexpr size_t kBasementBytes = size_t{64} << 10;  // TableOptions::basement_bytes
constexpr uint64_t kFirstKey = 1'000'000;
constexpr size_t kProbes = 4096;  // a power of two

// One iteration applies one autocommitted insert of a random key of the basement (an
// overwrite: the entry is re-encoded at the arena's end, and the arena compacted when half
// of it is garbage). items/s is messages applied per second.
void BM_BasementApplyOverwrite(benchmark::State& state) {
  Basement basement;
  const size_t rows = FillBasement(kFirstKey, kBasementBytes, &basement);
  const std::vector<uint64_t> picks = RandomIndexes(kProbes, rows, /*seed=*/1);
  std::vector<Row> updates;
  for (size_t i = 0; i < kProbes; ++i) updates.push_back(MakeRow(kFirstKey + picks[i], rows + i));
  ApplyContext ctx;
  ctx.cmp = BytewiseComparator();
  Msn msn = basement.max_msn();
  size_t next = 0;
  for (auto _ : state) {
    const Row& row = updates[next++ & (kProbes - 1)];
    basement.Apply(Message{MessageType::kInsert, ++msn, XidStack(), row.key, row.value}, ctx);
  }
  if (basement.count() != rows) state.SkipWithError("overwrites changed the row count");
  state.counters["rows"] = static_cast<double>(rows);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// Keys to probe: present keys of the basement, or (for misses) keys between them.
std::vector<std::string> ProbeKeys(size_t rows, bool present) {
  std::vector<std::string> keys;
  for (uint64_t pick : RandomIndexes(kProbes, rows, /*seed=*/2)) {
    std::string key = MakeRow(kFirstKey + pick).key;
    if (!present) key.push_back('x');  // sorts right after a held key
    keys.push_back(std::move(key));
  }
  return keys;
}

// Arg: 1 to probe held keys, 0 for keys that are absent. items/s is lookups per second.
void BM_BasementFind(benchmark::State& state) {
  const bool present = state.range(0) != 0;
  Basement basement;
  const size_t rows = FillBasement(kFirstKey, kBasementBytes, &basement);
  const std::vector<std::string> keys = ProbeKeys(rows, present);
  const Comparator& cmp = *BytewiseComparator();
  size_t next = 0;
  size_t hits = 0;
  for (auto _ : state) {
    size_t index;
    hits += basement.Find(keys[next++ & (kProbes - 1)], cmp, &index);
    benchmark::DoNotOptimize(index);
  }
  if ((hits == static_cast<size_t>(state.iterations())) != present)
    state.SkipWithError("Find answered wrongly");
  state.counters["rows"] = static_cast<double>(rows);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_BasementLowerBound(benchmark::State& state) {
  Basement basement;
  const size_t rows = FillBasement(kFirstKey, kBasementBytes, &basement);
  const std::vector<std::string> keys = ProbeKeys(rows, /*present=*/false);
  const Comparator& cmp = *BytewiseComparator();
  size_t next = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(basement.LowerBound(keys[next++ & (kProbes - 1)], cmp));
  }
  state.counters["rows"] = static_cast<double>(rows);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

BENCHMARK(BM_BasementApplyOverwrite);
BENCHMARK(BM_BasementFind)->ArgName("present")->Arg(1)->Arg(0);
BENCHMARK(BM_BasementLowerBound);

}  // namespace
}  // namespace fern::micro
