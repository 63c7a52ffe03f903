// Money moves between accounts in concurrent transactions while auditors read every
// account in one snapshot. At each isolation level, with reads that rule out a lost update,
// the total never changes and no balance goes negative: in every auditor's view, at the
// end, after a reopen, and after kill -9s of a process moving money.
//
// The reads that keep the total: kSerializable with any read (its read locks make two
// transfers out of one account wait or deadlock, never both commit); kSnapshot with any
// read (a write to a row committed since the snapshot is Busy: first committer wins);
// kReadCommitted and kReadUncommitted with GetForUpdate only (a plain read there may be
// stale by the time of the write, a lost update the contract allows: not tested).
//
// Rows "acct1000".."acct1031" are the accounts; rows "acct1003-17" and the like are filler
// that a churn thread rewrites and deletes in autocommits, so that scans and range locks
// cross rows that are not accounts and the small tree keeps flushing and splitting.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "db/kill_child.h"
#include "db/power_loss.h"
#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

constexpr int kAccounts = 32;
constexpr int64_t kOpening = 1000;
constexpr int64_t kTotal = kAccounts * kOpening;
constexpr std::string_view kAccountPrefix = "acct";

std::string AccountKey(int account) { return "acct" + std::to_string(1000 + account); }
// An account key is the prefix and four digits; filler keys are longer.
bool IsAccountKey(std::string_view key) {
  return key.size() == kAccountPrefix.size() + 4 && key.substr(0, 4) == kAccountPrefix;
}
bool ParseAmount(std::string_view text, int64_t* amount) {
  const char* end = text.data() + text.size();
  auto [at, error] = std::from_chars(text.data(), end, *amount);
  return error == std::errc() && at == end;
}

Options BankOptions(bool sync) {
  Options options;
  options.sync_commits = sync;
  options.cache_bytes = size_t{2} << 20;
  options.lock_timeout_ms = 500;
  options.checkpoint_period_ms = 0;  // the churn thread checkpoints
  return options;
}

enum class ReadWith { kGet, kGetForUpdate, kCursor };

struct BankCase {
  const char* name;
  Isolation isolation;
  ReadWith read;
  bool nested;  // debit in one child, credit in another (which sometimes aborts first)
};
void PrintTo(const BankCase& bank, std::ostream* os) { *os << bank.name; }

// Records the first failure any thread sees; the others stop at the next check.
class FailureLog {
 public:
  void Add(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (first_.empty()) first_ = what;
    failed_.store(true);
  }
  bool failed() const { return failed_.load(); }
  std::string first() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_;
  }

 private:
  std::mutex mu_;
  std::string first_;
  std::atomic<bool> failed_{false};
};

bool Retryable(const Status& s) { return s.IsBusy() || s.IsDeadlock(); }

Status ReadBalance(Table* table, Txn* txn, ReadWith how, int account, int64_t* balance) {
  const std::string key = AccountKey(account);
  std::string value;
  Status s;
  switch (how) {
    case ReadWith::kGet:
      s = table->Get(txn, key, &value);
      break;
    case ReadWith::kGetForUpdate:
      s = table->GetForUpdate(txn, key, &value);
      break;
    case ReadWith::kCursor: {
      std::unique_ptr<Cursor> cursor = table->NewCursor(txn);
      cursor->Seek(key);
      s = cursor->status();
      if (s.ok() && (!cursor->Valid() || cursor->key() != key)) {
        return Status::Corruption("a cursor seeking " + key + " did not land on it");
      }
      if (s.ok()) value = std::string(cursor->value());
      break;
    }
  }
  if (!s.ok()) return s;
  if (!ParseAmount(value, balance)) return Status::Corruption(key + " holds '" + value + "'");
  return Status::OK();
}

Status PutBalance(Table* table, Txn* txn, int account, int64_t balance) {
  return table->Put(txn, AccountKey(account), std::to_string(balance));
}

// One attempt to move up to `want` from `from` to `to` (never more than `from` holds).
// Busy or Deadlock: the caller retries. `extra_key`, if not empty, is set to `extra_value`
// in the same transaction.
Status TryTransfer(Env* env, Table* table, const BankCase& bank, int from, int to, int64_t want,
                   std::mt19937_64& rng, const std::string& extra_key = {},
                   const std::string& extra_value = {}) {
  TxnOptions options;
  options.isolation = bank.isolation;
  std::unique_ptr<Txn> txn;
  Status s = env->Begin(options, &txn);
  if (!s.ok()) return s;
  std::unique_ptr<Txn> debit;
  if (bank.nested) {
    s = txn->BeginChild(&debit);
    if (!s.ok()) return s;
  }
  Txn* reader = bank.nested ? debit.get() : txn.get();
  int64_t from_balance;
  int64_t to_balance;
  s = ReadBalance(table, reader, bank.read, from, &from_balance);
  if (s.ok()) s = ReadBalance(table, reader, bank.read, to, &to_balance);
  if (!s.ok()) return s;
  // Between the reads and the writes, so that other transfers interleave more often.
  std::this_thread::yield();
  const int64_t amount = std::min(want, from_balance);
  s = PutBalance(table, reader, from, from_balance - amount);
  if (!s.ok()) return s;
  Txn* writer = txn.get();
  std::unique_ptr<Txn> credit;
  if (bank.nested) {
    s = debit->Commit();
    if (!s.ok()) return s;
    s = txn->BeginChild(&credit);
    if (!s.ok()) return s;
    if (rng() % 3 == 0) {
      // A child that writes a wrong balance and aborts leaves no trace.
      s = PutBalance(table, credit.get(), to, 999999);
      if (!s.ok()) return s;
      s = credit->Abort();
      if (!s.ok()) return s;
      s = txn->BeginChild(&credit);
      if (!s.ok()) return s;
    }
    writer = credit.get();
  }
  s = PutBalance(table, writer, to, to_balance + amount);
  if (s.ok() && !extra_key.empty()) s = table->Put(writer, extra_key, extra_value);
  if (!s.ok()) return s;
  if (bank.nested) {
    s = credit->Commit();
    if (!s.ok()) return s;
  }
  return txn->Commit();
}

// Sums the accounts `cursor` sees. Returns false with `problem` set if the view is wrong:
// an account missing, unreadable or negative, or a total other than kTotal. A cursor that
// stops on Busy or Deadlock sets `retry` instead.
bool AuditCursor(Cursor* cursor, std::string* problem, bool* retry) {
  *retry = false;
  int accounts = 0;
  int64_t total = 0;
  for (cursor->Seek(kAccountPrefix); cursor->Valid(); cursor->Next()) {
    const std::string_view key = cursor->key();
    if (key.substr(0, kAccountPrefix.size()) != kAccountPrefix) break;
    if (!IsAccountKey(key)) continue;
    int64_t balance;
    if (!ParseAmount(cursor->value(), &balance) || balance < 0) {
      *problem = std::string(key) + " holds '" + std::string(cursor->value()) + "'";
      return false;
    }
    ++accounts;
    total += balance;
  }
  if (!cursor->status().ok()) {
    if (Retryable(cursor->status())) {
      *retry = true;
      return true;
    }
    *problem = "the audit's cursor failed: " + cursor->status().ToString();
    return false;
  }
  if (accounts != kAccounts || total != kTotal) {
    *problem = "an audit saw " + std::to_string(accounts) + " accounts holding " +
               std::to_string(total) + " (expected " + std::to_string(kAccounts) + " holding " +
               std::to_string(kTotal) + ")";
    return false;
  }
  return true;
}

// Sums the accounts with one Get each in `txn`.
bool AuditGets(Table* table, Txn* txn, std::string* problem, bool* retry) {
  *retry = false;
  int64_t total = 0;
  for (int account = 0; account < kAccounts; ++account) {
    int64_t balance;
    Status s = ReadBalance(table, txn, ReadWith::kGet, account, &balance);
    if (Retryable(s)) {
      *retry = true;
      return true;
    }
    if (!s.ok() || balance < 0) {
      *problem =
          "reading " + AccountKey(account) + ": " + s.ToString() + " " + std::to_string(balance);
      return false;
    }
    total += balance;
  }
  if (total != kTotal) {
    *problem = "a point-read audit saw a total of " + std::to_string(total);
    return false;
  }
  return true;
}

Status OpenAccounts(Env* env, Table* table) {
  std::unique_ptr<Txn> txn;
  Status s = env->Begin(TxnOptions(), &txn);
  for (int account = 0; s.ok() && account < kAccounts; ++account) {
    s = PutBalance(table, txn.get(), account, kOpening);
  }
  return s.ok() ? txn->Commit() : s;
}

// Checks the committed state: every account present and non-negative, the total kTotal.
void ExpectBooksBalance(Table* table, const std::string& when) {
  std::unique_ptr<Cursor> cursor = table->NewCursor(nullptr);
  std::string problem;
  bool retry;
  EXPECT_TRUE(AuditCursor(cursor.get(), &problem, &retry)) << when << ": " << problem;
  EXPECT_FALSE(retry) << when;
}

class BankTest : public ::testing::TestWithParam<BankCase> {};

TEST_P(BankTest, TransfersKeepTheTotalInEveryAuditorsView) {
  const BankCase bank = GetParam();
  testing::ScratchDir dir;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), BankOptions(false), &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("bank", testing::SmallTreeOptions(), &table).ok());
  ASSERT_TRUE(OpenAccounts(env.get(), table).ok());

  constexpr int kMovers = 4;
  constexpr int kTransfersEach = 300;
  FailureLog failures;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> busy{0};
  std::atomic<int64_t> deadlocks{0};
  std::atomic<int64_t> audits{0};

  std::vector<std::thread> movers;
  for (int m = 0; m < kMovers; ++m) {
    movers.emplace_back([&, m] {
      std::mt19937_64 rng(1000 + m);
      for (int done = 0; done < kTransfersEach && !failures.failed();) {
        const int from = static_cast<int>(rng() % kAccounts);
        const int to = (from + 1 + static_cast<int>(rng() % (kAccounts - 1))) % kAccounts;
        Status s = TryTransfer(env.get(), table, bank, from, to, 1 + rng() % 300, rng);
        if (s.ok()) {
          ++done;
        } else if (Retryable(s)) {
          ++(s.IsBusy() ? busy : deadlocks);
          std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
        } else {
          failures.Add("a transfer failed: " + s.ToString());
        }
      }
    });
  }

  // Auditors: a snapshot transaction's cursor, a cursor with no transaction, a snapshot
  // transaction's point reads, and (for kSerializable) a serializable scan.
  std::vector<std::thread> auditors;
  for (int kind = 0; kind < (bank.isolation == Isolation::kSerializable ? 4 : 3); ++kind) {
    auditors.emplace_back([&, kind] {
      while (!stop.load() && !failures.failed()) {
        std::string problem;
        bool retry = false;
        bool fine;
        if (kind == 1) {
          std::unique_ptr<Cursor> cursor = table->NewCursor(nullptr);
          fine = AuditCursor(cursor.get(), &problem, &retry);
        } else {
          TxnOptions options;
          options.isolation = kind == 3 ? Isolation::kSerializable : Isolation::kSnapshot;
          std::unique_ptr<Txn> txn;
          Status s = env->Begin(options, &txn);
          if (!s.ok()) {
            failures.Add("an auditor's Begin failed: " + s.ToString());
            return;
          }
          if (kind == 2) {
            fine = AuditGets(table, txn.get(), &problem, &retry);
          } else {
            std::unique_ptr<Cursor> cursor = table->NewCursor(txn.get());
            fine = AuditCursor(cursor.get(), &problem, &retry);
          }
          if (fine && !retry) {
            s = txn->Commit();
            if (!s.ok()) problem = "an auditor's read-only commit failed: " + s.ToString();
            fine = s.ok();
          }
        }
        if (!fine) failures.Add(problem);
        if (!retry) ++audits;
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // leave the movers CPU
      }
    });
  }

  // Churn: filler rows between the accounts, checkpoints and Optimize.
  std::thread churn([&] {
    std::mt19937_64 rng(7);
    for (int round = 0; !stop.load() && !failures.failed(); ++round) {
      const std::string filler =
          AccountKey(static_cast<int>(rng() % kAccounts)) + "-" + std::to_string(rng() % 40);
      Status s = rng() % 4 == 0 ? table->Delete(nullptr, filler)
                                : table->Put(nullptr, filler, std::string(100 + rng() % 400, 'f'));
      if (!s.ok() && !Retryable(s) && !s.IsNotFound()) {
        failures.Add("a filler write failed: " + s.ToString());
      }
      if (round % 50 == 0) s = env->Checkpoint();
      if (round % 50 == 0 && !s.ok()) failures.Add("Checkpoint failed: " + s.ToString());
      if (round % 400 == 0) s = table->Optimize();
      if (round % 400 == 0 && !s.ok()) failures.Add("Optimize failed: " + s.ToString());
    }
  });

  for (std::thread& mover : movers) mover.join();
  stop.store(true);
  for (std::thread& auditor : auditors) auditor.join();
  churn.join();
  ASSERT_FALSE(failures.failed()) << failures.first();
  EXPECT_GT(audits.load(), 0);

  ExpectBooksBalance(table, "after the transfers");
  env.reset();
  ASSERT_TRUE(Env::Open(dir.path(), BankOptions(false), &env).ok());
  ASSERT_TRUE(env->OpenTable("bank", testing::SmallTreeOptions(), &table).ok());
  ExpectBooksBalance(table, "after a reopen");
  std::printf("[ %s ] %d transfers, retried after %lld Busy and %lld Deadlock, %lld audits\n",
              bank.name, kMovers * kTransfersEach, static_cast<long long>(busy.load()),
              static_cast<long long>(deadlocks.load()), static_cast<long long>(audits.load()));
}

INSTANTIATE_TEST_SUITE_P(
    IsolationLevels, BankTest,
    ::testing::Values(
        BankCase{"SerializableGet", Isolation::kSerializable, ReadWith::kGet, false},
        BankCase{"SerializableCursor", Isolation::kSerializable, ReadWith::kCursor, false},
        BankCase{"SerializableNested", Isolation::kSerializable, ReadWith::kGet, true},
        BankCase{"SnapshotGet", Isolation::kSnapshot, ReadWith::kGet, false},
        BankCase{"SnapshotCursorNested", Isolation::kSnapshot, ReadWith::kCursor, true},
        BankCase{"SnapshotGetForUpdate", Isolation::kSnapshot, ReadWith::kGetForUpdate, false},
        BankCase{"ReadCommittedGetForUpdate", Isolation::kReadCommitted, ReadWith::kGetForUpdate,
                 false},
        BankCase{"ReadCommittedGetForUpdateNested", Isolation::kReadCommitted,
                 ReadWith::kGetForUpdate, true},
        BankCase{"ReadUncommittedGetForUpdate", Isolation::kReadUncommitted,
                 ReadWith::kGetForUpdate, false}),
    [](const ::testing::TestParamInfo<BankCase>& info) { return std::string(info.param.name); });

// Two doctors on call; each goes off call if both rows say both are on. Both transactions
// read both rows, then each writes its own row. kSnapshot lets both commit (write skew,
// which snapshot isolation allows); under kSerializable each write waits for the other's
// read lock, one of the two gets Deadlock at once, and a doctor stays on call.
void RunDoctorsOnCall(Isolation isolation, int* on_call, int* deadlocks) {
  testing::ScratchDir dir;
  Options options = BankOptions(false);
  options.lock_timeout_ms = 10000;  // a wait that ends in Busy would take 10 s
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* table;
  ASSERT_TRUE(env->OpenTable("call", TableOptions(), &table).ok());
  ASSERT_TRUE(table->Put(nullptr, "doctor0", "on").ok());
  ASSERT_TRUE(table->Put(nullptr, "doctor1", "on").ok());
  std::barrier both_read(2);
  std::atomic<int> deadlocked{0};
  auto doctor = [&](int self) {
    TxnOptions txn_options;
    txn_options.isolation = isolation;
    std::unique_ptr<Txn> txn;
    ASSERT_TRUE(env->Begin(txn_options, &txn).ok());
    int on = 0;
    for (const char* key : {"doctor0", "doctor1"}) {
      std::string value;
      ASSERT_TRUE(table->Get(txn.get(), key, &value).ok());
      on += value == "on";
    }
    both_read.arrive_and_wait();
    if (on < 2) return;
    Status s = table->Put(txn.get(), "doctor" + std::to_string(self), "off");
    if (s.IsDeadlock()) {
      ++deadlocked;
      return;  // the transaction aborts as it goes
    }
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(txn->Commit().ok());
  };
  const auto start = std::chrono::steady_clock::now();
  std::thread first(doctor, 0);
  std::thread second(doctor, 1);
  first.join();
  second.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5))
      << "the deadlock was not broken at once";
  *on_call = 0;
  for (const char* key : {"doctor0", "doctor1"}) {
    std::string value;
    ASSERT_TRUE(table->Get(nullptr, key, &value).ok());
    *on_call += value == "on";
  }
  *deadlocks = deadlocked.load();
}

TEST(WriteSkewTest, SerializableKeepsADoctorOnCall) {
  int on_call = -1;
  int deadlocks = -1;
  RunDoctorsOnCall(Isolation::kSerializable, &on_call, &deadlocks);
  EXPECT_EQ(on_call, 1);
  EXPECT_EQ(deadlocks, 1);
}

TEST(WriteSkewTest, SnapshotIsolationAllowsWriteSkew) {
  int on_call = -1;
  int deadlocks = -1;
  RunDoctorsOnCall(Isolation::kSnapshot, &on_call, &deadlocks);
  EXPECT_EQ(on_call, 0) << "both transactions commit under kSnapshot (docs/transactions.md)";
  EXPECT_EQ(deadlocks, 0);
}

// The crash test's child: opens the Env (recovering), opens the accounts if they are not
// there yet, and moves money from two threads until it is killed. Each transfer also sets
// the row "seq<thread>" to its sequence number, which is written to `fd` once Commit
// returned OK.
[[noreturn]] void CrashingBankMain(const std::string& dir, bool sync, uint64_t seed, int fd) {
  std::unique_ptr<Env> env;
  if (!Env::Open(dir, BankOptions(sync), &env).ok()) ::_exit(3);
  Table* table;
  if (!env->OpenTable("bank", testing::SmallTreeOptions(), &table).ok()) ::_exit(4);
  std::string value;
  Status s = table->Get(nullptr, AccountKey(0), &value);
  if (s.IsNotFound()) s = OpenAccounts(env.get(), table);
  if (!s.ok()) ::_exit(5);
  std::vector<std::thread> movers;
  for (uint32_t m = 0; m < 2; ++m) {
    movers.emplace_back([&, m] {
      const std::string seq_key = "seq" + std::to_string(m);
      std::string last;
      uint32_t seq = 0;
      if (table->Get(nullptr, seq_key, &last).ok()) seq = static_cast<uint32_t>(std::stoul(last));
      std::mt19937_64 rng(seed * 2 + m);
      const BankCase bank{"crash", m == 0 ? Isolation::kSerializable : Isolation::kSnapshot,
                          ReadWith::kGet, m == 1};
      for (;;) {
        const int from = static_cast<int>(rng() % kAccounts);
        const int to = (from + 1 + static_cast<int>(rng() % (kAccounts - 1))) % kAccounts;
        Status t = TryTransfer(env.get(), table, bank, from, to, 1 + rng() % 300, rng, seq_key,
                               std::to_string(seq + 1));
        if (Retryable(t)) continue;
        if (!t.ok()) ::_exit(6);
        ++seq;
        const uint64_t acknowledged = (uint64_t{m} << 32) | seq;
        if (::write(fd, &acknowledged, sizeof(acknowledged)) != sizeof(acknowledged)) ::_exit(7);
      }
    });
  }
  for (int round = 0;; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!env->Checkpoint().ok()) ::_exit(8);
  }
}

// With `power_loss`, each kill also takes back what no sync made durable (power_loss.h).
void RunBankCrashRounds(bool sync, int kills, bool power_loss = false) {
  testing::ScratchDir dir;
  const std::string path = dir.Sub("bank");
  const std::string journal = dir.Sub("journal");
  std::mt19937_64 rng(sync ? 11 : 12);
  uint32_t durable[2] = {0, 0};  // with sync: each thread's acknowledged sequence number
  for (int round = 0; round < kills; ++round) {
    const uint64_t seed = rng();
    std::vector<uint64_t> acks;
    std::filesystem::remove(journal);
    ASSERT_TRUE(testing::RunChildAndKill(
        [&](int fd) {
          if (power_loss) testing::RecordUntilKilled(journal, dir.path());
          CrashingBankMain(path, sync, seed, fd);
        },
        std::chrono::milliseconds(50 + rng() % 400), &acks))
        << "kill " << round;
    if (power_loss) testing::UndoUnsynced(journal);
    for (uint64_t acknowledged : acks) {
      const uint32_t thread = static_cast<uint32_t>(acknowledged >> 32);
      ASSERT_LT(thread, 2u);
      durable[thread] = std::max(durable[thread], static_cast<uint32_t>(acknowledged));
    }

    if (!std::filesystem::exists(path)) continue;  // killed before the Env existed
    std::unique_ptr<Env> env;
    Status s = Env::Open(path, BankOptions(sync), &env);
    ASSERT_TRUE(s.ok()) << "recovery after kill " << round << ": " << s.ToString();
    Table* table;
    ASSERT_TRUE(env->OpenTable("bank", testing::SmallTreeOptions(), &table).ok());
    std::string value;
    if (table->Get(nullptr, AccountKey(0), &value).IsNotFound()) {
      // Killed before the accounts were opened: nothing was acknowledged.
      ASSERT_EQ(durable[0] + durable[1], 0u) << "kill " << round;
      continue;
    }
    ExpectBooksBalance(table, "after kill " + std::to_string(round));
    for (uint32_t thread = 0; thread < 2; ++thread) {
      std::string seq = "0";
      s = table->Get(nullptr, "seq" + std::to_string(thread), &seq);
      ASSERT_TRUE(s.ok() || s.IsNotFound()) << s.ToString();
      if (sync) {
        EXPECT_GE(std::stoul(seq), durable[thread])
            << "thread " << thread << "'s acknowledged transfers were lost at kill " << round;
      }
      // The next child goes on from what survived.
      durable[thread] = sync ? durable[thread] : 0;
    }
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(BankCrashTest, SyncedTransfersSurviveKillsAndKeepTheTotal) { RunBankCrashRounds(true, 8); }

TEST(BankCrashTest, UnsyncedTransfersKeepTheTotalAcrossKills) { RunBankCrashRounds(false, 8); }

TEST(BankCrashTest, SyncedTransfersSurvivePowerLossAndKeepTheTotal) {
  RunBankCrashRounds(true, 8, /*power_loss=*/true);
}

TEST(BankCrashTest, UnsyncedTransfersKeepTheTotalAcrossPowerLoss) {
  RunBankCrashRounds(false, 8, /*power_loss=*/true);
}

}  // namespace
}  // namespace fern
