// BlockTable: the block translation table of one tree file. It maps block numbers (the
// names tree nodes use for each other) to where their bytes are on disk, and owns the
// BlockAllocator that places them.
//
// Versions. The table is kept in up to three versions, each a map BlockNum -> location:
//   current       what the live tree uses; every WriteBlock/FreeBlock changes it.
//   in_progress   a snapshot of current taken when a checkpoint begins; it is what that
//                 checkpoint writes to disk. Writers keep changing current meanwhile; the
//                 checkpointer's own writes of nodes as they were at the begin (pending
//                 nodes or their clones, `for_checkpoint`) go to both.
//   checkpointed  what the last complete checkpoint's on-disk table says.
// Copy-on-write rule: an extent named by checkpointed or in_progress is never reused until
// no checkpoint version names it any more, so a crash at any moment (including during a
// checkpoint) leaves the last complete checkpoint intact. Concretely, when an extent leaves
// current (its block is rewritten elsewhere or freed) it is freed at once only if neither
// checkpoint version names it; otherwise CompleteCheckpoint (or AbortCheckpoint) frees it
// once the surviving versions no longer do. Every extent belongs to exactly one block
// number, so "a version names extent E of block b" is "that version's entry for b has E's
// offset".
//
// Block numbers. Number 0 (kTableBlockNum) stands for the serialized table itself: its
// location is stored in the file header, not in the table, but keeping it as entry 0 of the
// in-progress and checkpointed versions lets the copy-on-write rule protect the last
// checkpoint's table like any other block. Node numbers start at kFirstBlockNum and are
// reused lowest first, but a freed number is reused only once no checkpoint version names
// it, so a number never denotes two different nodes in live versions.
//
// On-disk format of the serialized table (all integers little-endian; see
// docs/tree_file_format.md):
//   offset      size  meaning
//   0           4     magic "FTBT"
//   4           4     format version: 1, or 2 when some block is split
//   8           8     N, the number of entries
//   16          E*N   entries in ascending block-number order (E = 24 in version 1, 40 in
//                     version 2), each:
//                       +0  8  block number (>= kFirstBlockNum, < kMaxBlockNum)
//                       +8  8  offset in the file (multiple of 4096, >= kReservedFileBytes,
//                              <= kMaxFileBytes)
//                       +16 8  size in bytes (<= kMaxBlockBytes)
//                     and in version 2:
//                       +24 8  head bytes: 0 for one extent, else the bytes at `offset`
//                              (a multiple of 4096, below the size)
//                       +32 8  tail offset: where the rest is (0 for one extent)
//   16+E*N      8     Checksum64 of bytes [0, 16+E*N)
// Blocks that are allocated but not yet written have no entry. Version 1 is written while
// no block is split, so files without split blocks stay readable by older builds.
//
// Thread-safety: every method may be called from any thread (one internal mutex, held only
// for in-memory work). Calls about one block number must be ordered by the caller (the
// cachetable's pair lock does this); checkpoint calls (BeginCheckpoint ... Complete/Abort)
// come from one checkpointing thread at a time.
#ifndef FERN_FT_BLOCK_TABLE_H_
#define FERN_FT_BLOCK_TABLE_H_

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "cachetable/cachetable.h"
#include "fern/status.h"
#include "ft/block_allocator.h"
#include "util/mutex.h"

namespace fern {

// Where a block's bytes are. Most blocks are one extent, [offset, offset + size). A block
// placed in two holes (BlockAllocator::AllocateSplittable) has its first head_bytes at
// `offset` and the rest at tail_offset. Extents never overlap, so `offset` alone names a
// location among the live ones.
struct BlockLocation {
  uint64_t offset = 0;  // 0: no space (offset 0 is the header area, never a block)
  uint64_t size = 0;
  uint64_t head_bytes = 0;   // 0: one extent; else a multiple of 4096 below size
  uint64_t tail_offset = 0;  // where bytes [head_bytes, size) are, when split

  bool split() const { return head_bytes != 0; }
  // The file offset of the block's byte `at` (< size).
  uint64_t FileOffset(uint64_t at) const {
    return split() && at >= head_bytes ? tail_offset + (at - head_bytes) : offset + at;
  }
  // The end of the block's highest extent, rounded up to whole 4096-byte units.
  uint64_t AlignedEnd() const;
  // The bytes its extents occupy, rounded up to whole units.
  uint64_t AlignedBytes() const;

  bool operator==(const BlockLocation&) const = default;
};

class BlockTable {
 public:
  static constexpr uint32_t kBlockTableFormatVersion = 2;  // the newest this build reads
  // The two 4096-byte header slots at the start of the file (file_header.h).
  static constexpr uint64_t kReservedFileBytes = 2 * 4096;
  static constexpr BlockNum kTableBlockNum = 0;
  static constexpr BlockNum kFirstBlockNum = 1;
  // Limits a loaded table must respect. A loaded table's memory follows its entries, not
  // its highest number (versions are maps and free numbers ranges).
  static constexpr BlockNum kMaxBlockNum = BlockNum{1} << 32;
  static constexpr uint64_t kMaxBlockBytes = uint64_t{1} << 36;  // 64 GiB
  // No extent of a loaded table starts past this (4 PiB), so that the file's end plus any
  // number of later blocks stays far from overflowing 64 bits.
  static constexpr uint64_t kMaxFileBytes = uint64_t{1} << 52;

  BlockTable();  // empty: only the reserved block numbers exist
  BlockTable(const BlockTable&) = delete;
  BlockTable& operator=(const BlockTable&) = delete;

  // A number for a new node, with no space yet (Lookup reports it as not written).
  BlockNum AllocateBlockNum();
  // The node is gone: its space is released per the copy-on-write rule and its number
  // becomes reusable once no checkpoint version names it. Unknown numbers are ignored
  // (asserts in debug builds).
  void FreeBlockNum(BlockNum b);
  bool IsAllocated(BlockNum b) const;

  // The current location of b. Corruption("block N is not allocated") when b is not in use,
  // Corruption("block N ... has not been written") when it has no space yet.
  Status Lookup(BlockNum b, BlockLocation* loc) const;

  // Picks new space for block b about to be (re)written with `size` bytes and records it in
  // current. The old location is freed at once if only current named it, else when the
  // checkpoints naming it are superseded. The new space (one extent, or two when no hole
  // holds the block: BlockAllocator::AllocateSplittable) never overlaps b's previous one.
  // Returns {0, 0} (and asserts in debug builds) if b is not allocated.
  BlockLocation Relocate(BlockNum b, uint64_t size);
  // Relocate in two steps, so that a failed write leaves b's old contents in place:
  // AllocateSpace reserves space (named by no version yet); then either SetLocation records
  // it for b (releasing b's old location as Relocate does) or ReleaseSpace gives it back.
  // With `for_checkpoint` during a checkpoint, the bytes are b as of the checkpoint's begin
  // (see below): the location replaces b's entry in the in-progress version, and in
  // current too unless b was written without the flag since the begin (current then keeps
  // that newer write). Without a checkpoint in progress the flag has no effect.
  // InvalidArgument if b is not allocated.
  BlockLocation AllocateSpace(uint64_t size);
  Status SetLocation(BlockNum b, BlockLocation loc, bool for_checkpoint = false);
  void ReleaseSpace(BlockLocation loc);

  // Tail compaction, at the end of a checkpoint (TreeFile::EndCheckpoint), after every
  // write for it. Copy on write leaves a file up to twice what a checkpoint needs after
  // heavy rewriting, with the live blocks spread over all of it; moving the highest ones
  // into holes lower down lets CompleteCheckpoint free their old extents at the file's end,
  // where the trim after it cuts them off.
  //   TailBlocks(&line): when the file ends more than half (and 8 MiB) past what the
  //     in-progress version needs, the blocks it names that end above `line` (an eighth, at
  //     least 1 MiB, past that need), highest first; only blocks not rewritten or freed
  //     since the begin and with no clone write outstanding (a clone reads its source
  //     extent, which a move may free). Empty otherwise, or without a checkpoint in
  //     progress.
  //   AllocateSpaceBelow(size, line): space wholly below `line` (best fit; two extents when
  //     no hole below it holds the block: BlockAllocator::AllocateSplittableBelow), named by no
  //     version yet; {0, 0} if no hole holds it. Never extends the file.
  //   MoveBlock(b, from, to): `to` holds a copy of from's bytes. Records it for b in the
  //     in-progress version, and in current where current still says `from`, and releases
  //     `from` per the copy-on-write rule (at once if only those versions named it).
  //     False, changing nothing, if the in-progress version no longer names `from` for b:
  //     the caller then releases `to`.
  // Readers must not hold a location of b looked up before a MoveBlock past it: `from`
  // may be reused at once (TreeFile excludes its readers around the moves).
  std::vector<std::pair<BlockNum, BlockLocation>> TailBlocks(uint64_t* line) const;
  BlockLocation AllocateSpaceBelow(uint64_t size, uint64_t line);
  bool MoveBlock(BlockNum b, BlockLocation from, BlockLocation to);

  // Checkpoint clones: copies of nodes taken after the begin, written later while the
  // original goes on changing, being rewritten or freed.
  //   PrepareCloneWrite(b, &source): b holds its contents as of the begin (it has not been
  //     written since) and a clone of it will be written. Sets *source to b's location in
  //     the in-progress version ({0, 0}: never written), which stays allocated (in_progress
  //     names it) until the clone's location replaces it, so the clone may read unchanged
  //     frames from it. If b is freed meanwhile its number stays out of reuse until no
  //     checkpoint version names it. InvalidArgument if b is not allocated, without a
  //     checkpoint in progress, or if b was written since the begin.
  //   SetCloneLocation(b, loc): records the clone's extent in the in-progress version only;
  //     current keeps whatever the original's own writes put there (or nothing, once b is
  //     freed), so the newer version always wins in current. InvalidArgument if no
  //     PrepareCloneWrite of b is outstanding in this checkpoint (the caller then releases
  //     `loc`).
  // Outstanding clone writes are forgotten when the checkpoint completes or aborts.
  Status PrepareCloneWrite(BlockNum b, BlockLocation* source);
  Status SetCloneLocation(BlockNum b, BlockLocation loc);

  // The current version in the format above.
  std::string SerializeCurrent() const;
  // Parses a serialized table into `out`, which becomes current and checkpointed, with the
  // allocator rebuilt from it. With `table_location` (where `in` was read from), that
  // space is held as the checkpointed table's own (TreeFile::Open uses this form so the
  // first writes after opening cannot overwrite the table the header points at). Bad
  // magic/version/checksum, a wrong length, unordered or out-of-range numbers, offsets or
  // sizes, and overlapping extents are Corruption naming what was wrong; `out` is then
  // unchanged. REQUIRES: no other thread uses `out`.
  static Status Deserialize(std::string_view in, BlockTable* out);
  static Status Deserialize(std::string_view in, BlockLocation table_location, BlockTable* out);

  // Checkpoint protocol, one checkpoint at a time:
  //   1. BeginCheckpoint: in_progress := current. Writers may go on changing current from
  //      here on. A sharp checkpointer calls it while it marks the dirty nodes pending and
  //      then writes them (or their clones) with SetLocation(..., for_checkpoint = true).
  //   2. SerializeCheckpoint: the in-progress version as bytes.
  //   3. AllocateTableSpace(their size): space for the table, named by in_progress (with a
  //      `below` limit, wholly below it when a hole there holds it: after tail compaction,
  //      so that the table does not keep the file's end up).
  //   4. The caller writes the table there, fsyncs, writes and fsyncs the header.
  //   5. CompleteCheckpoint(that location): checkpointed := in_progress; frees the extents
  //      only the old checkpoint named (including its table). Or, if the header may not
  //      have been written, AbortCheckpoint: drops in_progress, freeing what only it named.
  // The two-version protocol of a caller that excludes writers itself also works: it
  // calls SerializeCurrent, then AllocateTableSpace (which begins the checkpoint, taking
  // the same snapshot) and CompleteCheckpoint.
  void BeginCheckpoint();
  std::string SerializeCheckpoint() const;
  BlockLocation AllocateTableSpace(uint64_t size, uint64_t below = 0);
  void CompleteCheckpoint(BlockLocation table_location);
  void AbortCheckpoint();
  bool checkpoint_in_progress() const;
  // True when no checkpoint is in progress and every block is where the last complete
  // checkpoint put it: nothing was written, moved or freed since.
  bool UnchangedSinceCheckpoint() const;
  // Where the last complete checkpoint's table is ({0, 0} if none).
  BlockLocation checkpointed_table_location() const;

  struct Stats {
    uint64_t blocks;        // written blocks in current
    uint64_t used_bytes;    // allocated bytes, including extents held only for checkpoints
    uint64_t free_bytes;    // holes below file_bytes
    uint64_t file_bytes;    // end of the highest allocated byte
    uint64_t split_blocks;  // written blocks in current that lie in two extents
  };
  // Counts the split blocks by visiting every block: for reports, not hot paths.
  Stats stats() const;
  // stats().file_bytes without the visit.
  uint64_t file_bytes() const;

  // Calls fn for every written block of the current version, in ascending number order.
  // Runs under the table's mutex: fn must not call back into this table.
  void ForEachBlock(const std::function<void(BlockNum, BlockLocation)>& fn) const;

 private:
  // One version: the locations of the blocks it names, by number; a number it does not
  // name reads as {0, 0}. A map, not a vector indexed by number, so that memory follows
  // the blocks, not the highest number (a table naming block 2^32 - 1 alone takes one entry).
  struct Translation {
    absl::btree_map<BlockNum, BlockLocation> locations;

    BlockLocation at(BlockNum b) const {
      auto it = locations.find(b);
      return it == locations.end() ? BlockLocation{} : it->second;
    }
    void Set(BlockNum b, BlockLocation loc);
  };
  // The free numbers below next_number_, as disjoint ranges [first, last] keyed by first:
  // a loaded table's gaps take one range each, however wide.
  class FreeNumbers {
   public:
    bool empty() const { return ranges_.empty(); }
    BlockNum TakeLowest();  // REQUIRES: !empty()
    void Insert(BlockNum b);
    void InsertRange(BlockNum first, BlockNum last);
    void Clear() { ranges_.clear(); }

   private:
    absl::btree_map<BlockNum, BlockNum> ranges_;
  };
  // A number not free (free numbers are in free_numbers_ or at or above next_number_).
  enum class NumberState : uint8_t {
    kInUse,    // handed out by AllocateBlockNum (or loaded)
    kRetired,  // freed, but a checkpoint version still names it
  };

  bool InUseLocked(BlockNum b) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  BlockLocation AllocateLocked(uint64_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FreeLocked(const BlockLocation& loc) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // b's extent `loc` has left current or in_progress: free it unless a version names it.
  void ReleaseIfUnnamedLocked(BlockNum b, BlockLocation loc) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees every extent of `dropped` that neither `kept` nor current names.
  void FreeDroppedExtentsLocked(const Translation& dropped, const Translation& kept)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Retired numbers that `kept` (the surviving checkpoint version) does not name become free.
  void ReleaseRetiredNumbersLocked(const Translation& kept) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BeginCheckpointLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static std::string Serialize(const Translation& t);

  mutable Mutex mu_;
  BlockAllocator allocator_ ABSL_GUARDED_BY(mu_);
  Translation current_ ABSL_GUARDED_BY(mu_);
  Translation checkpointed_ ABSL_GUARDED_BY(mu_);
  Translation in_progress_ ABSL_GUARDED_BY(mu_);
  bool checkpoint_in_progress_ ABSL_GUARDED_BY(mu_) = false;
  // The state of every number below next_number_ that is not free (absent: free); numbers
  // below kFirstBlockNum are never handed out.
  absl::flat_hash_map<BlockNum, NumberState> number_state_ ABSL_GUARDED_BY(mu_);
  BlockNum next_number_ ABSL_GUARDED_BY(mu_) = kFirstBlockNum;  // the lowest never handed out
  FreeNumbers free_numbers_ ABSL_GUARDED_BY(mu_);
  std::vector<BlockNum> retired_numbers_ ABSL_GUARDED_BY(mu_);
  uint64_t written_blocks_ ABSL_GUARDED_BY(mu_) = 0;
  // Blocks with a PrepareCloneWrite whose SetCloneLocation has not come yet.
  std::set<BlockNum> clone_writes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fern

#endif  // FERN_FT_BLOCK_TABLE_H_
