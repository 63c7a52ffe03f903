#include "log/log_dump.h"

#include <memory>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "log/log_reader.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

constexpr size_t kMaxShownBytes = 64;
// How often a record that reads damaged is read again (see DumpLog), and the first pause,
// doubled at each reread: 1.26 s in all. A record being written has read damaged for over
// 60 ms on a loaded host (two test processes and a build on two vCPUs).
constexpr int kRereads = 6;
constexpr absl::Duration kFirstRereadPause = absl::Milliseconds(20);

void AppendBytes(std::string* out, std::string_view field, std::string_view bytes) {
  *out += StrCat(" ", field, "=\"", EscapeBytes(bytes, kMaxShownBytes), "\"");
  if (bytes.size() > kMaxShownBytes) *out += StrCat("(", bytes.size(), "B)");
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string FormatLogRecord(const LogRecord& r) {
  std::string out = LogRecordTypeName(r.type);
  switch (r.type) {
    case LogRecordType::kInvalid:
      break;
    case LogRecordType::kBeginTxn:
      out += StrCat(" txn=", r.txn_id, " parent=", r.parent_id);
      break;
    case LogRecordType::kCommitTxn:
    case LogRecordType::kAbortTxn:
      out += StrCat(" txn=", r.txn_id);
      break;
    case LogRecordType::kPrepareTxn:
      out += StrCat(" txn=", r.txn_id);
      AppendBytes(&out, "xid", r.xid);
      break;
    case LogRecordType::kInsert:
    case LogRecordType::kAutocommitInsert:
      out += StrCat(" table=", r.table_id, " txn=", r.txn_id);
      AppendBytes(&out, "key", r.key);
      AppendBytes(&out, "value", r.value);
      break;
    case LogRecordType::kDelete:
    case LogRecordType::kAutocommitDelete:
      out += StrCat(" table=", r.table_id, " txn=", r.txn_id);
      AppendBytes(&out, "key", r.key);
      break;
    case LogRecordType::kUpdate:
      out += StrCat(" table=", r.table_id, " txn=", r.txn_id);
      AppendBytes(&out, "key", r.key);
      AppendBytes(&out, "extra", r.extra);
      break;
    case LogRecordType::kUpdateBroadcast:
      out += StrCat(" table=", r.table_id, " txn=", r.txn_id);
      AppendBytes(&out, "extra", r.extra);
      break;
    case LogRecordType::kTableCreate:
    case LogRecordType::kTableOpen:
      out += StrCat(" table=", r.table_id);
      AppendBytes(&out, "name", r.name);
      AppendBytes(&out, "file", r.file_name);
      break;
    case LogRecordType::kTableDrop:
      out += StrCat(" table=", r.table_id);
      AppendBytes(&out, "name", r.name);
      break;
    case LogRecordType::kBeginCheckpoint:
      out += StrCat(" checkpoint=", r.checkpoint_id);
      break;
    case LogRecordType::kEndCheckpoint:
      out += StrCat(" checkpoint=", r.checkpoint_id, " begin_lsn=", r.begin_lsn);
      break;
    case LogRecordType::kTableLock:
      out += StrCat(" table=", r.table_id, " txn=", r.txn_id);
      break;
  }
  return out;
}

Status DumpLog(const std::string& dir, absl::FunctionRef<void(std::string_view line)> emit) {
  std::unique_ptr<LogReader> reader;
  FERN_RETURN_IF_ERROR(LogReader::Open(dir, &reader));
  if (reader->files().empty()) {
    emit(StrCat("# no log files in ", dir));
    return Status::OK();
  }
  Status s = reader->SeekToFirst();
  std::string current_path;
  Lsn last_shown = 0;
  int rereads = 0;
  while (true) {
    while (s.ok() && reader->Valid()) {
      if (reader->current_path() != current_path) {
        current_path = reader->current_path();
        emit(StrCat("# file ", BaseName(current_path)));
      }
      const LogRecord& record = reader->record();
      emit(StrCat(record.lsn, " ", BaseName(current_path), "+", reader->current_offset(), " ",
                  FormatLogRecord(record)));
      last_shown = record.lsn;
      rereads = 0;
      s = reader->Next();
    }
    if (s.ok()) break;
    // The dump takes no lock: while the Env is open in another process, a record may be
    // read while it is being written and look damaged. Such a record reads whole a moment
    // later; damage does not.
    if (!s.IsCorruption() || ++rereads > kRereads) return s;
    absl::SleepFor(kFirstRereadPause * (1 << (rereads - 1)));
    s = LogReader::Open(dir, &reader);
    if (s.ok()) s = reader->SeekToLsn(last_shown + 1);
    // The seek lands on the first record at or after the LSN: skip what was shown.
    while (s.ok() && reader->Valid() && reader->record().lsn <= last_shown) s = reader->Next();
  }
  // Finding the end scans the last file, which may be written meanwhile too.
  LogEnd end;
  s = reader->FindEnd(&end);
  for (int attempt = 1; !s.ok(); ++attempt) {
    if (!s.IsCorruption() || attempt > kRereads) return s;
    absl::SleepFor(kFirstRereadPause * (1 << (attempt - 1)));
    s = LogReader::Open(dir, &reader);
    if (s.ok()) s = reader->FindEnd(&end);
  }
  std::string line = StrCat("# end: last LSN ", end.last_lsn, ", ", BaseName(end.path));
  if (!end.header_valid) {
    line += StrCat(" has a torn header (", end.file_size, " bytes)");
  } else {
    line += StrCat(" valid up to offset ", end.valid_end);
    if (end.valid_end < end.file_size) {
      line += StrCat(", then ", end.file_size - end.valid_end, " torn bytes");
    }
  }
  emit(line);
  return Status::OK();
}

}  // namespace fern
