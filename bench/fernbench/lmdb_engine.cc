// fernbench's LMDB backend: one environment with the unnamed database, a map comfortably
// larger than the data, and each put or delete its own write transaction. LMDB's ordinary
// durable configuration fsyncs every commit; for the workloads that commit without fsync it
// runs with MDB_NOSYNC, so that every engine skips the fsync equally, and it switches the
// flag off for commits that ask for sync (fillsync). LMDB has no compression.
#include <lmdb.h>

#include <algorithm>
#include <memory>
#include <string>

#include "fernbench/data.h"
#include "fernbench/engine.h"
#include "util/strings.h"

namespace fern::bench {

namespace {

// The map is address space, not disk: the file grows only as pages are used. 16x the raw
// data covers B-tree page fill, copy-on-write free pages and 100-byte values with room left.
constexpr uint64_t kMapBytesPerEntry = 16 * kEntryBytes;
constexpr uint64_t kMinMapBytes = uint64_t{1} << 30;
// LMDB's default reader table; each thread with a read transaction holds one slot.
constexpr unsigned int kDefaultMaxReaders = 126;

Status FromLmdb(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return Status::OK();
  std::string message = StrCat(what, ": ", mdb_strerror(rc));
  if (rc == MDB_NOTFOUND) return Status::NotFound(message);
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) return Status::Corruption(message);
  return Status::IOError(message);
}

MDB_val ToVal(std::string_view bytes) {
  return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}

std::string_view FromVal(const MDB_val& val) {
  return std::string_view(static_cast<const char*>(val.mv_data), val.mv_size);
}

class LmdbCursor : public EngineCursor {
 public:
  LmdbCursor(MDB_txn* txn, MDB_cursor* cursor) : txn_(txn), cursor_(cursor) {}
  ~LmdbCursor() override {
    mdb_cursor_close(cursor_);
    mdb_txn_abort(txn_);
  }

  void Seek(std::string_view target) override {
    // LMDB rejects an empty key (MDB_BAD_VALSIZE); every key is >= the empty one.
    if (target.empty()) {
      Step(MDB_FIRST, "mdb_cursor_get(MDB_FIRST)");
      return;
    }
    key_ = ToVal(target);
    Step(MDB_SET_RANGE, "mdb_cursor_get(MDB_SET_RANGE)");
  }
  void Next() override { Step(MDB_NEXT, "mdb_cursor_get(MDB_NEXT)"); }
  bool Valid() const override { return valid_; }
  std::string_view key() const override { return FromVal(key_); }
  std::string_view value() const override { return FromVal(value_); }
  Status status() const override { return status_; }

 private:
  void Step(MDB_cursor_op op, std::string_view what) {
    int rc = mdb_cursor_get(cursor_, &key_, &value_, op);
    valid_ = rc == MDB_SUCCESS;
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) status_ = FromLmdb(rc, what);
  }

  MDB_txn* const txn_;  // read-only; owned
  MDB_cursor* const cursor_;
  MDB_val key_{};
  MDB_val value_{};
  bool valid_ = false;
  Status status_;
};

class LmdbEngine : public Engine {
 public:
  ~LmdbEngine() override {
    if (env_ != nullptr) (void)Close();
  }

  Status Open(const std::string& dir, const EngineConfig& config) override {
    if (config.compression != "default" && config.compression != "none") {
      return Status::NotSupported(StrCat("LMDB has no ", config.compression, " compression"));
    }
    map_bytes_ = std::max(kMinMapBytes, config.n * kMapBytesPerEntry);
    nosync_ = !config.sync_commits;
    Status status = FromLmdb(mdb_env_create(&env_), "mdb_env_create");
    if (status.ok())
      status = FromLmdb(mdb_env_set_mapsize(env_, map_bytes_), "mdb_env_set_mapsize");
    if (status.ok()) {
      unsigned int readers =
          std::max(kDefaultMaxReaders, static_cast<unsigned int>(config.threads) + 2);
      status = FromLmdb(mdb_env_set_maxreaders(env_, readers), "mdb_env_set_maxreaders");
    }
    if (status.ok()) {
      unsigned int flags = nosync_ ? MDB_NOSYNC : 0;
      status = FromLmdb(mdb_env_open(env_, dir.c_str(), flags, 0644), "mdb_env_open");
    }
    MDB_txn* txn = nullptr;
    if (status.ok()) status = FromLmdb(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
    if (status.ok()) {
      status = FromLmdb(mdb_dbi_open(txn, nullptr, 0, &dbi_), "mdb_dbi_open");
      if (status.ok()) {
        status = FromLmdb(mdb_txn_commit(txn), "mdb_txn_commit");
      } else {
        mdb_txn_abort(txn);
      }
    }
    return status;
  }

  Status Put(std::string_view key, std::string_view value, bool sync) override {
    MDB_val key_val = ToVal(key);
    MDB_val value_val = ToVal(value);
    return Write(sync, [&](MDB_txn* txn) {
      return FromLmdb(mdb_put(txn, dbi_, &key_val, &value_val, 0), "mdb_put");
    });
  }

  Status Delete(std::string_view key, bool sync) override {
    MDB_val key_val = ToVal(key);
    return Write(sync, [&](MDB_txn* txn) {
      return FromLmdb(mdb_del(txn, dbi_, &key_val, nullptr), "mdb_del");
    });
  }

  Status Get(std::string_view key, std::string* value) override {
    MDB_txn* txn = nullptr;
    Status status = FromLmdb(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
    if (!status.ok()) return status;
    MDB_val key_val = ToVal(key);
    MDB_val value_val;
    status = FromLmdb(mdb_get(txn, dbi_, &key_val, &value_val), "mdb_get");
    if (status.ok()) value->assign(FromVal(value_val));
    mdb_txn_abort(txn);
    return status;
  }

  Status NewCursor(std::unique_ptr<EngineCursor>* cursor) override {
    MDB_txn* txn = nullptr;
    Status status = FromLmdb(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
    if (!status.ok()) return status;
    MDB_cursor* lmdb_cursor = nullptr;
    status = FromLmdb(mdb_cursor_open(txn, dbi_, &lmdb_cursor), "mdb_cursor_open");
    if (!status.ok()) {
      mdb_txn_abort(txn);
      return status;
    }
    *cursor = std::make_unique<LmdbCursor>(txn, lmdb_cursor);
    return Status::OK();
  }

  Status Close() override {
    mdb_env_close(env_);
    env_ = nullptr;
    return Status::OK();
  }

  std::string Describe() const override {
    return StrCat("map_mb=", map_bytes_ >> 20,
                  ";compression=none;commit=", nosync_ ? "MDB_NOSYNC" : "fsync");
  }

 private:
  // Runs `op` in a write transaction of its own and commits it, with an fsync iff `sync`.
  template <typename Op>
  Status Write(bool sync, Op op) {
    MDB_txn* txn = nullptr;
    Status status = FromLmdb(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
    if (!status.ok()) return status;
    // LMDB admits one write transaction at a time, so the flag flips only here, under it.
    if (sync == nosync_) {
      status = FromLmdb(mdb_env_set_flags(env_, MDB_NOSYNC, sync ? 0 : 1), "mdb_env_set_flags");
      if (status.ok()) nosync_ = !sync;
    }
    if (status.ok()) status = op(txn);
    if (!status.ok()) {
      mdb_txn_abort(txn);
      return status;
    }
    return FromLmdb(mdb_txn_commit(txn), "mdb_txn_commit");
  }

  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  uint64_t map_bytes_ = 0;
  bool nosync_ = true;  // written only inside a write transaction (or Open)
};

}  // namespace

std::unique_ptr<Engine> NewLmdbEngine() { return std::make_unique<LmdbEngine>(); }

std::string LmdbVersion() {
  int major = 0, minor = 0, patch = 0;
  mdb_version(&major, &minor, &patch);
  return StrCat(major, ".", minor, ".", patch);
}

}  // namespace fern::bench
