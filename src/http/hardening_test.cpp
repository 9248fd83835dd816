// Rate limits, security headers and CORS: the limiter and header helpers as
// units, then through the real server over sockets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <thread>

#include "http/cors.h"
#include "http/rate_limit.h"
#include "http/server.h"

namespace bevan::http {
namespace {

using namespace std::chrono_literals;

// One request per connection, read to EOF: enough for header checks.
std::string Exchange(uint16_t port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0) break;
      char buf[16384];
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return out;
}

std::string Get(uint16_t port, const std::string& path, const std::string& extra_headers = {},
                const std::string& method = "GET") {
  return Exchange(port, method + " " + path + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + extra_headers + "\r\n");
}

int StatusOf(const std::string& r) { return r.size() > 12 ? std::stoi(r.substr(9, 3)) : 0; }

// The value of header `name` (exact case as the server writes it), or "<none>".
std::string HeaderOf(const std::string& r, const std::string& name) {
  size_t end = r.find("\r\n\r\n");
  size_t at = r.find("\r\n" + name + ": ");
  if (at == std::string::npos || at > end) return "<none>";
  at += name.size() + 4;
  return r.substr(at, r.find("\r\n", at) - at);
}

std::unique_ptr<Server> StartServer(ServerOptions options, Handler handler = nullptr) {
  options.port = 0;
  options.io_threads = 2;
  if (!handler) {
    handler = [](const Request& req, Response& res) {
      res.SetHeader("Content-Type", "application/fhir+json");
      if (req.path == "/cached") res.SetHeader("Cache-Control", "private, max-age=60");
      if (req.path == "/html") res.SetHeader("Content-Type", "text/html; charset=utf-8");
      res.body = req.path == "/big" ? std::string(4096, 'x') : "{}";
    };
  }
  options.make_error = [](int status, std::string_view message, Response& res) {
    res.status = status;
    res.SetHeader("Content-Type", "application/fhir+json");
    res.body = "{\"resourceType\":\"OperationOutcome\",\"diagnostics\":\"" + std::string(message) + "\"}";
  };
  auto s = Server::Start(std::move(options), std::move(handler));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

TEST(RateLimiter, BurstThenRefill) {
  RateLimiter limiter({.rate_per_second = 2, .burst = 3});
  auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Take("a", t0).allowed) << i;
  auto refused = limiter.Take("a", t0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_seconds, 1);
  // Another key has its own bucket.
  EXPECT_TRUE(limiter.Take("b", t0).allowed);
  // Half a second later one token is back, and only one.
  EXPECT_TRUE(limiter.Take("a", t0 + 500ms).allowed);
  EXPECT_FALSE(limiter.Take("a", t0 + 500ms).allowed);
  // Never more than the burst, however long the wait.
  auto later = t0 + 1h;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Take("a", later).allowed);
  EXPECT_FALSE(limiter.Take("a", later).allowed);
}

TEST(RateLimiter, RetryAfterRoundsUpToWholeSeconds) {
  RateLimiter limiter({.rate_per_second = 0.1, .burst = 1});
  auto t0 = RateLimiter::Clock::now();
  EXPECT_TRUE(limiter.Take("k", t0).allowed);
  EXPECT_EQ(limiter.Take("k", t0).retry_after_seconds, 10);
  EXPECT_EQ(limiter.Take("k", t0 + 2500ms).retry_after_seconds, 8);
}

TEST(RateLimiter, OffByDefaultAndBoundedMemory) {
  RateLimiter off({});
  EXPECT_FALSE(off.enabled());
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(off.Take("x").allowed);
  EXPECT_EQ(off.size(), 0u);

  RateLimiter limiter({.rate_per_second = 1, .burst = 5, .max_keys = 256});
  auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 20000; ++i) {
    // Every key active (its bucket not full again): the LRU path evicts.
    limiter.Take("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), t0 + std::chrono::microseconds(i));
  }
  EXPECT_LE(limiter.size(), 256u);
  EXPECT_GT(limiter.size(), 100u);
}

TEST(RateLimiter, ConcurrentTakesCountEveryToken) {
  RateLimiter limiter({.rate_per_second = 0.001, .burst = 1000});
  auto t0 = RateLimiter::Clock::now();
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) allowed += limiter.Take("shared", t0).allowed;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 1000);
}

TEST(Hardening, RateLimitGives429WithRetryAfter) {
  ServerOptions options;
  options.rate_limit = {.rate_per_second = 0.5, .burst = 2};
  options.rate_key = [](const Request& req) { return std::string(req.Header("X-Client")); };
  auto server = StartServer(std::move(options));
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(StatusOf(Get(server->port(), "/a", "X-Client: one\r\n")), 200);
  EXPECT_EQ(StatusOf(Get(server->port(), "/a", "X-Client: one\r\n")), 200);
  std::string refused = Get(server->port(), "/a", "X-Client: one\r\n");
  EXPECT_EQ(StatusOf(refused), 429) << refused;
  EXPECT_EQ(HeaderOf(refused, "Retry-After"), "2") << refused;
  EXPECT_NE(refused.find("OperationOutcome"), std::string::npos) << refused;
  EXPECT_EQ(HeaderOf(refused, "X-Content-Type-Options"), "nosniff");
  // Another client id, and requests without one (keyed by address), are independent.
  EXPECT_EQ(StatusOf(Get(server->port(), "/a", "X-Client: two\r\n")), 200);
  EXPECT_EQ(StatusOf(Get(server->port(), "/a")), 200);
}

TEST(Hardening, BucketsRefillThroughTheServer) {
  ServerOptions options;
  options.rate_limit = {.rate_per_second = 2, .burst = 1};
  auto server = StartServer(std::move(options));
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(StatusOf(Get(server->port(), "/a")), 200);
  EXPECT_EQ(StatusOf(Get(server->port(), "/a")), 429);
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(StatusOf(Get(server->port(), "/a")), 200);
}

TEST(Hardening, SecurityHeadersOnEveryResponse) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  auto server = StartServer(std::move(options));
  ASSERT_NE(server, nullptr);
  std::string r = Get(server->port(), "/fhir/Patient/1");
  EXPECT_EQ(StatusOf(r), 200);
  EXPECT_EQ(HeaderOf(r, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(HeaderOf(r, "X-Frame-Options"), "DENY");
  EXPECT_EQ(HeaderOf(r, "Referrer-Policy"), "no-referrer");
  EXPECT_EQ(HeaderOf(r, "Cache-Control"), "no-store");
  EXPECT_EQ(HeaderOf(r, "Content-Security-Policy"), "default-src 'none'; frame-ancestors 'none'");
  EXPECT_EQ(HeaderOf(r, "Strict-Transport-Security"), "<none>");    // no TLS here
  EXPECT_EQ(HeaderOf(r, "Access-Control-Allow-Origin"), "<none>");  // CORS off
  EXPECT_EQ(HeaderOf(r, "Vary"), "<none>");
  // The handler's own Cache-Control stays; HTML gets no CSP from us.
  EXPECT_EQ(HeaderOf(Get(server->port(), "/cached"), "Cache-Control"), "private, max-age=60");
  EXPECT_EQ(HeaderOf(Get(server->port(), "/html"), "Content-Security-Policy"), "<none>");
  // Responses the server makes itself carry them too.
  std::string big = Get(server->port(), "/a", "X-Big: " + std::string(2000, 'x') + "\r\n");
  EXPECT_EQ(StatusOf(big), 431);
  EXPECT_EQ(HeaderOf(big, "X-Frame-Options"), "DENY");

  Response tls;
  AddSecurityHeaders(tls, true);
  EXPECT_EQ(tls.Header("Strict-Transport-Security"), "max-age=31536000");
}

TEST(Hardening, CorsAllowedAndDisallowedOrigins) {
  ServerOptions options;
  options.cors.allowed_origins = {"https://app.example.org"};
  auto server = StartServer(std::move(options));
  ASSERT_NE(server, nullptr);
  std::string ok = Get(server->port(), "/fhir/Patient", "Origin: https://app.example.org\r\n");
  EXPECT_EQ(HeaderOf(ok, "Access-Control-Allow-Origin"), "https://app.example.org");
  EXPECT_EQ(HeaderOf(ok, "Access-Control-Expose-Headers"),
            "Location, ETag, Last-Modified, Content-Location, X-Request-Id, X-Progress, Retry-After");
  EXPECT_EQ(HeaderOf(ok, "Access-Control-Allow-Credentials"), "<none>");
  EXPECT_EQ(HeaderOf(ok, "Vary"), "Origin");

  std::string other = Get(server->port(), "/fhir/Patient", "Origin: https://evil.example\r\n");
  EXPECT_EQ(StatusOf(other), 200);
  EXPECT_EQ(HeaderOf(other, "Access-Control-Allow-Origin"), "<none>");
  EXPECT_EQ(HeaderOf(other, "Access-Control-Expose-Headers"), "<none>");
  EXPECT_EQ(HeaderOf(other, "Vary"), "Origin");

  // Gzip's Vary joins Origin's.
  std::string zipped = Get(server->port(), "/big", "Origin: https://app.example.org\r\nAccept-Encoding: gzip\r\n");
  EXPECT_EQ(HeaderOf(zipped, "Content-Encoding"), "gzip");
  EXPECT_EQ(HeaderOf(zipped, "Vary"), "Origin, Accept-Encoding");

  std::string preflight = Get(server->port(), "/fhir/Patient",
                              "Origin: https://app.example.org\r\nAccess-Control-Request-Method: POST\r\n"
                              "Access-Control-Request-Headers: authorization, content-type\r\n",
                              "OPTIONS");
  EXPECT_EQ(StatusOf(preflight), 204) << preflight;
  EXPECT_EQ(HeaderOf(preflight, "Access-Control-Allow-Origin"), "https://app.example.org");
  EXPECT_NE(HeaderOf(preflight, "Access-Control-Allow-Methods").find("PATCH"), std::string::npos);
  std::string allow_headers = HeaderOf(preflight, "Access-Control-Allow-Headers");
  for (const char* h : {"Authorization", "Content-Type", "Prefer", "If-Match", "If-None-Exist"}) {
    EXPECT_NE(allow_headers.find(h), std::string::npos) << h;
  }
  EXPECT_EQ(HeaderOf(preflight, "Access-Control-Max-Age"), "600");

  std::string denied = Get(server->port(), "/fhir/Patient",
                           "Origin: https://evil.example\r\nAccess-Control-Request-Method: DELETE\r\n", "OPTIONS");
  EXPECT_EQ(StatusOf(denied), 403) << denied;
  EXPECT_EQ(HeaderOf(denied, "Access-Control-Allow-Origin"), "<none>");
  EXPECT_EQ(HeaderOf(denied, "Access-Control-Allow-Methods"), "<none>");

  // A plain OPTIONS (no preflight headers) reaches the handler.
  EXPECT_EQ(StatusOf(Get(server->port(), "/fhir/metadata", "", "OPTIONS")), 200);
}

TEST(Hardening, CorsWildcardAndCredentials) {
  CorsOptions any{.allowed_origins = {"*"}, .allow_credentials = true};
  Request req;
  req.headers = {{"Origin", "https://x.example"}};
  Response res;
  AddCorsHeaders(any, req, res);
  EXPECT_EQ(res.Header("Access-Control-Allow-Origin"), "*");
  EXPECT_EQ(res.Header("Access-Control-Allow-Credentials"), "");  // never with "*"

  CorsOptions listed{.allowed_origins = {"https://x.example"}, .allow_credentials = true};
  Response res2;
  AddCorsHeaders(listed, req, res2);
  EXPECT_EQ(res2.Header("Access-Control-Allow-Origin"), "https://x.example");
  EXPECT_EQ(res2.Header("Access-Control-Allow-Credentials"), "true");

  Response vary;
  vary.SetHeader("Vary", "Accept-Encoding");
  AppendHeaderValue(vary, "Vary", "origin");
  AppendHeaderValue(vary, "Vary", "Origin");
  EXPECT_EQ(vary.Header("Vary"), "Accept-Encoding, origin");
}

}  // namespace
}  // namespace bevan::http
