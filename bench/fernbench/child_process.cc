#include "fernbench/child_process.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "util/strings.h"

namespace fern::bench {

namespace {

// The child reports over a pipe, one record a line: "result <csv line>" or "failure <text>".
constexpr std::string_view kResultTag = "result ";
constexpr std::string_view kFailureTag = "failure ";

struct ProcessIo {
  uint64_t wchar = 0;
  uint64_t write_bytes = 0;
  uint64_t read_bytes = 0;  // read from the device, not served by the page cache
};

Status ReadProcessIo(ProcessIo* io) {
  std::ifstream file("/proc/self/io");
  if (!file) return Status::IOError("cannot read /proc/self/io");
  std::string name;
  uint64_t value = 0;
  bool have_wchar = false, have_write_bytes = false;
  while (file >> name >> value) {
    if (name == "wchar:") {
      io->wchar = value;
      have_wchar = true;
    } else if (name == "write_bytes:") {
      io->write_bytes = value;
      have_write_bytes = true;
    } else if (name == "read_bytes:") {
      io->read_bytes = value;
    }
  }
  if (!have_wchar || !have_write_bytes) {
    return Status::IOError("/proc/self/io lacks wchar or write_bytes");
  }
  return Status::OK();
}

Status DirectoryBytes(const std::string& dir, uint64_t* bytes) {
  std::error_code error;
  *bytes = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    if (it->is_regular_file(error)) *bytes += it->file_size(error);
    if (error) break;
  }
  if (error) return Status::IOError(StrCat("sizing ", dir, ": ", error.message()));
  return Status::OK();
}

// What FERNBENCH_PHASES=1 reports about the operations phase besides its wall time: a run
// slower than usual shows whether the process lacked CPU (little CPU time, host steal), read
// from the device (read_bytes, major faults) or did more work (more CPU time).
struct PhaseSample {
  double user_seconds = 0;    // this process's CPU time in user mode
  double system_seconds = 0;  // and in the kernel (page faults, reads from the page cache)
  uint64_t major_faults = 0;
  uint64_t read_bytes = 0;
  double steal_seconds = 0;  // CPU time the host gave other guests, all of this guest's CPUs
};

PhaseSample SamplePhase() {
  PhaseSample sample;
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) == 0) {
    auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
    sample.user_seconds = seconds(usage.ru_utime);
    sample.system_seconds = seconds(usage.ru_stime);
    sample.major_faults = static_cast<uint64_t>(usage.ru_majflt);
  }
  ProcessIo io;
  if (ReadProcessIo(&io).ok()) sample.read_bytes = io.read_bytes;
  // The first line of /proc/stat: "cpu user nice system idle iowait irq softirq steal ...",
  // in clock ticks.
  std::ifstream stat("/proc/stat");
  std::string label;
  uint64_t ticks[8] = {};
  if (stat >> label && label == "cpu") {
    for (uint64_t& field : ticks) stat >> field;
    const long per_second = sysconf(_SC_CLK_TCK);
    if (stat && per_second > 0) sample.steal_seconds = static_cast<double>(ticks[7]) / per_second;
  }
  return sample;
}

void WriteAll(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t written = write(fd, text.data(), text.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;
    text.remove_prefix(static_cast<size_t>(written));
  }
}

// Everything the child does; the result is complete except `failures` may describe errors.
WorkloadResult RunTask(const ChildTask& task) {
  WorkloadResult result;
  result.engine = task.engine->name;
  result.workload = task.workload->name;
  result.n = OperationCount(task.workload->workload, task.params.n);
  auto fail = [&](const Status& status) { result.failures.push_back(status.ToString()); };

  std::error_code error;
  std::filesystem::create_directories(task.db_dir, error);
  if (error) {
    fail(Status::IOError(StrCat("creating ", task.db_dir, ": ", error.message())));
    return result;
  }
  ProcessIo before, after;
  if (Status status = ReadProcessIo(&before); !status.ok()) {
    fail(status);
    return result;
  }
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Engine> engine = task.engine->factory();
  Status status = engine->Open(task.db_dir, task.config);
  if (!status.ok()) {
    fail(status.WithContext("open"));
    return result;
  }
  result.config = engine->Describe();
  const auto opened = std::chrono::steady_clock::now();
  const PhaseSample ops_start = SamplePhase();
  status = RunWorkload(*task.workload, task.params, engine.get(), &result.failures);
  if (!status.ok()) fail(status);
  const PhaseSample ops_end = SamplePhase();
  const auto ran = std::chrono::steady_clock::now();
  if (Status closed = engine->Close(); !closed.ok()) fail(closed.WithContext("close"));
  engine.reset();
  const auto finish = std::chrono::steady_clock::now();
  // FERNBENCH_PHASES=1 splits `seconds` into its open, operations and close, on stderr (not
  // part of the CSV): a slow close (a final checkpoint, freeing the cache) shows there.
  if (const char* want = std::getenv("FERNBENCH_PHASES"); want != nullptr && *want == '1') {
    auto secs = [](auto from, auto to) { return std::chrono::duration<double>(to - from).count(); };
    std::fprintf(
        stderr,
        "# %s %s: open %.3f s, operations %.3f s (cpu user %.3f s, system %.3f s, host steal "
        "%.3f s, "
        "read %.1f MB, major faults %" PRIu64 "), close %.3f s\n",
        task.engine->name.c_str(), task.workload->name, secs(start, opened), secs(opened, ran),
        ops_end.user_seconds - ops_start.user_seconds,
        ops_end.system_seconds - ops_start.system_seconds,
        ops_end.steal_seconds - ops_start.steal_seconds,
        (ops_end.read_bytes - ops_start.read_bytes) / 1e6,
        ops_end.major_faults - ops_start.major_faults, secs(ran, finish));
  }
  if (Status io = ReadProcessIo(&after); !io.ok()) {
    fail(io);
    return result;
  }
  result.seconds = std::chrono::duration<double>(finish - start).count();
  result.ops_per_sec = result.seconds > 0 ? result.n / result.seconds : 0;
  result.wchar = after.wchar - before.wchar;
  result.write_bytes = after.write_bytes - before.write_bytes;
  if (Status sized = DirectoryBytes(task.db_dir, &result.db_bytes); !sized.ok()) fail(sized);
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) == 0) result.max_rss_kb = usage.ru_maxrss;
  result.measured = true;
  return result;
}

// The parent's view of the child's report line `csv`.
bool ParseCsv(std::string_view csv, WorkloadResult* result) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    size_t comma = csv.find(',', start);
    fields.emplace_back(csv.substr(start, comma == std::string_view::npos ? comma : comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (fields.size() != 10) return false;
  result->engine = fields[0];
  result->config = fields[1];
  result->workload = fields[2];
  char* end = nullptr;
  result->n = std::strtoull(fields[3].c_str(), &end, 10);
  result->seconds = std::strtod(fields[4].c_str(), &end);
  result->ops_per_sec = std::strtod(fields[5].c_str(), &end);
  result->write_bytes = std::strtoull(fields[6].c_str(), &end, 10);
  result->wchar = std::strtoull(fields[7].c_str(), &end, 10);
  result->db_bytes = std::strtoull(fields[8].c_str(), &end, 10);
  result->max_rss_kb = std::strtoull(fields[9].c_str(), &end, 10);
  result->measured = true;
  return true;
}

}  // namespace

const char* WorkloadResult::CsvHeader() {
  return "engine,config,workload,n,seconds,ops_per_sec,write_bytes,wchar,db_bytes,max_rss_kb";
}

std::string WorkloadResult::ToCsv() const {
  char numbers[256];
  std::snprintf(numbers, sizeof(numbers),
                "%" PRIu64 ",%.3f,%.0f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64, n, seconds,
                ops_per_sec, write_bytes, wchar, db_bytes, max_rss_kb);
  return StrCat(engine, ",", config, ",", workload, ",", numbers);
}

WorkloadResult RunInChildProcess(const ChildTask& task) {
  WorkloadResult result;
  result.engine = task.engine->name;
  result.workload = task.workload->name;
  result.n = OperationCount(task.workload->workload, task.params.n);

  int fds[2];
  if (pipe(fds) != 0) {
    result.failures.push_back(StrCat("pipe: ", std::strerror(errno)));
    return result;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    result.failures.push_back(StrCat("fork: ", std::strerror(errno)));
    close(fds[0]);
    close(fds[1]);
    return result;
  }
  if (pid == 0) {
    close(fds[0]);
    WorkloadResult child = RunTask(task);
    std::string report;
    if (child.measured) report = StrCat(kResultTag, child.ToCsv(), "\n");
    for (const std::string& failure : child.failures) {
      std::string line = failure;
      for (char& c : line) {
        if (c == '\n') c = ' ';
      }
      report += StrCat(kFailureTag, line, "\n");
    }
    WriteAll(fds[1], report);
    close(fds[1]);
    // Skips the parent's atexit handlers and static destructors, which are not ours to run.
    _exit(0);
  }

  close(fds[1]);
  std::string report;
  char buffer[4096];
  while (true) {
    ssize_t got = read(fds[0], buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    report.append(buffer, static_cast<size_t>(got));
  }
  close(fds[0]);
  int wait_status = 0;
  while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }

  size_t start = 0;
  while (start < report.size()) {
    size_t newline = report.find('\n', start);
    if (newline == std::string::npos) newline = report.size();
    std::string_view line(report.data() + start, newline - start);
    start = newline + 1;
    if (line.starts_with(kResultTag)) {
      if (!ParseCsv(line.substr(kResultTag.size()), &result)) {
        result.failures.push_back(StrCat("unreadable report from the child: ", line));
      }
    } else if (line.starts_with(kFailureTag)) {
      result.failures.push_back(std::string(line.substr(kFailureTag.size())));
    }
  }
  if (WIFSIGNALED(wait_status)) {
    result.failures.push_back(StrCat("the child process died of signal ", WTERMSIG(wait_status),
                                     " (", strsignal(WTERMSIG(wait_status)), ")"));
  } else if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) != 0) {
    result.failures.push_back(
        StrCat("the child process exited with status ", WEXITSTATUS(wait_status)));
  }
  if (!result.measured && result.failures.empty()) {
    result.failures.push_back("the child process reported nothing");
  }
  return result;
}

}  // namespace fern::bench
