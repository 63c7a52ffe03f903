// Env: one directory holding a log, a rollback file and tables.
#ifndef FERN_ENV_H_
#define FERN_ENV_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fern/loader.h"
#include "fern/options.h"
#include "fern/status.h"
#include "fern/table.h"
#include "fern/txn.h"

namespace fern {

// An Env and its Tables may be used from any number of threads at once. Several Envs
// (different directories) may live in one process; one directory is open at most once.
class Env {
 public:
  static Status Open(const std::string& dir, const Options& options, std::unique_ptr<Env>* env);
  virtual ~Env();  // stops background work, takes a final checkpoint
  // Creates the table if missing; the Env owns the Table.
  virtual Status OpenTable(std::string_view name, const TableOptions& options, Table** table) = 0;
  virtual Status DropTable(std::string_view name) = 0;
  virtual Status Begin(const TxnOptions& options, std::unique_ptr<Txn>* txn) = 0;
  virtual Status Checkpoint() = 0;
  virtual Status NewLoader(Table* table, std::unique_ptr<Loader>* loader) = 0;  // table must be empty
  // Transactions that were prepared (XA) and not resolved when the process last stopped.
  // Each is live again, holding its locks; the caller commits or aborts it.
  virtual Status RecoverPrepared(std::vector<std::unique_ptr<Txn>>* txns) = 0;
  // Text properties: "fern.stats" (engine counters, one `name: value` a line) at least.
  virtual bool GetProperty(std::string_view name, std::string* value) = 0;
};

}  // namespace fern

#endif  // FERN_ENV_H_
