#include "http/work_pool.h"

namespace bevan::http {

WorkPool::WorkPool(size_t threads, size_t queue_limit) : queue_limit_(queue_limit), thread_count_(threads) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkPool::~WorkPool() {
  Stop();
  for (auto& t : threads_) t.join();
}

bool WorkPool::Submit(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    // Room for one task per idle worker plus queue_limit_ waiting ones.
    if (stopping_ || queue_.size() + busy_ >= thread_count_ + queue_limit_) return false;
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

void WorkPool::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

size_t WorkPool::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void WorkPool::Loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    task();
    std::lock_guard lock(mu_);
    --busy_;
  }
}

}  // namespace bevan::http
