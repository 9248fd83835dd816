// Registered OAuth clients of the authorisation server, from the clients
// file. Immutable after loading; thread-safe.
//
// {"clients": [
//   {"client_id": "app", "type": "public", "redirect_uris": ["https://app/cb"],
//    "scopes": ["openid", "fhirUser", "launch/patient", "patient/*.rs", "offline_access"]},
//   {"client_id": "web", "type": "confidential", "client_secret_hash": "$argon2id$...", ...},
//   {"client_id": "etl", "type": "backend", "jwks": {"keys": [...]} | "jwks_uri": "https://...",
//    "scopes": ["system/Patient.rs"]}]}
//
// public: no secret (PKCE only), token_endpoint_auth_method "none".
// confidential: client_secret_basic, the secret stored as an Argon2id hash.
// backend: private_key_jwt (RS384/ES384) with keys from `jwks` or `jwks_uri`;
//   may use client_credentials, and the code flow when it has redirect_uris.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwt.h"
#include "common/status.h"
#include "json/json.h"

namespace bevan::auth {

enum class ClientType : unsigned char { kPublic, kConfidential, kBackend };

std::string_view ClientTypeName(ClientType type);  // "public", "confidential", "backend"

struct Client {
  std::string client_id;
  ClientType type = ClientType::kPublic;
  std::vector<std::string> redirect_uris;  // compared exactly
  std::string client_secret_hash;          // confidential only
  std::shared_ptr<const KeySet> jwks;      // backend with inline keys
  std::string jwks_uri;                    // backend with remote keys
  std::vector<std::string> scopes;         // what it may be granted, compared exactly

  bool HasRedirectUri(std::string_view uri) const;
  bool MayRequest(std::string_view scope) const;
};

class ClientRegistry {
 public:
  ClientRegistry() = default;
  explicit ClientRegistry(std::vector<Client> clients);

  static Result<ClientRegistry> FromJson(const json::Value& root);
  static Result<ClientRegistry> FromFile(const std::string& path);

  const Client* Find(std::string_view client_id) const;
  size_t size() const { return clients_.size(); }
  std::vector<std::string> Ids() const;

 private:
  std::map<std::string, Client, std::less<>> clients_;
};

}  // namespace bevan::auth
