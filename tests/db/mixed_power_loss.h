// A mixed workload for power-loss rounds (power_loss.h): operation i is one root transaction
// on tables "a" and "b" (multi-row and multi-table writes, 80 KiB values kept in value
// blocks, deletes, inserts, committed and aborted children, XA) that also sets a["~progress"]
// to i, so that the rows recovered name the prefix of operations they must equal. Between
// operations the writer checkpoints, drops and re-creates a table, and bulk loads another.
#ifndef FERN_TESTS_DB_MIXED_POWER_LOSS_H_
#define FERN_TESTS_DB_MIXED_POWER_LOSS_H_

#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "db/crash_harness.h"
#include "db/power_loss.h"
#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"
#include "util/status_macros.h"

namespace fern::testing {

inline constexpr uint64_t kMixedKeys = 1500;
inline constexpr int kLoadRows = 500;
inline constexpr int kChurnRows = 20;

inline std::string MixedKey(uint64_t i, uint64_t salt) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "k%05llu",
                static_cast<unsigned long long>((i * 7919 + salt * 104729) % kMixedKeys));
  return buf;
}
inline std::string MixedValue(uint64_t i) {
  return "v" + std::to_string(i) + std::string(i % 3 == 0 ? 300 : 20, 'x');
}
inline std::string BigValue(uint64_t i) {
  std::string value;
  const std::string piece = std::to_string(i) + ".";
  while (value.size() < (80 << 10)) value += piece;
  return value;
}
inline std::string InsertedKey(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "ins%08llu", static_cast<unsigned long long>(i));
  return buf;
}
inline std::string LoadKey(int r) { return "load" + std::to_string(100000 + r); }
inline constexpr const char* kProgressKey = "~progress";
inline std::string PreparedXid(uint64_t i) { return "op" + std::to_string(i); }

struct MixedState {
  std::map<std::string, std::string> a, b;
  bool operator==(const MixedState&) const = default;
};

// What operation i does to tables a and b once committed.
inline void ApplyMixedOp(uint64_t i, MixedState* state) {
  switch (i % 6) {
    case 0:
      state->a[MixedKey(i, 0)] = MixedValue(i);
      state->a[MixedKey(i, 1)] = MixedValue(i);
      state->b[MixedKey(i, 2)] = MixedValue(i);
      break;
    case 1:
      state->a[MixedKey(i, 3)] = BigValue(i);
      break;
    case 2:
      state->a.erase(MixedKey(i, 4));
      state->b.erase(MixedKey(i, 5));
      break;
    case 3:
      state->b[MixedKey(i, 6)] = MixedValue(i);
      state->a[MixedKey(i, 7)] = MixedValue(i);  // by a committed child
      break;
    case 4:
      state->a[InsertedKey(i)] = MixedValue(i);
      break;
    case 5:
      break;  // only an aborted child wrote
  }
  state->a[kProgressKey] = std::to_string(i);
}

inline Status RunMixedOp(Env* env, Table* a, Table* b, uint64_t i) {
  std::unique_ptr<Txn> txn;
  FERN_RETURN_IF_ERROR(env->Begin(TxnOptions(), &txn));
  auto aborted_child = [&](uint64_t salt) -> Status {
    std::unique_ptr<Txn> child;
    FERN_RETURN_IF_ERROR(txn->BeginChild(&child));
    FERN_RETURN_IF_ERROR(a->Put(child.get(), MixedKey(i, salt), "never"));
    FERN_RETURN_IF_ERROR(b->Put(child.get(), MixedKey(i, salt), "never"));
    return child->Abort();
  };
  switch (i % 6) {
    case 0:
      FERN_RETURN_IF_ERROR(a->Put(txn.get(), MixedKey(i, 0), MixedValue(i)));
      FERN_RETURN_IF_ERROR(a->Put(txn.get(), MixedKey(i, 1), MixedValue(i)));
      FERN_RETURN_IF_ERROR(b->Put(txn.get(), MixedKey(i, 2), MixedValue(i)));
      break;
    case 1:
      FERN_RETURN_IF_ERROR(a->Put(txn.get(), MixedKey(i, 3), BigValue(i)));
      break;
    case 2:
      FERN_RETURN_IF_ERROR(a->Delete(txn.get(), MixedKey(i, 4)));
      FERN_RETURN_IF_ERROR(b->Delete(txn.get(), MixedKey(i, 5)));
      break;
    case 3: {
      FERN_RETURN_IF_ERROR(b->Put(txn.get(), MixedKey(i, 6), MixedValue(i)));
      std::unique_ptr<Txn> child;
      FERN_RETURN_IF_ERROR(txn->BeginChild(&child));
      FERN_RETURN_IF_ERROR(a->Put(child.get(), MixedKey(i, 7), MixedValue(i)));
      FERN_RETURN_IF_ERROR(child->Commit());
      FERN_RETURN_IF_ERROR(aborted_child(8));
      break;
    }
    case 4:
      FERN_RETURN_IF_ERROR(a->Insert(txn.get(), InsertedKey(i), MixedValue(i)));
      break;
    case 5:
      FERN_RETURN_IF_ERROR(aborted_child(9));
      break;
  }
  FERN_RETURN_IF_ERROR(a->Put(txn.get(), kProgressKey, std::to_string(i)));
  // Every sixth operation goes through both phases of XA; a power loss between them leaves
  // it prepared, for CheckMixedState to commit as its coordinator would.
  if (i % 6 == 5) FERN_RETURN_IF_ERROR(txn->Prepare(PreparedXid(i)));
  return txn->Commit();
}

inline Options MixedOptions(bool sync) {
  Options options;
  options.sync_commits = sync;
  options.cache_bytes = size_t{4} << 20;
  options.checkpoint_period_ms = 300;
  return options;
}

// Drops and re-creates table `name` (absent at first is fine); returns it.
inline Status Recreate(Env* env, const char* name, Table** table) {
  Status dropped = env->DropTable(name);
  if (!dropped.ok() && !dropped.IsNotFound()) return dropped;
  return env->OpenTable(name, SmallTreeOptions(), table);
}

inline Status SideWork(Env* env, uint64_t i) {
  if (i % 97 == 50) FERN_RETURN_IF_ERROR(env->Checkpoint());
  if (i % 211 == 100) {
    Table* churn;
    FERN_RETURN_IF_ERROR(Recreate(env, "churn", &churn));
    for (int r = 0; r < kChurnRows; ++r) {
      FERN_RETURN_IF_ERROR(churn->Put(nullptr, MixedKey(i, r), MixedValue(i)));
    }
  }
  if (i % 307 == 200) {
    Table* load;
    FERN_RETURN_IF_ERROR(Recreate(env, "load", &load));
    std::unique_ptr<Loader> loader;
    FERN_RETURN_IF_ERROR(env->NewLoader(load, &loader));
    for (int r = kLoadRows - 1; r >= 0; --r) {
      FERN_RETURN_IF_ERROR(loader->Add(LoadKey(r), MixedValue(static_cast<uint64_t>(r))));
    }
    FERN_RETURN_IF_ERROR(loader->Finish());
  }
  return Status::OK();
}

[[noreturn]] inline void MixedWriterMain(const std::string& dir, bool sync, uint64_t first,
                                         int fd) {
  std::unique_ptr<Env> env;
  if (!Env::Open(dir, MixedOptions(sync), &env).ok()) ::_exit(3);
  Table* a;
  Table* b;
  if (!env->OpenTable("a", SmallTreeOptions(), &a).ok()) ::_exit(4);
  if (!env->OpenTable("b", SmallTreeOptions(), &b).ok()) ::_exit(4);
  for (uint64_t i = first;; ++i) {
    if (!RunMixedOp(env.get(), a, b, i).ok()) ::_exit(5);
    if (::write(fd, &i, sizeof(i)) != sizeof(i)) ::_exit(6);
    if (!SideWork(env.get(), i).ok()) ::_exit(7);
  }
}

inline ::testing::AssertionResult ReadTable(Table* table,
                                            std::map<std::string, std::string>* rows) {
  auto cursor = table->NewCursor(nullptr);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    rows->emplace(std::string(cursor->key()), std::string(cursor->value()));
  }
  if (!cursor->status().ok()) {
    return ::testing::AssertionFailure() << table->name() << ": " << cursor->status().ToString();
  }
  return ::testing::AssertionSuccess();
}

// Opens the Env after a power loss and checks it: a and b hold exactly the state after a
// prefix of the operations (returned), "load" is empty or whole, "churn" reads to its end.
inline int64_t CheckMixedState(const std::string& dir, bool sync) {
  std::unique_ptr<Env> env;
  Status s = Env::Open(dir, MixedOptions(sync), &env);
  EXPECT_TRUE(s.ok()) << "recovery failed: " << s.ToString();
  if (!s.ok()) return -1;
  // An operation prepared but not committed before the power loss: its prepare was
  // durable, so it is back, and it can only be the next operation.
  std::vector<std::unique_ptr<Txn>> prepared;
  s = env->RecoverPrepared(&prepared);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_LE(prepared.size(), size_t{1});
  for (std::unique_ptr<Txn>& txn : prepared) {
    const std::string xid = txn->xid();
    EXPECT_TRUE(xid.size() > 2 && std::stoll(xid.substr(2)) % 6 == 5) << xid;
    s = txn->Commit();
    EXPECT_TRUE(s.ok()) << "committing the recovered " << xid << ": " << s.ToString();
  }
  MixedState found;
  Table* a;
  Table* b;
  EXPECT_TRUE(env->OpenTable("a", SmallTreeOptions(), &a).ok());
  EXPECT_TRUE(env->OpenTable("b", SmallTreeOptions(), &b).ok());
  EXPECT_TRUE(ReadTable(a, &found.a));
  EXPECT_TRUE(ReadTable(b, &found.b));
  int64_t prefix = 0;
  if (auto it = found.a.find(kProgressKey); it != found.a.end()) {
    prefix = std::stoll(it->second) + 1;
  }
  MixedState model;
  for (int64_t i = 0; i < prefix; ++i) ApplyMixedOp(static_cast<uint64_t>(i), &model);
  if (!(model == found)) {
    ADD_FAILURE() << "tables a and b are not the state after the first " << prefix
                  << " operations (a: " << found.a.size() << " rows, expected " << model.a.size()
                  << "; b: " << found.b.size() << ", expected " << model.b.size() << ")";
    return -1;
  }
  Table* load;
  EXPECT_TRUE(env->OpenTable("load", SmallTreeOptions(), &load).ok());
  std::map<std::string, std::string> loaded;
  EXPECT_TRUE(ReadTable(load, &loaded));
  EXPECT_TRUE(loaded.empty() || loaded.size() == kLoadRows)
      << "a bulk load left " << loaded.size() << " of its " << kLoadRows << " rows";
  for (const auto& [key, value] : loaded) {
    EXPECT_EQ(value, MixedValue(static_cast<uint64_t>(std::stoi(key.substr(4)) - 100000)));
  }
  Table* churn;
  EXPECT_TRUE(env->OpenTable("churn", SmallTreeOptions(), &churn).ok());
  std::map<std::string, std::string> churned;
  EXPECT_TRUE(ReadTable(churn, &churned));
  EXPECT_LE(churned.size(), static_cast<size_t>(kChurnRows));
  return prefix;
}

// Power-loss rounds of the mixed workload (RunKillRounds).
inline void RunMixedPowerLossRounds(const std::string& dir, bool sync, int kills, uint64_t seed) {
  RunKillRounds(
      dir, sync, kills, seed, /*power_loss=*/true,
      KillWorkload{[&](uint64_t first, uint64_t, int fd) { MixedWriterMain(dir, sync, first, fd); },
                   [&] { return CheckMixedState(dir, sync); }});
}

}  // namespace fern::testing

#endif  // FERN_TESTS_DB_MIXED_POWER_LOSS_H_
