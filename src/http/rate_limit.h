// Token-bucket rate limits per key (a client id or a remote address).
//
// Each key has a bucket of `burst` tokens refilled at `rate_per_second`; a
// request takes one token or is refused with the seconds until one is back.
// Buckets refill lazily (on the key's next request), live in 16 mutex-guarded
// shards, and are bounded: a full shard first forgets buckets that have
// refilled completely (indistinguishable from new ones), then the least
// recently used.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string_view>

namespace bevan::http {

struct RateLimitOptions {
  double rate_per_second = 0;  // sustained requests per second per key; 0: no limit
  double burst = 0;            // bucket size (requests at once); < 1: max(1, rate_per_second)
  size_t max_keys = 100000;    // buckets kept at most (about 100 bytes each)
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RateLimiter(RateLimitOptions options);
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  bool enabled() const { return options_.rate_per_second > 0; }

  struct Decision {
    bool allowed = true;
    int retry_after_seconds = 0;  // when refused: whole seconds until a token is back (>= 1)
  };

  // Takes a token from `key`'s bucket. Thread-safe.
  Decision Take(std::string_view key, Clock::time_point now = Clock::now());

  // Buckets held now (for tests and metrics).
  size_t size() const;

  struct Shard;

 private:
  RateLimitOptions options_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace bevan::http
