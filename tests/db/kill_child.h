// The crash tests' one way to die: a child process works on an Env and acknowledges what it
// finished through a pipe, and the parent kills it with SIGKILL at a moment of its choosing,
// then reads the acknowledgements. What the child acknowledged before the kill is what a
// synced Env must still hold after recovery.
#ifndef FERN_TESTS_DB_KILL_CHILD_H_
#define FERN_TESTS_DB_KILL_CHILD_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace fern::testing {

// Forks a child running `child(fd)`, which writes each acknowledgement to `fd` as 8 bytes
// and must not return (it works until killed); sleeps `delay`, kills the child with
// SIGKILL and appends its acknowledgements, oldest first, to *acknowledged. Fails if the
// fork or pipe fails or the child ended before the kill. A child that fills the pipe blocks
// until the kill: acknowledgements are read only afterwards.
inline ::testing::AssertionResult RunChildAndKill(const std::function<void(int fd)>& child,
                                                  std::chrono::microseconds delay,
                                                  std::vector<uint64_t>* acknowledged) {
  int fds[2];
  if (::pipe(fds) != 0) return ::testing::AssertionFailure() << "pipe failed";
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return ::testing::AssertionFailure() << "fork failed";
  }
  if (pid == 0) {
    ::close(fds[0]);
    child(fds[1]);
    ::_exit(99);  // the child's work returned: the parent reports it
  }
  ::close(fds[1]);
  std::this_thread::sleep_for(delay);
  ::kill(pid, SIGKILL);
  int status;
  ::waitpid(pid, &status, 0);
  uint64_t ack;
  while (::read(fds[0], &ack, sizeof(ack)) == sizeof(ack)) acknowledged->push_back(ack);
  ::close(fds[0]);
  if (!WIFSIGNALED(status)) {
    return ::testing::AssertionFailure() << "the child exited before the kill, with status "
                                         << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  return ::testing::AssertionSuccess();
}

}  // namespace fern::testing

#endif  // FERN_TESTS_DB_KILL_CHILD_H_
