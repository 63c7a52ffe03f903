// TableLog: how one table's writes reach the Env's write-ahead log (FractalTree's
// TreeWriteLog), and the Env-wide write state the tables share.
#ifndef FERN_DB_TABLE_LOG_H_
#define FERN_DB_TABLE_LOG_H_

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "util/mutex.h"
#include "ft/tree.h"
#include "log/log_format.h"
#include "log/log_writer.h"

namespace fern {

// Shared by an Env and its tables. Thread-safe.
class WriteState {
 public:
  explicit WriteState(LogWriter* log) : log_(log) {}
  LogWriter* log() const { return log_; }
  // OK, or the error that made the Env refuse writes (a failed log write or fsync, a write
  // that was logged but could not be applied). Reads keep working.
  Status error() const {
    MutexLock lock(&mu_);
    return error_;
  }
  void SetError(const Status& status) {
    MutexLock lock(&mu_);
    if (error_.ok()) error_ = status;
  }

 private:
  LogWriter* const log_;
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

 private:
  WriteState* const state_;
  const TableId table_;
};

// The tree message a logged table write replays as; false for records that are not
// autocommitted table writes.
bool MessageFromLogRecord(const LogRecord& record, Message* message);

}  // namespace fern

#endif  // FERN_DB_TABLE_LOG_H_
