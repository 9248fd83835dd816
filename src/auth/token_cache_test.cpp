#include "auth/token_cache.h"

#include <gtest/gtest.h>

#include <thread>

namespace bevan::auth {
namespace {

constexpr int64_t kNow = 1700000000;

std::shared_ptr<const Claims> WithExp(int64_t exp, std::string sub = "s") {
  auto c = std::make_shared<Claims>();
  c->exp = exp;
  c->sub = std::move(sub);
  return c;
}

TEST(TokenCache, FindsWhatWasInserted) {
  TokenCache cache(1000);
  auto claims = WithExp(kNow + 60, "alice");
  cache.Insert("token-a", claims, kNow);
  EXPECT_EQ(cache.Find("token-a", kNow), claims);
  EXPECT_EQ(cache.Find("token-a", kNow + 59), claims);
  EXPECT_EQ(cache.Find("token-b", kNow), nullptr);
  EXPECT_EQ(cache.Find("token-", kNow), nullptr);
  EXPECT_EQ(cache.size(), 1u);
  // Re-inserting replaces.
  auto newer = WithExp(kNow + 60, "alice2");
  cache.Insert("token-a", newer, kNow);
  EXPECT_EQ(cache.Find("token-a", kNow), newer);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(TokenCache, EntriesExpireAtExpOrTheTtlCap) {
  TokenCache cache(1000, /*max_ttl_seconds=*/300);
  cache.Insert("short", WithExp(kNow + 60), kNow);
  cache.Insert("long", WithExp(kNow + 3600), kNow);
  cache.Insert("no-exp", WithExp(0), kNow);
  cache.Insert("expired", WithExp(kNow), kNow);  // not cached at all
  EXPECT_EQ(cache.size(), 3u);

  EXPECT_NE(cache.Find("short", kNow + 59), nullptr);
  EXPECT_EQ(cache.Find("short", kNow + 60), nullptr);  // at exp
  EXPECT_NE(cache.Find("long", kNow + 299), nullptr);
  EXPECT_EQ(cache.Find("long", kNow + 300), nullptr);  // capped by the ttl
  EXPECT_NE(cache.Find("no-exp", kNow + 299), nullptr);
  EXPECT_EQ(cache.Find("no-exp", kNow + 300), nullptr);
  EXPECT_EQ(cache.Find("expired", kNow), nullptr);
  EXPECT_EQ(cache.size(), 0u);  // expired entries are dropped when found
}

TEST(TokenCache, IsBoundedAndEvictsTheOldest) {
  TokenCache cache(160);  // 10 per shard
  for (int i = 0; i < 5000; ++i) cache.Insert("token-" + std::to_string(i), WithExp(kNow + 60), kNow);
  EXPECT_LE(cache.size(), 160u);
  EXPECT_GE(cache.size(), 150u);
  // The most recent ones survive; the first ones are gone.
  int recent = 0, old = 0;
  for (int i = 0; i < 100; ++i) old += cache.Find("token-" + std::to_string(i), kNow) != nullptr;
  for (int i = 4990; i < 5000; ++i) recent += cache.Find("token-" + std::to_string(i), kNow) != nullptr;
  EXPECT_EQ(old, 0);
  EXPECT_EQ(recent, 10);

  TokenCache tiny(1);  // still holds one per shard
  tiny.Insert("a", WithExp(kNow + 60), kNow);
  EXPECT_NE(tiny.Find("a", kNow), nullptr);
}

TEST(TokenCache, ConcurrentUse) {
  TokenCache cache(1000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 2000; ++i) {
        std::string token = "t" + std::to_string((t * 7919 + i) % 3000);
        if (!cache.Find(token, kNow)) cache.Insert(token, WithExp(kNow + 60, token), kNow);
        auto found = cache.Find(token, kNow);
        if (found) {
          EXPECT_EQ(found->sub, token);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(cache.size(), 1000u);
}

}  // namespace
}  // namespace bevan::auth
