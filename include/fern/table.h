// Table: one fractal tree (one dictionary file) inside an Env.
#ifndef FERN_TABLE_H_
#define FERN_TABLE_H_

#include <memory>
#include <string>
#include <string_view>

#include "fern/cursor.h"
#include "fern/status.h"
#include "fern/txn.h"

namespace fern {

// `txn == nullptr` runs the call in a transaction of its own (autocommit).
// A Table may be used from many threads at once. The Env owns it.
// Writes wait up to Options::lock_timeout_ms for another transaction's row lock, then
// return Busy. In an Isolation::kSnapshot transaction, Put, Delete, Update, Insert and
// GetForUpdate of a row another transaction committed after the snapshot also return Busy
// (first committer wins; Insert returns AlreadyExists if that version is a row).
class Table {
 public:
  virtual ~Table();
  virtual std::string_view name() const = 0;
  virtual Status Put(Txn* txn, std::string_view key, std::string_view value) = 0;
  // AlreadyExists if the key is present.
  virtual Status Insert(Txn* txn, std::string_view key, std::string_view value) = 0;
  virtual Status Get(Txn* txn, std::string_view key, std::string* value) = 0;
  // Takes the row's write lock.
  virtual Status GetForUpdate(Txn* txn, std::string_view key, std::string* value) = 0;
  virtual Status Delete(Txn* txn, std::string_view key) = 0;
  virtual Status Update(Txn* txn, std::string_view key, std::string_view extra) = 0;
  virtual Status UpdateAll(Txn* txn, std::string_view extra) = 0;  // broadcast to every row
  virtual std::unique_ptr<Cursor> NewCursor(Txn* txn) = 0;         // nullptr: a snapshot taken now
  // Pushes every buffered message to the leaves and collects old versions.
  virtual Status Optimize() = 0;
};

}  // namespace fern

#endif  // FERN_TABLE_H_
