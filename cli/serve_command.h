// `bevan serve`: the FHIR server of a node.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "auth/auth_config.h"

namespace bevan::cli {

struct ServeArgs {
  std::string db = "sqlite:./bevan.db";  // sqlite:PATH or postgresql://...
  std::string address = "127.0.0.1";
  uint16_t port = 8080;
  int threads = 0;  // I/O threads; 0: one per core
  // Each I/O thread on its own CPU (http::ServerOptions::pin_io_threads);
  // off (--no-pin-threads, "pin_threads": false) when other services share
  // the cores and should be free to use any.
  bool pin_threads = true;
  std::string config;  // JSON file with any of the keys below
  std::string tls_cert;
  std::string tls_key;
  std::string base_url;  // public base URL; default http(s)://address:port/fhir
  size_t max_body_bytes = 32u << 20;
  size_t max_bundle_entries = 1000;
  // Bulk Data $export files; empty: next to a SQLite database (PATH.export), else ./bevan-export.
  std::string export_dir;
  // SMART on FHIR authorisation (the config file's "auth" section, see
  // auth/auth_config.h). Unset: the developer mode, loopback only, no tokens.
  // Set: /auth/* and the smart-configuration are served, every /fhir request
  // but /fhir/metadata needs a bearer token, and a non-loopback address needs TLS.
  std::optional<auth::AuthConfig> auth;
  // The audit trail (hash-chained SQLite file); empty: next to a SQLite
  // database (PATH.audit.db), else ./bevan-audit.db. Keyed with BEVAN_AUDIT_KEY when set.
  std::string audit_log;
  // Requests per second and burst per client (bearer token) or, without one,
  // per address; 0 turns rate limiting off.
  double rate_limit = 200;
  double rate_burst = 400;
  // Origins allowed to call the API from browsers (CORS); empty: none.
  std::vector<std::string> cors_origins;
};

// Runs until SIGTERM/SIGINT; returns the process exit status.
int RunServe(ServeArgs args);

}  // namespace bevan::cli
