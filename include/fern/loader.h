// Loader: bulk-builds an empty table from rows given in any order.
#ifndef FERN_LOADER_H_
#define FERN_LOADER_H_

#include <string_view>

#include "fern/status.h"

namespace fern {

// Nothing is visible until Finish returns OK; a crash or an error before that leaves the
// table empty. It sorts in runs of up to a quarter of Options::cache_bytes, spilled to disk:
// that much memory outside the cache per loader, for each loader running at once.
class Loader {
 public:
  virtual ~Loader();  // abandons the load unless Finish returned OK
  virtual Status Add(std::string_view key, std::string_view value) = 0;
  // A key added twice: AlreadyExists naming it, nothing loaded. The rows appear to every
  // reader at once, so Finish waits for snapshots taken before it (kSnapshot transactions,
  // cursors without a transaction) and transactions holding locks in the table to end: Busy,
  // nothing loaded, if one outlives Options::lock_timeout_ms.
  virtual Status Finish() = 0;
};

}  // namespace fern

#endif  // FERN_LOADER_H_
