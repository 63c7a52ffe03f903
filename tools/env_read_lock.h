// For the inspection tools: a shared lock on the Env directory a table file or Env lives
// in, so that they do not read files an open Env is rewriting (a checkpoint moves blocks
// and rewrites headers under a reader, which then reports damage that is not there).
#ifndef FERN_TOOLS_ENV_READ_LOCK_H_
#define FERN_TOOLS_ENV_READ_LOCK_H_

#include <filesystem>
#include <memory>
#include <string>

#include "fern/status.h"
#include "util/file.h"
#include "util/strings.h"

namespace fern {

// Takes a shared lock on `env_dir`/LOCK into *lock. OK, with *lock left null, when there
// is no LOCK file (a table file copied elsewhere); IOError saying what to do when an Env
// holds it.
inline Status LockEnvForReading(const std::string& env_dir, std::unique_ptr<FileLock>* lock) {
  const std::string path = (std::filesystem::path(env_dir) / "LOCK").string();
  Status s = FileLock::AcquireShared(path, lock);
  if (s.IsNotFound()) return Status::OK();
  if (!s.ok()) {
    return Status::IOError(StrCat(s.message(),
                                  "; its files change while it runs: close it first, or "
                                  "inspect a copy"));
  }
  return s;
}

// The directory a table file lives in, after symbolic links: a link elsewhere to an open
// Env's file must find that Env's LOCK. (A hard link cannot be traced back; the lock is the
// directory's.)
inline std::string EnvDirOf(const std::string& file_path) {
  std::error_code error;
  std::filesystem::path path = std::filesystem::canonical(file_path, error);
  if (error) path = file_path;  // missing or unreadable: the open reports that
  std::filesystem::path parent = path.parent_path();
  return parent.empty() ? "." : parent.string();
}

}  // namespace fern

#endif  // FERN_TOOLS_ENV_READ_LOCK_H_
