#include "db/open_checks.h"

#include <algorithm>

#include "util/strings.h"

namespace fern {

Status CheckTableFile(const std::string& path, const CatalogEntry& entry, const FileHeader& header,
                      Lsn log_last_lsn) {
  if (entry.file_uid != 0 && header.file_uid != entry.file_uid) {
    return Status::Corruption(StrCat(path, ": the file has uid ", Hex64(header.file_uid),
                                     " but the catalog's table has uid ", Hex64(entry.file_uid),
                                     ": it is another table's file"));
  }
  // The catalog is saved after the headers it counts are written, and a crash while a
  // header is written leaves the one before, which the catalog counted (or an older
  // catalog did).
  if (header.checkpoint_count < entry.header_count) {
    return Status::Corruption(
        StrCat(path, ": its header is from checkpoint ", header.checkpoint_count,
               " but the catalog saw checkpoint ", entry.header_count,
               ": the file's newest header is damaged, or the file is an older copy"));
  }
  // A checkpoint syncs the log through its LSN before a table's header says so.
  if (header.checkpoint_lsn > log_last_lsn) {
    return Status::Corruption(StrCat(path, ": its checkpoint holds the log through LSN ",
                                     header.checkpoint_lsn, ", but the log ends at LSN ",
                                     log_last_lsn, ": log files are missing or were truncated"));
  }
  return Status::OK();
}

Status CheckLogStart(const std::string& dir, Lsn first_lsn, Lsn replay_from_lsn) {
  if (first_lsn > std::max<Lsn>(replay_from_lsn, 1)) {
    return Status::Corruption(StrCat(dir, ": the log starts at LSN ", first_lsn,
                                     ", but recovery needs it from LSN ", replay_from_lsn,
                                     ": log files are missing"));
  }
  return Status::OK();
}

}  // namespace fern
