// The resource server's side of authorisation: turns a request's
// `Authorization: Bearer <JWT>` into an Access (access.h).
//
// Accepted tokens: those this server's AuthServer signed (its keys, ES384 or
// RS384, its issuer, audience = the FHIR base URL, not revoked), and, when
// configured, those of one external OpenID Connect provider (its issuer, keys
// from its jwks_uri through a JwksCache, audience as configured). Verified
// claims are cached by token hash (TokenCache). Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/access.h"
#include "auth/auth_config.h"
#include "auth/jwks.h"
#include "auth/jwt.h"
#include "auth/token_cache.h"
#include "common/status.h"
#include "http/message.h"

namespace bevan::auth {

struct ResourceServerOptions {
  std::string issuer;    // this server's issuer (AuthServer::urls().issuer); empty: own tokens not accepted
  std::string audience;  // the FHIR base URL
  std::shared_ptr<const KeySet> keys;                    // AuthServer::verification_keys()
  std::function<bool(std::string_view jti)> is_revoked;  // AuthServer::IsRevoked; may be unset
  std::optional<ExternalProviderConfig> external;        // audience defaults to `audience`
  std::string external_ca_file;                          // PEM CA bundle for the provider's jwks_uri (tests)
  size_t cache_entries = 100000;
  int64_t cache_seconds = 300;
  int64_t leeway_seconds = 30;
  std::function<int64_t()> clock;  // unix seconds; default the system clock
};

class ResourceServer {
 public:
  explicit ResourceServer(ResourceServerOptions options);
  ~ResourceServer();
  ResourceServer(const ResourceServer&) = delete;
  ResourceServer& operator=(const ResourceServer&) = delete;

  // The Access of the request's bearer token: enforce = true, client_id,
  // subject, fhir_user, patient, scopes, identity_level ("idl", or
  // "identity_proofing_level" from NHS login), remote_address.
  // Errors: NotFound when there is no bearer token; FailedPrecondition when
  // the token is invalid, expired, revoked or for someone else. The message
  // is for logs and tests, not for the client (see Challenge).
  Result<Access> Authenticate(const http::Request& req) const;
  // The same without a copy: the Access cached with the verified token
  // (remote_address empty; the request carries it). For the request path.
  Result<std::shared_ptr<const Access>> AuthenticateShared(const http::Request& req) const;

  // Sets 401 and `WWW-Authenticate: Bearer realm="bevan"` (with
  // error="invalid_token" and a generic description unless the token was
  // missing) on `res`; the caller writes the body.
  static void Challenge(const Status& error, http::Response& res);

 private:
  Result<std::shared_ptr<const Claims>> Verify(std::string_view token, int64_t now) const;

  ResourceServerOptions options_;
  std::unique_ptr<JwksCache> external_keys_;
  std::unique_ptr<TokenCache> cache_;
};

}  // namespace bevan::auth
