// Cachetable (cachetable/cachetable.h): the hit path, Pin then Unpin of a cached pair, with
// a read (shared) or write (exclusive) lock, from one thread or two.
#include <benchmark/benchmark.h>

#include <memory>

#include "cachetable/cachetable.h"
#include "micro/micro_util.h"

namespace fern::micro {
namespace {

class FixedValue final : public CacheValue {
 public:
  size_t MemoryBytes() const override { return size_t{64} << 10; }
};

// Never called: every pair is created with PinNew and stays cached (the budget is far above
// what the pairs hold).
class NoIoOwner final : public CacheFileOwner {
 public:
  Status FetchBlock(BlockNum block, std::unique_ptr<CacheValue>* value) override {
    return Status::IOError("the benchmark's pairs are never fetched");
  }
  Status WriteBlock(BlockNum block, CacheValue* value) override {
    return Status::IOError("the benchmark's pairs are never written");
  }
};

constexpr int kMaxThreads = 2;

// Built by thread 0 before the timed loop; the other threads touch it only inside the loop,
// which starts after a barrier, and thread 0 tears it down after the closing barrier.
struct SharedCache {
  NoIoOwner owner;
  Cachetable cache{size_t{64} << 20};
  CacheFileId file = 0;
};
SharedCache* shared_cache = nullptr;

// Args: lock (0 read, 1 write); shared (1: every thread pins block 0; 0: thread t pins its
// own block t + 1, so only the table's mutex is shared). items/s is Pin+Unpin pairs per
// second over all threads.
void BM_CachetablePinUnpin(benchmark::State& state) {
  const Cachetable::Lock lock =
      state.range(0) != 0 ? Cachetable::Lock::kWrite : Cachetable::Lock::kRead;
  const BlockNum block = state.range(1) != 0 ? 0 : state.thread_index() + 1;
  if (state.thread_index() == 0) {
    shared_cache = new SharedCache;
    shared_cache->file = shared_cache->cache.OpenFile(&shared_cache->owner);
    for (BlockNum b = 0; b <= kMaxThreads; ++b) {
      PinnedPair pin;
      shared_cache->cache.PinNew(shared_cache->file, b, std::make_unique<FixedValue>(), &pin);
    }
  }
  for (auto _ : state) {
    PinnedPair pin;
    if (!CheckOk(state, shared_cache->cache.Pin(shared_cache->file, block, lock, &pin), "Pin")) {
      break;
    }
    benchmark::DoNotOptimize(pin.value());
    pin.Unpin();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  if (state.thread_index() == 0) {
    CachetableStats stats = shared_cache->cache.stats();
    if (stats.misses != 0) state.SkipWithError("a pin missed the cache");
    CheckOk(state, shared_cache->cache.CloseFile(shared_cache->file, /*write_dirty=*/false),
            "CloseFile");
    delete shared_cache;
    shared_cache = nullptr;
  }
}

BENCHMARK(BM_CachetablePinUnpin)->ArgNames({"write", "shared"})->Args({0, 1})->Args({1, 1});
BENCHMARK(BM_CachetablePinUnpin)
    ->ArgNames({"write", "shared"})
    ->ArgsProduct({{0, 1}, {1, 0}})
    ->Threads(kMaxThreads)
    ->UseRealTime();

}  // namespace
}  // namespace fern::micro
