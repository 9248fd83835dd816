#include "http/cors.h"

#include <strings.h>
#include <algorithm>

namespace bevan::http {

namespace {

constexpr std::string_view kAllowMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
constexpr std::string_view kAllowHeaders =
    "Authorization, Content-Type, Accept, Accept-Encoding, Prefer, If-Match, If-None-Match, If-None-Exist, "
    "If-Modified-Since, X-Request-Id";
constexpr std::string_view kExposeHeaders =
    "Location, ETag, Last-Modified, Content-Location, X-Request-Id, X-Progress, Retry-After";

// The Access-Control-Allow-Origin value for `origin`, or empty.
std::string_view AllowedOrigin(const CorsOptions& cors, std::string_view origin) {
  if (origin.empty()) return {};
  for (const auto& o : cors.allowed_origins) {
    if (o == origin) return origin;
  }
  if (std::find(cors.allowed_origins.begin(), cors.allowed_origins.end(), "*") != cors.allowed_origins.end()) {
    return "*";
  }
  return {};
}

void SetOrigin(const CorsOptions& cors, std::string_view allowed, Response& res) {
  res.SetHeader("Access-Control-Allow-Origin", std::string(allowed));
  if (cors.allow_credentials && allowed != "*") res.SetHeader("Access-Control-Allow-Credentials", "true");
}

}  // namespace

bool IsPreflight(const Request& req) {
  return req.method == "OPTIONS" && !req.Header("Origin").empty() &&
         !req.Header("Access-Control-Request-Method").empty();
}

bool AnswerPreflight(const CorsOptions& cors, const Request& req, Response& res) {
  std::string_view allowed = AllowedOrigin(cors, req.Header("Origin"));
  if (allowed.empty()) return false;
  res.status = 204;
  SetOrigin(cors, allowed, res);
  res.SetHeader("Access-Control-Allow-Methods", std::string(kAllowMethods));
  res.SetHeader("Access-Control-Allow-Headers", std::string(kAllowHeaders));
  res.SetHeader("Access-Control-Max-Age", std::to_string(cors.max_age_seconds));
  return true;
}

void AddCorsHeaders(const CorsOptions& cors, const Request& req, Response& res) {
  if (!cors.enabled()) return;
  AppendHeaderValue(res, "Vary", "Origin");
  std::string_view allowed = AllowedOrigin(cors, req.Header("Origin"));
  if (allowed.empty()) return;
  SetOrigin(cors, allowed, res);
  if (!IsPreflight(req)) res.SetHeader("Access-Control-Expose-Headers", std::string(kExposeHeaders));
}

size_t SecurityHeaders(const Response& res, bool tls, SecurityFields& out) {
  size_t n = 0;
  out[n++] = {"X-Content-Type-Options", "nosniff"};
  out[n++] = {"X-Frame-Options", "DENY"};
  out[n++] = {"Referrer-Policy", "no-referrer"};
  if (res.Header("Cache-Control").empty()) out[n++] = {"Cache-Control", "no-store"};
  std::string_view type = res.Header("Content-Type");
  if (type.size() < 9 || strncasecmp(type.data(), "text/html", 9) != 0) {
    out[n++] = {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"};
  }
  if (tls) out[n++] = {"Strict-Transport-Security", "max-age=31536000"};
  return n;
}

void AddSecurityHeaders(Response& res, bool tls) {
  SecurityFields fields;
  size_t n = SecurityHeaders(res, tls, fields);
  for (size_t i = 0; i < n; ++i) res.SetHeader(std::string(fields[i].name), std::string(fields[i].value));
}

void AppendHeaderValue(Response& res, std::string_view name, std::string_view value) {
  for (auto& [k, v] : res.headers) {
    if (k.size() != name.size() || strncasecmp(k.data(), name.data(), name.size()) != 0) continue;
    // Already listed (case-insensitively, as a whole token)?
    size_t start = 0;
    while (start <= v.size()) {
      size_t end = v.find(',', start);
      if (end == std::string::npos) end = v.size();
      std::string_view token(v.data() + start, end - start);
      while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
      while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
      if (token.size() == value.size() && strncasecmp(token.data(), value.data(), value.size()) == 0) return;
      start = end + 1;
    }
    v += v.empty() ? "" : ", ";
    v += value;
    return;
  }
  res.headers.emplace_back(std::string(name), std::string(value));
}

}  // namespace bevan::http
