// JSON Web Tokens signed with asymmetric keys: compact JWS (RFC 7515) with
// RS256/RS384 (RSASSA-PKCS1-v1_5) and ES256/ES384 (ECDSA, JOSE r||s form),
// keys as PEM or JWK (RFC 7517), key sets as JWKS.
//
// Only asymmetric algorithms exist here: "none", HS* and PS* tokens are
// always rejected, and a key verifies only tokens of its own algorithm, so a
// token cannot pick how it is checked (no RS/HS or RS/ES confusion).
//
// OpenSSL 3 is hidden behind this header (only a forward declaration).
// Keys are immutable after construction and safe to use from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "json/json.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace bevan::auth {

// base64url without padding (RFC 7515 section 2).
std::string Base64UrlEncode(std::string_view bytes);
// Strict: only the url-safe alphabet, no padding, no whitespace, and unused
// trailing bits zero (so every value has one encoding). nullopt otherwise.
std::optional<std::string> Base64UrlDecode(std::string_view text);

enum class Alg : unsigned char { kRS256, kRS384, kES256, kES384 };

std::string_view AlgName(Alg alg);  // "RS384"
// Only the four names above; "none", HS*, PS* and anything else: nullopt.
std::optional<Alg> ParseAlg(std::string_view name);

// An OpenSSL 3 key with its JWK metadata (algorithm and kid). Copies share
// the underlying key, which is never modified.
class Key {
 public:
  // A fresh key: RSA 2048 for RS*, P-256 for ES256, P-384 for ES384.
  static Result<Key> Generate(Alg alg, std::string kid);
  // A private (PKCS#8 or traditional) or public (SubjectPublicKeyInfo) PEM
  // key. InvalidArgument unless it parses and fits `alg` (RSA of at least
  // 2048 bits for RS*, the right curve for ES*).
  static Result<Key> FromPem(std::string_view pem, Alg alg, std::string kid);
  // A public JWK: RSA ("n", "e") or EC ("crv" P-256/P-384, "x", "y"; the
  // point must be on the curve). "alg" must be one of ours; when absent it is
  // inferred: from "crv" for EC, RS256 for RSA (the OpenID Connect default,
  // and what providers that omit "alg" such as Entra ID use). A "use" other
  // than "sig" is refused. "kid" is optional. Private members are ignored.
  // InvalidArgument when malformed, Unimplemented for other kty/alg/crv.
  static Result<Key> FromJwk(const json::Value& jwk);

  // {"kty":..,"kid":..,"alg":..,"use":"sig",<"n","e" | "crv","x","y">}
  std::string PublicJwkJson() const;
  // PKCS#8 PEM of the private key, for persisting a generated signing key.
  // Empty for a public-only key.
  std::string PrivatePem() const;
  // SubjectPublicKeyInfo PEM.
  std::string PublicPem() const;

  Alg alg() const { return alg_; }
  const std::string& kid() const { return kid_; }
  bool has_private() const { return has_private_; }
  // Internal: the OpenSSL key.
  evp_pkey_st* pkey() const { return pkey_.get(); }

 private:
  Key(std::shared_ptr<evp_pkey_st> pkey, Alg alg, std::string kid, bool has_private);

  std::shared_ptr<evp_pkey_st> pkey_;
  Alg alg_ = Alg::kRS256;
  std::string kid_;
  bool has_private_ = false;
};

// Keys by kid. Not thread-safe to modify; concurrent reads are safe.
class KeySet {
 public:
  // Adds `key`; a key with the same kid is replaced.
  void Add(Key key);
  const Key* Find(std::string_view kid) const;  // nullptr if unknown
  // {"keys":[...]}. Keys of an unsupported kty/alg/crv or "use" are skipped;
  // InvalidArgument when the document or a supported key is malformed.
  static Result<KeySet> FromJwksJson(std::string_view jwks_json);
  std::string ToJwksJson() const;  // public keys only: {"keys":[...]}
  size_t size() const { return keys_.size(); }
  std::span<const Key> keys() const { return keys_; }

 private:
  std::vector<Key> keys_;
};

// Signs a compact JWS with header {"alg":..,"typ":"JWT","kid":..} ("kid"
// left out when the key has none). `claims_json` must be a JSON object
// (InvalidArgument otherwise); it is signed as given. FailedPrecondition
// when `key` has no private part.
Result<std::string> SignJwt(const Key& key, std::string_view claims_json);

struct VerifyOptions {
  std::vector<Alg> allowed_algs;       // allow-list; a token whose alg is not in it is rejected
  std::string issuer;                  // required "iss" (empty: not checked)
  std::vector<std::string> audiences;  // "aud" (string or array) must contain one of these (empty: not checked)
  int64_t now = 0;                     // unix seconds; 0 = current time
  int64_t leeway_seconds = 30;
  bool require_exp = true;
};

struct Claims {
  std::string payload_json;  // the decoded payload, verbatim
  // Common string claims ("fhirUser", "patient"), empty if absent. "scope"
  // given as an array of strings is joined with spaces.
  std::string iss, sub, jti, scope, client_id, fhir_user, patient;
  std::vector<std::string> aud;
  int64_t exp = 0, nbf = 0, iat = 0;  // 0 if absent; fractions are truncated
  // Any top-level string claim; nullopt if absent or not a string.
  std::optional<std::string> GetString(std::string_view name) const;
};

// The JOSE header of a compact JWS, decoded without verifying anything.
struct JwtHeader {
  std::string alg;  // as written
  std::string kid;  // empty if absent
  std::string typ;  // empty if absent
};
// InvalidArgument unless the token has three parts and its first decodes to a
// JSON object whose "alg", "kid" and "typ" (where present) are strings.
Result<JwtHeader> DecodeJwtHeader(std::string_view token);

// Largest token VerifyJwt looks at.
inline constexpr size_t kMaxTokenBytes = 16 * 1024;

// Verifies a compact JWS, in this order:
//  - structure: at most kMaxTokenBytes, three strict base64url parts;
//  - header: a JSON object; "alg" not "none" nor HS*, one of ours, in
//    options.allowed_algs; no "crit";
//  - key: "kid" must be in `keys`; a token without kid is accepted only when
//    `keys` holds exactly one key of its alg; the key's alg must equal the
//    header's;
//  - signature (ECDSA: exactly r||s of the curve's size);
//  - payload: a JSON object; exp (required unless !require_exp), nbf, iat
//    not in the future, all with leeway; iss; aud.
// Errors: InvalidArgument for malformed tokens, FailedPrecondition for
// well-formed ones that are refused, with a message such as "token expired",
// "unknown kid", "alg none not allowed". Messages never quote the token.
// Thread-safe.
Result<Claims> VerifyJwt(std::string_view token, const KeySet& keys, const VerifyOptions& options);

}  // namespace bevan::auth
