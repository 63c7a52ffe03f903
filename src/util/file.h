// The file layer: every byte Fern reads or writes goes through here, so that errors carry
// the path and errno, and tests can inject faults (see fault_injection.h) at the exact
// places where I/O can fail.
#ifndef FERN_UTIL_FILE_H_
#define FERN_UTIL_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fern/status.h"

namespace fern {

// A file opened for positional reads and writes. Thread-safe for concurrent Read/Write at
// distinct offsets (pread/pwrite); Append is for a single writer.
class File {
 public:
  enum class Mode {
    kReadOnly,
    kReadWrite,
    kCreate /* read-write, created if missing */,
    kCreateTruncate
  };
  static Status Open(const std::string& path, Mode mode, std::unique_ptr<File>* file);
  ~File();
  // Closes the descriptor now (the destructor does otherwise); every later call fails with
  // IOError. REQUIRES: no call on this File runs or will start concurrently.
  void Close();

  // Reads exactly `n` bytes at `offset` into `*out`. Fewer bytes available is Corruption
  // ("<path>: short read at offset X: wanted N, got M").
  Status Read(uint64_t offset, size_t n, std::string* out) const;
  // Reads up to `n` bytes; `*out` may be shorter at the end of the file.
  Status ReadUpTo(uint64_t offset, size_t n, std::string* out) const;
  Status Write(uint64_t offset, std::string_view data);
  Status Append(std::string_view data);  // at the current end of the file
  Status Sync();                         // fdatasync
  Status Truncate(uint64_t size);
  // Reserves disk blocks for [offset, offset + length), extending the file (zero-filled).
  // Writes inside reserved space do not change the file's size, so fdatasync has no
  // metadata to flush. NotSupported where the file system cannot.
  Status Preallocate(uint64_t offset, uint64_t length);
  Status Size(uint64_t* size) const;
  const std::string& path() const { return path_; }

 private:
  File(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
};

// Whole-file and directory operations.
Status ReadFileToString(const std::string& path, std::string* contents);
// Writes `contents` to `path` atomically: `path`.tmp, fsync, rename, fsync of the directory.
// On failure the temporary is removed; `path` then holds its old or (if only the directory
// fsync failed) its new contents, never a mix.
Status WriteFileAtomically(const std::string& path, std::string_view contents);
// The directory holding `path`: what precedes its last '/' ("." if it has none, "/" if that
// is the first character).
std::string ParentDir(const std::string& path);
// Creates the directory `path` if it is missing, then syncs its parent so that the new
// entry survives a power loss. IOError if `path` exists and is not a directory.
Status CreateDirIfMissing(const std::string& path);
// Replaces `*names` with the entries of `path` other than "." and "..", in byte order.
Status ListDir(const std::string& path, std::vector<std::string>* names);
Status RemoveFile(const std::string& path);
Status RenameFile(const std::string& from, const std::string& to);
Status SyncDir(const std::string& path);
bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);

// An exclusive advisory lock (flock) on a file, held until destroyed. A second lock on the
// same path, from this process or another, fails with IOError naming the path.
class FileLock {
 public:
  static Status Acquire(const std::string& path, std::unique_ptr<FileLock>* lock);
  // A shared lock on an existing file, for readers that must not run while its owner holds
  // the exclusive lock (the inspection tools on an Env's LOCK: the Env rewrites its files as
  // it checkpoints), and that keep the owner out while they read. NotFound if the file does
  // not exist (it is not created); IOError naming the path if an exclusive lock is held.
  static Status AcquireShared(const std::string& path, std::unique_ptr<FileLock>* lock);
  ~FileLock();

 private:
  FileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
};

}  // namespace fern

#endif  // FERN_UTIL_FILE_H_
