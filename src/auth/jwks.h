// Signing keys of an external OpenID Connect provider, fetched from its JWKS
// endpoint and kept fresh, for verifying the access tokens it issues.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "auth/jwt.h"
#include "common/status.h"

namespace bevan::auth {

// Caches a remote JWKS (from jwks_uri, or a local file path for tests);
// refreshes after `ttl`, and on an unknown kid at most once per
// `min_refresh_interval` (which also spaces retries after a failed fetch), so
// a flood of tokens with made-up kids cannot turn into a flood of fetches.
// When a refresh fails the previous keys stay in use.
//
// Thread-safe. One fetch at a time: a thread that needs new keys (none yet,
// or an unknown kid) waits for the fetch under way, so Verify never blocks on
// network I/O for longer than one fetch; a thread that only finds the keys
// older than `ttl` while another thread fetches uses the old keys at once.
class JwksCache {
 public:
  struct Options {
    std::string jwks_uri;  // http(s) URL, or a file path ("file://" prefix optional)
    std::chrono::seconds ttl{3600};
    std::chrono::seconds min_refresh_interval{30};
    std::chrono::milliseconds fetch_timeout{5000};
    std::string ca_file;  // PEM CA bundle instead of the system store (empty: system)
  };

  explicit JwksCache(Options options);
  JwksCache(const JwksCache&) = delete;
  JwksCache& operator=(const JwksCache&) = delete;

  // VerifyJwt against the provider's keys, fetching or refreshing them as
  // described above. Besides VerifyJwt's errors: Unavailable when no keys
  // could be fetched yet.
  Result<Claims> Verify(std::string_view token, const VerifyOptions& options);

  // Fetches now (or waits for the fetch under way) and returns its outcome.
  Status Refresh();

  // The current keys; null before the first successful fetch.
  std::shared_ptr<const KeySet> keys() const;
  // Fetches attempted so far (for tests and metrics).
  uint64_t fetch_count() const;

 private:
  enum class Reason { kStale, kUnknownKid, kForced };
  using Clock = std::chrono::steady_clock;

  struct Snapshot {
    std::shared_ptr<const KeySet> keys;
    uint64_t generation = 0;
  };
  // Fetches unless the rules above say not to; returns the keys to use.
  Snapshot MaybeRefresh(Reason reason, uint64_t seen_generation);
  Result<KeySet> Fetch() const;

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable fetched_;
  std::shared_ptr<const KeySet> keys_;  // guarded by mu_, as is everything below
  uint64_t generation_ = 0;             // successful fetches
  uint64_t fetch_count_ = 0;            // attempted fetches
  uint64_t completed_ = 0;              // finished fetches, successful or not
  bool fetching_ = false;
  bool attempted_ = false;
  Clock::time_point last_attempt_;
  Clock::time_point fetched_at_;
  Status last_error_;
};

// Reads `{issuer}/.well-known/openid-configuration` and returns its
// "jwks_uri". The document's "issuer" must equal `issuer` exactly (OpenID
// Connect Discovery 1.0, section 4.3), and an https issuer must name an https
// jwks_uri. Errors: Unavailable (fetch failed, or not HTTP 200),
// InvalidArgument (bad document).
Result<std::string> DiscoverJwksUri(std::string_view issuer,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                    const std::string& ca_file = {});

}  // namespace bevan::auth
