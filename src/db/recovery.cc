// Crash recovery: replaying the write-ahead log into the tables when an Env opens.
//
// Each table's header holds its checkpoint LSN: every logged write and every transaction
// resolution through it is in the table. Replay reads the whole retained log (the log is
// kept from the oldest record any table or live transaction needs), follows every
// transaction from its begin record to keep its keys, and applies to a table only records
// past that table's checkpoint LSN: writes as messages with the writer's xid stack, and a
// commit or abort as a commit or abort message for each of the transaction's keys in the
// table (including keys written before the checkpoint). Transactions still live at the end
// of the log are aborted, except prepared ones, which come back live (RecoverPrepared).
#include <algorithm>
#include <iterator>
#include <limits>

#include "db/env_impl.h"
#include "db/open_checks.h"
#include "db/txn_impl.h"
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

Status EnvImpl::ReplayLog(const TreeLookup& tree_for, std::map<TxnId, RecoveredTxn>* live,
                          TxnId* max_txn) {
  std::unique_ptr<LogReader> reader;
  FERN_RETURN_IF_ERROR(LogReader::Open(dir_, &reader));
  // Records below the catalog's replay LSN are needed by no table and no live transaction
  // (the last checkpoint said so before trimming the log).
  FERN_RETURN_IF_ERROR(reader->SeekToLsn(catalog_.replay_from_lsn));
  // Trimming keeps the file that holds the replay LSN; a log starting later lost records.
  if (!reader->files().empty()) {
    FERN_RETURN_IF_ERROR(
        CheckLogStart(dir_, reader->files().front().first_lsn, catalog_.replay_from_lsn));
  }

  // Applies `type` for each of `txn`'s keys to the trees that have not seen `lsn`.
  auto resolve = [&](const RecoveredTxn& txn, MessageType type, Lsn lsn) -> Status {
    for (const auto& [table_id, key] : txn.keys) {
      FractalTree* tree = tree_for(table_id);
      if (tree == nullptr) continue;
      Message message;
      message.type = type;
      message.xids = txn.xids;
      message.key = key;
      FERN_RETURN_IF_ERROR(tree->Replay(message, lsn));
    }
    return Status::OK();
  };
  auto find_or_add = [&](TxnId id, Lsn lsn) -> RecoveredTxn& {
    auto it = live->find(id);
    if (it == live->end()) {
      // Its begin record was trimmed: it ended before every table's checkpoint, so nothing
      // of it past a checkpoint LSN can follow. Tracked as a root all the same.
      RecoveredTxn txn;
      txn.xids.Push(id);
      txn.first_lsn = lsn;
      it = live->emplace(id, std::move(txn)).first;
    }
    return it->second;
  };

  while (reader->Valid() && reader->record().lsn <= recovery_end_lsn_) {
    const LogRecord& record = reader->record();
    const Lsn lsn = record.lsn;
    if (record.txn_id != kNoTxn) *max_txn = std::max(*max_txn, record.txn_id);
    switch (record.type) {
      case LogRecordType::kBeginTxn: {
        RecoveredTxn txn;
        txn.parent = record.parent_id;
        if (record.parent_id != kNoTxn) {
          txn.xids = find_or_add(record.parent_id, lsn).xids;
        }
        txn.xids.Push(record.txn_id);
        txn.first_lsn = lsn;
        (*live)[record.txn_id] = std::move(txn);
        break;
      }
      case LogRecordType::kPrepareTxn: {
        RecoveredTxn& txn = find_or_add(record.txn_id, lsn);
        txn.prepared = true;
        txn.prepared_xid.assign(record.xid);
        break;
      }
      case LogRecordType::kCommitTxn: {
        RecoveredTxn& txn = find_or_add(record.txn_id, lsn);
        if (txn.parent != kNoTxn) {
          // As in TxnImpl::Commit: a child's keys become its parent's, with no message; the
          // shorter list is appended to the longer (the order does not matter).
          RecoveredTxn& parent = find_or_add(txn.parent, lsn);
          if (parent.keys.size() < txn.keys.size()) parent.keys.swap(txn.keys);
          parent.keys.insert(parent.keys.end(), std::make_move_iterator(txn.keys.begin()),
                             std::make_move_iterator(txn.keys.end()));
        } else {
          FERN_RETURN_IF_ERROR(resolve(txn, MessageType::kCommitAny, lsn));
        }
        live->erase(record.txn_id);
        break;
      }
      case LogRecordType::kTableLock: {
        // Locks belong to the root, whichever member of the family took them.
        TxnId root = record.txn_id;
        while (find_or_add(root, lsn).parent != kNoTxn) root = find_or_add(root, lsn).parent;
        find_or_add(root, lsn).locked_tables.push_back(record.table_id);
        break;
      }
      case LogRecordType::kAbortTxn: {
        RecoveredTxn& txn = find_or_add(record.txn_id, lsn);
        FERN_RETURN_IF_ERROR(resolve(txn, MessageType::kAbortAny, lsn));
        live->erase(record.txn_id);
        break;
      }
      default:
        if (IsTableWrite(record.type)) {
          XidStack xids;
          if (record.txn_id != kNoTxn) {
            RecoveredTxn& txn = find_or_add(record.txn_id, lsn);
            txn.keys.emplace_back(record.table_id, std::string(record.key));
            xids = txn.xids;
          }
          FractalTree* tree = tree_for(record.table_id);
          if (tree != nullptr) {
            Message message;
            if (!MessageFromLogRecord(record, xids, &message)) {
              return Status::Corruption(StrCat(reader->current_path(), ": record at LSN ", lsn,
                                               " is not a replayable table write"));
            }
            FERN_RETURN_IF_ERROR(tree->Replay(message, lsn));
          }
        }
        break;
    }
    FERN_RETURN_IF_ERROR(reader->Next());
  }
  return Status::OK();
}

Status EnvImpl::Recover() {
  recovery_end_lsn_ = log_->last_lsn();
  // Each table's checkpoint LSN and comparator, read from its header.
  struct TableInfo {
    std::string name;
    Lsn checkpoint_lsn;
    bool builtin_comparator;
    Compression codec;
    int level;
  };
  std::map<uint64_t, TableInfo> tables;
  TxnId max_txn = 0;
  for (const auto& [name, entry] : catalog_.tables) {
    std::unique_ptr<TreeFile> file;
    Status opened = TreeFile::Open(TablePath(entry.file_name), /*read_only=*/true, &file);
    if (opened.IsNotFound()) {
      // The Env is damaged, not absent: callers that take NotFound from Open for "no
      // database here yet" must not create one over it.
      return Status::Corruption(StrCat(opened.message(), " (the catalog names it for table \"",
                                       EscapeBytes(name), "\")"));
    }
    FERN_RETURN_IF_ERROR(opened);
    FileHeader header = file->header();
    FERN_RETURN_IF_ERROR(
        CheckTableFile(TablePath(entry.file_name), entry, header, recovery_end_lsn_));
    tables[entry.id] = {name, header.checkpoint_lsn,
                        header.comparator_name == BytewiseComparator()->Name(),
                        static_cast<Compression>(header.compression), header.compression_level};
    max_txn = std::max<TxnId>(max_txn, header.next_txn_hint);
  }

  Status open_error;
  TreeLookup tree_for = [&](uint64_t table_id) -> FractalTree* {
    auto it = tables.find(table_id);
    if (it == tables.end()) return nullptr;  // dropped since
    const TableInfo& info = it->second;
    if (!info.builtin_comparator) {
      // Only OpenTable can supply the comparator: replay this table then, from where this
      // replay began (see deferred_).
      deferred_.emplace(table_id, catalog_.replay_from_lsn == 0 ? 0 : catalog_.replay_from_lsn - 1);
      return nullptr;
    }
    auto open = tables_.find(info.name);
    if (open == tables_.end()) {
      std::unique_ptr<TableImpl> impl;
      Status s = OpenExisting(info.name, catalog_.tables.at(info.name), BytewiseComparator(),
                              info.codec, info.level, &impl);
      if (!s.ok()) {
        if (open_error.ok()) open_error = s;
        return nullptr;
      }
      open = tables_.emplace(info.name, std::move(impl)).first;
    }
    return open->second->tree().get();
  };
  std::map<TxnId, RecoveredTxn> live;
  FERN_RETURN_IF_ERROR(ReplayLog(tree_for, &live, &max_txn));
  FERN_RETURN_IF_ERROR(open_error);

  txn_manager_ = std::make_unique<TxnManager>(max_txn + 1);
  TxnManager* manager = txn_manager_.get();
  write_state_->set_next_txn_id([manager] { return manager->next_id(); });
  write_state_->set_oldest_referenced([manager]() -> TxnId {
    return manager->live_count() == 0 && manager->snapshot_count() == 0
               ? kNoTxn
               : manager->OldestReferencedXid();
  });
  write_state_->set_live_readers([manager] { return manager->TakeLiveReaders(); });
  // Roots still live at the end of the log: prepared ones come back, the others abort.
  for (auto& [id, txn] : live) {
    if (txn.parent != kNoTxn) continue;  // decided with its root
    if (txn.prepared) {
      FERN_RETURN_IF_ERROR(RestorePrepared(id, txn, tree_for));
      continue;
    }
    for (const auto& [table_id, key] : txn.keys) {
      FractalTree* tree = tree_for(table_id);
      if (tree == nullptr) continue;
      FERN_RETURN_IF_ERROR(tree->Resolve(MessageType::kAbortAny, txn.xids, key));
    }
    Lsn lsn;
    FERN_RETURN_IF_ERROR(log_->Append(LogRecord::AbortTxn(id), &lsn));
  }
  FERN_RETURN_IF_ERROR(open_error);
  recovered_ = true;
  // Make the replayed state a checkpoint, so the next open starts from here.
  for (auto& [name, table] : tables_) FERN_RETURN_IF_ERROR(table->tree()->Checkpoint());
  return Status::OK();
}

Status EnvImpl::RestorePrepared(TxnId id, const RecoveredTxn& txn, const TreeLookup& tree_for) {
  TxnStatePtr state;
  FERN_RETURN_IF_ERROR(
      txn_manager_->BeginRecovered(id, nullptr, Isolation::kReadCommitted, &state));
  FERN_RETURN_IF_ERROR(txn_manager_->Prepare(state, txn.prepared_xid));
  auto impl = std::make_unique<TxnImpl>(this, state, nullptr, TxnOptions());
  std::vector<std::pair<TableImpl*, std::string>> writes;
  for (const auto& [table_id, key] : txn.keys) {
    if (tree_for(table_id) == nullptr) continue;  // dropped, or replayed at OpenTable
    for (auto& [name, table] : tables_) {
      if (table->id() != table_id) continue;
      FERN_RETURN_IF_ERROR(
          table->locks()->Acquire(id, key, key, LockTree::Mode::kWrite, absl::ZeroDuration()));
      writes.emplace_back(table.get(), key);
    }
  }
  std::vector<TableImpl*> table_locks;
  for (uint64_t table_id : txn.locked_tables) {
    if (tree_for(table_id) == nullptr) continue;
    for (auto& [name, table] : tables_) {
      if (table->id() != table_id) continue;
      FERN_RETURN_IF_ERROR(table->locks()->AcquireRange(
          id, nullptr, nullptr, LockTree::Mode::kWrite, absl::ZeroDuration()));
      table_locks.push_back(table.get());
    }
  }
  impl->AdoptRecovered(std::move(writes), std::move(table_locks), txn.first_lsn);
  {
    MutexLock lock(&prepared_mu_);
    restored_prepared_[id] = impl.get();
  }
  recovered_prepared_.push_back(std::move(impl));
  return Status::OK();
}

void EnvImpl::EndRestoredPrepared(TxnId id, MessageType outcome) {
  restored_prepared_.erase(id);
  prepared_outcomes_[id] = outcome;
}

Status EnvImpl::ReplayTable(uint64_t id, TableImpl* table) {
  FractalTree* tree = table->tree().get();
  TreeLookup tree_for = [id, tree](uint64_t table_id) -> FractalTree* {
    return table_id == id ? tree : nullptr;
  };
  std::map<TxnId, RecoveredTxn> live;
  TxnId max_txn = 0;
  FERN_RETURN_IF_ERROR(ReplayLog(tree_for, &live, &max_txn));
  // Transactions live at the end of the log were aborted when the Env opened, unless
  // prepared: a restored one still undecided takes this table's keys and locks too, and one
  // that has ended since has them resolved as it ended.
  {
    MutexLock prepared_lock(&prepared_mu_);
    for (auto& [txn_id, txn] : live) {
      if (txn.parent != kNoTxn) continue;
      TxnImpl* prepared = nullptr;
      MessageType outcome = MessageType::kAbortAny;
      if (auto it = restored_prepared_.find(txn_id); it != restored_prepared_.end()) {
        prepared = it->second;
      } else if (auto ended = prepared_outcomes_.find(txn_id); ended != prepared_outcomes_.end()) {
        outcome = ended->second;
      }
      for (uint64_t table_id : txn.locked_tables) {
        if (table_id != id || prepared == nullptr) continue;
        FERN_RETURN_IF_ERROR(table->locks()->AcquireRange(
            txn_id, nullptr, nullptr, LockTree::Mode::kWrite, absl::ZeroDuration()));
        prepared->AdoptTableLock(table);
      }
      for (const auto& [table_id, key] : txn.keys) {
        if (table_id != id) continue;
        if (prepared != nullptr) {
          FERN_RETURN_IF_ERROR(table->locks()->Acquire(txn_id, key, key, LockTree::Mode::kWrite,
                                                       absl::ZeroDuration()));
          prepared->AdoptKey(table, key);
        } else {
          FERN_RETURN_IF_ERROR(tree->Resolve(outcome, txn.xids, key));
        }
      }
    }
  }
  return tree->Checkpoint();
}

Status EnvImpl::CheckpointLocked(bool closing) {
  FERN_RETURN_IF_ERROR(write_state_->error());
  // Serializing the dirty nodes takes fresh buffers for a moment; where free memory is
  // resident, they would land on top of it (a close after overwriting a reopened database
  // at a 256 MiB cache went from 294 to 318 MiB RSS).
  cache_->ReturnFreedMemoryNow();
  log_bytes_at_checkpoint_.store(log_->stats().bytes_written, std::memory_order_relaxed);
  Lsn begin;
  uint64_t id = ++checkpoints_taken_;
  Lsn needed;
  {
    // A transaction live when the tables' images are taken (below) may have writes in them
    // and commit or abort only later, in records past their checkpoint LSNs: replay then
    // needs its records from its begin on to know every key it wrote. Such a transaction
    // is live here already (one that begins later logs its begin record after this
    // checkpoint's), and LogBeginTxn appends and registers in one step under live_mu_, so
    // none is missed. Looking only after the images are written would miss one that
    // committed meanwhile: replay saw its commit but not its early keys, which then stayed
    // provisional, and lost.
    MutexLock lock(&live_mu_);
    FERN_RETURN_IF_ERROR(log_->Append(LogRecord::BeginCheckpoint(id), &begin));
    needed = begin;
    if (!live_txns_.empty()) needed = std::min(needed, live_txns_.begin()->first - 1);
  }
  for (auto& [name, table] : tables_) {
    // The close's checkpoint compacts only what takes a few milliseconds to move (a table
    // emptied by deletes), leaving the rest to the next open's: a close should not wait
    // long for block copies. It drops each node it writes: a close after overwriting a
    // reopened database at a 256 MiB cache went from 289 to 312 MiB RSS while it kept them.
    FERN_RETURN_IF_ERROR(table->tree()->Checkpoint(
        closing ? TailCompaction::kIfSmall : TailCompaction::kBounded, /*drop_written=*/closing));
    needed = std::min(needed, table->tree()->checkpoint_lsn());
  }
  for (const auto& [table_id, lsn] : deferred_) needed = std::min(needed, lsn);
  Lsn end;
  if (closing) log_->StartNewFileAtNextAppend();
  FERN_RETURN_IF_ERROR(log_->Append(LogRecord::EndCheckpoint(id, begin), &end));
  FERN_RETURN_IF_ERROR(log_->Sync(end));
  // Every record a table or a live transaction may still need has an LSN above `needed`.
  // The catalog also records each table's header count, written (and synced) by now: a
  // header found older at the next open was lost after this point.
  Catalog updated = catalog_;
  updated.replay_from_lsn = std::max<Lsn>(catalog_.replay_from_lsn, needed + 1);
  for (auto& [name, table] : tables_) {
    auto entry = updated.tables.find(name);
    if (entry != updated.tables.end()) {
      const FileHeader header = table->tree()->file()->header();
      entry->second.header_count = header.checkpoint_count;
      entry->second.file_uid = header.file_uid;  // known from now on for an older catalog
    }
  }
  if (updated.replay_from_lsn != catalog_.replay_from_lsn ||
      updated.Serialize() != catalog_.Serialize()) {
    FERN_RETURN_IF_ERROR(updated.Save(CatalogPath()));
    catalog_ = std::move(updated);
  }
  return log_->RemoveFilesBefore(needed + 1);
}

}  // namespace fern
