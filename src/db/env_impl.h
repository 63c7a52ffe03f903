// EnvImpl: one open Env directory — its lock, catalog, cachetable and tables.
#ifndef FERN_DB_ENV_IMPL_H_
#define FERN_DB_ENV_IMPL_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cachetable/cachetable.h"
#include "db/catalog.h"
#include "db/table_impl.h"
#include "fern/env.h"
#include "util/file.h"
#include "util/thread_pool.h"

namespace fern {

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

 private:
  EnvImpl(std::string dir, const Options& options);
  std::string CatalogPath() const { return dir_ + "/" + kCatalogFileName; }
  std::string TablePath(const std::string& file_name) const { return dir_ + "/" + file_name; }

  const std::string dir_;
  const Options options_;
  std::unique_ptr<FileLock> lock_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Cachetable> cache_;

  absl::Mutex mu_;
  Catalog catalog_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<TableImpl>> tables_ ABSL_GUARDED_BY(mu_);
  // Dropped tables stay allocated so that pointers users still hold fail cleanly.
  std::vector<std::unique_ptr<TableImpl>> dropped_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fern

#endif  // FERN_DB_ENV_IMPL_H_
