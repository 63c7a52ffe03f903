// The fractal tree through the public API (fern::Env / fern::Table): autocommitted Put and
// Get of 100,000 WORKLOADS.md rows on a tree that fits in the cache, in a scratch directory.
// Commits skip the fsync (Options::sync_commits = false), as in fernbench's fills.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "fern/fern.h"
#include "fernbench/data.h"
#include "micro/micro_util.h"

namespace fern::micro {
namespace {

constexpr uint64_t kKeys = 100'000;  // coprime with the permutation's multiplier

// The rows in fillrandom's order for N = kKeys.
const std::vector<Row>& RowsInRandomOrder() {
  static const std::vector<Row>* rows = [] {
    auto* out = new std::vector<Row>;
    const bench::Permutation order(kKeys);
    out->reserve(kKeys);
    for (uint64_t j = 0; j < kKeys; ++j) out->push_back(MakeRow(order(j)));
    return out;
  }();
  return *rows;
}

// An Env with one table in a scratch directory, the cache far larger than the data.
class ScratchTable {
 public:
  Status Open() {
    if (dir_.path().empty()) return Status::IOError("could not create a scratch directory");
    Options options;
    options.cache_bytes = size_t{512} << 20;
    options.sync_commits = false;
    Status s = Env::Open(dir_.path(), options, &env_);
    if (!s.ok()) return s;
    return env_->OpenTable("micro", TableOptions(), &table_);
  }
  Table* table() const { return table_; }

 private:
  ScratchDir dir_;  // declared first: removed after the Env is closed
  std::unique_ptr<Env> env_;
  Table* table_ = nullptr;  // owned by env_
};

// Exactly kKeys iterations: the random-order fill of an empty table (fillrandom). items/s is
// puts per second.
void BM_TreePut(benchmark::State& state) {
  const std::vector<Row>& rows = RowsInRandomOrder();
  ScratchTable scratch;
  if (!CheckOk(state, scratch.Open(), "open")) return;
  size_t next = 0;
  for (auto _ : state) {
    const Row& row = rows[next++ % rows.size()];
    if (!CheckOk(state, scratch.table()->Put(nullptr, row.key, row.value), "Put")) break;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// Gets of the rows of a table filled with the kKeys rows (outside the timing), in the fill's
// random order. items/s is gets per second; every get must return the row's value.
void BM_TreeGet(benchmark::State& state) {
  const std::vector<Row>& rows = RowsInRandomOrder();
  ScratchTable scratch;
  if (!CheckOk(state, scratch.Open(), "open")) return;
  for (const Row& row : rows) {
    if (!CheckOk(state, scratch.table()->Put(nullptr, row.key, row.value), "Put")) return;
  }
  std::string value;
  size_t next = 0;
  for (auto _ : state) {
    const Row& row = rows[next++ % rows.size()];
    if (!CheckOk(state, scratch.table()->Get(nullptr, row.key, &value), "Get")) break;
    if (value != row.value) {
      state.SkipWithError("Get returned a wrong value");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

BENCHMARK(BM_TreePut)->Iterations(kKeys)->UseRealTime();
BENCHMARK(BM_TreeGet)->UseRealTime();

}  // namespace
}  // namespace fern::micro
