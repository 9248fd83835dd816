// The HTTP/1.1 server: Boost.Beast, one event loop per core, each with its
// own SO_REUSEPORT listening socket, so connections spread over the cores
// and each connection lives on one thread. Keep-alive, explicit limits with
// 413/431/408 answers, gzip when the client asks, X-Request-Id, optional TLS,
// a bounded pool for long requests (503 + Retry-After when full), and
// graceful shutdown (stop accepting, close idle connections, finish
// in-flight requests).
//
// Only server.cpp includes Beast; everything above sees message.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "http/cors.h"
#include "http/message.h"
#include "http/rate_limit.h"

namespace bevan::http {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port (see Server::port())
  int io_threads = 0;    // 0: one per core
  // Each event loop's thread stays on its own CPU (of those the process may
  // use) when there are no more loops than CPUs. With the load generator on
  // the same 2 cores, a loop that the scheduler moved or stacked onto its
  // sibling's CPU held its connections for a time slice: read p99 3.7-5.4 ms
  // unpinned, 1.9-2.5 ms pinned, at the same or higher throughput.
  bool pin_io_threads = true;
  size_t max_header_bytes = 16 * 1024;  // over: 431
  size_t max_body_bytes = 32u << 20;    // over: 413
  // Time allowed to receive one request (headers and body); over: 408. An idle
  // keep-alive connection is closed after the same time without a word.
  std::chrono::milliseconds request_timeout{30000};
  size_t work_threads = 2;       // pool for long requests
  size_t work_queue_limit = 64;  // queued long requests beyond those running; over: 503
  size_t gzip_min_bytes = 1024;  // smaller bodies are sent as they are
  // Picks requests to run on the pool instead of the I/O thread.
  std::function<bool(const Request&)> is_long;
  // When set, requests not picked by is_long go here instead of to the
  // handler given to Start: the I/O thread starts them and they complete
  // whenever `done` is called (the response is written on the I/O thread).
  AsyncHandler async_handler;
  // Builds the body of responses the server makes itself (413, 431, 408, 503,
  // 500): FHIR servers answer with an OperationOutcome. Default: plain text.
  std::function<void(int status, std::string_view message, Response&)> make_error;
  // TLS: both files (PEM) set turns TLS on.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Rate limits (token bucket per key; off while rate_per_second is 0). A
  // refused request is answered 429 with Retry-After before any handler
  // runs. `rate_key` picks the key (e.g. the client id of a bearer token);
  // it runs on the I/O thread for every request, so it must be cheap; empty
  // or unset: the remote address.
  RateLimitOptions rate_limit;
  std::function<std::string(const Request&)> rate_key;
  // CORS (off while allowed_origins is empty). Preflights are answered by
  // the server; a preflight from another origin gets 403.
  CorsOptions cors;
  // Every response also carries the security headers of cors.h
  // (AddSecurityHeaders), HSTS when TLS is on.
};

class Server {
 public:
  // Binds (all I/O threads share the port), starts the threads and returns
  // once the server accepts connections. `handler` is called concurrently
  // from several threads.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options, Handler handler);

  ~Server();  // Shutdown() and Wait()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;
  bool tls() const;

  // Graceful stop: no new connections; idle keep-alive connections close;
  // requests being received or handled complete and are answered (with
  // Connection: close). Returns at once; safe from any thread, idempotent.
  void Shutdown();

  // Blocks until every thread has finished after Shutdown().
  void Wait();

  // Blocks until SIGTERM or SIGINT, then shuts down gracefully and waits.
  void RunUntilSignal();

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bevan::http
