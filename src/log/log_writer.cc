#include "log/log_writer.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "log/log_group.h"
#include "util/big_buffer.h"
#include "util/file.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

// Gathers in a row that must time out before a leader expects fewer committers.
constexpr int kTimeoutsToLowerPeak = 3;

// Back-off between retries of a failed write-out: short enough that writes resume soon after
// space returns, long enough that a full disk costs a failing write now and then, not a
// write per append.
constexpr absl::Duration kFirstRetryDelay = absl::Milliseconds(10);
constexpr absl::Duration kMaxRetryDelay = absl::Seconds(1);

}  // namespace

LogWriter::LogWriter(std::string dir, const LogWriterOptions& options)
    : dir_(std::move(dir)), options_(options), retry_delay_(kFirstRetryDelay) {}

Status LogWriter::Open(const std::string& dir, const LogWriterOptions& options,
                       std::unique_ptr<LogWriter>* writer) {
  std::unique_ptr<LogReader> reader;
  FERN_RETURN_IF_ERROR(LogReader::Open(dir, &reader));
  std::unique_ptr<LogWriter> result(new LogWriter(dir, options));
  if (reader->files().empty()) {
    IoCounts counts;
    FERN_RETURN_IF_ERROR(result->StartFile(1, &counts));
    MutexLock lock(&result->mu_);
    result->file_bytes_ = kLogFileHeaderSize;
    result->stats_.files_created = counts.files_created;
  } else {
    LogEnd end;
    FERN_RETURN_IF_ERROR(reader->FindEnd(&end));
    {
      MutexLock lock(&result->files_mu_);
      result->files_ = reader->files();
    }
    FERN_RETURN_IF_ERROR(result->OpenAfter(end));
  }
  if (options.write_behind) {
    LogWriter* raw = result.get();
    result->write_behind_thread_ = std::thread([raw] { raw->WriteBehindLoop(); });
  }
  *writer = std::move(result);
  return Status::OK();
}

Status LogWriter::OpenAfter(const LogEnd& end) {
  FERN_RETURN_IF_ERROR(File::Open(end.path, File::Mode::kReadWrite, &file_));
  uint64_t offset = end.valid_end;
  // A file of an older format version holds only records that version allows: an empty one
  // is rewritten with the current header, and new records go to a new file otherwise.
  const bool older_version = end.header_valid && end.format_version < kLogFormatVersion;
  if (!end.header_valid || (older_version && end.valid_end == kLogFileHeaderSize)) {
    FERN_RETURN_IF_ERROR(file_->Truncate(0));
    FERN_RETURN_IF_ERROR(file_->Write(0, EncodeLogFileHeader(end.file_first_lsn)));
    offset = kLogFileHeaderSize;
  } else if (end.valid_end < end.file_size) {
    FERN_RETURN_IF_ERROR(file_->Truncate(end.valid_end));
  }
  // Whatever a killed predecessor left in the page cache becomes durable before we count
  // it as such.
  FERN_RETURN_IF_ERROR(file_->Sync());
  file_offset_ = offset;
  MutexLock lock(&mu_);
  next_lsn_ = end.last_lsn + 1;
  written_lsn_ = end.last_lsn;
  durable_lsn_ = end.last_lsn;
  published_durable_lsn_.store(end.last_lsn, std::memory_order_release);
  file_bytes_ = offset;
  new_file_requested_ = older_version && offset > kLogFileHeaderSize;
  return Status::OK();
}

LogWriter::~LogWriter() {
  if (write_behind_thread_.joinable()) {
    {
      MutexLock lock(&mu_);
      write_behind_stopping_ = true;
      write_behind_wake_.Signal();
    }
    write_behind_thread_.join();
  }
  MutexLock lock(&mu_);
  while (io_busy_) mu_.Wait(&io_done_);
  // Records kept by a failed write get one more try, whatever the back-off says.
  if (!failed_for_good_ && !buffer_.empty()) {
    Status ignored = RunIo(/*sync=*/false);  // a destructor has no one to report to
    (void)ignored;
  }
  // A clean close leaves no preallocated tail (a reopen would cut it off anyway).
  if (failed_.ok() && file_ != nullptr && preallocated_end_ > file_offset_) {
    file_->Truncate(file_offset_).ok();
  }
}

// ---- Appending --------------------------------------------------------------------------

Status LogWriter::BeginAppend(LogRecordType type, size_t* start, bool* rotated) {
  FERN_RETURN_IF_ERROR(RetryIfDue());
  if (!IsValidLogRecordType(static_cast<uint8_t>(type))) {
    return Status::InvalidArgument(
        StrCat("log record type ", static_cast<int>(static_cast<uint8_t>(type))));
  }
  if (next_lsn_ > kMaxLsn) return Status::NotSupported("the log has used up its LSNs");
  *rotated = (new_file_requested_ || file_bytes_ >= options_.max_file_bytes) &&
             file_bytes_ > kLogFileHeaderSize;
  new_file_requested_ = false;
  if (*rotated) rotations_.push_back({buffer_.size(), next_lsn_});
  *start = BeginLogRecordFrame(next_lsn_, type, &buffer_);
  return Status::OK();
}

Status LogWriter::FinishAppend(size_t start, bool rotated, Lsn* lsn) {
  size_t payload_size = buffer_.size() - start - kRecordHeaderSize;
  if (payload_size > kMaxLogPayloadSize) {
    buffer_.resize(start);
    if (rotated) rotations_.pop_back();
    return Status::InvalidArgument(StrCat("log record payload of ", payload_size,
                                          " bytes exceeds the limit ", kMaxLogPayloadSize));
  }
  FinishLogRecordFrame(start, &buffer_);
  if (start == 0) first_buffered_at_ = absl::Now();
  size_t size = buffer_.size() - start;
  file_bytes_ = (rotated ? kLogFileHeaderSize : file_bytes_) + size;
  *lsn = next_lsn_++;
  ++stats_.records;
  stats_.bytes += size;
  if (buffer_.size() < options_.buffer_bytes) return Status::OK();
  if (options_.write_behind && buffer_.size() < 2 * options_.buffer_bytes) {
    // The write-behind thread takes it, now or when the running write-out ends.
    if (WriteBehindDue()) write_behind_wake_.Signal();
    return Status::OK();
  }
  // Back-pressure: write the buffer out here rather than let it grow without bound. The
  // record is appended whatever happens now, unless a failed fdatasync loses the buffer: a
  // failed write keeps it for the retry (and BeginAppend refuses more until then).
  while (io_busy_ && failed_.ok()) mu_.Wait(&io_done_);
  if (failed_for_good_) return failed_;
  if (!failed_.ok() || buffer_.size() < options_.buffer_bytes) return Status::OK();
  Status s = RunIo(/*sync=*/false);
  return failed_for_good_ ? s : Status::OK();
}

Status LogWriter::Append(LogRecordType type, std::string_view payload, Lsn* lsn) {
  if (payload.size() > kMaxLogPayloadSize) {
    return Status::InvalidArgument(StrCat("log record payload of ", payload.size(),
                                          " bytes exceeds the limit ", kMaxLogPayloadSize));
  }
  MutexLock lock(&mu_);
  size_t start;
  bool rotated;
  FERN_RETURN_IF_ERROR(BeginAppend(type, &start, &rotated));
  ReserveBuffer(&buffer_, buffer_.size() + payload.size() + kRecordTrailerSize);
  buffer_.append(payload);
  return FinishAppend(start, rotated, lsn);
}

Status LogWriter::Append(const LogRecord& record, Lsn* lsn) {
  MutexLock lock(&mu_);
  size_t start;
  bool rotated;
  FERN_RETURN_IF_ERROR(BeginAppend(record.type, &start, &rotated));
  ReserveBuffer(&buffer_, buffer_.size() + LogPayloadSizeBound(record) + kRecordTrailerSize);
  EncodeLogPayload(record, &buffer_);
  return FinishAppend(start, rotated, lsn);
}

// ---- Writing and syncing ----------------------------------------------------------------

Status LogWriter::Sync(Lsn lsn) {
  mu_.Lock();
  Status s;
  if (lsn >= next_lsn_) {
    s = Status::InvalidArgument(
        StrCat("LogWriter::Sync: LSN ", lsn, " was not appended (last is ", next_lsn_ - 1, ")"));
  } else if (s = RetryIfDue(); !s.ok()) {
  } else if (durable_lsn_ < lsn) {
    ++stats_.sync_requests;
    waiting_lsns_.push_back(lsn);
    peak_syncers_ = std::max(peak_syncers_, UndurableSyncers());
    if (gathering_ && !io_busy_ && UndurableSyncers() >= peak_syncers_) {
      // The committer that completes a gathered group leads its round: it is running
      // already, while waking the gatherer would cost a context switch (a costly one on a
      // virtual machine) before the write could start.
      gathering_ = false;
      gather_timeouts_ = 0;
      s = RunIo(/*sync=*/true);
      if (!s.ok()) ForgetSyncer(lsn);
      mu_.Unlock();
      return s;
    }
    return WaitDurable(lsn);
  }
  mu_.Unlock();
  return s;
}

int LogWriter::UndurableSyncers() const {
  // Entries up to durable_lsn_ are gone (RunIo drops them), so every entry counts.
  return static_cast<int>(waiting_lsns_.size());
}

void LogWriter::ForgetSyncer(Lsn lsn) {
  auto it = std::find(waiting_lsns_.begin(), waiting_lsns_.end(), lsn);
  if (it != waiting_lsns_.end()) waiting_lsns_.erase(it);
}

Status LogWriter::WaitDurable(Lsn lsn) {
  while (true) {
    if (!failed_.ok()) {
      Status s = failed_;
      ForgetSyncer(lsn);
      mu_.Unlock();
      return s;
    }
    if (durable_lsn_ >= lsn) {
      mu_.Unlock();
      return Status::OK();
    }
    if (io_busy_ || gathering_) {
      // Wait for the round to end without mu_: it wakes every waiter with one futex call,
      // and a waiter it made durable returns without taking mu_ again (with absl's CondVar
      // each woken waiter re-took mu_ in turn: two context switches per commit).
      const uint32_t round = io_rounds_.load(std::memory_order_acquire);
      mu_.Unlock();
      WaitForRoundEnd(round);
      if (published_durable_lsn_.load(std::memory_order_acquire) >= lsn) return Status::OK();
      mu_.Lock();
      continue;
    }
    if (UndurableSyncers() < peak_syncers_) {
      // Fewer committers are waiting than were recently seen at once: those the last sync
      // released are about to append again. Without this pause, committers split into two
      // groups that alternate (one syncing while the other gathers), halving the batch.
      // The committer whose arrival completes the group leads the round (see Sync) and
      // clears gathering_; this one leads only when none came in time.
      gathering_ = true;
      const absl::Time deadline = absl::Now() + GatherTimeout();
      bool timed_out = false;
      // Once this committer's LSN is durable, a set gathering_ is a later group's.
      while (gathering_ && durable_lsn_ < lsn && failed_.ok() &&
             (io_busy_ || UndurableSyncers() < peak_syncers_)) {
        if (mu_.WaitWithDeadline(&io_done_, deadline)) {
          timed_out = true;
          break;
        }
      }
      // A completing committer led (or leads) this group's round.
      if (!gathering_ || durable_lsn_ >= lsn) continue;
      gathering_ = false;
      if (timed_out && UndurableSyncers() < peak_syncers_) {
        // One late committer is noise; several rounds in a row mean someone stopped
        // committing: expect fewer from now on.
        if (++gather_timeouts_ >= kTimeoutsToLowerPeak) {
          peak_syncers_ = UndurableSyncers();
          gather_timeouts_ = 0;
        }
      } else {
        gather_timeouts_ = 0;
      }
      if (io_busy_ || !failed_.ok()) continue;
    }
    Status s = RunIo(/*sync=*/true);
    if (!s.ok()) ForgetSyncer(lsn);
    mu_.Unlock();
    return s;
  }
}

void LogWriter::WaitForRoundEnd(uint32_t round) {
  // The count goes up before the round is looked at, and EndRound looks at the count after
  // moving the round on (both sequentially consistent): either it sees this sleeper, or this
  // sleeper sees the new round. The futex call itself returns at once if the round moved.
  round_sleepers_.fetch_add(1);
  while (io_rounds_.load() == round) {
    ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&io_rounds_), FUTEX_WAIT_PRIVATE, round,
              nullptr, nullptr, 0);
  }
  round_sleepers_.fetch_sub(1);
}

void LogWriter::EndRound() {
  io_rounds_.fetch_add(1);
  if (round_sleepers_.load() > 0) {
    ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&io_rounds_), FUTEX_WAKE_PRIVATE, INT_MAX,
              nullptr, nullptr, 0);
  }
}

absl::Duration LogWriter::GatherTimeout() const {
  // Two average write + fdatasync rounds: long enough for released committers to come back
  // (half of one round often was not, with four threads on two cores), short enough that
  // one that went away costs little. Since the completing committer leads, a gatherer
  // whose deadline passed during that round's fdatasync woke for nothing; with two rounds
  // it sleeps through to the round's end (4 threads 26.6-27.5k vs 24.5-25.9k commits/s,
  // alternating runs). Bounded for very slow devices.
  int64_t nanos = std::clamp<int64_t>(2 * average_sync_nanos_, 10'000, 1'000'000);
  return absl::Nanoseconds(nanos);
}

Status LogWriter::Flush() {
  MutexLock lock(&mu_);
  while (true) {
    FERN_RETURN_IF_ERROR(RetryIfDue());
    if (written_lsn_ + 1 >= next_lsn_) return Status::OK();
    if (!io_busy_) break;
    mu_.Wait(&io_done_);
  }
  return RunIo(/*sync=*/false);
}

Status LogWriter::FlushIfBufferedBefore(absl::Time cutoff) {
  {
    MutexLock lock(&mu_);
    if (buffer_.empty() || first_buffered_at_ > cutoff) return Status::OK();
  }
  return Flush();
}

bool LogWriter::WriteBehindDue() const {
  return !io_busy_ && failed_.ok() && buffer_.size() >= options_.buffer_bytes;
}

void LogWriter::WriteBehindLoop() {
  MutexLock lock(&mu_);
  while (true) {
    while (!write_behind_stopping_ && !WriteBehindDue()) mu_.Wait(&write_behind_wake_);
    if (write_behind_stopping_) return;
    // A failure stays in failed_, where the next Append, Sync or Flush reports it and
    // retries after the back-off; this thread waits for a good write-out before it runs
    // again.
    Status ignored = RunIo(/*sync=*/false);
    (void)ignored;
  }
}

void LogWriter::AppendSyncMark() {
  // It stays in the file of the records before it (a rotation waits for the next record),
  // and the size that triggers rotation counts records only.
  AppendLogRecordFrame(durable_lsn_ + 1, static_cast<LogRecordType>(kSyncMarkFrameType), {},
                       &buffer_);
  ++stats_.sync_marks;
}

Status LogWriter::RunIo(bool sync) {
  io_busy_ = true;
  IoCounts counts;
  counts.records_end = buffer_.size();
  if (!buffer_.empty()) AppendSyncMark();
  io_buffer_.swap(buffer_);
  io_rotations_.swap(rotations_);
  Lsn target = next_lsn_ - 1;
  mu_.Unlock();
  absl::Time start = absl::Now();
  Status s = WriteOut(sync, &counts);
  int64_t nanos = absl::ToInt64Nanoseconds(absl::Now() - start);
  mu_.Lock();
  if (sync) average_sync_nanos_ += (nanos - average_sync_nanos_) / 8;
  stats_.writes += counts.writes;
  stats_.syncs += counts.syncs;
  stats_.files_created += counts.files_created;
  stats_.bytes_written += counts.bytes_written;
  if (s.ok()) {
    written_lsn_ = target;
    if (sync) {
      durable_lsn_ = target;
      // The committers this round made durable leave the count of those waiting now.
      waiting_lsns_.erase(std::remove_if(waiting_lsns_.begin(), waiting_lsns_.end(),
                                         [target](Lsn lsn) { return lsn <= target; }),
                          waiting_lsns_.end());
      published_durable_lsn_.store(target, std::memory_order_release);
    }
    if (!failed_.ok()) {  // a retry wrote what the failed write-out kept
      failed_ = Status::OK();
      failing_.store(false, std::memory_order_release);
      retry_delay_ = kFirstRetryDelay;
    }
  } else {
    NoteFailure(s, counts);
  }
  io_buffer_.clear();
  io_rotations_.clear();
  // A write-out of a large value keeps neither its buffer (which the next round would swap
  // back in as the append buffer) nor its packed copy. Up to four times buffer_bytes they
  // stay: a record of about buffer_bytes (a 1 MiB value) doubles a buffer past twice that,
  // and releasing it made every such put allocate and fault in fresh pages again
  // (big_values --case hot, 100 snapshots / 400 puts of 1 MiB: 296,048 page faults and
  // 3.98 s with a bound of 2x; 10,135 and 0.77 s with 4x).
  constexpr size_t kKeptBufferFactor = 4;
  if (io_buffer_.capacity() > kKeptBufferFactor * options_.buffer_bytes) {
    std::string().swap(io_buffer_);
  }
  if (io_packed_.capacity() > kKeptBufferFactor * options_.buffer_bytes) {
    std::string().swap(io_packed_);
  }
  io_busy_ = false;
  io_done_.SignalAll();
  if (options_.write_behind && WriteBehindDue()) write_behind_wake_.Signal();
  EndRound();
  return s.ok() ? s : failed_;
}

void LogWriter::NoteFailure(const Status& s, const IoCounts& counts) {
  failing_.store(true, std::memory_order_release);
  if (failed_for_good_) return;
  if (counts.sync_failed) {
    // The frames were handed to the page cache, which may have dropped them on the failure:
    // only recovery, from what the file holds, can say where the log ends.
    failed_for_good_ = true;
    failed_ =
        s.WithContext("writes stopped after a failed log sync; reopen the Env to write again");
    return;
  }
  // Give the frames not written back to the append buffer, ahead of those appended during the
  // write-out, with their rotations: the retry writes them where this write-out stopped.
  // The write-out's sync mark is left out (the retry ends with its own).
  std::string rest = io_buffer_.substr(
      counts.frames_done, counts.records_end - std::min(counts.frames_done, counts.records_end));
  std::vector<Rotation> rotations;
  for (size_t i = counts.rotations_done; i < io_rotations_.size(); ++i) {
    rotations.push_back({io_rotations_[i].offset - counts.frames_done, io_rotations_[i].first_lsn});
  }
  for (const Rotation& r : rotations_) rotations.push_back({r.offset + rest.size(), r.first_lsn});
  rest.append(buffer_);
  buffer_.swap(rest);
  rotations_.swap(rotations);
  first_buffered_at_ = absl::InfinitePast();
  failed_ = s.WithContext(
      StrCat("writes are refused until a retry of a failed log write succeeds (retried within ",
             absl::FormatDuration(retry_delay_), ")"));
  retry_at_ = absl::Now() + retry_delay_;
  retry_delay_ = std::min(2 * retry_delay_, kMaxRetryDelay);
}

Status LogWriter::RetryIfDue() {
  if (failed_.ok()) return failed_;
  if (failed_for_good_ || io_busy_ || absl::Now() < retry_at_) return failed_;
  ++stats_.write_retries;
  return RunIo(/*sync=*/true);
}

Status LogWriter::CheckWritable() {
  if (!failing_.load(std::memory_order_acquire)) return Status::OK();
  MutexLock lock(&mu_);
  return RetryIfDue();
}

Status LogWriter::WriteOut(bool sync, IoCounts* counts) {
  Status s;
  std::string_view buffer = io_buffer_;
  size_t pos = 0;
  for (const Rotation& rotation : io_rotations_) {
    s = WriteToFile(buffer.substr(pos, rotation.offset - pos), counts);
    if (!s.ok()) break;
    pos = rotation.offset;
    s = StartFile(rotation.first_lsn, counts);
    if (!s.ok()) break;
    ++counts->rotations_done;
  }
  if (s.ok()) {
    s = WriteToFile(buffer.substr(pos), counts);
    if (s.ok()) pos = buffer.size();
  }
  counts->frames_done = pos;
  if (s.ok() && sync) s = SyncFile(file_.get(), counts);
  return s;
}

Status LogWriter::SyncFile(File* file, IoCounts* counts) {
  ++counts->syncs;
  Status s = file->Sync();
  if (!s.ok()) counts->sync_failed = true;
  return s;
}

Status LogWriter::WriteToFile(std::string_view frames, IoCounts* counts) {
  if (frames.empty()) return Status::OK();
  io_packed_.clear();
  packer_.Pack(frames, &io_packed_);
  std::string_view data = io_packed_;
  ++counts->writes;
  counts->bytes_written += data.size();
  if (file_offset_ + data.size() > preallocated_end_) {
    constexpr uint64_t kChunk = uint64_t{4} << 20;
    uint64_t end = (file_offset_ + data.size() + kChunk - 1) / kChunk * kChunk;
    // Preallocation only saves fsync work: where it fails, appending still works.
    if (file_->Preallocate(preallocated_end_, end - preallocated_end_).ok()) {
      preallocated_end_ = end;
    }
  }
  FERN_RETURN_IF_ERROR(file_->Write(file_offset_, data));
  file_offset_ += data.size();
  return Status::OK();
}

Status LogWriter::StartFile(Lsn first_lsn, IoCounts* counts) {
  if (file_ != nullptr) {
    // Only the last file may end in preallocated zeros.
    if (preallocated_end_ > file_offset_) FERN_RETURN_IF_ERROR(file_->Truncate(file_offset_));
    FERN_RETURN_IF_ERROR(SyncFile(file_.get(), counts));
    file_.reset();
  }
  preallocated_end_ = 0;
  std::string path = StrCat(dir_, "/", LogFileName(first_lsn));
  std::unique_ptr<File> file;
  FERN_RETURN_IF_ERROR(File::Open(path, File::Mode::kCreateTruncate, &file));
  {
    MutexLock lock(&files_mu_);
    // A retry after a failed write of the header creates the file again.
    if (files_.empty() || files_.back().path != path) files_.push_back({path, first_lsn});
  }
  FERN_RETURN_IF_ERROR(file->Write(0, EncodeLogFileHeader(first_lsn)));
  FERN_RETURN_IF_ERROR(SyncFile(file.get(), counts));
  if (Status s = SyncDir(dir_); !s.ok()) {
    counts->sync_failed = true;
    return s;
  }
  ++counts->files_created;
  file_ = std::move(file);
  file_offset_ = kLogFileHeaderSize;
  return Status::OK();
}

// ---- Trimming and accessors -------------------------------------------------------------

void LogWriter::StartNewFileAtNextAppend() {
  MutexLock lock(&mu_);
  new_file_requested_ = true;
}

Status LogWriter::RemoveFilesBefore(Lsn lsn) {
  MutexLock lock(&files_mu_);
  // File i holds LSNs [files_[i].first_lsn, files_[i + 1].first_lsn), all below `lsn` when
  // the next file starts at or below it.
  size_t removable = 0;
  while (removable + 1 < files_.size() && files_[removable + 1].first_lsn <= lsn) ++removable;
  size_t removed = 0;
  Status s;
  while (removed < removable && s.ok()) {
    s = RemoveFile(files_[removed].path);
    if (s.ok()) ++removed;
  }
  files_.erase(files_.begin(), files_.begin() + static_cast<std::ptrdiff_t>(removed));
  return s;
}

Lsn LogWriter::last_lsn() const {
  MutexLock lock(&mu_);
  return next_lsn_ - 1;
}

Lsn LogWriter::durable_lsn() const {
  MutexLock lock(&mu_);
  return durable_lsn_;
}

Status LogWriter::status() const {
  MutexLock lock(&mu_);
  return failed_;
}

LogWriterStats LogWriter::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

std::vector<LogFileInfo> LogWriter::files() const {
  MutexLock lock(&files_mu_);
  return files_;
}

}  // namespace fern
