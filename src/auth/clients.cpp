#include "auth/clients.h"

#include <algorithm>

#include "auth/server_util.h"

namespace bevan::auth {

std::string_view ClientTypeName(ClientType type) {
  switch (type) {
    case ClientType::kPublic: return "public";
    case ClientType::kConfidential: return "confidential";
    case ClientType::kBackend: return "backend";
  }
  return "public";
}

bool Client::HasRedirectUri(std::string_view uri) const {
  return std::find(redirect_uris.begin(), redirect_uris.end(), uri) != redirect_uris.end();
}

bool Client::MayRequest(std::string_view scope) const {
  return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

ClientRegistry::ClientRegistry(std::vector<Client> clients) {
  for (Client& c : clients) {
    std::string id = c.client_id;
    clients_.emplace(std::move(id), std::move(c));
  }
}

namespace {

Result<std::vector<std::string>> StringList(const json::Value& v, const std::string& what) {
  if (!v.is_array()) return InvalidArgumentError(what + " must be an array of strings");
  std::vector<std::string> out;
  for (const json::Value& item : v.items()) {
    if (!item.is_string() || item.as_string().empty()) {
      return InvalidArgumentError(what + " must be an array of non-empty strings");
    }
    out.emplace_back(item.as_string());
  }
  return out;
}

}  // namespace

Result<ClientRegistry> ClientRegistry::FromJson(const json::Value& root) {
  const json::Value* list = root.Find("clients");
  if (!list || !list->is_array()) return InvalidArgumentError("clients file: expected {\"clients\": [...]}");
  std::vector<Client> clients;
  for (const json::Value& item : list->items()) {
    if (!item.is_object()) return InvalidArgumentError("clients file: each client must be an object");
    Client c;
    std::string type = "public";
    for (const json::Member& m : item.members()) {
      std::string_view k = m.name();
      std::string what = "clients file: '" + std::string(k) + "'";
      if (k == "redirect_uris") {
        ASSIGN_OR_RETURN(c.redirect_uris, StringList(m.value, what));
      } else if (k == "scopes") {
        ASSIGN_OR_RETURN(c.scopes, StringList(m.value, what));
      } else if (k == "jwks") {
        auto keys = KeySet::FromJwksJson(json::ToString(m.value));
        if (!keys.ok()) return InvalidArgumentError(what + ": " + keys.status().message());
        c.jwks = std::make_shared<const KeySet>(std::move(keys).value());
      } else if (k == "client_id" || k == "type" || k == "client_secret_hash" || k == "jwks_uri" || k == "name") {
        if (!m.value.is_string()) return InvalidArgumentError(what + " must be a string");
        std::string_view v = m.value.as_string();
        if (k == "client_id")
          c.client_id = v;
        else if (k == "type")
          type = v;
        else if (k == "client_secret_hash")
          c.client_secret_hash = v;
        else if (k == "jwks_uri")
          c.jwks_uri = v;
      } else {
        return InvalidArgumentError(what + " is not a known client setting");
      }
    }
    if (c.client_id.empty() || c.client_id.size() > 128) {
      return InvalidArgumentError("clients file: every client needs a client_id (at most 128 bytes)");
    }
    std::string who = "clients file: client '" + c.client_id + "'";
    if (type == "public") {
      c.type = ClientType::kPublic;
    } else if (type == "confidential") {
      c.type = ClientType::kConfidential;
      if (!c.client_secret_hash.starts_with("$argon2id$")) {
        return InvalidArgumentError(who + " needs an argon2id client_secret_hash (bevan auth hash-password)");
      }
    } else if (type == "backend") {
      c.type = ClientType::kBackend;
      if (static_cast<bool>(c.jwks) == !c.jwks_uri.empty())
        return InvalidArgumentError(who + " needs exactly one of jwks and jwks_uri");
      if (!c.jwks_uri.empty() && !c.jwks_uri.starts_with("https://") && !c.jwks_uri.starts_with("http://127.") &&
          !c.jwks_uri.starts_with("http://localhost")) {
        return InvalidArgumentError(who + ": jwks_uri must be https (or loopback http)");
      }
    } else {
      return InvalidArgumentError(who + ": type must be public, confidential or backend");
    }
    if (c.type != ClientType::kConfidential && !c.client_secret_hash.empty()) {
      return InvalidArgumentError(who + ": only confidential clients have a client_secret_hash");
    }
    if (c.type != ClientType::kBackend && (c.jwks || !c.jwks_uri.empty())) {
      return InvalidArgumentError(who + ": only backend clients have jwks or jwks_uri");
    }
    for (const std::string& uri : c.redirect_uris) {
      if (uri.find('#') != std::string::npos) return InvalidArgumentError(who + ": a redirect URI has a fragment");
      if (!uri.starts_with("https://") && !uri.starts_with("http://")) {
        return InvalidArgumentError(who + ": redirect URIs must be absolute http(s) URLs");
      }
    }
    if (c.type != ClientType::kBackend && c.redirect_uris.empty()) {
      return InvalidArgumentError(who + " needs redirect_uris");
    }
    if (std::any_of(clients.begin(), clients.end(), [&](const Client& o) { return o.client_id == c.client_id; })) {
      return InvalidArgumentError(who + " appears twice");
    }
    clients.push_back(std::move(c));
  }
  return ClientRegistry(std::move(clients));
}

Result<ClientRegistry> ClientRegistry::FromFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, internal::ReadFile(path));
  auto doc = json::Document::Parse(text);
  if (!doc.ok()) return InvalidArgumentError(path + ": " + doc.status().message());
  auto reg = FromJson(doc->root());
  if (!reg.ok()) return InvalidArgumentError(path + ": " + reg.status().message());
  return reg;
}

std::vector<std::string> ClientRegistry::Ids() const {
  std::vector<std::string> ids;
  for (const auto& [id, c] : clients_) ids.push_back(id);
  return ids;
}

const Client* ClientRegistry::Find(std::string_view client_id) const {
  auto it = clients_.find(client_id);
  return it == clients_.end() ? nullptr : &it->second;
}

}  // namespace bevan::auth
