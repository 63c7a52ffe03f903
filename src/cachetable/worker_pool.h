// WorkerPool: the cachetable's checkpoint writers — a few threads running queued closures.
//
// The same job as fern::ThreadPool (src/util/thread_pool.h), on an AnnotatedMutex: with
// Debian's uninstrumented Abseil, ThreadSanitizer cannot see fern::ThreadPool's hand-off of
// a task to a worker and reports a race on every queued std::function (measured: 24 reports
// for 2,000 scheduled tasks), which would hide real races in the cachetable's tests under
// -DFERN_SANITIZE=thread. Everything a task captures is visible to it, as TSAN can see.
//
// Thread-safety: Schedule may be called from any thread, including from a task, until the
// destructor begins. The destructor runs the queued tasks, then joins the workers.
#ifndef FERN_CACHETABLE_WORKER_POOL_H_
#define FERN_CACHETABLE_WORKER_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cachetable/annotated_mutex.h"

namespace fern {

class WorkerPool {
 public:
  // `threads` below 1 is taken as 1.
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Schedule(std::function<void()> task);
  int size() const { return static_cast<int>(workers_.size()); }

 private:
  void WorkerLoop();

  AnnotatedMutex mu_;
  absl::CondVar cv_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace fern

#endif  // FERN_CACHETABLE_WORKER_POOL_H_
