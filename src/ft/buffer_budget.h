// BufferBudget: how many bytes of messages each height-1 node may buffer before it flushes,
// shared by every tree of an Env.
//
// A flush into a leaf that is not cached reads the leaf and, when the leaf is evicted,
// writes it whole, so the bytes written to leaves per message are about the leaf's size
// over the bytes the flush carried down. With a fixed limit per node (node_bytes), a tree
// whose leaves do not fit in the cache rewrites each leaf once per ~node_bytes / fanout of
// messages, however small the tree and however much of the cache its buffers could use.
// fernbench's fillrandom at a 64 MiB cache (N = 2,000,000) wrote 453 MB of leaves for
// 232 MB of rows that way, while its 12 height-1 nodes held ~22 MB of buffers at the end
// and far less while the tree grew.
//
// With a BufferBudget (Options::buffer_budget_percent of the cache), the buffers of height-1
// nodes share that many bytes: each height-1 node may hold the budget divided by the number
// of height-1 nodes in every open tree, never less than node_bytes and never more than
// kMaxGrowth times it, and only while the cache is full (below that, flushed leaves stay
// cached and bigger buffers would buy nothing). Trees report their count (an estimate taken
// from the root, which every write passes) whenever their root may have changed shape, so
// the limit follows the trees as they grow. The price is on the read side: more buffered
// messages for seeks to merge and for the cache to hold, hence off by default (the figures
// are at Options::buffer_budget_percent).
//
// Whatever the option, the buffers of all internal nodes must also fit in the cache together
// with room to spare, or reads thrash: an internal node is read and decompressed whole, and
// a point read passes one at every level. With node_bytes each (2 MiB), a tree with more
// height-1 nodes than the cache holds node_bytes of buffers (1M rows at a 16 MiB cache; 4M at
// 64 MiB) evicted and re-read a multi-MB node on nearly every Get: ~200 reads/s instead of
// ~250k. So every internal node also stays within its share of `fit_bytes` (FitLimit),
// below node_bytes where it must: more flushes, so writes cost more once the tree's
// upper levels outgrow the cache, but reads keep their speed.
//
// Thread-safe.
#ifndef FERN_FT_BUFFER_BUDGET_H_
#define FERN_FT_BUFFER_BUDGET_H_

#include <algorithm>
#include <atomic>
#include <cstddef>

namespace fern {

class BufferBudget {
 public:
  // A height-1 node never buffers more than this many times node_bytes: bigger nodes make
  // each eviction, checkpoint write and query of the node dearer.
  static constexpr size_t kMaxGrowth = 4;

  // `bytes`: what height-1 nodes may grow into once the cache is full (0: no growth past
  // node_bytes). `fit_bytes`: what the buffers of all internal nodes may hold together.
  BufferBudget(size_t bytes, size_t fit_bytes) : bytes_(bytes), fit_bytes_(fit_bytes) {}
  BufferBudget(const BufferBudget&) = delete;
  BufferBudget& operator=(const BufferBudget&) = delete;

  // One tree's count of height-1 nodes changed from `before` (0 for a tree not yet
  // counted) to `after`.
  void Replace(size_t before, size_t after) {
    nodes_.fetch_add(after - before, std::memory_order_relaxed);  // wraps correctly
  }
  // A tree opened (+1) or closed (-1).
  void AddTree(int delta) {
    trees_.fetch_add(static_cast<size_t>(delta), std::memory_order_relaxed);
  }

  // The buffered bytes above which a height-1 node of a tree with `node_bytes` flushes
  // while the cache is full (before FitLimit).
  size_t LimitFor(size_t node_bytes) const {
    if (bytes_ == 0) return node_bytes;
    const size_t nodes = std::max<size_t>(1, nodes_.load(std::memory_order_relaxed));
    return std::clamp(bytes_ / nodes, node_bytes, node_bytes * kMaxGrowth);
  }
  // The most any one internal node may buffer: an even share of fit_bytes among the
  // height-1 nodes (the nodes above them are far fewer), but at least `floor`.
  size_t FitLimit(size_t floor) const {
    const size_t nodes = std::max<size_t>(1, nodes_.load(std::memory_order_relaxed));
    return std::max(floor, fit_bytes_ / nodes);
  }

  size_t bytes() const { return bytes_; }
  size_t nodes() const { return nodes_.load(std::memory_order_relaxed); }
  size_t trees() const { return trees_.load(std::memory_order_relaxed); }

 private:
  const size_t bytes_;
  const size_t fit_bytes_;
  std::atomic<size_t> nodes_{0};
  std::atomic<size_t> trees_{0};
};

}  // namespace fern

#endif  // FERN_FT_BUFFER_BUDGET_H_
