// The write-ahead log's on-disk format: file naming, the file header, record framing and the
// typed payloads. Everything here is a pure function of its arguments (no I/O, no state), so
// any thread may call it. docs/log_format.md describes the same format for readers outside
// the code.
//
// Log files live in the Env directory, named `NNNNNNNNNNNNNNNN.log`: the decimal LSN of the
// file's first record, zero-padded to 16 digits. A file holds a header and then whole records;
// a record never spans two files.
//
// File header (kLogFileHeaderSize = 32 bytes):
//
//   offset  size  meaning
//   0       8     magic "FERN-LOG"
//   8       4     format version (fixed32; 4, or 3 / 2 / 1 for files written before sync
//                 marks / record groups / compression)
//   12      4     reserved, zero
//   16      8     first LSN of the file (fixed64; equals the LSN in the file's name)
//   24      8     Checksum64 (XXH3) of bytes [0, 24)
//
// Record (N = stored payload length; the record is N + 21 bytes):
//
//   offset  size  meaning
//   0       4     N (fixed32)
//   4       8     LSN (fixed64); one more than the previous record's, across files
//   12      1     record type (LogRecordType); | kCompressedRecordFlag (version 2) when the
//                 stored payload is snappy-compressed; or kRecordGroupFrameType (version 3):
//                 the payload holds several records (log_group.h), the LSN is the first's;
//                 or kSyncMarkFrameType (version 4): no record, see below
//   13      N     payload, laid out per type (below), or its compressed form
//   13+N    4     Checksum32 (low half of XXH3) of bytes [0, 13+N): length, LSN, type, payload
//   17+N    4     N again (fixed32), so that the log can be scanned backward
//
// All integers are little-endian. Payload fields use LEB128 varints ("v32"/"v64"),
// length-prefixed strings ("lp": v32 length + bytes) and, for the last field, "rest": the
// remaining bytes of the payload without a length.
//
//   type                     payload
//   1  kBeginTxn             v64 txn id, v64 parent id (0: a root transaction)
//   2  kCommitTxn            v64 txn id
//   3  kAbortTxn             v64 txn id
//   4  kPrepareTxn           v64 txn id, rest xid
//   5  kInsert               v32 table id, v64 txn id, lp key, rest value
//   6  kDelete               v32 table id, v64 txn id, rest key
//   7  kUpdate               v32 table id, v64 txn id, lp key, rest extra
//   8  kUpdateBroadcast      v32 table id, v64 txn id, rest extra
//   9  kTableCreate          v32 table id, lp name, rest file name
//   10 kTableOpen            v32 table id, lp name, rest file name
//   11 kTableDrop            v32 table id, rest name
//   12 kBeginCheckpoint      v64 checkpoint id
//   13 kEndCheckpoint        v64 checkpoint id, v64 LSN of the matching kBeginCheckpoint
//   14 kAutocommitInsert     as kInsert; the record is also the transaction's begin and commit
//   15 kAutocommitDelete     as kDelete; likewise
//   18 kTableLock            v32 table id, v64 txn id: the transaction write-locked the whole
//                            table (UpdateAll), which a prepared transaction regains at
//                            recovery (version 4; 16 and 17 are frame types, not records)
//
// Sync marks (version 4). A crash that is not a clean process death (power loss, a kernel
// crash) may keep any part of what was written after the last completed fdatasync: a write
// lost from the middle of the tail leaves the preallocated zeros before valid records. Such
// a tail is torn, not damaged: its commits were never acknowledged as durable. Damage to
// records that were synced is another matter: commits acknowledged as durable would be lost.
// So the writer ends every write-out with a sync mark: a frame of type kSyncMarkFrameType
// with an empty payload whose LSN field is not a record's LSN but the first LSN not yet
// durable when the write-out began (every record below it had been fsynced). Marks take no
// LSN, are never returned as records and are skipped when reading. A bad record in the last
// file with valid records after it is damage if a mark after it has an LSN field above the
// bad record's LSN (it was synced), or if no 512-byte sector between it and the next valid
// record is all zero (bytes changed, not lost); otherwise it is a torn tail. (In files of
// version 3 and older any valid record after a bad one makes it damage.)
//
// An autocommitted put is one kAutocommitInsert record: key + value + 21 bytes of framing +
// varint ids and key length (26 bytes in all for a table id below 128, a transaction id below
// 2^21 and a key under 128 bytes), where PerconaFT logs ~255 bytes for a one-put transaction
// (begin, insert and commit records, each with its own framing).
#ifndef FERN_LOG_LOG_FORMAT_H_
#define FERN_LOG_LOG_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fern/status.h"

namespace fern {

using Lsn = uint64_t;    // log sequence number; 0 means "none", the first record is 1
using TxnId = uint64_t;  // 0 means "none" (e.g. the parent of a root transaction)
using TableId = uint32_t;

inline constexpr char kLogFileMagic[8] = {'F', 'E', 'R', 'N', '-', 'L', 'O', 'G'};
// The version this build writes; it reads kOldestLogFormatVersion through this one.
// Version 2 added compressed payloads (kCompressedRecordFlag), version 3 record groups
// (kRecordGroupFrameType), version 4 sync marks (kSyncMarkFrameType).
inline constexpr uint32_t kLogFormatVersion = 4;
inline constexpr uint32_t kOldestLogFormatVersion = 1;
inline constexpr uint32_t kFirstCompressedLogFormatVersion = 2;
inline constexpr uint32_t kFirstGroupedLogFormatVersion = 3;
inline constexpr uint32_t kFirstSyncMarkedLogFormatVersion = 4;
inline constexpr size_t kLogFileHeaderSize = 32;
inline constexpr size_t kRecordHeaderSize = 13;  // length, LSN, type
inline constexpr size_t kRecordTrailerSize = 8;  // checksum, length
inline constexpr size_t kRecordOverhead = kRecordHeaderSize + kRecordTrailerSize;
// The largest payload a record may carry: a 32 MiB value and a 32 KiB key (API.md's
// limits) with room to spare. A length field above this is damage, so a reader never
// allocates more than this for one record whatever the bytes say.
inline constexpr uint32_t kMaxLogPayloadSize = uint32_t{64} << 20;
// File names carry 16 decimal digits; the writer refuses LSNs beyond (317 years at one
// million records per second).
inline constexpr Lsn kMaxLsn = 9'999'999'999'999'999;

enum class LogRecordType : uint8_t {
  kInvalid = 0,  // never written: a zero-filled tail does not parse as a record
  kBeginTxn = 1,
  kCommitTxn = 2,
  kAbortTxn = 3,
  kPrepareTxn = 4,
  kInsert = 5,
  kDelete = 6,
  kUpdate = 7,
  kUpdateBroadcast = 8,
  kTableCreate = 9,
  kTableOpen = 10,
  kTableDrop = 11,
  kBeginCheckpoint = 12,
  kEndCheckpoint = 13,
  kAutocommitInsert = 14,
  kAutocommitDelete = 15,
  // 16 and 17 are frame types (kRecordGroupFrameType, kSyncMarkFrameType).
  kTableLock = 18,
};
inline constexpr uint8_t kMaxLogRecordType = 18;

// 1..kMaxLogRecordType except the frame types 16 and 17.
bool IsValidLogRecordType(uint8_t type);

// Set in a frame's type byte (format version 2): the payload is stored snappy-compressed and
// the low bits are the record's type. The writer compresses a payload of at least
// kMinCompressedLogPayload bytes when that saves an eighth of it or more.
inline constexpr uint8_t kCompressedRecordFlag = 0x80;
inline constexpr size_t kMinCompressedLogPayload = 64;
// The type byte of a frame holding a group of records (version 3, log_group.h); it is not a
// LogRecordType and never carries kCompressedRecordFlag.
inline constexpr uint8_t kRecordGroupFrameType = 16;
// The type byte of a sync mark (version 4, above): an empty payload, and in the LSN field the
// first LSN that was not durable when the write-out holding it began.
inline constexpr uint8_t kSyncMarkFrameType = 17;
// A valid type byte for a frame: a valid record type, with or without kCompressedRecordFlag,
// kRecordGroupFrameType or kSyncMarkFrameType.
bool IsValidFrameType(uint8_t type);
// The snappy form of `payload` in `*out` if it is worth storing (see above); false leaves
// `*out` unspecified, and the payload is stored as it is.
bool CompressLogPayload(std::string_view payload, std::string* out);
// Restores a compressed payload into `*out`. Corruption when the bytes are not valid snappy
// data or would expand beyond kMaxLogPayloadSize (checked before anything is allocated).
Status UncompressLogPayload(std::string_view stored, std::string* out);
// "begin_txn", "insert", ...; "unknown" for anything else.
const char* LogRecordTypeName(LogRecordType type);

// One decoded record: the type says which fields are meaningful (see the table above); the
// others stay zero / empty. String fields are views: into the caller's data when building a
// record to append, into the reader's buffer when decoded (valid until the reader moves).
struct LogRecord {
  LogRecordType type = LogRecordType::kInvalid;
  Lsn lsn = 0;  // filled in by the reader; ignored when encoding
  TxnId txn_id = 0;
  TxnId parent_id = 0;
  TableId table_id = 0;
  uint64_t checkpoint_id = 0;
  Lsn begin_lsn = 0;
  std::string_view key;
  std::string_view value;
  std::string_view extra;
  std::string_view xid;
  std::string_view name;
  std::string_view file_name;

  static LogRecord BeginTxn(TxnId txn, TxnId parent);
  static LogRecord CommitTxn(TxnId txn);
  static LogRecord AbortTxn(TxnId txn);
  static LogRecord PrepareTxn(TxnId txn, std::string_view xid);
  static LogRecord Insert(TableId table, TxnId txn, std::string_view key, std::string_view value);
  static LogRecord Delete(TableId table, TxnId txn, std::string_view key);
  static LogRecord Update(TableId table, TxnId txn, std::string_view key, std::string_view extra);
  static LogRecord UpdateBroadcast(TableId table, TxnId txn, std::string_view extra);
  static LogRecord TableCreate(TableId table, std::string_view name, std::string_view file_name);
  static LogRecord TableOpen(TableId table, std::string_view name, std::string_view file_name);
  static LogRecord TableDrop(TableId table, std::string_view name);
  static LogRecord BeginCheckpoint(uint64_t checkpoint_id);
  static LogRecord EndCheckpoint(uint64_t checkpoint_id, Lsn begin_lsn);
  static LogRecord AutocommitInsert(TableId table, TxnId txn, std::string_view key,
                                    std::string_view value);
  static LogRecord AutocommitDelete(TableId table, TxnId txn, std::string_view key);
  static LogRecord TableLock(TableId table, TxnId txn);

  friend bool operator==(const LogRecord&, const LogRecord&) = default;
};

// Appends the payload of `record` (per its type) to `*dst`. An invalid type appends nothing.
void EncodeLogPayload(const LogRecord& record, std::string* dst);
// At least the number of bytes EncodeLogPayload appends for `record` (its strings plus room
// for every integer field), so a writer can reserve once for a big record.
size_t LogPayloadSizeBound(const LogRecord& record);
// Decodes a payload of the given type into `*record` (whose string fields then point into
// `payload`). A malformed payload, trailing bytes after a fixed-layout payload, or an
// unknown type is Corruption saying what was wrong.
Status DecodeLogPayload(LogRecordType type, std::string_view payload, LogRecord* record);

// ---- Framing ----------------------------------------------------------------------------

// Appends a whole record to `*dst`. REQUIRES: payload.size() <= kMaxLogPayloadSize.
void AppendLogRecordFrame(Lsn lsn, LogRecordType type, std::string_view payload, std::string* dst);

// In-place framing, so the writer can encode a payload straight into its buffer:
// BeginLogRecordFrame appends the header with a placeholder length and returns where the
// record starts; the caller appends the payload; FinishLogRecordFrame patches the length and
// appends the trailer. REQUIRES: the payload appended in between is at most
// kMaxLogPayloadSize bytes.
size_t BeginLogRecordFrame(Lsn lsn, LogRecordType type, std::string* dst);
void FinishLogRecordFrame(size_t start, std::string* dst);

// A record frame found in a byte range; `payload` points into that range.
struct LogRecordFrame {
  Lsn lsn = 0;
  LogRecordType type = LogRecordType::kInvalid;
  std::string_view payload;
  size_t size = 0;  // the whole record, payload.size() + kRecordOverhead
};

enum class FrameParseResult : uint8_t {
  kOk,
  // The bytes end before the record does (a short header, or a sane length that reaches past
  // the end). At the end of the log this is a torn write.
  kTruncated,
  // The bytes are there but are not a record: a length above kMaxLogPayloadSize, lengths
  // that disagree, a checksum mismatch, LSN 0 or an unknown type.
  kBad,
};

// Parses the record that starts at the beginning of `input` (which may continue past it).
// On a failure, `*reason` (if not null) says what was wrong. Never reads outside `input`.
FrameParseResult ParseLogRecordFrame(std::string_view input, LogRecordFrame* frame,
                                     std::string* reason);
// Parses the record that ends at the end of `input`, found through its trailing length.
FrameParseResult ParseLogRecordFrameBackward(std::string_view input, LogRecordFrame* frame,
                                             std::string* reason);

// ---- Files ------------------------------------------------------------------------------

// "0000000000000042.log" for LSN 42.
std::string LogFileName(Lsn first_lsn);
// True when `name` is exactly 16 decimal digits followed by ".log"; sets `*first_lsn`.
bool ParseLogFileName(std::string_view name, Lsn* first_lsn);

std::string EncodeLogFileHeader(Lsn first_lsn);
// Checks magic, version, reserved bytes and checksum. `input` holds at least the header.
// A wrong magic or checksum is Corruption; a version outside kOldestLogFormatVersion..
// kLogFormatVersion is NotSupported. `version`, when given, receives the file's version.
Status DecodeLogFileHeader(std::string_view input, Lsn* first_lsn, uint32_t* version = nullptr);

}  // namespace fern

#endif  // FERN_LOG_LOG_FORMAT_H_
