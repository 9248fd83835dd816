// JWS with OpenSSL 3's EVP interface only (no deprecated RSA_/EC_KEY_ calls).
#include "auth/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <ctime>

namespace bevan::auth {

namespace {

template <auto F>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    F(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;

std::shared_ptr<evp_pkey_st> Share(PkeyPtr p) { return std::shared_ptr<evp_pkey_st>(p.release(), EVP_PKEY_free); }

// OpenSSL keeps failures in a per-thread queue; leaving them there would
// confuse the next TLS call on the same thread (SSL_get_error reads it).
Status CryptoError(StatusCode code, std::string message) {
  ERR_clear_error();
  return Status(code, std::move(message));
}

bool IsRsa(Alg alg) { return alg == Alg::kRS256 || alg == Alg::kRS384; }
const EVP_MD* Digest(Alg alg) { return alg == Alg::kRS256 || alg == Alg::kES256 ? EVP_sha256() : EVP_sha384(); }
// Bytes of one coordinate, and of r and s, for the ECDSA algorithms.
size_t EcFieldBytes(Alg alg) { return alg == Alg::kES256 ? 32 : 48; }
std::string_view CurveName(Alg alg) { return alg == Alg::kES256 ? "P-256" : "P-384"; }
const char* OpenSslCurveName(Alg alg) { return alg == Alg::kES256 ? "prime256v1" : "secp384r1"; }

constexpr size_t kMinRsaBits = 2048;

Status CheckKeyFitsAlg(EVP_PKEY* pkey, Alg alg) {
  if (IsRsa(alg)) {
    if (!EVP_PKEY_is_a(pkey, "RSA"))
      return InvalidArgumentError("key is not an RSA key, as " + std::string(AlgName(alg)) + " needs");
    if (static_cast<size_t>(EVP_PKEY_get_bits(pkey)) < kMinRsaBits) {
      return InvalidArgumentError("RSA key shorter than 2048 bits");
    }
    return Status::Ok();
  }
  if (!EVP_PKEY_is_a(pkey, "EC"))
    return InvalidArgumentError("key is not an EC key, as " + std::string(AlgName(alg)) + " needs");
  char group[64];
  size_t len = 0;
  if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len)) {
    return CryptoError(StatusCode::kInvalidArgument, "EC key without a named curve");
  }
  std::string_view name(group, len);
  if (name != OpenSslCurveName(alg) && name != CurveName(alg)) {
    return InvalidArgumentError("EC key is not on " + std::string(CurveName(alg)) + ", as " +
                                std::string(AlgName(alg)) + " needs");
  }
  return Status::Ok();
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

// Refuses to prompt for a passphrase: encrypted PEM keys are not supported.
int NoPassphrase(char*, int, int, void*) { return 0; }

std::string BnToBytes(const BIGNUM* bn, size_t pad = 0) {
  size_t n = pad ? pad : static_cast<size_t>(BN_num_bytes(bn));
  std::string out(n, '\0');
  if (pad) {
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
  } else {
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  }
  return out;
}

BnPtr BytesToBn(std::string_view bytes) {
  return BnPtr(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()), nullptr));
}

Result<std::string> GetBnParam(EVP_PKEY* pkey, const char* name, size_t pad = 0) {
  BIGNUM* raw = nullptr;
  if (!EVP_PKEY_get_bn_param(pkey, name, &raw)) return CryptoError(StatusCode::kInternal, "cannot read key parameter");
  BnPtr bn(raw);
  return BnToBytes(bn.get(), pad);
}

void AppendMember(std::string& out, std::string_view name, std::string_view value) {
  if (out.size() > 1) out += ',';
  json::WriteString(name, out);
  out += ':';
  json::WriteString(value, out);
}

// A string member of a JSON object: nullopt if absent, an error if not a string.
Result<std::optional<std::string_view>> OptionalString(const json::Value& object, std::string_view name,
                                                       std::string_view what) {
  const json::Value* v = object.Find(name);
  if (!v) return std::optional<std::string_view>();
  if (!v->is_string())
    return InvalidArgumentError(std::string(what) + " \"" + std::string(name) + "\" is not a string");
  return std::optional<std::string_view>(v->as_string());
}

Result<PkeyPtr> FromData(const char* type, OSSL_PARAM* params) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
    return CryptoError(StatusCode::kInvalidArgument, std::string("JWK is not a valid ") + type + " public key");
  }
  return PkeyPtr(raw);
}

constexpr std::string_view kBase64UrlAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (size_t i = 0; i < kBase64UrlAlphabet.size(); ++i)
    t[static_cast<unsigned char>(kBase64UrlAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr std::array<int8_t, 256> kDecodeTable = MakeDecodeTable();

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kBase64UrlAlphabet[v >> 18];
    out += kBase64UrlAlphabet[(v >> 12) & 63];
    out += kBase64UrlAlphabet[(v >> 6) & 63];
    out += kBase64UrlAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = byte(i) << 16;
    out += kBase64UrlAlphabet[v >> 18];
    out += kBase64UrlAlphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
    out += kBase64UrlAlphabet[v >> 18];
    out += kBase64UrlAlphabet[(v >> 12) & 63];
    out += kBase64UrlAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int8_t v = kDecodeTable[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string_view AlgName(Alg alg) {
  switch (alg) {
    case Alg::kRS256: return "RS256";
    case Alg::kRS384: return "RS384";
    case Alg::kES256: return "ES256";
    case Alg::kES384: return "ES384";
  }
  return "?";
}

std::optional<Alg> ParseAlg(std::string_view name) {
  if (name == "RS256") return Alg::kRS256;
  if (name == "RS384") return Alg::kRS384;
  if (name == "ES256") return Alg::kES256;
  if (name == "ES384") return Alg::kES384;
  return std::nullopt;
}

Key::Key(std::shared_ptr<evp_pkey_st> pkey, Alg alg, std::string kid, bool has_private)
    : pkey_(std::move(pkey)), alg_(alg), kid_(std::move(kid)), has_private_(has_private) {}

Result<Key> Key::Generate(Alg alg, std::string kid) {
  EVP_PKEY* raw = IsRsa(alg) ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                             : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", OpenSslCurveName(alg));
  if (!raw) return CryptoError(StatusCode::kInternal, "key generation failed");
  return Key(Share(PkeyPtr(raw)), alg, std::move(kid), true);
}

Result<Key> Key::FromPem(std::string_view pem, Alg alg, std::string kid) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return CryptoError(StatusCode::kInternal, "out of memory");
  bool has_private = true;
  PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!pkey) {
    bio.reset(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    has_private = false;
    pkey.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
  }
  if (!pkey) {
    return CryptoError(StatusCode::kInvalidArgument,
                       "not an unencrypted PEM private key or PEM public key (SubjectPublicKeyInfo)");
  }
  ERR_clear_error();  // the failed private-key attempt
  RETURN_IF_ERROR(CheckKeyFitsAlg(pkey.get(), alg));
  return Key(Share(std::move(pkey)), alg, std::move(kid), has_private);
}

Result<Key> Key::FromJwk(const json::Value& jwk) {
  if (!jwk.is_object()) return InvalidArgumentError("JWK is not an object");
  ASSIGN_OR_RETURN(auto kty, OptionalString(jwk, "kty", "JWK member"));
  if (!kty) return InvalidArgumentError("JWK has no \"kty\"");
  ASSIGN_OR_RETURN(auto kid, OptionalString(jwk, "kid", "JWK member"));
  ASSIGN_OR_RETURN(auto use, OptionalString(jwk, "use", "JWK member"));
  if (use && *use != "sig") return UnimplementedError("JWK \"use\" is not \"sig\"");
  ASSIGN_OR_RETURN(auto alg_name, OptionalString(jwk, "alg", "JWK member"));
  std::optional<Alg> alg;
  if (alg_name) {
    alg = ParseAlg(*alg_name);
    if (!alg) return UnimplementedError("JWK alg not supported");
  }

  auto member_bytes = [&](std::string_view name) -> Result<std::string> {
    ASSIGN_OR_RETURN(auto text, OptionalString(jwk, name, "JWK member"));
    if (!text) return InvalidArgumentError("JWK has no \"" + std::string(name) + "\"");
    auto bytes = Base64UrlDecode(*text);
    if (!bytes || bytes->empty()) return InvalidArgumentError("JWK \"" + std::string(name) + "\" is not base64url");
    return std::move(*bytes);
  };

  PkeyPtr pkey;
  if (*kty == "RSA") {
    if (!alg) alg = Alg::kRS256;
    if (!IsRsa(*alg)) return InvalidArgumentError("JWK alg does not fit kty RSA");
    ASSIGN_OR_RETURN(std::string n, member_bytes("n"));
    ASSIGN_OR_RETURN(std::string e, member_bytes("e"));
    if (e.size() > 8) return InvalidArgumentError("JWK RSA exponent too large");
    BnPtr bn_n = BytesToBn(n), bn_e = BytesToBn(e);
    ParamBldPtr bld(OSSL_PARAM_BLD_new());
    if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
      return CryptoError(StatusCode::kInternal, "out of memory");
    }
    ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
    if (!params) return CryptoError(StatusCode::kInternal, "out of memory");
    ASSIGN_OR_RETURN(pkey, FromData("RSA", params.get()));
  } else if (*kty == "EC") {
    ASSIGN_OR_RETURN(auto crv, OptionalString(jwk, "crv", "JWK member"));
    if (!crv) return InvalidArgumentError("JWK EC key has no \"crv\"");
    Alg crv_alg;
    if (*crv == "P-256") {
      crv_alg = Alg::kES256;
    } else if (*crv == "P-384") {
      crv_alg = Alg::kES384;
    } else {
      return UnimplementedError("JWK curve not supported");
    }
    if (!alg) alg = crv_alg;
    if (*alg != crv_alg) return InvalidArgumentError("JWK alg does not fit its curve");
    ASSIGN_OR_RETURN(std::string x, member_bytes("x"));
    ASSIGN_OR_RETURN(std::string y, member_bytes("y"));
    size_t field = EcFieldBytes(*alg);
    if (x.size() != field || y.size() != field) return InvalidArgumentError("JWK EC coordinates have the wrong length");
    std::string point = "\x04" + x + y;
    char group[16];
    std::string_view group_name = OpenSslCurveName(*alg);
    std::copy(group_name.begin(), group_name.end(), group);
    group[group_name.size()] = '\0';
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
        OSSL_PARAM_construct_end(),
    };
    ASSIGN_OR_RETURN(pkey, FromData("EC", params));
    PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) {
      return CryptoError(StatusCode::kInvalidArgument, "JWK EC point is not on its curve");
    }
  } else {
    return UnimplementedError("JWK kty not supported");
  }
  RETURN_IF_ERROR(CheckKeyFitsAlg(pkey.get(), *alg));
  return Key(Share(std::move(pkey)), *alg, kid ? std::string(*kid) : std::string(), false);
}

std::string Key::PublicJwkJson() const {
  std::string out = "{";
  AppendMember(out, "kty", IsRsa(alg_) ? "RSA" : "EC");
  if (!kid_.empty()) AppendMember(out, "kid", kid_);
  AppendMember(out, "alg", AlgName(alg_));
  AppendMember(out, "use", "sig");
  if (IsRsa(alg_)) {
    auto n = GetBnParam(pkey(), OSSL_PKEY_PARAM_RSA_N);
    auto e = GetBnParam(pkey(), OSSL_PKEY_PARAM_RSA_E);
    AppendMember(out, "n", n.ok() ? Base64UrlEncode(*n) : "");
    AppendMember(out, "e", e.ok() ? Base64UrlEncode(*e) : "");
  } else {
    auto x = GetBnParam(pkey(), OSSL_PKEY_PARAM_EC_PUB_X, EcFieldBytes(alg_));
    auto y = GetBnParam(pkey(), OSSL_PKEY_PARAM_EC_PUB_Y, EcFieldBytes(alg_));
    AppendMember(out, "crv", CurveName(alg_));
    AppendMember(out, "x", x.ok() ? Base64UrlEncode(*x) : "");
    AppendMember(out, "y", y.ok() ? Base64UrlEncode(*y) : "");
  }
  out += '}';
  return out;
}

std::string Key::PrivatePem() const {
  if (!has_private_) return {};
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PrivateKey(bio.get(), pkey(), nullptr, nullptr, 0, nullptr, nullptr)) {
    ERR_clear_error();
    return {};
  }
  return BioToString(bio.get());
}

std::string Key::PublicPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PUBKEY(bio.get(), pkey())) {
    ERR_clear_error();
    return {};
  }
  return BioToString(bio.get());
}

void KeySet::Add(Key key) {
  for (Key& k : keys_) {
    if (k.kid() == key.kid()) {
      k = std::move(key);
      return;
    }
  }
  keys_.push_back(std::move(key));
}

const Key* KeySet::Find(std::string_view kid) const {
  for (const Key& k : keys_) {
    if (k.kid() == kid) return &k;
  }
  return nullptr;
}

Result<KeySet> KeySet::FromJwksJson(std::string_view jwks_json) {
  json::ParseOptions limits;
  limits.max_size = 1u << 20;
  limits.max_depth = 16;
  ASSIGN_OR_RETURN(json::Document doc, json::Document::Parse(jwks_json, limits));
  const json::Value* keys = doc.root().Find("keys");
  if (!keys || !keys->is_array()) return InvalidArgumentError("JWKS has no \"keys\" array");
  KeySet set;
  for (const json::Value& jwk : keys->items()) {
    auto key = Key::FromJwk(jwk);
    if (key.ok()) {
      set.Add(std::move(key).value());
    } else if (key.status().code() != StatusCode::kUnimplemented) {
      return InvalidArgumentError("JWKS key is malformed: " + key.status().message());
    }
  }
  return set;
}

std::string KeySet::ToJwksJson() const {
  std::string out = "{\"keys\":[";
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (i) out += ',';
    out += keys_[i].PublicJwkJson();
  }
  out += "]}";
  return out;
}

Result<std::string> SignJwt(const Key& key, std::string_view claims_json) {
  if (!key.has_private()) return FailedPreconditionError("cannot sign with a public key");
  auto claims = json::Document::Parse(claims_json);
  if (!claims.ok()) return InvalidArgumentError("claims are not JSON: " + claims.status().message());
  if (!claims->root().is_object()) return InvalidArgumentError("claims are not a JSON object");

  std::string header = "{";
  AppendMember(header, "alg", AlgName(key.alg()));
  AppendMember(header, "typ", "JWT");
  if (!key.kid().empty()) AppendMember(header, "kid", key.kid());
  header += '}';
  std::string token = Base64UrlEncode(header) + "." + Base64UrlEncode(claims_json);

  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t sig_len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, Digest(key.alg()), nullptr, key.pkey()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &sig_len, reinterpret_cast<const unsigned char*>(token.data()),
                     token.size()) != 1) {
    return CryptoError(StatusCode::kInternal, "signing failed");
  }
  std::string sig(sig_len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                     reinterpret_cast<const unsigned char*>(token.data()), token.size()) != 1) {
    return CryptoError(StatusCode::kInternal, "signing failed");
  }
  sig.resize(sig_len);
  if (!IsRsa(key.alg())) {
    // OpenSSL gives DER (SEQUENCE of two INTEGERs); JOSE wants r||s.
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    EcdsaSigPtr ecdsa(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
    if (!ecdsa) return CryptoError(StatusCode::kInternal, "signing produced a malformed ECDSA signature");
    const BIGNUM *r = nullptr, *s = nullptr;
    ECDSA_SIG_get0(ecdsa.get(), &r, &s);
    sig = BnToBytes(r, EcFieldBytes(key.alg())) + BnToBytes(s, EcFieldBytes(key.alg()));
  }
  token += '.';
  token += Base64UrlEncode(sig);
  return token;
}

std::optional<std::string> Claims::GetString(std::string_view name) const {
  auto doc = json::Document::Parse(payload_json);
  if (!doc.ok()) return std::nullopt;
  const json::Value* v = doc->root().Find(name);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}

namespace {

struct Parts {
  std::string_view header_b64, payload_b64, signing_input;
  std::string header, payload, signature;
};

Result<Parts> SplitToken(std::string_view token) {
  if (token.size() > kMaxTokenBytes) return InvalidArgumentError("token too large");
  size_t first = token.find('.');
  size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return InvalidArgumentError("token is not three dot-separated parts");
  }
  if (token.find('=') != std::string_view::npos) return InvalidArgumentError("token has base64 padding");
  Parts parts;
  parts.header_b64 = token.substr(0, first);
  parts.payload_b64 = token.substr(first + 1, second - first - 1);
  parts.signing_input = token.substr(0, second);
  auto header = Base64UrlDecode(parts.header_b64);
  auto payload = Base64UrlDecode(parts.payload_b64);
  auto signature = Base64UrlDecode(token.substr(second + 1));
  if (!header || !payload || !signature || header->empty() || payload->empty()) {
    return InvalidArgumentError("token part is not base64url");
  }
  parts.header = std::move(*header);
  parts.payload = std::move(*payload);
  parts.signature = std::move(*signature);
  return parts;
}

json::ParseOptions TokenJsonLimits() {
  json::ParseOptions limits;
  limits.max_size = kMaxTokenBytes;
  limits.max_depth = 32;
  return limits;
}

struct ParsedHeader {
  JwtHeader header;
  bool crit = false;
};

Result<ParsedHeader> ParseHeader(std::string_view header_json) {
  auto doc = json::Document::Parse(header_json, TokenJsonLimits());
  if (!doc.ok() || !doc->root().is_object()) return InvalidArgumentError("token header is not a JSON object");
  ParsedHeader out;
  const json::Value& root = doc->root();
  ASSIGN_OR_RETURN(auto alg, OptionalString(root, "alg", "token header"));
  if (!alg) return InvalidArgumentError("token header has no alg");
  out.header.alg = std::string(*alg);
  ASSIGN_OR_RETURN(auto kid, OptionalString(root, "kid", "token header"));
  if (kid) out.header.kid = std::string(*kid);
  ASSIGN_OR_RETURN(auto typ, OptionalString(root, "typ", "token header"));
  if (typ) out.header.typ = std::string(*typ);
  out.crit = root.Find("crit") != nullptr;
  return out;
}

// Seconds since the epoch from a NumericDate claim (fractions truncated).
Status ReadTime(const json::Value& claims, std::string_view name, int64_t& out, bool& present) {
  const json::Value* v = claims.Find(name);
  present = v != nullptr;
  out = 0;
  if (!v) return Status::Ok();
  if (!v->is_number()) return InvalidArgumentError("claim \"" + std::string(name) + "\" is not a number");
  if (auto i = v->AsInt64()) {
    out = *i;
    return Status::Ok();
  }
  auto d = v->AsDouble();
  if (!d || !std::isfinite(*d) || std::fabs(*d) > 1e17) {
    return InvalidArgumentError("claim \"" + std::string(name) + "\" is out of range");
  }
  out = static_cast<int64_t>(std::trunc(*d));
  return Status::Ok();
}

Status VerifySignature(const Key& key, const Parts& parts) {
  std::string der;
  std::string_view sig = parts.signature;
  if (!IsRsa(key.alg())) {
    size_t field = EcFieldBytes(key.alg());
    if (sig.size() != 2 * field) return FailedPreconditionError("invalid signature (wrong length for ECDSA)");
    BnPtr r = BytesToBn(sig.substr(0, field)), s = BytesToBn(sig.substr(field));
    EcdsaSigPtr ecdsa(ECDSA_SIG_new());
    if (!r || !s || !ecdsa || !ECDSA_SIG_set0(ecdsa.get(), r.get(), s.get())) {
      return CryptoError(StatusCode::kInternal, "out of memory");
    }
    r.release();  // owned by ecdsa now
    s.release();
    unsigned char* buf = nullptr;
    int len = i2d_ECDSA_SIG(ecdsa.get(), &buf);
    if (len <= 0) return CryptoError(StatusCode::kInternal, "cannot encode ECDSA signature");
    der.assign(reinterpret_cast<char*>(buf), static_cast<size_t>(len));
    OPENSSL_free(buf);
    sig = der;
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, Digest(key.alg()), nullptr, key.pkey()) != 1) {
    return CryptoError(StatusCode::kInternal, "cannot start signature verification");
  }
  int ok =
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(parts.signing_input.data()), parts.signing_input.size());
  if (ok != 1) return CryptoError(StatusCode::kFailedPrecondition, "invalid signature");
  return Status::Ok();
}

Status ReadStringClaim(const json::Value& root, std::string_view name, std::string& out) {
  ASSIGN_OR_RETURN(auto v, OptionalString(root, name, "claim"));
  if (v) out = std::string(*v);
  return Status::Ok();
}

Result<Claims> ReadClaims(std::string payload, bool& has_exp) {
  auto doc = json::Document::Parse(payload, TokenJsonLimits());
  if (!doc.ok() || !doc->root().is_object()) return InvalidArgumentError("token payload is not a JSON object");
  const json::Value& root = doc->root();
  Claims c;
  RETURN_IF_ERROR(ReadStringClaim(root, "iss", c.iss));
  RETURN_IF_ERROR(ReadStringClaim(root, "sub", c.sub));
  RETURN_IF_ERROR(ReadStringClaim(root, "jti", c.jti));
  RETURN_IF_ERROR(ReadStringClaim(root, "client_id", c.client_id));
  RETURN_IF_ERROR(ReadStringClaim(root, "fhirUser", c.fhir_user));
  RETURN_IF_ERROR(ReadStringClaim(root, "patient", c.patient));
  if (const json::Value* scope = root.Find("scope")) {
    if (scope->is_string()) {
      c.scope = std::string(scope->as_string());
    } else if (scope->is_array()) {
      for (const json::Value& s : scope->items()) {
        if (!s.is_string()) return InvalidArgumentError("claim \"scope\" is not a string or array of strings");
        if (!c.scope.empty()) c.scope += ' ';
        c.scope += s.as_string();
      }
    } else {
      return InvalidArgumentError("claim \"scope\" is not a string or array of strings");
    }
  }
  if (const json::Value* aud = root.Find("aud")) {
    if (aud->is_string()) {
      c.aud.emplace_back(aud->as_string());
    } else if (aud->is_array()) {
      for (const json::Value& a : aud->items()) {
        if (!a.is_string()) return InvalidArgumentError("claim \"aud\" is not a string or array of strings");
        c.aud.emplace_back(a.as_string());
      }
    } else {
      return InvalidArgumentError("claim \"aud\" is not a string or array of strings");
    }
  }
  bool present = false;
  RETURN_IF_ERROR(ReadTime(root, "exp", c.exp, has_exp));
  RETURN_IF_ERROR(ReadTime(root, "nbf", c.nbf, present));
  RETURN_IF_ERROR(ReadTime(root, "iat", c.iat, present));
  c.payload_json = std::move(payload);
  return c;
}

}  // namespace

Result<JwtHeader> DecodeJwtHeader(std::string_view token) {
  ASSIGN_OR_RETURN(Parts parts, SplitToken(token));
  ASSIGN_OR_RETURN(ParsedHeader parsed, ParseHeader(parts.header));
  return std::move(parsed.header);
}

Result<Claims> VerifyJwt(std::string_view token, const KeySet& keys, const VerifyOptions& options) {
  ASSIGN_OR_RETURN(Parts parts, SplitToken(token));
  ASSIGN_OR_RETURN(ParsedHeader parsed, ParseHeader(parts.header));
  const JwtHeader& header = parsed.header;

  // Named for a clear message; ParseAlg would refuse them anyway.
  std::string lower_alg = header.alg;
  for (char& ch : lower_alg) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower_alg == "none") return FailedPreconditionError("alg none not allowed");
  if (lower_alg.starts_with("hs")) return FailedPreconditionError("alg HS* not allowed (symmetric)");
  std::optional<Alg> alg = ParseAlg(header.alg);
  if (!alg) return FailedPreconditionError("alg not supported");
  if (std::find(options.allowed_algs.begin(), options.allowed_algs.end(), *alg) == options.allowed_algs.end()) {
    return FailedPreconditionError("alg " + std::string(AlgName(*alg)) + " not allowed");
  }
  if (parsed.crit) return FailedPreconditionError("crit header not supported");

  const Key* key = nullptr;
  if (!header.kid.empty()) {
    key = keys.Find(header.kid);
    if (!key) return FailedPreconditionError("unknown kid");
  } else {
    size_t candidates = 0;
    for (const Key& k : keys.keys()) {
      if (k.alg() == *alg) {
        key = &k;
        ++candidates;
      }
    }
    if (candidates != 1) return FailedPreconditionError("token has no kid and the key is ambiguous or unknown");
  }
  if (key->alg() != *alg) {
    return FailedPreconditionError("alg " + std::string(AlgName(*alg)) + " does not match the key's alg " +
                                   std::string(AlgName(key->alg())));
  }
  RETURN_IF_ERROR(VerifySignature(*key, parts));

  bool has_exp = false;
  ASSIGN_OR_RETURN(Claims claims, ReadClaims(std::move(parts.payload), has_exp));
  int64_t now = options.now ? options.now : static_cast<int64_t>(std::time(nullptr));
  int64_t leeway = std::max<int64_t>(0, options.leeway_seconds);
  if (!has_exp && options.require_exp) return FailedPreconditionError("token has no exp");
  if (has_exp && now - leeway >= claims.exp) return FailedPreconditionError("token expired");
  if (claims.nbf && claims.nbf > now + leeway) return FailedPreconditionError("token not yet valid (nbf)");
  if (claims.iat && claims.iat > now + leeway) return FailedPreconditionError("token issued in the future (iat)");
  if (!options.issuer.empty() && claims.iss != options.issuer) return FailedPreconditionError("wrong issuer");
  if (!options.audiences.empty()) {
    bool match = false;
    for (const std::string& a : claims.aud) {
      match = match || std::find(options.audiences.begin(), options.audiences.end(), a) != options.audiences.end();
    }
    if (!match) return FailedPreconditionError("wrong audience");
  }
  return claims;
}

}  // namespace bevan::auth
