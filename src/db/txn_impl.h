// TxnImpl: an explicit transaction (Env::Begin, Txn::BeginChild).
//
// Writes take the row's write lock (on behalf of the root transaction) in the table's lock
// tree, log a record carrying the transaction id (its begin record, with the parent's id,
// is logged before its first write) and inject a message carrying the xid stack, which
// becomes a provisional version in the leaf entry. Commit logs the commit record (synced
// per TxnOptions::sync or Options::sync_commits), then injects a commit message for every
// key written, then marks the transaction committed and releases its locks. Abort injects
// abort messages, marks it aborted, logs the abort record and releases the locks. A child's
// commit folds its versions into its parent's and hands its keys to the parent.
//
// Used by one thread at a time (API.md). The write set is kept in memory.
#ifndef FERN_DB_TXN_IMPL_H_
#define FERN_DB_TXN_IMPL_H_

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "db/use_gate.h"
#include "db/write_set.h"
#include "fern/options.h"
#include "fern/txn.h"
#include "ft/message.h"
#include "log/log_format.h"
#include "txn/lock_tree.h"
#include "txn/txn_manager.h"

namespace fern {

class EnvImpl;
class TableImpl;

class TxnImpl final : public Txn {
 public:
  TxnImpl(EnvImpl* env, TxnStatePtr state, TxnImpl* parent, const TxnOptions& options);
  ~TxnImpl() override;  // aborts if still live

  Status Commit() override;
  Status Abort() override;
  Status Prepare(std::string_view xid) override;
  Status BeginChild(std::unique_ptr<Txn>* child) override;
  uint64_t id() const override { return state_->id(); }
  // Empty once the transaction has ended (API.md: "empty unless prepared").
  std::string xid() const override { return ended_ ? std::string() : state_->xid(); }

  EnvImpl* env() const { return env_; }
  const TxnStatePtr& state() const { return state_; }
  const XidStack& xids() const { return state_->xids(); }
  Isolation isolation() const { return state_->isolation(); }

  // Live, not prepared, and no child in progress (a parent waits for its child).
  Status CheckWritable() const;
  Status CheckReadable() const;
  // Takes a lock for the root transaction; Busy after the lock timeout, Deadlock if waiting
  // would close a cycle.
  // `*granted` (if given): whether the lock was newly granted rather than held already.
  Status Lock(TableImpl* table, std::string_view lo, std::string_view hi, LockTree::Mode mode,
              bool* granted = nullptr);
  // The same over a range that may be unbounded (LockTree::AcquireRange).
  Status LockRange(TableImpl* table, const std::string_view* lo, const std::string_view* hi,
                   LockTree::Mode mode, bool* granted = nullptr);
  // Gives back the lock on `key` alone that the latest Lock in `table` granted
  // (LockTree::ReleaseNewestKey; it stays if that grant escalated). REQUIRES: that Lock
  // reported `granted`.
  void ReleaseNewestLock(TableImpl* table, std::string_view key);
  // Logs the begin records of this transaction and its ancestors, once each.
  Status BeforeWrite();
  // `own`: a write by this transaction itself (false: a committed child's, or recovered).
  void NoteWrite(TableImpl* table, std::string_view key, bool own = true);
  // A write call failed; an IOError makes Commit fail with it (see write_failed_).
  void NoteWriteFailed(const Status& status) {
    if (status.IsIOError() && write_failed_.ok()) write_failed_ = status;
  }
  // A recovered prepared transaction: its keys, the tables it write-locked whole (already
  // locked again) and the begin LSN that pins the log.
  void AdoptRecovered(std::vector<std::pair<TableImpl*, std::string>> writes,
                      std::vector<TableImpl*> table_locks, Lsn first_lsn);
  // A whole-table lock of a recovered prepared transaction, taken again when its table was
  // replayed late.
  void AdoptTableLock(TableImpl* table) { locked_tables_.insert(table); }
  // A key of a recovered prepared transaction found when its table was replayed late.
  void AdoptKey(TableImpl* table, std::string_view key) {
    locked_tables_.insert(table);
    NoteWrite(table, key, /*own=*/false);
  }
  // Ends the transaction without resolving it: the Env is closing and a prepared
  // transaction must survive to the next RecoverPrepared.
  void Detach() { ended_ = true; }
  // The Env is being destroyed: a live transaction is aborted (a prepared one kept for
  // recovery), and every later call returns InvalidArgument instead of touching the Env.
  void EnvClosing();

 private:
  bool ended() const { return ended_; }
  // Reads the rollback file through before the commit record is logged: once it is, the
  // transaction is committed, and a file that fails while its keys are being resolved would
  // leave some of them committed in this process and the rest not until a reopen. A
  // failure here fails the Commit with nothing decided (an abort then resolves what it can
  // read; the rest stays invisible, and recovery rolls it back).
  Status CheckRollbackFile();
  // Resolves every key written. Gates in `held` are open already (a commit holds those of
  // its tables); any other table's gate is entered per key, and a dropped table skipped.
  Status ResolveAll(MessageType type, const UseGateSet* held = nullptr);
  void ReleaseLocks();
  void Unregister();
  // Drops the write set of an ended transaction.
  void ForgetWrites();
  // Adds `table` to written_tables_ (and counts this transaction as a prepared writer there
  // if it is counted so).
  void NoteTable(TableImpl* table);
  // Counts a transaction being prepared in each table it wrote (TableImpl::AddPreparedWriter);
  // InvalidArgument, with nothing counted, if one of them is being dropped.
  Status CountAsPrepared();
  // Takes back every count CountAsPrepared and NoteTable made.
  void UncountPrepared();

  EnvImpl* env_;  // null once the Env has closed
  TxnStatePtr state_;
  TxnImpl* const parent_;
  const TxnOptions options_;
  bool ended_ = false;
  // Restored by recovery as prepared (AdoptRecovered): its end is told to the Env, which
  // resolves its keys in tables replayed later (EnvImpl::EndRestoredPrepared).
  bool restored_ = false;
  bool begin_logged_ = false;
  // A write was attempted (it may have failed before logging anything): Commit then reports
  // the Env's write error instead of committing nothing as if all had gone well.
  bool attempted_write_ = false;
  // The first write that failed with IOError (refused by the storage, e.g. a cache that
  // cannot write back): Commit returns it rather than commit without that row.
  Status write_failed_;
  Lsn first_lsn_ = 0;  // LSN of the begin record; 0 until the first write
  TxnImpl* live_child_ = nullptr;
  // Every key this transaction or a committed child of it wrote.
  WriteSet writes_;
  // The tables of those keys, each once (most transactions write one or two).
  absl::InlinedVector<TableImpl*, 2> written_tables_;
  // Prepared (or being prepared): tables written from now on are counted too.
  bool counted_as_prepared_ = false;
  // The tables whose prepared-writer count this transaction raised, each once.
  absl::InlinedVector<TableImpl*, 2> prepared_in_;
  std::set<TableImpl*> locked_tables_;  // the root's
  // What the root's locks cost in every table, for escalation (LockTree::Account).
  const LockTree::Account lock_account_ = std::make_shared<std::atomic<int64_t>>(0);
};

}  // namespace fern

#endif  // FERN_DB_TXN_IMPL_H_
