#include "auth/server.h"

#include <atomic>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "auth/access.h"
#include "auth/jwks.h"
#include "auth/server_util.h"

namespace bevan::auth {

using internal::ConstantTimeEqual;
using internal::Form;
using internal::FormHas;
using internal::FormValue;
using internal::HtmlEscape;
using internal::PercentEncode;
using internal::RandomToken;
using internal::Sha256;

namespace {

constexpr std::string_view kAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
constexpr std::string_view kLoginCookie = "bevan_login";

// A small writer for flat JSON objects.
class JsonOut {
 public:
  JsonOut& Str(std::string_view key, std::string_view value) {
    Key(key);
    json::WriteString(value, s_);
    return *this;
  }
  JsonOut& Int(std::string_view key, int64_t value) {
    Key(key);
    s_ += std::to_string(value);
    return *this;
  }
  JsonOut& Bool(std::string_view key, bool value) {
    Key(key);
    s_ += value ? "true" : "false";
    return *this;
  }
  JsonOut& Strings(std::string_view key, const std::vector<std::string>& values) {
    Key(key);
    s_ += '[';
    for (size_t i = 0; i < values.size(); ++i) {
      if (i) s_ += ',';
      json::WriteString(values[i], s_);
    }
    s_ += ']';
    return *this;
  }
  std::string Done() { return s_ + "}"; }

 private:
  void Key(std::string_view key) {
    s_ += s_.size() > 1 ? "," : "";
    json::WriteString(key, s_);
    s_ += ':';
  }
  std::string s_ = "{";
};

bool HasScope(const std::vector<std::string>& scopes, std::string_view s) {
  return std::find(scopes.begin(), scopes.end(), s) != scopes.end();
}

// A FHIR id: [A-Za-z0-9\-\.]{1,64}.
bool IsFhirId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

// RFC 7636: 43 to 128 characters of [A-Za-z0-9-._~].
bool IsPkceString(std::string_view s) {
  if (s.size() < 43 || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
  });
}

std::string_view TrimSlash(std::string_view s) { return s.ends_with('/') ? s.substr(0, s.size() - 1) : s; }

std::string_view CookieValue(std::string_view header, std::string_view name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t semi = header.find(';', pos);
    if (semi == std::string_view::npos) semi = header.size();
    std::string_view part = header.substr(pos, semi - pos);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.starts_with(name) && part[name.size()] == '=') {
      return part.substr(name.size() + 1);
    }
    pos = semi + 1;
  }
  return {};
}

void JsonResponse(http::Response& res, int status, std::string body) {
  res.status = status;
  res.SetHeader("Content-Type", "application/json");
  res.body = std::move(body);
}

// RFC 6749 section 5.2.
void OAuthError(http::Response& res, int status, std::string_view error, std::string_view description) {
  JsonResponse(res, status, JsonOut().Str("error", error).Str("error_description", description).Done());
}

void HtmlPage(http::Response& res, int status, std::string_view title, std::string_view body_html) {
  res.status = status;
  res.SetHeader("Content-Type", "text/html; charset=utf-8");
  res.SetHeader("Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'");
  res.SetHeader("X-Frame-Options", "DENY");
  res.SetHeader("X-Content-Type-Options", "nosniff");
  res.SetHeader("Referrer-Policy", "no-referrer");
  res.body =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>";
  res.body += HtmlEscape(title);
  res.body +=
      " - Bevan</title><style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}"
      "label{display:block;margin:.8rem 0}input{display:block;width:100%;padding:.4rem;font-size:1rem}"
      "button{margin-top:1rem;padding:.5rem 1.5rem;font-size:1rem}.error{color:#a00}"
      "code{word-break:break-all}</style></head><body><main>";
  res.body += body_html;
  res.body += "</main></body></html>\n";
}

void ErrorPage(http::Response& res, int status, std::string_view message) {
  HtmlPage(res, status, "Sign-in error", "<h1>Cannot sign in</h1><p class=\"error\">" + HtmlEscape(message) + "</p>");
}

std::string AppendQuery(std::string_view uri, std::string_view query) {
  std::string out(uri);
  out += uri.find('?') == std::string_view::npos ? '?' : '&';
  out += query;
  return out;
}

void Redirect(http::Response& res, std::string location) {
  res.status = 302;
  res.SetHeader("Location", std::move(location));
  res.body.clear();
}

void RedirectError(http::Response& res, std::string_view redirect_uri, std::string_view error,
                   std::string_view description, std::string_view state) {
  std::string q = "error=" + PercentEncode(error) + "&error_description=" + PercentEncode(description);
  if (!state.empty()) q += "&state=" + PercentEncode(state);
  Redirect(res, AppendQuery(redirect_uri, q));
}

// The kid of a key: a digest of its public JWK, so that the same key always
// has the same kid.
Result<Key> KeyWithStableKid(std::string_view pem, Alg alg) {
  ASSIGN_OR_RETURN(Key probe, Key::FromPem(pem, alg, ""));
  std::string kid = Base64UrlEncode(Sha256(probe.PublicJwkJson())).substr(0, 22);
  return Key::FromPem(pem, alg, kid);
}

Result<Key> LoadOrCreateKey(const AuthConfig& config, std::string& origin) {
  Alg alg = config.signing_alg == "RS384" ? Alg::kRS384 : Alg::kES384;
  std::string file = config.signing_key_file;
  if (file.empty()) {
    if (const char* env = std::getenv("BEVAN_AUTH_SIGNING_KEY_FILE"); env && *env) file = env;
  }
  if (!file.empty()) {
    ASSIGN_OR_RETURN(std::string pem, internal::ReadFile(file, 64 * 1024));
    auto key = KeyWithStableKid(pem, alg);
    if (!key.ok()) return InvalidArgumentError("signing key " + file + ": " + key.status().message());
    origin = "from " + file;
    return key;
  }
  if (!config.data_dir.empty()) {
    std::string path = config.data_dir + "/auth-signing-key.pem";
    if (::access(path.c_str(), F_OK) == 0) {
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
        return FailedPreconditionError(path + " is readable by others: chmod 600 it");
      }
      ASSIGN_OR_RETURN(std::string pem, internal::ReadFile(path, 64 * 1024));
      auto key = KeyWithStableKid(pem, alg);
      if (!key.ok()) return InvalidArgumentError("signing key " + path + ": " + key.status().message());
      origin = "from " + path;
      return key;
    }
    ::mkdir(config.data_dir.c_str(), 0700);
    ASSIGN_OR_RETURN(Key fresh, Key::Generate(alg, "new"));
    std::string pem = fresh.PrivatePem();
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return IoError("cannot create " + path);
    bool ok = ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
    ok = ::fsync(fd) == 0 && ok;
    ::close(fd);
    if (!ok) return IoError("cannot write " + path);
    origin = "generated into " + path;
    return KeyWithStableKid(pem, alg);
  }
  origin = "generated in memory (tokens do not survive a restart)";
  return Key::Generate(alg, Base64UrlEncode(internal::RandomBytes(12)));
}

// Reads a claim from a JWT's payload without verifying it (to learn which
// client's keys to verify it with).
std::string UnverifiedClaim(std::string_view jwt, std::string_view claim) {
  size_t a = jwt.find('.');
  if (a == std::string_view::npos) return {};
  size_t b = jwt.find('.', a + 1);
  if (b == std::string_view::npos) return {};
  auto payload = Base64UrlDecode(jwt.substr(a + 1, b - a - 1));
  if (!payload) return {};
  auto doc = json::Document::Parse(*payload, json::ParseOptions{.max_size = 16 * 1024, .max_depth = 8});
  if (!doc.ok()) return {};
  const json::Value* v = doc->root().Find(claim);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

// Who a token is for and what it grants.
struct Grant {
  std::string client_id;
  std::string subject;  // username, or client_id for client_credentials
  std::string fhir_user;
  std::string patient;
  std::string identity_level;
  std::vector<std::string> scopes;
  std::string nonce;
  std::string family;  // the code (or client_credentials call) all its tokens descend from
};

struct PendingLogin {
  std::string client_id;
  std::string redirect_uri;
  std::string state;
  std::string code_challenge;
  std::string nonce;
  std::vector<std::string> scopes;
  std::string cookie_hash;
  int64_t expires_at = 0;
  int attempts = 0;
};

struct CodeGrant {
  Grant grant;
  std::string redirect_uri;
  std::string code_challenge;
  int64_t expires_at = 0;
};

struct RefreshGrant {
  Grant grant;
  int64_t expires_at = 0;
};

struct Family {
  std::vector<std::pair<std::string, int64_t>> jtis;  // access tokens issued, with their expiry
  int64_t expires_at = 0;
};

class AuthServer::State {
 public:
  std::mutex mu;
  std::map<std::string, PendingLogin, std::less<>> logins;                         // by form id
  std::map<std::string, CodeGrant, std::less<>> codes;                             // by SHA-256 of the code
  std::map<std::string, std::pair<std::string, int64_t>, std::less<>> used_codes;  // hash -> family, expiry
  std::map<std::string, RefreshGrant, std::less<>> refresh;                        // by SHA-256 of the token
  std::map<std::string, std::pair<std::string, int64_t>, std::less<>> rotated;     // old refresh hash -> family
  std::map<std::string, int64_t, std::less<>> assertion_ids;                       // client_id + ' ' + jti -> expiry
  std::map<std::string, int64_t, std::less<>> revoked;                             // jti -> expiry
  // Whether anything was ever revoked: lets IsRevoked, asked on every API
  // request, skip the lock shared with sign-ins and token requests.
  std::atomic<bool> any_revoked{false};
  std::map<std::string, Family, std::less<>> families;
  uint64_t ops = 0;
  LoginThrottle throttle;

  explicit State(LoginThrottle::Options o) : throttle(o) {}

  template <typename Map, typename Expiry>
  static void Drop(Map& m, int64_t now, Expiry expiry) {
    for (auto it = m.begin(); it != m.end();) {
      if (expiry(it->second) <= now) {
        it = m.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Drops expired entries: every 256 writes, or when a table is full.
  void MaybePurge(int64_t now, bool force) {
    if (!force && (++ops % 256) != 0) return;
    Drop(logins, now, [](const PendingLogin& p) { return p.expires_at; });
    Drop(codes, now, [](const CodeGrant& c) { return c.expires_at; });
    Drop(used_codes, now, [](const auto& p) { return p.second; });
    Drop(refresh, now, [](const RefreshGrant& r) { return r.expires_at; });
    Drop(rotated, now, [](const auto& p) { return p.second; });
    Drop(assertion_ids, now, [](int64_t e) { return e; });
    Drop(revoked, now, [](int64_t e) { return e; });
    Drop(families, now, [](const Family& f) { return f.expires_at; });
  }

  // A stolen code or refresh token was replayed: revoke everything issued from it.
  void RevokeFamily(const std::string& family) {
    auto it = families.find(family);
    if (it != families.end()) {
      for (const auto& [jti, exp] : it->second.jtis) revoked[jti] = exp;
      if (!revoked.empty()) any_revoked.store(true, std::memory_order_release);
      families.erase(it);
    }
    for (auto r = refresh.begin(); r != refresh.end();) {
      if (r->second.grant.family == family) {
        r = refresh.erase(r);
      } else {
        ++r;
      }
    }
  }
};

AuthServer::AuthServer(AuthServerOptions options, UserDirectory users, ClientRegistry clients, Key signing_key)
    : options_(std::move(options)),
      users_(std::move(users)),
      clients_(std::move(clients)),
      state_(std::make_unique<State>(options_.throttle)) {
  if (options_.issuer.ends_with('/')) options_.issuer.pop_back();
  if (options_.fhir_base_url.ends_with('/')) options_.fhir_base_url.pop_back();
  if (!options_.clock) {
    options_.clock = [] {
      return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  signing_kid_ = signing_key.kid();
  auto keys = std::make_shared<KeySet>();
  keys->Add(std::move(signing_key));
  keys_ = std::move(keys);
  auto dummy = HashPassword(RandomToken(), options_.dummy_hash_params);
  dummy_hash_ = dummy.ok() ? *dummy : std::string();
  urls_.issuer = options_.issuer;
  urls_.authorize = options_.issuer + "/auth/authorize";
  urls_.token = options_.issuer + "/auth/token";
  urls_.introspect = options_.issuer + "/auth/introspect";
  urls_.jwks = options_.issuer + "/auth/jwks";
}

AuthServer::~AuthServer() = default;

Result<std::unique_ptr<AuthServer>> AuthServer::Create(const AuthConfig& config, const std::string& default_issuer,
                                                       const std::string& default_fhir_base_url,
                                                       AuthServerOptions options) {
  options.issuer = config.issuer.empty() ? default_issuer : config.issuer;
  options.fhir_base_url = config.fhir_base_url.empty() ? default_fhir_base_url : config.fhir_base_url;
  options.required_identity_level = config.required_identity_level;
  options.access_token_seconds = config.access_token_seconds;
  options.refresh_token_seconds = config.refresh_token_seconds;
  if (options.issuer.empty() || options.fhir_base_url.empty()) {
    return InvalidArgumentError("auth: the issuer and the FHIR base URL must be known");
  }
  UserDirectory users;
  if (!config.users_file.empty()) {
    ASSIGN_OR_RETURN(users, UserDirectory::FromFile(config.users_file));
  }
  ClientRegistry clients;
  if (!config.clients_file.empty()) {
    ASSIGN_OR_RETURN(clients, ClientRegistry::FromFile(config.clients_file));
  }
  // Backend clients registered with a jwks_uri: their keys are fetched (and
  // refreshed) by one JwksCache each.
  if (!options.remote_client_keys) {
    auto caches = std::make_shared<std::map<std::string, std::unique_ptr<JwksCache>, std::less<>>>();
    for (const std::string& id : clients.Ids()) {
      const Client* c = clients.Find(id);
      if (c->jwks_uri.empty()) continue;
      JwksCache::Options jo;
      jo.jwks_uri = c->jwks_uri;
      (*caches)[id] = std::make_unique<JwksCache>(std::move(jo));
    }
    if (!caches->empty()) {
      options.remote_client_keys = [caches](const Client& c) -> Result<std::shared_ptr<const KeySet>> {
        auto it = caches->find(c.client_id);
        if (it == caches->end()) return NotFoundError("no jwks_uri");
        if (auto keys = it->second->keys()) return keys;
        RETURN_IF_ERROR(it->second->Refresh());
        if (auto keys = it->second->keys()) return keys;
        return UnavailableError("the client's JWKS is not available");
      };
    }
  }
  std::string origin;
  ASSIGN_OR_RETURN(Key key, LoadOrCreateKey(config, origin));
  auto server = std::make_unique<AuthServer>(std::move(options), std::move(users), std::move(clients), std::move(key));
  server->key_origin_ = std::move(origin);
  return server;
}

bool AuthServer::IsAuthPath(std::string_view path) {
  return path == "/.well-known/smart-configuration" || path == "/fhir/.well-known/smart-configuration" ||
         path == "/auth/authorize" || path == "/auth/login" || path == "/auth/token" || path == "/auth/introspect" ||
         path == "/auth/jwks";
}

int64_t AuthServer::Now() const { return options_.clock(); }

bool AuthServer::IsRevoked(std::string_view jti) const {
  if (!state_->any_revoked.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(state_->mu);
  return state_->revoked.find(jti) != state_->revoked.end();
}

void AuthServer::Handle(const http::Request& req, http::Response& res) const {
  res.SetHeader("Cache-Control", "no-store");
  res.SetHeader("Pragma", "no-cache");
  const std::string& p = req.path;
  bool get = req.method == "GET" || req.method == "HEAD";
  bool post = req.method == "POST";
  auto not_allowed = [&](std::string_view allow) {
    res.status = 405;
    res.SetHeader("Allow", std::string(allow));
    res.SetHeader("Content-Type", "text/plain");
    res.body = "method not allowed\n";
  };
  bool api = p == "/auth/token" || p == "/auth/introspect" || p == "/auth/jwks" || p.ends_with("smart-configuration");
  if (api) res.SetHeader("Access-Control-Allow-Origin", "*");
  if (api && req.method == "OPTIONS") {
    res.status = 204;
    res.SetHeader("Access-Control-Allow-Methods", "GET, POST");
    res.SetHeader("Access-Control-Allow-Headers", "Authorization, Content-Type");
    res.SetHeader("Access-Control-Max-Age", "600");
    return;
  }
  if (p == "/.well-known/smart-configuration" || p == "/fhir/.well-known/smart-configuration") {
    if (!get) return not_allowed("GET");
    return SmartConfiguration(res);
  }
  if (p == "/auth/jwks") {
    if (!get) return not_allowed("GET");
    JsonResponse(res, 200, keys_->ToJwksJson());
    res.SetHeader("Cache-Control", "public, max-age=300");
    return;
  }
  if (p == "/auth/authorize") {
    if (!get) return not_allowed("GET");
    return Authorize(req, res);
  }
  if (p == "/auth/login") {
    if (!post) return not_allowed("POST");
    return Login(req, res);
  }
  if (p == "/auth/token") {
    if (!post) return not_allowed("POST");
    return Token(req, res);
  }
  if (p == "/auth/introspect") {
    if (!post) return not_allowed("POST");
    return Introspect(req, res);
  }
  res.status = 404;
  res.SetHeader("Content-Type", "text/plain");
  res.body = "not found\n";
}

void AuthServer::SmartConfiguration(http::Response& res) const {
  std::vector<std::string> scopes = {"openid",        "fhirUser",        "launch/patient", "offline_access",
                                     "online_access", "patient/*.cruds", "patient/*.rs",   "user/*.cruds",
                                     "user/*.rs",     "system/*.cruds",  "system/*.rs",    "patient/*.read",
                                     "user/*.read",   "system/*.read"};
  std::string body =
      JsonOut()
          .Str("issuer", urls_.issuer)
          .Str("jwks_uri", urls_.jwks)
          .Str("authorization_endpoint", urls_.authorize)
          .Str("token_endpoint", urls_.token)
          .Str("introspection_endpoint", urls_.introspect)
          .Strings("grant_types_supported", {"authorization_code", "refresh_token", "client_credentials"})
          .Strings("token_endpoint_auth_methods_supported", {"private_key_jwt", "client_secret_basic", "none"})
          .Strings("token_endpoint_auth_signing_alg_values_supported", {"RS384", "ES384"})
          .Strings("scopes_supported", scopes)
          .Strings("response_types_supported", {"code"})
          .Strings("code_challenge_methods_supported", {"S256"})
          .Strings("capabilities", {"launch-standalone", "client-public", "client-confidential-symmetric",
                                    "client-confidential-asymmetric", "context-standalone-patient",
                                    "permission-offline", "permission-online", "permission-patient", "permission-user",
                                    "permission-v1", "permission-v2", "sso-openid-connect"})
          .Done();
  JsonResponse(res, 200, std::move(body));
  res.SetHeader("Cache-Control", "public, max-age=300");
}

namespace {

std::string LoginForm(const AuthUrls& urls, const std::string& form_id, const PendingLogin& p,
                      std::string_view username, std::string_view error) {
  std::string html = "<h1>Sign in</h1><p><b>" + HtmlEscape(p.client_id) +
                     "</b> asks to use your account with these permissions:</p><p><code>" +
                     HtmlEscape(internal::JoinSpaces(p.scopes)) + "</code></p>";
  if (!error.empty()) html += "<p class=\"error\" role=\"alert\">" + HtmlEscape(error) + "</p>";
  html += "<form method=\"post\" action=\"" + HtmlEscape(urls.issuer) + "/auth/login\">";
  html += "<input type=\"hidden\" name=\"request\" value=\"" + HtmlEscape(form_id) + "\">";
  html += "<label>Username<input name=\"username\" autocomplete=\"username\" required maxlength=\"128\" value=\"" +
          HtmlEscape(username) + "\"></label>";
  html +=
      "<label>Password<input type=\"password\" name=\"password\" autocomplete=\"current-password\" required "
      "maxlength=\"1024\"></label>";
  if (HasScope(p.scopes, "launch/patient")) {
    html +=
        "<label>Patient id (clinicians only: whose record to open)<input name=\"patient\" maxlength=\"64\" "
        "pattern=\"[A-Za-z0-9.\\-]{1,64}\"></label>";
  }
  html += "<button type=\"submit\">Sign in</button></form>";
  return html;
}

}  // namespace

void AuthServer::Authorize(const http::Request& req, http::Response& res) const {
  auto form = internal::ParseForm(req.query, 32, 2048);
  if (!form.ok()) return ErrorPage(res, 400, "The authorization request is malformed: " + form.status().message());
  const Form& f = *form;
  const Client* client = clients_.Find(FormValue(f, "client_id"));
  // Without a known client and one of its redirect URIs nothing may be
  // redirected anywhere (RFC 6749 section 4.1.2.1).
  if (!client) return ErrorPage(res, 400, "Unknown client_id.");
  std::string redirect_uri(FormValue(f, "redirect_uri"));
  if (!client->HasRedirectUri(redirect_uri)) {
    return ErrorPage(res, 400, "The redirect_uri is not registered for this client.");
  }
  std::string state(FormValue(f, "state"));
  auto fail = [&](std::string_view error, std::string_view description) {
    RedirectError(res, redirect_uri, error, description, state);
  };
  if (FormValue(f, "response_type") != "code") return fail("unsupported_response_type", "response_type must be code");
  if (state.empty()) return fail("invalid_request", "state is required");
  if (TrimSlash(FormValue(f, "aud")) != options_.fhir_base_url) {
    return fail("invalid_request", "aud must be this server's FHIR base URL");
  }
  if (FormValue(f, "code_challenge_method") != "S256") {
    return fail("invalid_request", "PKCE with code_challenge_method=S256 is required");
  }
  std::string_view challenge = FormValue(f, "code_challenge");
  if (challenge.size() != 43 || !IsPkceString(challenge)) {
    return fail("invalid_request", "code_challenge must be BASE64URL(SHA256(code_verifier))");
  }
  if (FormHas(f, "launch")) return fail("invalid_request", "EHR launch is not supported");
  std::string_view scope = FormValue(f, "scope");
  if (!ParseScopes(scope).ok()) return fail("invalid_scope", "a requested scope is malformed");
  std::vector<std::string> granted;
  for (std::string& s : internal::SplitSpaces(scope)) {
    if (s == "launch" || s.starts_with("system/") || !client->MayRequest(s) || HasScope(granted, s)) continue;
    granted.push_back(std::move(s));
  }
  if (granted.empty()) return fail("invalid_scope", "none of the requested scopes may be granted to this client");

  PendingLogin p;
  p.client_id = client->client_id;
  p.redirect_uri = redirect_uri;
  p.state = state;
  p.code_challenge = challenge;
  p.nonce = FormValue(f, "nonce");
  p.scopes = std::move(granted);
  std::string cookie = RandomToken();
  p.cookie_hash = Sha256(cookie);
  int64_t now = Now();
  p.expires_at = now + options_.login_form_seconds;
  std::string form_id = RandomToken();
  {
    std::lock_guard lock(state_->mu);
    state_->MaybePurge(now, state_->logins.size() >= options_.max_login_forms);
    if (state_->logins.size() >= options_.max_login_forms) {
      return fail("temporarily_unavailable", "too many sign-ins in progress");
    }
    state_->logins.emplace(form_id, p);
  }
  // The form's id is only good together with this cookie: a form posted from
  // another browser (login CSRF) has no cookie.
  std::string set_cookie = std::string(kLoginCookie) + "=" + cookie + "; Path=/auth; HttpOnly; SameSite=Lax; Max-Age=" +
                           std::to_string(options_.login_form_seconds);
  if (options_.issuer.starts_with("https://")) set_cookie += "; Secure";
  HtmlPage(res, 200, "Sign in", LoginForm(urls_, form_id, p, "", ""));
  res.SetHeader("Set-Cookie", std::move(set_cookie));
}

void AuthServer::Login(const http::Request& req, http::Response& res) const {
  if (req.body.size() > options_.max_body_bytes) return ErrorPage(res, 413, "The form is too large.");
  if (!req.Header("Content-Type").starts_with("application/x-www-form-urlencoded")) {
    return ErrorPage(res, 415, "Expected a form.");
  }
  auto form = internal::ParseForm(req.body, 8, 1024);
  if (!form.ok()) return ErrorPage(res, 400, "The form is malformed.");
  const Form& f = *form;
  std::string form_id(FormValue(f, "request"));
  std::string_view username = FormValue(f, "username");
  std::string_view password = FormValue(f, "password");
  std::string_view cookie = CookieValue(req.Header("Cookie"), kLoginCookie);
  int64_t now = Now();

  PendingLogin p;
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->logins.find(form_id);
    if (it == state_->logins.end() || it->second.expires_at <= now) {
      if (it != state_->logins.end()) state_->logins.erase(it);
      return ErrorPage(res, 400, "This sign-in form has expired. Go back to the app and start again.");
    }
    if (!ConstantTimeEqual(Sha256(cookie), it->second.cookie_hash)) {
      return ErrorPage(res, 400, "This sign-in form was not opened in this browser. Start again from the app.");
    }
    if (++it->second.attempts > options_.max_login_attempts_per_form) {
      state_->logins.erase(it);
      return ErrorPage(res, 429, "Too many attempts. Go back to the app and start again.");
    }
    p = it->second;
  }
  auto again = [&](int status, std::string_view error) {
    HtmlPage(res, status, "Sign in", LoginForm(urls_, form_id, p, username, error));
  };
  if (username.empty() || password.empty()) return again(400, "Enter your username and password.");
  auto report = [&](bool success, const User* u, std::string_view why) {
    if (!options_.on_login) return;
    LoginEvent e;
    e.success = success;
    e.username = std::string(username);
    if (u != nullptr) e.fhir_user = u->fhir_user;
    e.client_id = p.client_id;
    e.remote_address = req.remote_address;
    e.request_id = req.request_id;
    e.description = std::string(why);
    options_.on_login(e);
  };
  if (int64_t wait = state_->throttle.LockedFor(username, now); wait > 0) {
    report(false, nullptr, "username locked after failed attempts");
    res.SetHeader("Retry-After", std::to_string(wait));
    return again(429, "Too many failed attempts for this username. Try again in " + std::to_string(wait) + " seconds.");
  }
  const User* user = users_.Find(username);
  // Unknown names cost the same hash as known ones.
  bool ok = false;
  if (user) {
    ok = VerifyPassword(user->password_hash, password);
  } else {
    [[maybe_unused]] bool ignored = VerifyPassword(dummy_hash_, password);
  }
  if (!ok) {
    state_->throttle.RecordFailure(username, now);
    report(false, user, "wrong username or password");
    return again(401, "Wrong username or password.");
  }
  state_->throttle.RecordSuccess(username);

  auto finish = [&]() {
    std::lock_guard lock(state_->mu);
    state_->logins.erase(form_id);
  };
  if (IdentityLevelRank(user->identity_level) < IdentityLevelRank(options_.required_identity_level)) {
    report(false, user, "identity verification level too low");
    finish();
    return RedirectError(res, p.redirect_uri, "access_denied",
                         "this account's identity verification level is too low for record access", p.state);
  }
  std::string patient;
  if (HasScope(p.scopes, "launch/patient")) {
    if (user->role == Role::kPatient) {
      patient = user->fhir_user.substr(8);
    } else {
      std::string_view chosen = FormValue(f, "patient");
      if (!IsFhirId(chosen)) return again(400, "Enter the id of the Patient whose record to open.");
      patient = chosen;
    }
  } else if (user->role == Role::kPatient) {
    patient = user->fhir_user.substr(8);
  }
  Grant g;
  g.client_id = p.client_id;
  g.subject = user->username;
  g.fhir_user = user->fhir_user;
  g.patient = patient;
  g.identity_level = user->identity_level;
  g.nonce = p.nonce;
  for (const std::string& s : p.scopes) {
    if (s.starts_with("user/") && user->role == Role::kPatient) continue;
    // The audit trail is for administrators (patients see their own through patient/ scopes).
    if (s.starts_with("user/AuditEvent.") && user->role != Role::kAdministrator) continue;
    if (s.starts_with("patient/") && patient.empty()) continue;
    if (s == "fhirUser" && user->fhir_user.empty()) continue;
    g.scopes.push_back(s);
  }
  std::string code = RandomToken();
  g.family = Sha256(code);
  CodeGrant c{std::move(g), p.redirect_uri, p.code_challenge, now + options_.code_seconds};
  {
    std::lock_guard lock(state_->mu);
    state_->logins.erase(form_id);
    state_->MaybePurge(now, state_->codes.size() >= options_.max_codes);
    if (state_->codes.size() >= options_.max_codes) {
      return RedirectError(res, p.redirect_uri, "temporarily_unavailable", "too many sign-ins in progress", p.state);
    }
    state_->codes.emplace(Sha256(code), std::move(c));
  }
  report(true, user, "");
  Redirect(res, AppendQuery(p.redirect_uri, "code=" + code + "&state=" + PercentEncode(p.state)));
  res.SetHeader("Set-Cookie", std::string(kLoginCookie) + "=; Path=/auth; HttpOnly; SameSite=Lax; Max-Age=0");
}

namespace {

struct ClientAuth {
  const Client* client = nullptr;
  bool authenticated = false;  // by secret or assertion (false: a public client naming itself)
  std::string error;           // set on failure: the invalid_client description
  bool basic = false;
  bool anonymous = false;  // no client named at all (a public client refreshing, RFC 6749 section 6)
};

}  // namespace

namespace {

// What AuthenticateClient needs of a verified assertion.
Status CheckAssertion(const std::string& assertion, const Client& client, const KeySet& keys,
                      const AuthServerOptions& options, const AuthUrls& urls, int64_t now) {
  VerifyOptions vo;
  vo.allowed_algs = {Alg::kRS384, Alg::kES384};
  vo.issuer = client.client_id;
  vo.audiences = {urls.token};
  vo.now = now;
  vo.leeway_seconds = options.leeway_seconds;
  vo.require_exp = true;
  auto claims = VerifyJwt(assertion, keys, vo);
  if (!claims.ok()) return InvalidArgumentError("the client assertion is not valid");
  if (claims->sub != client.client_id) return InvalidArgumentError("the client assertion's sub must be the client_id");
  if (claims->exp > now + options.max_assertion_lifetime + options.leeway_seconds) {
    return InvalidArgumentError("the client assertion's exp is more than five minutes ahead");
  }
  if (claims->jti.empty() || claims->jti.size() > 256) {
    return InvalidArgumentError("the client assertion needs a jti");
  }
  return Status::Ok();
}

// Authenticates the caller of the token or introspection endpoint: HTTP
// Basic (confidential), a client assertion (backend), or a public client
// naming itself with client_id.
ClientAuth AuthenticateClient(const http::Request& req, const Form& f, const ClientRegistry& clients,
                              const AuthServerOptions& options, const AuthUrls& urls, AuthServer::State& state,
                              int64_t now) {
  ClientAuth out;
  std::string_view authorization = req.Header("Authorization");
  std::string_view named = FormValue(f, "client_id");
  if (FormHas(f, "client_secret")) {
    out.error = "client_secret_post is not supported: use HTTP Basic";
    return out;
  }
  if (authorization.size() > 6 && (authorization.starts_with("Basic ") || authorization.starts_with("basic "))) {
    out.basic = true;
    auto decoded = internal::Base64Decode(authorization.substr(6));
    size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos) {
      out.error = "malformed Basic credentials";
      return out;
    }
    auto id = PercentDecode(std::string_view(*decoded).substr(0, colon), true, /*allow_nul=*/true);
    auto secret = PercentDecode(std::string_view(*decoded).substr(colon + 1), true, /*allow_nul=*/true);
    const Client* c = id ? clients.Find(*id) : nullptr;
    bool ok = c && c->type == ClientType::kConfidential && secret && VerifyPassword(c->client_secret_hash, *secret);
    if (!ok || (!named.empty() && named != c->client_id)) {
      out.error = "client authentication failed";
      return out;
    }
    out.client = c;
    out.authenticated = true;
    return out;
  }
  if (FormHas(f, "client_assertion_type") || FormHas(f, "client_assertion")) {
    if (FormValue(f, "client_assertion_type") != kAssertionType) {
      out.error = "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
      return out;
    }
    std::string assertion(FormValue(f, "client_assertion"));
    std::string iss = UnverifiedClaim(assertion, "iss");
    const Client* c = clients.Find(iss);
    if (!c || c->type != ClientType::kBackend || (!named.empty() && named != c->client_id)) {
      out.error = "client authentication failed";
      return out;
    }
    std::shared_ptr<const KeySet> keys = c->jwks;
    if (!keys && options.remote_client_keys) {
      auto remote = options.remote_client_keys(*c);
      if (remote.ok()) keys = *remote;
    }
    if (!keys) {
      out.error = "the client's keys are not available";
      return out;
    }
    Status st = CheckAssertion(assertion, *c, *keys, options, urls, now);
    if (!st.ok()) {
      out.error = st.message();
      return out;
    }
    // A jti may be used once while its assertion could still be accepted.
    std::string jti_key = c->client_id + ' ' + UnverifiedClaim(assertion, "jti");
    {
      std::lock_guard lock(state.mu);
      state.MaybePurge(now, false);
      if (!state.assertion_ids.emplace(jti_key, now + options.max_assertion_lifetime + 2 * options.leeway_seconds)
               .second) {
        out.error = "the client assertion was already used (jti replay)";
        return out;
      }
    }
    out.client = c;
    out.authenticated = true;
    return out;
  }
  if (named.empty()) {
    out.anonymous = true;
    out.error = "client_id is required";
    return out;
  }
  const Client* c = clients.Find(named);
  if (!c) {
    out.error = "unknown client";
    return out;
  }
  if (c->type != ClientType::kPublic) {
    out.error = "this client must authenticate";
    return out;
  }
  out.client = c;
  return out;
}

void ClientError(http::Response& res, const ClientAuth& auth) {
  OAuthError(res, 401, "invalid_client", auth.error);
  if (auth.basic) res.SetHeader("WWW-Authenticate", "Basic realm=\"bevan\"");
}

}  // namespace

void AuthServer::Token(const http::Request& req, http::Response& res) const {
  if (req.body.size() > options_.max_body_bytes)
    return OAuthError(res, 413, "invalid_request", "the body is too large");
  if (!req.Header("Content-Type").starts_with("application/x-www-form-urlencoded")) {
    return OAuthError(res, 400, "invalid_request", "expected application/x-www-form-urlencoded");
  }
  auto form = internal::ParseForm(req.body, 16, 8192);
  if (!form.ok()) return OAuthError(res, 400, "invalid_request", form.status().message());
  const Form& f = *form;
  std::string_view grant_type = FormValue(f, "grant_type");
  if (grant_type != "authorization_code" && grant_type != "refresh_token" && grant_type != "client_credentials") {
    return OAuthError(res, 400, "unsupported_grant_type",
                      "grant_type must be authorization_code, refresh_token or client_credentials");
  }
  int64_t now = Now();
  ClientAuth auth = AuthenticateClient(req, f, clients_, options_, urls_, *state_, now);
  // A public client may refresh without naming itself: the refresh token says who it is.
  if (!auth.client && !(auth.anonymous && grant_type == "refresh_token")) return ClientError(res, auth);

  Grant grant;
  bool refreshable = false;
  if (grant_type == "authorization_code") {
    std::string_view verifier = FormValue(f, "code_verifier");
    std::string code_hash = Sha256(FormValue(f, "code"));
    CodeGrant c;
    {
      std::lock_guard lock(state_->mu);
      auto it = state_->codes.find(code_hash);
      if (it == state_->codes.end()) {
        // A second use of a code: whoever holds it may have stolen it, so
        // revoke what the first use gave (RFC 6749 section 4.1.2).
        auto used = state_->used_codes.find(code_hash);
        if (used != state_->used_codes.end()) state_->RevokeFamily(used->second.first);
        return OAuthError(res, 400, "invalid_grant", "the code is invalid, expired or already used");
      }
      c = std::move(it->second);
      state_->codes.erase(it);
      state_->used_codes[code_hash] = {c.grant.family, now + options_.access_token_seconds};
    }
    if (c.expires_at <= now)
      return OAuthError(res, 400, "invalid_grant", "the code is invalid, expired or already used");
    if (c.grant.client_id != auth.client->client_id)
      return OAuthError(res, 400, "invalid_grant", "the code was issued to another client");
    if (FormValue(f, "redirect_uri") != c.redirect_uri) {
      return OAuthError(res, 400, "invalid_grant", "redirect_uri does not match the authorization request");
    }
    if (!IsPkceString(verifier))
      return OAuthError(res, 400, "invalid_grant", "code_verifier must be 43 to 128 characters");
    if (!ConstantTimeEqual(Base64UrlEncode(Sha256(verifier)), c.code_challenge)) {
      return OAuthError(res, 400, "invalid_grant", "code_verifier does not match code_challenge");
    }
    grant = std::move(c.grant);
    refreshable = HasScope(grant.scopes, "offline_access") || HasScope(grant.scopes, "online_access");
  } else if (grant_type == "refresh_token") {
    std::string token_hash = Sha256(FormValue(f, "refresh_token"));
    RefreshGrant r;
    {
      std::lock_guard lock(state_->mu);
      auto it = state_->refresh.find(token_hash);
      if (it == state_->refresh.end()) {
        // A rotated-out refresh token came back: one of its two holders is an attacker.
        auto old = state_->rotated.find(token_hash);
        if (old != state_->rotated.end()) state_->RevokeFamily(old->second.first);
        return OAuthError(res, 400, "invalid_grant", "the refresh token is invalid, expired or already used");
      }
      if (!auth.client) {
        const Client* owner = clients_.Find(it->second.grant.client_id);
        if (!owner || owner->type != ClientType::kPublic) return ClientError(res, auth);
      } else if (it->second.grant.client_id != auth.client->client_id) {
        return OAuthError(res, 400, "invalid_grant", "the refresh token was issued to another client");
      }
      r = std::move(it->second);
      state_->refresh.erase(it);
      state_->rotated[token_hash] = {r.grant.family, r.expires_at};
    }
    if (r.expires_at <= now)
      return OAuthError(res, 400, "invalid_grant", "the refresh token is invalid, expired or already used");
    grant = std::move(r.grant);
    if (FormHas(f, "scope")) {
      std::vector<std::string> narrowed = internal::SplitSpaces(FormValue(f, "scope"));
      for (const std::string& s : narrowed) {
        if (!HasScope(grant.scopes, s))
          return OAuthError(res, 400, "invalid_scope", "a scope was not granted originally");
      }
      grant.scopes = std::move(narrowed);
    }
    refreshable = true;
  } else {
    const Client& client = *auth.client;
    if (client.type != ClientType::kBackend || !auth.authenticated) {
      return OAuthError(res, 401, "invalid_client", "client_credentials needs a backend client with private_key_jwt");
    }
    std::string_view scope = FormValue(f, "scope");
    if (!ParseScopes(scope).ok()) return OAuthError(res, 400, "invalid_scope", "a requested scope is malformed");
    for (std::string& s : internal::SplitSpaces(scope)) {
      if (s.starts_with("system/") && client.MayRequest(s) && !HasScope(grant.scopes, s))
        grant.scopes.push_back(std::move(s));
    }
    if (grant.scopes.empty())
      return OAuthError(res, 400, "invalid_scope", "none of the requested system scopes may be granted");
    grant.client_id = client.client_id;
    grant.subject = client.client_id;
    grant.family = RandomToken();
  }

  // The access token.
  std::string jti = Base64UrlEncode(internal::RandomBytes(18));
  int64_t exp = now + options_.access_token_seconds;
  std::string scope = internal::JoinSpaces(grant.scopes);
  JsonOut claims;
  claims.Str("iss", options_.issuer).Str("sub", grant.subject).Str("aud", options_.fhir_base_url).Int("exp", exp);
  claims.Int("iat", now).Str("jti", jti).Str("scope", scope).Str("client_id", grant.client_id);
  if (!grant.fhir_user.empty()) claims.Str("fhirUser", grant.fhir_user);
  if (!grant.patient.empty()) claims.Str("patient", grant.patient);
  if (!grant.identity_level.empty()) claims.Str("idl", grant.identity_level);
  const Key* key = keys_->Find(signing_kid_);
  auto access_token = SignJwt(*key, claims.Done());
  if (!access_token.ok()) return OAuthError(res, 500, "server_error", "cannot sign the token");

  JsonOut body;
  body.Str("access_token", *access_token).Str("token_type", "Bearer").Int("expires_in", options_.access_token_seconds);
  body.Str("scope", scope);
  if (!grant.patient.empty() && HasScope(grant.scopes, "launch/patient")) body.Str("patient", grant.patient);
  if (HasScope(grant.scopes, "openid") && HasScope(grant.scopes, "fhirUser") && !grant.fhir_user.empty()) {
    JsonOut id;
    id.Str("iss", options_.issuer).Str("sub", grant.subject).Str("aud", grant.client_id).Int("exp", exp);
    id.Int("iat", now).Str("fhirUser", grant.fhir_user);
    if (!grant.nonce.empty()) id.Str("nonce", grant.nonce);
    auto id_token = SignJwt(*key, id.Done());
    if (!id_token.ok()) return OAuthError(res, 500, "server_error", "cannot sign the id token");
    body.Str("id_token", *id_token);
  }
  std::string refresh;
  {
    std::lock_guard lock(state_->mu);
    Family& fam = state_->families[grant.family];
    fam.jtis.emplace_back(jti, exp);
    fam.expires_at = std::max(fam.expires_at, exp);
    if (refreshable) {
      state_->MaybePurge(now, state_->refresh.size() >= options_.max_refresh_tokens);
      if (state_->refresh.size() < options_.max_refresh_tokens) {
        refresh = RandomToken();
        int64_t refresh_exp = now + options_.refresh_token_seconds;
        fam.expires_at = std::max(fam.expires_at, refresh_exp);
        state_->refresh.emplace(Sha256(refresh), RefreshGrant{grant, refresh_exp});
      }
    }
  }
  if (!refresh.empty()) body.Str("refresh_token", refresh);
  JsonResponse(res, 200, body.Done());
}

void AuthServer::Introspect(const http::Request& req, http::Response& res) const {
  if (req.body.size() > options_.max_body_bytes)
    return OAuthError(res, 413, "invalid_request", "the body is too large");
  if (!req.Header("Content-Type").starts_with("application/x-www-form-urlencoded")) {
    return OAuthError(res, 400, "invalid_request", "expected application/x-www-form-urlencoded");
  }
  auto form = internal::ParseForm(req.body, 16, 8192);
  if (!form.ok()) return OAuthError(res, 400, "invalid_request", form.status().message());
  const Form& f = *form;
  int64_t now = Now();
  VerifyOptions vo;
  vo.allowed_algs = {Alg::kES384, Alg::kRS384};
  vo.issuer = options_.issuer;
  vo.audiences = {options_.fhir_base_url};
  vo.now = now;
  vo.leeway_seconds = 0;
  auto verify = [&](std::string_view token) -> std::optional<Claims> {
    auto claims = VerifyJwt(token, *keys_, vo);
    if (!claims.ok() || IsRevoked(claims->jti)) return std::nullopt;
    return std::move(claims).value();
  };
  std::string_view authorization = req.Header("Authorization");
  bool allowed = false;
  if (authorization.starts_with("Bearer ")) {
    allowed = verify(authorization.substr(7)).has_value();
    if (!allowed) {
      res.SetHeader("WWW-Authenticate", "Bearer error=\"invalid_token\"");
      return OAuthError(res, 401, "invalid_token", "the bearer token is not valid");
    }
  } else {
    ClientAuth auth = AuthenticateClient(req, f, clients_, options_, urls_, *state_, now);
    if (!auth.client || !auth.authenticated) {
      if (auth.error.empty()) auth.error = "introspection needs a confidential or backend client";
      return ClientError(res, auth);
    }
    allowed = true;
  }
  auto claims = verify(FormValue(f, "token"));
  if (!claims) return JsonResponse(res, 200, JsonOut().Bool("active", false).Done());
  JsonOut out;
  out.Bool("active", true).Str("token_type", "Bearer").Str("scope", claims->scope).Str("client_id", claims->client_id);
  out.Str("sub", claims->sub).Str("iss", claims->iss).Int("exp", claims->exp).Int("iat", claims->iat);
  if (!claims->patient.empty()) out.Str("patient", claims->patient);
  if (!claims->fhir_user.empty()) out.Str("fhirUser", claims->fhir_user);
  if (auto idl = claims->GetString("idl")) out.Str("idl", *idl);
  JsonResponse(res, 200, out.Done());
}

}  // namespace bevan::auth
