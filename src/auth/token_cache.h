// Verified access tokens by hash, so the resource server checks a token's
// signature once rather than on every request.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "auth/jwt.h"

namespace bevan::auth {

// Claims of verified tokens, keyed by the SHA-256 of the token (tokens
// themselves are not kept). An entry lives until the token's exp or
// `max_ttl_seconds` after insertion, whichever is first: the cap bounds how
// long a token keeps working after its signing key is withdrawn from the
// JWKS. Bounded: when full, the oldest entries are evicted. Only insert
// claims VerifyJwt accepted. Thread-safe (16 independently locked shards).
class TokenCache {
 public:
  explicit TokenCache(size_t max_entries, int64_t max_ttl_seconds = 300);
  TokenCache(const TokenCache&) = delete;
  TokenCache& operator=(const TokenCache&) = delete;
  ~TokenCache();

  // The cached claims, or null when absent or expired at `now` (unix seconds).
  std::shared_ptr<const Claims> Find(std::string_view token, int64_t now);
  // Caches `claims` for `token` from `now` (unix seconds; 0 = current time).
  // Claims already expired are not cached.
  void Insert(std::string_view token, std::shared_ptr<const Claims> claims, int64_t now = 0);

  size_t size() const;  // entries, including expired ones not yet dropped

 private:
  struct Shard;
  static constexpr size_t kShards = 16;
  Shard& ShardFor(const std::array<unsigned char, 32>& digest);

  size_t max_per_shard_;
  int64_t max_ttl_seconds_;
  std::array<std::unique_ptr<Shard>, kShards> shards_;
};

}  // namespace bevan::auth
