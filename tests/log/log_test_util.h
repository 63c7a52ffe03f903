// Helpers shared by the log tests: scratch directories, fault injectors, and reading a whole
// log back.
#ifndef FERN_TESTS_LOG_LOG_TEST_UTIL_H_
#define FERN_TESTS_LOG_LOG_TEST_UTIL_H_

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "log/log_dump.h"
#include "log/log_format.h"
#include "log/log_reader.h"
#include "util/checksum.h"
#include "util/coding.h"
#include "util/fault_injection.h"
#include "util/file.h"
#include "util/strings.h"

namespace fern {

// Lets GoogleTest print records readably in failure messages.
inline void PrintTo(const LogRecord& record, std::ostream* os) {
  *os << "lsn=" << record.lsn << " " << FormatLogRecord(record);
}

// A fresh, empty directory for one test, removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = StrCat(::testing::TempDir(), "fern_log_", info->test_suite_name(), "_", info->name(),
                   "_", static_cast<int>(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline bool IsLogPath(const std::string& path) {
  return path.size() >= 4 && path.compare(path.size() - 4, 4, ".log") == 0;
}

// Counts fdatasyncs of log files, optionally sleeping in each to stand in for a slow device;
// can fail the n-th write or sync of a log file, or tear a write short.
class LogFaultInjector : public FaultInjector {
 public:
  Status BeforeWrite(const std::string& path, uint64_t offset, size_t* size) override {
    if (!IsLogPath(path)) return Status::OK();
    int n = ++writes_;
    if ((fail_write_at_ > 0 && n >= fail_write_at_) || (fail_every_ > 0 && n % fail_every_ == 0)) {
      if (tear_to_ > 0 && *size > tear_to_) {
        *size = tear_to_;
        return Status::OK();
      }
      return Status::IOError(StrCat(path, ": injected write failure"));
    }
    return Status::OK();
  }
  Status BeforeSync(const std::string& path) override {
    if (!IsLogPath(path)) return Status::OK();
    int n = ++syncs_;
    if (sync_delay_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(sync_delay_us_));
    if (fail_sync_at_ > 0 && n >= fail_sync_at_) {
      return Status::IOError(StrCat(path, ": injected fdatasync failure"));
    }
    return Status::OK();
  }

  int writes() const { return writes_.load(); }
  int syncs() const { return syncs_.load(); }
  // Every log write from the n-th on fails (torn to `tear_to` bytes when that is non-zero).
  void FailWritesFrom(int n, size_t tear_to = 0) {
    fail_write_at_ = n;
    tear_to_ = tear_to;
  }
  void StopFailingWrites() { fail_write_at_ = 0; }
  // Every n-th log write fails (0: none), torn as set by FailWritesFrom.
  void FailEveryNthWrite(int n) { fail_every_ = n; }
  void FailSyncsFrom(int n) { fail_sync_at_ = n; }
  void set_sync_delay_us(int us) { sync_delay_us_ = us; }

 private:
  std::atomic<int> writes_{0};
  std::atomic<int> syncs_{0};
  std::atomic<int> fail_write_at_{0};
  std::atomic<int> fail_every_{0};
  std::atomic<size_t> tear_to_{0};
  std::atomic<int> fail_sync_at_{0};
  std::atomic<int> sync_delay_us_{0};
};

// Installs an injector for the scope of a test.
class ScopedFaultInjector {
 public:
  explicit ScopedFaultInjector(FaultInjector* injector) { SetFaultInjector(injector); }
  ~ScopedFaultInjector() { SetFaultInjector(nullptr); }
};

// A record with its strings copied out of the reader's buffer. The copies live on the heap,
// so `record`'s views stay valid when an OwnedRecord is moved or copied.
struct OwnedRecord {
  LogRecord record;
  std::string key, value;  // copies for convenient comparisons
  uint64_t offset = 0;
  std::string path;
  std::shared_ptr<const std::array<std::string, 6>> storage;
};

inline OwnedRecord Own(const LogRecord& r) {
  auto storage = std::make_shared<std::array<std::string, 6>>(std::array<std::string, 6>{
      std::string(r.key), std::string(r.value), std::string(r.extra), std::string(r.xid),
      std::string(r.name), std::string(r.file_name)});
  OwnedRecord o;
  o.record = r;
  o.record.key = (*storage)[0];
  o.record.value = (*storage)[1];
  o.record.extra = (*storage)[2];
  o.record.xid = (*storage)[3];
  o.record.name = (*storage)[4];
  o.record.file_name = (*storage)[5];
  o.key = r.key;
  o.value = r.value;
  o.storage = std::move(storage);
  return o;
}

// Reads every record from `from` on; returns the reader's final status.
inline Status ReadForward(const std::string& dir, Lsn from, std::vector<OwnedRecord>* out) {
  out->clear();
  std::unique_ptr<LogReader> reader;
  Status s = LogReader::Open(dir, &reader);
  if (!s.ok()) return s;
  s = reader->SeekToLsn(from);
  while (s.ok() && reader->Valid()) {
    OwnedRecord o = Own(reader->record());
    o.offset = reader->current_offset();
    o.path = reader->current_path();
    out->push_back(std::move(o));
    s = reader->Next();
  }
  return s;
}

inline Status ReadBackward(const std::string& dir, std::vector<OwnedRecord>* out) {
  out->clear();
  std::unique_ptr<LogReader> reader;
  Status s = LogReader::Open(dir, &reader);
  if (!s.ok()) return s;
  s = reader->SeekToLast();
  while (s.ok() && reader->Valid()) {
    out->push_back(Own(reader->record()));
    s = reader->Prev();
  }
  return s;
}

inline std::vector<std::string> LogFilePaths(const std::string& dir) {
  std::unique_ptr<LogReader> reader;
  std::vector<std::string> paths;
  if (!LogReader::Open(dir, &reader).ok()) return paths;
  for (const LogFileInfo& f : reader->files()) paths.push_back(f.path);
  return paths;
}

inline uint64_t FileSize(const std::string& path) { return std::filesystem::file_size(path); }

// The header of a log file starting at LSN 1 that names `version`, otherwise valid.
inline std::string HeaderOfVersion(uint32_t version) {
  std::string header = EncodeLogFileHeader(1).substr(0, 24);
  EncodeFixed32(header.data() + 8, version);
  PutFixed64(&header, Checksum64(header));
  return header;
}

// `s` is Corruption naming `path` and `offset`.
inline void ExpectCorruptionAt(const Status& s, const std::string& path, uint64_t offset) {
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find(path), std::string_view::npos) << s.ToString();
  EXPECT_NE(s.message().find(StrCat("offset ", offset, ":")), std::string_view::npos)
      << s.ToString();
}

inline std::string ReadAll(const std::string& path) {
  std::string contents;
  EXPECT_TRUE(ReadFileToString(path, &contents).ok());
  return contents;
}

inline void WriteAll(const std::string& path, std::string_view contents) {
  std::unique_ptr<File> file;
  ASSERT_TRUE(File::Open(path, File::Mode::kCreateTruncate, &file).ok());
  ASSERT_TRUE(file->Write(0, contents).ok());
}

// Writes `log` as the only log file of `dir` (first LSN 1) and expects a forward read to
// return its first record, then Corruption at `bad_offset` whose message holds `says`.
inline void ExpectOneRecordThenCorruption(const std::string& dir, const std::string& log,
                                          uint64_t bad_offset, std::string_view says) {
  const std::string path = dir + "/" + LogFileName(1);
  WriteAll(path, log);
  std::vector<OwnedRecord> records;
  Status s = ReadForward(dir, 0, &records);
  ExpectCorruptionAt(s, path, bad_offset);
  EXPECT_NE(s.message().find(says), std::string_view::npos) << s.ToString();
  EXPECT_EQ(records.size(), 1u);
}

}  // namespace fern

#endif  // FERN_TESTS_LOG_LOG_TEST_UTIL_H_
