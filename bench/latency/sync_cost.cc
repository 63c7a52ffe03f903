// sync_cost: what one durable log commit costs on this file system, by how the log file was
// prepared.
//
// Each round appends --records records of --record_bytes bytes to a fresh file through
// fern::File (the log writer's own I/O path), calling fdatasync after each, once per mode:
//   append    the file grows with every record: fdatasync also writes the inode (its size);
//   fallocate the file is preallocated (posix_fallocate, as LogWriter does in 4 MiB chunks):
//             the size is fixed, but the first write into each block converts an unwritten
//             extent, a metadata write;
//   zeroed    the file's blocks were written (zeros) and synced beforehand, as a recycled or
//             zero-filled log file would be: fdatasync writes data only.
// The modes take turns within a round, so a shared, noisy disk affects them alike; the
// median and minimum microseconds per fdatasync over the rounds are printed per mode.
//   sync_cost [--rounds 8] [--records 1000] [--record_bytes 142] [--dir DIR]
// The file lives in DIR/sync_cost-PID (DIR defaults to /tmp), removed at the end; nothing
// else in DIR is touched.
// 142 bytes is an autocommitted WORKLOADS.md put (16-byte key, 100-byte value, 26 bytes of
// log framing).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "util/file.h"

namespace {

enum class Mode { kAppend, kFallocate, kZeroed };
constexpr Mode kModes[] = {Mode::kAppend, Mode::kFallocate, Mode::kZeroed};

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kAppend:
      return "append";
    case Mode::kFallocate:
      return "fallocate";
    case Mode::kZeroed:
      return "zeroed";
  }
  return "?";
}

void Check(const fern::Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

// Microseconds per fdatasync for `records` appends of `record_bytes` to a file prepared per
// `mode`.
double MeasureRound(const std::string& path, Mode mode, int records, size_t record_bytes) {
  std::filesystem::remove(path);
  std::unique_ptr<fern::File> file;
  Check(fern::File::Open(path, fern::File::Mode::kCreateTruncate, &file), "open");
  const uint64_t length = (static_cast<uint64_t>(records) * record_bytes + 4095) / 4096 * 4096;
  if (mode == Mode::kFallocate) Check(file->Preallocate(0, length), "fallocate");
  if (mode == Mode::kZeroed) {
    const std::string zeros(size_t{1} << 20, '\0');
    for (uint64_t offset = 0; offset < length; offset += zeros.size()) {
      Check(file->Write(offset, std::string_view(zeros).substr(
                                    0, std::min<uint64_t>(zeros.size(), length - offset))),
            "zero-fill");
    }
  }
  Check(file->Sync(), "sync");
  const std::string record(record_bytes, 'r');
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < records; ++i) {
    Check(file->Write(static_cast<uint64_t>(i) * record_bytes, record), "write");
    Check(file->Sync(), "fdatasync");
  }
  const auto end = std::chrono::steady_clock::now();
  file.reset();
  std::filesystem::remove(path);
  return std::chrono::duration<double, std::micro>(end - start).count() / records;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 8;
  int records = 1000;
  size_t record_bytes = 142;
  // The file goes into a directory of its own inside --dir, and only that is removed.
  std::string parent = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--rounds") {
      rounds = std::max(1, std::atoi(value));
    } else if (flag == "--records") {
      records = std::max(1, std::atoi(value));
    } else if (flag == "--record_bytes") {
      record_bytes = std::max<size_t>(1, std::strtoull(value, nullptr, 10));
    } else if (flag == "--dir") {
      parent = value;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  const std::string dir = parent + "/sync_cost-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/sync_cost.dat";
  std::vector<std::vector<double>> micros(std::size(kModes));
  for (int round = 0; round < rounds; ++round) {
    for (size_t m = 0; m < std::size(kModes); ++m) {
      micros[m].push_back(MeasureRound(path, kModes[m], records, record_bytes));
    }
  }
  std::filesystem::remove_all(dir);
  std::printf("mode,record_bytes,rounds,median_us_per_sync,min_us_per_sync\n");
  for (size_t m = 0; m < std::size(kModes); ++m) {
    std::vector<double>& v = micros[m];
    std::sort(v.begin(), v.end());
    std::printf("%s,%zu,%d,%.1f,%.1f\n", ModeName(kModes[m]), record_bytes, rounds, v[v.size() / 2],
                v.front());
  }
  return 0;
}
