// Browser-facing hardening: CORS (configurable allowed origins, preflights
// answered by the server) and the security headers every response carries.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace bevan::http {

struct CorsOptions {
  // Origins allowed to call from a browser, exact ("https://app.example.org",
  // compared case-sensitively as browsers send them), or "*" for any origin
  // (then answered with "*" and never with credentials). Empty: CORS off, no
  // CORS headers at all.
  std::vector<std::string> allowed_origins;
  // Sends Access-Control-Allow-Credentials (cookies, TLS client
  // certificates) to listed origins; never with "*". Bearer tokens do not
  // need it.
  bool allow_credentials = false;
  int max_age_seconds = 600;  // how long a browser may cache a preflight

  bool enabled() const { return !allowed_origins.empty(); }
};

// Whether `req` is a CORS preflight: OPTIONS with Origin and
// Access-Control-Request-Method.
bool IsPreflight(const Request& req);

// Answers a preflight: 204 with the allowed methods and headers for an
// allowed origin; false (nothing set) for a disallowed one, which the server
// answers 403 without CORS headers.
bool AnswerPreflight(const CorsOptions& cors, const Request& req, Response& res);

// Adds Access-Control-Allow-Origin, Expose-Headers (and Allow-Credentials)
// when the request's Origin is allowed, and `Vary: Origin` whenever CORS is
// on (the answer depends on the Origin).
void AddCorsHeaders(const CorsOptions& cors, const Request& req, Response& res);

// X-Content-Type-Options, X-Frame-Options, Referrer-Policy, Cache-Control:
// no-store unless the handler set Cache-Control, Content-Security-Policy for
// anything but HTML, and Strict-Transport-Security when `tls`.
void AddSecurityHeaders(Response& res, bool tls);

// The headers AddSecurityHeaders sets on `res`, in the order it sets them,
// without touching `res` (the server writes them straight into the response
// head). Fills the first entries of `out` and returns how many.
struct HeaderField {
  std::string_view name;
  std::string_view value;
};
using SecurityFields = std::array<HeaderField, 6>;
size_t SecurityHeaders(const Response& res, bool tls, SecurityFields& out);

// Appends `value` to a comma-separated header (Vary), once.
void AppendHeaderValue(Response& res, std::string_view name, std::string_view value);

}  // namespace bevan::http
