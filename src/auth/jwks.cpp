#include "auth/jwks.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include "http/client.h"

namespace bevan::auth {

namespace {

constexpr size_t kMaxJwksBytes = 1u << 20;

bool IsHttpUrl(std::string_view uri) { return uri.starts_with("http://") || uri.starts_with("https://"); }

Result<std::string> ReadFileLimited(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot open JWKS file " + path);
  std::string out(kMaxJwksBytes + 1, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  if (in.bad()) return IoError("cannot read JWKS file " + path);
  out.resize(static_cast<size_t>(in.gcount()));
  if (out.size() > kMaxJwksBytes) return ResourceExhaustedError("JWKS file " + path + " over 1 MiB");
  return out;
}

Result<std::string> Get(std::string_view url, std::chrono::milliseconds timeout, const std::string& ca_file) {
  http::ClientOptions options;
  options.timeout = timeout;
  options.max_body_bytes = kMaxJwksBytes;
  options.ca_file = ca_file;
  ASSIGN_OR_RETURN(http::ClientResponse res, http::HttpGet(url, options));
  if (res.status != 200) return UnavailableError("HTTP " + std::to_string(res.status) + " from " + std::string(url));
  return std::move(res.body);
}

}  // namespace

JwksCache::JwksCache(Options options) : options_(std::move(options)) {}

Result<KeySet> JwksCache::Fetch() const {
  std::string body;
  if (IsHttpUrl(options_.jwks_uri)) {
    ASSIGN_OR_RETURN(body, Get(options_.jwks_uri, options_.fetch_timeout, options_.ca_file));
  } else {
    std::string path = options_.jwks_uri.starts_with("file://") ? options_.jwks_uri.substr(7) : options_.jwks_uri;
    ASSIGN_OR_RETURN(body, ReadFileLimited(path));
  }
  auto keys = KeySet::FromJwksJson(body);
  if (!keys.ok())
    return Status(keys.status().code(), "JWKS from " + options_.jwks_uri + ": " + keys.status().message());
  if (keys->size() == 0) return InvalidArgumentError("JWKS from " + options_.jwks_uri + " has no usable signing keys");
  return keys;
}

JwksCache::Snapshot JwksCache::MaybeRefresh(Reason reason, uint64_t seen_generation) {
  std::unique_lock lock(mu_);
  if (reason != Reason::kForced && generation_ != seen_generation) return {keys_, generation_};  // refreshed meanwhile
  if (fetching_) {
    if (reason == Reason::kStale && keys_) return {keys_, generation_};
    // Wait for that fetch only, not for any that starts after it.
    uint64_t completed = completed_;
    fetched_.wait(lock, [&] { return completed_ != completed; });
    return {keys_, generation_};
  }
  Clock::time_point now = Clock::now();
  if (reason != Reason::kForced && attempted_ && now - last_attempt_ < options_.min_refresh_interval) {
    return {keys_, generation_};
  }
  fetching_ = true;
  attempted_ = true;
  last_attempt_ = now;
  ++fetch_count_;
  lock.unlock();

  Result<KeySet> fetched = Fetch();

  lock.lock();
  fetching_ = false;
  ++completed_;
  if (fetched.ok()) {
    keys_ = std::make_shared<const KeySet>(std::move(fetched).value());
    fetched_at_ = Clock::now();
    ++generation_;
    last_error_ = Status::Ok();
  } else {
    last_error_ = fetched.status();
  }
  fetched_.notify_all();
  return {keys_, generation_};
}

Status JwksCache::Refresh() {
  MaybeRefresh(Reason::kForced, 0);
  std::lock_guard lock(mu_);
  return last_error_;
}

std::shared_ptr<const KeySet> JwksCache::keys() const {
  std::lock_guard lock(mu_);
  return keys_;
}

uint64_t JwksCache::fetch_count() const {
  std::lock_guard lock(mu_);
  return fetch_count_;
}

Result<Claims> JwksCache::Verify(std::string_view token, const VerifyOptions& options) {
  Snapshot snap;
  bool stale;
  {
    std::lock_guard lock(mu_);
    snap = {keys_, generation_};
    stale = !keys_ || Clock::now() - fetched_at_ >= options_.ttl;
  }
  if (stale) {
    snap = MaybeRefresh(Reason::kStale, snap.generation);
    if (!snap.keys) {
      std::lock_guard lock(mu_);
      return UnavailableError("no signing keys from the identity provider" +
                              (last_error_.ok() ? std::string() : ": " + last_error_.message()));
    }
  }

  // A kid we do not know may be a key the provider has just rotated in.
  // Worth a fetch only for a token that could otherwise pass.
  auto header = DecodeJwtHeader(token);
  if (header.ok() && !header->kid.empty() && !snap.keys->Find(header->kid)) {
    std::optional<Alg> alg = ParseAlg(header->alg);
    if (alg &&
        std::find(options.allowed_algs.begin(), options.allowed_algs.end(), *alg) != options.allowed_algs.end()) {
      snap = MaybeRefresh(Reason::kUnknownKid, snap.generation);
    }
  }
  return VerifyJwt(token, *snap.keys, options);
}

Result<std::string> DiscoverJwksUri(std::string_view issuer, std::chrono::milliseconds timeout,
                                    const std::string& ca_file) {
  if (!IsHttpUrl(issuer)) return InvalidArgumentError("issuer is not an http(s) URL");
  std::string url(issuer);
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/.well-known/openid-configuration";
  ASSIGN_OR_RETURN(std::string body, Get(url, timeout, ca_file));
  auto doc = json::Document::Parse(body);
  if (!doc.ok() || !doc->root().is_object()) return InvalidArgumentError("OpenID configuration is not a JSON object");
  const json::Value* iss = doc->root().Find("issuer");
  if (!iss || !iss->is_string() || iss->as_string() != issuer) {
    return InvalidArgumentError("OpenID configuration names a different issuer");
  }
  const json::Value* jwks_uri = doc->root().Find("jwks_uri");
  if (!jwks_uri || !jwks_uri->is_string()) return InvalidArgumentError("OpenID configuration has no jwks_uri");
  std::string out(jwks_uri->as_string());
  if (!IsHttpUrl(out)) return InvalidArgumentError("jwks_uri is not an http(s) URL");
  if (issuer.starts_with("https://") && !out.starts_with("https://")) {
    return InvalidArgumentError("jwks_uri of an https issuer is not https");
  }
  return out;
}

}  // namespace bevan::auth
