// Appends records to the write-ahead log of one directory, with group commit.
//
// Append copies a framed record into an in-memory buffer under a mutex and returns its LSN;
// nothing touches the disk on that path unless the buffer has outgrown
// LogWriterOptions::buffer_bytes, in which case the appender writes the buffer out itself
// (back-pressure that bounds memory), or with write_behind hands it to the writer's thread
// (below). Sync(lsn) makes everything up to lsn durable with
// group commit: a caller that finds no I/O in progress becomes the leader, takes the whole
// buffer (its own records and everyone else's), writes it and calls fdatasync once; callers
// that arrive meanwhile append to the fresh buffer and wait for the round to end, and one
// of them leads the next round for all of them. They wait on an atomic round counter, not
// on mu_: the end of a round wakes them all with one futex call, and those it made durable
// return without taking mu_ again. This cuts context switches, which cost much on a
// virtual machine: fillsync with 4 threads went from 13.0-14.4k to 14.2-14.9k commits/s,
// alternating runs.
//
// Left at that, committers split into two groups that alternate (one syncing while the other
// gathers), so each fdatasync carries about half of them. A committer that would lead with
// fewer waiting than were last seen at once therefore gathers instead: it waits, for at most
// two average write + fdatasync rounds, for those the previous round released, which come back
// within microseconds. The committer whose arrival completes the group leads the round
// itself, since it is running already: waking the gatherer to lead cost a context switch
// before every write (4 threads: 16.3-17.0k vs 14.9-15.5k commits/s, alternating runs on a
// host whose fdatasync took ~150 us; 2 threads +4%, 8 threads unchanged).
// Committers that round released but that have not left Sync yet do not count as waiting
// (counting them made the leader stop gathering early: 3.0 commits per fdatasync with 4
// threads instead of 4.0). The expected number is lowered after three gathers in a row time
// out (a committer went away). Measured on the development VM (ext4, ~130-200 us
// fdatasync), fernbench fillsync: 1 thread 7,500 commits/s (it never waits); 2 threads
// 12,100 (was 11,400); 4 threads 18,700-18,900 (was 15,900-17,200); 8 threads 27,100 (was
// 23,500).
//
// What bounds a gathered round is waking the committers it released. On a VM whose idle
// vCPUs halt at once (cpuidle haltpoll with guest_halt_poll_ns = 0), 4 threads gathered
// 3.98-4.00 commits per fdatasync, and each round spent 130-170 us in write + fdatasync and
// another 67-113 us until the next round began: a released committer returned from its
// futex wait ~45 us after the round ended (probes in RunIo and the waits). Waiters that
// spin (sched_yield) instead shortened the wake to 20-26 us and the gap to 44-56 us, but
// fdatasync itself took 150-169 us instead of 133-146 (the spinning vCPUs compete with the
// hypervisor's I/O work), so commits/s did not move; spinning only over the last 30% of the
// expected round was within noise (6 alternating runs: median 20.9k vs 20.6k commits/s)
// and burns a core. A single committer, whose next write follows its sync at once, meets
// only the device: 1-thread fillsync runs at its write + flush rate (~90-130 us here).
//
// Records are buffered as plain frames; the I/O token's holder packs each write-out
// (log_group.h, outside mu_): runs of small records become zstd-coded groups, the rest single
// frames, snappy-compressed where that pays. Compressing a whole write-out at once is what
// lets the log share the bytes records repeat (fillrandom: ~62 bytes per put instead of
// ~90), and it costs the appenders nothing under mu_.
//
// Files are rotated when the current one has reached LogWriterOptions::max_file_bytes: the
// next record starts a new file named after its LSN. The old file is fsynced first and the
// new file's header is fsynced, with the directory, before any record goes into it, so only
// the newest file can ever end torn.
//
// Errors are never swallowed. A failed write (a full disk: ENOSPC, or a file that could not
// be created) keeps the frames it did not write, ahead of any appended meanwhile, and puts
// the writer in a failed state: Append, Sync and Flush return that Status, and each such
// call after a back-off (10 ms doubling to 1 s) retries the write-out at the same file
// offset, with an fdatasync; once one succeeds the writer works again and no record was
// lost or reordered. A failed fdatasync is for good: what the page cache held is unknown
// after it (Linux may drop the dirty pages), so the writer refuses everything until the
// directory is reopened, and records buffered then are lost. Either way, an LSN for which
// Sync did not return OK has an unknown fate (it may yet be written by a retry); no record
// becomes durable after a hole.
//
// All I/O goes through File::Write and File::Sync (and SyncDir on rotation), so the
// fault-injection seam sees every write and sync.
//
// With LogWriterOptions::write_behind, a thread of the writer's own does the write-outs that
// full buffers call for (the same RunIo, so rounds, failures and retries are as above; a
// failed write-out it made is reported to the next Append, Sync or Flush).
//
// Threads: Append, Sync, Flush, RemoveFilesBefore and the accessors may be called from any
// number of threads at once. Open and the destructor must not race with other calls.
#ifndef FERN_LOG_LOG_WRITER_H_
#define FERN_LOG_LOG_WRITER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fern/status.h"
#include "log/log_format.h"
#include "log/log_group.h"
#include "log/log_reader.h"
#include "util/mutex.h"

namespace fern {

class File;

struct LogWriterOptions {
  // A new file is started once this many bytes of plain frames have gone into the current
  // one (a file exceeds it by at most one record; packed, it holds less). PerconaFT rotates
  // at ~100 MiB as well.
  uint64_t max_file_bytes = uint64_t{100} << 20;
  // An Append that leaves more than this buffered writes the buffer out itself (with
  // write_behind: has it written out, and waits only at twice this). The writer keeps two
  // buffers of this capacity (one filling, one being written; after records of
  // about this size, up to four times it, and its packed copy), so this is memory the
  // process holds: 4 MiB cost fernbench's fillrandom (64 MiB cache) about 5 MiB more
  // peak RSS than 1 MiB, for no measurable gain in ops/s (270 writes of 1 MiB vs 70 of 4 MiB).
  size_t buffer_bytes = size_t{1} << 20;
  // Write-behind: an Append that leaves more than buffer_bytes buffered hands the write-out
  // to the writer's own thread and returns, so that packing (zstd) and the write call run
  // beside the appenders instead of in them: an appender writes out itself only when it
  // finds twice buffer_bytes buffered (a write-out is still running), which bounds memory as
  // before at one buffer more. Unsynced fillrandom (one thread, 64 MiB cache) spent 28% of
  // its thread in write-outs. Off: appenders write out themselves at buffer_bytes.
  bool write_behind = false;
};

struct LogWriterStats {
  uint64_t records = 0;        // appended (sync marks not included)
  uint64_t sync_marks = 0;     // one at the end of every write-out (log_format.h), not in bytes
  uint64_t bytes = 0;          // appended, framing included (as plain, single frames)
  uint64_t bytes_written = 0;  // of records written to files, as stored (grouped, compressed)
  uint64_t sync_requests = 0;  // Sync calls whose LSN was not yet durable on entry
  uint64_t writes = 0;         // File::Write calls for records
  uint64_t syncs = 0;          // fdatasync calls on log files: group commits, 2 per rotation
  uint64_t files_created = 0;
  uint64_t write_retries = 0;  // retries of a failed write-out (successful or not)
};

class LogWriter {
 public:
  // Opens the log in the existing directory `dir` for appending. With no log files there, it
  // creates the first one (first LSN 1). Otherwise it finds the end of the valid log with
  // LogReader::FindEnd, truncates a torn tail (or rewrites a torn header) of the last file,
  // fsyncs it, and continues with the LSN after the last valid record. Only the last file is
  // examined: damage in earlier files is for the recovery scan (LogReader) to report.
  static Status Open(const std::string& dir, const LogWriterOptions& options,
                     std::unique_ptr<LogWriter>* writer);

  // Writes out (without fsync) whatever is still buffered, unless the writer has failed.
  // Callers that need durability call Sync(last_lsn()) first.
  ~LogWriter();

  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Appends a record with the given payload (laid out per type, see log_format.h) and sets
  // `*lsn` to its LSN. InvalidArgument when the payload exceeds kMaxLogPayloadSize or the
  // type is kInvalid.
  Status Append(LogRecordType type, std::string_view payload, Lsn* lsn);
  // Encodes `record` straight into the buffer (no intermediate copy); record.lsn is ignored.
  Status Append(const LogRecord& record, Lsn* lsn);

  // Returns once every record up to `lsn` is written and fdatasync'ed (group commit).
  // InvalidArgument when `lsn` was never handed out by Append.
  Status Sync(Lsn lsn);
  // Writes every buffered record to the file, without fsync.
  Status Flush();
  // Flush, if the oldest record still only in the buffer was appended at or before
  // `cutoff`; otherwise returns OK at once. What bounds how long an unsynced commit stays
  // in the process's memory, where a crash of the process alone would lose it.
  Status FlushIfBufferedBefore(absl::Time cutoff);

  // Makes the next record start a new file (unless the current one holds no record yet),
  // so that RemoveFilesBefore can then drop every earlier record: a closing Env's last
  // checkpoint leaves only a file with its end record behind.
  void StartNewFileAtNextAppend();

  // Deletes whole files all of whose records have LSNs below `lsn` (after a checkpoint whose
  // begin LSN is `lsn`). The current file is never deleted. A failed delete is returned and
  // leaves the remaining files listed; it does not put the writer in the failed state.
  Status RemoveFilesBefore(Lsn lsn);

  // OK if appends are accepted. In the failed state, retries the failed write-out first
  // if its back-off has passed, and returns OK if that succeeded. Cheap when not failed.
  Status CheckWritable();

  Lsn last_lsn() const;     // the LSN of the last appended record (0: none yet)
  Lsn durable_lsn() const;  // every record up to this one is fsynced
  Status status() const;    // OK, or the error that put the writer in the failed state
  LogWriterStats stats() const;
  std::vector<LogFileInfo> files() const;  // the log files in LSN order, current one last

 private:
  // A new file begins at this offset of the buffer, with this first LSN.
  struct Rotation {
    size_t offset;
    Lsn first_lsn;
  };
  struct IoCounts {
    uint64_t writes = 0;
    uint64_t syncs = 0;
    uint64_t files_created = 0;
    uint64_t bytes_written = 0;
    // How far a failed write-out got: frames of io_buffer_ written, rotations done; and
    // whether it was an fdatasync that failed.
    size_t frames_done = 0;
    size_t records_end = 0;  // where the write-out's sync mark begins (the buffer's size if none)
    size_t rotations_done = 0;
    bool sync_failed = false;
  };

  LogWriter(std::string dir, const LogWriterOptions& options);

  Status OpenAfter(const LogEnd& end);
  // Starts a record of `type` in buffer_ (deciding rotation first) and returns where it
  // starts.
  Status BeginAppend(LogRecordType type, size_t* start, bool* rotated)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frames the payload appended after `start`, hands out its LSN and applies back-pressure;
  // rolls the record back when the payload is too large.
  Status FinishAppend(size_t start, bool rotated, Lsn* lsn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The body of Sync: waits for a leader, or leads (gathering stragglers first). Returns
  // with mu_ released.
  Status WaitDurable(Lsn lsn) ABSL_UNLOCK_FUNCTION(mu_);
  // Drops one entry for `lsn` from waiting_lsns_, if there is one (a syncer leaving
  // without its LSN durable).
  void ForgetSyncer(Lsn lsn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration GatherTimeout() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The write-behind thread: writes out the buffer whenever WriteBehindDue, until stopping.
  void WriteBehindLoop();
  bool WriteBehindDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the buffer with a sync mark saying durable_lsn_ (log_format.h), so that a reader
  // can tell a torn tail from damage to synced records. Takes no LSN.
  void AppendSyncMark() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sleeps until io_rounds_ is no longer `round`. Called without mu_.
  void WaitForRoundEnd(uint32_t round);
  // Moves io_rounds_ on and wakes every thread sleeping on it.
  void EndRound();
  // Threads in Sync whose LSN is not durable yet (not those a sync released that have not
  // left Sync).
  int UndurableSyncers() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the I/O token, writes out the buffer (and fsyncs when `sync`), releases the token.
  // REQUIRES: the token is free. Releases mu_ during the I/O. A write that fails gives the
  // unwritten frames back to buffer_ (see the header comment).
  Status RunIo(bool sync) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // failed_, unless it is a failed write whose back-off has passed and whose retry (a synced
  // write-out by this caller) succeeds: then OK. OK when not failed.
  Status RetryIfDue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records a failed write-out (called by RunIo).
  void NoteFailure(const Status& s, const IoCounts& counts) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The I/O itself; runs without mu_, by the holder of the I/O token only.
  Status WriteOut(bool sync, IoCounts* counts);
  // Packs `frames` (PackLogFrames) and writes them at the end of the current file.
  Status WriteToFile(std::string_view frames, IoCounts* counts);
  // fdatasync, noting a failure in counts->sync_failed.
  Status SyncFile(File* file, IoCounts* counts);
  // Fsyncs and closes the current file (if any), then creates `first_lsn`'s file with its
  // header, fsyncs it and the directory.
  Status StartFile(Lsn first_lsn, IoCounts* counts);

  const std::string dir_;
  const LogWriterOptions options_;

  mutable Mutex mu_;
  absl::CondVar io_done_;  // signalled whenever the I/O token is released
  std::string buffer_ ABSL_GUARDED_BY(mu_);
  // When the oldest record in buffer_ was appended (set by the append into an empty
  // buffer; the past after a failed write-out gave frames back).
  absl::Time first_buffered_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::vector<Rotation> rotations_ ABSL_GUARDED_BY(mu_);
  Lsn next_lsn_ ABSL_GUARDED_BY(mu_) = 1;
  Lsn written_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  Lsn durable_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  // Size of the current file once the buffer is written: decides rotation at append time.
  uint64_t file_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool io_busy_ ABSL_GUARDED_BY(mu_) = false;  // the I/O token is taken
  // The LSN of each thread in Sync whose LSN is not durable yet (a sync drops those it
  // made durable).
  std::vector<Lsn> waiting_lsns_ ABSL_GUARDED_BY(mu_);
  // durable_lsn_, for syncers woken by a round to read without mu_.
  std::atomic<Lsn> published_durable_lsn_{0};
  // Incremented (under mu_) at the end of every I/O round; syncers waiting for a round
  // sleep on it (a futex: one wake-up call for all), counted in round_sleepers_ so that a
  // round nobody waits for makes no call. Not std::atomic::wait: libstdc++'s spins first,
  // calling sched_yield in a loop, and with more committers than cores those calls took
  // the CPU from the committers that had work (8% of fillsync's CPU with 4 threads).
  std::atomic<uint32_t> io_rounds_{0};
  std::atomic<int> round_sleepers_{0};
  int peak_syncers_ ABSL_GUARDED_BY(mu_) = 0;  // most undurable seen at once (lowered on timeouts)
  // A committer waits for others to arrive before a round; the one completing the group
  // clears it and leads.
  bool gathering_ ABSL_GUARDED_BY(mu_) = false;
  int gather_timeouts_ ABSL_GUARDED_BY(mu_) = 0;         // gathers in a row that timed out
  int64_t average_sync_nanos_ ABSL_GUARDED_BY(mu_) = 0;  // of write + fdatasync rounds
  // StartNewFileAtNextAppend was called; the next append rotates.
  bool new_file_requested_ ABSL_GUARDED_BY(mu_) = false;
  Status failed_ ABSL_GUARDED_BY(mu_);
  bool failed_for_good_ ABSL_GUARDED_BY(mu_) = false;  // an fdatasync failed
  absl::Time retry_at_ ABSL_GUARDED_BY(mu_);           // a failed write may be retried from
  absl::Duration retry_delay_ ABSL_GUARDED_BY(mu_);    // back-off after the next failure
  std::atomic<bool> failing_{false};                   // !failed_.ok(), read without mu_
  LogWriterStats stats_ ABSL_GUARDED_BY(mu_);
  absl::CondVar write_behind_wake_;  // signalled when WriteBehindDue may have become true
  bool write_behind_stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread write_behind_thread_;  // runs with options_.write_behind, from Open to the end

  // Owned by the thread holding the I/O token (io_busy_, set under mu_); only it touches them.
  std::string io_buffer_;
  std::vector<Rotation> io_rotations_;
  std::string io_packed_;  // what WriteToFile writes
  LogFramePacker packer_;  // makes io_packed_
  std::unique_ptr<File> file_;
  uint64_t file_offset_ = 0;
  // The current file is preallocated up to here (zeros past file_offset_), so that a
  // group commit's fdatasync flushes data only, not a new file size (about twice the
  // commits per second on ext4). Older files are cut back to their records on rotation,
  // and the reader treats a zero-filled tail of the last file as its end.
  uint64_t preallocated_end_ = 0;

  // Never held together with mu_.
  mutable Mutex files_mu_;
  std::vector<LogFileInfo> files_ ABSL_GUARDED_BY(files_mu_);
};

}  // namespace fern

#endif  // FERN_LOG_LOG_WRITER_H_
