// LogWriter (log/log_writer.h): appending autocommitted puts of WORKLOADS.md rows, without
// and with a durable commit (group commit across threads). Runs in a scratch directory on
// whatever file system $TMPDIR is; the Sync figures are mostly that device's fdatasync.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "log/log_format.h"
#include "log/log_writer.h"
#include "micro/micro_util.h"

namespace fern::micro {
namespace {

constexpr size_t kRows = 1024;  // a power of two
constexpr TableId kTable = 1;

std::vector<Row> LogRows() {
  std::vector<Row> rows;
  for (uint64_t i = 0; i < kRows; ++i) rows.push_back(MakeRow(i * 1954 + 7));
  return rows;
}

// Built by thread 0 before the timed loop, torn down by it after (see the barriers in
// benchmark::State); other threads touch it only inside the loop.
struct SharedLog {
  ScratchDir dir;
  std::unique_ptr<LogWriter> writer;
  std::vector<Row> rows = LogRows();
};
SharedLog* shared_log = nullptr;

bool OpenSharedLog(benchmark::State& state) {
  shared_log = new SharedLog;
  if (shared_log->dir.path().empty()) {
    state.SkipWithError("could not create a scratch directory");
    return false;
  }
  return CheckOk(state,
                 LogWriter::Open(shared_log->dir.path(), LogWriterOptions(), &shared_log->writer),
                 "LogWriter::Open");
}

void CloseSharedLog(benchmark::State& state) {
  if (shared_log->writer != nullptr) {
    LogWriterStats stats = shared_log->writer->stats();
    state.counters["bytes_per_record"] =
        stats.records == 0 ? 0.0 : static_cast<double>(stats.bytes) / stats.records;
    if (stats.syncs > 0) {
      state.counters["records_per_sync"] = static_cast<double>(stats.records) / stats.syncs;
    }
  }
  delete shared_log;  // the writer flushes what is buffered, then the directory goes
  shared_log = nullptr;
}

// Arg: sync (0: Append only: the buffer is written out, without fsync, whenever it outgrows
// LogWriterOptions::buffer_bytes; 1: Append then Sync of that record, a durable commit).
// items/s is records (commits) per second over all threads.
void BM_LogWriterAppend(benchmark::State& state) {
  const bool sync = state.range(0) != 0;
  bool ok = true;
  if (state.thread_index() == 0) ok = OpenSharedLog(state);
  size_t next = static_cast<size_t>(state.thread_index()) * 97;
  TxnId txn = 1000 + static_cast<TxnId>(state.thread_index()) * 1'000'000;
  for (auto _ : state) {
    if (shared_log->writer == nullptr) {
      if (ok) state.SkipWithError("the log did not open");
      break;
    }
    const Row& row = shared_log->rows[next++ & (kRows - 1)];
    Lsn lsn;
    Status s = shared_log->writer->Append(
        LogRecord::AutocommitInsert(kTable, ++txn, row.key, row.value), &lsn);
    if (s.ok() && sync) s = shared_log->writer->Sync(lsn);
    if (!CheckOk(state, s, sync ? "Append+Sync" : "Append")) break;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  if (state.thread_index() == 0) CloseSharedLog(state);
}

// fsync-bound runs are kept short: figures per thread count settle within a few thousand
// commits, and the whole binary must stay within a couple of minutes.
BENCHMARK(BM_LogWriterAppend)->ArgName("sync")->Arg(0)->MinTime(0.2)->UseRealTime();
BENCHMARK(BM_LogWriterAppend)
    ->ArgName("sync")
    ->Arg(1)
    ->Threads(1)
    ->Threads(4)
    ->MinTime(0.5)
    ->UseRealTime();

}  // namespace
}  // namespace fern::micro
