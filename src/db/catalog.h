// The catalog: which tables an Env holds and which file each lives in. Stored in the Env
// directory as CATALOG, replaced atomically (write temp, fsync, rename, fsync dir).
//
// Format, version 4 (little-endian; versions 1 to 3 are still read: 1 lacks the replay
// LSN, 1 and 2 the header counts, 1 to 3 the file uids):
//   offset  size    meaning
//   0       8       magic "FERNCATL"
//   8       4       format version (4)
//   12      8       next table id
//   20      8       replay-from LSN: recovery reads the log from here (0: from its start)
//   28      4       table count n
//   32      ...     n entries: table id (fixed64), name (varint length + bytes),
//                   file name (varint length + bytes), header count (fixed64),
//                   file uid (fixed64)
//   end-8   8       Checksum64 of everything before it
#ifndef FERN_DB_CATALOG_H_
#define FERN_DB_CATALOG_H_

#include <cstdint>
#include <map>
#include <string>

#include "fern/status.h"

namespace fern {

inline constexpr char kCatalogFileName[] = "CATALOG";

struct CatalogEntry {
  uint64_t id = 0;
  std::string file_name;
  // The checkpoint count of the table file's header when the catalog was last saved (0:
  // not known, from an older catalog). Header counts only grow, so a file whose header is
  // older lost its newest header (damage) or is an older copy of the file.
  uint64_t header_count = 0;
  // The file_uid in the table file's header (0: not known, from an older catalog or a
  // version-1 table file). A file with another uid is some other table's file.
  uint64_t file_uid = 0;
};

struct Catalog {
  uint64_t next_table_id = 1;
  // Every log record recovery may need has an LSN at or above this (written after each
  // checkpoint): a clean close leaves almost nothing to read at the next open.
  uint64_t replay_from_lsn = 0;
  std::map<std::string, CatalogEntry> tables;  // by table name

  std::string Serialize() const;
  // Corruption (naming `path`) on any damage.
  static Status Parse(std::string_view bytes, const std::string& path, Catalog* out);
  static Status Load(const std::string& path, Catalog* out);
  Status Save(const std::string& path) const;
};

}  // namespace fern

#endif  // FERN_DB_CATALOG_H_
