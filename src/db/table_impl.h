// TableImpl: the public Table over one FractalTree.
#ifndef FERN_DB_TABLE_IMPL_H_
#define FERN_DB_TABLE_IMPL_H_

#include <atomic>
#include <memory>
#include <string>

#include "db/table_log.h"
#include "fern/table.h"
#include "ft/tree.h"

namespace fern {

// Thread-safe. After MarkDropped every call returns InvalidArgument; the object lives on
// (owned by the Env) so stale pointers held by users fail cleanly instead of crashing.
class TableImpl final : public Table {
 public:
  // `tree` must already log through `log` (FractalTree::SetWriteLog).
  TableImpl(std::string name, uint64_t id, std::shared_ptr<FractalTree> tree,
            std::unique_ptr<TableLog> log, WriteState* state, bool sync_commits)
      : name_(std::move(name)),
        id_(id),
        tree_(std::move(tree)),
        log_(std::move(log)),
        state_(state),
        sync_commits_(sync_commits) {}

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
  const std::shared_ptr<FractalTree>& tree() const { return tree_; }
  void MarkDropped() { dropped_.store(true); }
  bool dropped() const { return dropped_.load(); }

 private:
  Status CheckUsable(Txn* txn) const;
  // Ends an autocommitted write that was logged at `lsn`: durable when sync_commits.
  Status Commit(Status applied, Lsn lsn);

  const std::string name_;
  const uint64_t id_;
  std::shared_ptr<FractalTree> tree_;
  std::unique_ptr<TableLog> log_;  // the tree logs through it; lives as long as the table
  WriteState* const state_;
  const bool sync_commits_;
  std::atomic<bool> dropped_{false};
};

// Argument checks shared by every write: API.md's limits.
Status CheckKey(std::string_view key);
Status CheckValue(std::string_view value);

}  // namespace fern

#endif  // FERN_DB_TABLE_IMPL_H_
