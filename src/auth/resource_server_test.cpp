#include "auth/resource_server.h"

#include <gtest/gtest.h>

#include "http/server.h"

namespace bevan::auth {
namespace {

constexpr char kIssuer[] = "https://auth.example";
constexpr char kFhir[] = "https://auth.example/fhir";

class ResourceServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    own_ = std::make_unique<Key>(*Key::Generate(Alg::kES384, "own"));
    auto keys = std::make_shared<KeySet>();
    keys->Add(*own_);
    keys_ = keys;
  }

  std::unique_ptr<ResourceServer> Make(std::optional<ExternalProviderConfig> external = std::nullopt) {
    ResourceServerOptions o;
    o.issuer = kIssuer;
    o.audience = kFhir;
    o.keys = keys_;
    o.is_revoked = [this](std::string_view jti) { return jti == revoked_; };
    o.external = std::move(external);
    o.clock = [this] { return now_; };
    return std::make_unique<ResourceServer>(std::move(o));
  }

  std::string Token(const Key& key, std::string iss = kIssuer, std::string aud = kFhir, int64_t exp_in = 3600,
                    std::string scope = "launch/patient patient/Observation.rs patient/Patient.r") {
    return *SignJwt(key, R"({"iss":")" + iss + R"(","sub":"alice","aud":")" + aud + R"(","exp":)" +
                             std::to_string(now_ + exp_in) + R"(,"iat":)" + std::to_string(now_) +
                             R"(,"jti":"j1","scope":")" + scope +
                             R"(","client_id":"app","fhirUser":"Patient/p1","patient":"p1","idl":"P9"})");
  }

  static http::Request WithBearer(std::string token) {
    http::Request req;
    req.method = "GET";
    req.path = "/fhir/Patient/p1";
    req.remote_address = "10.0.0.7";
    if (!token.empty()) req.headers.emplace_back("Authorization", "Bearer " + token);
    return req;
  }

  int64_t now_ = 1'700'000'000;
  std::string revoked_;
  std::unique_ptr<Key> own_;
  std::shared_ptr<const KeySet> keys_;
};

TEST_F(ResourceServerTest, ValidTokenGivesAccess) {
  auto rs = Make();
  auto access = rs->Authenticate(WithBearer(Token(*own_)));
  ASSERT_TRUE(access.ok()) << access.status().ToString();
  EXPECT_TRUE(access->enforce);
  EXPECT_EQ(access->client_id, "app");
  EXPECT_EQ(access->subject, "alice");
  EXPECT_EQ(access->fhir_user, "Patient/p1");
  EXPECT_EQ(access->patient, "p1");
  EXPECT_EQ(access->identity_level, "P9");
  EXPECT_EQ(access->remote_address, "10.0.0.7");
  ASSERT_EQ(access->scopes.size(), 2u);
  EXPECT_EQ(access->scopes[0].resource_type, "Observation");
  EXPECT_TRUE(access->scopes[0].read && access->scopes[0].search && !access->scopes[0].create);
  EXPECT_EQ(access->Granting(Interaction::kRead, "Patient").size(), 1u);
  EXPECT_TRUE(access->Granting(Interaction::kSearch, "Patient").empty());
  // Cached: the same answer again.
  EXPECT_TRUE(rs->Authenticate(WithBearer(Token(*own_))).ok());
}

TEST_F(ResourceServerTest, BadTokensAre401) {
  auto rs = Make();
  auto expect_401 = [&](const http::Request& req, StatusCode code, const char* what) {
    auto access = rs->Authenticate(req);
    ASSERT_FALSE(access.ok()) << what;
    EXPECT_EQ(access.status().code(), code) << what << ": " << access.status().ToString();
    http::Response res;
    ResourceServer::Challenge(access.status(), res);
    EXPECT_EQ(res.status, 401);
    std::string_view challenge = res.Header("WWW-Authenticate");
    EXPECT_TRUE(challenge.starts_with("Bearer")) << what;
    EXPECT_EQ(challenge.find("invalid_token") != std::string_view::npos, code != StatusCode::kNotFound) << what;
  };
  expect_401(WithBearer(""), StatusCode::kNotFound, "missing");
  expect_401(WithBearer("garbage"), StatusCode::kFailedPrecondition, "garbage");
  expect_401(WithBearer("a.b.c"), StatusCode::kFailedPrecondition, "three garbage parts");
  http::Request basic = WithBearer("");
  basic.headers.emplace_back("Authorization", "Basic YTpi");
  expect_401(basic, StatusCode::kFailedPrecondition, "not bearer");
  expect_401(WithBearer(Token(*own_, kIssuer, kFhir, -120)), StatusCode::kFailedPrecondition, "expired");
  expect_401(WithBearer(Token(*own_, kIssuer, "https://other.example/fhir")), StatusCode::kFailedPrecondition,
             "wrong aud");
  expect_401(WithBearer(Token(*own_, "https://evil.example")), StatusCode::kFailedPrecondition, "wrong iss");
  Key forger = *Key::Generate(Alg::kES384, "own");
  expect_401(WithBearer(Token(forger)), StatusCode::kFailedPrecondition, "forged signature");
  expect_401(WithBearer(Token(*own_, kIssuer, kFhir, 3600, "patient/Nonsense.rs")), StatusCode::kFailedPrecondition,
             "malformed scope");
  // Expiry also applies to a token verified (and cached) earlier.
  std::string token = Token(*own_, kIssuer, kFhir, 60);
  ASSERT_TRUE(rs->Authenticate(WithBearer(token)).ok());
  now_ += 120;
  expect_401(WithBearer(token), StatusCode::kFailedPrecondition, "expired after caching");
}

TEST_F(ResourceServerTest, RevokedTokenRefusedEvenWhenCached) {
  auto rs = Make();
  std::string token = Token(*own_);
  ASSERT_TRUE(rs->Authenticate(WithBearer(token)).ok());
  revoked_ = "j1";
  EXPECT_FALSE(rs->Authenticate(WithBearer(token)).ok());
}

TEST_F(ResourceServerTest, ExternalProviderTokenViaJwks) {
  Key idp = *Key::Generate(Alg::kRS256, "idp-1");
  std::string jwks = "{\"keys\":[" + idp.PublicJwkJson() + "]}";
  http::ServerOptions so;
  so.address = "127.0.0.1";
  so.port = 0;
  so.io_threads = 1;
  auto server = http::Server::Start(so, [&](const http::Request& req, http::Response& res) {
    if (req.path == "/jwks") {
      res.SetHeader("Content-Type", "application/json");
      res.body = jwks;
    } else {
      res.status = 404;
    }
  });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ExternalProviderConfig ext;
  ext.issuer = "https://idp.example";
  ext.jwks_uri = "http://127.0.0.1:" + std::to_string((*server)->port()) + "/jwks";
  ext.audience = "bevan-api";
  auto rs = Make(ext);

  std::string token = *SignJwt(idp, R"({"iss":"https://idp.example","sub":"nhs-123","aud":"bevan-api","exp":)" +
                                        std::to_string(now_ + 600) +
                                        R"(,"scope":"openid patient/Patient.r","azp":"nhs-app",)"
                                        R"("identity_proofing_level":"P9","patient":"p9"})");
  auto access = rs->Authenticate(WithBearer(token));
  ASSERT_TRUE(access.ok()) << access.status().ToString();
  EXPECT_EQ(access->subject, "nhs-123");
  EXPECT_EQ(access->client_id, "nhs-app");
  EXPECT_EQ(access->identity_level, "P9");
  EXPECT_EQ(access->patient, "p9");
  ASSERT_EQ(access->scopes.size(), 1u);
  EXPECT_EQ(access->scopes[0].resource_type, "Patient");

  // The provider's token with our audience but the provider's configured one expected: refused;
  // so is a token signed by a key the provider does not publish.
  std::string wrong_aud = *SignJwt(
      idp, R"({"iss":"https://idp.example","sub":"x","aud":"other","exp":)" + std::to_string(now_ + 600) + "}");
  EXPECT_FALSE(rs->Authenticate(WithBearer(wrong_aud)).ok());
  Key impostor = *Key::Generate(Alg::kRS256, "idp-1");
  std::string forged = *SignJwt(impostor, R"({"iss":"https://idp.example","sub":"x","aud":"bevan-api","exp":)" +
                                              std::to_string(now_ + 600) + "}");
  EXPECT_FALSE(rs->Authenticate(WithBearer(forged)).ok());
  // Our own tokens still work alongside.
  EXPECT_TRUE(rs->Authenticate(WithBearer(Token(*own_))).ok());
  (*server)->Shutdown();
  (*server)->Wait();
}

}  // namespace
}  // namespace bevan::auth
