// The checks Env::Open makes of an Env's files against its catalog before it replays the
// log, so that a file lost or replaced after a crash is Corruption rather than rows missing.
// `ftverify ENV_DIR` makes the same checks without opening the Env. Stateless.
#ifndef FERN_DB_OPEN_CHECKS_H_
#define FERN_DB_OPEN_CHECKS_H_

#include <string>

#include "db/catalog.h"
#include "fern/status.h"
#include "ft/file_header.h"
#include "log/log_format.h"

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

}  // namespace fern

#endif  // FERN_DB_OPEN_CHECKS_H_
