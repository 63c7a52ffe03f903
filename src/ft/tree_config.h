// The per-tree settings every tree module reads.
#ifndef FERN_FT_TREE_CONFIG_H_
#define FERN_FT_TREE_CONFIG_H_

#include <cstdint>

#include "fern/options.h"

namespace fern {

class BasementAdmission;
class BasementPool;
class BufferBudget;
class ThreadPool;

struct TreeConfig {
  const Comparator* comparator = nullptr;
  Compression compression = Compression::kZstd;
  int compression_level = 0;
  // A leaf splits when its rows serialize to more than node_bytes; an internal node is
  // "gorged" (flushes its heaviest child buffer) when its buffers hold more than this.
  uint32_t node_bytes = TableOptions().node_bytes;
  // A basement splits when it serializes to more than this (TableOptions' default).
  uint32_t basement_bytes = TableOptions().basement_bytes;
  // An internal node splits above this many children and merges below a quarter of it.
  uint32_t fanout = 16;
  const UpdateFunction* update_function = nullptr;  // may be null: Update is then rejected
  ThreadPool* compression_pool = nullptr;           // compresses partitions in parallel when set
  // Flushes the nodes writers leave gorged, off the writers' threads; null: writers flush
  // themselves. Must outlive the tree (the tree waits for its own tasks at Close).
  ThreadPool* flusher_pool = nullptr;
  // Runs cursor readahead (FractalTree::ReadAhead); null: no readahead. Must outlive the
  // tree, like flusher_pool.
  ThreadPool* readahead_pool = nullptr;
  // Where partial eviction leaves evicted basements' memory and basement reads take it
  // from; null: they free and allocate. Must outlive the tree.
  BasementPool* basement_pool = nullptr;
  // Decides whether a point read keeps a basement it read from disk while the cache is
  // full; null: it always does. Must outlive the tree.
  BasementAdmission* admission = nullptr;
  // Lets height-1 nodes buffer more than node_bytes while the Env's trees are small next to
  // the cache (ft/buffer_budget.h); null: node_bytes. Must outlive the tree.
  BufferBudget* buffer_budget = nullptr;
  // Whether what is read from disk (basements, internal nodes' message buffers) goes to
  // chunk memory (util/chunk_allocator.h): worth it for large caches, where a miss mostly
  // costs the page faults of fresh memory (per 4 KiB page without chunks, per 2 MiB with
  // them). chunk_memory_for_basement_loads limits that to basements loaded one at a time
  // (reads): leaves loaded whole for writes and message buffers come in many sizes and
  // would leave many size classes partly used, slack a small cache would rather not hold.
  bool chunk_memory = false;
  bool chunk_memory_for_basement_loads = false;
};

}  // namespace fern

#endif  // FERN_FT_TREE_CONFIG_H_
