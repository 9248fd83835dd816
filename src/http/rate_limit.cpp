#include "http/rate_limit.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace bevan::http {

namespace {

constexpr size_t kShards = 16;

struct Bucket {
  double tokens = 0;
  RateLimiter::Clock::time_point last;
};

// Transparent hashing: look up by string_view without building a string.
struct Hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

}  // namespace

struct RateLimiter::Shard {
  mutable std::mutex mu;
  std::unordered_map<std::string, Bucket, Hash, std::equal_to<>> buckets;
};

RateLimiter::RateLimiter(RateLimitOptions options) : options_(options), shards_(new Shard[kShards]) {
  if (options_.burst < 1) options_.burst = std::max(1.0, options_.rate_per_second);
  options_.max_keys = std::max<size_t>(options_.max_keys, kShards);
}

RateLimiter::~RateLimiter() = default;

RateLimiter::Decision RateLimiter::Take(std::string_view key, Clock::time_point now) {
  if (!enabled()) return {};
  const double rate = options_.rate_per_second, burst = options_.burst;
  size_t h = Hash()(key);
  Shard& shard = shards_[h % kShards];
  std::lock_guard l(shard.mu);
  auto it = shard.buckets.find(key);
  if (it == shard.buckets.end()) {
    size_t cap = options_.max_keys / kShards;
    if (shard.buckets.size() >= cap) {
      // Forget buckets that are full again: a new bucket starts full too.
      std::erase_if(shard.buckets, [&](const auto& kv) {
        double secs = std::chrono::duration<double>(now - kv.second.last).count();
        return kv.second.tokens + secs * rate >= burst;
      });
      if (shard.buckets.size() >= cap) {
        // Still full of active keys: drop the least recently used quarter.
        std::vector<Clock::time_point> times;
        times.reserve(shard.buckets.size());
        for (const auto& kv : shard.buckets) times.push_back(kv.second.last);
        auto nth = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 4);
        std::nth_element(times.begin(), nth, times.end());
        Clock::time_point cutoff = *nth;
        std::erase_if(shard.buckets, [&](const auto& kv) { return kv.second.last <= cutoff; });
      }
    }
    it = shard.buckets.emplace(std::string(key), Bucket{burst, now}).first;
  }
  Bucket& b = it->second;
  if (now > b.last) {
    b.tokens = std::min(burst, b.tokens + std::chrono::duration<double>(now - b.last).count() * rate);
    b.last = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return {};
  }
  double wait = (1 - b.tokens) / rate;
  return {false, std::max(1, static_cast<int>(std::ceil(wait)))};
}

size_t RateLimiter::size() const {
  size_t n = 0;
  for (size_t i = 0; i < kShards; ++i) {
    std::lock_guard l(shards_[i].mu);
    n += shards_[i].buckets.size();
  }
  return n;
}

}  // namespace bevan::http
