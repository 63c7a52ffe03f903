// BlockAllocator: decides where in a tree file a block's bytes go.
//
// The file is a sequence of kAlignment-sized units. [0, reserved_bytes) (the two header
// slots) is never handed out. Above it, every byte below file_end() is either allocated or
// in a free extent ("hole"); nothing past file_end() is allocated. Free extents are kept
// coalesced, and a free extent never touches file_end() (freeing the tail shrinks the file
// instead), so file_end() - reserved == allocated_bytes() + free_bytes() always.
//
// Placement is best fit: the smallest hole that holds the request, lowest offset among
// equals; the file is extended only when no hole fits. Best fit keeps large holes whole for
// the large blocks (whole nodes) while small rewrites (the block table, small leaves) fill
// the small holes, which keeps the file compact when the same blocks are rewritten at every
// checkpoint.
//
// Blocks that grow with each rewrite (leaves filling up) outgrow every hole their earlier
// versions left, so best fit alone strands those holes: a fillrandom of 2M rows at a 64 MiB
// cache left 12-15% of its file in holes of up to 850 KiB between ~1 MiB leaves.
// AllocateSplittable therefore lets such a block take the largest hole for its first part
// and a second place (best fit, or the end) for the rest; the same run then left 0.3%.
//
// Sizes are rounded up to kAlignment (an empty block still takes one unit, so every block
// has a distinct offset); Free and MarkAllocated must be given the same size (aligned or
// not) that was allocated.
//
// Thread-safety: none. BlockTable owns one and calls it under its own mutex.
#ifndef FERN_FT_BLOCK_ALLOCATOR_H_
#define FERN_FT_BLOCK_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <utility>

namespace fern {

class BlockAllocator {
 public:
  static constexpr uint64_t kAlignment = 4096;

  // [0, reserved_bytes rounded up to kAlignment) is never handed out.
  explicit BlockAllocator(uint64_t reserved_bytes);

  // The bytes a block of `size` bytes occupies: `size` rounded up to kAlignment, at least
  // one unit.
  static uint64_t AlignedSize(uint64_t size);

  // Returns a kAlignment-aligned offset of AlignedSize(size) bytes nobody else holds.
  uint64_t Allocate(uint64_t size);

  // Space for a block that may lie in two extents: bytes [0, head_bytes) at `offset` and
  // the rest at `tail_offset`. Like Allocate (head_bytes 0, tail_offset 0: one extent)
  // when a hole holds the whole block or no hole reaches kMinSplitHead; otherwise the
  // largest hole takes the head (its whole size, so head_bytes is a multiple of
  // kAlignment and less than `size`) and the rest goes where Allocate would put it.
  // Free each extent with FreeSplittable.
  struct Placement {
    uint64_t offset = 0;
    uint64_t head_bytes = 0;
    uint64_t tail_offset = 0;
  };
  static constexpr uint64_t kMinSplitHead = uint64_t{64} << 10;
  Placement AllocateSplittable(uint64_t size);
  // Like AllocateSplittable, wholly below `limit` and never extending the file (for moving
  // blocks down: BlockTable::TailBlocks): one hole below the limit if one holds the block,
  // else the largest hole below it (at least kMinSplitHead) for the head and the best fit
  // below it for the rest. {0, 0, 0}, with nothing taken, when neither works.
  Placement AllocateSplittableBelow(uint64_t size, uint64_t limit);
  // Frees what AllocateSplittable(size) returned as `placement`.
  void FreeSplittable(const Placement& placement, uint64_t size);

  // Like Allocate, but only from a hole that holds the block wholly below `limit` (best
  // fit among those); never extends the file. Returns 0 when no such hole exists. For
  // moving blocks down the file (BlockTable::TailBlocks).
  uint64_t AllocateBelow(uint64_t size, uint64_t limit);

  // Returns [offset, offset + AlignedSize(size)) to the free space, merging it with
  // neighbouring holes; if it ends at file_end(), file_end() shrinks. REQUIRES: the range
  // is allocated (a violation asserts in debug builds and is ignored otherwise).
  void Free(uint64_t offset, uint64_t size);
  // Like Free, but returns false and changes nothing when the range is not wholly allocated
  // (double free, unaligned, inside the reserved area, or past file_end()).
  bool TryFree(uint64_t offset, uint64_t size);

  // Marks a range as allocated, as when rebuilding from a loaded block table (ranges may
  // come in any order). REQUIRES: the range is free (asserts in debug builds).
  void MarkAllocated(uint64_t offset, uint64_t size);
  // Like MarkAllocated, but returns false and changes nothing when the range overlaps the
  // reserved area or an allocated range, or is unaligned: a loaded table that does this is
  // corrupt.
  bool TryMarkAllocated(uint64_t offset, uint64_t size);

  uint64_t reserved_bytes() const { return reserved_; }
  // End of the highest allocated byte (aligned); reserved_bytes() when nothing is allocated.
  uint64_t file_end() const { return file_end_; }
  // Sum of the aligned sizes of all allocated ranges.
  uint64_t allocated_bytes() const { return file_end_ - reserved_ - free_bytes_; }
  // Sum of the holes below file_end().
  uint64_t free_bytes() const { return free_bytes_; }
  size_t free_extent_count() const { return free_by_offset_.size(); }

  // Visits the holes in ascending offset order (for tests and ftdump).
  template <typename Fn>
  void ForEachFreeExtent(Fn&& fn) const {
    for (const auto& [offset, size] : free_by_offset_) fn(offset, size);
  }

 private:
  void InsertFree(uint64_t offset, uint64_t size);
  void EraseFree(std::map<uint64_t, uint64_t>::iterator it);

  uint64_t reserved_;
  uint64_t file_end_;
  uint64_t free_bytes_ = 0;
  // The holes, keyed by offset (value: size), and the same holes keyed by (size, offset)
  // for best-fit search. Both always hold the same set.
  std::map<uint64_t, uint64_t> free_by_offset_;
  std::set<std::pair<uint64_t, uint64_t>> free_by_size_;
};

}  // namespace fern

#endif  // FERN_FT_BLOCK_ALLOCATOR_H_
