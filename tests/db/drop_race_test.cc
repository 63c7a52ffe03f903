// DropTable while other threads write into the table, autocommitted or in transactions: the
// writers get InvalidArgument (dropped) or finish first, and the Env goes on accepting
// writes in its other tables. Before the drop waited for writes under way, a write logged
// and then refused by the closed tree stopped every write in the Env.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fern/fern.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace fern {
namespace {

using testing::ScratchDir;

// Writers into "doomed", each committing `rows_per_txn` rows at a time (0: autocommit).
void DropWhileWriting(int rows_per_txn) {
  ScratchDir dir;
  Options options;
  options.sync_commits = false;
  std::unique_ptr<Env> env;
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  Table* other;
  ASSERT_TRUE(env->OpenTable("other", TableOptions(), &other).ok());
  for (int round = 0; round < 30; ++round) {
    SCOPED_TRACE(round);
    const std::string name = "doomed" + std::to_string(round);
    Table* doomed;
    ASSERT_TRUE(env->OpenTable(name, TableOptions(), &doomed).ok());
    std::atomic<bool> stop{false};
    std::atomic<int> unexpected{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < 3; ++w) {
      writers.emplace_back([&, w] {
        for (int i = 0; !stop.load(); ++i) {
          const std::string key = std::to_string(w) + "-" + std::to_string(i);
          Status s;
          if (rows_per_txn == 0) {
            s = doomed->Put(nullptr, key, std::string(100, 'v'));
          } else {
            std::unique_ptr<Txn> txn;
            s = env->Begin(TxnOptions(), &txn);
            for (int r = 0; s.ok() && r < rows_per_txn; ++r) {
              s = doomed->Put(txn.get(), key + "." + std::to_string(r), "v");
            }
            s = s.ok() ? txn->Commit() : s;
          }
          // Dropped under the writer: the only failure allowed.
          if (!s.ok() && !s.IsInvalidArgument()) ++unexpected;
          if (s.IsInvalidArgument()) break;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + round % 10 * 3));
    ASSERT_TRUE(env->DropTable(name).ok());
    stop.store(true);
    for (std::thread& t : writers) t.join();
    EXPECT_EQ(unexpected.load(), 0);
    Status s = other->Put(nullptr, "after" + std::to_string(round), "row");
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  env.reset();
  ASSERT_TRUE(Env::Open(dir.path(), options, &env).ok());
  ASSERT_TRUE(env->OpenTable("other", TableOptions(), &other).ok());
  std::string value;
  EXPECT_TRUE(other->Get(nullptr, "after29", &value).ok());
}

TEST(DropRaceTest, AutocommittedWritersDoNotStopTheEnv) { DropWhileWriting(0); }

TEST(DropRaceTest, TransactionalWritersDoNotStopTheEnv) { DropWhileWriting(4); }

}  // namespace
}  // namespace fern
