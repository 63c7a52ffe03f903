// Reads the write-ahead log of one directory, forward from any LSN or backward from the end.
//
// What counts as the end of the log and what counts as damage:
// - The log ends cleanly at the end of the last file, or at a torn tail of the last file: a
//   record cut short, a record that fails its checks with no valid record anywhere after it
//   (a half-written or zero-filled tail), or a last file whose header is torn (shorter than
//   the header or failing its checksum, with only zero bytes after it). A crash while
//   appending leaves exactly these, so they are not errors: Next() simply stops, and
//   FindEnd() reports where the valid part ends so the writer can truncate there.
// - Anything else is Corruption naming the file and byte offset: a bad record in any file
//   but the last, a bad record in the last file followed by a valid record (except in a
//   file of version 4 or later, where records after a hole may be what a crash kept of an
//   unsynced write: see "Sync marks" in log_format.h), a gap or repetition in LSNs (within
//   a file or between files), a header that does not match the file name, a file in the
//   middle whose header is damaged.
// - In version 4 and later, a bad record in the last file with valid records after it is a
//   torn tail when no valid sync mark after it says the log was durable through it and the
//   bytes up to the next valid record hold a zero-filled 512-byte sector (a lost write);
//   Corruption otherwise. FindEnd then scans the whole last file (a valid last record no
//   longer proves the rest), and the writer truncates the file at the hole.
// Whatever the bytes, the reader neither crashes nor reads out of bounds, and never
// allocates more than one window plus one record of at most kMaxLogPayloadSize bytes or one
// record group of at most kMaxLogGroupRawBytes.
//
// A record inside a group (version 3, log_group.h) reports the group frame's offset and size
// as current_offset() and current_size().
//
// Threads: a LogReader is used by one thread at a time. It reads the files as they are when
// read; reading a directory whose log is being appended to sees some prefix of it.
#ifndef FERN_LOG_LOG_READER_H_
#define FERN_LOG_LOG_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fern/status.h"
#include "log/log_format.h"
#include "log/log_group.h"

namespace fern {

class File;

// Where the valid log ends: what LogWriter::Open needs to continue after a crash.
struct LogEnd {
  std::string path;        // the last log file
  Lsn file_first_lsn = 0;  // that file's first LSN (from its name)
  // The last valid record of the whole log; file_first_lsn - 1 when the last file has none.
  Lsn last_lsn = 0;
  bool header_valid = false;    // false: the last file's header is torn (it holds no records)
  uint32_t format_version = 0;  // the last file's, when its header is valid
  uint64_t valid_end = 0;       // offset just past the last valid record (or the header)
  uint64_t file_size = 0;       // bytes in [valid_end, file_size) are a torn tail
};

struct LogFileInfo {
  std::string path;
  Lsn first_lsn = 0;  // from the name
};

class LogReader {
 public:
  // Lists the log files of `dir` in LSN order; files whose names are not log file names are
  // ignored. A directory without log files gives an empty reader (never Valid()).
  static Status Open(const std::string& dir, std::unique_ptr<LogReader>* reader);
  ~LogReader();

  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  const std::vector<LogFileInfo>& files() const { return files_; }

  // Positions at the first record whose LSN is >= `lsn` (records before it are read and
  // checked, not returned). If the log starts after `lsn` (older files were removed) that is
  // the log's first record: callers that need `lsn` itself check record().lsn. Valid() is
  // false when no such record exists.
  Status SeekToLsn(Lsn lsn);
  Status SeekToFirst() { return SeekToLsn(0); }
  // Positions at the last valid record (before a torn tail, if any).
  Status SeekToLast();
  // REQUIRES: Valid(). Moves to the following / preceding record; Valid() becomes false (with
  // OK) past the log's end / before its first record. On Corruption or an I/O error the
  // reader is left not Valid().
  Status Next();
  Status Prev();

  bool Valid() const { return valid_; }
  // REQUIRES: Valid(). The record's string fields point into the reader's buffer and stay
  // valid until the reader moves.
  const LogRecord& record() const { return record_; }
  const std::string& current_path() const { return files_[file_index_].path; }
  uint64_t current_offset() const { return offset_; }
  size_t current_size() const { return record_size_; }

  // Finds where the valid log ends (see the top of this file). Cheap when the last file ends
  // with a valid record (one read at its end); otherwise scans the last file. NotFound when
  // the directory holds no log files. Leaves the reader not Valid().
  Status FindEnd(LogEnd* end);

 private:
  struct OpenFile;

  explicit LogReader(std::vector<LogFileInfo> files);

  bool IsLastFile(size_t index) const { return index + 1 == files_.size(); }
  Status Enter(size_t index);
  Status ReadForwardFrom(size_t index, uint64_t offset, Lsn expected_lsn, Lsn skip_below);
  // Corruption unless the sync mark `frame` at `offset` of file `index` may be there: a file
  // of version 4 or later, an empty payload, an LSN field at most `next_lsn` (the LSN of the
  // record that follows it).
  Status CheckSyncMark(size_t index, uint64_t offset, const LogRecordFrame& frame,
                       Lsn next_lsn) const;
  Status ReadBackwardFrom(size_t index, uint64_t end, Lsn wanted_lsn);
  // How many records `frame` holds (a group's count, else 1); Corruption for a group in a
  // file older than version 3 or a bad count.
  Status FrameRecords(size_t index, uint64_t offset, const LogRecordFrame& frame,
                      uint32_t* count) const;
  // Positions on the record of `frame` (at `offset` of file `index`) with the given index
  // in its group (0 for a single record).
  Status Position(size_t index, uint64_t offset, const LogRecordFrame& frame, uint32_t member);
  Status PositionInGroup(uint32_t member);
  Status CorruptionAt(size_t index, uint64_t offset, std::string_view what) const;

  std::vector<LogFileInfo> files_;
  std::unique_ptr<OpenFile> open_;  // the file being read, with its read window
  bool valid_ = false;
  size_t file_index_ = 0;  // of the current record
  uint64_t offset_ = 0;
  size_t record_size_ = 0;
  LogRecord record_;
  std::string uncompressed_;  // a compressed record's payload; record_'s views point here
  // When the current record is in a group: the group's decoded stream, its records and the
  // current one's index (record_'s views point into the stream); group_ is empty otherwise.
  std::string group_stream_;
  std::vector<LogGroupRecord> group_;
  uint32_t group_member_ = 0;
  Lsn group_first_lsn_ = 0;
  // Set when a forward scan ran off the end of the last file: where the valid part ends.
  bool end_found_ = false;
  uint64_t end_offset_ = 0;
  Lsn end_last_lsn_ = 0;
};

}  // namespace fern

#endif  // FERN_LOG_LOG_READER_H_
