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
// Thread-safety: all public methods may be called from any thread. Writers are serialized
// by `tree_mu_` (exclusive); readers share it, so reads run in parallel with each other.
// Checkpoint takes it exclusively.
#ifndef FERN_FT_TREE_H_
#define FERN_FT_TREE_H_

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "cachetable/cachetable.h"
#include "ft/message.h"
#include "ft/node.h"
#include "ft/read_view.h"
#include "ft/row_batch.h"
#include "ft/tree_config.h"
#include "ft/tree_file.h"
#include "ft/tree_stats.h"
#include "util/mutex.h"

namespace fern {

using Lsn = uint64_t;  // a log sequence number; the same type as the log's

// Where a tree's writes are logged before they are applied (the write-ahead rule). The tree
// calls LogWrite with its write lock held, so a tree's writes appear in the log in the
// order they are applied; a checkpoint syncs the log through its LSN before the tree's
// header names it. Implemented by the Env; the tree knows nothing else of the log.
class TreeWriteLog {
 public:
  virtual ~TreeWriteLog() = default;
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
  uint64_t rows = 0;  // leaf entries on disk and in memory (before pending messages)
};

class FractalTree final : public CacheFileOwner {
 public:
  // Creates `path` (which must not exist) holding an empty tree, durable on return.
  static Status Create(const std::string& path, const TreeConfig& config, Cachetable* cache,
                       std::unique_ptr<FractalTree>* tree);
  // Opens an existing file. The comparator must have the stored name (else
  // InvalidArgument); node and basement sizes come from the file; the codec from `config`
  // (new partitions use it, old ones keep theirs).
  static Status Open(const std::string& path, const TreeConfig& config, Cachetable* cache,
                     std::unique_ptr<FractalTree>* tree);
  ~FractalTree() override;

  // Takes a checkpoint (when `checkpoint`) and drops the tree's pairs from the cache.
  // Nothing may be called afterwards but the destructor.
  Status Close(bool checkpoint);

  // Writes. With a write log set, each is logged before it is applied and *lsn (optional)
  // receives its LSN, which the caller syncs for a durable commit.
  Status Put(std::string_view key, std::string_view value, Lsn* lsn = nullptr);
  Status Insert(std::string_view key, std::string_view value,
                Lsn* lsn = nullptr);  // AlreadyExists if present
  // Insert by a transaction: AlreadyExists if the key is visible in `view`.
  Status InsertTxn(const XidStack& xids, const ReadView& view, std::string_view key,
                   std::string_view value, Lsn* lsn = nullptr);
  Status Delete(std::string_view key, Lsn* lsn = nullptr);
  Status Update(std::string_view key, std::string_view extra, Lsn* lsn = nullptr);
  Status UpdateAll(std::string_view extra, Lsn* lsn = nullptr);
  // A transactional write (kInsert, kDelete or kUpdate) by the transaction whose xid stack
  // is `xids`: it becomes a provisional version. Logged like the others.
  Status Write(MessageType type, const XidStack& xids, std::string_view key, std::string_view value,
               Lsn* lsn = nullptr);
  // Commits (kCommitAny) or aborts (kAbortAny) the provisional versions of `xids` on `key`.
  // Not logged: the transaction's commit or abort record stands for all its keys.
  Status Resolve(MessageType type, const XidStack& xids, std::string_view key);

  // Recovery: applies a logged write without logging it again. Records at or below the
  // LSN of the tree's last checkpoint are skipped (they are in the tree already), so replay
  // is idempotent.
  Status Replay(Message message, Lsn lsn);
  // Every logged write through this LSN is in the tree as of its last checkpoint.
  Lsn checkpoint_lsn();
  // Sets the log (before any write; nullptr: no logging).
  void SetWriteLog(TreeWriteLog* log) { log_ = log; }
  // New partitions use this codec from now on; old ones keep theirs.
  void SetCompression(Compression codec, int level);
  // NotFound if absent. `view` (optional) says whose versions are visible; without one,
  // every committed version is.
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
  Status ReadBatch(Locate where, std::string_view key, size_t max_rows, RowBatch* batch,
                   const ReadView* view = nullptr);

  // Pushes every buffered message down to the leaves and collects old versions.
  Status Optimize();
  // Writes every dirty node and a new header: the file then reopens to this state.
  Status Checkpoint();

  // Bulk loading (tree_load.cc; the tree itself is written by TreeBuilder).
  // Whether the tree holds no leaf entry and no buffered message.
  Status IsEmpty(bool* empty);
  // Reserves the empty tree for a load: InvalidArgument if it holds a row or a buffered
  // message, or another load holds it. *config receives the settings (current codec
  // included) to build with. While reserved, Checkpoint writes nothing for this tree (its
  // checkpoint LSN stays, so the log keeps whatever is written meanwhile), so blocks
  // written for the load reach no checkpoint before InstallLoad commits them.
  // REQUIRES: no Checkpoint of this tree in progress (its steps run partly without
  // tree_mu_; the Env runs checkpoints under its own mutex and calls BeginLoad under it),
  // so InstallLoad's commit never overlaps one.
  Status BeginLoad(TreeConfig* config);
  // Makes the tree rooted at `root` (every node of it newly written to file(), none
  // cached) this tree, and commits it with a checkpoint before returning: a crash before
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
  const TreeConfig& config() const { return config_; }

  // CacheFileOwner.
  Status FetchBlock(BlockNum block, std::unique_ptr<CacheValue>* value) override;
  Status WriteBlock(BlockNum block, CacheValue* value) override;
  Status WriteBlockForCheckpoint(BlockNum block, CacheValue* value) override;
  bool PartialEvict(BlockNum block, CacheValue* value) override;
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

 private:
  FractalTree(std::unique_ptr<TreeFile> file, const TreeConfig& config, Cachetable* cache);

  Status PinNode(BlockNum block, Cachetable::Lock lock, PinnedPair* pin);
  std::string Where(BlockNum block) const;
  ApplyContext MakeApplyContext() const;

  // Loading absent basements (partial fetch). Safe under a read pin.
  Status LoadBasement(PinnedPair* pin, size_t index);
  Status LoadAllBasements(PinnedPair* pin);

  // Write path; all REQUIRE tree_mu_ held exclusively.
  Status Inject(Message message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(tree_mu_);
  // Logs (when a log is set) and injects one write.
  Status LogAndInject(const Message& message, Lsn* lsn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(tree_mu_);
  TreeConfig CurrentConfig() const;
  Status GetLocked(std::string_view key, std::string* value, const ReadView& view)
      ABSL_SHARED_LOCKS_REQUIRED(tree_mu_);
  Status ApplyToLeaf(PinnedPair* leaf, const Message& message);
  void RebalanceBasements(Node* leaf);
  bool NeedsSplit(const Node& node) const;
  bool NeedsMerge(const Node& node) const;
  Status FlushWhileGorged(PinnedPair* pin);
  Status FlushChild(PinnedPair* parent, size_t index);
  Status MoveBufferDown(Node* parent, size_t index, PinnedPair* child);
  Status Restructure(PinnedPair* parent, size_t index, PinnedPair* child);
  Status SplitChild(Node* parent, size_t index, PinnedPair* child);
  Status MergeChild(PinnedPair* parent, size_t index, PinnedPair* child);
  Status FixRoot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(tree_mu_);
  Status FlushAll(PinnedPair* pin);
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

  Mutex tree_mu_;
  BlockNum root_ ABSL_GUARDED_BY(tree_mu_) = -1;
  Msn max_msn_ ABSL_GUARDED_BY(tree_mu_) = 0;
  Lsn checkpoint_lsn_ ABSL_GUARDED_BY(tree_mu_) = 0;
  bool loading_ ABSL_GUARDED_BY(tree_mu_) = false;  // reserved by BeginLoad
  TreeWriteLog* log_ = nullptr;
  bool closing_ ABSL_GUARDED_BY(tree_mu_) = false;  // no more cleaner work
  // The codec may change while eviction threads serialize nodes, hence atomics.
  std::atomic<Compression> compression_;
  std::atomic<int> compression_level_;
  FileHeader header_template_;  // the constant part of the header (sizes, comparator)

  TreeStats stats_;
};

}  // namespace fern

#endif  // FERN_FT_TREE_H_
