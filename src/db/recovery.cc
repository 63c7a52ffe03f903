// Crash recovery: replaying the write-ahead log into the tables when an Env opens.
#include <algorithm>
#include <limits>

#include "db/env_impl.h"
#include "log/log_reader.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

bool IsTableWrite(LogRecordType type) {
  switch (type) {
    case LogRecordType::kInsert:
    case LogRecordType::kDelete:
    case LogRecordType::kUpdate:
    case LogRecordType::kUpdateBroadcast:
    case LogRecordType::kAutocommitInsert:
    case LogRecordType::kAutocommitDelete:
      return true;
    default:
      return false;
  }
}

}  // namespace

Status EnvImpl::Recover() {
  recovery_end_lsn_ = log_->last_lsn();
  // Each table's checkpoint LSN, read from its header without opening the tree.
  std::map<uint64_t, std::pair<std::string, Lsn>> by_id;  // id -> (name, checkpoint LSN)
  std::map<uint64_t, std::string> comparator_of;
  Lsn start = std::numeric_limits<Lsn>::max();
  for (const auto& [name, entry] : catalog_.tables) {
    std::unique_ptr<TreeFile> file;
    FERN_RETURN_IF_ERROR(TreeFile::Open(TablePath(entry.file_name), /*read_only=*/true, &file));
    FileHeader header = file->header();
    by_id[entry.id] = {name, header.checkpoint_lsn};
    comparator_of[entry.id] = header.comparator_name;
    start = std::min(start, header.checkpoint_lsn);
  }
  if (by_id.empty() || start >= recovery_end_lsn_) return Status::OK();

  std::unique_ptr<LogReader> reader;
  FERN_RETURN_IF_ERROR(LogReader::Open(dir_, &reader));
  FERN_RETURN_IF_ERROR(reader->SeekToLsn(start + 1));
  std::vector<std::string> replayed;
  auto apply = [&](const LogRecord& record) -> Status {
    if (!IsTableWrite(record.type)) return Status::OK();
    auto it = by_id.find(record.table_id);
    if (it == by_id.end()) return Status::OK();  // the table was dropped since
    const auto& [name, checkpoint_lsn] = it->second;
    if (record.lsn <= checkpoint_lsn) return Status::OK();
    if (comparator_of[record.table_id] != BytewiseComparator()->Name()) {
      deferred_.emplace(record.table_id, checkpoint_lsn);
      return Status::OK();
    }
    Message message;
    if (!MessageFromLogRecord(record, &message)) {
      return Status::NotSupported(StrCat(reader->current_path(), ": record at LSN ", record.lsn,
                                         " belongs to a transaction; this build cannot replay it"));
    }
    auto table = tables_.find(name);
    if (table == tables_.end()) {
      const CatalogEntry& entry = catalog_.tables.at(name);
      std::unique_ptr<TreeFile> file;
      FERN_RETURN_IF_ERROR(TreeFile::Open(TablePath(entry.file_name), true, &file));
      FileHeader header = file->header();
      file.reset();
      std::unique_ptr<TableImpl> impl;
      FERN_RETURN_IF_ERROR(OpenExisting(name, entry, BytewiseComparator(),
                                        static_cast<Compression>(header.compression),
                                        header.compression_level, &impl));
      table = tables_.emplace(name, std::move(impl)).first;
      replayed.push_back(name);
    }
    return table->second->tree()->Replay(message, record.lsn);
  };
  while (reader->Valid() && reader->record().lsn <= recovery_end_lsn_) {
    FERN_RETURN_IF_ERROR(apply(reader->record()));
    FERN_RETURN_IF_ERROR(reader->Next());
  }
  // Make the replayed state a checkpoint, so the next open starts from here.
  for (const std::string& name : replayed)
    FERN_RETURN_IF_ERROR(tables_.at(name)->tree()->Checkpoint());
  return Status::OK();
}

Status EnvImpl::ReplayTable(uint64_t id, FractalTree* tree) {
  Lsn checkpoint_lsn = tree->checkpoint_lsn();
  std::unique_ptr<LogReader> reader;
  FERN_RETURN_IF_ERROR(LogReader::Open(dir_, &reader));
  FERN_RETURN_IF_ERROR(reader->SeekToLsn(checkpoint_lsn + 1));
  while (reader->Valid() && reader->record().lsn <= recovery_end_lsn_) {
    const LogRecord& record = reader->record();
    if (IsTableWrite(record.type) && record.table_id == id) {
      Message message;
      if (!MessageFromLogRecord(record, &message)) {
        return Status::NotSupported(
            StrCat(reader->current_path(), ": record at LSN ", record.lsn,
                   " belongs to a transaction; this build cannot replay it"));
      }
      FERN_RETURN_IF_ERROR(tree->Replay(message, record.lsn));
    }
    FERN_RETURN_IF_ERROR(reader->Next());
  }
  return tree->Checkpoint();
}

Status EnvImpl::CheckpointLocked() {
  FERN_RETURN_IF_ERROR(write_state_->error());
  Lsn begin;
  uint64_t id = ++checkpoints_taken_;
  FERN_RETURN_IF_ERROR(log_->Append(LogRecord::BeginCheckpoint(id), &begin));
  Lsn needed = log_->last_lsn();
  for (auto& [name, table] : tables_) {
    FERN_RETURN_IF_ERROR(table->tree()->Checkpoint());
    needed = std::min(needed, table->tree()->checkpoint_lsn());
  }
  for (const auto& [table_id, lsn] : deferred_) needed = std::min(needed, lsn);
  Lsn end;
  FERN_RETURN_IF_ERROR(log_->Append(LogRecord::EndCheckpoint(id, begin), &end));
  FERN_RETURN_IF_ERROR(log_->Sync(end));
  // Every record a table may still need has an LSN above `needed`.
  return log_->RemoveFilesBefore(needed + 1);
}

}  // namespace fern
