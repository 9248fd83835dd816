// JWS signing and verification: round trips for every algorithm and key
// form, and every way a token must be refused.
#include "auth/jwt.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <gtest/gtest.h>

#include <map>

namespace bevan::auth {
namespace {

constexpr int64_t kNow = 1700000000;
constexpr Alg kAllAlgs[] = {Alg::kRS256, Alg::kRS384, Alg::kES256, Alg::kES384};

std::string ClaimsJson(int64_t exp = kNow + 600, std::string extra = "") {
  return R"({"iss":"https://idp.example","sub":"user-1","aud":"https://fhir.example","iat":)" + std::to_string(kNow) +
         R"(,"exp":)" + std::to_string(exp) + R"(,"scope":"patient/*.rs openid","client_id":"app",)" +
         R"("fhirUser":"Practitioner/3","patient":"9","jti":"j-1")" + extra + "}";
}

VerifyOptions Options() {
  VerifyOptions o;
  o.allowed_algs = {Alg::kRS256, Alg::kRS384, Alg::kES256, Alg::kES384};
  o.issuer = "https://idp.example";
  o.audiences = {"https://fhir.example"};
  o.now = kNow;
  return o;
}

Key PublicOnly(const Key& key) {
  auto doc = json::Document::Parse(key.PublicJwkJson());
  EXPECT_TRUE(doc.ok());
  auto pub = Key::FromJwk(doc->root());
  EXPECT_TRUE(pub.ok()) << pub.status().ToString();
  return std::move(pub).value();
}

// A signature over `signing_input` made directly with OpenSSL (RSA keys
// only), for tokens SignJwt would not make.
std::string RawRsaSign(const Key& key, std::string_view signing_input, const EVP_MD* md = EVP_sha256()) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EXPECT_EQ(EVP_DigestSignInit(ctx, nullptr, md, nullptr, key.pkey()), 1);
  EXPECT_EQ(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(signing_input.data()),
                           signing_input.size()),
            1);
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()),
            1);
  EVP_MD_CTX_free(ctx);
  sig.resize(len);
  return sig;
}

std::string MakeRsaToken(const Key& key, std::string_view header, std::string_view payload) {
  std::string input = Base64UrlEncode(header) + "." + Base64UrlEncode(payload);
  return input + "." + Base64UrlEncode(RawRsaSign(key, input));
}

class JwtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    keys_ = new std::map<Alg, Key>();
    for (Alg alg : kAllAlgs) {
      auto key = Key::Generate(alg, "kid-" + std::string(AlgName(alg)));
      ASSERT_TRUE(key.ok()) << key.status().ToString();
      keys_->emplace(alg, std::move(key).value());
    }
  }
  static void TearDownTestSuite() {
    delete keys_;
    keys_ = nullptr;
  }

  static const Key& K(Alg alg) { return keys_->at(alg); }

  // The public halves of all four keys.
  static KeySet PublicSet() {
    KeySet set;
    for (Alg alg : kAllAlgs) set.Add(PublicOnly(K(alg)));
    return set;
  }

  static std::string Sign(Alg alg, const std::string& claims = ClaimsJson()) {
    auto token = SignJwt(K(alg), claims);
    EXPECT_TRUE(token.ok()) << token.status().ToString();
    return token.ok() ? *token : std::string();
  }

  // Expects `token` refused with `code` and a message containing `what`,
  // which never quotes the token's signature.
  static void ExpectRefused(std::string_view token, const KeySet& keys, const VerifyOptions& options, StatusCode code,
                            std::string_view what) {
    auto claims = VerifyJwt(token, keys, options);
    ASSERT_FALSE(claims.ok()) << "accepted; expected: " << what;
    EXPECT_EQ(claims.status().code(), code) << claims.status().ToString();
    EXPECT_NE(claims.status().message().find(what), std::string::npos) << claims.status().ToString();
    size_t dot = token.rfind('.');
    if (dot != std::string_view::npos && token.size() - dot > 8) {
      EXPECT_EQ(claims.status().message().find(token.substr(dot + 1)), std::string::npos);
    }
  }

  static std::map<Alg, Key>* keys_;
};

std::map<Alg, Key>* JwtTest::keys_ = nullptr;

TEST(Base64Url, EncodesAndDecodesStrictly) {
  EXPECT_EQ(Base64UrlEncode("hello"), "aGVsbG8");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(Base64UrlEncode(""), "");
  std::string bytes;
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(bytes)), bytes) << i;
    bytes += static_cast<char>(i * 37 + 11);
  }
  EXPECT_EQ(Base64UrlDecode("aGVsbG8"), "hello");
  EXPECT_EQ(Base64UrlDecode("aGVsbG8="), std::nullopt);  // padding
  EXPECT_EQ(Base64UrlDecode("aGVs+G8"), std::nullopt);   // standard alphabet
  EXPECT_EQ(Base64UrlDecode("aGVs bG8"), std::nullopt);  // whitespace
  EXPECT_EQ(Base64UrlDecode("aGVsb"), std::nullopt);     // impossible length
  EXPECT_EQ(Base64UrlDecode("aGVsbG9"), std::nullopt);   // non-zero unused bits
}

TEST(Alg, NamesAndParsing) {
  for (Alg alg : kAllAlgs) EXPECT_EQ(ParseAlg(AlgName(alg)), alg);
  EXPECT_EQ(AlgName(Alg::kRS384), "RS384");
  for (const char* bad : {"none", "HS256", "PS256", "ES512", "rs256", ""})
    EXPECT_EQ(ParseAlg(bad), std::nullopt) << bad;
}

TEST_F(JwtTest, SignVerifyRoundTripForEveryAlg) {
  KeySet keys = PublicSet();
  for (Alg alg : kAllAlgs) {
    std::string token = Sign(alg);
    auto header = DecodeJwtHeader(token);
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header->alg, AlgName(alg));
    EXPECT_EQ(header->kid, K(alg).kid());
    EXPECT_EQ(header->typ, "JWT");

    auto claims = VerifyJwt(token, keys, Options());
    ASSERT_TRUE(claims.ok()) << AlgName(alg) << ": " << claims.status().ToString();
    EXPECT_EQ(claims->payload_json, ClaimsJson());
    EXPECT_EQ(claims->iss, "https://idp.example");
    EXPECT_EQ(claims->sub, "user-1");
    EXPECT_EQ(claims->aud, std::vector<std::string>{"https://fhir.example"});
    EXPECT_EQ(claims->scope, "patient/*.rs openid");
    EXPECT_EQ(claims->client_id, "app");
    EXPECT_EQ(claims->fhir_user, "Practitioner/3");
    EXPECT_EQ(claims->patient, "9");
    EXPECT_EQ(claims->jti, "j-1");
    EXPECT_EQ(claims->exp, kNow + 600);
    EXPECT_EQ(claims->iat, kNow);
    EXPECT_EQ(claims->nbf, 0);
    EXPECT_EQ(claims->GetString("client_id"), "app");
    EXPECT_EQ(claims->GetString("exp"), std::nullopt);
    EXPECT_EQ(claims->GetString("absent"), std::nullopt);
  }
}

TEST_F(JwtTest, EcdsaSignaturesAreJoseSized) {
  for (auto [alg, size] : {std::pair{Alg::kES256, 64u}, std::pair{Alg::kES384, 96u}}) {
    for (int i = 0; i < 20; ++i) {  // r or s with leading zero bytes must still be padded
      std::string token = Sign(alg);
      auto sig = Base64UrlDecode(token.substr(token.rfind('.') + 1));
      ASSERT_TRUE(sig);
      EXPECT_EQ(sig->size(), size);
    }
  }
}

TEST_F(JwtTest, PemRoundTrips) {
  for (Alg alg : kAllAlgs) {
    std::string private_pem = K(alg).PrivatePem();
    ASSERT_NE(private_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
    auto priv = Key::FromPem(private_pem, alg, "again");
    ASSERT_TRUE(priv.ok()) << priv.status().ToString();
    EXPECT_TRUE(priv->has_private());
    EXPECT_EQ(priv->kid(), "again");
    EXPECT_EQ(priv->PublicJwkJson().substr(priv->PublicJwkJson().find("\"use\"")),
              K(alg).PublicJwkJson().substr(K(alg).PublicJwkJson().find("\"use\"")));

    auto pub = Key::FromPem(K(alg).PublicPem(), alg, "again");
    ASSERT_TRUE(pub.ok()) << pub.status().ToString();
    EXPECT_FALSE(pub->has_private());
    EXPECT_EQ(pub->PrivatePem(), "");
    EXPECT_EQ(SignJwt(*pub, ClaimsJson()).status().code(), StatusCode::kFailedPrecondition);

    // Signed with the reloaded private key, verified with the reloaded public key.
    KeySet set;
    set.Add(*pub);
    auto token = SignJwt(*priv, ClaimsJson());
    ASSERT_TRUE(token.ok());
    EXPECT_TRUE(VerifyJwt(*token, set, Options()).ok());
  }
  // Key type and curve must fit the algorithm.
  EXPECT_EQ(Key::FromPem(K(Alg::kRS256).PrivatePem(), Alg::kES256, "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Key::FromPem(K(Alg::kES256).PrivatePem(), Alg::kRS256, "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Key::FromPem(K(Alg::kES256).PublicPem(), Alg::kES384, "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(
      Key::FromPem("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n", Alg::kRS256, "x").status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(Key::FromPem("", Alg::kRS256, "x").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(JwtTest, RsaKeysShorterThan2048BitsAreRefused) {
  EVP_PKEY* small = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024});
  ASSERT_NE(small, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio, small), 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(small);
  auto key = Key::FromPem(pem, Alg::kRS256, "small");
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(key.status().message().find("2048"), std::string::npos);
}

TEST_F(JwtTest, JwkRoundTripsAndChecks) {
  for (Alg alg : kAllAlgs) {
    std::string jwk = K(alg).PublicJwkJson();
    EXPECT_EQ(jwk.find("\"d\""), std::string::npos);
    Key pub = PublicOnly(K(alg));
    EXPECT_EQ(pub.PublicJwkJson(), jwk);
    EXPECT_EQ(pub.alg(), alg);
    EXPECT_EQ(pub.kid(), K(alg).kid());
    EXPECT_FALSE(pub.has_private());
  }
  auto parse_jwk = [](std::string_view text) {
    auto doc = json::Document::Parse(text);
    EXPECT_TRUE(doc.ok()) << text;
    return Key::FromJwk(doc->root());
  };
  auto without = [](std::string jwk, std::string_view member) {
    size_t at = jwk.find("\"" + std::string(member) + "\":\"");
    size_t end = jwk.find('"', jwk.find(':', at) + 2);
    jwk.erase(at, end - at + 2);  // the member and its comma
    return jwk;
  };

  // "alg" inferred: RS256 for RSA, from crv for EC.
  auto rsa = parse_jwk(without(K(Alg::kRS384).PublicJwkJson(), "alg"));
  ASSERT_TRUE(rsa.ok()) << rsa.status().ToString();
  EXPECT_EQ(rsa->alg(), Alg::kRS256);
  auto ec = parse_jwk(without(K(Alg::kES384).PublicJwkJson(), "alg"));
  ASSERT_TRUE(ec.ok()) << ec.status().ToString();
  EXPECT_EQ(ec->alg(), Alg::kES384);

  // A point off the curve.
  std::string jwk = K(Alg::kES256).PublicJwkJson();
  size_t y = jwk.find("\"y\":\"") + 5;
  jwk[y + 3] = jwk[y + 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(parse_jwk(jwk).status().code(), StatusCode::kInvalidArgument);

  // alg not fitting the key.
  jwk = K(Alg::kES256).PublicJwkJson();
  jwk.replace(jwk.find("\"alg\":\"ES256\""), 13, "\"alg\":\"ES384\"");
  EXPECT_EQ(parse_jwk(jwk).status().code(), StatusCode::kInvalidArgument);
  jwk = K(Alg::kRS256).PublicJwkJson();
  jwk.replace(jwk.find("\"alg\":\"RS256\""), 13, "\"alg\":\"ES256\"");
  EXPECT_EQ(parse_jwk(jwk).status().code(), StatusCode::kInvalidArgument);

  // Missing members, bad base64url.
  EXPECT_EQ(parse_jwk(without(K(Alg::kRS256).PublicJwkJson(), "n")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_jwk(R"({"kty":"EC","crv":"P-256","x":"A=","y":"A"})").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_jwk(R"({"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"})").status().code(),
            StatusCode::kInvalidArgument);  // wrong coordinate length

  // Not ours: other kty, alg, curve, or use.
  EXPECT_EQ(parse_jwk(R"({"kty":"oct","k":"c2VjcmV0"})").status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(parse_jwk(R"({"kty":"RSA","alg":"PS256","n":"AQAB","e":"AQAB"})").status().code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(parse_jwk(R"({"kty":"EC","crv":"P-521","x":"AA","y":"AA"})").status().code(), StatusCode::kUnimplemented);
  jwk = K(Alg::kRS256).PublicJwkJson();
  jwk.replace(jwk.find("\"sig\""), 5, "\"enc\"");
  EXPECT_EQ(parse_jwk(jwk).status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(parse_jwk("[1]").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(JwtTest, JwksRoundTrip) {
  KeySet set;
  for (Alg alg : kAllAlgs) set.Add(K(alg));
  std::string jwks = set.ToJwksJson();
  EXPECT_EQ(jwks.find("PRIVATE"), std::string::npos);
  EXPECT_EQ(jwks.find("\"d\""), std::string::npos);
  auto back = KeySet::FromJwksJson(jwks);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->size(), 4u);
  EXPECT_EQ(back->ToJwksJson(), jwks);
  for (Alg alg : kAllAlgs) {
    const Key* key = back->Find(K(alg).kid());
    ASSERT_NE(key, nullptr);
    EXPECT_EQ(key->alg(), alg);
    EXPECT_TRUE(VerifyJwt(Sign(alg), *back, Options()).ok());
  }
  EXPECT_EQ(back->Find("nope"), nullptr);

  // Unsupported keys are skipped; a malformed supported key is an error.
  std::string mixed = R"({"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"OKP","crv":"Ed25519","x":"AA"},)" +
                      K(Alg::kES256).PublicJwkJson() + "]}";
  auto some = KeySet::FromJwksJson(mixed);
  ASSERT_TRUE(some.ok()) << some.status().ToString();
  EXPECT_EQ(some->size(), 1u);
  EXPECT_EQ(KeySet::FromJwksJson(R"({"keys":[{"kty":"RSA","n":"AQAB"}]})").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(KeySet::FromJwksJson(R"({"nokeys":[]})").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(KeySet::FromJwksJson("not json").status().code(), StatusCode::kInvalidArgument);

  // Same kid replaces.
  KeySet dup;
  dup.Add(PublicOnly(K(Alg::kRS256)));
  auto other = Key::Generate(Alg::kES256, K(Alg::kRS256).kid());
  ASSERT_TRUE(other.ok());
  dup.Add(*other);
  EXPECT_EQ(dup.size(), 1u);
  EXPECT_EQ(dup.Find(K(Alg::kRS256).kid())->alg(), Alg::kES256);
}

TEST_F(JwtTest, SignJwtChecksItsInput) {
  EXPECT_EQ(SignJwt(K(Alg::kRS256), "[1,2]").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SignJwt(K(Alg::kRS256), "{").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SignJwt(PublicOnly(K(Alg::kRS256)), "{}").status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(JwtTest, RefusesAlgNone) {
  std::string token = Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." + Base64UrlEncode(ClaimsJson()) + ".";
  ExpectRefused(token, PublicSet(), Options(), StatusCode::kFailedPrecondition, "alg none not allowed");
  token = Base64UrlEncode(R"({"alg":"NONE","kid":"kid-RS256"})") + "." + Base64UrlEncode(ClaimsJson()) + ".";
  ExpectRefused(token, PublicSet(), Options(), StatusCode::kFailedPrecondition, "alg none not allowed");
}

TEST_F(JwtTest, RefusesHmacWithThePublicKeyAsSecret) {
  // The classic RS/HS confusion: HMAC over the token keyed with the RSA
  // public key's bytes, which an attacker can download.
  for (std::string secret : {K(Alg::kRS256).PublicPem(), K(Alg::kRS256).PublicJwkJson()}) {
    std::string input =
        Base64UrlEncode(R"({"alg":"HS256","typ":"JWT","kid":"kid-RS256"})") + "." + Base64UrlEncode(ClaimsJson());
    unsigned char mac[64];
    size_t mac_len = 0;
    ASSERT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                        reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, sizeof(mac), &mac_len),
              nullptr);
    std::string token = input + "." + Base64UrlEncode(std::string_view(reinterpret_cast<char*>(mac), mac_len));
    ExpectRefused(token, PublicSet(), Options(), StatusCode::kFailedPrecondition, "not allowed");
  }
}

TEST_F(JwtTest, RefusesHeaderAlgDifferentFromKeyAlg) {
  // The RS384 key's own material, signing with RS256 under its kid.
  auto relabelled = Key::FromPem(K(Alg::kRS384).PrivatePem(), Alg::kRS256, K(Alg::kRS384).kid());
  ASSERT_TRUE(relabelled.ok());
  auto token = SignJwt(*relabelled, ClaimsJson());
  ASSERT_TRUE(token.ok());
  ExpectRefused(*token, PublicSet(), Options(), StatusCode::kFailedPrecondition, "does not match the key's alg RS384");

  // ES256 header on a token for the RS256 key's kid.
  std::string input = Base64UrlEncode(R"({"alg":"ES256","kid":"kid-RS256"})") + "." + Base64UrlEncode(ClaimsJson());
  std::string forged = input + "." + Base64UrlEncode(std::string(64, '\x01'));
  ExpectRefused(forged, PublicSet(), Options(), StatusCode::kFailedPrecondition, "does not match");
}

TEST_F(JwtTest, RefusesAlgOutsideTheAllowList) {
  VerifyOptions only_rs256 = Options();
  only_rs256.allowed_algs = {Alg::kRS256};
  EXPECT_TRUE(VerifyJwt(Sign(Alg::kRS256), PublicSet(), only_rs256).ok());
  ExpectRefused(Sign(Alg::kES256), PublicSet(), only_rs256, StatusCode::kFailedPrecondition, "alg ES256 not allowed");
  ExpectRefused(Sign(Alg::kRS384), PublicSet(), only_rs256, StatusCode::kFailedPrecondition, "alg RS384 not allowed");
  VerifyOptions none_allowed = Options();
  none_allowed.allowed_algs.clear();
  ExpectRefused(Sign(Alg::kRS256), PublicSet(), none_allowed, StatusCode::kFailedPrecondition, "not allowed");
  // PS256 is not ours at all.
  std::string input = Base64UrlEncode(R"({"alg":"PS256","kid":"kid-RS256"})") + "." + Base64UrlEncode(ClaimsJson());
  ExpectRefused(input + ".AAAA", PublicSet(), Options(), StatusCode::kFailedPrecondition, "alg not supported");
}

TEST_F(JwtTest, KidHandling) {
  auto stranger = Key::Generate(Alg::kRS256, "stranger");
  ASSERT_TRUE(stranger.ok());
  ExpectRefused(*SignJwt(*stranger, ClaimsJson()), PublicSet(), Options(), StatusCode::kFailedPrecondition,
                "unknown kid");

  // No kid: accepted only if exactly one key of the alg could be meant.
  auto anonymous = Key::FromPem(K(Alg::kES256).PrivatePem(), Alg::kES256, "");
  ASSERT_TRUE(anonymous.ok());
  auto token = SignJwt(*anonymous, ClaimsJson());
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(DecodeJwtHeader(*token)->kid, "");
  EXPECT_TRUE(VerifyJwt(*token, PublicSet(), Options()).ok());
  KeySet two = PublicSet();
  auto second = Key::Generate(Alg::kES256, "second-es256");
  ASSERT_TRUE(second.ok());
  two.Add(PublicOnly(*second));
  ExpectRefused(*token, two, Options(), StatusCode::kFailedPrecondition, "no kid");
  ExpectRefused(*token, KeySet(), Options(), StatusCode::kFailedPrecondition, "no kid");

  // A kid that is not a string is malformed.
  std::string input = Base64UrlEncode(R"({"alg":"RS256","kid":7})") + "." + Base64UrlEncode(ClaimsJson());
  ExpectRefused(input + "." + Base64UrlEncode(RawRsaSign(K(Alg::kRS256), input)), PublicSet(), Options(),
                StatusCode::kInvalidArgument, "kid");
}

TEST_F(JwtTest, RefusesBadSignatures) {
  KeySet keys = PublicSet();
  for (Alg alg : kAllAlgs) {
    std::string token = Sign(alg);
    size_t sig_at = token.rfind('.') + 1;
    std::string flipped = token;
    char& c = flipped[sig_at + 5];
    c = c == 'A' ? 'B' : 'A';
    ExpectRefused(flipped, keys, Options(), StatusCode::kFailedPrecondition, "invalid signature");

    // The payload changed under the signature.
    std::string other_payload =
        token.substr(0, token.find('.') + 1) + Base64UrlEncode(ClaimsJson(kNow + 601)) + token.substr(sig_at - 1);
    ExpectRefused(other_payload, keys, Options(), StatusCode::kFailedPrecondition, "invalid signature");

    // Empty signature.
    ExpectRefused(token.substr(0, sig_at), keys, Options(), StatusCode::kFailedPrecondition, "invalid signature");
  }
  // ECDSA signatures must be exactly r||s.
  std::string es = Sign(Alg::kES256);
  ExpectRefused(es + "AA", keys, Options(), StatusCode::kFailedPrecondition, "wrong length");
  std::string short_sig = *Base64UrlDecode(es.substr(es.rfind('.') + 1));
  short_sig.pop_back();
  ExpectRefused(es.substr(0, es.rfind('.') + 1) + Base64UrlEncode(short_sig), keys, Options(),
                StatusCode::kFailedPrecondition, "wrong length");
}

TEST_F(JwtTest, RefusesMalformedTokens) {
  KeySet keys = PublicSet();
  std::string good = Sign(Alg::kRS256);
  auto malformed = [&](std::string_view token, std::string_view what) {
    ExpectRefused(token, keys, Options(), StatusCode::kInvalidArgument, what);
  };
  malformed("", "three");
  malformed("garbage", "three");
  malformed(good.substr(0, good.rfind('.')), "three");  // two parts
  malformed(good + ".xyz", "three");                    // four parts
  malformed(good + ".", "three");
  malformed("..", "base64url");
  malformed("a$b.c.d", "base64url");
  malformed(good.substr(0, good.size() - 5), "");  // truncated signature: a decoding or signature failure
  // Padding anywhere.
  std::string header = Base64UrlEncode(R"({"alg":"RS256","kid":"kid-RS256"})");
  std::string input = header + "=." + Base64UrlEncode(ClaimsJson());
  malformed(input + "." + Base64UrlEncode(RawRsaSign(K(Alg::kRS256), input)), "padding");
  malformed(good + "==", "padding");
  // Header or payload not JSON objects.
  malformed(Base64UrlEncode("not json") + "." + Base64UrlEncode(ClaimsJson()) + ".AAAA", "header");
  malformed(Base64UrlEncode("[]") + "." + Base64UrlEncode(ClaimsJson()) + ".AAAA", "header");
  malformed(Base64UrlEncode(R"({"typ":"JWT"})") + "." + Base64UrlEncode(ClaimsJson()) + ".AAAA", "no alg");
  malformed(MakeRsaToken(K(Alg::kRS256), R"({"alg":"RS256","kid":"kid-RS256"})", "[1]"), "payload");
  malformed(MakeRsaToken(K(Alg::kRS256), R"({"alg":"RS256","kid":"kid-RS256"})", R"({"a":1,"a":2})"), "payload");
  // Claims of the wrong type.
  malformed(MakeRsaToken(K(Alg::kRS256), R"({"alg":"RS256","kid":"kid-RS256"})", R"({"sub":5,"exp":1})"), "sub");
  malformed(MakeRsaToken(K(Alg::kRS256), R"({"alg":"RS256","kid":"kid-RS256"})", R"({"exp":"soon"})"), "exp");
  malformed(MakeRsaToken(K(Alg::kRS256), R"({"alg":"RS256","kid":"kid-RS256"})", R"({"exp":1,"aud":[1]})"), "aud");

  // Oversized.
  std::string big = Sign(Alg::kRS256, ClaimsJson(kNow + 600, R"(,"pad":")" + std::string(kMaxTokenBytes, 'x') + "\""));
  malformed(big, "too large");
}

TEST_F(JwtTest, RefusesCritHeaders) {
  std::string token =
      MakeRsaToken(K(Alg::kRS256), R"({"alg":"RS256","kid":"kid-RS256","crit":["exp"],"exp":1})", ClaimsJson());
  ExpectRefused(token, PublicSet(), Options(), StatusCode::kFailedPrecondition, "crit");
  // The same without crit passes: the refusal is about crit.
  token = MakeRsaToken(K(Alg::kRS256), R"({"alg":"RS256","kid":"kid-RS256","exp":1})", ClaimsJson());
  EXPECT_TRUE(VerifyJwt(token, PublicSet(), Options()).ok());
}

TEST_F(JwtTest, TimeClaims) {
  KeySet keys = PublicSet();
  auto verify = [&](const std::string& claims, int64_t leeway) {
    VerifyOptions o = Options();
    o.leeway_seconds = leeway;
    return VerifyJwt(Sign(Alg::kES256, claims), keys, o);
  };
  // exp: refused at exp (+ leeway), accepted just before.
  EXPECT_TRUE(verify(ClaimsJson(kNow + 1), 0).ok());
  ExpectRefused(
      Sign(Alg::kES256, ClaimsJson(kNow)), keys,
      [] {
        VerifyOptions o = Options();
        o.leeway_seconds = 0;
        return o;
      }(),
      StatusCode::kFailedPrecondition, "token expired");
  EXPECT_EQ(verify(ClaimsJson(kNow - 10), 0).status().message(), "token expired");
  EXPECT_TRUE(verify(ClaimsJson(kNow - 10), 30).ok());  // within leeway
  EXPECT_EQ(verify(ClaimsJson(kNow - 30), 30).status().message(), "token expired");
  EXPECT_EQ(verify(ClaimsJson(kNow - 3600), 30).status().code(), StatusCode::kFailedPrecondition);

  // nbf and iat in the future.
  EXPECT_TRUE(verify(ClaimsJson(kNow + 600, R"(,"nbf":)" + std::to_string(kNow + 20)), 30).ok());
  EXPECT_NE(verify(ClaimsJson(kNow + 600, R"(,"nbf":)" + std::to_string(kNow + 20)), 10).status().message().find("nbf"),
            std::string::npos);
  std::string future_iat = R"({"iss":"https://idp.example","aud":"https://fhir.example","exp":)" +
                           std::to_string(kNow + 600) + R"(,"iat":)" + std::to_string(kNow + 120) + "}";
  EXPECT_NE(verify(future_iat, 30).status().message().find("iat"), std::string::npos);

  // Fractional NumericDates are accepted and truncated.
  auto frac = verify(ClaimsJson(kNow + 600, R"(,"nbf":)" + std::to_string(kNow - 5) + ".75"), 0);
  ASSERT_TRUE(frac.ok()) << frac.status().ToString();
  EXPECT_EQ(frac->nbf, kNow - 5);

  // Missing exp.
  std::string no_exp = R"({"iss":"https://idp.example","aud":"https://fhir.example"})";
  EXPECT_EQ(verify(no_exp, 30).status().message(), "token has no exp");
  VerifyOptions lenient = Options();
  lenient.require_exp = false;
  auto ok = VerifyJwt(Sign(Alg::kES256, no_exp), keys, lenient);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->exp, 0);

  // now = 0 is the current time: a token that expired in 2023 is refused.
  VerifyOptions current = Options();
  current.now = 0;
  EXPECT_EQ(VerifyJwt(Sign(Alg::kES256), keys, current).status().message(), "token expired");
}

TEST_F(JwtTest, IssuerAndAudience) {
  KeySet keys = PublicSet();
  std::string token = Sign(Alg::kRS256);
  VerifyOptions o = Options();
  o.issuer = "https://other.example";
  ExpectRefused(token, keys, o, StatusCode::kFailedPrecondition, "wrong issuer");
  o.issuer.clear();
  EXPECT_TRUE(VerifyJwt(token, keys, o).ok());

  o = Options();
  o.audiences = {"https://elsewhere.example"};
  ExpectRefused(token, keys, o, StatusCode::kFailedPrecondition, "wrong audience");
  o.audiences = {"https://elsewhere.example", "https://fhir.example"};
  EXPECT_TRUE(VerifyJwt(token, keys, o).ok());
  o.audiences.clear();
  EXPECT_TRUE(VerifyJwt(token, keys, o).ok());

  // "aud" as an array; absent "aud" fails an audience check.
  std::string multi = R"({"iss":"https://idp.example","aud":["a","https://fhir.example"],"exp":)" +
                      std::to_string(kNow + 60) + R"(,"scope":["patient/*.rs","openid"]})";
  auto claims = VerifyJwt(Sign(Alg::kRS256, multi), keys, Options());
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->aud, (std::vector<std::string>{"a", "https://fhir.example"}));
  EXPECT_EQ(claims->scope, "patient/*.rs openid");
  std::string no_aud = R"({"iss":"https://idp.example","exp":)" + std::to_string(kNow + 60) + "}";
  ExpectRefused(Sign(Alg::kRS256, no_aud), keys, Options(), StatusCode::kFailedPrecondition, "wrong audience");
  std::string no_iss = R"({"aud":"https://fhir.example","exp":)" + std::to_string(kNow + 60) + "}";
  ExpectRefused(Sign(Alg::kRS256, no_iss), keys, Options(), StatusCode::kFailedPrecondition, "wrong issuer");
}

}  // namespace
}  // namespace bevan::auth
