#include "cachetable/worker_pool.h"

#include <algorithm>
#include <utility>

namespace fern {

WorkerPool::WorkerPool(int threads) {
  threads = std::max(threads, 1);
  workers_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

WorkerPool::~WorkerPool() {
  {
    AnnotatedMutexLock lock(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  for (std::thread& worker : workers_) worker.join();
}

void WorkerPool::Schedule(std::function<void()> task) {
  AnnotatedMutexLock lock(&mu_);
  queue_.push_back(std::move(task));
  cv_.Signal();
}

void WorkerPool::WorkerLoop() {
  for (;;) {
    std::function<void()> task;
    {
      AnnotatedMutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) mu_.Wait(&cv_);
      // Stop only once the queue is empty: the destructor promises to run queued work.
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace fern
