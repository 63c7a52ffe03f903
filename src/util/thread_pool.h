// A fixed-size pool of worker threads running queued closures.
#ifndef FERN_UTIL_THREAD_POOL_H_
#define FERN_UTIL_THREAD_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "util/mutex.h"

namespace fern {

// Thread-safe: Schedule and ParallelFor may be called from any thread, including from a task,
// but not once the destructor has begun. The destructor finishes the queued work (tasks may
// still Schedule more until the queue drains), then joins the workers. Tasks run in FIFO order
// of scheduling, with no ordering between workers.
class ThreadPool {
 public:
  // `threads` below 1 is taken as 1.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Schedule(std::function<void()> task);
  int size() const { return static_cast<int>(workers_.size()); }

  // Runs fn(0..n-1), each index exactly once, spreading the calls over the pool and the
  // calling thread; returns when all are done. Indices are claimed one at a time, so it suits
  // coarse work (a partition each). Meant for callers outside the pool: from a task it still
  // completes (the caller runs whatever the busy workers do not) but holds a worker meanwhile.
  void ParallelFor(size_t n, const std::function<void(size_t)>& fn);

 private:
  void WorkerLoop();

  Mutex mu_;
  absl::CondVar work_;  // signalled when a task is queued or the pool stops
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace fern

#endif  // FERN_UTIL_THREAD_POOL_H_
