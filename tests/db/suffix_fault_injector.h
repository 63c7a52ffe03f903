// A FaultInjector for tests that damages I/O on the files whose path ends with a given
// suffix (".log", ".ft", "CATALOG.tmp"), plus helpers to take a crash image of an open Env.
//
// The injector counts the calls of its kind (writes or syncs) on matching paths; once armed,
// the n-th such call gets the fault, once. It installs itself for the whole process while
// alive (or until Uninstall), so it must be declared before the Env it watches: background
// threads may call into it until the Env is destroyed.
#ifndef FERN_TESTS_DB_SUFFIX_FAULT_INJECTOR_H_
#define FERN_TESTS_DB_SUFFIX_FAULT_INJECTOR_H_

#include <filesystem>
#include <string>
#include <system_error>

#include "gtest/gtest.h"
#include "util/fault_injection.h"
#include "util/mutex.h"
#include "util/strings.h"

namespace fern::testing {

class SuffixFaultInjector final : public FaultInjector {
 public:
  enum class Fault {
    kFailWrite,  // the write fails before touching the file (as ENOSPC would)
    kTornWrite,  // only the first half of the bytes reach the file, then the write fails
    kFailSync,   // fdatasync fails (as EIO would)
  };

  SuffixFaultInjector(std::string suffix, Fault fault) : suffix_(std::move(suffix)), fault_(fault) {
    SetFaultInjector(this);
  }
  ~SuffixFaultInjector() override { Uninstall(); }

  void Uninstall() {
    if (CurrentFaultInjector() == this) SetFaultInjector(nullptr);
  }

  // The `nth` matching call of the fault's kind from now on gets the fault.
  void Arm(int nth = 1) {
    MutexLock lock(&mu_);
    armed_at_ = calls_ + nth;
  }
  void Disarm() {
    MutexLock lock(&mu_);
    armed_at_ = 0;
  }

  // Matching calls of the fault's kind so far (whether faulted or not).
  int calls() const {
    MutexLock lock(&mu_);
    return calls_;
  }
  int faults() const {
    MutexLock lock(&mu_);
    return faults_;
  }
  // The path, offset and sizes of the last faulted call (offset and sizes: writes only).
  std::string faulted_path() const {
    MutexLock lock(&mu_);
    return faulted_path_;
  }
  uint64_t faulted_offset() const {
    MutexLock lock(&mu_);
    return faulted_offset_;
  }
  size_t faulted_size() const {
    MutexLock lock(&mu_);
    return faulted_size_;
  }
  size_t written_size() const {  // bytes a torn write let through
    MutexLock lock(&mu_);
    return written_size_;
  }

  Status BeforeWrite(const std::string& path, uint64_t offset, size_t* size) override {
    if (fault_ == Fault::kFailSync || !Matches(path)) return Status::OK();
    MutexLock lock(&mu_);
    if (++calls_ != armed_at_) return Status::OK();
    armed_at_ = 0;
    ++faults_;
    faulted_path_ = path;
    faulted_offset_ = offset;
    faulted_size_ = *size;
    if (fault_ == Fault::kTornWrite) {
      *size /= 2;
      written_size_ = *size;
      return Status::OK();
    }
    written_size_ = 0;
    return Status::IOError(
        StrCat(path, ": write at offset ", offset, ": No space left on device (injected)"));
  }

  Status BeforeSync(const std::string& path) override {
    if (fault_ != Fault::kFailSync || !Matches(path)) return Status::OK();
    MutexLock lock(&mu_);
    if (++calls_ != armed_at_) return Status::OK();
    armed_at_ = 0;
    ++faults_;
    faulted_path_ = path;
    return Status::IOError(StrCat(path, ": fdatasync: Input/output error (injected)"));
  }

 private:
  bool Matches(const std::string& path) const {
    return path.size() >= suffix_.size() &&
           path.compare(path.size() - suffix_.size(), suffix_.size(), suffix_) == 0;
  }

  const std::string suffix_;
  const Fault fault_;
  mutable Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  int armed_at_ ABSL_GUARDED_BY(mu_) = 0;  // 0: disarmed
  int faults_ ABSL_GUARDED_BY(mu_) = 0;
  std::string faulted_path_ ABSL_GUARDED_BY(mu_);
  uint64_t faulted_offset_ ABSL_GUARDED_BY(mu_) = 0;
  size_t faulted_size_ ABSL_GUARDED_BY(mu_) = 0;
  size_t written_size_ ABSL_GUARDED_BY(mu_) = 0;
};

// Copies the files of the Env directory `from` into the new directory `to`, leaving out
// LOCK: what a kill -9 at this moment would leave on disk (the page cache survives a
// process crash). The Env in `from` may be open, but must not be writing meanwhile.
inline void CopyCrashImage(const std::string& from, const std::string& to) {
  std::filesystem::create_directories(to);
  for (const auto& entry : std::filesystem::directory_iterator(from)) {
    if (!entry.is_regular_file() || entry.path().filename() == "LOCK") continue;
    std::filesystem::copy_file(entry.path(), std::filesystem::path(to) / entry.path().filename());
  }
}

// The one file in `dir` whose name ends with `suffix`; empty (and a test failure) if there
// is not exactly one.
inline std::string OnlyFileEndingWith(const std::string& dir, const std::string& suffix) {
  std::string found;
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      found = entry.path().string();
      ++count;
    }
  }
  if (count != 1) {
    ADD_FAILURE() << count << " files ending with " << suffix << " in " << dir;
    return "";
  }
  return found;
}

}  // namespace fern::testing

#endif  // FERN_TESTS_DB_SUFFIX_FAULT_INJECTOR_H_
