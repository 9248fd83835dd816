// The "auth" section of `bevan serve`'s config file:
//
//   "auth": {
//     "issuer": "https://fhir.example.org",          // default: the server's scheme://host:port
//     "fhir_base_url": "https://fhir.example.org/fhir",  // the audience of tokens; default: serve's base URL
//     "users_file": "users.json",                    // local users (see users.h); optional
//     "clients_file": "clients.json",                // registered clients (see clients.h)
//     "signing_key_file": "signing-key.pem",         // PEM private key; or env BEVAN_AUTH_SIGNING_KEY_FILE
//     "signing_alg": "ES384",                        // ES384 (default) or RS384
//     "data_dir": "auth-data",                       // where a generated key is kept (0600); optional
//     "required_identity_level": "P9",               // users below it get access_denied
//     "access_token_seconds": 3600, "refresh_token_seconds": 86400,
//     "external": {"issuer": "...", "jwks_uri": "...", "audience": "..."}  // another OIDC provider's tokens
//   }
//
// Relative file names are resolved against the config file's directory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"
#include "json/json.h"

namespace bevan::auth {

struct ExternalProviderConfig {
  std::string issuer;
  std::string jwks_uri;
  std::string audience;  // default: the FHIR base URL
};

struct AuthConfig {
  std::string issuer;
  std::string fhir_base_url;
  std::string users_file;
  std::string clients_file;
  std::string signing_key_file;
  std::string signing_alg = "ES384";
  std::string data_dir;
  std::string required_identity_level = "P9";
  int64_t access_token_seconds = 3600;
  int64_t refresh_token_seconds = 86400;
  std::optional<ExternalProviderConfig> external;
};

// Parses the section. `base_dir` resolves relative file names ("" leaves
// them). Unknown keys and wrong types are InvalidArgument naming the key.
Result<AuthConfig> ParseAuthConfig(const json::Value& section, const std::string& base_dir);

}  // namespace bevan::auth
