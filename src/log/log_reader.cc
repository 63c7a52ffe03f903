#include "log/log_reader.h"

#include <algorithm>
#include <utility>

#include "absl/functional/function_ref.h"
#include "log/log_group.h"
#include "util/coding.h"
#include "util/file.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

// Bytes read at a time when scanning. 1 MiB keeps a forward scan at a few syscalls per
// thousand records while bounding the reader's memory.
constexpr size_t kReadWindow = size_t{1} << 20;

// At most how many LSNs `bytes` of a file of `version` can hold: a plain frame takes at least
// kRecordOverhead bytes, a group that much for up to kMaxLogGroupRecords records. Bounds
// the LSNs a scan for valid records accepts.
uint64_t MaxLsnSpan(uint32_t version, uint64_t bytes) {
  const uint64_t frames = bytes / kRecordOverhead + 1;
  return version >= kFirstGroupedLogFormatVersion ? frames * kMaxLogGroupRecords : frames;
}

bool IsSyncMark(const LogRecordFrame& frame) {
  return static_cast<uint8_t>(frame.type) == kSyncMarkFrameType;
}

}  // namespace

// One log file opened for reading, with a window of its bytes in memory. Views handed out
// point into the window and stay valid until the next View call.
struct LogReader::OpenFile {
  size_t index = 0;
  std::unique_ptr<File> file;
  uint64_t size = 0;
  bool header_torn = false;
  uint32_t format_version = 0;  // from the header; 0 when it is torn
  std::string window;
  uint64_t window_offset = 0;

  // Bytes [offset, offset + n), cut at the end of the file.
  Status View(uint64_t offset, size_t n, std::string_view* out) {
    *out = {};
    if (offset >= size) return Status::OK();
    uint64_t end = std::min<uint64_t>(size, offset + n);
    if (offset < window_offset || end > window_offset + window.size()) {
      size_t len = static_cast<size_t>(std::min<uint64_t>(size - offset, std::max(n, kReadWindow)));
      window_offset = offset;
      Status s = file->ReadUpTo(offset, len, &window);
      if (!s.ok()) {
        window.clear();
        return s;
      }
      end = std::min<uint64_t>(end, window_offset + window.size());
    }
    *out = std::string_view(window).substr(offset - window_offset, end - offset);
    return Status::OK();
  }

  // Bytes [max(floor, end - n), end), cut at the end of the file.
  Status ViewEndingAt(uint64_t end, size_t n, uint64_t floor, std::string_view* out) {
    *out = {};
    end = std::min(end, size);
    if (end <= floor) return Status::OK();
    uint64_t start = end - floor < n ? floor : end - n;
    if (start < window_offset || end > window_offset + window.size()) {
      size_t span = std::max(n, kReadWindow);
      uint64_t read_start = end - floor < span ? floor : end - span;
      window_offset = read_start;
      Status s = file->ReadUpTo(read_start, static_cast<size_t>(end - read_start), &window);
      if (!s.ok()) {
        window.clear();
        return s;
      }
      if (window_offset + window.size() < end) return Status::OK();  // the file shrank
    }
    *out = std::string_view(window).substr(start - window_offset, end - start);
    return Status::OK();
  }

  // Parses the record starting at `offset`.
  Status ReadFrameAt(uint64_t offset, LogRecordFrame* frame, std::string* reason,
                     FrameParseResult* result) {
    std::string_view view;
    FERN_RETURN_IF_ERROR(View(offset, kRecordHeaderSize, &view));
    size_t want = kRecordHeaderSize;
    if (view.size() >= 4) {
      uint32_t length = DecodeFixed32(view.data());
      if (length <= kMaxLogPayloadSize) want = length + kRecordOverhead;
    }
    if (want > view.size()) FERN_RETURN_IF_ERROR(View(offset, want, &view));
    *result = ParseLogRecordFrame(view, frame, reason);
    return Status::OK();
  }

  // Parses the record ending at `end`; records never start before the file header's end.
  Status ReadFrameEndingAt(uint64_t end, LogRecordFrame* frame, std::string* reason,
                           FrameParseResult* result) {
    std::string_view view;
    FERN_RETURN_IF_ERROR(ViewEndingAt(end, 4, kLogFileHeaderSize, &view));
    size_t want = 4;
    if (view.size() >= 4) {
      uint32_t length = DecodeFixed32(view.data() + view.size() - 4);
      if (length <= kMaxLogPayloadSize) want = length + kRecordOverhead;
    }
    if (want > view.size()) {
      FERN_RETURN_IF_ERROR(ViewEndingAt(end, want, kLogFileHeaderSize, &view));
    }
    *result = ParseLogRecordFrameBackward(view, frame, reason);
    return Status::OK();
  }

  Status AllZeroFrom(uint64_t offset, bool* zero) {
    *zero = true;
    while (offset < size) {
      std::string_view view;
      FERN_RETURN_IF_ERROR(View(offset, kReadWindow, &view));
      if (view.empty()) return Status::OK();
      if (std::any_of(view.begin(), view.end(), [](char c) { return c != 0; })) {
        *zero = false;
        return Status::OK();
      }
      offset += view.size();
    }
    return Status::OK();
  }

  // Finds the first position at or after `from` where a valid frame with a plausible LSN
  // (above `last_good`, and no more than could fit in the rest of the file) starts and
  // `accept` takes it: `*found` false if there is none. Cheap filters first: most positions
  // fail the length checks, a zero-filled tail fails the LSN check.
  Status ScanForFrame(uint64_t from, Lsn last_good,
                      absl::FunctionRef<bool(const LogRecordFrame&)> accept, uint64_t* at,
                      bool* found) {
    *found = false;
    if (from >= size) return Status::OK();
    Lsn max_lsn = last_good + MaxLsnSpan(format_version, size - from);
    std::string far;  // a candidate reaching past the window is read here
    for (uint64_t chunk = from; chunk + kRecordOverhead <= size; chunk += kReadWindow) {
      std::string_view view;
      FERN_RETURN_IF_ERROR(View(chunk, kReadWindow + kRecordOverhead, &view));
      uint64_t stop = std::min<uint64_t>(chunk + kReadWindow, size - kRecordOverhead + 1);
      for (uint64_t p = chunk; p < stop; ++p) {
        size_t rel = static_cast<size_t>(p - chunk);
        if (rel + kRecordHeaderSize > view.size()) break;
        uint32_t length = DecodeFixed32(view.data() + rel);
        if (length > kMaxLogPayloadSize) continue;
        uint64_t record_size = uint64_t{length} + kRecordOverhead;
        if (p + record_size > size) continue;
        Lsn lsn = DecodeFixed64(view.data() + rel + 4);
        if (lsn <= last_good || lsn > max_lsn) continue;
        std::string_view bytes;
        if (rel + record_size <= view.size()) {
          bytes = view.substr(rel, record_size);
        } else {
          FERN_RETURN_IF_ERROR(file->Read(p + record_size - 4, 4, &far));
          if (DecodeFixed32(far.data()) != length) continue;
          FERN_RETURN_IF_ERROR(file->Read(p, static_cast<size_t>(record_size), &far));
          bytes = far;
        }
        LogRecordFrame frame;
        if (ParseLogRecordFrame(bytes, &frame, nullptr) != FrameParseResult::kOk) continue;
        if (!accept(frame)) continue;
        *at = p;
        *found = true;
        return Status::OK();
      }
    }
    return Status::OK();
  }

  // Whether some 512-byte sector (aligned in the file) within [begin, end) is all zero: what
  // a write lost in a crash leaves in the preallocated, zero-filled log.
  Status ZeroSectorIn(uint64_t begin, uint64_t end, bool* zero) {
    constexpr uint64_t kSector = 512;
    *zero = false;
    for (uint64_t s = (begin + kSector - 1) / kSector * kSector; s + kSector <= end; s += kSector) {
      std::string_view view;
      FERN_RETURN_IF_ERROR(View(s, kSector, &view));
      if (view.size() == kSector &&
          std::all_of(view.begin(), view.end(), [](char c) { return c == 0; })) {
        *zero = true;
        return Status::OK();
      }
    }
    return Status::OK();
  }

  // Whether the bad record at `offset` of the last file is damage rather than a torn tail
  // (log_format.h). It is a torn tail when no valid record with a plausible LSN follows it.
  // When one does: in a file older than version 4, damage. In version 4 and later, damage if
  // a valid sync mark after it says the log was durable past `last_good` (that LSN in
  // `*durable`; else 0); otherwise a torn tail if the bytes up to the next valid record hold
  // a zero-filled sector (a write lost in a crash), damage if not (changed bytes).
  Status BadRecordIsDamage(uint64_t offset, Lsn last_good, bool* damage, Lsn* durable) {
    *damage = false;
    *durable = 0;
    uint64_t next = 0;
    bool found = false;
    FERN_RETURN_IF_ERROR(ScanForFrame(
        offset + 1, last_good, [](const LogRecordFrame&) { return true; }, &next, &found));
    if (!found) return Status::OK();
    if (format_version < kFirstSyncMarkedLogFormatVersion) {
      *damage = true;
      return Status::OK();
    }
    uint64_t mark_at = 0;
    bool proven = false;
    FERN_RETURN_IF_ERROR(ScanForFrame(
        next, last_good,
        [&](const LogRecordFrame& frame) {
          // The bad record's LSN is last_good + 1; the mark's LSN is the first not durable.
          if (!IsSyncMark(frame) || !frame.payload.empty() || frame.lsn <= last_good + 1) {
            return false;
          }
          *durable = frame.lsn - 1;
          return true;
        },
        &mark_at, &proven));
    if (proven) {
      *damage = true;
      return Status::OK();
    }
    bool zero = false;
    FERN_RETURN_IF_ERROR(ZeroSectorIn(offset, next, &zero));
    *damage = !zero;
    return Status::OK();
  }
};

LogReader::LogReader(std::vector<LogFileInfo> files) : files_(std::move(files)) {}
LogReader::~LogReader() = default;

Status LogReader::Open(const std::string& dir, std::unique_ptr<LogReader>* reader) {
  std::vector<std::string> names;
  FERN_RETURN_IF_ERROR(ListDir(dir, &names));
  std::vector<LogFileInfo> files;
  for (const std::string& name : names) {
    Lsn first_lsn;
    if (ParseLogFileName(name, &first_lsn)) files.push_back({StrCat(dir, "/", name), first_lsn});
  }
  std::sort(files.begin(), files.end(),
            [](const LogFileInfo& a, const LogFileInfo& b) { return a.first_lsn < b.first_lsn; });
  reader->reset(new LogReader(std::move(files)));
  return Status::OK();
}

Status LogReader::CorruptionAt(size_t index, uint64_t offset, std::string_view what) const {
  return Status::Corruption(StrCat(files_[index].path, ": offset ", offset, ": ", what));
}

Status LogReader::Enter(size_t index) {
  if (open_ != nullptr && open_->index == index) return Status::OK();
  open_.reset();
  const LogFileInfo& info = files_[index];
  if (info.first_lsn == 0) return CorruptionAt(index, 0, "the file name says first LSN 0");
  auto file = std::make_unique<OpenFile>();
  file->index = index;
  FERN_RETURN_IF_ERROR(File::Open(info.path, File::Mode::kReadOnly, &file->file));
  FERN_RETURN_IF_ERROR(file->file->Size(&file->size));
  std::string_view header;
  FERN_RETURN_IF_ERROR(file->View(0, kLogFileHeaderSize, &header));
  Lsn header_lsn = 0;
  Status s = DecodeLogFileHeader(header, &header_lsn, &file->format_version);
  if (s.IsNotSupported()) return s.WithContext(info.path);
  if (!s.ok()) {
    // A crash while creating the newest file can leave its header torn; the writer writes
    // and syncs the header before any record, so such a file holds nothing else.
    bool zero = false;
    if (IsLastFile(index)) FERN_RETURN_IF_ERROR(file->AllZeroFrom(kLogFileHeaderSize, &zero));
    if (!zero) return CorruptionAt(index, 0, s.message());
    file->header_torn = true;
  } else if (header_lsn != info.first_lsn) {
    return CorruptionAt(
        index, 16,
        StrCat("the header says first LSN ", header_lsn, ", the file name says ", info.first_lsn));
  }
  open_ = std::move(file);
  return Status::OK();
}

Status LogReader::FrameRecords(size_t index, uint64_t offset, const LogRecordFrame& frame,
                               uint32_t* count) const {
  *count = 1;
  if (static_cast<uint8_t>(frame.type) != kRecordGroupFrameType) return Status::OK();
  if (open_->format_version < kFirstGroupedLogFormatVersion) {
    return CorruptionAt(
        index, offset,
        StrCat("record group in a version ", open_->format_version,
               " file (groups came with version ", kFirstGroupedLogFormatVersion, ")"));
  }
  Status s = PeekLogGroupCount(frame.payload, count);
  if (!s.ok()) return CorruptionAt(index, offset, s.message());
  return Status::OK();
}

Status LogReader::Position(size_t index, uint64_t offset, const LogRecordFrame& frame,
                           uint32_t member) {
  const auto type_byte = static_cast<uint8_t>(frame.type);
  group_.clear();
  if (type_byte == kRecordGroupFrameType) {
    Status g = DecodeLogGroup(frame.payload, &group_stream_, &group_);
    if (!g.ok()) {
      group_.clear();
      return CorruptionAt(index, offset, g.message());
    }
    file_index_ = index;
    offset_ = offset;
    record_size_ = frame.size;
    group_first_lsn_ = frame.lsn;
    return PositionInGroup(member);
  }
  std::string_view payload = frame.payload;
  if ((type_byte & kCompressedRecordFlag) != 0) {
    if (open_->format_version < kFirstCompressedLogFormatVersion) {
      return CorruptionAt(
          index, offset,
          StrCat("compressed record in a version ", open_->format_version,
                 " file (compression came with version ", kFirstCompressedLogFormatVersion, ")"));
    }
    Status u = UncompressLogPayload(payload, &uncompressed_);
    if (!u.ok()) return CorruptionAt(index, offset, u.message());
    payload = uncompressed_;
  }
  Status s = DecodeLogPayload(static_cast<LogRecordType>(type_byte & ~kCompressedRecordFlag),
                              payload, &record_);
  if (!s.ok()) return CorruptionAt(index, offset, s.message());
  record_.lsn = frame.lsn;
  file_index_ = index;
  offset_ = offset;
  record_size_ = frame.size;
  valid_ = true;
  return Status::OK();
}

Status LogReader::PositionInGroup(uint32_t member) {
  valid_ = false;
  const LogGroupRecord& r = group_[member];
  Status s = DecodeLogPayload(r.type, r.payload, &record_);
  if (!s.ok()) {
    return CorruptionAt(file_index_, offset_,
                        StrCat("record ", member, " of the group: ", s.message()));
  }
  record_.lsn = group_first_lsn_ + member;
  group_member_ = member;
  valid_ = true;
  return Status::OK();
}

Status LogReader::ReadForwardFrom(size_t index, uint64_t offset, Lsn expected_lsn, Lsn skip_below) {
  valid_ = false;
  end_found_ = false;
  while (true) {
    FERN_RETURN_IF_ERROR(Enter(index));
    OpenFile& file = *open_;
    if (file.header_torn) {
      end_found_ = true;
      end_offset_ = 0;
      end_last_lsn_ = expected_lsn - 1;
      return Status::OK();
    }
    while (offset < file.size) {
      LogRecordFrame frame;
      std::string reason;
      FrameParseResult result = FrameParseResult::kBad;
      FERN_RETURN_IF_ERROR(file.ReadFrameAt(offset, &frame, &reason, &result));
      if (result != FrameParseResult::kOk) {
        if (!IsLastFile(index)) return CorruptionAt(index, offset, reason);
        bool damage = false;
        Lsn durable = 0;
        FERN_RETURN_IF_ERROR(file.BadRecordIsDamage(offset, expected_lsn - 1, &damage, &durable));
        if (damage) {
          return CorruptionAt(
              index, offset,
              durable == 0
                  ? StrCat(reason, ", and valid records follow it")
                  : StrCat(reason,
                           ", though a later sync mark says the log was durable through LSN ",
                           durable));
        }
        end_found_ = true;
        end_offset_ = offset;
        end_last_lsn_ = expected_lsn - 1;
        return Status::OK();
      }
      if (IsSyncMark(frame)) {
        FERN_RETURN_IF_ERROR(CheckSyncMark(index, offset, frame, expected_lsn));
        offset += frame.size;
        continue;
      }
      if (frame.lsn != expected_lsn) {
        return CorruptionAt(index, offset,
                            StrCat("expected LSN ", expected_lsn, ", found LSN ", frame.lsn));
      }
      uint32_t count;
      FERN_RETURN_IF_ERROR(FrameRecords(index, offset, frame, &count));
      if (frame.lsn + count - 1 >= skip_below) {
        const Lsn first = std::max(frame.lsn, skip_below);
        return Position(index, offset, frame, static_cast<uint32_t>(first - frame.lsn));
      }
      expected_lsn += count;
      offset += frame.size;
    }
    if (IsLastFile(index)) {
      end_found_ = true;
      end_offset_ = offset;
      end_last_lsn_ = expected_lsn - 1;
      return Status::OK();
    }
    ++index;
    if (files_[index].first_lsn != expected_lsn) {
      return CorruptionAt(index, 0,
                          StrCat("the file starts at LSN ", files_[index].first_lsn,
                                 " but the previous file ends at LSN ", expected_lsn - 1));
    }
    offset = kLogFileHeaderSize;
  }
}

Status LogReader::CheckSyncMark(size_t index, uint64_t offset, const LogRecordFrame& frame,
                                Lsn next_lsn) const {
  if (open_->format_version < kFirstSyncMarkedLogFormatVersion) {
    return CorruptionAt(index, offset,
                        StrCat("sync mark in a version ", open_->format_version, " log file"));
  }
  if (!frame.payload.empty() || frame.lsn > next_lsn) {
    return CorruptionAt(
        index, offset,
        StrCat("sync mark says LSN ", frame.lsn, " was not durable, with ", frame.payload.size(),
               " payload bytes, where the next record is ", next_lsn));
  }
  return Status::OK();
}

Status LogReader::ReadBackwardFrom(size_t index, uint64_t end, Lsn wanted_lsn) {
  valid_ = false;
  while (true) {
    if (end <= kLogFileHeaderSize) {
      if (files_[index].first_lsn != wanted_lsn + 1) {
        return CorruptionAt(index, kLogFileHeaderSize,
                            StrCat("the file starts at LSN ", files_[index].first_lsn,
                                   " but its first record should have LSN ", wanted_lsn + 1));
      }
      if (index == 0) return Status::OK();
      --index;
      FERN_RETURN_IF_ERROR(Enter(index));
      end = open_->size;
      continue;
    }
    FERN_RETURN_IF_ERROR(Enter(index));
    LogRecordFrame frame;
    std::string reason;
    FrameParseResult result = FrameParseResult::kBad;
    FERN_RETURN_IF_ERROR(open_->ReadFrameEndingAt(end, &frame, &reason, &result));
    if (result != FrameParseResult::kOk) {
      return CorruptionAt(index, end, StrCat("the record ending here: ", reason));
    }
    uint64_t offset = end - frame.size;
    if (IsSyncMark(frame)) {
      FERN_RETURN_IF_ERROR(CheckSyncMark(index, offset, frame, wanted_lsn + 1));
      end = offset;
      continue;
    }
    uint32_t count;
    FERN_RETURN_IF_ERROR(FrameRecords(index, offset, frame, &count));
    if (frame.lsn + count - 1 != wanted_lsn) {
      return CorruptionAt(
          index, offset,
          StrCat("expected LSN ", wanted_lsn, ", found LSN ", frame.lsn + count - 1));
    }
    return Position(index, offset, frame, count - 1);
  }
}

Status LogReader::SeekToLsn(Lsn lsn) {
  valid_ = false;
  if (files_.empty()) return Status::OK();
  // The last file whose first LSN is <= lsn; the first file when the log starts later.
  size_t index = 0;
  while (index + 1 < files_.size() && files_[index + 1].first_lsn <= lsn) ++index;
  return ReadForwardFrom(index, kLogFileHeaderSize, files_[index].first_lsn, lsn);
}

Status LogReader::SeekToLast() {
  valid_ = false;
  if (files_.empty()) return Status::OK();
  LogEnd end;
  FERN_RETURN_IF_ERROR(FindEnd(&end));
  uint64_t at = end.header_valid ? end.valid_end : kLogFileHeaderSize;
  return ReadBackwardFrom(files_.size() - 1, at, end.last_lsn);
}

Status LogReader::Next() {
  if (!valid_) return Status::InvalidArgument("LogReader::Next: not positioned on a record");
  if (group_member_ + 1 < group_.size()) return PositionInGroup(group_member_ + 1);
  return ReadForwardFrom(file_index_, offset_ + record_size_, record_.lsn + 1, 0);
}

Status LogReader::Prev() {
  if (!valid_) return Status::InvalidArgument("LogReader::Prev: not positioned on a record");
  if (!group_.empty() && group_member_ > 0) return PositionInGroup(group_member_ - 1);
  return ReadBackwardFrom(file_index_, offset_, record_.lsn - 1);
}

Status LogReader::FindEnd(LogEnd* end) {
  valid_ = false;
  if (files_.empty()) return Status::NotFound("no log files");
  size_t last = files_.size() - 1;
  FERN_RETURN_IF_ERROR(Enter(last));
  OpenFile& file = *open_;
  const LogFileInfo& info = files_[last];
  *end = LogEnd();
  end->path = info.path;
  end->file_first_lsn = info.first_lsn;
  end->file_size = file.size;
  end->last_lsn = info.first_lsn - 1;
  if (file.header_torn) return Status::OK();
  end->header_valid = true;
  end->format_version = file.format_version;
  end->valid_end = kLogFileHeaderSize;
  if (file.size == kLogFileHeaderSize) return Status::OK();

  // Fast path: the file ends with a valid record whose LSN fits the file. Not for version 4
  // and later, where a torn tail may hold valid records after a hole (log_format.h): the
  // log ends at the hole, and only a scan finds it.
  LogRecordFrame frame;
  FrameParseResult result = FrameParseResult::kBad;
  if (file.format_version < kFirstSyncMarkedLogFormatVersion) {
    FERN_RETURN_IF_ERROR(file.ReadFrameEndingAt(file.size, &frame, nullptr, &result));
  }
  uint64_t max_span = MaxLsnSpan(file.format_version, file.size - kLogFileHeaderSize);
  uint32_t count = 0;
  if (result == FrameParseResult::kOk && frame.lsn >= info.first_lsn &&
      frame.lsn - info.first_lsn < max_span &&
      FrameRecords(last, file.size - frame.size, frame, &count).ok()) {
    end->valid_end = file.size;
    end->last_lsn = frame.lsn + count - 1;
    return Status::OK();
  }

  // Torn or damaged: scan the file to tell which and where its valid part ends.
  FERN_RETURN_IF_ERROR(ReadForwardFrom(last, kLogFileHeaderSize, info.first_lsn, kMaxLsn + 1));
  if (!end_found_) return Status::Corruption(StrCat(info.path, ": could not find the log's end"));
  end->valid_end = end_offset_;
  end->last_lsn = end_last_lsn_;
  return Status::OK();
}

}  // namespace fern
