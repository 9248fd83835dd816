#include "serve_command.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "audit/audit.h"
#include "auth/resource_server.h"
#include "auth/server.h"
#include "http/server.h"
#include "json/json.h"
#include "rest/export.h"
#include "rest/service.h"
#include "search/search.h"
#include "store/store.h"

namespace bevan::cli {

namespace {

// Reads the config file: a JSON object whose keys override the defaults
// (command-line flags given explicitly win; see main.cpp).
Status ApplyConfig(const std::string& path, ServeArgs& args) {
  std::ifstream in(path);
  if (!in) return IoError("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  ASSIGN_OR_RETURN(json::Document doc, json::Document::Parse(ss.str()));
  if (!doc.root().is_object()) return InvalidArgumentError(path + ": the config must be a JSON object");
  for (const json::Member& m : doc.root().members()) {
    std::string_view k = m.name();
    const json::Value& v = m.value;
    auto str = [&](std::string& out) -> Status {
      if (!v.is_string()) return InvalidArgumentError(path + ": '" + std::string(k) + "' must be a string");
      out = v.as_string();
      return Status::Ok();
    };
    auto num = [&](auto& out, int64_t lo, int64_t hi) -> Status {
      auto n = v.AsInt64();
      if (!n || *n < lo || *n > hi) {
        return InvalidArgumentError(path + ": '" + std::string(k) + "' must be an integer in [" + std::to_string(lo) +
                                    ", " + std::to_string(hi) + "]");
      }
      out = static_cast<std::remove_reference_t<decltype(out)>>(*n);
      return Status::Ok();
    };
    if (k == "db") {
      RETURN_IF_ERROR(str(args.db));
    } else if (k == "address") {
      RETURN_IF_ERROR(str(args.address));
    } else if (k == "port") {
      RETURN_IF_ERROR(num(args.port, 0, 65535));
    } else if (k == "threads") {
      RETURN_IF_ERROR(num(args.threads, 0, 256));
    } else if (k == "pin_threads") {
      if (!v.is_bool()) return InvalidArgumentError(path + ": 'pin_threads' must be true or false");
      args.pin_threads = v.as_bool();
    } else if (k == "tls_cert") {
      RETURN_IF_ERROR(str(args.tls_cert));
    } else if (k == "tls_key") {
      RETURN_IF_ERROR(str(args.tls_key));
    } else if (k == "base_url") {
      RETURN_IF_ERROR(str(args.base_url));
    } else if (k == "max_body_bytes") {
      RETURN_IF_ERROR(num(args.max_body_bytes, 1024, int64_t{1} << 32));
    } else if (k == "max_bundle_entries") {
      RETURN_IF_ERROR(num(args.max_bundle_entries, 1, 1000000));
    } else if (k == "audit_log") {
      RETURN_IF_ERROR(str(args.audit_log));
    } else if (k == "rate_limit" || k == "rate_burst") {
      auto d = v.AsDouble();
      if (!d || *d < 0 || *d > 1e6) return InvalidArgumentError(path + ": '" + std::string(k) + "' must be 0 to 1e6");
      (k == "rate_limit" ? args.rate_limit : args.rate_burst) = *d;
    } else if (k == "cors_origins") {
      if (!v.is_array()) return InvalidArgumentError(path + ": 'cors_origins' must be an array of origins");
      args.cors_origins.clear();
      for (const json::Value& o : v.items()) {
        if (!o.is_string() || o.as_string().empty()) {
          return InvalidArgumentError(path + ": 'cors_origins' must hold origins such as \"https://app.example\"");
        }
        args.cors_origins.emplace_back(o.as_string());
      }
    } else if (k == "auth") {
      auto auth = auth::ParseAuthConfig(v, std::filesystem::path(path).parent_path().string());
      if (!auth.ok()) return InvalidArgumentError(path + ": " + auth.status().message());
      args.auth = std::move(auth).value();
    } else {
      return InvalidArgumentError(path + ": unknown setting '" + std::string(k) + "'");
    }
  }
  return Status::Ok();
}

bool IsLoopback(const std::string& address) {
  return address == "127.0.0.1" || address.starts_with("127.") || address == "::1" || address == "localhost";
}

// What requests are routed to, published once the port is known.
struct Serving {
  const rest::FhirService* service = nullptr;
  const auth::AuthServer* auth = nullptr;  // null: no authorisation configured
  const auth::ResourceServer* resources = nullptr;
  audit::AuditLog* audit = nullptr;
};

// A request refused before it reached the FHIR service (no or a bad token)
// is audited here.
void AuditRefused(const Serving& s, const http::Request& req) {
  if (s.audit == nullptr) return;
  audit::AuditRecord r;
  r.action = req.method == "GET" || req.method == "HEAD" ? audit::Action::kRead : audit::Action::kExecute;
  r.subtype = "denied";
  r.outcome = audit::Outcome::kMinorFailure;
  r.description = "denied: no valid bearer access token";
  r.source_address = req.remote_address;
  r.request_id = req.request_id;
  (void)s.audit->Append(std::move(r));
}

// Routes one request: the authorisation server's endpoints, then the FHIR
// API (behind a bearer token when authorisation is configured, except the
// CapabilityStatement). `done` is empty for the synchronous handler.
void Route(const Serving& s, const http::Request& req, http::Response& res, std::function<void()> done) {
  auto finish = [&] {
    if (done) done();
  };
  if (s.auth && auth::AuthServer::IsAuthPath(req.path)) {
    s.auth->Handle(req, res);
    return finish();
  }
  if (req.path != "/fhir" && !req.path.starts_with("/fhir/")) {
    rest::FhirService::ServerError(404, "not found: the FHIR API is under /fhir", res);
    return finish();
  }
  if (!s.auth || req.path == "/fhir/metadata") {
    if (done) return s.service->HandleAsync(req, res, std::move(done));
    return s.service->Handle(req, res);
  }
  auto access = s.resources->AuthenticateShared(req);
  if (!access.ok()) {
    rest::FhirService::ServerError(401, "a valid bearer access token is required", res);
    auth::ResourceServer::Challenge(access.status(), res);
    AuditRefused(s, req);
    return finish();
  }
  // The Access (shared with the token cache) lives until the request completes.
  std::shared_ptr<const auth::Access> who = std::move(access).value();
  if (!done) return s.service->Handle(req, res, *who);
  s.service->HandleAsync(req, res, *who, [who, done = std::move(done)] { done(); });
}

}  // namespace

int RunServe(ServeArgs args) {
  if (!args.config.empty()) {
    if (Status st = ApplyConfig(args.config, args); !st.ok()) {
      std::cerr << "bevan serve: " << st.message() << "\n";
      return 2;
    }
  }
  if (args.address == "localhost") args.address = "127.0.0.1";
  bool tls = !args.tls_cert.empty() || !args.tls_key.empty();
  // Without authorisation the server must not be reachable from other
  // machines; with it, tokens and passwords must not cross a network in clear.
  if (!IsLoopback(args.address) && !args.auth) {
    std::cerr << "bevan serve: refusing to listen on " << args.address
              << ": without authorisation configured Bevan serves loopback only (127.0.0.1);"
                 " configure the \"auth\" section to serve other machines\n";
    return 2;
  }
  if (!IsLoopback(args.address) && !tls) {
    std::cerr << "bevan serve: refusing to listen on " << args.address
              << " without TLS: with authorisation configured, a non-loopback address needs --tls-cert and --tls-key\n";
    return 2;
  }
  auto store = store::OpenStore(args.db);
  if (!store.ok()) {
    std::cerr << "bevan serve: cannot open the store " << args.db << ": " << store.status().message() << "\n";
    return 1;
  }
  rest::ServiceOptions options;
  options.max_bundle_entries = args.max_bundle_entries;
  options.base_url = args.base_url;

  http::ServerOptions http_options;
  http_options.address = args.address;
  http_options.port = args.port;
  http_options.io_threads = args.threads;
  http_options.pin_io_threads = args.pin_threads;
  http_options.max_body_bytes = args.max_body_bytes;
  http_options.tls_cert_file = args.tls_cert;
  http_options.tls_key_file = args.tls_key;
  http_options.make_error = rest::FhirService::ServerError;
  http_options.rate_limit.rate_per_second = args.rate_limit;
  http_options.rate_limit.burst = args.rate_burst;
  // One bucket per bearer token (a client's session), else per address.
  http_options.rate_key = [](const http::Request& req) {
    std::string_view a = req.Header("Authorization");
    if (a.size() > 7 && (a.starts_with("Bearer ") || a.starts_with("bearer "))) {
      return "t:" + std::to_string(std::hash<std::string_view>{}(a.substr(7)));
    }
    return "a:" + req.remote_address;
  };
  http_options.cors.allowed_origins = args.cors_origins;

  // The service is created after binding, once the port (and so the base
  // URL) is known; until then requests get 503.
  std::unique_ptr<rest::FhirService> service;
  std::unique_ptr<auth::AuthServer> auth_server;
  std::unique_ptr<auth::ResourceServer> resource_server;
  Serving serving;
  std::atomic<const Serving*> ready{nullptr};
  // Creates and updates are asynchronous (they wait for a group commit
  // without holding a thread). Other writes (Bundles, deletes, patches,
  // conditional operations) wait in Store::Transact on a pool large enough
  // that many share one group commit; reads stay on the I/O threads.
  http_options.work_threads = 32;
  http_options.work_queue_limit = 4096;
  http_options.is_long = [](const http::Request& req) {
    if (req.method == "GET" || req.method == "HEAD") return false;
    bool plain_write = (req.method == "POST" || req.method == "PUT") && req.query.empty() &&
                       req.Header("If-None-Exist").empty() && req.path.size() > 6 && req.path.starts_with("/fhir/");
    return !plain_write;
  };
  http_options.async_handler = [&ready](const http::Request& req, http::Response& res, std::function<void()> done) {
    const Serving* s = ready.load(std::memory_order_acquire);
    if (!s) {
      rest::FhirService::ServerError(503, "starting up", res);
      return done();
    }
    Route(*s, req, res, std::move(done));
  };
  auto server = http::Server::Start(http_options, [&ready](const http::Request& req, http::Response& res) {
    const Serving* s = ready.load(std::memory_order_acquire);
    if (!s) return rest::FhirService::ServerError(503, "starting up", res);
    Route(*s, req, res, nullptr);
  });
  if (!server.ok()) {
    std::cerr << "bevan serve: " << server.status().message() << "\n";
    return 1;
  }
  if (options.base_url.empty()) {
    options.base_url =
        std::string(tls ? "https" : "http") + "://" + args.address + ":" + std::to_string((*server)->port()) + "/fhir";
  }
  rest::ExportOptions export_options;
  export_options.base_url = options.base_url;
  export_options.directory = !args.export_dir.empty()         ? args.export_dir
                             : args.db.starts_with("sqlite:") ? args.db.substr(7) + ".export"
                                                              : "./bevan-export";
  rest::BulkExporter exporter(**store, export_options);
  options.exporter = &exporter;
  std::string auth_note = "loopback only: no authorisation configured";
  if (args.auth) {
    // The issuer defaults to the origin of the FHIR base URL.
    std::string issuer = options.base_url.ends_with("/fhir") ? options.base_url.substr(0, options.base_url.size() - 5)
                                                             : options.base_url;
    auth::AuthServerOptions base;
    // Logins and failed logins go to the audit trail (opened below; set by then).
    base.on_login = [&serving](const auth::LoginEvent& e) {
      if (serving.audit == nullptr) return;
      audit::AuditRecord r;
      r.action = audit::Action::kExecute;
      r.subtype = e.success ? "login" : "login-failed";
      r.outcome = e.success ? audit::Outcome::kSuccess : audit::Outcome::kMinorFailure;
      r.description = e.description;
      r.user = !e.fhir_user.empty() ? e.fhir_user : e.username;
      r.client_id = e.client_id;
      r.source_address = e.remote_address;
      r.request_id = e.request_id;
      if (e.fhir_user.starts_with("Patient/")) r.patients.push_back(e.fhir_user.substr(8));
      (void)serving.audit->Append(std::move(r));
    };
    auto created = auth::AuthServer::Create(*args.auth, issuer, options.base_url, std::move(base));
    if (!created.ok()) {
      std::cerr << "bevan serve: authorisation: " << created.status().message() << "\n";
      return 2;
    }
    auth_server = std::move(created).value();
    auth::ResourceServerOptions ro;
    ro.issuer = auth_server->urls().issuer;
    ro.audience = auth_server->options().fhir_base_url;
    ro.keys = auth_server->verification_keys();
    const auth::AuthServer* a = auth_server.get();
    ro.is_revoked = [a](std::string_view jti) { return a->IsRevoked(jti); };
    ro.external = args.auth->external;
    resource_server = std::make_unique<auth::ResourceServer>(std::move(ro));
    options.smart =
        rest::SmartEndpoints{auth_server->urls().authorize, auth_server->urls().token, auth_server->urls().introspect};
    serving.auth = auth_server.get();
    serving.resources = resource_server.get();
    auth_note = "SMART authorisation at " + auth_server->urls().issuer +
                "/.well-known/smart-configuration, signing key " + auth_server->key_origin();
  }
  audit::AuditLogOptions audit_options;
  audit_options.path = !args.audit_log.empty()          ? args.audit_log
                       : args.db.starts_with("sqlite:") ? args.db.substr(7) + ".audit.db"
                                                        : "./bevan-audit.db";
  audit_options.key = audit::KeyFromEnvironment();
  std::unique_ptr<audit::AuditLog> audit_log;
  if (args.db != "sqlite::memory:" || !args.audit_log.empty()) {
    auto opened = audit::AuditLog::Open(audit_options);
    if (!opened.ok()) {
      std::cerr << "bevan serve: the audit trail " << audit_options.path << ": " << opened.status().message()
                << " (check it with `bevan audit verify --log " << audit_options.path << "`)\n";
      return 1;
    }
    audit_log = std::move(opened).value();
    options.audit = audit_log.get();
    serving.audit = audit_log.get();
  }
  // SearchParameter resources stored earlier are search parameters again.
  std::vector<std::string> sp_failures;
  auto custom = search::LoadSearchParameters(**store, &sp_failures);
  if (!custom.ok()) {
    std::cerr << "bevan serve: reading the stored SearchParameters: " << custom.status().message() << "\n";
    return 1;
  }
  for (const std::string& f : sp_failures) std::cerr << "bevan serve: SearchParameter ignored: " << f << "\n";
  if (*custom > 0) std::cout << "bevan: " << *custom << " custom search parameters" << std::endl;
  service = std::make_unique<rest::FhirService>(**store, options);
  serving.service = service.get();
  ready.store(&serving, std::memory_order_release);
  std::cout << "bevan: serving FHIR R4 at " << options.base_url << " (store " << (*store)->backend() << ", "
            << auth_note << ")" << std::endl;
  (*server)->RunUntilSignal();
  std::cout << "bevan: stopped" << std::endl;
  return 0;
}

}  // namespace bevan::cli
