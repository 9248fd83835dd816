// The SMART App Launch v2 authorisation server: standalone launch with the
// authorization code flow and PKCE (S256 only), refresh tokens with rotation,
// client_credentials for backend services (private_key_jwt, RS384/ES384),
// token introspection (RFC 7662), the server's JWKS and the
// .well-known/smart-configuration document.
//
//   GET  /.well-known/smart-configuration, /fhir/.well-known/smart-configuration
//   GET  /auth/authorize   validates the request, shows the sign-in form
//   POST /auth/login       checks the password (Argon2id), identity level and
//                          patient context, redirects with code and state
//   POST /auth/token       authorization_code, refresh_token, client_credentials
//   POST /auth/introspect  for confidential and backend clients, or a bearer token
//   GET  /auth/jwks        the public signing keys
//
// Patient context: `launch/patient` gives a patient user their own Patient
// (from fhirUser); a clinician or administrator types a Patient id into the
// sign-in form. Without a patient context patient/ scopes are not granted.
// Patient users never get user/ scopes and no user gets system/ scopes; those
// are for client_credentials.
//
// State (sign-in forms, codes, refresh tokens, used assertion ids, revoked
// token ids) is in memory: a restart signs everyone out. Every table is
// bounded; expired entries are dropped as new ones arrive.
//
// Thread-safe: Handle may be called concurrently. Password checks run
// outside the lock (they take tens of milliseconds: route /auth/login and
// /auth/token to a work pool).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "auth/auth_config.h"
#include "auth/clients.h"
#include "auth/jwt.h"
#include "auth/users.h"
#include "common/status.h"
#include "http/message.h"

namespace bevan::auth {

// A sign-in attempt, for the audit trail (never logged: it names people).
struct LoginEvent {
  bool success = false;
  std::string username;
  std::string fhir_user;  // the user's FHIR identity, when the username is known
  std::string client_id;
  std::string remote_address;
  std::string request_id;
  std::string description;  // why it failed ("wrong username or password", ...)
};

struct AuthServerOptions {
  std::string issuer;         // "https://host:port", no trailing slash; endpoints are under issuer + "/auth"
  std::string fhir_base_url;  // the one accepted `aud`, and the audience of access tokens
  std::string required_identity_level = "P9";
  int64_t access_token_seconds = 3600;
  int64_t refresh_token_seconds = 86400;
  int64_t code_seconds = 60;
  int64_t login_form_seconds = 600;
  int64_t max_assertion_lifetime = 300;  // a client assertion's exp at most this far ahead
  int64_t leeway_seconds = 30;
  size_t max_login_forms = 10000;
  size_t max_codes = 10000;
  size_t max_refresh_tokens = 100000;
  size_t max_body_bytes = 16 * 1024;
  int max_login_attempts_per_form = 10;
  LoginThrottle::Options throttle;
  // Cost of the stand-in hash checked for unknown usernames (so that they
  // take as long as known ones). Match the cost of the users file.
  Argon2Params dummy_hash_params;
  // Seconds since the epoch; default the system clock. Tests move time.
  std::function<int64_t()> clock;
  // Keys of a backend client registered with a jwks_uri (e.g. via a
  // JwksCache). Unset: such clients cannot authenticate.
  std::function<Result<std::shared_ptr<const KeySet>>(const Client&)> remote_client_keys;
  // Called for every sign-in attempt that reached the password check (the
  // audit trail records logins and failed logins). Must be cheap and not throw.
  std::function<void(const LoginEvent&)> on_login;
};

// The endpoint URLs, for the CapabilityStatement's SMART security extension.
struct AuthUrls {
  std::string issuer;
  std::string authorize;
  std::string token;
  std::string introspect;
  std::string jwks;
};

class AuthServer {
 public:
  // `signing_key` must hold a private key (RS384 or ES384).
  AuthServer(AuthServerOptions options, UserDirectory users, ClientRegistry clients, Key signing_key);
  ~AuthServer();
  AuthServer(const AuthServer&) = delete;
  AuthServer& operator=(const AuthServer&) = delete;

  // Builds the server from the config: loads users and clients, and the
  // signing key from signing_key_file, else env BEVAN_AUTH_SIGNING_KEY_FILE,
  // else <data_dir>/auth-signing-key.pem (made with mode 0600 if missing),
  // else a key generated in memory (tokens die with the process).
  // `default_issuer` and `default_fhir_base_url` apply when the config has none.
  static Result<std::unique_ptr<AuthServer>> Create(const AuthConfig& config, const std::string& default_issuer,
                                                    const std::string& default_fhir_base_url,
                                                    AuthServerOptions base_options = {});

  // Whether `path` is one of the endpoints above.
  static bool IsAuthPath(std::string_view path);

  // Answers one request to an auth endpoint (404 for other paths).
  void Handle(const http::Request& req, http::Response& res) const;

  const AuthUrls& urls() const { return urls_; }
  const AuthServerOptions& options() const { return options_; }
  // The public side of the signing key(s), for the resource server.
  std::shared_ptr<const KeySet> verification_keys() const { return keys_; }
  // Whether an access token id was revoked (its code was reused, or a rotated
  // refresh token was replayed).
  bool IsRevoked(std::string_view jti) const;
  // Where the signing key came from, for the startup message ("file ...",
  // "generated in memory", ...). Never the key.
  const std::string& key_origin() const { return key_origin_; }

  class State;

 private:
  int64_t Now() const;
  void SmartConfiguration(http::Response& res) const;
  void Authorize(const http::Request& req, http::Response& res) const;
  void Login(const http::Request& req, http::Response& res) const;
  void Token(const http::Request& req, http::Response& res) const;
  void Introspect(const http::Request& req, http::Response& res) const;

  AuthServerOptions options_;
  UserDirectory users_;
  ClientRegistry clients_;
  std::shared_ptr<const KeySet> keys_;  // holds the signing key (with its private part)
  std::string signing_kid_;
  std::string dummy_hash_;
  std::string key_origin_;
  AuthUrls urls_;
  std::unique_ptr<State> state_;
};

}  // namespace bevan::auth
