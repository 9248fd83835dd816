// The SMART authorisation server driven in-process: the code flow with PKCE,
// refresh rotation, backend services, introspection and their failures.
#include "auth/server.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <regex>

#include "auth/server_util.h"
#include "http/server.h"

namespace bevan::auth {
namespace {

using internal::PercentEncode;

constexpr char kIssuer[] = "https://auth.example";
constexpr char kFhir[] = "https://auth.example/fhir";
constexpr char kRedirect[] = "https://app.example/cb";
constexpr char kVerifier[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
constexpr char kChallenge[] = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const Argon2Params kCheap{.memory_kib = 256, .iterations = 1, .parallelism = 1};

json::Document Json(std::string_view text) {
  auto doc = json::Document::Parse(text);
  EXPECT_TRUE(doc.ok()) << text;
  return doc.ok() ? std::move(doc).value() : json::Document();
}

std::string Str(const json::Document& d, std::string_view key) {
  const json::Value* v = d.root().Find(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// The value of `name` in a URL's query.
std::string QueryParam(std::string_view url, std::string_view name) {
  size_t q = url.find('?');
  if (q == std::string_view::npos) return {};
  auto form = internal::ParseForm(url.substr(q + 1));
  return form.ok() ? std::string(internal::FormValue(*form, name)) : std::string();
}

class AuthServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pw = *HashPassword("pw-alice", kCheap);
    std::vector<User> users = {
        {"alice", pw, "Patient/pat-1", Role::kPatient, "P9"},
        {"bob", *HashPassword("pw-bob", kCheap), "Practitioner/pr-1", Role::kClinician, "P9"},
        {"carol", *HashPassword("pw-carol", kCheap), "Patient/pat-3", Role::kPatient, "P5"},
    };
    // RSA key generation is slow: the client keys are made once for all tests.
    static const Key rs = *Key::Generate(Alg::kRS384, "rs-1");
    static const Key es = *Key::Generate(Alg::kES384, "es-1");
    rs_key_ = std::make_unique<Key>(rs);
    es_key_ = std::make_unique<Key>(es);
    auto rs_keys = std::make_shared<KeySet>();
    rs_keys->Add(*Key::FromJwk(Json(rs_key_->PublicJwkJson()).root()));
    auto es_keys = std::make_shared<KeySet>();
    es_keys->Add(*Key::FromJwk(Json(es_key_->PublicJwkJson()).root()));
    std::vector<std::string> app_scopes = {
        "openid",    "fhirUser",          "launch/patient", "offline_access",    "patient/*.rs",
        "user/*.rs", "patient/Patient.r", "system/*.rs",    "user/AuditEvent.rs"};
    std::vector<Client> clients;
    clients.push_back({"app", ClientType::kPublic, {kRedirect}, "", nullptr, "", app_scopes});
    clients.push_back({"web",
                       ClientType::kConfidential,
                       {"https://web.example/cb"},
                       *HashPassword("s3cret", kCheap),
                       nullptr,
                       "",
                       app_scopes});
    clients.push_back(
        {"etl-rs", ClientType::kBackend, {}, "", rs_keys, "", {"system/Patient.rs", "system/Observation.rs"}});
    clients.push_back({"etl-es", ClientType::kBackend, {}, "", es_keys, "", {"system/Patient.rs"}});
    AuthServerOptions o;
    o.issuer = kIssuer;
    o.fhir_base_url = kFhir;
    o.dummy_hash_params = kCheap;
    o.throttle = {.max_failures = 3, .lockout_seconds = 60, .max_tracked = 100};
    o.clock = [this] { return now_; };
    o.on_login = [this](const LoginEvent& e) { logins_.push_back(e); };
    server_ = std::make_unique<AuthServer>(std::move(o), UserDirectory(std::move(users)),
                                           ClientRegistry(std::move(clients)), *Key::Generate(Alg::kES384, "srv"));
  }

  http::Response Call(std::string method, std::string target, std::string body = {}, http::Headers headers = {}) {
    http::Request req;
    req.method = std::move(method);
    req.SetTarget(std::move(target));
    req.body = std::move(body);
    req.headers = std::move(headers);
    if (req.method == "POST") req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    req.remote_address = "127.0.0.1";
    http::Response res;
    server_->Handle(req, res);
    return res;
  }

  std::string AuthorizeTarget(const std::string& scope, const std::string& extra = "") {
    return std::string("/auth/authorize?response_type=code&client_id=app&redirect_uri=") + PercentEncode(kRedirect) +
           "&scope=" + PercentEncode(scope) + "&state=st-123&aud=" + PercentEncode(kFhir) +
           "&code_challenge=" + kChallenge + "&code_challenge_method=S256" + extra;
  }

  struct Form {
    std::string id, cookie;
  };
  // GET /auth/authorize: the sign-in form's id and its cookie.
  Form OpenForm(const std::string& target) {
    http::Response res = Call("GET", target);
    EXPECT_EQ(res.status, 200) << res.body;
    std::smatch m;
    std::string body = res.body;
    EXPECT_TRUE(std::regex_search(body, m, std::regex("name=\"request\" value=\"([^\"]+)\""))) << body;
    std::string cookie(res.Header("Set-Cookie"));
    EXPECT_TRUE(cookie.starts_with("bevan_login=")) << cookie;
    EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
    EXPECT_NE(cookie.find("Secure"), std::string::npos);
    return {m.size() > 1 ? m[1].str() : "", cookie.substr(0, cookie.find(';'))};
  }

  http::Response SignIn(const Form& form, std::string user, std::string password, std::string extra = "") {
    return Call("POST", "/auth/login",
                "request=" + form.id + "&username=" + user + "&password=" + PercentEncode(password) + extra,
                {{"Cookie", form.cookie}});
  }

  // Authorize and sign in; returns the code.
  std::string Code(const std::string& scope, std::string user = "alice", std::string password = "pw-alice",
                   std::string extra = "") {
    Form form = OpenForm(AuthorizeTarget(scope));
    http::Response res = SignIn(form, user, password, extra);
    EXPECT_EQ(res.status, 302) << res.body;
    std::string location(res.Header("Location"));
    EXPECT_TRUE(location.starts_with(std::string(kRedirect) + "?")) << location;
    EXPECT_EQ(QueryParam(location, "state"), "st-123");
    return QueryParam(location, "code");
  }

  http::Response Redeem(const std::string& code, std::string verifier = kVerifier, std::string redirect = kRedirect) {
    return Call("POST", "/auth/token",
                "grant_type=authorization_code&client_id=app&code=" + code +
                    "&redirect_uri=" + PercentEncode(redirect) + "&code_verifier=" + verifier);
  }

  Claims Verify(const std::string& token, std::string audience = kFhir) {
    VerifyOptions vo;
    vo.allowed_algs = {Alg::kES384};
    vo.issuer = kIssuer;
    vo.audiences = {audience};
    vo.now = now_;
    auto c = VerifyJwt(token, *server_->verification_keys(), vo);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : Claims{};
  }

  std::string Assertion(const Key& key, const std::string& client_id, int64_t exp_in = 240,
                        std::string aud = std::string(kIssuer) + "/auth/token", std::string jti = "") {
    if (jti.empty()) jti = internal::RandomToken();
    std::string claims = R"({"iss":")" + client_id + R"(","sub":")" + client_id + R"(","aud":")" + aud + R"(","exp":)" +
                         std::to_string(now_ + exp_in) + R"(,"jti":")" + jti + "\"}";
    return *SignJwt(key, claims);
  }

  http::Response ClientCredentials(const std::string& assertion, const std::string& scope) {
    return Call("POST", "/auth/token",
                "grant_type=client_credentials&scope=" + PercentEncode(scope) +
                    "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                    "&client_assertion=" +
                    assertion);
  }

  http::Response Introspect(const std::string& token, http::Headers headers) {
    return Call("POST", "/auth/introspect", "token=" + token, std::move(headers));
  }

  static http::Headers WebBasic(std::string secret = "s3cret") {
    return {{"Authorization", "Basic " + Base64Encode("web:" + secret)}};
  }
  static std::string Base64Encode(std::string s) {
    // Standard base64 from base64url (no padding) for the test's Basic header.
    std::string out = Base64UrlEncode(s);
    for (char& c : out) {
      if (c == '-') c = '+';
      if (c == '_') c = '/';
    }
    while (out.size() % 4) out += '=';
    return out;
  }

  int64_t now_ = 1'700'000'000;
  std::vector<LoginEvent> logins_;
  std::unique_ptr<Key> rs_key_, es_key_;
  std::unique_ptr<AuthServer> server_;
};

TEST_F(AuthServerTest, SmartConfiguration) {
  for (const char* path : {"/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"}) {
    http::Response res = Call("GET", path);
    ASSERT_EQ(res.status, 200);
    json::Document d = Json(res.body);
    EXPECT_EQ(Str(d, "issuer"), kIssuer);
    EXPECT_EQ(Str(d, "authorization_endpoint"), "https://auth.example/auth/authorize");
    EXPECT_EQ(Str(d, "token_endpoint"), "https://auth.example/auth/token");
    EXPECT_EQ(Str(d, "introspection_endpoint"), "https://auth.example/auth/introspect");
    EXPECT_EQ(Str(d, "jwks_uri"), "https://auth.example/auth/jwks");
    EXPECT_EQ(json::ToString(*d.root().Find("code_challenge_methods_supported")), R"(["S256"])");
    EXPECT_EQ(json::ToString(*d.root().Find("response_types_supported")), R"(["code"])");
    EXPECT_EQ(json::ToString(*d.root().Find("token_endpoint_auth_methods_supported")),
              R"(["private_key_jwt","client_secret_basic","none"])");
    EXPECT_EQ(json::ToString(*d.root().Find("token_endpoint_auth_signing_alg_values_supported")),
              R"(["RS384","ES384"])");
    std::string caps = json::ToString(*d.root().Find("capabilities"));
    for (const char* cap :
         {"launch-standalone", "client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
          "context-standalone-patient", "permission-offline", "permission-patient", "permission-user", "permission-v1",
          "permission-v2", "sso-openid-connect"}) {
      EXPECT_NE(caps.find(std::string("\"") + cap + "\""), std::string::npos) << cap;
    }
    std::string grants = json::ToString(*d.root().Find("grant_types_supported"));
    EXPECT_NE(grants.find("client_credentials"), std::string::npos);
  }
  EXPECT_EQ(Call("POST", "/.well-known/smart-configuration").status, 405);
}

TEST_F(AuthServerTest, JwksHasOnlyPublicKeys) {
  http::Response res = Call("GET", "/auth/jwks");
  ASSERT_EQ(res.status, 200);
  auto keys = KeySet::FromJwksJson(res.body);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 1u);
  EXPECT_EQ(res.body.find("\"d\""), std::string::npos);
}

TEST_F(AuthServerTest, FullCodeFlowWithPkce) {
  std::string code = Code("openid fhirUser launch/patient patient/*.rs offline_access", "alice", "pw-alice", "");
  ASSERT_EQ(code.size(), 43u);
  http::Response res = Redeem(code);
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.Header("Cache-Control"), "no-store");
  json::Document d = Json(res.body);
  EXPECT_EQ(Str(d, "token_type"), "Bearer");
  EXPECT_EQ(Str(d, "scope"), "openid fhirUser launch/patient patient/*.rs offline_access");
  EXPECT_EQ(Str(d, "patient"), "pat-1");
  EXPECT_EQ(d.root().Find("expires_in")->AsInt64(), 3600);
  EXPECT_FALSE(Str(d, "refresh_token").empty());

  Claims at = Verify(Str(d, "access_token"));
  EXPECT_EQ(at.sub, "alice");
  EXPECT_EQ(at.client_id, "app");
  EXPECT_EQ(at.patient, "pat-1");
  EXPECT_EQ(at.fhir_user, "Patient/pat-1");
  EXPECT_EQ(at.scope, "openid fhirUser launch/patient patient/*.rs offline_access");
  EXPECT_EQ(at.exp, now_ + 3600);
  EXPECT_EQ(at.iat, now_);
  EXPECT_FALSE(at.jti.empty());
  EXPECT_EQ(at.GetString("idl"), "P9");

  Claims id = Verify(Str(d, "id_token"), "app");
  EXPECT_EQ(id.fhir_user, "Patient/pat-1");
  EXPECT_EQ(id.sub, "alice");

  // Single use.
  http::Response again = Redeem(code);
  EXPECT_EQ(again.status, 400);
  EXPECT_EQ(Str(Json(again.body), "error"), "invalid_grant");
  // ... and its reuse revokes what the first use gave.
  EXPECT_TRUE(server_->IsRevoked(at.jti));
}

TEST_F(AuthServerTest, IdTokenCarriesNonce) {
  Form form = OpenForm(AuthorizeTarget("openid fhirUser patient/*.rs", "&nonce=n-42"));
  http::Response res = SignIn(form, "alice", "pw-alice");
  ASSERT_EQ(res.status, 302);
  http::Response tok = Redeem(QueryParam(res.Header("Location"), "code"));
  ASSERT_EQ(tok.status, 200);
  EXPECT_EQ(Verify(Str(Json(tok.body), "id_token"), "app").GetString("nonce"), "n-42");
  // A patient user always has their own patient context, but no refresh token without offline_access.
  EXPECT_TRUE(Str(Json(tok.body), "refresh_token").empty());
  EXPECT_EQ(Verify(Str(Json(tok.body), "access_token")).patient, "pat-1");
}

TEST_F(AuthServerTest, WrongVerifierRefused) {
  std::string code = Code("launch/patient patient/*.rs");
  http::Response res = Redeem(code, "a-different-verifier-that-is-long-enough-1234567");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(Str(Json(res.body), "error"), "invalid_grant");
  // The code is spent even so.
  EXPECT_EQ(Redeem(code).status, 400);
  // A verifier too short to be one.
  EXPECT_EQ(Redeem(Code("launch/patient patient/*.rs"), "short").status, 400);
}

TEST_F(AuthServerTest, PlainOrMissingChallengeRefusedWithRedirect) {
  for (std::string bad : {"&code_challenge_method=plain", "&code_challenge_method=", "&code_challenge_method=s256"}) {
    std::string target = AuthorizeTarget("patient/*.rs");
    target = target.substr(0, target.find("&code_challenge_method=S256")) + bad;
    http::Response res = Call("GET", target);
    ASSERT_EQ(res.status, 302) << bad;
    std::string location(res.Header("Location"));
    EXPECT_EQ(QueryParam(location, "error"), "invalid_request") << location;
    EXPECT_EQ(QueryParam(location, "state"), "st-123");
  }
  std::string target = AuthorizeTarget("patient/*.rs");
  size_t at = target.find("&code_challenge=");
  target.erase(at, std::string("&code_challenge=").size() + 43);
  EXPECT_EQ(QueryParam(Call("GET", target).Header("Location"), "error"), "invalid_request");
}

TEST_F(AuthServerTest, AuthorizeValidation) {
  // Unknown client or unregistered redirect URI: an error page, never a redirect.
  http::Response res =
      Call("GET", "/auth/authorize?response_type=code&client_id=nobody&redirect_uri=" + PercentEncode(kRedirect));
  EXPECT_EQ(res.status, 400);
  EXPECT_TRUE(res.Header("Location").empty());
  std::string target = AuthorizeTarget("patient/*.rs");
  target.replace(target.find("cb"), 2, "evil");
  res = Call("GET", target);
  EXPECT_EQ(res.status, 400);
  EXPECT_TRUE(res.Header("Location").empty());
  // Wrong aud.
  target = AuthorizeTarget("patient/*.rs");
  target.replace(target.find("aud="), 4, "aud=https%3A%2F%2Fother.example%2Ffhir&x=");
  EXPECT_EQ(QueryParam(Call("GET", target).Header("Location"), "error"), "invalid_request");
  // response_type.
  target = AuthorizeTarget("patient/*.rs");
  target.replace(target.find("response_type=code"), 18, "response_type=token");
  EXPECT_EQ(QueryParam(Call("GET", target).Header("Location"), "error"), "unsupported_response_type");
  // Malformed and ungrantable scopes.
  EXPECT_EQ(QueryParam(Call("GET", AuthorizeTarget("patient/Nonsense.rs")).Header("Location"), "error"),
            "invalid_scope");
  EXPECT_EQ(QueryParam(Call("GET", AuthorizeTarget("user/*.cruds")).Header("Location"), "error"), "invalid_scope");
  // Missing state.
  target = AuthorizeTarget("patient/*.rs");
  target.replace(target.find("state=st-123"), 12, "x=1");
  EXPECT_EQ(QueryParam(Call("GET", target).Header("Location"), "error"), "invalid_request");
}

TEST_F(AuthServerTest, LoginFormNeedsItsCookie) {
  Form form = OpenForm(AuthorizeTarget("patient/*.rs"));
  http::Response res = Call("POST", "/auth/login", "request=" + form.id + "&username=alice&password=pw-alice",
                            {{"Cookie", "bevan_login=forged"}});
  EXPECT_EQ(res.status, 400);
  res = Call("POST", "/auth/login", "request=made-up&username=alice&password=pw-alice", {{"Cookie", form.cookie}});
  EXPECT_EQ(res.status, 400);
  // The genuine one still works.
  EXPECT_EQ(SignIn(form, "alice", "pw-alice").status, 302);
  // And is single-use.
  EXPECT_EQ(SignIn(form, "alice", "pw-alice").status, 400);
}

TEST_F(AuthServerTest, RedirectUriMismatchAtTokenEndpoint) {
  std::string code = Code("patient/*.rs");
  http::Response res = Redeem(code, kVerifier, "https://app.example/other");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(Str(Json(res.body), "error"), "invalid_grant");
}

TEST_F(AuthServerTest, ExpiredCodeRefused) {
  std::string code = Code("patient/*.rs");
  now_ += 61;
  http::Response res = Redeem(code);
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(Str(Json(res.body), "error"), "invalid_grant");
}

TEST_F(AuthServerTest, CodeBoundToClient) {
  std::string code = Code("patient/*.rs");
  http::Response res = Call("POST", "/auth/token",
                            "grant_type=authorization_code&code=" + code + "&redirect_uri=" + PercentEncode(kRedirect) +
                                "&code_verifier=" + kVerifier,
                            WebBasic());
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(Str(Json(res.body), "error"), "invalid_grant");
}

TEST_F(AuthServerTest, RefreshRotation) {
  http::Response res = Redeem(Code("launch/patient patient/*.rs offline_access"));
  ASSERT_EQ(res.status, 200);
  std::string r1 = Str(Json(res.body), "refresh_token");
  ASSERT_FALSE(r1.empty());
  now_ += 100;
  http::Response res2 = Call("POST", "/auth/token", "grant_type=refresh_token&client_id=app&refresh_token=" + r1);
  ASSERT_EQ(res2.status, 200) << res2.body;
  json::Document d2 = Json(res2.body);
  std::string r2 = Str(d2, "refresh_token");
  ASSERT_FALSE(r2.empty());
  EXPECT_NE(r1, r2);
  Claims at2 = Verify(Str(d2, "access_token"));
  EXPECT_EQ(at2.patient, "pat-1");
  EXPECT_EQ(at2.iat, now_);
  // Narrowing is allowed, widening is not.
  http::Response narrow =
      Call("POST", "/auth/token",
           "grant_type=refresh_token&scope=patient%2F*.rs&refresh_token=" + r2);  // public: client_id optional
  ASSERT_EQ(narrow.status, 200) << narrow.body;
  std::string r3 = Str(Json(narrow.body), "refresh_token");
  EXPECT_EQ(Str(Json(narrow.body), "scope"), "patient/*.rs");
  // The rotated-out token is dead, and replaying it revokes the family.
  http::Response old = Call("POST", "/auth/token", "grant_type=refresh_token&client_id=app&refresh_token=" + r1);
  EXPECT_EQ(old.status, 400);
  EXPECT_EQ(Str(Json(old.body), "error"), "invalid_grant");
  EXPECT_TRUE(server_->IsRevoked(at2.jti));
  EXPECT_EQ(Call("POST", "/auth/token", "grant_type=refresh_token&client_id=app&refresh_token=" + r3).status, 400);
}

TEST_F(AuthServerTest, ConfidentialClientMustAuthenticateToRefresh) {
  Form form = OpenForm(std::string("/auth/authorize?response_type=code&client_id=web&redirect_uri=") +
                       PercentEncode("https://web.example/cb") + "&scope=patient%2F*.rs%20offline_access&state=s&aud=" +
                       PercentEncode(kFhir) + "&code_challenge=" + kChallenge + "&code_challenge_method=S256");
  http::Response login = SignIn(form, "alice", "pw-alice");
  ASSERT_EQ(login.status, 302);
  http::Response tok =
      Call("POST", "/auth/token",
           "grant_type=authorization_code&code=" + QueryParam(login.Header("Location"), "code") +
               "&redirect_uri=" + PercentEncode("https://web.example/cb") + "&code_verifier=" + kVerifier,
           WebBasic());
  ASSERT_EQ(tok.status, 200) << tok.body;
  std::string r = Str(Json(tok.body), "refresh_token");
  EXPECT_EQ(Call("POST", "/auth/token", "grant_type=refresh_token&refresh_token=" + r).status, 401);
  EXPECT_EQ(Call("POST", "/auth/token", "grant_type=refresh_token&client_id=web&refresh_token=" + r).status, 401);
  EXPECT_EQ(Call("POST", "/auth/token", "grant_type=refresh_token&refresh_token=" + r, WebBasic()).status, 200);
}

TEST_F(AuthServerTest, RefreshTokenBoundToClientAndExpires) {
  std::string r = Str(Json(Redeem(Code("patient/*.rs offline_access")).body), "refresh_token");
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(Call("POST", "/auth/token", "grant_type=refresh_token&refresh_token=" + r, WebBasic()).status, 400);
  std::string r2 = Str(Json(Redeem(Code("patient/*.rs offline_access")).body), "refresh_token");
  now_ += 86401;
  EXPECT_EQ(Call("POST", "/auth/token", "grant_type=refresh_token&client_id=app&refresh_token=" + r2).status, 400);
}

TEST_F(AuthServerTest, IdentityLevelBelowRequiredIsDenied) {
  Form form = OpenForm(AuthorizeTarget("launch/patient patient/*.rs"));
  http::Response res = SignIn(form, "carol", "pw-carol");
  ASSERT_EQ(res.status, 302);
  std::string location(res.Header("Location"));
  EXPECT_EQ(QueryParam(location, "error"), "access_denied");
  EXPECT_EQ(QueryParam(location, "state"), "st-123");
  EXPECT_TRUE(QueryParam(location, "code").empty());
}

TEST_F(AuthServerTest, WrongPasswordThenLockout) {
  Form form = OpenForm(AuthorizeTarget("patient/*.rs"));
  http::Response res = SignIn(form, "alice", "nope");
  EXPECT_EQ(res.status, 401);
  EXPECT_NE(res.body.find("Wrong username or password"), std::string::npos);
  EXPECT_EQ(res.body.find("nope"), std::string::npos);  // the password is never echoed
  EXPECT_EQ(SignIn(form, "alice", "nope").status, 401);
  EXPECT_EQ(SignIn(form, "alice", "nope").status, 401);
  // Locked: even the right password is refused until the lock ends.
  res = SignIn(form, "alice", "pw-alice");
  EXPECT_EQ(res.status, 429);
  EXPECT_EQ(res.Header("Retry-After"), "60");
  // Unknown usernames are throttled the same way.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(SignIn(form, "mallory", "x").status, 401);
  EXPECT_EQ(SignIn(form, "mallory", "x").status, 429);
  now_ += 61;
  EXPECT_EQ(SignIn(form, "alice", "pw-alice").status, 302);
}

TEST_F(AuthServerTest, SignInsAreReportedForTheAudit) {
  Form form = OpenForm(AuthorizeTarget("launch/patient patient/*.rs"));
  EXPECT_EQ(SignIn(form, "alice", "nope").status, 401);
  EXPECT_EQ(SignIn(form, "alice", "pw-alice").status, 302);
  Form low = OpenForm(AuthorizeTarget("launch/patient patient/*.rs"));
  EXPECT_EQ(SignIn(low, "carol", "pw-carol").status, 302);  // access_denied: P5
  ASSERT_EQ(logins_.size(), 3u);
  EXPECT_FALSE(logins_[0].success);
  EXPECT_EQ(logins_[0].fhir_user, "Patient/pat-1");
  EXPECT_EQ(logins_[0].client_id, "app");
  EXPECT_EQ(logins_[0].remote_address, "127.0.0.1");
  EXPECT_EQ(logins_[0].description.find("nope"), std::string::npos);
  EXPECT_TRUE(logins_[1].success);
  EXPECT_FALSE(logins_[2].success);
  EXPECT_NE(logins_[2].description.find("identity"), std::string::npos);
}

TEST_F(AuthServerTest, OnlyAdministratorsGetAuditScopes) {
  // bob is a clinician: user/AuditEvent.rs is dropped from his grant.
  Form form = OpenForm(AuthorizeTarget("user/*.rs user/AuditEvent.rs"));
  http::Response res = SignIn(form, "bob", "pw-bob");
  ASSERT_EQ(res.status, 302) << res.body;
  std::string code = QueryParam(std::string(res.Header("Location")), "code");
  ASSERT_FALSE(code.empty());
  http::Response token = Redeem(code);
  ASSERT_EQ(token.status, 200) << token.body;
  EXPECT_NE(token.body.find("user/*.rs"), std::string::npos) << token.body;
  EXPECT_EQ(token.body.find("AuditEvent"), std::string::npos) << token.body;
}

TEST_F(AuthServerTest, ClinicianChoosesPatient) {
  Form form = OpenForm(AuthorizeTarget("launch/patient patient/*.rs user/*.rs"));
  http::Response res = SignIn(form, "bob", "pw-bob");
  EXPECT_EQ(res.status, 400);  // asked for a patient id
  res = SignIn(form, "bob", "pw-bob", "&patient=pat-7");
  ASSERT_EQ(res.status, 302) << res.body;
  http::Response tok = Redeem(QueryParam(res.Header("Location"), "code"));
  ASSERT_EQ(tok.status, 200);
  json::Document d = Json(tok.body);
  EXPECT_EQ(Str(d, "patient"), "pat-7");
  Claims at = Verify(Str(d, "access_token"));
  EXPECT_EQ(at.fhir_user, "Practitioner/pr-1");
  EXPECT_EQ(at.scope, "launch/patient patient/*.rs user/*.rs");
}

TEST_F(AuthServerTest, PatientUsersGetNoUserScopes) {
  http::Response tok = Redeem(Code("launch/patient patient/*.rs user/*.rs"));
  ASSERT_EQ(tok.status, 200);
  EXPECT_EQ(Str(Json(tok.body), "scope"), "launch/patient patient/*.rs");
}

TEST_F(AuthServerTest, ConfidentialClientNeedsItsSecret) {
  std::string code = Code("patient/*.rs");
  http::Response res =
      Call("POST", "/auth/token",
           "grant_type=authorization_code&client_id=web&code=" + code + "&redirect_uri=x&code_verifier=" + kVerifier);
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(Str(Json(res.body), "error"), "invalid_client");
  res = Call("POST", "/auth/token", "grant_type=authorization_code&code=x", WebBasic("wrong"));
  EXPECT_EQ(res.status, 401);
  EXPECT_FALSE(res.Header("WWW-Authenticate").empty());
  EXPECT_EQ(Call("POST", "/auth/token", "grant_type=password&client_id=app").status, 400);
  EXPECT_EQ(Str(Json(Call("POST", "/auth/token", "grant_type=password&client_id=app").body), "error"),
            "unsupported_grant_type");
}

TEST_F(AuthServerTest, ClientCredentialsRs384AndEs384) {
  http::Response res = ClientCredentials(Assertion(*rs_key_, "etl-rs"), "system/Patient.rs system/Observation.rs");
  ASSERT_EQ(res.status, 200) << res.body;
  json::Document d = Json(res.body);
  EXPECT_EQ(Str(d, "scope"), "system/Patient.rs system/Observation.rs");
  EXPECT_TRUE(Str(d, "refresh_token").empty());
  Claims at = Verify(Str(d, "access_token"));
  EXPECT_EQ(at.sub, "etl-rs");
  EXPECT_EQ(at.client_id, "etl-rs");
  EXPECT_TRUE(at.patient.empty());

  res = ClientCredentials(Assertion(*es_key_, "etl-es"), "system/Patient.rs system/Observation.rs patient/*.rs");
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(Str(Json(res.body), "scope"), "system/Patient.rs");  // only what it is registered for
  res = ClientCredentials(Assertion(*es_key_, "etl-es"), "system/Observation.rs");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(Str(Json(res.body), "error"), "invalid_scope");
}

TEST_F(AuthServerTest, ClientAssertionFailures) {
  auto expect_invalid_client = [](const http::Response& res, const char* what) {
    EXPECT_EQ(res.status, 401) << what << ": " << res.body;
    EXPECT_EQ(Str(Json(res.body), "error"), "invalid_client") << what;
  };
  // Replayed jti.
  std::string a = Assertion(*rs_key_, "etl-rs");
  ASSERT_EQ(ClientCredentials(a, "system/Patient.rs").status, 200);
  expect_invalid_client(ClientCredentials(a, "system/Patient.rs"), "replay");
  // Wrong audience.
  expect_invalid_client(
      ClientCredentials(Assertion(*rs_key_, "etl-rs", 240, "https://elsewhere/token"), "system/Patient.rs"), "aud");
  // Expired, and too long-lived.
  expect_invalid_client(ClientCredentials(Assertion(*rs_key_, "etl-rs", -120), "system/Patient.rs"), "expired");
  expect_invalid_client(ClientCredentials(Assertion(*rs_key_, "etl-rs", 3600), "system/Patient.rs"), "exp too far");
  // A key the client did not register (same kid, different key), and another client's key.
  Key stranger = *Key::Generate(Alg::kRS384, "rs-1");
  expect_invalid_client(ClientCredentials(Assertion(stranger, "etl-rs"), "system/Patient.rs"), "unregistered key");
  expect_invalid_client(ClientCredentials(Assertion(*es_key_, "etl-rs"), "system/Patient.rs"), "other client's key");
  // An algorithm outside RS384/ES384.
  Key rs256 = *Key::Generate(Alg::kRS256, "rs-1");
  expect_invalid_client(ClientCredentials(Assertion(rs256, "etl-rs"), "system/Patient.rs"), "RS256");
  // A public client cannot use client_credentials.
  EXPECT_EQ(Call("POST", "/auth/token", "grant_type=client_credentials&client_id=app&scope=system%2F*.rs").status, 401);
}

TEST_F(AuthServerTest, Introspection) {
  std::string token = Str(Json(Redeem(Code("launch/patient patient/*.rs fhirUser")).body), "access_token");
  ASSERT_FALSE(token.empty());
  http::Response res = Introspect(token, WebBasic());
  ASSERT_EQ(res.status, 200) << res.body;
  json::Document d = Json(res.body);
  EXPECT_TRUE(d.root().Find("active")->as_bool());
  EXPECT_EQ(Str(d, "scope"), "launch/patient patient/*.rs fhirUser");
  EXPECT_EQ(Str(d, "client_id"), "app");
  EXPECT_EQ(Str(d, "sub"), "alice");
  EXPECT_EQ(Str(d, "patient"), "pat-1");
  EXPECT_EQ(Str(d, "fhirUser"), "Patient/pat-1");
  EXPECT_EQ(d.root().Find("exp")->AsInt64(), now_ + 3600);

  // A backend client may introspect; so may the holder of a valid token.
  EXPECT_TRUE(Json(Call("POST", "/auth/introspect",
                        "token=" + token +
                            "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                            "&client_assertion=" +
                            Assertion(*rs_key_, "etl-rs"))
                       .body)
                  .root()
                  .Find("active")
                  ->as_bool());
  EXPECT_TRUE(Json(Introspect(token, {{"Authorization", "Bearer " + token}}).body).root().Find("active")->as_bool());

  // Garbage is inactive; so is a token from another issuer's key.
  EXPECT_EQ(Introspect("garbage", WebBasic()).body, R"({"active":false})");
  EXPECT_EQ(Introspect(*SignJwt(*es_key_, R"({"iss":"https://auth.example","aud":"https://auth.example/fhir","exp":)" +
                                              std::to_string(now_ + 60) + "}"),
                       WebBasic())
                .body,
            R"({"active":false})");
  // Unauthenticated callers and public clients are refused.
  EXPECT_EQ(Introspect(token, {}).status, 401);
  EXPECT_EQ(Call("POST", "/auth/introspect", "client_id=app&token=" + token).status, 401);
  EXPECT_EQ(Introspect(token, WebBasic("wrong")).status, 401);
  // Expired.
  now_ += 3601;
  EXPECT_EQ(Introspect(token, WebBasic()).body, R"({"active":false})");
}

TEST_F(AuthServerTest, IntrospectionOfRevokedToken) {
  std::string code = Code("launch/patient patient/*.rs");
  std::string token = Str(Json(Redeem(code).body), "access_token");
  EXPECT_EQ(Redeem(code).status, 400);  // reuse revokes
  EXPECT_EQ(Introspect(token, WebBasic()).body, R"({"active":false})");
}

TEST_F(AuthServerTest, Limits) {
  EXPECT_EQ(Call("POST", "/auth/token", std::string(20000, 'a')).status, 413);
  std::string many;
  for (int i = 0; i < 40; ++i) many += "f" + std::to_string(i) + "=1&";
  EXPECT_EQ(Call("POST", "/auth/token", many).status, 400);
  http::Request req;
  req.method = "POST";
  req.path = "/auth/token";
  req.body = "grant_type=client_credentials";
  req.headers = {{"Content-Type", "application/json"}};
  http::Response res;
  server_->Handle(req, res);
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(Call("GET", "/auth/token").status, 405);
  EXPECT_EQ(Call("GET", "/auth/nothing").status, 404);
}

TEST_F(AuthServerTest, CreateFromConfigGeneratesAndPersistsKey) {
  std::string dir = ::testing::TempDir() + "/bevan-auth-" + internal::RandomToken().substr(0, 8);
  AuthConfig config;
  config.data_dir = dir;
  auto a = AuthServer::Create(config, "http://127.0.0.1:1", "http://127.0.0.1:1/fhir");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/auth-signing-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto b = AuthServer::Create(config, "http://127.0.0.1:1", "http://127.0.0.1:1/fhir");
  ASSERT_TRUE(b.ok());
  // The same key (and kid) after a restart.
  EXPECT_EQ((*a)->verification_keys()->ToJwksJson(), (*b)->verification_keys()->ToJwksJson());
  EXPECT_EQ((*a)->urls().token, "http://127.0.0.1:1/auth/token");

  AuthConfig memory_only;
  auto c = AuthServer::Create(memory_only, "http://127.0.0.1:1", "http://127.0.0.1:1/fhir");
  ASSERT_TRUE(c.ok());
  EXPECT_NE((*c)->key_origin().find("memory"), std::string::npos);
}

TEST_F(AuthServerTest, BackendClientWithJwksUri) {
  std::string jwks = "{\"keys\":[" + es_key_->PublicJwkJson() + "]}";
  http::ServerOptions so;
  so.port = 0;
  so.io_threads = 1;
  auto idp = http::Server::Start(so, [&](const http::Request&, http::Response& res) { res.body = jwks; });
  ASSERT_TRUE(idp.ok());
  std::string dir = ::testing::TempDir() + "/bevan-auth-" + internal::RandomToken().substr(0, 8);
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  {
    std::ofstream out(dir + "/clients.json");
    out << R"({"clients":[{"client_id":"remote","type":"backend","jwks_uri":"http://127.0.0.1:)" << (*idp)->port()
        << R"(/jwks","scopes":["system/Patient.rs"]}]})";
  }
  AuthConfig config;
  config.issuer = kIssuer;
  config.clients_file = dir + "/clients.json";
  auto created = AuthServer::Create(config, "", kFhir);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  server_ = std::move(created).value();
  now_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  http::Response res = ClientCredentials(Assertion(*es_key_, "remote"), "system/Patient.rs");
  EXPECT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(Str(Json(res.body), "scope"), "system/Patient.rs");
  EXPECT_EQ(ClientCredentials(Assertion(*rs_key_, "remote"), "system/Patient.rs").status, 401);
  (*idp)->Shutdown();
  (*idp)->Wait();
}

}  // namespace
}  // namespace bevan::auth
