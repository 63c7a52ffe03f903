// EnvImpl: one open Env directory — its lock, catalog, write-ahead log, cachetable and
// tables — and crash recovery when it opens.
//
// Durability: every write is logged before it is applied (TableLog); a commit with
// sync_commits returns after its record is fsynced (group commit in LogWriter). Each table
// file's header records the LSN through which the table holds every logged write (its
// checkpoint LSN). Recovery replays, per table, the logged writes after that LSN; log
// files older than every table's checkpoint LSN are removed after a checkpoint.
#ifndef FERN_DB_ENV_IMPL_H_
#define FERN_DB_ENV_IMPL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cachetable/cachetable.h"
#include "db/catalog.h"
#include "db/cursor_registry.h"
#include "db/table_impl.h"
#include "db/table_log.h"
#include "fern/env.h"
#include "ft/basement_admission.h"
#include "ft/basement_pool.h"
#include "ft/buffer_budget.h"
#include "ft/file_header.h"
#include "log/log_writer.h"
#include "txn/deadlock_detector.h"
#include "txn/txn_manager.h"
#include "util/file.h"
#include "util/memory_budget.h"
#include "util/mutex.h"
#include "util/thread_pool.h"

namespace fern {

class LoaderImpl;
class TxnImpl;

// Thread-safe: `mu_` guards the table set and the catalog; table operations run without it.
class EnvImpl final : public Env {
 public:
  static Status OpenImpl(const std::string& dir, const Options& options, std::unique_ptr<Env>* env);
  ~EnvImpl() override;

  Status OpenTable(std::string_view name, const TableOptions& options, Table** table) override;
  Status DropTable(std::string_view name) override;
  Status Begin(const TxnOptions& options, std::unique_ptr<Txn>* txn) override;
  Status Checkpoint() override;
  Status NewLoader(Table* table, std::unique_ptr<Loader>* loader) override;
  Status RecoverPrepared(std::vector<std::unique_ptr<Txn>>* txns) override;
  bool GetProperty(std::string_view name, std::string* value) override;

  // For transactions and tables.
  const std::string& dir() const { return dir_; }
  std::atomic<uint64_t>* rollback_spills() { return &rollback_spills_; }
  TxnManager* txn_manager() { return txn_manager_.get(); }
  Cachetable* cache() { return cache_.get(); }
  const std::shared_ptr<CursorRegistry>& cursors() { return cursors_; }
  LogWriter* log() { return log_.get(); }
  // Held by a transaction restored by recovery (RecoverPrepared) through its commit or
  // abort, which it ends with EndRestoredPrepared.
  Mutex& prepared_mu() ABSL_LOCK_RETURNED(prepared_mu_) { return prepared_mu_; }
  // REQUIRES: prepared_mu() held. A restored prepared transaction ended with `outcome`
  // (kCommitAny or kAbortAny).
  void EndRestoredPrepared(TxnId id, MessageType outcome) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  WriteState* write_state() { return write_state_.get(); }
  bool sync_commits() const { return options_.sync_commits; }
  absl::Duration lock_timeout() const { return absl::Milliseconds(options_.lock_timeout_ms); }
  // What every live transaction's write set takes in memory, against its budget.
  MemoryBudget* write_set_memory() { return &write_set_memory_; }
  // Live transactions that have logged records pin the log from their begin record on.
  void RegisterLiveTxn(TxnId id, Lsn first_lsn);
  // Appends `record` (a transaction's begin record) and registers the transaction as live
  // at its LSN in one step under live_mu_, so that a checkpoint never sees the record in
  // the log without the transaction among the live ones (it would trim the record).
  Status LogBeginTxn(const LogRecord& record, TxnId id, Lsn* lsn);
  // Every TxnImpl of this Env, so that closing the Env can settle those still open.
  void TrackTxn(TxnImpl* txn);
  void UntrackTxn(TxnImpl* txn);
  // Loaders the user holds, abandoned (LoaderImpl::EnvClosing) when the Env closes.
  void TrackLoader(LoaderImpl* loader);
  void UntrackLoader(LoaderImpl* loader);
  void UnregisterLiveTxn(TxnId id, Lsn first_lsn);

 private:
  EnvImpl(std::string dir, const Options& options);
  std::string CatalogPath() const { return dir_ + "/" + kCatalogFileName; }
  std::string TablePath(const std::string& file_name) const { return dir_ + "/" + file_name; }
  TreeConfig MakeTreeConfig(const Comparator* cmp, Compression codec, int level,
                            const TableOptions* sizes) const;

  // Opens the tree of a cataloged table and wraps it as a TableImpl that logs its writes.
  Status OpenExisting(const std::string& name, const CatalogEntry& entry, const Comparator* cmp,
                      Compression codec, int level, std::unique_ptr<TableImpl>* table)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::unique_ptr<TableImpl> Wrap(const std::string& name, uint64_t id,
                                  std::unique_ptr<FractalTree> tree);

  // Recovery (recovery.cc). Replays the log into every table whose comparator is built in;
  // tables with a custom comparator and writes to replay are deferred to OpenTable.
  struct RecoveredTxn {
    TxnId parent = kNoTxn;
    XidStack xids;
    std::vector<std::pair<uint64_t, std::string>> keys;  // (table id, key) written
    std::vector<uint64_t> locked_tables;  // write-locked whole (UpdateAll); roots only
    Lsn first_lsn = 0;
    bool prepared = false;
    std::string prepared_xid;
  };
  // The tree to replay a table's records into, or null to skip the table.
  using TreeLookup = std::function<FractalTree*(uint64_t table_id)>;
  Status Recover() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Status ReplayLog(const TreeLookup& tree_for, std::map<TxnId, RecoveredTxn>* live, TxnId* max_txn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Status RestorePrepared(TxnId id, const RecoveredTxn& txn, const TreeLookup& tree_for)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Replays the log records of one deferred table after its checkpoint LSN.
  Status ReplayTable(uint64_t id, TableImpl* table) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Checkpoints every open table, then removes log files no table needs.
  // `closing`: the Env's last checkpoint, which also starts a new log file for its end
  // record so that the log it leaves holds nothing else.
  Status CheckpointLocked(bool closing = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The checkpointer thread: a checkpoint every checkpoint_period_ms (0: never), or sooner
  // once the log has grown by checkpoint_log_bytes since the last checkpoint began.
  void CheckpointerLoop();
  bool LogOutgrewCheckpoint() const;
  // The log flusher thread: writes out log records buffered longer than
  // log_flush_period_ms (0: no thread).
  void LogFlusherLoop();
  // Stops the checkpointer and the log flusher.
  void StopPeriodicThreads();
  // Makes every record logged so far durable: a catalog change (a table created or
  // dropped) is durable once saved, and a crash must not keep it while losing commits
  // that came before it (recovery yields a prefix, API.md).
  Status SyncLogBeforeCatalogChange() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes *.ft files the catalog does not name (left by a crash in create or drop) and
  // loader run files (left by a load that did not finish).
  Status RemoveOrphanFiles() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  const Options options_;
  std::unique_ptr<FileLock> lock_;
  // Evicted basements' memory for the next basement reads (TreeConfig::basement_pool).
  // Outlives every table and the cachetable.
  std::unique_ptr<BasementPool> basement_pool_;
  std::unique_ptr<BasementAdmission> admission_;
  std::unique_ptr<BufferBudget> buffer_budget_;  // TreeConfig::buffer_budget
  std::unique_ptr<ThreadPool> pool_;
  // Flushes the nodes writers leave gorged (TreeConfig::flusher_pool). Outlives every
  // table.
  std::unique_ptr<ThreadPool> flusher_pool_;
  std::unique_ptr<Cachetable> cache_;
  std::unique_ptr<LogWriter> log_;
  std::unique_ptr<WriteState> write_state_;
  std::unique_ptr<TxnManager> txn_manager_;
  // Shared with every cursor, which may outlive the Env.
  std::shared_ptr<CursorRegistry> cursors_ = std::make_shared<CursorRegistry>();
  DeadlockDetector deadlock_detector_;
  // What the Env keeps outside its cache (util/memory_budget.h). Locks are only counted
  // (each owner escalates on its own, lock_tree.h); write sets share a budget of an eighth
  // of cache_bytes, at least kMinWriteSetBudget (one transaction's set also spills at
  // WriteSet::kDefaultMemoryLimit, 8 MiB, whatever the budget).
  static constexpr size_t kMinWriteSetBudget = size_t{16} << 20;
  MemoryBudget lock_memory_{SIZE_MAX};
  MemoryBudget write_set_memory_{MemoryBudget::EighthOf(options_.cache_bytes, kMinWriteSetBudget)};
  Mutex txns_mu_;
  std::set<TxnImpl*> txns_ ABSL_GUARDED_BY(txns_mu_);
  std::set<LoaderImpl*> loaders_ ABSL_GUARDED_BY(txns_mu_);
  Mutex live_mu_;
  std::set<std::pair<Lsn, TxnId>> live_txns_ ABSL_GUARDED_BY(live_mu_);
  // Prepared transactions found by recovery, handed out once by RecoverPrepared.
  std::vector<std::unique_ptr<Txn>> recovered_prepared_ ABSL_GUARDED_BY(mu_);
  // The prepared transactions recovery restored that have not ended (wherever their Txn
  // objects are now), and how those that ended did. A table replayed late (ReplayTable)
  // gives the first their keys and locks in it, and resolves the second's keys there as
  // they ended. A restored transaction holds prepared_mu_ through its commit or abort.
  Mutex prepared_mu_;
  std::map<TxnId, TxnImpl*> restored_prepared_ ABSL_GUARDED_BY(prepared_mu_);
  std::map<TxnId, MessageType> prepared_outcomes_ ABSL_GUARDED_BY(prepared_mu_);

  Mutex mu_;
  Catalog catalog_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<TableImpl>> tables_ ABSL_GUARDED_BY(mu_);
  // Set once Recover has replayed the whole log. Until then the tables hold a partial
  // replay, which must never become a checkpoint: the records not yet replayed would be
  // skipped at the next open (an Env whose Open failed is closed without one).
  bool recovered_ ABSL_GUARDED_BY(mu_) = false;
  // Dropped tables stay allocated so that pointers users still hold fail cleanly.
  std::vector<std::unique_ptr<TableImpl>> dropped_ ABSL_GUARDED_BY(mu_);
  // Tables (by id) that have logged writes to replay but whose comparator only OpenTable
  // can supply, with the LSN the log must be kept after: the one Recover read it from, so
  // that ReplayTable sees every transaction that recovery saw (a transaction live across
  // the table's checkpoint wrote keys there before it, and its commit must find them).
  std::map<uint64_t, Lsn> deferred_ ABSL_GUARDED_BY(mu_);
  uint64_t checkpoints_taken_ ABSL_GUARDED_BY(mu_) = 0;  // names checkpoint log records
  uint64_t checkpoint_failures_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_checkpoint_micros_ ABSL_GUARDED_BY(mu_) = 0;
  Status last_checkpoint_error_ ABSL_GUARDED_BY(mu_);

  Mutex checkpointer_mu_;
  absl::CondVar checkpointer_cv_;
  bool stopping_ ABSL_GUARDED_BY(checkpointer_mu_) = false;
  std::thread checkpointer_;
  std::thread log_flusher_;
  uint64_t checkpoint_log_bytes_ = 0;  // Options::checkpoint_log_bytes, with its default applied
  // The log's bytes_written when the last checkpoint began.
  std::atomic<uint64_t> log_bytes_at_checkpoint_{0};
  std::atomic<uint64_t> rollback_spills_{0};  // write sets spilled, for fern.stats
  Lsn recovery_end_lsn_ = 0;                  // the log's last LSN when the Env opened
};

}  // namespace fern

#endif  // FERN_DB_ENV_IMPL_H_
