#include "db/table_log.h"

#include "util/status_macros.h"

namespace fern {

Status TableLog::LogWrite(const Message& message, Lsn* lsn) {
  *lsn = 0;
  FERN_RETURN_IF_ERROR(state_->error());
  LogRecord record;
  if (!message.xids.empty()) {
    const TxnId txn = message.xids.innermost();
    switch (message.type) {
      case MessageType::kInsert:
        record = LogRecord::Insert(table_, txn, message.key, message.value);
        break;
      case MessageType::kDelete:
        record = LogRecord::Delete(table_, txn, message.key);
        break;
      case MessageType::kUpdate:
        record = LogRecord::Update(table_, txn, message.key, message.value);
        break;
      default:
        return Status::OK();  // resolutions are implied by the commit or abort record
    }
    return state_->log()->Append(record, lsn);
  }
  switch (message.type) {
    case MessageType::kInsert:
      record = LogRecord::AutocommitInsert(table_, kNoTxn, message.key, message.value);
      break;
    case MessageType::kDelete:
      record = LogRecord::AutocommitDelete(table_, kNoTxn, message.key);
      break;
    case MessageType::kUpdate:
      record = LogRecord::Update(table_, kNoTxn, message.key, message.value);
      break;
    case MessageType::kUpdateBroadcast:
      record = LogRecord::UpdateBroadcast(table_, kNoTxn, message.value);
      break;
    default:
      return Status::OK();  // not a logical change (e.g. optimize)
  }
  return state_->log()->Append(record, lsn);
}

void TableLog::ApplyFailed(const Status& status) {
  state_->SetError(status.WithContext("a logged write could not be applied"));
}

Status TableLog::SyncThrough(Lsn lsn) {
  if (lsn == 0) return Status::OK();
  return state_->log()->Sync(lsn);
}

bool MessageFromLogRecord(const LogRecord& record, const XidStack& xids, Message* message) {
  *message = Message();
  message->xids = XidStack();
  switch (record.type) {
    case LogRecordType::kInsert:
      message->type = MessageType::kInsert;
      message->xids = xids;
      message->key = record.key;
      message->value = record.value;
      return !xids.empty();
    case LogRecordType::kDelete:
      message->type = MessageType::kDelete;
      message->xids = xids;
      message->key = record.key;
      return !xids.empty();
    case LogRecordType::kAutocommitInsert:
      message->type = MessageType::kInsert;
      message->key = record.key;
      message->value = record.value;
      return true;
    case LogRecordType::kAutocommitDelete:
      message->type = MessageType::kDelete;
      message->key = record.key;
      return true;
    case LogRecordType::kUpdate:
      if (record.txn_id != kNoTxn) {
        if (xids.empty()) return false;
        message->xids = xids;
      }
      message->type = MessageType::kUpdate;
      message->key = record.key;
      message->value = record.extra;
      return true;
    case LogRecordType::kUpdateBroadcast:
      if (record.txn_id != kNoTxn) return false;
      message->type = MessageType::kUpdateBroadcast;
      message->value = record.extra;
      return true;
    default:
      return false;
  }
}

}  // namespace fern
