#include "auth/token_cache.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <list>
#include <mutex>
#include <unordered_map>

namespace bevan::auth {

namespace {

using Digest = std::array<unsigned char, 32>;

Digest Sha256(std::string_view token) {
  Digest d{};
  unsigned int len = 0;
  // Fetched once: OpenSSL 3 would otherwise look the algorithm up per call,
  // and this runs on every API request.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_Digest(token.data(), token.size(), d.data(), &len, sha256, nullptr);
  return d;
}

struct DigestHash {
  size_t operator()(const Digest& d) const {
    size_t h;
    std::memcpy(&h, d.data() + 8, sizeof(h));  // byte 0 picks the shard
    return h;
  }
};

}  // namespace

struct TokenCache::Shard {
  struct Entry {
    std::shared_ptr<const Claims> claims;
    int64_t expires_at;
    std::list<Digest>::iterator order;  // position in `insertion_order`
  };
  std::mutex mu;
  std::unordered_map<Digest, Entry, DigestHash> entries;
  std::list<Digest> insertion_order;  // oldest first

  void Erase(std::unordered_map<Digest, Entry, DigestHash>::iterator it) {
    insertion_order.erase(it->second.order);
    entries.erase(it);
  }
};

TokenCache::TokenCache(size_t max_entries, int64_t max_ttl_seconds)
    : max_per_shard_(std::max<size_t>(1, max_entries / kShards)), max_ttl_seconds_(max_ttl_seconds) {
  for (auto& s : shards_) s = std::make_unique<Shard>();
}

TokenCache::~TokenCache() = default;

TokenCache::Shard& TokenCache::ShardFor(const Digest& digest) { return *shards_[digest[0] % kShards]; }

std::shared_ptr<const Claims> TokenCache::Find(std::string_view token, int64_t now) {
  Digest digest = Sha256(token);
  Shard& shard = ShardFor(digest);
  std::lock_guard lock(shard.mu);
  auto it = shard.entries.find(digest);
  if (it == shard.entries.end()) return nullptr;
  if (now >= it->second.expires_at) {
    shard.Erase(it);
    return nullptr;
  }
  return it->second.claims;
}

void TokenCache::Insert(std::string_view token, std::shared_ptr<const Claims> claims, int64_t now) {
  if (!claims) return;
  if (now == 0) now = static_cast<int64_t>(std::time(nullptr));
  int64_t expires_at = now + max_ttl_seconds_;
  if (claims->exp != 0) expires_at = std::min(expires_at, claims->exp);
  if (expires_at <= now) return;
  Digest digest = Sha256(token);
  Shard& shard = ShardFor(digest);
  std::lock_guard lock(shard.mu);
  if (auto it = shard.entries.find(digest); it != shard.entries.end()) shard.Erase(it);
  while (shard.entries.size() >= max_per_shard_) shard.Erase(shard.entries.find(shard.insertion_order.front()));
  shard.insertion_order.push_back(digest);
  shard.entries.emplace(digest, Shard::Entry{std::move(claims), expires_at, std::prev(shard.insertion_order.end())});
}

size_t TokenCache::size() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mu);
    n += s->entries.size();
  }
  return n;
}

}  // namespace bevan::auth
