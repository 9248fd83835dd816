#include "auth/auth_config.h"

#include "auth/users.h"

namespace bevan::auth {

namespace {

std::string Resolve(const std::string& base_dir, std::string path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

}  // namespace

Result<AuthConfig> ParseAuthConfig(const json::Value& section, const std::string& base_dir) {
  if (!section.is_object()) return InvalidArgumentError("'auth' must be an object");
  AuthConfig c;
  for (const json::Member& m : section.members()) {
    std::string_view k = m.name();
    const json::Value& v = m.value;
    std::string what = "auth: '" + std::string(k) + "'";
    auto str = [&](std::string& out) -> Status {
      if (!v.is_string()) return InvalidArgumentError(what + " must be a string");
      out = v.as_string();
      return Status::Ok();
    };
    auto seconds = [&](int64_t& out) -> Status {
      auto n = v.AsInt64();
      if (!n || *n < 60 || *n > 90 * 86400) return InvalidArgumentError(what + " must be an integer in [60, 7776000]");
      out = *n;
      return Status::Ok();
    };
    if (k == "issuer") {
      RETURN_IF_ERROR(str(c.issuer));
    } else if (k == "fhir_base_url") {
      RETURN_IF_ERROR(str(c.fhir_base_url));
    } else if (k == "users_file") {
      RETURN_IF_ERROR(str(c.users_file));
    } else if (k == "clients_file") {
      RETURN_IF_ERROR(str(c.clients_file));
    } else if (k == "signing_key_file") {
      RETURN_IF_ERROR(str(c.signing_key_file));
    } else if (k == "signing_alg") {
      RETURN_IF_ERROR(str(c.signing_alg));
      if (c.signing_alg != "ES384" && c.signing_alg != "RS384") {
        return InvalidArgumentError(what + " must be ES384 or RS384");
      }
    } else if (k == "data_dir") {
      RETURN_IF_ERROR(str(c.data_dir));
    } else if (k == "required_identity_level") {
      RETURN_IF_ERROR(str(c.required_identity_level));
      if (IdentityLevelRank(c.required_identity_level) < 0) return InvalidArgumentError(what + " must be P0, P5 or P9");
    } else if (k == "access_token_seconds") {
      RETURN_IF_ERROR(seconds(c.access_token_seconds));
    } else if (k == "refresh_token_seconds") {
      RETURN_IF_ERROR(seconds(c.refresh_token_seconds));
    } else if (k == "external") {
      if (!v.is_object()) return InvalidArgumentError(what + " must be an object");
      ExternalProviderConfig e;
      for (const json::Member& em : v.members()) {
        std::string ek(em.name());
        if (!em.value.is_string()) return InvalidArgumentError("auth.external: '" + ek + "' must be a string");
        if (ek == "issuer")
          e.issuer = em.value.as_string();
        else if (ek == "jwks_uri")
          e.jwks_uri = em.value.as_string();
        else if (ek == "audience")
          e.audience = em.value.as_string();
        else
          return InvalidArgumentError("auth.external: unknown setting '" + ek + "'");
      }
      if (e.issuer.empty() || e.jwks_uri.empty()) {
        return InvalidArgumentError("auth.external needs issuer and jwks_uri");
      }
      c.external = std::move(e);
    } else {
      return InvalidArgumentError("auth: unknown setting '" + std::string(k) + "'");
    }
  }
  c.users_file = Resolve(base_dir, c.users_file);
  c.clients_file = Resolve(base_dir, c.clients_file);
  c.signing_key_file = Resolve(base_dir, c.signing_key_file);
  c.data_dir = Resolve(base_dir, c.data_dir);
  if (c.issuer.ends_with('/')) c.issuer.pop_back();
  if (c.fhir_base_url.ends_with('/')) c.fhir_base_url.pop_back();
  return c;
}

}  // namespace bevan::auth
