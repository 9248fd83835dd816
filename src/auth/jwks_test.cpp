// JwksCache against a JWKS served by bevan's own HTTP server on port 0:
// fetching, key rotation, refresh limits, concurrent first use, failures;
// and OpenID Connect discovery.
#include "auth/jwks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/ids.h"
#include "http/server.h"

namespace bevan::auth {
namespace {

using namespace std::chrono_literals;

// A fake identity provider: serves /jwks.json (counting requests) and its
// OpenID configuration.
class FakeIdp {
 public:
  FakeIdp() {
    http::ServerOptions options;
    options.port = 0;
    options.io_threads = 1;
    auto server = http::Server::Start(options, [this](const http::Request& req, http::Response& res) {
      if (req.path == "/jwks.json") {
        ++jwks_requests_;
        std::this_thread::sleep_for(delay_.load());
        std::lock_guard lock(mu_);
        res.status = jwks_status_;
        res.body = jwks_;
      } else if (req.path == "/.well-known/openid-configuration") {
        std::lock_guard lock(mu_);
        res.body = configuration_;
      } else {
        res.status = 404;
      }
    });
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }

  std::string base() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  std::string jwks_uri() const { return base() + "/jwks.json"; }

  void Serve(const KeySet& keys, int status = 200) {
    std::lock_guard lock(mu_);
    jwks_ = keys.ToJwksJson();
    jwks_status_ = status;
  }
  void SetConfiguration(std::string json) {
    std::lock_guard lock(mu_);
    configuration_ = std::move(json);
  }
  void SetDelay(std::chrono::milliseconds d) { delay_ = d; }
  int jwks_requests() const { return jwks_requests_; }

 private:
  std::mutex mu_;
  std::string jwks_ = R"({"keys":[]})";
  int jwks_status_ = 200;
  std::string configuration_ = "{}";
  std::atomic<int> jwks_requests_{0};
  std::atomic<std::chrono::milliseconds> delay_{0ms};
  std::unique_ptr<http::Server> server_;
};

Key NewKey(Alg alg, std::string kid) {
  auto key = Key::Generate(alg, std::move(kid));
  EXPECT_TRUE(key.ok());
  return std::move(key).value();
}

std::string Token(const Key& key) {
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  auto token = SignJwt(key, R"({"iss":"https://idp","sub":"u","exp":)" + std::to_string(now + 600) + "}");
  EXPECT_TRUE(token.ok());
  return token.ok() ? *token : std::string();
}

VerifyOptions Options() {
  VerifyOptions o;
  o.allowed_algs = {Alg::kES256, Alg::kRS256};
  o.issuer = "https://idp";
  return o;
}

JwksCache::Options Opts(std::string uri, std::chrono::seconds ttl = 3600s,
                        std::chrono::seconds min_refresh_interval = 30s) {
  JwksCache::Options o;
  o.jwks_uri = std::move(uri);
  o.ttl = ttl;
  o.min_refresh_interval = min_refresh_interval;
  o.fetch_timeout = 2000ms;
  return o;
}

KeySet SetOf(std::initializer_list<const Key*> keys) {
  KeySet set;
  for (const Key* k : keys) set.Add(*k);
  return set;
}

TEST(JwksCache, FetchesOnceAndRefreshesForARotatedKey) {
  FakeIdp idp;
  Key a = NewKey(Alg::kES256, "a"), b = NewKey(Alg::kES256, "b");
  idp.Serve(SetOf({&a}));
  JwksCache cache(Opts(idp.jwks_uri(), 3600s, 0s));
  EXPECT_EQ(cache.keys(), nullptr);

  auto claims = cache.Verify(Token(a), Options());
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->sub, "u");
  EXPECT_TRUE(cache.Verify(Token(a), Options()).ok());
  EXPECT_EQ(idp.jwks_requests(), 1);
  ASSERT_NE(cache.keys(), nullptr);
  EXPECT_EQ(cache.keys()->size(), 1u);

  // The provider rotates b in: a token with kid "b" makes the cache refetch.
  idp.Serve(SetOf({&a, &b}));
  claims = cache.Verify(Token(b), Options());
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(idp.jwks_requests(), 2);
  EXPECT_TRUE(cache.Verify(Token(a), Options()).ok());
  EXPECT_TRUE(cache.Verify(Token(b), Options()).ok());
  EXPECT_EQ(idp.jwks_requests(), 2);

  // a is withdrawn: its tokens fail once the cache has seen the new set.
  idp.Serve(SetOf({&b}));
  EXPECT_TRUE(cache.Refresh().ok());
  EXPECT_EQ(idp.jwks_requests(), 3);
  EXPECT_EQ(cache.Verify(Token(a), Options()).status().message(), "unknown kid");
}

TEST(JwksCache, UnknownKidFloodFetchesAtMostOncePerInterval) {
  FakeIdp idp;
  Key a = NewKey(Alg::kES256, "a"), b = NewKey(Alg::kES256, "b");
  idp.Serve(SetOf({&a}));
  JwksCache cache(Opts(idp.jwks_uri(), 3600s, 1s));
  ASSERT_TRUE(cache.Verify(Token(a), Options()).ok());
  EXPECT_EQ(idp.jwks_requests(), 1);

  std::vector<std::string> forged;
  for (int i = 0; i < 50; ++i) forged.push_back(Token(NewKey(Alg::kES256, "made-up-" + std::to_string(i))));
  for (const auto& token : forged) EXPECT_EQ(cache.Verify(token, Options()).status().message(), "unknown kid");
  EXPECT_EQ(idp.jwks_requests(), 1);  // the first fetch was less than a second ago

  std::this_thread::sleep_for(1100ms);
  for (const auto& token : forged) EXPECT_FALSE(cache.Verify(token, Options()).ok());
  EXPECT_EQ(idp.jwks_requests(), 2);  // one refresh for the whole flood

  // Tokens that would be refused anyway (alg not allowed) trigger no fetch.
  std::this_thread::sleep_for(1100ms);
  Key rs = NewKey(Alg::kRS256, "rs-made-up");
  VerifyOptions es_only = Options();
  es_only.allowed_algs = {Alg::kES256};
  EXPECT_FALSE(cache.Verify(Token(rs), es_only).ok());
  EXPECT_EQ(idp.jwks_requests(), 2);

  // A genuinely new key, once the interval has passed, is fetched.
  idp.Serve(SetOf({&a, &b}));
  EXPECT_TRUE(cache.Verify(Token(b), Options()).ok());
  EXPECT_EQ(idp.jwks_requests(), 3);
}

TEST(JwksCache, ConcurrentFirstUseMakesOneFetch) {
  FakeIdp idp;
  Key a = NewKey(Alg::kES256, "a");
  idp.Serve(SetOf({&a}));
  idp.SetDelay(200ms);
  JwksCache cache(Opts(idp.jwks_uri(), 3600s, 3600s));
  std::string token = Token(a);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] { ok += cache.Verify(token, Options()).ok(); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 8);  // every thread waited for the one fetch
  EXPECT_EQ(idp.jwks_requests(), 1);
  EXPECT_EQ(cache.fetch_count(), 1u);
}

TEST(JwksCache, KeepsOldKeysWhenARefreshFails) {
  FakeIdp idp;
  Key a = NewKey(Alg::kES256, "a");
  idp.Serve(SetOf({&a}));
  // ttl 0: every Verify wants a refresh (spaced by min_refresh_interval 0).
  JwksCache cache(Opts(idp.jwks_uri(), 0s, 0s));
  ASSERT_TRUE(cache.Verify(Token(a), Options()).ok());
  idp.Serve(SetOf({&a}), 500);
  auto claims = cache.Verify(Token(a), Options());
  EXPECT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(idp.jwks_requests(), 2);
  EXPECT_EQ(cache.Refresh().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(cache.Verify(Token(a), Options()).ok());
}

TEST(JwksCache, UnavailableWithoutKeysAndRetriesAreSpaced) {
  FakeIdp idp;
  Key a = NewKey(Alg::kES256, "a");
  idp.Serve(SetOf({&a}), 503);
  JwksCache cache(Opts(idp.jwks_uri(), 3600s, 3600s));
  auto claims = cache.Verify(Token(a), Options());
  EXPECT_EQ(claims.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(claims.status().message().find("HTTP 503"), std::string::npos) << claims.status().message();
  EXPECT_EQ(cache.Verify(Token(a), Options()).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(idp.jwks_requests(), 1);

  // An empty key set is a failed fetch too.
  FakeIdp empty;
  JwksCache empty_cache(Opts(empty.jwks_uri()));
  EXPECT_EQ(empty_cache.Verify(Token(a), Options()).status().code(), StatusCode::kUnavailable);

  // Nothing listening.
  JwksCache nowhere(Opts("http://127.0.0.1:1/jwks.json"));
  EXPECT_EQ(nowhere.Verify(Token(a), Options()).status().code(), StatusCode::kUnavailable);
}

TEST(JwksCache, ReadsAFile) {
  Key a = NewKey(Alg::kRS256, "a");
  auto path = std::filesystem::temp_directory_path() / ("bevan-jwks-" + RandomHex(12) + ".json");
  std::ofstream(path) << SetOf({&a}).ToJwksJson();
  JwksCache cache(Opts(path.string()));
  auto claims = cache.Verify(Token(a), Options());
  EXPECT_TRUE(claims.ok()) << claims.status().ToString();
  JwksCache with_scheme(Opts("file://" + path.string()));
  EXPECT_TRUE(with_scheme.Verify(Token(a), Options()).ok());
  std::filesystem::remove(path);
  JwksCache missing(Opts(path.string()));
  EXPECT_EQ(missing.Verify(Token(a), Options()).status().code(), StatusCode::kUnavailable);
}

TEST(DiscoverJwksUri, ReadsTheConfiguration) {
  FakeIdp idp;
  idp.SetConfiguration(R"({"issuer":")" + idp.base() + R"(","jwks_uri":")" + idp.jwks_uri() + R"("})");
  auto uri = DiscoverJwksUri(idp.base());
  ASSERT_TRUE(uri.ok()) << uri.status().ToString();
  EXPECT_EQ(*uri, idp.jwks_uri());

  // A trailing slash in the configured issuer must be the provider's too.
  EXPECT_EQ(DiscoverJwksUri(idp.base() + "/").status().code(), StatusCode::kInvalidArgument);

  idp.SetConfiguration(R"({"issuer":"https://evil.example","jwks_uri":")" + idp.jwks_uri() + R"("})");
  EXPECT_EQ(DiscoverJwksUri(idp.base()).status().code(), StatusCode::kInvalidArgument);
  idp.SetConfiguration(R"({"issuer":")" + idp.base() + R"("})");
  EXPECT_EQ(DiscoverJwksUri(idp.base()).status().code(), StatusCode::kInvalidArgument);
  idp.SetConfiguration(R"({"issuer":")" + idp.base() + R"(","jwks_uri":"file:///etc/passwd"})");
  EXPECT_EQ(DiscoverJwksUri(idp.base()).status().code(), StatusCode::kInvalidArgument);
  idp.SetConfiguration("not json");
  EXPECT_EQ(DiscoverJwksUri(idp.base()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DiscoverJwksUri(idp.base() + "/missing").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(DiscoverJwksUri("ftp://x").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bevan::auth
