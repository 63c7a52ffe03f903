// TreeFile: one table file (`*.ft`) on disk — its two header slots, its block translation
// table and the placement of blocks — behind one facade. The tree code hands it serialized
// nodes by block number; TreeFile decides where they go and makes a set of them durable as
// a checkpoint. The layout is documented in docs/tree_file_format.md, file_header.h and
// block_table.h.
//
// Crash safety. Every WriteBlock goes to fresh space (copy on write) and nothing the last
// complete checkpoint names is overwritten until a newer checkpoint's header is durable.
// Checkpoint writes the table to fresh space, fsyncs (data blocks and table), then writes
// the header to the slot the previous checkpoint did not use and fsyncs again. So after a
// crash at any moment -- or after simply dropping the TreeFile without a checkpoint --
// Open returns exactly the state of the last complete checkpoint.
//
// Failures. A failed WriteBlock leaves the block's previous contents in place. A failed
// table write aborts the checkpoint and leaves the file usable. A failed fsync or header
// write makes the file's durable state uncertain (the kernel may have dropped the dirty
// pages, or the new header may be on disk); the TreeFile then refuses further writes and
// checkpoints with that error, holding on to every extent either header could name, and
// must be reopened (recovery replays the log from the surviving checkpoint).
//
// Thread-safety: every method may be called from any thread. Reads and writes of different
// blocks proceed in parallel (positional I/O, no lock held during I/O). Calls about the
// same block must be ordered by the caller (the cachetable's pair lock does this).
// Checkpoint calls are serialized internally; WriteBlock/FreeBlock may run concurrently
// with a checkpoint, which captures the table as of its begin (blocks written after that
// point stay in the current version for the next checkpoint).
#ifndef FERN_FT_TREE_FILE_H_
#define FERN_FT_TREE_FILE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cachetable/cachetable.h"
#include "fern/status.h"
#include "ft/block_table.h"
#include "ft/file_header.h"
#include "util/file.h"
#include "util/mutex.h"

namespace fern {

// What a checkpoint does about a file that ends far past what it needs (TreeFile::CompactTail,
// BlockTable::TailBlocks).
enum class TailCompaction {
  kNone,
  // Moves the highest blocks into holes lower down, up to TreeFile::kMaxCompactBytes.
  kBounded,
  // For a close, which should not wait for copies: moves them only when all of them come
  // to at most TreeFile::kSmallCompactBytes, so that a table emptied by deletes gives its
  // space back at once while a large rewritten one waits for the next open's checkpoints;
  // and when completing the checkpoint leaves such a small tail, takes one more
  // (CheckpointAgainIfTailIsSmall).
  kIfSmall,
};

class TreeFile {
 public:
  // Creates a new file whose header is `header` with checkpoint_count 0, an empty block
  // table, the current format version (version 1 if header.format_version is 1: for tests
  // of older files) and a new random file_uid (created_unix_seconds is set to now if 0),
  // written to both slots and fsynced, as is the directory entry. AlreadyExists if the path
  // exists; InvalidArgument if the comparator name is longer than MaxComparatorNameBytes.
  // On an I/O failure the partly written file is removed.
  static Status Create(const std::string& path, const FileHeader& header,
                       std::unique_ptr<TreeFile>* out);
  // Opens an existing file: reads both header slots, takes the valid one with the highest
  // checkpoint_count (if one slot is damaged the other is used), reads the block table it
  // names and verifies it. Corruption naming the path and the reason when neither slot is
  // valid, when the table is damaged or lies past the end of the file, or when the file is
  // shorter than the header area ("truncated"). NotFound if the file does not exist.
  // `read_only` opens O_RDONLY (for ftdump/ftverify); writes then fail with NotSupported.
  // Blocks lying past the end of the file are reported by ReadBlock, not here, so that
  // ftverify can still examine the rest of a truncated file.
  static Status Open(const std::string& path, bool read_only, std::unique_ptr<TreeFile>* out);

  // Discards everything since the last checkpoint, as a crash would.
  ~TreeFile();
  TreeFile(const TreeFile&) = delete;
  TreeFile& operator=(const TreeFile&) = delete;

  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }
  // The header as of the last checkpoint (or creation), with checkpoint_count, block_table
  // and block_table_checksum as written.
  FileHeader header() const;
  // The slot (0 or 1) the header returned by header() was read from or written to.
  int header_slot() const;
  // As opened: empty when every header slot parsed; otherwise each slot that did not, and
  // why ("slot 1: ..."). A crash while a checkpoint wrote its header leaves one so (Open
  // then uses the other); so does damage.
  const std::string& unreadable_header_slots() const { return unreadable_header_slots_; }

  // A number for a new node; it has no contents until WriteBlock.
  BlockNum AllocateBlockNum();
  // The node is gone; its space is released once no checkpoint needs it.
  void FreeBlock(BlockNum b);
  // Writes the whole serialized node to fresh space (copy on write) and records it in the
  // current table. InvalidArgument if b is not allocated or `bytes` exceeds
  // BlockTable::kMaxBlockBytes; NotSupported if read-only; the sticky error after a failed
  // checkpoint.
  Status WriteBlock(BlockNum b, std::string_view bytes);
  // Reads the whole block. Corruption naming the path and block if b is unknown or never
  // written, or if its extent lies beyond the end of the file (truncated file).
  Status ReadBlock(BlockNum b, std::string* bytes) const;
  // Reads bytes [offset, offset + n) of block b (partial fetch). A range outside the
  // block's size is Corruption (the offsets come from a node header read from disk).
  Status ReadBlockRange(BlockNum b, uint64_t offset, uint64_t n, std::string* out) const;
  Status BlockSize(BlockNum b, uint64_t* size) const;
  // What WriteBlock would refuse with before writing anything: NotSupported if read-only,
  // the sticky error after a failed checkpoint; OK otherwise.
  Status Writable() const { return CheckWritable(); }

  // Makes everything written so far durable as a new checkpoint whose header is `header`
  // with these fields filled in by this call: checkpoint_count (previous + 1), block_table,
  // block_table_checksum; format_version, created_unix_seconds and file_uid are kept from
  // creation.
  // Returns after the header is durable; then releases the space only the previous
  // checkpoint needed and trims free space off the end of the file.
  // Same as BeginCheckpoint followed by EndCheckpoint.
  //
  // With a `compaction`, a checkpoint first moves blocks from the file's upper part into
  // holes lower down when the file ends well past what the checkpoint needs (CompactTail),
  // so that the trim after it returns that space.
  Status Checkpoint(const FileHeader& header, TailCompaction compaction = TailCompaction::kNone);

  // A sharp checkpoint in steps, for a checkpointer that lets writers run meanwhile:
  //   BeginCheckpoint      when the checkpoint logically begins (e.g. under the lock that
  //                        marks dirty nodes checkpoint-pending): the checkpoint will hold
  //                        the blocks as they are now...
  //   WriteBlockForCheckpoint(b, bytes)
  //                        ...except that a node written this way (a pending node, or its
  //                        clone, as of the begin) replaces b in the checkpoint, and in the
  //                        current table unless b had a plain WriteBlock since the begin.
  //                        Plain WriteBlock calls after the begin change only the current
  //                        table.
  //   EndCheckpoint(header) writes the table and header as Checkpoint does.
  // InvalidArgument for a Begin while a checkpoint is in progress or an End without one.
  // One checkpointer at a time. If EndCheckpoint fails before the header write, the
  // checkpoint is abandoned (the next one starts with BeginCheckpoint).
  Status BeginCheckpoint();
  Status WriteBlockForCheckpoint(BlockNum b, std::string_view bytes);
  Status EndCheckpoint(const FileHeader& header, TailCompaction compaction = TailCompaction::kNone);

  // Checkpoint clones (BlockTable::PrepareCloneWrite has the rules): a copy of node b made
  // between BeginCheckpoint and EndCheckpoint, while b still holds its contents as of the
  // begin, and written later while the original may be rewritten (copy on write) or freed.
  //   PrepareCloneWrite(b, &source) announces the clone and returns b's extent as of the
  //     begin ({0, 0}: never written), which stays allocated until the clone is written.
  //   ReadCloneSource(b, source, offset, n) reads from that extent whatever b's current
  //     location is by then (for the clone's unchanged partitions).
  //   WriteClone(b, bytes) writes the clone to fresh space and records it in the checkpoint
  //     only: b's current location stays the original's (a write of the original, before or
  //     after, always wins there), and a b freed since the clone stays freed.
  // InvalidArgument from PrepareCloneWrite without a checkpoint in progress or when b was
  // written since the begin, and from WriteClone without an outstanding PrepareCloneWrite.
  Status PrepareCloneWrite(BlockNum b, BlockLocation* source);
  Status ReadCloneSource(BlockNum b, BlockLocation source, uint64_t offset, uint64_t n,
                         std::string* out) const;
  Status WriteClone(BlockNum b, std::string_view bytes);
  // Abandons a checkpoint begun but not ended (its node writes failed); the previous
  // checkpoint stays the file's state. No effect when none is in progress, nor on a file a
  // failed sync or header write poisoned (its space stays held until the file is reopened:
  // that checkpoint's header may have reached the disk).
  void AbortCheckpoint();
  // Closes the file descriptor (a dropped table's file then frees its space at once); every
  // later read or write fails. REQUIRES: no I/O on this file runs or will start.
  void CloseDescriptor() { file_->Close(); }

  BlockTable::Stats stats() const { return table_.stats(); }
  // Blocks (and their bytes) moved down the file by checkpoints' tail compaction.
  uint64_t blocks_compacted() const { return blocks_compacted_.load(std::memory_order_relaxed); }
  uint64_t bytes_compacted() const { return bytes_compacted_.load(std::memory_order_relaxed); }
  // Every written block of the current version, in ascending number order. fn runs under
  // the table's lock and must not call back into this TreeFile.
  void ForEachBlock(const std::function<void(BlockNum, BlockLocation)>& fn) const {
    table_.ForEachBlock(fn);
  }

 private:
  TreeFile(std::unique_ptr<File> file, bool read_only, const FileHeader& header, int slot);

  // The valid header with the highest checkpoint count, and the slot it is in; the slots
  // that did not parse are described in *unreadable (empty if none).
  static Status ReadHeader(const File& file, FileHeader* header, int* slot,
                           std::string* unreadable);
  Status CheckWritable() const;
  enum class WriteKind { kCurrent, kCheckpoint, kClone };
  Status Write(BlockNum b, std::string_view bytes, WriteKind kind);
  Status BeginCheckpointLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(checkpoint_mu_);
  Status EndCheckpointLocked(const FileHeader& header, TailCompaction compaction)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(checkpoint_mu_);
  // Records a failure after which the on-disk state is uncertain; returns `s`.
  Status Poison(const Status& s);
  Status ReadExtent(BlockNum b, BlockLocation loc, uint64_t offset, uint64_t n,
                    std::string* out) const;
  // Writes a block's bytes where `loc` says (both parts of a split location).
  Status WriteExtents(const BlockLocation& loc, std::string_view bytes);
  void TrimFileTail();
  // Moves the checkpoint's highest blocks (BlockTable::TailBlocks) into holes lower down,
  // up to kMaxCompactBytes of them (kIfSmall: all of them or none, at most
  // kSmallCompactBytes), so that the CompleteCheckpoint and trim after it shrink the file. A
  // block no hole holds is skipped, and so are the ones as big or bigger after it, and those
  // over what is left of the budget (a block over it never moves). Best effort: a failed
  // read or write leaves the remaining blocks where they are. Returns the line blocks were
  // to move below, where the checkpoint's table then goes too (0: the file called for none).
  uint64_t CompactTail(TailCompaction compaction) ABSL_EXCLUSIVE_LOCKS_REQUIRED(checkpoint_mu_);
  // After a close's checkpoint (kIfSmall), which freed what only the previous checkpoint
  // named (a whole tree's worth once every row was deleted and pushed down): only now are
  // there holes low in the file for the few blocks left above them, so one more checkpoint
  // of the same state (only if no block changed since: BlockTable::UnchangedSinceCheckpoint)
  // moves them when that is cheap, and the file ends near its live data at the close
  // rather than at the next open's checkpoints.
  // Whether the blocks of a tail (BlockTable::TailBlocks) come to at most kSmallCompactBytes.
  static bool IsSmallTail(const std::vector<std::pair<BlockNum, BlockLocation>>& tail);
  Status CheckpointAgainIfTailIsSmall(const FileHeader& header)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(checkpoint_mu_);

  const std::string path_;
  const std::unique_ptr<File> file_;  // closed by CloseDescriptor
  const bool read_only_;
  BlockTable table_;

  // Bytes of blocks one checkpoint moves at most: the copying adds at most this much
  // reading and writing to the checkpoint, and a file shrinks over several checkpoints.
  static constexpr uint64_t kMaxCompactBytes = uint64_t{64} << 20;
  // A close's limit (TailCompaction::kIfSmall): a few milliseconds of copying.
  static constexpr uint64_t kSmallCompactBytes = uint64_t{4} << 20;

  // Held by each checkpoint step (across both steps of Checkpoint).
  Mutex checkpoint_mu_;
  // Shared by a read from a block's looked-up location until the read is done; exclusive
  // while blocks move (CompactTail), whose old extents may be reused at once.
  mutable Mutex read_gate_;
  std::atomic<uint64_t> blocks_compacted_{0};
  std::atomic<uint64_t> bytes_compacted_{0};
  // Shared while space is allocated, exclusive while the file's tail is trimmed: a trim
  // must not cut space allocated between reading file_end() and truncating.
  Mutex space_mu_;
  mutable Mutex mu_;
  FileHeader header_ ABSL_GUARDED_BY(mu_);
  int header_slot_ ABSL_GUARDED_BY(mu_);
  Status sticky_error_ ABSL_GUARDED_BY(mu_);
  std::string unreadable_header_slots_;  // set once, by Open
};

}  // namespace fern

#endif  // FERN_FT_TREE_FILE_H_
