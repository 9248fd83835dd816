#include "auth/users.h"

#include <gtest/gtest.h>

#include "auth/clients.h"
#include "auth/server_util.h"

namespace bevan::auth {
namespace {

const Argon2Params kCheap{.memory_kib = 256, .iterations = 1, .parallelism = 1};

TEST(Passwords, HashIsArgon2idPhcAndVerifies) {
  auto hash = HashPassword("correct horse", kCheap);
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_TRUE(hash->starts_with("$argon2id$v=19$m=256,t=1,p=1$")) << *hash;
  EXPECT_TRUE(VerifyPassword(*hash, "correct horse"));
  EXPECT_FALSE(VerifyPassword(*hash, "correct horsE"));
  EXPECT_FALSE(VerifyPassword(*hash, ""));
  // Salted: the same password hashes differently each time.
  EXPECT_NE(*hash, *HashPassword("correct horse", kCheap));
}

TEST(Passwords, DefaultCostIsOwaspMinimum) {
  auto hash = HashPassword("pw");
  ASSERT_TRUE(hash.ok());
  EXPECT_TRUE(hash->starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) << *hash;
  EXPECT_TRUE(VerifyPassword(*hash, "pw"));
}

TEST(Passwords, RefusesBadInputAndCostlyOrForeignEncodings) {
  EXPECT_FALSE(HashPassword("", kCheap).ok());
  EXPECT_FALSE(HashPassword(std::string(1025, 'x'), kCheap).ok());
  EXPECT_FALSE(VerifyPassword("", "x"));
  EXPECT_FALSE(VerifyPassword("plain", "plain"));
  // argon2i and a 4 GiB memory cost are not accepted.
  EXPECT_FALSE(VerifyPassword("$argon2i$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "x"));
  EXPECT_FALSE(
      VerifyPassword("$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNo", "x"));
}

Result<UserDirectory> Users(std::string_view text) {
  auto doc = json::Document::Parse(text);
  if (!doc.ok()) return doc.status();
  return UserDirectory::FromJson(doc->root());
}

TEST(UserDirectory, LoadsAndValidates) {
  std::string hash = *HashPassword("pw", kCheap);
  auto users = Users(R"({"users":[{"username":"alice","password_hash":")" + hash +
                     R"(","fhirUser":"Patient/p1","role":"patient","identity_level":"P9"},
                       {"username":"bob","password_hash":")" +
                     hash + R"(","fhirUser":"Practitioner/x","role":"clinician","identity_level":"P5"}]})");
  ASSERT_TRUE(users.ok()) << users.status().ToString();
  ASSERT_NE(users->Find("alice"), nullptr);
  EXPECT_EQ(users->Find("alice")->fhir_user, "Patient/p1");
  EXPECT_EQ(users->Find("bob")->role, Role::kClinician);
  EXPECT_EQ(users->Find("bob")->identity_level, "P5");
  EXPECT_EQ(users->Find("carol"), nullptr);

  EXPECT_FALSE(Users(R"({"users":[{"username":"a","password_hash":"plaintext"}]})").ok());
  EXPECT_FALSE(Users(R"({"users":[{"username":"a","password_hash":")" + hash + R"(","role":"king"}]})").ok());
  EXPECT_FALSE(Users(R"({"users":[{"username":"a","password_hash":")" + hash +
                     R"(","role":"patient","fhirUser":"Practitioner/1"}]})")
                   .ok());
  EXPECT_FALSE(Users(R"({"users":[{"username":"a","password_hash":")" + hash +
                     R"(","fhirUser":"Patient/1","identity_level":"P7"}]})")
                   .ok());
  EXPECT_FALSE(Users(R"({"users":[{"username":"a","password_hash":")" + hash + R"(","fhirUser":"Patient/1"},
                        {"username":"a","password_hash":")" +
                     hash + R"(","fhirUser":"Patient/1"}]})")
                   .ok());
  EXPECT_FALSE(Users(R"({"users":[{"username":"a","password":"pw"}]})").ok());
}

TEST(LoginThrottle, LocksAfterFailuresAndDoublesEachTime) {
  LoginThrottle t(LoginThrottle::Options{.max_failures = 3, .lockout_seconds = 60, .max_tracked = 10});
  int64_t now = 1000;
  EXPECT_EQ(t.LockedFor("alice", now), 0);
  t.RecordFailure("alice", now);
  t.RecordFailure("alice", now);
  EXPECT_EQ(t.LockedFor("alice", now), 0);
  t.RecordFailure("alice", now);
  EXPECT_EQ(t.LockedFor("alice", now), 60);
  EXPECT_EQ(t.LockedFor("bob", now), 0);
  now += 61;
  EXPECT_EQ(t.LockedFor("alice", now), 0);
  for (int i = 0; i < 3; ++i) t.RecordFailure("alice", now);
  EXPECT_EQ(t.LockedFor("alice", now), 120);
  t.RecordSuccess("alice");
  EXPECT_EQ(t.LockedFor("alice", now), 0);
}

TEST(LoginThrottle, StaysBounded) {
  LoginThrottle t(LoginThrottle::Options{.max_failures = 1, .lockout_seconds = 60, .max_tracked = 4});
  for (int i = 0; i < 10; ++i) t.RecordFailure("user" + std::to_string(i), 100 + i);
  EXPECT_EQ(t.LockedFor("user0", 110), 0);  // evicted, oldest first
  EXPECT_GT(t.LockedFor("user9", 110), 0);
}

Result<ClientRegistry> Clients(std::string_view text) {
  auto doc = json::Document::Parse(text);
  if (!doc.ok()) return doc.status();
  return ClientRegistry::FromJson(doc->root());
}

TEST(ClientRegistry, LoadsEachKindAndRefusesInconsistentOnes) {
  auto key = Key::Generate(Alg::kES384, "k1");
  ASSERT_TRUE(key.ok());
  std::string jwks = "{\"keys\":[" + key->PublicJwkJson() + "]}";
  std::string hash = *HashPassword("secret", kCheap);
  auto reg = Clients(R"({"clients":[
    {"client_id":"app","type":"public","redirect_uris":["https://app/cb"],"scopes":["openid","patient/*.rs"]},
    {"client_id":"web","type":"confidential","client_secret_hash":")" +
                     hash + R"(","redirect_uris":["https://web/cb"]},
    {"client_id":"etl","type":"backend","jwks":)" +
                     jwks + R"(,"scopes":["system/Patient.rs"]}]})");
  ASSERT_TRUE(reg.ok()) << reg.status().ToString();
  EXPECT_EQ(reg->size(), 3u);
  EXPECT_TRUE(reg->Find("app")->HasRedirectUri("https://app/cb"));
  EXPECT_FALSE(reg->Find("app")->HasRedirectUri("https://app/cb/"));
  EXPECT_TRUE(reg->Find("app")->MayRequest("patient/*.rs"));
  EXPECT_FALSE(reg->Find("app")->MayRequest("user/*.rs"));
  ASSERT_NE(reg->Find("etl")->jwks, nullptr);
  EXPECT_NE(reg->Find("etl")->jwks->Find("k1"), nullptr);

  EXPECT_FALSE(Clients(R"({"clients":[{"client_id":"a","type":"public"}]})").ok());  // no redirect URIs
  EXPECT_FALSE(Clients(R"({"clients":[{"client_id":"a","type":"confidential","redirect_uris":["https://a/"]}]})").ok());
  EXPECT_FALSE(Clients(R"({"clients":[{"client_id":"a","type":"backend"}]})").ok());  // no keys
  EXPECT_FALSE(
      Clients(R"({"clients":[{"client_id":"a","type":"backend","jwks_uri":"http://evil.example/jwks"}]})").ok());
  EXPECT_FALSE(Clients(R"({"clients":[{"client_id":"a","redirect_uris":["https://a/#frag"]}]})").ok());
  EXPECT_FALSE(Clients(R"({"clients":[{"client_id":"a","redirect_uris":["https://a/"],"secret":"x"}]})").ok());
}

TEST(ServerUtil, FormParsingAndEncodings) {
  auto f = internal::ParseForm("a=1&b=hello+world&c=%2F%3D&d=");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(internal::FormValue(*f, "b"), "hello world");
  EXPECT_EQ(internal::FormValue(*f, "c"), "/=");
  EXPECT_TRUE(internal::FormHas(*f, "d"));
  EXPECT_FALSE(internal::ParseForm("a=1&a=2").ok());  // repeated
  EXPECT_FALSE(internal::ParseForm("a=%zz").ok());
  EXPECT_FALSE(internal::ParseForm("a=%2").ok());
  EXPECT_FALSE(internal::ParseForm("a=" + std::string(5000, 'x')).ok());
  EXPECT_FALSE(internal::ParseForm("a=1&b=2&c=3", 2).ok());
  EXPECT_EQ(*internal::Base64Decode("YWxpY2U6c2VjcmV0"), "alice:secret");
  EXPECT_FALSE(internal::Base64Decode("YWxpY2U6c2VjcmV0!").has_value());
  EXPECT_EQ(internal::HtmlEscape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  EXPECT_EQ(internal::RandomToken().size(), 43u);
  EXPECT_NE(internal::RandomToken(), internal::RandomToken());
  // RFC 7636 appendix B.
  EXPECT_EQ(Base64UrlEncode(internal::Sha256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

}  // namespace
}  // namespace bevan::auth
