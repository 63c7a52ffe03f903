#include "util/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <utility>

namespace fern {

ThreadPool::ThreadPool(int threads) {
  threads = std::max(threads, 1);
  workers_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    work_.SignalAll();
  }
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::Schedule(std::function<void()> task) {
  MutexLock lock(&mu_);
  queue_.push_back(std::move(task));
  work_.Signal();
}

void ThreadPool::WorkerLoop() {
  while (true) {
    std::function<void()> task;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) mu_.Wait(&work_);
      // Stop only once the queue is empty: the destructor promises to finish queued work.
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

namespace {

// Shared by the caller of ParallelFor and the helper tasks it schedules. A helper may start
// after every index has been claimed (and even after ParallelFor returned), so the state is
// reference-counted and `fn` is touched only by whoever claims a valid index — claims that
// ParallelFor waits for.
struct ParallelForState {
  ParallelForState(size_t n, const std::function<void(size_t)>* fn) : n(n), fn(fn) {}

  // Runs indices until none are left; returns how many this thread ran.
  void RunIndices() {
    size_t ran = 0;
    for (size_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      (*fn)(i);
      ++ran;
    }
    if (ran == 0) return;
    MutexLock lock(&mu);
    done += ran;
    if (done == n) finished.SignalAll();
  }

  const size_t n;
  const std::function<void(size_t)>* const fn;
  std::atomic<size_t> next{0};
  Mutex mu;
  absl::CondVar finished;
  size_t done ABSL_GUARDED_BY(mu) = 0;
};

}  // namespace

void ThreadPool::ParallelFor(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  if (n == 1) {
    fn(0);
    return;
  }
  auto state = std::make_shared<ParallelForState>(n, &fn);
  const size_t helpers = std::min(n - 1, workers_.size());
  for (size_t i = 0; i < helpers; ++i) {
    Schedule([state] { state->RunIndices(); });
  }
  state->RunIndices();
  MutexLock lock(&state->mu);
  while (state->done != state->n) state->mu.Wait(&state->finished);
}

}  // namespace fern
