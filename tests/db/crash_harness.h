// Crash testing: a child process writes to an Env and reports every acknowledged commit
// through a pipe; the parent kills it with SIGKILL at a random moment (while it writes,
// checkpoints or recovers), then checks what survived.
//
// The writer's operation i writes key (i * 7919 mod kKeys): a put of "v<i>" unless
// i % 10 == 9, which deletes it. The state after a prefix of operations [0, p) is a
// function of p, and the largest value present tells p to within one operation (deletes
// are never consecutive), so the survivors can be checked to be exactly a prefix.
#ifndef FERN_TESTS_DB_CRASH_HARNESS_H_
#define FERN_TESTS_DB_CRASH_HARNESS_H_

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "db/kill_child.h"
#include "db/power_loss.h"
#include "fern/fern.h"
#include "ft/block_table.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern::testing {

inline constexpr uint64_t kCrashKeys = 5000;

inline std::string CrashKey(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "key%08llu",
                static_cast<unsigned long long>(i * 7919 % kCrashKeys));
  return buf;
}
inline bool CrashOpIsDelete(uint64_t i) { return i % 10 == 9; }
// Odd operations' values are long enough that their log records are stored compressed, so
// recovery replays both kinds of record.
inline std::string CrashValue(uint64_t i) {
  return "v" + std::to_string(i) + std::string(i % 2 == 1 ? 200 : 40, 'x');
}

inline Options CrashOptions(bool sync) {
  Options options;
  options.sync_commits = sync;
  options.cache_bytes = size_t{4} << 20;
  return options;
}

inline TableOptions CrashTableOptions() { return SmallTreeOptions(); }

// The child: opens (recovering), then writes from operation `first` on, acknowledging each
// through `fd` as an 8-byte operation index. Checkpoints every `checkpoint_every` ops.
[[noreturn]] inline void CrashWriterMain(const std::string& dir, bool sync, uint64_t first,
                                         int checkpoint_every, int fd) {
  std::unique_ptr<Env> env;
  if (!Env::Open(dir, CrashOptions(sync), &env).ok()) ::_exit(3);
  Table* table;
  if (!env->OpenTable("crash", CrashTableOptions(), &table).ok()) ::_exit(4);
  for (uint64_t i = first;; ++i) {
    Status s = CrashOpIsDelete(i) ? table->Delete(nullptr, CrashKey(i))
                                  : table->Put(nullptr, CrashKey(i), CrashValue(i));
    if (!s.ok()) ::_exit(5);
    if (::write(fd, &i, sizeof(i)) != sizeof(i)) ::_exit(6);
    if (checkpoint_every > 0 && i % checkpoint_every == 0 && !env->Checkpoint().ok()) ::_exit(7);
  }
}

// Reads the table and finds the prefix length p it holds; -1 with a failure if it is not a
// prefix state.
inline int64_t CheckPrefixState(const std::string& dir, bool sync) {
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir, CrashOptions(sync), &env);
  EXPECT_TRUE(s.ok()) << "recovery failed: " << s.ToString();
  if (!s.ok()) return -1;
  Table* table;
  s = env->OpenTable("crash", CrashTableOptions(), &table);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return -1;
  std::map<std::string, std::string> rows;
  auto cursor = table->NewCursor(nullptr);
  int64_t largest = -1;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    rows.emplace(std::string(cursor->key()), std::string(cursor->value()));
    int64_t op = std::stoll(std::string(cursor->value().substr(1)));
    largest = std::max(largest, op);
  }
  EXPECT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  // The prefix is [0, largest + 1) or [0, largest + 2) (if the next op was a delete). A
  // delete of a key that is already absent (from op 5000 on, op i - 5000 deleted the same
  // key) leaves the same rows either way; the longer prefix is then the answer, or a
  // delete acknowledged just before the kill would look lost.
  for (int64_t p = largest + 2; p >= largest + 1; --p) {
    if (p == largest + 2 && !CrashOpIsDelete(static_cast<uint64_t>(largest + 1))) continue;
    std::map<std::string, std::string> model;
    for (int64_t i = 0; i < p; ++i) {
      if (CrashOpIsDelete(i)) {
        model.erase(CrashKey(i));
      } else {
        model[CrashKey(i)] = CrashValue(i);
      }
    }
    if (model == rows) return p;
  }
  ADD_FAILURE() << "the surviving rows are not the state after any prefix of the writes "
                << "(largest surviving op " << largest << ")";
  return -1;
}

// ftverify's exit status on `path`; `*output` (optional) gets what it printed.
inline int RunFtverify(const std::string& path, std::string* output = nullptr) {
  const std::string command = std::string(FERN_FTVERIFY) + " " + path + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string printed;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), pipe)) > 0;) printed.append(buf, n);
  const int status = ::pclose(pipe);
  if (output != nullptr) *output = std::move(printed);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// What kill rounds run: `write` runs in the child, from operation `first` on, and
// acknowledges each operation through `fd` as its 8-byte index (`random` is a number the
// round drew for it); `check` opens the Env after the kill and returns the length of the
// prefix of operations it holds, or -1 after adding a failure.
struct KillWorkload {
  std::function<void(uint64_t first, uint64_t random, int fd)> write;
  std::function<int64_t()> check;
};

// Runs `kills` rounds of write-then-SIGKILL on the Env directory `dir`, checking after each
// that the table files verify, that the Env holds a prefix of the operations and, with
// `sync`, every acknowledged one. With `power_loss`, each kill is also a power loss: what
// the child wrote and no sync made durable is taken back (power_loss.h) before the checks.
inline void RunKillRounds(const std::string& dir, bool sync, int kills, uint64_t seed,
                          bool power_loss, const KillWorkload& workload) {
  const std::string journal = dir + ".journal";
  std::mt19937_64 rng(seed);
  uint64_t next_op = 0;
  for (int round = 0; round < kills; ++round) {
    // Some kills land during recovery at open, most during writes and checkpoints.
    const auto delay =
        std::chrono::microseconds(round % 5 == 0 ? rng() % 20000 : 20000 + rng() % 250000);
    const uint64_t random = rng();
    // A child killed before it starts its journal must not leave the last round's to undo.
    std::filesystem::remove(journal);
    std::vector<uint64_t> acks;
    ASSERT_TRUE(RunChildAndKill(
        [&](int fd) {
          // Watches the Env directory's parent too, where the directory is made.
          if (power_loss) RecordUntilKilled(journal, power_loss_internal::ParentOf(dir));
          workload.write(next_op, random, fd);
        },
        delay, &acks))
        << "round " << round;
    if (power_loss) UndoUnsynced(journal);
    const int64_t acknowledged = acks.empty() ? -1 : static_cast<int64_t>(acks.back());

    if (!std::filesystem::exists(dir)) {
      // Killed before its Env created the directory (a slow start, e.g. under a sanitizer):
      // nothing can have been acknowledged.
      ASSERT_EQ(acknowledged, -1) << "round " << round;
      continue;
    }
    // The last checkpoint is intact whatever the moment of the kill. A file shorter than
    // the header area is a table the kill caught in its creation: the catalog names a table
    // only once its file is written and checkpointed, and the next open removes such a file
    // (a table the catalog names with a short file fails that open, in workload.check()).
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() == ".ft" &&
          std::filesystem::file_size(entry.path()) >= BlockTable::kReservedFileBytes) {
        std::string report;
        ASSERT_EQ(RunFtverify(entry.path().string(), &report), 0)
            << entry.path() << " round " << round << ":\n"
            << report;
      }
    }
    const int64_t prefix = workload.check();
    ASSERT_GE(prefix, 0) << "round " << round;
    if (sync) {
      ASSERT_GE(prefix, acknowledged + 1) << "acknowledged commits lost in round " << round;
    }
    next_op = static_cast<uint64_t>(prefix);
  }
}

// Kill rounds of CrashWriterMain, checkpointing every 1 to 700 operations.
inline void RunCrashRounds(const std::string& dir, bool sync, int kills, uint64_t seed,
                           bool power_loss = false) {
  RunKillRounds(dir, sync, kills, seed, power_loss,
                KillWorkload{[&](uint64_t first, uint64_t random, int fd) {
                               const int checkpoint_every = 1 + static_cast<int>(random % 700);
                               CrashWriterMain(dir, sync, first, checkpoint_every, fd);
                             },
                             [&] { return CheckPrefixState(dir, sync); }});
}

}  // namespace fern::testing

#endif  // FERN_TESTS_DB_CRASH_HARNESS_H_
