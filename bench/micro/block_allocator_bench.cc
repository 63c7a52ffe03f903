// BlockAllocator (ft/block_allocator.h): the churn of a tree file across checkpoints, where
// blocks of assorted sizes are freed and new ones allocated.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "ft/block_allocator.h"
#include "micro/micro_util.h"

namespace fern::micro {
namespace {

constexpr size_t kChoices = 4096;  // a power of two

// Arg: live blocks. The allocator starts with that many blocks of 4 KiB to 1 MiB (compressed
// nodes); one iteration frees a random live block and allocates a block of a random size in
// its place, so the file fragments as a long-running tree file would. items/s is
// Free+Allocate pairs per second; `holes` is the free extents left at the end.
void BM_BlockAllocatorChurn(benchmark::State& state) {
  const size_t live = static_cast<size_t>(state.range(0));
  constexpr uint64_t kMaxBlockBytes = uint64_t{1} << 20;
  const std::vector<uint64_t> sizes = RandomIndexes(kChoices, kMaxBlockBytes, /*seed=*/3);
  const std::vector<uint64_t> victims = RandomIndexes(kChoices, live, /*seed=*/4);
  BlockAllocator allocator(2 * BlockAllocator::kAlignment);
  struct Block {
    uint64_t offset;
    uint64_t size;
  };
  std::vector<Block> blocks;
  for (size_t i = 0; i < live; ++i) {
    uint64_t size = sizes[i & (kChoices - 1)] + 1;
    blocks.push_back(Block{allocator.Allocate(size), size});
  }
  size_t next = 0;
  for (auto _ : state) {
    Block& victim = blocks[victims[next & (kChoices - 1)]];
    allocator.Free(victim.offset, victim.size);
    victim.size = sizes[(next + live) & (kChoices - 1)] + 1;
    victim.offset = allocator.Allocate(victim.size);
    ++next;
  }
  state.counters["holes"] = static_cast<double>(allocator.free_extent_count());
  state.counters["free_pct"] = 100.0 * static_cast<double>(allocator.free_bytes()) /
                               static_cast<double>(allocator.file_end());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

BENCHMARK(BM_BlockAllocatorChurn)->ArgName("live")->Arg(1000)->Arg(10000);

}  // namespace
}  // namespace fern::micro
