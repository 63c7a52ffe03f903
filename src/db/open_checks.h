// The checks Env::Open makes of an Env's files against its catalog before it replays the
// log, so that a file lost or replaced after a crash is Corruption rather than rows missing.
// `ftverify ENV_DIR` makes the same checks without opening the Env. Stateless.
#ifndef FERN_DB_OPEN_CHECKS_H_
#define FERN_DB_OPEN_CHECKS_H_

#include <string>
#include <vector>

#include "db/catalog.h"
#include "fern/status.h"
#include "ft/file_header.h"
#include "log/log_format.h"
#include "log/log_reader.h"

namespace fern {

// Whether the table file at `path`, whose newest valid header is `header`, is the file the
// catalog's `entry` names in the state the catalog last saw, and whether the log (valid
// through `log_last_lsn`) still holds what its checkpoint points past. Corruption naming
// `path` and the reason: another table's file (file uid), a header older than the catalog
// saw (the newest header is damaged, or the file is an older copy), a checkpoint LSN past
// the log's end (log files missing or truncated).
Status CheckTableFile(const std::string& path, const CatalogEntry& entry, const FileHeader& header,
                      Lsn log_last_lsn);

// Whether a log whose oldest file starts at `first_lsn` still holds the catalog's replay
// LSN (a checkpoint trims only files wholly below it). Corruption naming `dir` if not.
Status CheckLogStart(const std::string& dir, Lsn first_lsn, Lsn replay_from_lsn);

// Whether the log is there at all. From an Env's first open on, its log holds a file with a
// whole header (a checkpoint trims only files before the one it writes to), and tables are
// created only in an open Env: Corruption naming `dir` or the file if `catalog` names tables
// over no log file, or over a lone file shorter than its header (the log was deleted or
// emptied, and with it every commit since the tables' checkpoints). A log cut after its
// header cannot be told from a crash's torn tail.
Status CheckLogPresent(const std::string& dir, const Catalog& catalog,
                       const std::vector<LogFileInfo>& files);

}  // namespace fern

#endif  // FERN_DB_OPEN_CHECKS_H_
