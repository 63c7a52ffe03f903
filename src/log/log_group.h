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
// LogFramePacker turns the writer's buffer of plain frames into what goes to the file:
// groups where a run of records is worth it, single frames (snappy-compressed when that
// pays, as in version 2) otherwise; a sync mark (version 4) always as a plain frame. The
// functions are thread-safe; a packer is used by one thread at a time.
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
//
// The packer keeps its scratch buffers (a group's raw stream and its compressed form) from
// one Pack to the next: a write-out of fillrandom's log is ~1 MiB, and buffers allocated
// afresh for each one cost page faults on every first touch, which made packing ~70% memory
// management. Scratch grown past kKeptScratchBytes by a huge record is given back. One
// thread at a time.
class LogFramePacker {
 public:
  static constexpr size_t kKeptScratchBytes = 2 * kLogGroupTargetRawBytes;
  struct Frame;  // one plain frame of the input, parsed (log_group.cc)

  void Pack(std::string_view frames, std::string* out);

 private:
  // `at` is where f starts in the frames being packed.
  void AddToRun(const char* at, const Frame& f);
  // Writes the pending run out: as one group when it is big enough and compresses, else
  // record by record.
  void FlushRun();

  std::string* out_ = nullptr;
  const char* run_begin_ = nullptr;  // the pending run's first frame; nullptr: no run
  size_t run_bytes_ = 0;             // its frames' bytes, back to back from run_begin_
  uint32_t run_count_ = 0;
  Lsn run_first_lsn_ = 0;
  std::string stream_;   // the run's records as a group stores them, before compression
  std::string payload_;  // a group frame's payload
  std::string packed_;   // one record's snappy-compressed payload
};

// Pack with a packer of its own (for callers that pack once).
void PackLogFrames(std::string_view frames, std::string* out);

}  // namespace fern

#endif  // FERN_LOG_LOG_GROUP_H_
