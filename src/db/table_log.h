// TableLog: how one table's writes reach the Env's write-ahead log (FractalTree's
// TreeWriteLog), and the Env-wide write state the tables share.
#ifndef FERN_DB_TABLE_LOG_H_
#define FERN_DB_TABLE_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "ft/tree.h"
#include "log/log_format.h"
#include "log/log_writer.h"
#include "util/mutex.h"

namespace fern {

// Shared by an Env and its tables. Thread-safe.
class WriteState {
 public:
  explicit WriteState(LogWriter* log) : log_(log) {}
  // Set once the transaction manager exists (after recovery's replay, while background
  // flushes of the replayed trees may already run); read by checkpoints and flushes.
  void set_next_txn_id(std::function<uint64_t()> next_txn_id) {
    MutexLock lock(&fn_mu_);
    next_txn_id_ = std::move(next_txn_id);
  }
  uint64_t next_txn_id() const {
    ReaderMutexLock lock(&fn_mu_);
    return next_txn_id_ ? next_txn_id_() : 0;
  }
  void set_oldest_referenced(std::function<TxnId()> oldest) {
    MutexLock lock(&fn_mu_);
    oldest_ = std::move(oldest);
  }
  TxnId oldest_referenced() const {
    ReaderMutexLock lock(&fn_mu_);
    return oldest_ ? oldest_() : kNoTxn;
  }
  // Set with set_oldest_referenced; until then no picture (LiveReadersSource).
  void set_live_readers(std::function<std::shared_ptr<const LiveReaders>()> take) {
    MutexLock lock(&fn_mu_);
    live_readers_ = std::move(take);
  }
  std::shared_ptr<const LiveReaders> TakeLiveReaders() const {
    ReaderMutexLock lock(&fn_mu_);
    return live_readers_ ? live_readers_() : nullptr;
  }
  LogWriter* log() const { return log_; }
  // OK, or why the Env refuses writes now. Either an error that stops them until the Env is
  // reopened (SetError: a write that was logged but could not be applied, a commit or abort
  // applied to only some of its keys, a failed log fsync; the log or the trees may then hold
  // what the other does not, and recovery reconciles them), or the log's failed write,
  // which the log retries (LogWriter::CheckWritable): writes resume once a retry succeeds.
  // Reads keep working either way.
  Status error() const {
    {
      MutexLock lock(&mu_);
      if (!error_.ok()) return error_;
    }
    return log_ != nullptr ? log_->CheckWritable() : Status::OK();
  }
  // Records an error that only reopening the Env clears (see error()); a failure to append to
  // the log or to sync it is the log's own state and is not passed here.
  void SetError(const Status& status) {
    MutexLock lock(&mu_);
    if (error_.ok() && !status.ok()) {
      error_ = status.WithContext("writes stopped after a failure; reopen the Env to write again");
    }
  }

  // Transactions hold this shared from logging their commit or abort until it is applied
  // to every tree; a checkpoint holds it exclusively while it reads the log's last LSN.
  Mutex& resolution_gate() { return resolution_gate_; }

 private:
  Mutex resolution_gate_;
  LogWriter* const log_;
  mutable Mutex fn_mu_;
  std::function<uint64_t()> next_txn_id_ ABSL_GUARDED_BY(fn_mu_);
  std::function<TxnId()> oldest_ ABSL_GUARDED_BY(fn_mu_);
  std::function<std::shared_ptr<const LiveReaders>()> live_readers_ ABSL_GUARDED_BY(fn_mu_);
  mutable Mutex mu_;
  Status error_ ABSL_GUARDED_BY(mu_);
};

// Autocommitted writes are logged as one record each (kAutocommitInsert/Delete, or
// kUpdate/kUpdateBroadcast with transaction id 0), which is also their commit.
class TableLog final : public TreeWriteLog {
 public:
  TableLog(WriteState* state, TableId table) : state_(state), table_(table) {}

  Status LogWrite(const Message& message, Lsn* lsn) override;
  void ApplyFailed(const Status& status) override;
  Status SyncThrough(Lsn lsn) override;
  Lsn LastLsn() const override { return state_->log()->last_lsn(); }
  void BlockResolutions() override ABSL_NO_THREAD_SAFETY_ANALYSIS {
    state_->resolution_gate().Lock();
  }
  void UnblockResolutions() override ABSL_NO_THREAD_SAFETY_ANALYSIS {
    state_->resolution_gate().Unlock();
  }
  uint64_t NextTxnIdHint() const override { return state_->next_txn_id(); }
  TxnId OldestReferencedXid() const override { return state_->oldest_referenced(); }
  std::shared_ptr<const LiveReaders> TakeLiveReaders() const override {
    return state_->TakeLiveReaders();
  }

 private:
  WriteState* const state_;
  const TableId table_;
};

// The tree message a logged table write replays as, with `xids` as the writer's stack for
// transactional records (autocommitted ones have none); false for other records.
bool MessageFromLogRecord(const LogRecord& record, const XidStack& xids, Message* message);

}  // namespace fern

#endif  // FERN_DB_TABLE_LOG_H_
