// The memory budget: loading the WORKLOADS.md data set (2,000,000 rows of 16-byte keys and
// 100-byte values) into an Env with cache_bytes = 32 MiB keeps the process's peak RSS under
// 160 MiB. The load runs in a child process so the figure is its own.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// WORKLOADS.md: 50 pseudo-random bytes from splitmix64 seeded with i, then the same again.
std::string WorkloadValue(uint64_t i) {
  char half[50];
  uint64_t state = i;
  for (int word = 0; word < 7; ++word) {
    uint64_t v = SplitMix64(&state);
    for (int b = 0; b < 8 && word * 8 + b < 50; ++b)
      half[word * 8 + b] = static_cast<char>(v >> (8 * b));
  }
  std::string value(half, 50);
  value.append(half, 50);
  return value;
}

std::string WorkloadKey(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016" PRIu64, i);
  return buf;
}

// Loads n rows in the WORKLOADS.md random order from `threads` threads (each a contiguous
// slice of the order, as fernbench --threads does), with the background threads on, and
// returns peak RSS in KiB (or -1).
long LoadAndMeasure(const std::string& dir, uint64_t n, int threads) {
  Options options;
  options.cache_bytes = size_t{32} << 20;
  options.sync_commits = false;
  std::unique_ptr<Env> env;
  if (!Env::Open(dir, options, &env).ok()) return -1;
  Table* table;
  if (!env->OpenTable("data", TableOptions(), &table).ok()) return -1;
  for (uint64_t j = 0; j < n; ++j) {
    uint64_t i =
        static_cast<uint64_t>((static_cast<unsigned __int128>(j) * 2654435761u + 12345) % n);
    if (!table->Put(nullptr, WorkloadKey(i), WorkloadValue(i)).ok()) return -1;
  }
  std::string v;
  if (!table->Get(nullptr, WorkloadKey(n / 3), &v).ok() || v != WorkloadValue(n / 3)) return -1;
  env.reset();
  struct rusage usage;
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;  // shadow memory makes RSS meaningless
#else
constexpr bool kSanitized = false;
#endif

// Runs `fn` in a forked child (so that the memory figures are its own) and returns its
// result through a pipe; false if the child did not report one.
template <typename T>
bool RunInChild(const std::function<T()>& fn, T* out) {
  int fds[2];
  if (::pipe(fds) != 0) return false;
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::close(fds[0]);
    T result = fn();
    ssize_t ignored = ::write(fds[1], &result, sizeof(result));
    (void)ignored;
    ::_exit(0);
  }
  ::close(fds[1]);
  const bool got = ::read(fds[0], out, sizeof(T)) == static_cast<ssize_t>(sizeof(T));
  ::close(fds[0]);
  int status;
  ::waitpid(pid, &status, 0);
  return got;
}

void CheckPeakRss(int threads) {
  testing::ScratchDir dir;
  long rss_kb = -1;
  ASSERT_TRUE(
      RunInChild<long>([&] { return LoadAndMeasure(dir.path(), 2'000'000, threads); }, &rss_kb));
  ASSERT_GT(rss_kb, 0) << "the load failed in the child";
  std::printf(
      "peak RSS loading 2,000,000 rows from %d thread(s) with a 32 MiB cache: %ld KiB "
      "(%.1f MiB)\n",
      threads, rss_kb, rss_kb / 1024.0);
  EXPECT_LT(rss_kb, 160 * 1024);
}

TEST(MemoryTest, TwoMillionRowsIn32MiBCacheStayUnder160MiBRss) {
  if (kSanitized) GTEST_SKIP() << "RSS is not measured in sanitizer builds";
  CheckPeakRss(1);
}

TEST(MemoryTest, TwoThreadsLoadingTwoMillionRowsIn32MiBCacheStayUnder160MiBRss) {
  if (kSanitized) GTEST_SKIP() << "RSS is not measured in sanitizer builds";
  CheckPeakRss(2);
}

long CurrentRssKib() {
  long pages = 0;
  long resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  const int got = std::fscanf(f, "%ld %ld", &pages, &resident);
  std::fclose(f);
  return got == 2 ? resident * (::sysconf(_SC_PAGESIZE) / 1024) : -1;
}

// One transaction of 300,000 rows: its write set spills to its rollback file past 8 MiB and
// its row locks escalate past 131,072, so what it holds outside the cache stays bounded
// while it runs, and what it holds goes once it has committed, even while the caller keeps
// the ended transaction object. Returns {RSS before commit, RSS after} in KiB, or {-1, -1}.
constexpr long kBigTransactionRssKib = 64 * 1024;

std::pair<long, long> BigTransactionRss(const std::string& dir) {
  Options options;
  options.cache_bytes = size_t{16} << 20;
  options.sync_commits = false;
  std::unique_ptr<Env> env;
  if (!Env::Open(dir, options, &env).ok()) return {-1, -1};
  Table* table;
  if (!env->OpenTable("data", TableOptions(), &table).ok()) return {-1, -1};
  std::unique_ptr<Txn> txn;
  if (!env->Begin(TxnOptions(), &txn).ok()) return {-1, -1};
  for (uint64_t i = 0; i < 300'000; ++i) {
    const uint64_t k = (i * 2654435761u) % 300'000;
    if (!table->Put(txn.get(), WorkloadKey(k), WorkloadValue(k)).ok()) return {-1, -1};
  }
  const long before = CurrentRssKib();
  if (!txn->Commit().ok()) return {-1, -1};
  std::string v;
  for (uint64_t i = 0; i < 1000; ++i) {  // reads bring the evictor round
    if (!table->Get(nullptr, WorkloadKey(i * 7), &v).ok()) return {-1, -1};
  }
  // The evictor and the flushers settle the commit's messages in the background: on a busy
  // machine that can take longer than usual, so the figure is taken once it is within the
  // bound the test checks, or after 10 s.
  long after = CurrentRssKib();
  for (int i = 0; i < 100 && after >= kBigTransactionRssKib; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = CurrentRssKib();
  }
  return {before, after};
}

// A load of big values into a small cache: each value is a run of its own, and a merge of
// runs holds one block of each run it reads, a whole value here. Returns the peak RSS in
// KiB after the last Add and after Finish, or {-1, -1}.
std::pair<long, long> BigValueLoadRss(const std::string& dir) {
  Options options;
  options.cache_bytes = size_t{4} << 20;
  std::unique_ptr<Env> env;
  if (!Env::Open(dir, options, &env).ok()) return {-1, -1};
  Table* table;
  if (!env->OpenTable("data", TableOptions(), &table).ok()) return {-1, -1};
  std::unique_ptr<Loader> loader;
  if (!env->NewLoader(table, &loader).ok()) return {-1, -1};
  std::string value(size_t{8} << 20, 'v');
  for (int i = 0; i < 24; ++i) {
    const int k = (i * 7) % 24;
    value[0] = static_cast<char>('a' + k);
    if (!loader->Add(testing::NumberedKey(k), value).ok()) return {-1, -1};
  }
  struct rusage usage;
  ::getrusage(RUSAGE_SELF, &usage);
  const long added = usage.ru_maxrss;
  if (!loader->Finish().ok()) return {-1, -1};
  std::string got;
  if (!table->Get(nullptr, testing::NumberedKey(5), &got).ok() || got[0] != 'a' + 5) {
    return {-1, -1};
  }
  ::getrusage(RUSAGE_SELF, &usage);
  return {added, usage.ru_maxrss};
}

TEST(MemoryTest, ALoadOfBigValuesMergesFewRunsAtOnce) {
  if (kSanitized) GTEST_SKIP() << "RSS is not measured in sanitizer builds";
  testing::ScratchDir dir;
  using RssPair = std::pair<long, long>;
  RssPair rss{-1, -1};
  ASSERT_TRUE(RunInChild<RssPair>([&] { return BigValueLoadRss(dir.path()); }, &rss));
  ASSERT_GT(rss.first, 0) << "the load failed in the child";
  std::printf("peak RSS after Add %ld KiB, after Finish %ld KiB\n", rss.first, rss.second);
  // 165 MiB when a merge read up to 16 such runs at once; ~77 MiB reading two.
  EXPECT_LT(rss.second, 120 * 1024);
}

TEST(MemoryTest, ABigTransactionsMemoryStaysBounded) {
  if (kSanitized) GTEST_SKIP() << "RSS is not measured in sanitizer builds";
  testing::ScratchDir dir;
  using RssPair = std::pair<long, long>;
  RssPair rss{-1, -1};
  ASSERT_TRUE(RunInChild<RssPair>([&] { return BigTransactionRss(dir.path()); }, &rss));
  ASSERT_GT(rss.first, 0) << "the transaction failed in the child";
  std::printf("RSS before commit %ld KiB, after %ld KiB\n", rss.first, rss.second);
  // ~42 MiB before commit here with a 16 MiB cache; ~100 MiB when the whole write set and
  // every row lock stayed in memory (~250 bytes a row of 16-byte keys), ~195 MiB before they
  // were packed.
  EXPECT_LT(rss.first, kBigTransactionRssKib)
      << "a 300,000-row transaction took more memory than it should";
  EXPECT_LT(rss.second, kBigTransactionRssKib);
}

}  // namespace
}  // namespace fern

namespace fern {
namespace {

// The value of `name` in the Env's "fern.stats", summed over the lines that end in it.
uint64_t StatSum(Env* env, const std::string& name) {
  std::string stats;
  if (!env->GetProperty("fern.stats", &stats)) return 0;
  uint64_t sum = 0;
  size_t at = 0;
  while ((at = stats.find(name + ": ", at)) != std::string::npos) {
    sum += std::stoull(stats.substr(at + name.size() + 2));
    at += name.size();
  }
  return sum;
}

// A cache of a few node sizes: every row is written and read back, and the evictor does not
// compress a node's buffers again and again. (A cache smaller than a node let the root
// buffer more than the cache; the evictor compressed its buffers after each read, which the
// next read decompressed: at 256 KiB, 20,000 gets froze the buffers 20,000 times, and with
// 200,000 rows at 1 or 2 MiB a Get took ~2.7 ms.)
TEST(MemoryTest, SmallCachesReadWithoutFreezingBuffersOverAndOver) {
  for (size_t cache : {size_t{64} << 10, size_t{256} << 10, size_t{1} << 20, size_t{2} << 20}) {
    SCOPED_TRACE(cache);
    testing::ScratchDir dir;
    Options options;
    options.cache_bytes = cache;
    options.sync_commits = false;
    std::unique_ptr<Env> env;
    ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
    Table* table;
    ASSERT_TRUE(env->OpenTable("t", TableOptions(), &table).ok());
    constexpr uint64_t kRows = 20000;
    for (uint64_t i = 0; i < kRows; ++i) {
      const uint64_t k = i * 7919 % kRows;
      ASSERT_TRUE(table->Put(nullptr, WorkloadKey(k), WorkloadValue(k)).ok());
    }
    const uint64_t frozen_before = StatSum(env.get(), "buffers_frozen");
    for (uint64_t i = 0; i < kRows; ++i) {
      std::string value;
      ASSERT_TRUE(table->Get(nullptr, WorkloadKey(i), &value).ok()) << i;
      ASSERT_EQ(value, WorkloadValue(i)) << i;
    }
    EXPECT_LT(StatSum(env.get(), "buffers_frozen") - frozen_before, kRows / 10);
  }
}

}  // namespace
}  // namespace fern
