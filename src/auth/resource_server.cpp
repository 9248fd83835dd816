#include "auth/resource_server.h"

#include <chrono>

namespace bevan::auth {

namespace {

struct VerifiedToken : Claims {
  Access access;  // what the token allows, without the request's address
};

// The issuer of a token, read before its signature is checked so that the
// right keys check it. Nothing else is trusted from the unverified payload.
std::string UnverifiedIssuer(std::string_view token) {
  size_t a = token.find('.');
  if (a == std::string_view::npos) return {};
  size_t b = token.find('.', a + 1);
  if (b == std::string_view::npos) return {};
  auto payload = Base64UrlDecode(token.substr(a + 1, b - a - 1));
  if (!payload) return {};
  auto doc = json::Document::Parse(*payload, json::ParseOptions{.max_size = kMaxTokenBytes, .max_depth = 16});
  if (!doc.ok()) return {};
  const json::Value* iss = doc->root().Find("iss");
  return iss && iss->is_string() ? std::string(iss->as_string()) : std::string();
}

}  // namespace

ResourceServer::ResourceServer(ResourceServerOptions options) : options_(std::move(options)) {
  if (!options_.clock) {
    options_.clock = [] {
      return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  if (options_.external) {
    if (options_.external->audience.empty()) options_.external->audience = options_.audience;
    JwksCache::Options jo;
    jo.jwks_uri = options_.external->jwks_uri;
    jo.ca_file = options_.external_ca_file;
    external_keys_ = std::make_unique<JwksCache>(std::move(jo));
  }
  cache_ = std::make_unique<TokenCache>(options_.cache_entries, options_.cache_seconds);
}

ResourceServer::~ResourceServer() = default;

Result<std::shared_ptr<const Claims>> ResourceServer::Verify(std::string_view token, int64_t now) const {
  if (auto cached = cache_->Find(token, now)) return cached;
  std::string iss = UnverifiedIssuer(token);
  VerifyOptions vo;
  vo.now = now;
  vo.leeway_seconds = options_.leeway_seconds;
  vo.require_exp = true;
  Result<Claims> claims = FailedPreconditionError("token from an unknown issuer");
  if (!iss.empty() && iss == options_.issuer && options_.keys) {
    vo.allowed_algs = {Alg::kES384, Alg::kRS384};
    vo.issuer = options_.issuer;
    vo.audiences = {options_.audience};
    claims = VerifyJwt(token, *options_.keys, vo);
  } else if (!iss.empty() && external_keys_ && iss == options_.external->issuer) {
    vo.allowed_algs = {Alg::kRS256, Alg::kRS384, Alg::kES256, Alg::kES384};
    vo.issuer = options_.external->issuer;
    vo.audiences = {options_.external->audience};
    claims = external_keys_->Verify(token, vo);
  }
  if (!claims.ok()) return FailedPreconditionError(claims.status().message());
  // The Access a token gives is worked out once, when it is verified, and
  // cached with its claims: requests with a cached token parse nothing.
  auto verified = std::make_shared<VerifiedToken>();
  static_cast<Claims&>(*verified) = std::move(claims).value();
  const Claims& c = *verified;
  auto scopes = ParseScopes(c.scope);
  if (!scopes.ok()) return FailedPreconditionError("token with a malformed scope");
  Access& access = verified->access;
  access.enforce = true;
  access.client_id = c.client_id.empty() ? c.GetString("azp").value_or("") : c.client_id;
  access.subject = c.sub;
  access.fhir_user = c.fhir_user;
  if (!c.patient.empty()) access.patient = c.patient;
  access.scopes = std::move(scopes).value();
  access.identity_level = c.GetString("idl").value_or(c.GetString("identity_proofing_level").value_or(""));
  std::shared_ptr<const Claims> shared = verified;
  cache_->Insert(token, shared, now);
  return shared;
}

Result<Access> ResourceServer::Authenticate(const http::Request& req) const {
  ASSIGN_OR_RETURN(std::shared_ptr<const Access> shared, AuthenticateShared(req));
  Access access = *shared;
  access.remote_address = req.remote_address;
  return access;
}

Result<std::shared_ptr<const Access>> ResourceServer::AuthenticateShared(const http::Request& req) const {
  std::string_view authorization = req.Header("Authorization");
  if (authorization.empty()) return NotFoundError("no bearer token");
  // RFC 6750: the scheme is case-insensitive.
  if (authorization.size() < 8 ||
      (authorization.substr(0, 7) != "Bearer " && authorization.substr(0, 7) != "bearer ")) {
    return FailedPreconditionError("not a bearer token");
  }
  std::string_view token = authorization.substr(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  if (token.empty() || token.size() > kMaxTokenBytes) return FailedPreconditionError("malformed bearer token");
  int64_t now = options_.clock();
  ASSIGN_OR_RETURN(std::shared_ptr<const Claims> claims, Verify(token, now));
  // Revocation is checked on every request, cached or not.
  if (claims->iss == options_.issuer && options_.is_revoked && options_.is_revoked(claims->jti)) {
    return FailedPreconditionError("token revoked");
  }
  // Every Claims in the cache is a VerifiedToken (Verify makes them); the
  // Access shares its lifetime.
  const auto& verified = static_cast<const VerifiedToken&>(*claims);
  return std::shared_ptr<const Access>(claims, &verified.access);
}

void ResourceServer::Challenge(const Status& error, http::Response& res) {
  res.status = 401;
  if (error.code() == StatusCode::kNotFound) {
    res.SetHeader("WWW-Authenticate", "Bearer realm=\"bevan\"");
  } else {
    res.SetHeader(
        "WWW-Authenticate",
        "Bearer realm=\"bevan\", error=\"invalid_token\", error_description=\"the access token is not valid\"");
  }
}

}  // namespace bevan::auth
