// fernbench: runs the WORKLOADS.md workloads on Fern and on peer engines in the same run, each
// workload in a process of its own, prints one CSV line per (engine, workload) and then a
// table of ratios to a baseline engine. Exits non-zero when any correctness check or
// operation failed.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include "fernbench/child_process.h"
#include "fernbench/engine.h"
#include "fernbench/flags.h"
#include "fernbench/report.h"
#include "fernbench/workloads.h"
#include "util/strings.h"

namespace fern::bench {
namespace {

namespace fs = std::filesystem;

std::vector<const WorkloadSpec*> SelectedWorkloads(const Flags& flags) {
  std::vector<const WorkloadSpec*> selected;
  for (const WorkloadSpec& spec : AllWorkloads()) {
    for (const std::string& name : flags.workloads) {
      if (name == spec.name) {
        selected.push_back(&spec);
        break;
      }
    }
  }
  return selected;
}

void PrintHeader(const Flags& flags) {
  std::printf("# fernbench: n=%llu cache_mb=%llu compression=%s threads=%d dir=%s\n",
              static_cast<unsigned long long>(flags.n),
              static_cast<unsigned long long>(flags.cache_mb), flags.compression.c_str(),
              flags.threads, flags.dir.c_str());
  std::string engines;
  for (const std::string& name : flags.engines) {
    engines += StrCat(engines.empty() ? "" : ", ", name, " ", FindEngine(name)->version);
  }
  std::printf("# engines: %s\n", engines.c_str());
  for (const std::string& skipped : flags.skipped) std::printf("# skipped %s\n", skipped.c_str());
  std::printf(
      "# Every operation is its own transaction. Commits skip fsync in every workload but\n"
      "# fillsync: fern sync_commits=false, rocksdb WAL on with sync=false, lmdb MDB_NOSYNC\n"
      "# (LMDB's durable default fsyncs each commit; it is relaxed so every engine skips the\n"
      "# fsync equally). fillsync fsyncs every commit on every engine.\n"
      "# Each workload runs in its own process; seconds covers open + operations + close;\n"
      "# write_bytes and wchar are /proc/self/io deltas over the same span.\n");
}

// The directories of one run: <dir>/<engine>/<database>.
class RunDirectories {
 public:
  explicit RunDirectories(const Flags& flags) : flags_(flags) {}

  Status Create() {
    std::error_code error;
    created_base_ = !fs::exists(flags_.dir, error);
    fs::create_directories(flags_.dir, error);
    if (error) return Status::IOError(StrCat("creating ", flags_.dir, ": ", error.message()));
    for (const std::string& engine : flags_.engines) {
      fs::path path = fs::path(flags_.dir) / engine;
      if (flags_.reuse) {
        fs::path main = fs::path(DatabaseDir(engine, Database::kMain));
        if (!fs::is_directory(main, error)) {
          return Status::InvalidArgument(
              StrCat("--reuse: ", main.string(), " is not a database directory"));
        }
        continue;
      }
      if (fs::exists(path, error)) {
        return Status::InvalidArgument(
            StrCat(path.string(), " already exists; fernbench only writes fresh databases"));
      }
    }
    return Status::OK();
  }

  std::string DatabaseDir(const std::string& engine, Database database) const {
    return (fs::path(flags_.dir) / engine / DatabaseName(database)).string();
  }

  // Writes back, outside any timed span, what earlier runs left unsynced on the file system
  // holding --dir (LMDB's MDB_NOSYNC pages, RocksDB's WAL), so that each run starts on an
  // idle device. Otherwise the kernel's writeback lands in the next run's own fsyncs: after
  // the peers' overwrite at 1 GiB, Fern's readrandom spent 0.073 s opening and 0.208 s
  // closing, against 0.004 s and 0.058 s with this.
  void SettleDevice() const {
    const int fd = open(flags_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;  // the run itself reports a directory it cannot use
    syncfs(fd);
    close(fd);
  }

  void Remove(const std::string& engine, Database database) const {
    std::error_code error;
    fs::remove_all(DatabaseDir(engine, database), error);
  }

  // Removes everything the run created, unless --keep.
  void Cleanup() const {
    if (flags_.keep) return;
    std::error_code error;
    for (const std::string& engine : flags_.engines) {
      fs::remove_all(fs::path(flags_.dir) / engine, error);
    }
    if (created_base_) fs::remove(flags_.dir, error);  // only if nothing else is in it
  }

 private:
  const Flags& flags_;
  bool created_base_ = false;
};

int Run(const Flags& flags) {
  RunDirectories directories(flags);
  if (Status status = directories.Create(); !status.ok()) {
    std::fprintf(stderr, "fernbench: %s\n", status.ToString().c_str());
    return 2;
  }
  PrintHeader(flags);
  std::printf("%s\n", WorkloadResult::CsvHeader());
  std::fflush(stdout);

  const std::vector<const WorkloadSpec*> selected = SelectedWorkloads(flags);
  std::vector<WorkloadResult> results;
  std::vector<std::string> failures;
  // Per engine, for readrandom's check: a reused database holds overwrite's values.
  std::map<std::string, uint64_t> stored_value_offset;
  if (flags.reuse) {
    for (const std::string& engine : flags.engines) stored_value_offset[engine] = flags.n;
  }
  // Workload-major order: the engines take turns on each workload, so that a slow patch of
  // the machine falls on all of them rather than on one.
  for (size_t w = 0; w < selected.size(); ++w) {
    const WorkloadSpec& spec = *selected[w];
    for (const std::string& engine : flags.engines) {
      ChildTask task;
      task.engine = FindEngine(engine);
      task.workload = &spec;
      task.db_dir = directories.DatabaseDir(engine, spec.database);
      task.config.cache_bytes = static_cast<size_t>(flags.cache_mb) << 20;
      task.config.compression = flags.compression;
      task.config.n = flags.n;
      task.config.threads = flags.threads;
      task.config.sync_commits = spec.sync;
      task.config.fern_basement_bytes = static_cast<uint32_t>(flags.fern_basement_kb << 10);
      task.config.fern_node_bytes = static_cast<uint32_t>(flags.fern_node_kb << 10);
      task.config.fern_buffer_percent = static_cast<int32_t>(flags.fern_buffer_percent);
      task.params.n = flags.n;
      task.params.threads = flags.threads;
      task.params.stored_value_offset = stored_value_offset[engine];
      if (spec.database != Database::kMain) directories.Remove(engine, spec.database);
      directories.SettleDevice();

      WorkloadResult result = RunInChildProcess(task);
      if (result.measured) std::printf("%s\n", result.ToCsv().c_str());
      std::fflush(stdout);
      for (const std::string& failure : result.failures) {
        std::string line = StrCat(engine, " ", spec.name, ": ", failure);
        std::fprintf(stderr, "!!! FAILED: %s\n", line.c_str());
        failures.push_back(line);
      }
      if (spec.workload == Workload::kFillRandom) stored_value_offset[engine] = 0;
      if (spec.workload == Workload::kOverwrite) stored_value_offset[engine] = flags.n;
      results.push_back(std::move(result));
    }
    // A database no later workload uses is removed now, to bound the disk a run needs.
    bool used_later = false;
    for (size_t later = w + 1; later < selected.size(); ++later) {
      used_later = used_later || selected[later]->database == spec.database;
    }
    if (!used_later && !flags.keep) {
      for (const std::string& engine : flags.engines) directories.Remove(engine, spec.database);
    }
  }

  std::vector<std::string> workload_names;
  for (const WorkloadSpec* spec : selected) workload_names.push_back(spec->name);
  std::printf("\n%s", RatioTable(results, flags.engines, workload_names, flags.baseline).c_str());
  if (failures.empty()) {
    std::printf(
        "\nAll checks passed: no readrandom misses or wrong values, readseq counted n rows in\n"
        "key order, every seek landed on its key, every delete found its row, no engine "
        "errors.\n");
  } else {
    std::printf("\n!!! %zu CHECK%s FAILED !!!\n", failures.size(), failures.size() == 1 ? "" : "S");
    for (const std::string& failure : failures) std::printf("!!! %s\n", failure.c_str());
  }
  directories.Cleanup();
  if (flags.keep) std::printf("Databases kept in %s\n", flags.dir.c_str());
  return failures.empty() ? 0 : 1;
}

}  // namespace
}  // namespace fern::bench

int main(int argc, char** argv) {
  fern::bench::Flags flags;
  fern::Status status = fern::bench::ParseFlags(argc, argv, &flags);
  if (!status.ok()) {
    std::fprintf(stderr, "fernbench: %s\n", status.ToString().c_str());
    return 2;
  }
  if (flags.help) {
    std::printf("%s", fern::bench::Usage().c_str());
    return 0;
  }
  return fern::bench::Run(flags);
}
