// The server over real sockets: a small blocking client speaks raw HTTP/1.1.
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "http/compress.h"

namespace bevan::http {
namespace {

using namespace std::chrono_literals;

class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() { close(fd_); }
  bool connected() const { return connected_; }

  void Send(std::string_view data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  // Reads one response (headers plus Content-Length body); empty on EOF or timeout.
  std::string ReadResponse(int timeout_ms = 5000) {
    std::string& buf = buf_;
    for (;;) {
      size_t end = buf.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t len = 0;
        std::string head = buf.substr(0, end);
        for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        size_t cl = head.find("content-length: ");
        if (cl != std::string::npos) len = std::stoul(head.substr(cl + 16));
        if (buf.size() >= end + 4 + len) {
          std::string out = buf.substr(0, end + 4 + len);
          buf.erase(0, end + 4 + len);
          return out;
        }
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return {};
      char tmp[65536];
      ssize_t n = recv(fd_, tmp, sizeof(tmp), 0);
      if (n <= 0) return {};
      buf.append(tmp, static_cast<size_t>(n));
    }
  }

  // True if the server closed the connection (EOF) within the timeout.
  bool Closed(int timeout_ms = 3000) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char tmp[16];
    return recv(fd_, tmp, sizeof(tmp), 0) == 0;
  }

 private:
  int fd_;
  bool connected_ = false;
  std::string buf_;
};

std::string Body(const std::string& response) { return response.substr(response.find("\r\n\r\n") + 4); }

int StatusOf(const std::string& response) { return response.size() > 12 ? std::stoi(response.substr(9, 3)) : 0; }

std::unique_ptr<Server> StartServer(ServerOptions options, Handler handler) {
  options.port = 0;
  options.io_threads = 2;
  auto s = Server::Start(std::move(options), std::move(handler));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

Handler Echo() {
  return [](const Request& req, Response& res) {
    res.SetHeader("Content-Type", "text/plain");
    res.body = req.method + " " + req.path + " q=" + req.query + " body=" + req.body;
  };
}

TEST(HttpServer, KeepAliveAndRequestIds) {
  auto server = StartServer({}, Echo());
  Client c(server->port());
  ASSERT_TRUE(c.connected());
  c.Send("GET /fhir/Patient/1?x=y HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc-123\r\n\r\n");
  std::string r1 = c.ReadResponse();
  EXPECT_EQ(StatusOf(r1), 200);
  EXPECT_EQ(Body(r1), "GET /fhir/Patient/1 q=x=y body=");
  EXPECT_NE(r1.find("X-Request-Id: abc-123"), std::string::npos) << r1;
  // Same connection, a POST with a body; the server makes a request id.
  c.Send("POST /fhir/Patient HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
  std::string r2 = c.ReadResponse();
  EXPECT_EQ(Body(r2), "POST /fhir/Patient q= body=hello");
  EXPECT_NE(r2.find("X-Request-Id: "), std::string::npos);
}

// The CPUs the handler's (I/O) thread may run on, as the body.
Handler AffinityEcho() {
  return [](const Request&, Response& res) {
    cpu_set_t set;
    CPU_ZERO(&set);
    pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
    res.body = std::to_string(CPU_COUNT(&set));
  };
}

TEST(HttpServer, EventLoopsArePinnedToOneCpuEachUnlessAsked) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  int cpus = CPU_COUNT(&allowed);
  for (bool pin : {true, false}) {
    ServerOptions o;
    o.pin_io_threads = pin;
    o.port = 0;
    o.io_threads = 1;
    auto server = Server::Start(o, AffinityEcho());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    Client c((*server)->port());
    ASSERT_TRUE(c.connected());
    c.Send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    std::string r = c.ReadResponse();
    EXPECT_EQ(Body(r), std::to_string(pin ? 1 : cpus)) << (pin ? "pinned" : "not pinned");
  }
  // More loops than CPUs: none is pinned.
  ServerOptions o;
  o.port = 0;
  o.io_threads = cpus + 1;
  auto server = Server::Start(o, AffinityEcho());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  Client c((*server)->port());
  ASSERT_TRUE(c.connected());
  c.Send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(Body(c.ReadResponse()), std::to_string(cpus));
}

TEST(HttpServer, BodyLimitGives413) {
  ServerOptions o;
  o.max_body_bytes = 100;
  auto server = StartServer(o, Echo());
  Client c(server->port());
  c.Send("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'a'));
  std::string r = c.ReadResponse();
  EXPECT_EQ(StatusOf(r), 413) << r;
  EXPECT_TRUE(c.Closed());
}

TEST(HttpServer, HeaderLimitGives431) {
  ServerOptions o;
  o.max_header_bytes = 1024;
  auto server = StartServer(o, Echo());
  Client c(server->port());
  c.Send("GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(4000, 'b') + "\r\n\r\n");
  EXPECT_EQ(StatusOf(c.ReadResponse()), 431);
}

TEST(HttpServer, SlowRequestGives408AndIdleConnectionCloses) {
  ServerOptions o;
  o.request_timeout = 300ms;
  auto server = StartServer(o, Echo());
  Client partial(server->port());
  partial.Send("GET /x HTTP/1.1\r\nHost: a\r\n");  // never finished
  EXPECT_EQ(StatusOf(partial.ReadResponse()), 408);
  Client idle(server->port());
  EXPECT_TRUE(idle.Closed());  // nothing sent: closed quietly
}

TEST(HttpServer, MalformedRequestGives400) {
  auto server = StartServer({}, Echo());
  Client c(server->port());
  c.Send("THIS IS NOT HTTP\r\n\r\n");
  EXPECT_EQ(StatusOf(c.ReadResponse()), 400);
}

TEST(HttpServer, GzipWhenAsked) {
  std::string big(5000, 'x');
  auto server = StartServer({}, [&](const Request&, Response& res) { res.body = big; });
  Client c(server->port());
  c.Send("GET /x HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br, gzip\r\n\r\n");
  std::string r = c.ReadResponse();
  ASSERT_NE(r.find("Content-Encoding: gzip"), std::string::npos) << r.substr(0, 300);
  std::string plain;
  ASSERT_TRUE(Gunzip(Body(r), plain, 1 << 20));
  EXPECT_EQ(plain, big);
  c.Send("GET /x HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip;q=0\r\n\r\n");
  EXPECT_EQ(Body(c.ReadResponse()), big);
  c.Send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(Body(c.ReadResponse()), big);
}

TEST(HttpServer, FullWorkPoolGives503WithRetryAfter) {
  ServerOptions o;
  o.work_threads = 1;
  o.work_queue_limit = 0;
  o.is_long = [](const Request& r) { return r.path == "/slow"; };
  std::atomic<bool> release{false};
  std::atomic<int> started{0};
  auto server = StartServer(o, [&](const Request&, Response& res) {
    ++started;
    for (int i = 0; i < 500 && !release; ++i) std::this_thread::sleep_for(10ms);
    res.body = "done";
  });
  Client a(server->port());
  a.Send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
  for (int i = 0; i < 200 && started == 0; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(started, 1);
  Client b(server->port());
  b.Send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
  std::string rb = b.ReadResponse();
  EXPECT_EQ(StatusOf(rb), 503);
  EXPECT_NE(rb.find("Retry-After: 1"), std::string::npos);
  release = true;
  EXPECT_EQ(Body(a.ReadResponse()), "done");
}

TEST(HttpServer, GracefulShutdownFinishesInFlightRequests) {
  std::atomic<int> started{0};
  auto server = StartServer({}, [&](const Request&, Response& res) {
    ++started;
    std::this_thread::sleep_for(300ms);
    res.body = "finished";
  });
  uint16_t port = server->port();
  Client idle(port);
  Client busy(port);
  busy.Send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
  for (int i = 0; i < 200 && started == 0; ++i) std::this_thread::sleep_for(5ms);
  server->Shutdown();
  std::string r = busy.ReadResponse();
  EXPECT_EQ(Body(r), "finished");
  EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
  EXPECT_TRUE(idle.Closed());
  server->Wait();
  Client late(port);
  EXPECT_FALSE(late.connected());
}

TEST(HttpServer, ManyConcurrentClients) {
  auto server = StartServer({}, Echo());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Client c(server->port());
      for (int i = 0; i < 50; ++i) {
        c.Send("GET /t" + std::to_string(t) + " HTTP/1.1\r\nHost: a\r\n\r\n");
        if (Body(c.ReadResponse()) == "GET /t" + std::to_string(t) + " q= body=") ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok, 400);
}

TEST(HttpServer, AsyncHandlerCompletesFromAnotherThread) {
  ServerOptions o;
  std::vector<std::thread> workers;
  std::mutex mu;
  o.async_handler = [&](const Request& req, Response& res, std::function<void()> done) {
    if (req.path == "/now") {  // completes inline
      res.body = "inline";
      done();
      return;
    }
    std::lock_guard lock(mu);
    workers.emplace_back([&res, done = std::move(done)] {
      std::this_thread::sleep_for(20ms);
      res.body = "later";
      done();
    });
  };
  auto server = StartServer(o, Echo());
  Client c(server->port());
  c.Send("GET /later HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(Body(c.ReadResponse()), "later");
  c.Send("GET /now HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(Body(c.ReadResponse()), "inline");
  // Pipelined: both answered in order on one connection.
  c.Send("GET /later HTTP/1.1\r\nHost: a\r\n\r\nGET /now HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(Body(c.ReadResponse()), "later");
  EXPECT_EQ(Body(c.ReadResponse()), "inline");
  server->Shutdown();
  server->Wait();
  for (auto& w : workers) w.join();
}

// The server writes the response head itself; these are the exact bytes
// Beast's serializer wrote before (status line, the handler's headers in
// order with trimmed values, the server's headers, Connection, Content-Length).
Handler HeadHandler() {
  return [](const Request& req, Response& res) {
    if (req.path == "/304") {
      res.status = 304;
      res.SetHeader("ETag", "W/\"3\"");
      return;
    }
    if (req.path == "/own") {  // headers the server sets itself
      res.SetHeader("x-frame-options", "SAMEORIGIN");
      res.SetHeader("Cache-Control", "");
      res.SetHeader("X-Request-Id", "handler");
      res.SetHeader("Content-Type", "text/html");
      return;
    }
    if (req.path == "/odd") {
      res.status = 299;
      res.SetHeader("Content-Length", "999");  // the server's own wins
      res.body = "x";
      return;
    }
    res.SetHeader("Content-Type", "text/plain");
    res.SetHeader("ETag", "  W/\"1\"\t");
    res.SetHeader("Cache-Control", "max-age=5");
    res.body = req.method == "HEAD" ? "" : "hello";
  };
}

constexpr std::string_view kSecurity =
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n";
constexpr std::string_view kCsp = "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n";

std::string Head(std::string_view status_line, std::string_view rid, std::string_view more) {
  return std::string(status_line) + "\r\nContent-Type: text/plain\r\nETag: W/\"1\"\r\nCache-Control: max-age=5\r\n" +
         "X-Request-Id: " + std::string(rid) + "\r\n" + std::string(kSecurity) + std::string(kCsp) + std::string(more) +
         "\r\n";
}

TEST(HttpServer, ResponseHeadBytes) {
  auto server = StartServer({}, HeadHandler());
  Client c(server->port());
  c.Send("GET /x HTTP/1.1\r\nHost: a\r\nX-Request-Id: r1\r\n\r\n");
  EXPECT_EQ(c.ReadResponse(), Head("HTTP/1.1 200 OK", "r1", "Content-Length: 5\r\n") + "hello");
  // HEAD: the handler's empty body is what is sent, and its length.
  c.Send("HEAD /x HTTP/1.1\r\nHost: a\r\nX-Request-Id: r2\r\n\r\n");
  EXPECT_EQ(c.ReadResponse(), Head("HTTP/1.1 200 OK", "r2", "Content-Length: 0\r\n"));
  // 304 keeps Content-Length: 0, as Beast's prepare_payload set it.
  c.Send("GET /304 HTTP/1.1\r\nHost: a\r\nX-Request-Id: r3\r\n\r\n");
  EXPECT_EQ(c.ReadResponse(), "HTTP/1.1 304 Not Modified\r\nETag: W/\"3\"\r\nX-Request-Id: r3\r\n" +
                                  std::string(kSecurity) + "Cache-Control: no-store\r\n" + std::string(kCsp) +
                                  "Content-Length: 0\r\n\r\n");
  // A code without a reason phrase; the handler's Content-Length is
  // replaced by the server's.
  c.Send("GET /odd HTTP/1.1\r\nHost: a\r\nX-Request-Id: r4\r\n\r\n");
  EXPECT_EQ(c.ReadResponse(), "HTTP/1.1 299 <unknown-status>\r\nX-Request-Id: r4\r\n" + std::string(kSecurity) +
                                  "Cache-Control: no-store\r\n" + std::string(kCsp) + "Content-Length: 1\r\n\r\nx");
  // The server's values replace the handler's in the handler's places (and
  // names as the handler spelled them); HTML gets no CSP.
  c.Send("GET /own HTTP/1.1\r\nHost: a\r\nX-Request-Id: r6\r\n\r\n");
  EXPECT_EQ(c.ReadResponse(),
            "HTTP/1.1 200 OK\r\nx-frame-options: DENY\r\nCache-Control: no-store\r\nX-Request-Id: r6\r\n"
            "Content-Type: text/html\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
            "Content-Length: 0\r\n\r\n");
  // Still the same connection (keep-alive is the HTTP/1.1 default).
  c.Send("GET /x HTTP/1.1\r\nHost: a\r\nX-Request-Id: r5\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(c.ReadResponse(), Head("HTTP/1.1 200 OK", "r5", "Connection: close\r\nContent-Length: 5\r\n") + "hello");
  EXPECT_TRUE(c.Closed());
}

TEST(HttpServer, ResponseHeadForHttp10) {
  auto server = StartServer({}, HeadHandler());
  Client plain(server->port());
  plain.Send("GET /x HTTP/1.0\r\nX-Request-Id: a1\r\n\r\n");
  EXPECT_EQ(plain.ReadResponse(), Head("HTTP/1.0 200 OK", "a1", "Content-Length: 5\r\n") + "hello");
  EXPECT_TRUE(plain.Closed());
  Client keep(server->port());
  keep.Send("GET /x HTTP/1.0\r\nConnection: keep-alive\r\nX-Request-Id: a2\r\n\r\n");
  EXPECT_EQ(keep.ReadResponse(),
            Head("HTTP/1.0 200 OK", "a2", "Connection: keep-alive\r\nContent-Length: 5\r\n") + "hello");
  keep.Send("HEAD /x HTTP/1.0\r\nConnection: keep-alive\r\nX-Request-Id: a3\r\n\r\n");
  EXPECT_EQ(keep.ReadResponse(), Head("HTTP/1.0 200 OK", "a3", "Connection: keep-alive\r\nContent-Length: 0\r\n"));
  EXPECT_FALSE(keep.Closed(200));
}

TEST(HttpServer, GzipHeadAndVary) {
  std::string big(3000, 'y');
  auto server = StartServer({}, [&](const Request&, Response& res) {
    res.SetHeader("Content-Type", "text/plain");
    res.body = big;
  });
  Client c(server->port());
  c.Send("GET /x HTTP/1.1\r\nHost: a\r\nX-Request-Id: g1\r\nAccept-Encoding: gzip\r\n\r\n");
  std::string r = c.ReadResponse();
  std::string zipped;
  ASSERT_TRUE(Gzip(big, zipped));
  EXPECT_EQ(r, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Request-Id: g1\r\n" + std::string(kSecurity) +
                   "Cache-Control: no-store\r\n" + std::string(kCsp) +
                   "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\nContent-Length: " +
                   std::to_string(zipped.size()) + "\r\n\r\n" + zipped);
}

TEST(HttpServer, FileBodyIsStreamed) {
  std::string path = ::testing::TempDir() + "bevan_server_file_body.txt";
  std::string content;
  for (int i = 0; i < 20000; ++i) content += "line " + std::to_string(i) + "\n";
  {
    FILE* f = fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    fwrite(content.data(), 1, content.size(), f);
    fclose(f);
  }
  auto server = StartServer({}, [&](const Request& req, Response& res) {
    if (req.path == "/missing") {
      res.body_file = path + ".missing";
      return;
    }
    res.SetHeader("Content-Type", "application/fhir+ndjson");
    res.body_file = path;
  });
  Client c(server->port());
  c.Send("GET /file HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n");
  std::string r = c.ReadResponse();
  EXPECT_EQ(StatusOf(r), 200);
  EXPECT_EQ(r.find("Content-Encoding"), std::string::npos);  // never gzipped
  EXPECT_NE(r.find("Content-Length: " + std::to_string(content.size()) + "\r\n"), std::string::npos);
  EXPECT_EQ(Body(r), content);
  // Then an ordinary response on the same connection.
  c.Send("GET /missing HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(StatusOf(c.ReadResponse()), 500);
  std::remove(path.c_str());
}

TEST(HttpServer, RejectsBadAddress) {
  ServerOptions o;
  o.address = "not-an-ip";
  EXPECT_FALSE(Server::Start(o, Echo()).ok());
  ServerOptions t;
  t.tls_cert_file = "/nonexistent.pem";
  EXPECT_FALSE(Server::Start(t, Echo()).ok());
}

TEST(HttpCompress, AcceptEncoding) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("deflate, GZIP;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("*"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("br"));
  EXPECT_FALSE(AcceptsGzip(""));
}

}  // namespace
}  // namespace bevan::http
