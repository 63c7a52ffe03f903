// TableImpl: the public Table over one FractalTree.
#ifndef FERN_DB_TABLE_IMPL_H_
#define FERN_DB_TABLE_IMPL_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "db/table_log.h"
#include "db/use_gate.h"
#include "fern/table.h"
#include "ft/tree.h"
#include "txn/lock_tree.h"
#include "util/mutex.h"

namespace fern {

class EnvImpl;
class TxnImpl;

// Thread-safe. After MarkDropped every call returns InvalidArgument; the object lives on
// (owned by the Env) so stale pointers held by users fail cleanly instead of crashing.
class TableImpl final : public Table {
 public:
  // `tree` must already log through `log` (FractalTree::SetWriteLog).
  TableImpl(EnvImpl* env, std::string name, uint64_t id, std::shared_ptr<FractalTree> tree,
            std::unique_ptr<TableLog> log, WriteState* state, bool sync_commits,
            DeadlockDetector* detector, MemoryBudget* lock_memory)
      : env_(env),
        name_(std::move(name)),
        id_(id),
        tree_(std::move(tree)),
        log_(std::move(log)),
        state_(state),
        sync_commits_(sync_commits),
        locks_(std::make_unique<LockTree>(*tree_->config().comparator, *detector,
                                          LockTree::kDefaultEscalateAt, lock_memory)) {}

  std::string_view name() const override { return name_; }
  Status Put(Txn* txn, std::string_view key, std::string_view value) override;
  Status Insert(Txn* txn, std::string_view key, std::string_view value) override;
  Status Get(Txn* txn, std::string_view key, std::string* value) override;
  Status GetForUpdate(Txn* txn, std::string_view key, std::string* value) override;
  Status Delete(Txn* txn, std::string_view key) override;
  Status Update(Txn* txn, std::string_view key, std::string_view extra) override;
  Status UpdateAll(Txn* txn, std::string_view extra) override;
  std::unique_ptr<Cursor> NewCursor(Txn* txn) override;
  Status Optimize() override;

  uint64_t id() const { return id_; }
  EnvImpl* env() const { return env_; }
  const std::shared_ptr<FractalTree>& tree() const { return tree_; }
  LockTree* locks() const { return locks_.get(); }
  // What `txn` (null: autocommit) may see now: its own provisional versions, and committed
  // versions per its isolation (read committed: as of this call; snapshot: as of Begin).
  ReadView ViewFor(TxnImpl* txn) const;
  // The same, but as of this call whatever the isolation: for the existence check of an
  // Insert, which holds the row's write lock, so no other commit can change what it sees.
  ReadView CurrentViewFor(TxnImpl* txn) const;
  // For a reader with these xids (none: outside any transaction).
  ReadView CurrentViewFor(const XidStack& reader) const;
  // Under kSnapshot, Busy if another transaction committed a version of `key` after
  // `txn`'s snapshot (a write conflict: writing or locking the row would act on a version
  // the transaction cannot see); for an Insert, AlreadyExists if that version is a row.
  // REQUIRES: `txn` holds the row's write lock.
  Status CheckSnapshotWrite(TxnImpl* txn, std::string_view key, bool insert = false);
  // Takes the row's write lock for `txn` and checks a kSnapshot write (CheckSnapshotWrite);
  // on a write conflict (Busy) gives back the lock if the transaction did not hold it before.
  Status LockForWrite(TxnImpl* txn, std::string_view key, bool insert);
  // Every call after this fails with InvalidArgument; returns once the calls and commits in
  // flight in the table have finished, so that the tree may be closed.
  void MarkDropped() { gate_.Close(); }
  bool dropped() const { return gate_.closed(); }
  // InvalidArgument naming the table: what every call returns once it is dropped.
  Status Dropped() const;
  // Held (a UseGate::Scope) by every call into the table, and by a commit or abort while it
  // resolves its keys here.
  UseGate* gate() { return &gate_; }

  // Prepared transactions with writes in this table, each counted once. A prepared
  // transaction has promised that it can commit, so DropTable refuses while one is counted,
  // and once a drop has begun a transaction with writes here can no longer prepare.
  // AddPreparedWriter is false (nothing counted) once BeginDrop succeeded.
  bool AddPreparedWriter();
  void RemovePreparedWriter();
  // Busy if a prepared transaction has writes here; otherwise OK, and from now on
  // AddPreparedWriter fails.
  Status BeginDrop();

 private:
  // The TxnImpl behind `txn` (null for autocommit); InvalidArgument for another Env's.
  Status Unwrap(Txn* txn, TxnImpl** impl) const;
  // A transactional write of `key`: checks the transaction, takes the row's write lock,
  // logs the begin record if needed, runs `write` and records the key for commit/abort.
  // `insert`: the write is an Insert, which reports a row committed since a snapshot
  // transaction's snapshot as AlreadyExists rather than as a conflict.
  Status TxnWrite(TxnImpl* txn, std::string_view key, const std::function<Status()>& write,
                  bool insert = false);
  // UpdateAll by `txn`: a write lock on the whole table, then an update of each row.
  Status UpdateAllInTxn(TxnImpl* txn, std::string_view extra);
  // Ends an autocommitted write that was logged at `lsn`: durable when sync_commits.
  Status Commit(Status applied, Lsn lsn);
  // Runs an autocommitted write (txn == nullptr). `direct` writes outside any transaction
  // with the stamp TxnManager::BeginAutocommit gives (and the LSN it sets is synced per
  // sync_commits), after `lock` took what it writes (a row, or the whole table for
  // UpdateAll) without waiting under the given owner, if a transaction is live. When another
  // transaction holds it (Busy), `in_txn` writes in a transaction of its own instead,
  // committed here, which waits for the lock like any writer.
  Status Autocommit(absl::FunctionRef<Status(TxnId owner)> lock,
                    absl::FunctionRef<Status(TxnId stamp, Lsn* lsn)> direct,
                    absl::FunctionRef<Status(TxnImpl* own)> in_txn);
  // A write of one key (Put, Insert, Delete, Update): `tree_write` in `txn` through TxnWrite,
  // or, with no transaction, autocommitted (see Autocommit) by `direct`, or by `tree_write`
  // in a transaction of its own.
  Status WriteKey(TxnImpl* txn, std::string_view key,
                  absl::FunctionRef<Status(TxnImpl* in)> tree_write,
                  absl::FunctionRef<Status(TxnId stamp, Lsn* lsn)> direct, bool insert = false);

  EnvImpl* const env_;
  const std::string name_;
  const uint64_t id_;
  std::shared_ptr<FractalTree> tree_;
  std::unique_ptr<TableLog> log_;  // the tree logs through it; lives as long as the table
  WriteState* const state_;
  const bool sync_commits_;
  std::unique_ptr<LockTree> locks_;
  UseGate gate_;
  Mutex prepared_mu_;
  int prepared_writers_ ABSL_GUARDED_BY(prepared_mu_) = 0;
  bool dropping_ ABSL_GUARDED_BY(prepared_mu_) = false;
};

// Argument checks shared by every write: API.md's limits.
Status CheckKey(std::string_view key);
Status CheckValue(std::string_view value);

}  // namespace fern

#endif  // FERN_DB_TABLE_IMPL_H_
