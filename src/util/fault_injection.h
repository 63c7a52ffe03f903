// The fault-injection seam of the file layer. Production code consults the installed
// injector (one atomic load when none is installed) before each write, sync and read, and
// around each change to the file system; tests install one to fail or damage I/O on chosen
// paths, or to record what a power loss could undo.
#ifndef FERN_UTIL_FAULT_INJECTION_H_
#define FERN_UTIL_FAULT_INJECTION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "fern/status.h"

namespace fern {

class FaultInjector {
 public:
  virtual ~FaultInjector() = default;
  // Before a write of `*size` bytes at `offset`. Returning non-OK fails the write without
  // touching the file. Lowering `*size` makes a short (torn) write of that many bytes that
  // then reports IOError; raising it has no effect.
  virtual Status BeforeWrite(const std::string& path, uint64_t offset, size_t* size) {
    return Status::OK();
  }
  // Before fsync / fdatasync. Non-OK fails the sync.
  virtual Status BeforeSync(const std::string& path) { return Status::OK(); }
  // After a successful read; may alter the bytes (e.g. flip a bit) or fail the read.
  virtual Status AfterRead(const std::string& path, uint64_t offset, std::string* data) {
    return Status::OK();
  }

  // Notifications of the changes to files and directories that a power loss may undo until
  // a sync makes them durable, for tests that model one (tests/db/power_loss.h). Each
  // "Before" call comes just before the change, while the old state can still be read; the
  // change may then fail. A write is announced by BeforeWrite above.

  // A new file, or with `directory` a new directory.
  virtual void BeforeCreate(const std::string& path, bool directory) {}
  // Truncation or preallocation; `size` is the size the file will have.
  virtual void BeforeResize(const std::string& path, uint64_t size) {}
  virtual void BeforeRename(const std::string& from, const std::string& to) {}
  virtual void BeforeRemove(const std::string& path) {}
  // After a write of `size` bytes at `offset` reached the file (BeforeWrite announced it).
  virtual void AfterWrite(const std::string& path, uint64_t offset, size_t size) {}
  // After a file's fdatasync or a directory's fsync succeeded (BeforeSync announced it).
  virtual void AfterSync(const std::string& path) {}
};

// Installs `injector` for every file in the process (nullptr removes it). The caller keeps
// ownership and must keep it alive until it is removed. Meant for tests.
void SetFaultInjector(FaultInjector* injector);
FaultInjector* CurrentFaultInjector();

}  // namespace fern

#endif  // FERN_UTIL_FAULT_INJECTION_H_
