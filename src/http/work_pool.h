// A bounded pool of worker threads for long requests (large bundles, exports,
// analytics). When every worker is busy and the queue is full, Submit refuses
// at once: the server answers 503 with Retry-After instead of queueing
// without bound.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bevan::http {

class WorkPool {
 public:
  // `threads` workers; at most `queue_limit` tasks waiting besides those running.
  WorkPool(size_t threads, size_t queue_limit);
  ~WorkPool();  // runs every accepted task, then joins
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Queues `task`; false (and `task` dropped) when the pool is full or stopping.
  bool Submit(std::function<void()> task);

  // Stops accepting; running and queued tasks still complete. Idempotent.
  void Stop();

  size_t queued() const;

 private:
  void Loop();

  const size_t queue_limit_;
  const size_t thread_count_;
  size_t busy_ = 0;  // tasks running
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace bevan::http
