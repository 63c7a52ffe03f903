// Human-readable rendering of the write-ahead log, one line per record, for `fern logdump DIR`
// and for tests and error reports. Stateless: any thread may call these.
//
// A record line is
//   <lsn> <file>+<offset> <type> <field>=<value> ...
// e.g.
//   42 0000000000000001.log+1290 autocommit_insert table=3 txn=17 key="k1" value="v1"
// Strings are printed with EscapeBytes (non-printable bytes as \xNN), cut at 64 bytes with
// their full size appended: value="aaaa..."(4096B). Lines starting with '#' are not records:
// one names each file as the dump enters it, the last says where the valid log ends.
#ifndef FERN_LOG_LOG_DUMP_H_
#define FERN_LOG_LOG_DUMP_H_

#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "fern/status.h"
#include "log/log_format.h"

namespace fern {

// "<type> <field>=<value> ..." for one record (without LSN and position).
std::string FormatLogRecord(const LogRecord& record);

// Reads the whole log of `dir` forward and hands each line (without a newline) to `emit`.
// Stops at the first error (Corruption naming file and offset, or an I/O error) and returns
// it, after emitting every record before it. A record that reads damaged is read again up to
// six times, after pauses doubling from 20 ms (1.26 s in all), before that: the log of an Env
// open in another process is being written while it is read, and a record read mid-write
// looks damaged.
Status DumpLog(const std::string& dir, absl::FunctionRef<void(std::string_view line)> emit);

}  // namespace fern

#endif  // FERN_LOG_LOG_DUMP_H_
