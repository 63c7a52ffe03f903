// Record groups (log format version 3): many small records stored in one frame, compressed
// together.
//
// Compressed one by one, an autocommitted put of fernbench's rows (a 16-byte key and 100
// bytes that compress 2:1) still takes ~90 bytes of log: snappy cannot use what records
// share (key digits, ascending transaction ids) and each keeps 21 bytes of framing. A
// write-out of many records (a buffer filled by commits that do not sync, or a group commit
// of many threads) therefore stores runs of them as groups: one ordinary frame (log_format.h)
// of type kRecordGroupFrameType whose LSN is the first record's, and whose payload is
//
//   v32     count of records, 2 .. kMaxLogGroupRecords; they have LSNs LSN .. LSN+count-1
//   rest    one partition frame (util/compression.h) of the records' stream, zstd-coded:
//           per record its type byte (a LogRecordType, never flagged), v32 payload length and
//           the payload, in LSN order; the stream is at most kMaxLogGroupRawBytes
//
// ~62 bytes per such put instead of ~90 (fillrandom's log at N = 2,000,000: ~125 MB
// instead of ~180 MB). The frame's checksum covers the compressed bytes; the stream must
// decode to exactly `count` records with nothing left over.
//
// LogGroupPacker turns the writer's buffer of plain frames into what goes to the file:
// groups where a run of records is worth it, single frames (snappy-compressed when that
// pays, as in version 2) otherwise; a sync mark (version 4) always as a plain frame. Pure functions
// and a stateless packer: thread-safe.
#ifndef FERN_LOG_LOG_GROUP_H_
#define FERN_LOG_LOG_GROUP_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fern/status.h"
#include "log/log_format.h"

namespace fern {

inline constexpr uint32_t kMaxLogGroupRecords = uint32_t{1} << 16;
inline constexpr size_t kMaxLogGroupRawBytes = size_t{4} << 20;

// What the packer groups: records whose payload is at most kMaxGroupedPayload bytes, in runs
// of at least kMinLogGroupRawBytes of stream (below that, zstd's frame costs more than the
// records share) and at most kLogGroupTargetRawBytes.
inline constexpr size_t kMaxGroupedPayload = size_t{64} << 10;
inline constexpr size_t kMinLogGroupRawBytes = 2048;
inline constexpr size_t kLogGroupTargetRawBytes = size_t{1} << 20;

// One record of a decoded group; `payload` points into the caller's stream buffer.
struct LogGroupRecord {
  LogRecordType type = LogRecordType::kInvalid;
  std::string_view payload;
};

// Reads the record count at the head of a group frame's payload, without decompressing.
// Corruption when it is missing or outside 2..kMaxLogGroupRecords.
Status PeekLogGroupCount(std::string_view group_payload, uint32_t* count);

// Decompresses a group frame's payload into `*stream` and lists its records (views into
// `*stream`). Corruption, saying what, for a bad count, a stream over kMaxLogGroupRawBytes
// (checked before anything is allocated), a codec error, an unknown or flagged type, a
// payload over kMaxLogPayloadSize, a record cut short, or records more or fewer than the
// count.
Status DecodeLogGroup(std::string_view group_payload, std::string* stream,
                      std::vector<LogGroupRecord>* records);

// Rewrites a run of plain frames (as LogWriter buffers them: valid, uncompressed, LSNs
// consecutive) into the bytes a version 3 file stores for them: the same records in the
// same order, grouped or single as described at the top. Appends to `*out`.
void PackLogFrames(std::string_view frames, std::string* out);

}  // namespace fern

#endif  // FERN_LOG_LOG_GROUP_H_
