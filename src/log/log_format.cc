#include "log/log_format.h"

#include <snappy.h>

#include <cstring>

#include "util/big_buffer.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/strings.h"

namespace fern {

namespace {

void SetReason(std::string* reason, std::string text) {
  if (reason != nullptr) *reason = std::move(text);
}

Status PayloadError(LogRecordType type, std::string_view what) {
  return Status::Corruption(StrCat(LogRecordTypeName(type), " payload: ", what));
}

}  // namespace

bool IsValidLogRecordType(uint8_t type) {
  return type >= 1 && type <= kMaxLogRecordType && type != kRecordGroupFrameType &&
         type != kSyncMarkFrameType;
}

bool IsValidFrameType(uint8_t type) {
  return type == kRecordGroupFrameType || type == kSyncMarkFrameType ||
         IsValidLogRecordType(static_cast<uint8_t>(type & ~kCompressedRecordFlag));
}

bool CompressLogPayload(std::string_view payload, std::string* out) {
  if (payload.size() < kMinCompressedLogPayload) return false;
  ReserveBuffer(out, snappy::MaxCompressedLength(payload.size()));
  out->resize(snappy::MaxCompressedLength(payload.size()));
  size_t size = 0;
  snappy::RawCompress(payload.data(), payload.size(), out->data(), &size);
  if (size > payload.size() - payload.size() / 8) return false;
  out->resize(size);
  return true;
}

Status UncompressLogPayload(std::string_view stored, std::string* out) {
  size_t size = 0;
  if (!snappy::GetUncompressedLength(stored.data(), stored.size(), &size)) {
    return Status::Corruption("compressed payload: bad snappy length header");
  }
  if (size > kMaxLogPayloadSize) {
    return Status::Corruption(StrCat("compressed payload expands to ", size,
                                     " bytes, beyond the limit ", kMaxLogPayloadSize));
  }
  ReserveBuffer(out, size);
  out->resize(size);
  if (!snappy::RawUncompress(stored.data(), stored.size(), out->data())) {
    return Status::Corruption("compressed payload: snappy data does not decode");
  }
  return Status::OK();
}

const char* LogRecordTypeName(LogRecordType type) {
  switch (type) {
    case LogRecordType::kInvalid:
      break;
    case LogRecordType::kBeginTxn:
      return "begin_txn";
    case LogRecordType::kCommitTxn:
      return "commit_txn";
    case LogRecordType::kAbortTxn:
      return "abort_txn";
    case LogRecordType::kPrepareTxn:
      return "prepare_txn";
    case LogRecordType::kInsert:
      return "insert";
    case LogRecordType::kDelete:
      return "delete";
    case LogRecordType::kUpdate:
      return "update";
    case LogRecordType::kUpdateBroadcast:
      return "update_broadcast";
    case LogRecordType::kTableCreate:
      return "table_create";
    case LogRecordType::kTableOpen:
      return "table_open";
    case LogRecordType::kTableDrop:
      return "table_drop";
    case LogRecordType::kBeginCheckpoint:
      return "begin_checkpoint";
    case LogRecordType::kEndCheckpoint:
      return "end_checkpoint";
    case LogRecordType::kAutocommitInsert:
      return "autocommit_insert";
    case LogRecordType::kAutocommitDelete:
      return "autocommit_delete";
    case LogRecordType::kTableLock:
      return "table_lock";
  }
  return "unknown";
}

// ---- Record constructors ----------------------------------------------------------------

LogRecord LogRecord::BeginTxn(TxnId txn, TxnId parent) {
  LogRecord r;
  r.type = LogRecordType::kBeginTxn;
  r.txn_id = txn;
  r.parent_id = parent;
  return r;
}

LogRecord LogRecord::CommitTxn(TxnId txn) {
  LogRecord r;
  r.type = LogRecordType::kCommitTxn;
  r.txn_id = txn;
  return r;
}

LogRecord LogRecord::AbortTxn(TxnId txn) {
  LogRecord r;
  r.type = LogRecordType::kAbortTxn;
  r.txn_id = txn;
  return r;
}

LogRecord LogRecord::PrepareTxn(TxnId txn, std::string_view xid) {
  LogRecord r;
  r.type = LogRecordType::kPrepareTxn;
  r.txn_id = txn;
  r.xid = xid;
  return r;
}

LogRecord LogRecord::Insert(TableId table, TxnId txn, std::string_view key,
                            std::string_view value) {
  LogRecord r;
  r.type = LogRecordType::kInsert;
  r.table_id = table;
  r.txn_id = txn;
  r.key = key;
  r.value = value;
  return r;
}

LogRecord LogRecord::Delete(TableId table, TxnId txn, std::string_view key) {
  LogRecord r;
  r.type = LogRecordType::kDelete;
  r.table_id = table;
  r.txn_id = txn;
  r.key = key;
  return r;
}

LogRecord LogRecord::Update(TableId table, TxnId txn, std::string_view key,
                            std::string_view extra) {
  LogRecord r;
  r.type = LogRecordType::kUpdate;
  r.table_id = table;
  r.txn_id = txn;
  r.key = key;
  r.extra = extra;
  return r;
}

LogRecord LogRecord::UpdateBroadcast(TableId table, TxnId txn, std::string_view extra) {
  LogRecord r;
  r.type = LogRecordType::kUpdateBroadcast;
  r.table_id = table;
  r.txn_id = txn;
  r.extra = extra;
  return r;
}

LogRecord LogRecord::TableCreate(TableId table, std::string_view name, std::string_view file_name) {
  LogRecord r;
  r.type = LogRecordType::kTableCreate;
  r.table_id = table;
  r.name = name;
  r.file_name = file_name;
  return r;
}

LogRecord LogRecord::TableOpen(TableId table, std::string_view name, std::string_view file_name) {
  LogRecord r = TableCreate(table, name, file_name);
  r.type = LogRecordType::kTableOpen;
  return r;
}

LogRecord LogRecord::TableDrop(TableId table, std::string_view name) {
  LogRecord r;
  r.type = LogRecordType::kTableDrop;
  r.table_id = table;
  r.name = name;
  return r;
}

LogRecord LogRecord::BeginCheckpoint(uint64_t checkpoint_id) {
  LogRecord r;
  r.type = LogRecordType::kBeginCheckpoint;
  r.checkpoint_id = checkpoint_id;
  return r;
}

LogRecord LogRecord::EndCheckpoint(uint64_t checkpoint_id, Lsn begin_lsn) {
  LogRecord r;
  r.type = LogRecordType::kEndCheckpoint;
  r.checkpoint_id = checkpoint_id;
  r.begin_lsn = begin_lsn;
  return r;
}

LogRecord LogRecord::AutocommitInsert(TableId table, TxnId txn, std::string_view key,
                                      std::string_view value) {
  LogRecord r = Insert(table, txn, key, value);
  r.type = LogRecordType::kAutocommitInsert;
  return r;
}

LogRecord LogRecord::AutocommitDelete(TableId table, TxnId txn, std::string_view key) {
  LogRecord r = Delete(table, txn, key);
  r.type = LogRecordType::kAutocommitDelete;
  return r;
}

LogRecord LogRecord::TableLock(TableId table, TxnId txn) {
  LogRecord r;
  r.type = LogRecordType::kTableLock;
  r.table_id = table;
  r.txn_id = txn;
  return r;
}

// ---- Payloads ---------------------------------------------------------------------------

size_t LogPayloadSizeBound(const LogRecord& r) {
  // At most three integers and one length prefix, each a varint of at most 10 bytes.
  constexpr size_t kIntegerRoom = 4 * 10;
  return r.key.size() + r.value.size() + r.extra.size() + r.xid.size() + r.name.size() +
         r.file_name.size() + kIntegerRoom;
}

void EncodeLogPayload(const LogRecord& r, std::string* dst) {
  switch (r.type) {
    case LogRecordType::kInvalid:
      return;
    case LogRecordType::kBeginTxn:
      PutVarint64(dst, r.txn_id);
      PutVarint64(dst, r.parent_id);
      return;
    case LogRecordType::kCommitTxn:
    case LogRecordType::kAbortTxn:
      PutVarint64(dst, r.txn_id);
      return;
    case LogRecordType::kPrepareTxn:
      PutVarint64(dst, r.txn_id);
      dst->append(r.xid);
      return;
    case LogRecordType::kInsert:
    case LogRecordType::kAutocommitInsert:
      PutVarint32(dst, r.table_id);
      PutVarint64(dst, r.txn_id);
      PutLengthPrefixed(dst, r.key);
      dst->append(r.value);
      return;
    case LogRecordType::kDelete:
    case LogRecordType::kAutocommitDelete:
      PutVarint32(dst, r.table_id);
      PutVarint64(dst, r.txn_id);
      dst->append(r.key);
      return;
    case LogRecordType::kUpdate:
      PutVarint32(dst, r.table_id);
      PutVarint64(dst, r.txn_id);
      PutLengthPrefixed(dst, r.key);
      dst->append(r.extra);
      return;
    case LogRecordType::kUpdateBroadcast:
      PutVarint32(dst, r.table_id);
      PutVarint64(dst, r.txn_id);
      dst->append(r.extra);
      return;
    case LogRecordType::kTableCreate:
    case LogRecordType::kTableOpen:
      PutVarint32(dst, r.table_id);
      PutLengthPrefixed(dst, r.name);
      dst->append(r.file_name);
      return;
    case LogRecordType::kTableDrop:
      PutVarint32(dst, r.table_id);
      dst->append(r.name);
      return;
    case LogRecordType::kBeginCheckpoint:
      PutVarint64(dst, r.checkpoint_id);
      return;
    case LogRecordType::kEndCheckpoint:
      PutVarint64(dst, r.checkpoint_id);
      PutVarint64(dst, r.begin_lsn);
      return;
    case LogRecordType::kTableLock:
      PutVarint32(dst, r.table_id);
      PutVarint64(dst, r.txn_id);
      return;
  }
}

Status DecodeLogPayload(LogRecordType type, std::string_view payload, LogRecord* record) {
  LogRecord r;
  r.type = type;
  Decoder in(payload);
  bool ok = true;
  bool exact = true;  // the fields must use up the payload exactly
  switch (type) {
    case LogRecordType::kInvalid:
      return Status::Corruption(
          StrCat("unknown log record type ", static_cast<int>(static_cast<uint8_t>(type))));
    case LogRecordType::kBeginTxn:
      ok = in.GetVarint64(&r.txn_id) && in.GetVarint64(&r.parent_id);
      break;
    case LogRecordType::kCommitTxn:
    case LogRecordType::kAbortTxn:
      ok = in.GetVarint64(&r.txn_id);
      break;
    case LogRecordType::kPrepareTxn:
      ok = in.GetVarint64(&r.txn_id);
      r.xid = in.rest();
      exact = false;
      break;
    case LogRecordType::kInsert:
    case LogRecordType::kAutocommitInsert:
      ok = in.GetVarint32(&r.table_id) && in.GetVarint64(&r.txn_id) && in.GetLengthPrefixed(&r.key);
      r.value = in.rest();
      exact = false;
      break;
    case LogRecordType::kDelete:
    case LogRecordType::kAutocommitDelete:
      ok = in.GetVarint32(&r.table_id) && in.GetVarint64(&r.txn_id);
      r.key = in.rest();
      exact = false;
      break;
    case LogRecordType::kUpdate:
      ok = in.GetVarint32(&r.table_id) && in.GetVarint64(&r.txn_id) && in.GetLengthPrefixed(&r.key);
      r.extra = in.rest();
      exact = false;
      break;
    case LogRecordType::kUpdateBroadcast:
      ok = in.GetVarint32(&r.table_id) && in.GetVarint64(&r.txn_id);
      r.extra = in.rest();
      exact = false;
      break;
    case LogRecordType::kTableCreate:
    case LogRecordType::kTableOpen:
      ok = in.GetVarint32(&r.table_id) && in.GetLengthPrefixed(&r.name);
      r.file_name = in.rest();
      exact = false;
      break;
    case LogRecordType::kTableDrop:
      ok = in.GetVarint32(&r.table_id);
      r.name = in.rest();
      exact = false;
      break;
    case LogRecordType::kBeginCheckpoint:
      ok = in.GetVarint64(&r.checkpoint_id);
      break;
    case LogRecordType::kEndCheckpoint:
      ok = in.GetVarint64(&r.checkpoint_id) && in.GetVarint64(&r.begin_lsn);
      break;
    case LogRecordType::kTableLock:
      ok = in.GetVarint32(&r.table_id) && in.GetVarint64(&r.txn_id);
      break;
    default:
      return Status::Corruption(
          StrCat("unknown log record type ", static_cast<int>(static_cast<uint8_t>(type))));
  }
  if (!ok) return PayloadError(type, StrCat("truncated or malformed (", payload.size(), " bytes)"));
  if (exact && !in.empty()) {
    return PayloadError(type, StrCat(in.remaining(), " unexpected trailing bytes"));
  }
  *record = r;
  return Status::OK();
}

// ---- Framing ----------------------------------------------------------------------------

size_t BeginLogRecordFrame(Lsn lsn, LogRecordType type, std::string* dst) {
  size_t start = dst->size();
  dst->resize(start + kRecordHeaderSize);
  char* p = dst->data() + start;
  EncodeFixed32(p, 0);
  EncodeFixed64(p + 4, lsn);
  p[12] = static_cast<char>(type);
  return start;
}

void FinishLogRecordFrame(size_t start, std::string* dst) {
  auto length = static_cast<uint32_t>(dst->size() - start - kRecordHeaderSize);
  EncodeFixed32(dst->data() + start, length);
  uint32_t checksum = Checksum32(std::string_view(dst->data() + start, kRecordHeaderSize + length));
  char trailer[kRecordTrailerSize];
  EncodeFixed32(trailer, checksum);
  EncodeFixed32(trailer + 4, length);
  dst->append(trailer, kRecordTrailerSize);
}

void AppendLogRecordFrame(Lsn lsn, LogRecordType type, std::string_view payload, std::string* dst) {
  size_t start = BeginLogRecordFrame(lsn, type, dst);
  dst->append(payload);
  FinishLogRecordFrame(start, dst);
}

FrameParseResult ParseLogRecordFrame(std::string_view input, LogRecordFrame* frame,
                                     std::string* reason) {
  if (input.size() < kRecordHeaderSize) {
    SetReason(reason, StrCat("record header cut short: ", input.size(), " of ", kRecordHeaderSize,
                             " bytes"));
    return FrameParseResult::kTruncated;
  }
  uint32_t length = DecodeFixed32(input.data());
  if (length > kMaxLogPayloadSize) {
    SetReason(reason, StrCat("record length ", length, " exceeds the limit ", kMaxLogPayloadSize));
    return FrameParseResult::kBad;
  }
  size_t size = size_t{length} + kRecordOverhead;
  if (input.size() < size) {
    SetReason(reason, StrCat("record of ", size, " bytes cut short at ", input.size()));
    return FrameParseResult::kTruncated;
  }
  const char* p = input.data();
  uint32_t trailing_length = DecodeFixed32(p + size - 4);
  if (trailing_length != length) {
    SetReason(reason, StrCat("record lengths disagree: ", length, " at the start, ",
                             trailing_length, " at the end"));
    return FrameParseResult::kBad;
  }
  uint32_t stored = DecodeFixed32(p + kRecordHeaderSize + length);
  uint32_t actual = Checksum32(std::string_view(p, kRecordHeaderSize + length));
  if (stored != actual) {
    SetReason(reason, StrCat("record checksum mismatch: stored ", stored, ", computed ", actual));
    return FrameParseResult::kBad;
  }
  Lsn lsn = DecodeFixed64(p + 4);
  auto type = static_cast<uint8_t>(p[12]);
  if (lsn == 0) {
    SetReason(reason, "record has LSN 0");
    return FrameParseResult::kBad;
  }
  if (!IsValidFrameType(type)) {
    SetReason(reason, StrCat("unknown record type ", static_cast<int>(type)));
    return FrameParseResult::kBad;
  }
  frame->lsn = lsn;
  frame->type = static_cast<LogRecordType>(type);
  frame->payload = std::string_view(p + kRecordHeaderSize, length);
  frame->size = size;
  return FrameParseResult::kOk;
}

FrameParseResult ParseLogRecordFrameBackward(std::string_view input, LogRecordFrame* frame,
                                             std::string* reason) {
  if (input.size() < kRecordOverhead) {
    SetReason(reason, StrCat("record before this point cut short: ", input.size(), " of at least ",
                             kRecordOverhead, " bytes"));
    return FrameParseResult::kTruncated;
  }
  uint32_t length = DecodeFixed32(input.data() + input.size() - 4);
  if (length > kMaxLogPayloadSize) {
    SetReason(reason,
              StrCat("trailing record length ", length, " exceeds the limit ", kMaxLogPayloadSize));
    return FrameParseResult::kBad;
  }
  size_t size = size_t{length} + kRecordOverhead;
  if (input.size() < size) {
    SetReason(reason, StrCat("trailing record length ", length, " reaches back before the start"));
    return FrameParseResult::kTruncated;
  }
  FrameParseResult result = ParseLogRecordFrame(input.substr(input.size() - size), frame, reason);
  // The forward parse checked both lengths against each other, so on success the frame
  // spans exactly `size` bytes.
  return result;
}

// ---- Files ------------------------------------------------------------------------------

std::string LogFileName(Lsn first_lsn) {
  std::string digits = std::to_string(first_lsn);
  std::string name;
  if (digits.size() < 16) name.assign(16 - digits.size(), '0');
  name += digits;
  name += ".log";
  return name;
}

bool ParseLogFileName(std::string_view name, Lsn* first_lsn) {
  if (name.size() != 20 || name.substr(16) != ".log") return false;
  Lsn lsn = 0;
  for (size_t i = 0; i < 16; ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return false;
    lsn = lsn * 10 + static_cast<Lsn>(c - '0');
  }
  *first_lsn = lsn;
  return true;
}

std::string EncodeLogFileHeader(Lsn first_lsn) {
  std::string header(kLogFileMagic, sizeof(kLogFileMagic));
  PutFixed32(&header, kLogFormatVersion);
  PutFixed32(&header, 0);
  PutFixed64(&header, first_lsn);
  PutFixed64(&header, Checksum64(header));
  return header;
}

Status DecodeLogFileHeader(std::string_view input, Lsn* first_lsn, uint32_t* version_out) {
  if (input.size() < kLogFileHeaderSize) {
    return Status::Corruption(
        StrCat("log file header cut short: ", input.size(), " of ", kLogFileHeaderSize, " bytes"));
  }
  if (std::memcmp(input.data(), kLogFileMagic, sizeof(kLogFileMagic)) != 0) {
    return Status::Corruption(
        StrCat("not a Fern log file: bad magic \"", EscapeBytes(input.substr(0, 8)), "\""));
  }
  uint64_t stored = DecodeFixed64(input.data() + 24);
  uint64_t actual = Checksum64(input.substr(0, 24));
  if (stored != actual) {
    return Status::Corruption(
        StrCat("log file header checksum mismatch: stored ", stored, ", computed ", actual));
  }
  uint32_t version = DecodeFixed32(input.data() + 8);
  if (version < kOldestLogFormatVersion || version > kLogFormatVersion) {
    return Status::NotSupported(StrCat("log format version ", version, " (this build reads ",
                                       kOldestLogFormatVersion, " to ", kLogFormatVersion, ")"));
  }
  if (DecodeFixed32(input.data() + 12) != 0) {
    return Status::Corruption("log file header: reserved bytes are not zero");
  }
  *first_lsn = DecodeFixed64(input.data() + 16);
  if (version_out != nullptr) *version_out = version;
  return Status::OK();
}

}  // namespace fern
