// libFuzzer target for the log record parser: arbitrary bytes are walked as a sequence of
// records forward and backward, every frame that parses is decoded, rendered and re-encoded.
// The parser must never crash, read out of bounds or allocate from a damaged length, and a
// decoded payload must survive a round trip (varints may be non-canonical on input, so the
// check is decode(encode(decode(p))) == decode(p)). Record groups are decoded member by
// member, and the group decoder also runs on the raw input.
//
// Build (Clang only): see tests/fuzz/CMakeLists.txt; run e.g.
//   ./log_record_fuzzer -max_len=4096 corpus/
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "log/log_dump.h"
#include "log/log_format.h"
#include "log/log_group.h"

namespace fern {
namespace {

void CheckPayload(const LogRecordFrame& frame);

void CheckFrame(const LogRecordFrame& frame, size_t available) {
  if (frame.size > available || frame.size != frame.payload.size() + kRecordOverhead) {
    __builtin_trap();
  }
  if (static_cast<uint8_t>(frame.type) != kRecordGroupFrameType) {
    CheckPayload(frame);
    return;
  }
  std::string stream;
  std::vector<LogGroupRecord> members;
  if (!DecodeLogGroup(frame.payload, &stream, &members).ok()) return;
  if (members.size() < 2 || members.size() > kMaxLogGroupRecords) __builtin_trap();
  for (size_t i = 0; i < members.size(); ++i) {
    LogRecordFrame member = frame;
    member.lsn = frame.lsn + i;
    member.type = members[i].type;
    member.payload = members[i].payload;
    CheckPayload(member);
  }
}

void CheckPayload(const LogRecordFrame& frame) {
  LogRecord record;
  if (!DecodeLogPayload(frame.type, frame.payload, &record).ok()) return;
  std::string line = FormatLogRecord(record);
  std::string payload;
  EncodeLogPayload(record, &payload);
  LogRecord again;
  if (!DecodeLogPayload(frame.type, payload, &again).ok() || !(again == record)) {
    __builtin_trap();
  }
  std::string framed;
  AppendLogRecordFrame(frame.lsn, frame.type, payload, &framed);
  LogRecordFrame reparsed;
  if (ParseLogRecordFrame(framed, &reparsed, nullptr) != FrameParseResult::kOk ||
      reparsed.lsn != frame.lsn || reparsed.payload != payload) {
    __builtin_trap();
  }
}

}  // namespace
}  // namespace fern

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fern;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string reason;

  // Forward, resynchronising one byte on after anything that is not a record.
  std::string_view rest = input;
  while (rest.size() >= kRecordOverhead) {
    LogRecordFrame frame;
    if (ParseLogRecordFrame(rest, &frame, &reason) == FrameParseResult::kOk) {
      CheckFrame(frame, rest.size());
      rest.remove_prefix(frame.size);
    } else {
      rest.remove_prefix(1);
    }
  }

  // Backward, the way a reader finds the last record.
  std::string_view prefix = input;
  while (prefix.size() >= kRecordOverhead) {
    LogRecordFrame frame;
    if (ParseLogRecordFrameBackward(prefix, &frame, &reason) == FrameParseResult::kOk) {
      CheckFrame(frame, prefix.size());
      prefix.remove_suffix(frame.size);
    } else {
      prefix.remove_suffix(1);
    }
  }

  // The payload decoder on raw bytes, with the type taken from the first byte.
  if (!input.empty()) {
    LogRecord record;
    (void)DecodeLogPayload(static_cast<LogRecordType>(input[0]), input.substr(1), &record).ok();
  }
  {
    std::string stream;
    std::vector<LogGroupRecord> members;
    (void)DecodeLogGroup(input, &stream, &members).ok();
  }
  Lsn lsn;
  (void)DecodeLogFileHeader(input, &lsn).ok();
  (void)ParseLogFileName(input, &lsn);
  return 0;
}
