// A model of what a power loss keeps, for crash tests: a process working on an Env records,
// through the file layer's fault-injection seam, every change it makes to files and
// directories, with what each change overwrote; after the process is killed, UndoUnsynced
// takes back every change that no later sync made durable, as if the machine had lost power
// at the moment of the kill.
//
// The model is the pessimistic one POSIX allows: a file's writes, truncations and
// preallocations are durable only once an fdatasync of the file begins after them (after a
// write completed, not merely began) and completes; a file's or directory's creation, a
// rename and a removal only once an fsync of the directory holding the entry begins after
// them and completes. Everything else is lost. (A real file system may keep more, never
// less: an engine that survives this survives the machine's power loss.)
//
// The recording process writes the journal with plain write(2) calls before each change,
// so a SIGKILL loses none of it. A change that was journaled but never made (the kill
// came between) is undone harmlessly: a write's old bytes are the bytes there, a removal's
// saved contents are the file's; a rename not made leaves, besides the target as it was, a
// copy of it under the source's name (a stray temporary, as a crash mid-rename may).
#ifndef FERN_TESTS_DB_POWER_LOSS_H_
#define FERN_TESTS_DB_POWER_LOSS_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "util/fault_injection.h"

namespace fern::testing {

namespace power_loss_internal {

// kWrite and kSyncStart come before the change, kWriteDone and kSync after it.
enum class Change : uint8_t {
  kWrite,
  kResize,
  kCreate,
  kRename,
  kRemove,
  kSync,
  kWriteDone,
  kSyncStart
};

// One journaled change. Paths are as the file layer saw them.
struct Record {
  Change change;
  bool is_dir = false;    // kCreate, kSync, kSyncStart: of a directory
  bool had_old = false;   // kRename: `to` existed and `old` holds its contents
  std::string path;       // kRename: the source
  std::string to;         // kRename: the target
  uint64_t offset = 0;    // kWrite, kWriteDone: where; kResize: the new size
  uint64_t length = 0;    // kWrite, kWriteDone: the bytes written
  uint64_t old_size = 0;  // kWrite, kResize: the file's size before
  std::string old;        // kWrite: the bytes overwritten; kResize: the tail a shrink cut off;
                          // kRename: the replaced target's contents; kRemove: the file's contents
};

inline void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<char*>(&v), 8); }
inline void PutBytes(std::string* out, std::string_view bytes) {
  PutU64(out, bytes.size());
  out->append(bytes);
}

inline std::string Encode(const Record& r) {
  std::string body;
  body.push_back(static_cast<char>(r.change));
  body.push_back(static_cast<char>(r.is_dir));
  body.push_back(static_cast<char>(r.had_old));
  PutBytes(&body, r.path);
  PutBytes(&body, r.to);
  PutU64(&body, r.offset);
  PutU64(&body, r.length);
  PutU64(&body, r.old_size);
  PutBytes(&body, r.old);
  std::string framed;
  PutU64(&framed, body.size());
  return framed + body;
}

// Parses records until the data ends or a record is cut short (the kill came mid-write).
inline std::vector<Record> DecodeAll(std::string_view data) {
  std::vector<Record> records;
  auto u64 = [&](std::string_view* in, uint64_t* v) {
    if (in->size() < 8) return false;
    std::memcpy(v, in->data(), 8);
    in->remove_prefix(8);
    return true;
  };
  auto bytes = [&](std::string_view* in, std::string* out) {
    uint64_t n;
    if (!u64(in, &n) || in->size() < n) return false;
    out->assign(in->data(), n);
    in->remove_prefix(n);
    return true;
  };
  while (true) {
    uint64_t size;
    if (!u64(&data, &size) || data.size() < size) break;
    std::string_view body = data.substr(0, size);
    data.remove_prefix(size);
    if (body.size() < 3) break;
    Record r;
    r.change = static_cast<Change>(body[0]);
    r.is_dir = body[1] != 0;
    r.had_old = body[2] != 0;
    body.remove_prefix(3);
    if (!bytes(&body, &r.path) || !bytes(&body, &r.to) || !u64(&body, &r.offset) ||
        !u64(&body, &r.length) || !u64(&body, &r.old_size) || !bytes(&body, &r.old)) {
      break;
    }
    records.push_back(std::move(r));
  }
  return records;
}

// The bytes [offset, offset + n) of `path` that exist, and its size (0 if it is missing).
inline std::string ReadRange(const std::string& path, uint64_t offset, uint64_t n, uint64_t* size) {
  *size = 0;
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  struct stat st;
  if (::fstat(fd, &st) == 0) *size = static_cast<uint64_t>(st.st_size);
  if (offset < *size) {
    out.resize(std::min<uint64_t>(n, *size - offset));
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t r =
          ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (r <= 0) break;
      done += static_cast<size_t>(r);
    }
    out.resize(done);
  }
  ::close(fd);
  return out;
}

inline std::string WholeFile(const std::string& path) {
  uint64_t size;
  ReadRange(path, 0, 0, &size);
  return ReadRange(path, 0, size, &size);
}

inline std::string Normal(const std::string& path) {
  return std::filesystem::path(path).lexically_normal().string();
}
inline std::string ParentOf(const std::string& path) {
  return std::filesystem::path(Normal(path)).parent_path().string();
}

}  // namespace power_loss_internal

// Journals every change under `root` (a path prefix) to the file `journal`. Install it
// with SetFaultInjector in the process to be killed; it never fails an operation.
class PowerLossRecorder : public FaultInjector {
 public:
  PowerLossRecorder(const std::string& journal, std::string root) : root_(std::move(root)) {
    fd_ = ::open(journal.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  }
  bool ok() const { return fd_ >= 0; }

  Status BeforeWrite(const std::string& path, uint64_t offset, size_t* size) override {
    if (!Watched(path)) return Status::OK();
    power_loss_internal::Record r{power_loss_internal::Change::kWrite};
    r.path = path;
    r.offset = offset;
    r.length = *size;
    r.old = power_loss_internal::ReadRange(path, offset, *size, &r.old_size);
    Append(r);
    return Status::OK();
  }
  void BeforeCreate(const std::string& path, bool directory) override {
    if (!Watched(path)) return;
    power_loss_internal::Record r{power_loss_internal::Change::kCreate};
    r.path = path;
    r.is_dir = directory;
    Append(r);
  }
  void BeforeResize(const std::string& path, uint64_t size) override {
    if (!Watched(path)) return;
    power_loss_internal::Record r{power_loss_internal::Change::kResize};
    r.path = path;
    r.offset = size;
    power_loss_internal::ReadRange(path, 0, 0, &r.old_size);
    if (size < r.old_size) {
      r.old = power_loss_internal::ReadRange(path, size, r.old_size - size, &r.old_size);
    }
    Append(r);
  }
  void BeforeRename(const std::string& from, const std::string& to) override {
    if (!Watched(from) && !Watched(to)) return;
    power_loss_internal::Record r{power_loss_internal::Change::kRename};
    r.path = from;
    r.to = to;
    r.had_old = std::filesystem::exists(to);
    if (r.had_old) r.old = power_loss_internal::WholeFile(to);
    Append(r);
  }
  void BeforeRemove(const std::string& path) override {
    if (!Watched(path) || !std::filesystem::exists(path)) return;
    power_loss_internal::Record r{power_loss_internal::Change::kRemove};
    r.path = path;
    r.old = power_loss_internal::WholeFile(path);
    Append(r);
  }
  void AfterWrite(const std::string& path, uint64_t offset, size_t size) override {
    if (!Watched(path)) return;
    power_loss_internal::Record r{power_loss_internal::Change::kWriteDone};
    r.path = path;
    r.offset = offset;
    r.length = size;
    Append(r);
  }
  Status BeforeSync(const std::string& path) override {
    JournalSync(power_loss_internal::Change::kSyncStart, path);
    return Status::OK();
  }
  void AfterSync(const std::string& path) override {
    JournalSync(power_loss_internal::Change::kSync, path);
  }

 private:
  bool Watched(const std::string& path) const {
    return power_loss_internal::Normal(path).rfind(root_, 0) == 0;
  }
  void JournalSync(power_loss_internal::Change change, const std::string& path) {
    if (!Watched(path)) return;
    power_loss_internal::Record r{change};
    r.path = path;
    r.is_dir = std::filesystem::is_directory(path);
    Append(r);
  }

  void Append(const power_loss_internal::Record& r) {
    const std::string bytes = power_loss_internal::Encode(r);
    std::lock_guard<std::mutex> lock(mu_);
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }

  const std::string root_;
  int fd_ = -1;
  std::mutex mu_;
};

// For a child process about to be killed: records every change under `root` to `journal`
// until the kill (exits with status 8 if the journal cannot be made).
inline void RecordUntilKilled(const std::string& journal, const std::string& root) {
  auto* recorder = new PowerLossRecorder(journal, root);
  if (!recorder->ok()) ::_exit(8);
  SetFaultInjector(recorder);  // kept until the kill
}

// Undoes, in the directory tree the journal describes, every change no later sync made
// durable (see the top of this file). Returns how many changes it undid (none if there is no
// journal).
inline int UndoUnsynced(const std::string& journal) {
  using power_loss_internal::Change;
  using power_loss_internal::Record;
  namespace fs = std::filesystem;
  const std::vector<Record> records =
      power_loss_internal::DecodeAll(power_loss_internal::WholeFile(journal));

  // Forward: which file each record is about, followed through renames and removals.
  struct Ids {
    size_t id = 0;
    size_t replaced = SIZE_MAX;  // kRename: the target it replaced
  };
  std::vector<Ids> ids(records.size());
  std::map<std::string, size_t> bound;  // normalized path -> id
  size_t next_id = 0;
  auto id_of = [&](const std::string& path) {
    auto [it, fresh] = bound.emplace(power_loss_internal::Normal(path), next_id);
    if (fresh) ++next_id;
    return it->second;
  };
  // done_of[w]: the kWriteDone of the kWrite at w (SIZE_MAX if the write never completed).
  std::vector<size_t> done_of(records.size(), SIZE_MAX);
  std::map<std::tuple<size_t, uint64_t, uint64_t>, std::vector<size_t>> in_flight;
  for (size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    const std::string path = power_loss_internal::Normal(r.path);
    switch (r.change) {
      case Change::kCreate:
        bound[path] = next_id;
        ids[i].id = next_id++;
        break;
      case Change::kRename: {
        ids[i].id = id_of(r.path);
        const std::string to = power_loss_internal::Normal(r.to);
        if (r.had_old) ids[i].replaced = id_of(r.to);
        bound.erase(path);
        bound[to] = ids[i].id;
        break;
      }
      case Change::kRemove:
        ids[i].id = id_of(r.path);
        bound.erase(path);
        break;
      default:
        ids[i].id = id_of(r.path);
        break;
    }
    if (r.change == Change::kWrite || r.change == Change::kWriteDone) {
      std::vector<size_t>& writes = in_flight[{ids[i].id, r.offset, r.length}];
      if (r.change == Change::kWrite) {
        writes.push_back(i);
      } else if (!writes.empty()) {
        done_of[writes.front()] = i;
        writes.erase(writes.begin());
      }
    }
  }

  // Backward: is each change followed by a sync that began after it and completed? A write
  // counts from its completion, so that one still in flight when another thread's sync
  // began is not made durable by it. (Resizes and name changes count from their
  // announcement, just before they are made.) Each sync's start claims a completion of the
  // same file or directory seen after it; a sync cut off by the kill has none.
  std::vector<bool> durable(records.size(), false);
  std::map<size_t, int> unclaimed_files;  // completions not yet matched with a start
  std::map<std::string, int> unclaimed_dirs;
  std::set<size_t> synced_files;  // a completed sync begins later
  std::set<std::string> synced_dirs;
  for (size_t i = records.size(); i-- > 0;) {
    const Record& r = records[i];
    const std::string path = power_loss_internal::Normal(r.path);
    switch (r.change) {
      case Change::kSync:
        if (r.is_dir) {
          ++unclaimed_dirs[path];
        } else {
          ++unclaimed_files[ids[i].id];
        }
        break;
      case Change::kSyncStart:
        if (r.is_dir) {
          if (unclaimed_dirs[path] > 0) {
            --unclaimed_dirs[path];
            synced_dirs.insert(path);
          }
        } else if (unclaimed_files[ids[i].id] > 0) {
          --unclaimed_files[ids[i].id];
          synced_files.insert(ids[i].id);
        }
        break;
      case Change::kWriteDone:
      case Change::kResize:
        durable[i] = synced_files.count(ids[i].id) > 0;
        break;
      case Change::kWrite:
        durable[i] = done_of[i] != SIZE_MAX && durable[done_of[i]];
        break;
      case Change::kRename:
        durable[i] = synced_dirs.count(power_loss_internal::ParentOf(r.path)) > 0 &&
                     synced_dirs.count(power_loss_internal::ParentOf(r.to)) > 0;
        break;
      case Change::kCreate:
      case Change::kRemove:
        durable[i] = synced_dirs.count(power_loss_internal::ParentOf(r.path)) > 0;
        break;
    }
  }

  // Backward again, undoing what is not durable; `where` follows each file as it moves.
  std::map<size_t, std::string> where;
  for (const auto& [path, id] : bound) where[id] = path;
  auto write_at = [](const std::string& path, uint64_t offset, std::string_view bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n =
          ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::close(fd);
  };
  auto resize = [](const std::string& path, uint64_t size) {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) return;
  };
  int undone = 0;
  for (size_t i = records.size(); i-- > 0;) {
    const Record& r = records[i];
    if (durable[i] || r.change == Change::kSync || r.change == Change::kSyncStart ||
        r.change == Change::kWriteDone) {
      continue;
    }
    const size_t id = ids[i].id;
    auto at = where.find(id);
    switch (r.change) {
      case Change::kWrite:
        if (at == where.end() || !fs::exists(at->second)) break;
        write_at(at->second, r.offset, r.old);
        if (r.offset + r.length > r.old_size) resize(at->second, r.old_size);
        ++undone;
        break;
      case Change::kResize:
        if (at == where.end() || !fs::exists(at->second)) break;
        resize(at->second, r.old_size);
        if (!r.old.empty()) write_at(at->second, r.offset, r.old);
        ++undone;
        break;
      case Change::kCreate:
        if (at != where.end()) {
          std::error_code ec;
          fs::remove_all(at->second, ec);
          where.erase(at);
        }
        ++undone;
        break;
      case Change::kRename: {
        const std::string from = power_loss_internal::Normal(r.path);
        if (at != where.end()) {
          std::error_code ec;
          fs::rename(at->second, from, ec);
          at->second = from;
        }
        if (r.had_old) {
          const std::string to = power_loss_internal::Normal(r.to);
          write_at(to, 0, r.old);
          resize(to, r.old.size());
          where[ids[i].replaced] = to;
        }
        ++undone;
        break;
      }
      case Change::kRemove: {
        const std::string path = power_loss_internal::Normal(r.path);
        write_at(path, 0, r.old);
        resize(path, r.old.size());
        where[id] = path;
        ++undone;
        break;
      }
      case Change::kSync:
      case Change::kSyncStart:
      case Change::kWriteDone:
        break;
    }
  }
  return undone;
}

}  // namespace fern::testing

#endif  // FERN_TESTS_DB_POWER_LOSS_H_
