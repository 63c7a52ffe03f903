#include "util/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/big_buffer.h"
#include "util/fault_injection.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace fern {

namespace {

Status ErrnoStatus(std::string_view what, const std::string& path, int err) {
  return Status::IOError(StrCat(path, ": ", what, ": ", std::strerror(err)));
}

}  // namespace

Status File::Open(const std::string& path, Mode mode, std::unique_ptr<File>* file) {
  int flags = O_CLOEXEC;
  switch (mode) {
    case Mode::kReadOnly:
      flags |= O_RDONLY;
      break;
    case Mode::kReadWrite:
      flags |= O_RDWR;
      break;
    case Mode::kCreate:
      flags |= O_RDWR | O_CREAT;
      break;
    case Mode::kCreateTruncate:
      flags |= O_RDWR | O_CREAT | O_TRUNC;
      break;
  }
  if (FaultInjector* injector = CurrentFaultInjector();
      injector != nullptr && (mode == Mode::kCreate || mode == Mode::kCreateTruncate)) {
    if (!PathExists(path)) {
      injector->BeforeCreate(path, /*directory=*/false);
    } else if (mode == Mode::kCreateTruncate) {
      injector->BeforeResize(path, 0);
    }
  }
  // O_NONBLOCK only so that opening a FIFO does not wait for a writer: anything but a
  // regular file is refused below, and for those the flag changes nothing.
  int fd = ::open(path.c_str(), flags | O_NONBLOCK, 0644);
  if (fd < 0) {
    if (errno == ENOENT) {
      // Creating: a directory on the path is missing (the Env's was removed), an I/O
      // failure for the caller, not an absent row or file it asked for.
      if (mode == Mode::kCreate || mode == Mode::kCreateTruncate) {
        return Status::IOError(StrCat(path, ": cannot create: its directory does not exist"));
      }
      return Status::NotFound(StrCat(path, ": no such file"));
    }
    if (errno == EISDIR) return Status::InvalidArgument(StrCat(path, ": is a directory"));
    return ErrnoStatus("open", path, errno);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return ErrnoStatus("fstat", path, error);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(
        StrCat(path, S_ISDIR(st.st_mode) ? ": is a directory" : ": is not a regular file"));
  }
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
    const int error = errno;
    ::close(fd);
    return ErrnoStatus("fcntl", path, error);
  }
  file->reset(new File(path, fd));
  return Status::OK();
}

File::~File() { Close(); }

void File::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;  // later calls fail with EBADF
}

Status File::ReadUpTo(uint64_t offset, size_t n, std::string* out) const {
  ReserveBuffer(out, n);
  out->resize(n);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd_, out->data() + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      out->clear();
      return ErrnoStatus(StrCat("read at offset ", offset), path_, errno);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  out->resize(done);
  if (FaultInjector* injector = CurrentFaultInjector()) {
    FERN_RETURN_IF_ERROR(injector->AfterRead(path_, offset, out));
  }
  return Status::OK();
}

Status File::Read(uint64_t offset, size_t n, std::string* out) const {
  FERN_RETURN_IF_ERROR(ReadUpTo(offset, n, out));
  if (out->size() != n) {
    size_t got = out->size();
    out->clear();
    return Status::Corruption(
        StrCat(path_, ": short read at offset ", offset, ": wanted ", n, " bytes, got ", got));
  }
  return Status::OK();
}

Status File::Write(uint64_t offset, std::string_view data) {
  size_t size = data.size();
  bool torn = false;
  if (FaultInjector* injector = CurrentFaultInjector()) {
    FERN_RETURN_IF_ERROR(injector->BeforeWrite(path_, offset, &size));
    // An injector may shorten a write, never lengthen it past the caller's bytes.
    size = std::min(size, data.size());
    if (size < data.size()) torn = true;
  }
  size_t done = 0;
  while (done < size) {
    ssize_t r = ::pwrite(fd_, data.data() + done, size - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(StrCat("write at offset ", offset), path_, errno);
    }
    if (r == 0) {
      return Status::IOError(StrCat(path_, ": write at offset ", offset, " made no progress after ",
                                    done, " of ", size, " bytes"));
    }
    done += static_cast<size_t>(r);
  }
  if (torn) {
    return Status::IOError(StrCat(path_, ": write at offset ", offset, " torn after ", size, " of ",
                                  data.size(), " bytes (injected)"));
  }
  if (FaultInjector* injector = CurrentFaultInjector()) injector->AfterWrite(path_, offset, size);
  return Status::OK();
}

Status File::Append(std::string_view data) {
  uint64_t end;
  FERN_RETURN_IF_ERROR(Size(&end));
  return Write(end, data);
}

Status File::Sync() {
  if (FaultInjector* injector = CurrentFaultInjector()) {
    FERN_RETURN_IF_ERROR(injector->BeforeSync(path_));
  }
  if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_, errno);
  if (FaultInjector* injector = CurrentFaultInjector()) injector->AfterSync(path_);
  return Status::OK();
}

Status File::Truncate(uint64_t size) {
  if (FaultInjector* injector = CurrentFaultInjector()) injector->BeforeResize(path_, size);
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    return ErrnoStatus("ftruncate", path_, errno);
  }
  return Status::OK();
}

Status File::Preallocate(uint64_t offset, uint64_t length) {
  if (FaultInjector* injector = CurrentFaultInjector()) {
    uint64_t size;
    FERN_RETURN_IF_ERROR(Size(&size));
    injector->BeforeResize(path_, std::max(size, offset + length));
  }
  int err = ::posix_fallocate(fd_, static_cast<off_t>(offset), static_cast<off_t>(length));
  if (err == EOPNOTSUPP || err == EINVAL) {
    return Status::NotSupported(StrCat(path_, ": preallocation not supported"));
  }
  if (err != 0) return ErrnoStatus("posix_fallocate", path_, err);
  return Status::OK();
}

Status File::Size(uint64_t* size) const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return ErrnoStatus("fstat", path_, errno);
  *size = static_cast<uint64_t>(st.st_size);
  return Status::OK();
}

Status ReadFileToString(const std::string& path, std::string* contents) {
  std::unique_ptr<File> file;
  FERN_RETURN_IF_ERROR(File::Open(path, File::Mode::kReadOnly, &file));
  uint64_t size;
  FERN_RETURN_IF_ERROR(file->Size(&size));
  return file->Read(0, size, contents);
}

Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  const std::string temp = path + ".tmp";
  Status s;
  {
    std::unique_ptr<File> file;
    s = File::Open(temp, File::Mode::kCreateTruncate, &file);
    if (s.ok()) s = file->Write(0, contents);
    if (s.ok()) s = file->Sync();
  }
  if (s.ok()) s = RenameFile(temp, path);
  if (!s.ok()) {
    // Best effort: a leftover temporary is harmless (the next attempt truncates it), but
    // should not accumulate in the directory.
    RemoveFile(temp).ok();
    return s;
  }
  return SyncDir(ParentDir(path));
}

std::string ParentDir(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status CreateDirIfMissing(const std::string& path) {
  const bool existed = PathExists(path);
  if (!existed) {
    if (FaultInjector* injector = CurrentFaultInjector()) {
      injector->BeforeCreate(path, /*directory=*/true);
    }
  }
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus("mkdir", path, errno);
  }
  if (!IsDirectory(path)) return Status::IOError(StrCat(path, ": not a directory"));
  if (existed) return Status::OK();
  // The new entry is durable only once its parent directory is synced ("dir/env/" is "env"
  // in "dir").
  return SyncDir(ParentDir(path.substr(0, path.find_last_not_of('/') + 1)));
}

Status ListDir(const std::string& path, std::vector<std::string>* names) {
  names->clear();
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return ErrnoStatus("opendir", path, errno);
  while (true) {
    errno = 0;
    struct dirent* entry = ::readdir(dir);
    if (entry == nullptr) break;
    std::string name = entry->d_name;
    if (name != "." && name != "..") names->push_back(std::move(name));
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) {
    names->clear();
    return ErrnoStatus("readdir", path, err);
  }
  std::sort(names->begin(), names->end());
  return Status::OK();
}

Status RemoveFile(const std::string& path) {
  if (FaultInjector* injector = CurrentFaultInjector()) injector->BeforeRemove(path);
  if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path, errno);
  return Status::OK();
}

Status RenameFile(const std::string& from, const std::string& to) {
  if (FaultInjector* injector = CurrentFaultInjector()) injector->BeforeRename(from, to);
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoStatus(StrCat("rename to ", to), from, errno);
  }
  return Status::OK();
}

Status SyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open directory", path, errno);
  Status s;
  if (FaultInjector* injector = CurrentFaultInjector()) s = injector->BeforeSync(path);
  if (s.ok() && ::fsync(fd) != 0) s = ErrnoStatus("fsync directory", path, errno);
  ::close(fd);
  if (s.ok()) {
    if (FaultInjector* injector = CurrentFaultInjector()) injector->AfterSync(path);
  }
  return s;
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Status FileLock::Acquire(const std::string& path, std::unique_ptr<FileLock>* lock) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("open lock file", path, errno);
  // flock locks belong to the open file description, so a second open of the same path in
  // this process conflicts too — exactly the "one Env per directory" rule.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status::IOError(
          StrCat(path, ": locked: the Env is already open in this or another process"));
    }
    return ErrnoStatus("flock", path, err);
  }
  lock->reset(new FileLock(path, fd));
  return Status::OK();
}

Status FileLock::AcquireShared(const std::string& path, std::unique_ptr<FileLock>* lock) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(StrCat(path, ": no lock file"));
    return ErrnoStatus("open lock file", path, errno);
  }
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status::IOError(StrCat(path, ": locked: the Env is open in this or another process"));
    }
    return ErrnoStatus("flock", path, err);
  }
  lock->reset(new FileLock(path, fd));
  return Status::OK();
}

FileLock::~FileLock() {
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

}  // namespace fern
