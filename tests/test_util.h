// Helpers shared by Fern's tests: scratch directories and stats parsing.
#ifndef FERN_TESTS_TEST_UTIL_H_
#define FERN_TESTS_TEST_UTIL_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>

#include "fern/options.h"
#include "fern/table.h"
#include "gtest/gtest.h"

namespace fern::testing {

// A fresh directory under the system temp dir, removed when the object dies.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "fern-test-XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    if (made == nullptr) std::abort();
    path_ = made;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// "k" and `i` in seven digits, zero-padded: keys that sort as their numbers do.
inline std::string NumberedKey(int i) {
  std::string key = std::to_string(i);
  return "k" + std::string(key.size() < 7 ? 7 - key.size() : 0, '0') + key;
}

// 64 KiB nodes of 4 KiB basements: a few thousand small rows make a tree of several
// levels, so that small tests go through splits, flushes and eviction.
inline TableOptions SmallTreeOptions() {
  TableOptions options;
  options.node_bytes = 64 << 10;
  options.basement_bytes = 4 << 10;
  return options;
}

// The row's value as `txn` sees it (null: outside any transaction), or "<none>"; another
// error fails the test.
inline std::string ReadRow(Table* table, Txn* txn, std::string_view key) {
  std::string value;
  Status s = table->Get(txn, key, &value);
  if (s.IsNotFound()) return "<none>";
  EXPECT_TRUE(s.ok()) << s.ToString();
  return value;
}

// Reads "name: value" from a stats text; -1 if absent.
inline int64_t StatValue(const std::string& stats, const std::string& name) {
  std::istringstream in(stats);
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(": ");
    if (colon != std::string::npos && line.substr(0, colon) == name) {
      return std::stoll(line.substr(colon + 2));
    }
  }
  return -1;
}

// Kills this process with SIGKILL: a crash, with whatever is open left as it is.
[[noreturn]] inline void CrashNow() {
  ::raise(SIGKILL);
  ::_exit(99);
}

// Runs `work` in a forked child. `work` ends with CrashNow() while its Env is still open;
// if it returns instead (a step failed), the child exits with the code it returned.
// Succeeds when the child died by SIGKILL.
inline ::testing::AssertionResult CrashAfterChild(const std::function<int()>& work) {
  pid_t pid = ::fork();
  if (pid < 0) return ::testing::AssertionFailure() << "fork failed";
  if (pid == 0) ::_exit(work());

  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return ::testing::AssertionFailure() << "waitpid failed";
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "the child failed before the crash: exit " << WEXITSTATUS(status);
}

// Bytewise order reversed: for tests that must not assume the default comparator.
class ReverseComparator final : public Comparator {
 public:
  int Compare(std::string_view a, std::string_view b) const override {
    return BytewiseComparator()->Compare(b, a);
  }
  const char* Name() const override { return "test.Reverse"; }
};

}  // namespace fern::testing

#endif  // FERN_TESTS_TEST_UTIL_H_
