#include "log/log_group.h"

#include "util/big_buffer.h"
#include "util/coding.h"
#include "util/compression.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

struct LogFramePacker::Frame {
  Lsn lsn;
  LogRecordType type;
  std::string_view payload;
  std::string_view whole;
};

namespace {

Status GroupError(std::string_view what) {
  return Status::Corruption(StrCat("record group: ", what));
}

using PlainFrame = LogFramePacker::Frame;

// The first plain frame of the writer's buffer. REQUIRES: `frames` starts with a whole valid
// frame.
PlainFrame NextPlainFrame(std::string_view frames) {
  const uint32_t length = DecodeFixed32(frames.data());
  PlainFrame f;
  f.lsn = DecodeFixed64(frames.data() + 4);
  f.type = static_cast<LogRecordType>(frames[12]);
  f.payload = frames.substr(kRecordHeaderSize, length);
  f.whole = frames.substr(0, length + kRecordOverhead);
  return f;
}

// Stores one record as its own frame, snappy-compressed when that pays.
void AppendSingle(const PlainFrame& f, std::string* packed, std::string* out) {
  ReserveBuffer(out, out->size() + f.whole.size());
  if (CompressLogPayload(f.payload, packed)) {
    AppendLogRecordFrame(
        f.lsn, static_cast<LogRecordType>(static_cast<uint8_t>(f.type) | kCompressedRecordFlag),
        *packed, out);
  } else {
    out->append(f.whole);
  }
}

}  // namespace

Status PeekLogGroupCount(std::string_view group_payload, uint32_t* count) {
  Decoder in(group_payload);
  if (!in.GetVarint32(count)) return GroupError("no record count");
  if (*count < 2 || *count > kMaxLogGroupRecords) {
    return GroupError(StrCat("record count ", *count, " outside 2..", kMaxLogGroupRecords));
  }
  return Status::OK();
}

Status DecodeLogGroup(std::string_view group_payload, std::string* stream,
                      std::vector<LogGroupRecord>* records) {
  records->clear();
  uint32_t count;
  FERN_RETURN_IF_ERROR(PeekLogGroupCount(group_payload, &count));
  Decoder in(group_payload);
  uint32_t ignored;
  in.GetVarint32(&ignored);
  const std::string_view frame = in.rest();
  // The partition frame's declared size, checked before the codec allocates anything.
  Decoder head(frame);
  uint8_t codec;
  uint64_t raw_size;
  if (!head.GetFixed8(&codec) || !head.GetVarint64(&raw_size)) {
    return GroupError("stream header cut short");
  }
  if (codec != static_cast<uint8_t>(Compression::kZstd)) {
    return GroupError(StrCat("stream codec ", static_cast<int>(codec), ", not zstd"));
  }
  if (raw_size > kMaxLogGroupRawBytes) {
    return GroupError(
        StrCat("stream of ", raw_size, " bytes exceeds the limit ", kMaxLogGroupRawBytes));
  }
  Status s = DecompressPartition(frame, stream);
  if (!s.ok()) return GroupError(s.message());
  Decoder records_in(*stream);
  records->reserve(count);
  while (!records_in.empty()) {
    if (records->size() == count) return GroupError(StrCat("more than ", count, " records"));
    uint8_t type;
    uint32_t length;
    std::string_view payload;
    if (!records_in.GetFixed8(&type) || !records_in.GetVarint32(&length)) {
      return GroupError(StrCat("record ", records->size(), " cut short"));
    }
    if (!IsValidLogRecordType(type)) {
      return GroupError(StrCat("record ", records->size(), " has type ", static_cast<int>(type)));
    }
    if (length > kMaxLogPayloadSize || !records_in.GetBytes(length, &payload)) {
      return GroupError(StrCat("record ", records->size(), " cut short"));
    }
    records->push_back({static_cast<LogRecordType>(type), payload});
  }
  if (records->size() != count) {
    return GroupError(StrCat(records->size(), " records where the count says ", count));
  }
  return Status::OK();
}

void LogFramePacker::Pack(std::string_view frames, std::string* out) {
  out_ = out;
  run_begin_ = nullptr;
  while (!frames.empty()) {
    const PlainFrame f = NextPlainFrame(frames);
    if (static_cast<uint8_t>(f.type) == kSyncMarkFrameType) {
      // Stays a plain frame, which a reader checking a torn tail finds without decoding.
      FlushRun();
      out->append(f.whole);
    } else if (f.payload.size() > kMaxGroupedPayload) {
      FlushRun();
      AppendSingle(f, &packed_, out);
    } else {
      AddToRun(frames.data(), f);
    }
    frames.remove_prefix(f.whole.size());
  }
  FlushRun();
  out_ = nullptr;
  // A record of many MiB leaves these big; the next write-out starts small again.
  if (stream_.capacity() > kKeptScratchBytes) std::string().swap(stream_);
  if (payload_.capacity() > kKeptScratchBytes) std::string().swap(payload_);
  if (packed_.capacity() > kKeptScratchBytes) std::string().swap(packed_);
}

void LogFramePacker::AddToRun(const char* at, const Frame& f) {
  if (run_begin_ == nullptr) {
    run_begin_ = at;
    run_bytes_ = 0;
    run_count_ = 0;
    run_first_lsn_ = f.lsn;
    stream_.clear();
  }
  run_bytes_ += f.whole.size();
  ++run_count_;
  stream_.push_back(static_cast<char>(f.type));
  PutVarint32(&stream_, static_cast<uint32_t>(f.payload.size()));
  stream_.append(f.payload);
  if (stream_.size() >= kLogGroupTargetRawBytes || run_count_ == kMaxLogGroupRecords) FlushRun();
}

void LogFramePacker::FlushRun() {
  if (run_begin_ == nullptr) return;
  bool grouped = false;
  if (run_count_ >= 2 && stream_.size() >= kMinLogGroupRawBytes) {
    payload_.clear();
    PutVarint32(&payload_, run_count_);
    // A failure (out of memory) only costs the grouping.
    grouped = CompressPartition(Compression::kZstd, 0, stream_, &payload_).ok() &&
              payload_.size() < stream_.size() && payload_.size() <= kMaxLogPayloadSize;
    if (grouped) {
      AppendLogRecordFrame(run_first_lsn_, static_cast<LogRecordType>(kRecordGroupFrameType),
                           payload_, out_);
    }
  }
  if (!grouped) {
    // The run's frames lie back to back in the input: walk them again.
    std::string_view run(run_begin_, run_bytes_);
    while (!run.empty()) {
      const PlainFrame f = NextPlainFrame(run);
      run.remove_prefix(f.whole.size());
      AppendSingle(f, &packed_, out_);
    }
  }
  run_begin_ = nullptr;
}

void PackLogFrames(std::string_view frames, std::string* out) {
  LogFramePacker packer;
  packer.Pack(frames, out);
}

}  // namespace fern
