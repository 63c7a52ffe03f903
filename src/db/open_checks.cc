#include "db/open_checks.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

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

Status CheckLogPresent(const std::string& dir, const Catalog& catalog,
                       const std::vector<LogFileInfo>& files) {
  if (catalog.tables.empty()) return Status::OK();
  if (files.empty()) {
    return Status::Corruption(StrCat(dir, ": the catalog names ", catalog.tables.size(),
                                     " tables, but there are no log files: they were deleted"));
  }
  if (files.size() == 1) {
    std::error_code error;
    const uint64_t size = std::filesystem::file_size(files.front().path, error);
    if (!error && size < kLogFileHeaderSize) {
      return Status::Corruption(StrCat(files.front().path, ": the only log file holds ", size,
                                       " bytes, less than its header, though the catalog names "
                                       "tables: it was emptied or truncated"));
    }
  }
  return Status::OK();
}

}  // namespace fern
