// FractalTree: one table file's Bε-tree, reached through the cachetable.
//
// Writes become messages stamped with a tree-wide MSN and injected at the root, descending
// ("promotion") at most two levels while the target child buffer is empty, the child is an
// internal node in memory and the child needs no split or merge. A node whose buffers hold
// more than node_bytes flushes its heaviest child buffer down; flushing restructures the
// child (splits, merges) while its parent is pinned. Reads walk root to leaf holding read
// pins, and apply the pending ancestor messages to a copy of the one basement they need,
// without modifying the tree.
//
// Concurrency: node-level locks, no tree-wide lock on the read or write path. Every lock is
// a cachetable pair lock, always taken top-down (a parent before its child, siblings only
// under their parent), so waits cannot cycle.
// - A write pins the root for write, takes its MSN and logs itself there (so MSN order, log
//   order and apply order agree), then moves down hand-over-hand: a child is pinned before
//   its parent is let go. Messages therefore reach every node in MSN order, and on any
//   root-to-leaf path deeper messages are older.
// - A flush, holding the parent's write pin, pins the child, detaches the child's buffer
//   from the parent and lets the parent go at once unless the child may need a split or
//   merge (then the parent stays pinned for the restructure). Writers that leave a node gorged hand
//   it to the flusher pool (TreeConfig::flusher_pool) and go on; above twice the limit they flush
//   it themselves, which bounds the buffers when the pool lags.
// - A read pins the root for read, then each child with a try-lock. If a writer holds the
//   child, the reader lets go of every pin, waits for that child's lock without holding
//   anything, and starts again from the root; so readers never make writers wait behind a
//   blocked reader. Reads hold the pins of their whole path while they merge its messages.
// - The root's block number never changes while the tree is open: a root split moves the
//   root's contents into a new child, and a root with one child takes that child's contents.
// - `checkpoint_safe_` is held shared by every operation that changes nodes (writes,
//   flushes, the cleaner), and exclusively only while a checkpoint begins (and by loads and
//   Shape), so no multi-node change straddles a checkpoint's begin. Writers never wait for
//   each other on it; readers never take it.
#ifndef FERN_FT_TREE_H_
#define FERN_FT_TREE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "cachetable/cachetable.h"
#include "ft/live_readers.h"
#include "ft/message.h"
#include "ft/node.h"
#include "ft/read_view.h"
#include "ft/row_batch.h"
#include "ft/stream_ahead.h"
#include "ft/tree_config.h"
#include "ft/tree_file.h"
#include "ft/tree_stats.h"
#include "ft/tree_values.h"
#include "util/mutex.h"

namespace fern {

using Lsn = uint64_t;  // a log sequence number; the same type as the log's

// Where a tree's writes are logged before they are applied (the write-ahead rule). The tree
// calls LogWrite holding its root's write pin, so a tree's writes appear in the log in the
// order they are applied; a checkpoint syncs the log through its LSN before the tree's
// header names it. Implemented by the Env; the tree knows nothing else of the log.
class TreeWriteLog : public LiveReadersSource {
 public:
  ~TreeWriteLog() override = default;
  // Appends the record for `message` and sets *lsn (0 when the message needs no record).
  virtual Status LogWrite(const Message& message, Lsn* lsn) = 0;
  // Called when a logged write could not be applied: the log now holds a write the tree
  // lacks, so the owner must stop further writes.
  virtual void ApplyFailed(const Status& status) = 0;
  virtual Status SyncThrough(Lsn lsn) = 0;
  virtual Lsn LastLsn() const = 0;
  // A checkpoint calls these around reading LastLsn(): while held, no transaction is
  // between logging its commit or abort and applying it to the trees, so every resolution
  // logged through that LSN is in the checkpoint.
  virtual void BlockResolutions() = 0;
  virtual void UnblockResolutions() = 0;
  // Above every transaction id handed out so far; kept in the header so that ids are never
  // reused after the log that names them is gone.
  virtual uint64_t NextTxnIdHint() const = 0;
  // Versions only transactions older than this can need may be collected (see
  // ApplyContext::oldest_live_snapshot); kNoTxn when no transaction or snapshot is live.
  virtual TxnId OldestReferencedXid() const = 0;
};

// Shape of a tree, for ftdump and tests.
struct TreeShape {
  int height = 0;
  std::vector<uint64_t> nodes_per_level;     // index = height
  std::vector<uint64_t> messages_per_level;  // buffered messages at each height
  std::vector<uint64_t> partitions_per_level;
  std::vector<uint64_t> pivot_bytes_per_level;  // key bytes of the nodes' pivots
  uint64_t rows = 0;  // leaf entries on disk and in memory (before pending messages)
  std::vector<uint64_t> rows_per_leaf;  // the same, leaf by leaf in key order
};

class FractalTree final : public CacheFileOwner {
 public:
  // Partial eviction compresses an internal node's buffers only from this many bytes.
  static constexpr size_t kMinFreezeBytes = 16 << 10;
  // ... once its clock count has fallen to this (two laps of the clock before eviction).
  static constexpr int kFreezeClockCount = 2;

  // Creates `path` (which must not exist) holding an empty tree, durable on return.
  static Status Create(const std::string& path, const TreeConfig& config, Cachetable* cache,
                       std::unique_ptr<FractalTree>* tree);
  // Opens an existing file. The comparator must have the stored name (else
  // InvalidArgument); node and basement sizes come from the file; the codec from `config`
  // (new partitions use it, old ones keep theirs).
  static Status Open(const std::string& path, const TreeConfig& config, Cachetable* cache,
                     std::unique_ptr<FractalTree>* tree);
  ~FractalTree() override;

  // Takes a checkpoint (when `checkpoint`), drops the tree's pairs from the cache and closes
  // the file.
  // Nothing may be called afterwards but the destructor.
  Status Close(bool checkpoint);

  // Autocommitted writes. With a write log set, each is logged before it is applied and
  // *lsn (optional) receives its LSN, which the caller syncs for a durable commit.
  // `committed_by` is the writer the committed version records (Message::committed_by).
  Status Put(std::string_view key, std::string_view value, Lsn* lsn = nullptr,
             TxnId committed_by = kNoTxn);
  Status Insert(std::string_view key, std::string_view value, Lsn* lsn = nullptr,
                TxnId committed_by = kNoTxn);  // AlreadyExists if present
  // Insert by a transaction: AlreadyExists if the key is visible in `view`.
  Status InsertTxn(const XidStack& xids, const ReadView& view, std::string_view key,
                   std::string_view value, Lsn* lsn = nullptr);
  Status Delete(std::string_view key, Lsn* lsn = nullptr, TxnId committed_by = kNoTxn);
  Status Update(std::string_view key, std::string_view extra, Lsn* lsn = nullptr,
                TxnId committed_by = kNoTxn);
  Status UpdateAll(std::string_view extra, Lsn* lsn = nullptr, TxnId committed_by = kNoTxn);
  // A transactional write (kInsert, kDelete or kUpdate) by the transaction whose xid stack
  // is `xids`: it becomes a provisional version. Logged like the others.
  Status Write(MessageType type, const XidStack& xids, std::string_view key, std::string_view value,
               Lsn* lsn = nullptr);
  // Commits (kCommitAny) or aborts (kAbortAny) the provisional versions of `xids` on `key`.
  // Not logged: the transaction's commit or abort record stands for all its keys.
  // `sole_write`: the transaction (xids of one id) made exactly one insert or delete on
  // `key`, and no child of it wrote there; a commit may then turn that write, where it is
  // still buffered, into a committed write instead of appending a commit message.
  Status Resolve(MessageType type, const XidStack& xids, std::string_view key,
                 bool sole_write = false);

  // Recovery: applies a logged write without logging it again. Records at or below the
  // LSN of the tree's last checkpoint are skipped (they are in the tree already), so replay
  // is idempotent.
  Status Replay(Message message, Lsn lsn);
  // Every logged write through this LSN is in the tree as of its last checkpoint.
  Lsn checkpoint_lsn();
  // Sets the log (before any write; nullptr: no logging). Published with release order: the
  // cleaner and the evictor may already work on the tree's nodes, and read it through
  // write_log().
  void SetWriteLog(TreeWriteLog* log) { log_.store(log, std::memory_order_release); }
  // New partitions use this codec from now on; old ones keep theirs.
  void SetCompression(Compression codec, int level);
  // NotFound if absent. `view` (optional) says whose versions are visible; without one,
  // every committed version is. `value` may be null: only whether the row is there (a value
  // stored out of line is then not read).
  Status Get(std::string_view key, std::string* value, const ReadView* view = nullptr);

  // Where a cursor's batch lies: a forward batch starts at the beginning of the tree or at
  // `key` (included); a backward batch ends at the end of the tree, or just after `key`
  // (kAtOrBefore) or just before it (kBefore).
  enum class Locate { kFirst, kAtOrAfter, kLast, kAtOrBefore, kBefore };
  // Fills `batch` with every row visible in `view` (optional, as for Get) of a key range
  // [batch->lower, batch->upper) that lies inside one basement: the range starts (forward)
  // or ends (backward) where `where` says and extends over at most `max_rows` of the
  // basement's stored rows, so the batch may hold more rows (pending inserts) or fewer
  // (deletes; possibly none) than that. A backward kAtOrBefore range may also hold rows
  // above `key`. Rows are in key order either way.
  // REQUIRES: max_rows >= 1; `key` does not point into *batch.
  // What a read does with a basement it must read from disk. While the cache is full:
  // kKeep installs it (a scan reads on in it); kKeepIfHot installs it only if
  // TreeConfig::admission says so and otherwise reads a transient copy (point reads: a
  // get, a cursor's seek). Below the budget, both install what they read. kStream never
  // installs: a scan that has gone past StreamingScanBytes() reads what is not cached into
  // a transient copy, so that a bulk scan neither evicts what other reads keep cached nor
  // pays for memory it touches once (it still uses what is cached).
  enum class Caching { kKeep, kKeepIfHot, kStream };
  // `ahead` (optional, with kStream and kAtOrAfter): a basement read from disk is taken
  // from there when StreamAheadFrom decoded it already.
  Status ReadBatch(Locate where, std::string_view key, size_t max_rows, RowBatch* batch,
                   const ReadView* view = nullptr, Caching caching = Caching::kKeep,
                   StreamAhead* ahead = nullptr);

  // Readahead for a forward scan: loads, on the background pool, the basements of the leaf
  // holding `key`, from the one holding it through the next kReadaheadBasements - 1, so the
  // scan finds them decompressed. At most one readahead per tree is in flight (a call
  // while one runs does nothing); nothing without a pool.
  void ReadAhead(std::string_view key);
  static constexpr size_t kReadaheadBasements = 8;

  // Decoding ahead of a streaming scan (stream_ahead.h): when `ahead` wants a task, decodes
  // on the readahead pool, into `ahead`, the basements not cached from the one holding
  // `key` on, in key order, until its queue is full. Nothing without a pool.
  void StreamAheadFrom(const std::shared_ptr<StreamAhead>& ahead, std::string_view key);
  // A StreamAhead for a scan of this tree, charging its memory to the cache's budget.
  std::shared_ptr<StreamAhead> NewStreamAhead() const;

  // A scan that has read more than this many bytes of basements (serialized size) since its
  // seek is a bulk scan and reads on with Caching::kStream: an eighth of the cache's budget,
  // at most kMaxCachedScanBytes. Range scans shorter than that keep what they read.
  size_t StreamingScanBytes() const;
  static constexpr size_t kMaxCachedScanBytes = size_t{16} << 20;

  // The MSN of the newest message injected: it changes with every write into the tree. A
  // read-uncommitted cursor compares it between steps.
  Msn last_msn() const { return max_msn_.load(std::memory_order_relaxed); }
  // Counts the moments the tree's committed contents changed: an autocommitted write done,
  // a transaction that held a lock in the tree committed (TxnImpl::Commit, after the
  // transaction manager made it visible), a load installed. A read-committed cursor compares
  // it between steps, so whoever makes a change visible calls NoteCommittedChange after.
  void NoteCommittedChange() { committed_changes_.fetch_add(1, std::memory_order_release); }
  uint64_t committed_changes() const { return committed_changes_.load(std::memory_order_acquire); }

  // Pushes every buffered message down to the leaves and collects old versions.
  Status Optimize();
  // Writes every dirty node and a new header: the file then reopens to this state. With a
  // `compaction`, also moves blocks down a file left far bigger than its live blocks
  // (TreeFile::CompactTail, TailCompaction has the limits). With `drop_written` (for a
  // close), the clean nodes leave the cache first and each dirty one once written, so that
  // their memory serves the buffers serializing the next ones.
  Status Checkpoint(TailCompaction compaction = TailCompaction::kNone, bool drop_written = false);
  // For a close: stops new background work (flushes, readahead) and waits for what is
  // queued or running, so the last checkpoint writes without it. Reads and writes still
  // work, on their callers' threads. Close does this too.
  void StopBackgroundWork() { DrainFlushes(); }

  // Bulk loading (tree_load.cc; the tree itself is written by TreeBuilder).
  // Whether the tree holds no leaf entry and no buffered message.
  Status IsEmpty(bool* empty);
  // Reserves the empty tree for a load: InvalidArgument if it holds a row or a buffered
  // message, or another load holds it. *config receives the settings (current codec
  // included) to build with. While reserved, Checkpoint writes nothing for this tree (its
  // checkpoint LSN stays, so the log keeps whatever is written meanwhile), so blocks
  // written for the load reach no checkpoint before InstallLoad commits them.
  // REQUIRES: no Checkpoint of this tree in progress (its steps run partly without
  // checkpoint_safe_; the Env runs checkpoints under its own mutex and calls BeginLoad under it),
  // so InstallLoad's commit never overlaps one.
  Status BeginLoad(TreeConfig* config);
  // Makes the tree rooted at `root` (every node of it newly written to file(), none
  // cached) this tree, and commits it with a checkpoint before returning. The tree's root
  // block takes `root`'s contents, and `root`'s block number becomes the tree's to free,
  // whatever this returns (the caller frees only the other built blocks): a crash before
  // the header write finds the old tree, after it the new one. The old tree must still be
  // empty (else InvalidArgument: it was written during the load); its nodes are freed. The
  // reservation ends on success; on failure it stays until AbandonLoad, so the caller can
  // free the built blocks before a checkpoint could name them.
  Status InstallLoad(BlockNum root);
  // Ends the reservation without installing anything.
  void AbandonLoad();

  Status Shape(TreeShape* shape);
  const TreeStats& stats() const { return stats_; }
  const std::string& path() const { return file_->path(); }
  TreeFile* file() { return file_.get(); }
  // Value blocks written, freed and read (out_of_line_value.h).
  TreeValues::Counts value_counts() const { return values_.counts(); }
  CacheFileId cache_file_id() const { return file_id_; }  // for tests and tools
  const TreeConfig& config() const { return config_; }

  // CacheFileOwner.
  Status FetchBlock(BlockNum block, std::unique_ptr<CacheValue>* value) override;
  Status WriteBlock(BlockNum block, CacheValue* value) override;
  Status WriteBlockForCheckpoint(BlockNum block, CacheValue* value) override;
  // Leaves: drops the least recently read clean basement. Internal nodes whose clock count
  // fell to kFreezeClockCount: compresses their message buffers in memory (Thaw undoes it
  // at the next pin).
  bool PartialEvict(BlockNum block, CacheValue* value, int clock_count,
                    size_t* freed_bytes) override;
  // Checkpoint copy-on-write (tree_checkpoint_clone.cc). The clone copies the node's
  // pivots, children, message buffers and changed basements; partitions unchanged since
  // the node's last write travel as extents of the block as it was at the checkpoint's
  // begin, which TreeFile keeps allocated until the clone is written, so the clone is
  // self-contained whatever happens to the original. Declines (nullptr) only when the
  // file refuses the clone write.
  std::unique_ptr<CacheValue> CloneForCheckpoint(BlockNum block, const CacheValue& value) override;
  // Serializes the clone (reading its unchanged frames from the begin's extent) and writes
  // it into the checkpoint only: the original's own writes keep the current location.
  Status WriteCheckpointClone(BlockNum block, std::unique_ptr<CacheValue> clone) override;
  // The cleaner thread: flushes the heaviest child buffer of `block` if it is still an
  // internal node with buffered messages.
  void CleanerRun(BlockNum block) override;
  // An internal node the evictor wrote but could not evict (it is in use): schedules, on
  // the flusher pool, flushes of its heaviest buffers until the others' memory is within
  // the node's limit (at most fanout of them; one such task in flight per tree).
  void WrittenButKept(BlockNum block, CacheValue* value) override;

 private:
  // Schedules on the flusher pool flushes of the heaviest buffers of internal node `block`
  // until the others' memory is within the node's limit (GorgedAbove; at most fanout of
  // them; one such task in flight per tree). Does not block.
  void ScheduleFlushToShare(BlockNum block);

  FractalTree(std::unique_ptr<TreeFile> file, const TreeConfig& config, Cachetable* cache);

  // Pins and thaws (below) the node.
  Status PinNode(BlockNum block, Cachetable::Lock lock, PinnedPair* pin);
  // Decompresses the message buffers partial eviction compressed, if it did. Every pin of an
  // internal node goes through it before the node's buffers are used; safe under a read pin.
  Status Thaw(PinnedPair* pin);
  // Thaw's work on a frozen node. REQUIRES: node->load_mu held, or the pair locked
  // exclusively (owner callbacks), and node->frozen set.
  Status ThawLocked(Node* node) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Whether what is read from disk now goes to chunk memory (config_.chunk_memory): only
  // while the cache is less than half full. Chunks pay off where fresh memory is being
  // filled (a cold cache: their pages are faulted in ahead); once the cache churns (data
  // larger than it), evicted basements leave free slots that serve only their size class:
  // reads of 10,000,000 rows through a 1 GiB cache peaked at 1,305 MiB resident with 94 MB
  // free in chunks.
  bool ChunkMemoryNow() const {
    return config_.chunk_memory && cache_->size_bytes() < cache_->budget() / 2;
  }
  // Pins the root for write. REQUIRES: checkpoint_safe_ held (it keeps root_ fixed).
  Status PinRootForWrite(PinnedPair* pin) ABSL_SHARED_LOCKS_REQUIRED(checkpoint_safe_);
  std::string Where(BlockNum block) const;
  // The context of an apply to a copy of rows (a read's); ApplyContextForLeaf's for the
  // leaves' own basements, which own their out-of-line values.
  ApplyContext MakeApplyContext() const;
  ApplyContext ApplyContextForLeaf() const;
  // After applying messages to a leaf with `ctx`: its error, if one kept a message from
  // being applied. The log then holds a write the tree lacks (TreeWriteLog::ApplyFailed).
  // Counts the updates it dropped by rule in stats_.
  Status CheckApplied(const ApplyContext& ctx);
  // Whether the tree has an UpdateFunction to apply kUpdate and kUpdateBroadcast messages.
  // Without one such messages are never applied (nor dropped): the flush or read that would
  // apply them fails with UnappliedUpdates() and they stay where they are.
  bool CanApplyUpdates() const;
  Status UnappliedUpdates() const;

  // Loading absent basements (partial fetch). Safe under a read pin. *loaded (optional)
  // tells whether this call read it (false: it was there, or another reader installed it
  // first). `for_write`: the caller is about to change the basement, which then leaves
  // whatever memory it was read into as it grows, so it goes to chunk memory only where
  // everything read does (TreeConfig::chunk_memory): a slot freed so soon only fragments
  // the chunks.
  Status LoadBasement(PinnedPair* pin, size_t index, bool* loaded = nullptr,
                      bool for_write = false);
  // Reads and decodes the partition at `extent` of `block` into `*rows` (reusing the
  // Basement passed in, if any). With `built`, if the frame is chunked, *built becomes its
  // LeafChunkIndex (for frame `frame_id`).
  Status ReadBasement(BlockNum block, const PartitionExtent& extent,
                      std::unique_ptr<Basement>* rows, const Basement::Prefix* prefix = nullptr,
                      uint64_t frame_id = 0,
                      std::shared_ptr<const LeafChunkIndex>* built = nullptr);
  // What `prefix` needs of the chunked partition at `extent` of `block`, reading from disk
  // only the chunks it may decode, as `index` (that frame's) locates them.
  Status ReadChunks(BlockNum block, const PartitionExtent& extent, const LeafChunkIndex& index,
                    const Basement::Prefix& prefix, std::unique_ptr<Basement>* rows);
  // The rows of basement `index` of the leaf `pin` holds (read pin at least), for one read:
  // the cached basement, loaded if absent, or under Caching::kKeepIfHot possibly a
  // transient copy owned by this thread, valid until its next call. A transient copy holds
  // only `prefix`'s rows when given (the read looks at none after them).
  // Under kStream a transient copy comes from `ahead` (optional) when it has one.
  Status BasementForRead(PinnedPair* pin, size_t index, Caching caching,
                         const Basement::Prefix* prefix, const Basement** rows,
                         StreamAhead* ahead = nullptr);
  Status LoadAllBasements(PinnedPair* pin);

  // ---- reads (tree_read.cc) ----
  // The nodes of one root-to-leaf descent and the partition chosen in each.
  struct ReadPath {
    absl::InlinedVector<PinnedPair, 8> pins;  // taken by the descent
    absl::InlinedVector<Node*, 8> nodes;      // root first, the leaf last
    absl::InlinedVector<size_t, 8> indices;   // partition taken in each node
    PinnedPair* leaf_pin = nullptr;           // the pin holding nodes.back()
    void Clear();
  };
  // Descends from the root to a leaf, choosing in each node the partition `select` names.
  // With `held_root` (the caller's write pin of the root) children are pinned blocking;
  // otherwise the root is pinned for read and children with try-locks, restarting as the
  // class comment says.
  Status DescendForRead(absl::FunctionRef<size_t(const Node&)> select, PinnedPair* held_root,
                        ReadPath* path);
  // DescendForRead to the partitions holding `key`, from the root pinned for read.
  Status DescendToKey(std::string_view key, ReadPath* path);
  Status GetOnPath(const ReadPath& path, std::string_view key, std::string* value,
                   const ReadView& view);

  // ---- writes (tree_write.cc) ----
  // Pins the root, then logs and injects. REQUIRES: checkpoint_safe_ held.
  Status WriteMessage(const Message& message, Lsn* lsn)
      ABSL_SHARED_LOCKS_REQUIRED(checkpoint_safe_);
  // Stamps `message` with the next MSN and injects it; `root` is the root, write-pinned.
  // `commit_in_place`: `message` is a kCommitAny under Resolve's sole_write promise; where
  // it would be appended, the buffered write it commits is committed in place if it is there.
  Status Inject(Message message, PinnedPair root, bool commit_in_place = false)
      ABSL_SHARED_LOCKS_REQUIRED(checkpoint_safe_);
  // Logs (when a log is set) and injects one write.
  Status LogAndInject(const Message& message, Lsn* lsn, PinnedPair root)
      ABSL_SHARED_LOCKS_REQUIRED(checkpoint_safe_);
  Status InsertChecked(Message message, const ReadView& view, Lsn* lsn);
  TreeConfig CurrentConfig() const;
  Status ApplyToLeaf(PinnedPair* leaf, const Message& message);
  void RebalanceBasements(Node* leaf);
  // Whether RebalanceBasements could change `leaf` after a write to basement i alone (the
  // rest of the leaf being balanced): i is over the limit, or fits with a neighbour.
  bool BasementNeedsRebalance(const Node& leaf, size_t i) const;
  bool NeedsSplit(const Node& node) const;
  bool NeedsMerge(const Node& node) const;
  // The bytes above which a leaf splits (and below a quarter of which it merges):
  // node_bytes, but with a buffer budget at most an even share of a quarter of the cache
  // among the Env's open trees (never below kMinLeafBytes). Each tree keeps a hot leaf or
  // two in the cache (its root while it is a leaf, then the leaves its flushes load): twenty
  // tables at a 16 MiB cache, each root leaf growing to 2 MiB, had the evictor rewrite them
  // ~20,000 times for 1M puts (44k puts/s, against 172k into one table).
  size_t LeafLimit() const;
  static constexpr size_t kMinLeafBytes = 64 << 10;
  // Whether `child` may need a split or merge once `incoming` buffered bytes reach it.
  bool MayNeedRestructure(const Node& child, size_t incoming) const;
  // The buffered bytes above which `node` (internal) is gorged: node_bytes, or for a
  // height-1 node what TreeConfig::buffer_budget allows; never more than a quarter of the
  // cache (nor less than kMinGorgedBytes).
  size_t GorgedAbove(const Node& node) const;
  static constexpr size_t kMinGorgedBytes = 16 << 10;
  // How far `node` (internal) is over its limits, as the larger of its buffered bytes over
  // GorgedAbove and, when that exceeds node_bytes, its heaviest child buffer's bytes over
  // node_bytes (above 1: gorged); `*heaviest` gets that child's index. The second bound
  // keeps a budget from sending more than node_bytes into one child at once.
  double GorgedBy(const Node& node, size_t* heaviest) const;
  // Reports to TreeConfig::buffer_budget the number of height-1 nodes `root` implies.
  void CountHeight1Nodes(const Node& root);
  // Takes this tree's count back from TreeConfig::buffer_budget.
  void ForgetHeight1Nodes();
  // Called by a writer leaving `pin` after adding to it: hands a gorged node to the flusher
  // pool, or flushes it here when there is no pool or it is over twice its limit.
  Status AfterAppend(PinnedPair* pin) ABSL_SHARED_LOCKS_REQUIRED(checkpoint_safe_);
  // Flushes while the node is gorged. With `may_release`, a flush may let go of *pin (the
  // loop then ends); without it, every pin taken stays until the caller's restructure.
  Status FlushWhileGorged(PinnedPair* pin, bool may_release);
  Status FlushChild(PinnedPair* parent, size_t index, bool may_release);
  // Moves the parent's buffer `index` into the write-pinned child (loading a leaf child's
  // basements first, so that a read error leaves the messages where they were; a failed
  // read of an out-of-line value an update needs stops the tree's writes, unless its block
  // is damaged: CheckApplied).
  Status MoveBufferDown(Node* parent, size_t index, PinnedPair* child);
  Status ApplyBuffer(MessageBuffer* moving, PinnedPair* child);
  Status Restructure(PinnedPair* parent, size_t index, PinnedPair* child);
  Status SplitChild(Node* parent, size_t index, PinnedPair* child);
  Status MergeChild(PinnedPair* parent, size_t index, PinnedPair* child);
  // Removes leaf `index` of the parent, which holds no entry and has an empty buffer above
  // it, leaving its neighbours as they are. REQUIRES: the parent has another child; both
  // pins write-locked.
  void DropEmptyLeaf(PinnedPair* parent, size_t index, PinnedPair* child);
  // Splits or collapses the write-pinned root until it needs neither, keeping its block.
  Status FixRoot(PinnedPair* root);
  Status FlushAll(PinnedPair* pin);
  void ScheduleFlush(BlockNum block);
  void BackgroundFlush(BlockNum block);
  // A read found a whole batch of stored rows deleted by messages still buffered above them
  // (a queue's head, a deleted range): pushes the buffers on `key`'s path down to its leaf
  // on the flusher pool, so that the rows go and later reads stop skipping them one by one.
  // One such flush in flight per tree; none without a flusher pool.
  void ScheduleFlushToward(std::string_view key);
  // Flushes the heaviest child buffer of `block` if it is cached and an internal node with
  // buffered messages; whether it flushed (or tried: a failed flush leaves the messages).
  // `*still_over` (if given and it flushed): whether the other buffers' memory was still
  // over the node's limit (GorgedAbove).
  bool FlushHeaviestIfCached(BlockNum block, bool* still_over = nullptr);
  // Flushes, from the root down, each buffer on `key`'s path into its child.
  Status FlushToward(std::string_view key);
  // ReadBatch asks for ScheduleFlushToward only when at least this many stored rows in a row
  // were all hidden, mostly by buffered deletes: a few tell nothing about the rows around.
  static constexpr size_t kMinRowsForFlushToward = 8;
  // Counts a background task (flush, readahead, stream-ahead) for DrainFlushes to wait
  // for; false (counting nothing) once the tree is closing. EndBackgroundTask ends it.
  bool BeginBackgroundTask();
  void EndBackgroundTask();
  // Runs `work` on the readahead pool as the tree's one background read in flight (ReadAhead
  // and WarmLeaf): nothing if one is in flight, there is no pool, or the tree is closing.
  void ScheduleBackgroundRead(std::function<void()> work);
  void BackgroundReadAhead(const std::string& key);
  // Keeps `index` as `part`'s chunk index (a leaf partition of the node `pin` holds, read pin
  // at least), replacing one of an earlier frame, unless another reader kept one for this
  // frame first; the node's size counts it.
  void KeepChunkIndex(PinnedPair* pin, LeafPartition* part,
                      std::shared_ptr<const LeafChunkIndex> index);
  // Warming on a point read's miss (see WarmLeaf in tree_read.cc): loads, on the readahead
  // pool, the absent basements of the leaf holding `key`.
  void WarmLeaf(std::string_view key);
  void BackgroundWarmLeaf(const std::string& key);
  void BackgroundStreamAhead(StreamAhead* ahead, uint64_t generation, std::string key);
  // Compresses a clean internal node's message buffers in memory; true if it did.
  bool FreezeBuffers(Node* node);
  // Stops new background work (flushes, readahead) and waits for the queued and running
  // tasks.
  void DrainFlushes();
  BlockNum NewBlockNum();

  Status ShapeOf(BlockNum block, TreeShape* shape);
  // Serializes `node` and writes it with `write`, then points its partitions at the frames
  // just written.
  Status SerializeAndWrite(BlockNum block, Node* node,
                           const std::function<Status(std::string_view)>& write);
  // Pins the subtree at `block` top-down with `lock`, keeping the pins in *pins (null:
  // unpins each), and clears *empty at the first leaf entry or buffered message (stopping
  // there).
  Status PinSubtreeIfEmpty(BlockNum block, Cachetable::Lock lock, bool* empty,
                           std::vector<PinnedPair>* pins);

  std::unique_ptr<TreeFile> file_;
  TreeConfig config_;
  Cachetable* const cache_;
  CacheFileId file_id_ = 0;
  bool open_in_cache_ = false;

  Mutex checkpoint_safe_;
  // The root's block: fixed while the tree is open, except that InstallLoad (holding
  // checkpoint_safe_ exclusively) replaces the root's contents, not its number.
  std::atomic<BlockNum> root_{-1};
  std::atomic<Msn> max_msn_{0};  // taken under the root's write pin
  std::atomic<uint64_t> committed_changes_{0};
  std::atomic<Lsn> checkpoint_lsn_{0};
  bool loading_ ABSL_GUARDED_BY(checkpoint_safe_) = false;  // reserved by BeginLoad
  TreeWriteLog* write_log() const { return log_.load(std::memory_order_acquire); }
  std::atomic<TreeWriteLog*> log_{nullptr};
  std::atomic<bool> closing_{false};  // no more cleaner or background flush work

  Mutex flush_mu_;
  absl::CondVar flush_done_;  // signalled when flushes_pending_ falls to zero
  absl::flat_hash_set<BlockNum> flushes_queued_ ABSL_GUARDED_BY(flush_mu_);
  // Background tasks (flushes, readaheads, stream-aheads) scheduled and not yet finished.
  int flushes_pending_ ABSL_GUARDED_BY(flush_mu_) = 0;
  std::atomic<bool> readahead_in_flight_{false};
  std::atomic<bool> flush_toward_in_flight_{false};  // ScheduleFlushToward's
  std::atomic<bool> kept_flush_in_flight_{false};    // WrittenButKept's
  // What this tree last reported to config_.buffer_budget (CountHeight1Nodes).
  std::atomic<size_t> height1_counted_{0};
  // Whether this tree counts among config_.buffer_budget's trees.
  std::atomic<bool> tree_counted_{false};
  // The codec may change while eviction threads serialize nodes, hence atomics.
  std::atomic<Compression> compression_;
  std::atomic<int> compression_level_;
  FileHeader header_template_;  // the constant part of the header (sizes, comparator)
  // Where leaves keep big values out of line; after the codec, which it reads.
  mutable TreeValues values_;  // thread-safe

  TreeStats stats_;
};

}  // namespace fern

#endif  // FERN_FT_TREE_H_
