// Boost.Beast implementation of server.h. The only translation unit of the
// project that includes Beast and Asio.
#include "http/server.h"

#include <pthread.h>
#include <sched.h>
#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>

#include "common/ids.h"
#include "http/compress.h"
#include "http/work_pool.h"

namespace bevan::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
// I/O objects bound to their io_context's own executor type rather than the
// type-erased any_io_executor: every completion handler is dispatched
// without copying and destroying a polymorphic executor.
using Executor = asio::io_context::executor_type;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using TcpStream = beast::basic_stream<tcp, Executor, beast::unlimited_rate_policy>;
using Timer =
    asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>;
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

namespace {

// A client's request id is echoed only if it is short and plain.
bool SaneRequestId(std::string_view id) {
  if (id.empty() || id.size() > 200) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

void DefaultError(int status, std::string_view message, Response& res) {
  res.status = status;
  res.SetHeader("Content-Type", "text/plain; charset=utf-8");
  res.body = std::string(message) + "\n";
}

bool IsName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view Trimmed(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Headers the server adds to every response without storing them in the
// Response: X-Request-Id and the security headers (cors.h), in that order.
// Each replaces, in its place, a header of the same name among the first
// `handler_count` (the handler's); the others follow those, before the rest
// of the Response's headers (CORS, gzip), exactly as Response::SetHeader
// would have placed them.
struct ServerFields {
  std::array<HeaderField, 7> fields;
  size_t count = 0;
  size_t handler_count = 0;
};

// Calls emit(name, value) for each header of the head, in order.
template <typename Emit>
void ForEachField(const Response& res, const ServerFields& server, Emit&& emit) {
  uint32_t placed = 0;  // bit i: server.fields[i] went in a handler header's place
  for (size_t h = 0; h < server.handler_count; ++h) {
    const auto& [name, value] = res.headers[h];
    std::string_view v = value;
    for (size_t i = 0; i < server.count; ++i) {
      if (IsName(name, server.fields[i].name)) {
        v = server.fields[i].value;
        placed |= 1u << i;
        break;
      }
    }
    emit(name, v);
  }
  for (size_t i = 0; i < server.count; ++i) {
    if (!(placed & (1u << i))) emit(server.fields[i].name, server.fields[i].value);
  }
  for (size_t h = server.handler_count; h < res.headers.size(); ++h) emit(res.headers[h].first, res.headers[h].second);
}

// Writes the head of `res` (status line, headers, blank line) into `out`,
// byte for byte what Beast's serializer wrote for the same message after
// keep_alive(keep) and prepare_payload() (Content-Length of the body, even
// for 204 and 304): one buffer, sent with the body in one gathered write,
// instead of Beast's per-field buffer sequence. The headers are sent in
// order (values trimmed, as Beast stores them); Connection and
// Content-Length are the server's.
void WriteHead(const Response& res, const ServerFields& server, unsigned version, bool keep, uint64_t content_length,
               std::string& out) {
  using namespace std::string_view_literals;
  auto code = static_cast<unsigned>(res.status);
  beast::string_view beast_reason = bhttp::obsolete_reason(static_cast<bhttp::status>(code));
  std::string_view reason(beast_reason.data(), beast_reason.size());
  // What Beast's keep_alive() adds when the message has no Connection field.
  std::string_view connection = version >= 11 && !keep ? "Connection: close\r\n"sv
                                : version < 11 && keep ? "Connection: keep-alive\r\n"sv
                                                       : std::string_view();
  char length[20];
  size_t length_at = sizeof(length);
  do {
    length[--length_at] = static_cast<char>('0' + content_length % 10);
    content_length /= 10;
  } while (content_length != 0);
  std::string_view length_digits(length + length_at, sizeof(length) - length_at);

  auto skipped = [](std::string_view name) { return IsName(name, "Connection") || IsName(name, "Content-Length"); };
  size_t size = 13 + reason.size() + 2 + connection.size() + 16 + length_digits.size() + 4;
  ForEachField(res, server, [&](std::string_view name, std::string_view value) {
    if (!skipped(name)) size += name.size() + 2 + Trimmed(value).size() + 2;
  });
  // Sized once, then filled with memcpy: a few hundred bytes, no appends.
  out.resize(size);
  char* p = out.data();
  auto put = [&p](std::string_view s) {
    if (s.empty()) return;  // memcpy from an empty view's null data is undefined
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  const char line[13] = {'H',
                         'T',
                         'T',
                         'P',
                         '/',
                         static_cast<char>('0' + version / 10),
                         '.',
                         static_cast<char>('0' + version % 10),
                         ' ',
                         static_cast<char>('0' + code / 100 % 10),
                         static_cast<char>('0' + code / 10 % 10),
                         static_cast<char>('0' + code % 10),
                         ' '};
  put(std::string_view(line, sizeof(line)));
  put(reason);
  put("\r\n"sv);
  ForEachField(res, server, [&](std::string_view name, std::string_view value) {
    if (skipped(name)) return;
    put(name);
    put(": "sv);
    put(Trimmed(value));
    put("\r\n"sv);
  });
  put(connection);
  put("Content-Length: "sv);
  put(length_digits);
  put("\r\n\r\n"sv);
}

}  // namespace

class Server::Impl {
 public:
  struct Loop;
  template <class Stream>
  class Session;

  Impl(ServerOptions options, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        pool_(options_.work_threads, options_.work_queue_limit),
        limiter_(options_.rate_limit) {
    if (!options_.make_error) options_.make_error = DefaultError;
  }

  Status Start();
  void Shutdown();
  void Wait();

  // Runs the handler (catching anything that escapes) and finishes the
  // response: request id, gzip.
  void Handle(const Request& req, Response& res) {
    try {
      handler_(req, res);
    } catch (const std::exception&) {
      res = Response();
      options_.make_error(500, "internal error", res);
    } catch (...) {
      res = Response();
      options_.make_error(500, "internal error", res);
    }
  }

  // Answers, without the handler, what the server itself decides: CORS
  // preflights and rate-limited requests. True if `res` is the answer.
  bool Intercept(const Request& req, Response& res) {
    if (limiter_.enabled()) {
      std::string key = options_.rate_key ? options_.rate_key(req) : std::string();
      auto d = limiter_.Take(key.empty() ? std::string_view(req.remote_address) : std::string_view(key));
      if (!d.allowed) {
        options_.make_error(429, "too many requests; retry later", res);
        res.SetHeader("Retry-After", std::to_string(d.retry_after_seconds));
        return true;
      }
    }
    if (options_.cors.enabled() && IsPreflight(req)) {
      if (!AnswerPreflight(options_.cors, req, res)) options_.make_error(403, "origin not allowed", res);
      return true;
    }
    return false;
  }

  // Adds what the server adds to every response: X-Request-Id, the security
  // headers, CORS headers, gzip. With `server` set, the request id and the
  // security headers are listed there for WriteHead instead of being stored
  // in `res` (the same names, values and places; `req` must outlive it).
  void Finish(const Request& req, Response& res, ServerFields* server) {
    if (server != nullptr) {
      server->handler_count = res.headers.size();
      server->fields[0] = {"X-Request-Id", req.request_id};
      SecurityFields security;
      size_t n = SecurityHeaders(res, ssl_ != nullptr, security);
      std::copy_n(security.begin(), n, server->fields.begin() + 1);
      server->count = 1 + n;
    } else {
      res.SetHeader("X-Request-Id", req.request_id);
      AddSecurityHeaders(res, ssl_ != nullptr);
    }
    AddCorsHeaders(options_.cors, req, res);
    if (res.body.size() >= options_.gzip_min_bytes && res.Header("Content-Encoding").empty() &&
        AcceptsGzip(req.Header("Accept-Encoding"))) {
      std::string zipped;
      if (Gzip(res.body, zipped)) {
        res.body = std::move(zipped);
        res.SetHeader("Content-Encoding", "gzip");
        AppendHeaderValue(res, "Vary", "Accept-Encoding");
      }
    }
  }

  ServerOptions options_;
  Handler handler_;
  WorkPool pool_;
  RateLimiter limiter_;
  std::unique_ptr<asio::ssl::context> ssl_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  uint16_t port_ = 0;
  std::once_flag wait_once_;
};

// One event loop: an io_context run by one thread, with its own acceptor.
struct Server::Impl::Loop {
  asio::io_context ioc{1};
  Acceptor acceptor{ioc};
  // One entry per open session of this loop: closes it if idle. Touched
  // only on this loop's thread (shutdown posts there).
  std::list<std::function<void()>> closers;
};

template <class Stream>
class Server::Impl::Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Impl& server, Loop& loop, Stream stream, std::string remote)
      : server_(server), loop_(loop), stream_(std::move(stream)), remote_(std::move(remote)), timer_(loop.ioc) {}

  void Start(std::list<std::function<void()>>::iterator closer) {
    closer_ = closer;
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(server_.options_.request_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->Close();
        self->Read();
      });
    } else {
      Read();
    }
  }

  // Closes the connection if it is idle (waiting for a new request); called
  // on this session's thread at shutdown.
  void CloseIfIdle() {
    if (idle_ && !(parser_ && parser_->got_some())) {
      beast::error_code ec;
      beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
      beast::get_lowest_layer(stream_).cancel();
    }
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, TcpStream>;

  void Read() {
    if (server_.stopping_) return Close();
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_.options_.max_header_bytes));
    parser_->body_limit(server_.options_.max_body_bytes);
    buffer_.max_size(server_.options_.max_header_bytes + 64 * 1024);
    idle_ = true;
    // Our own timer, so that a late request can still be answered with 408
    // (tcp_stream's own timeout closes the socket); the stream's deadline is
    // a backstop.
    timed_out_ = false;
    timer_.expires_after(server_.options_.request_timeout);
    timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->timed_out_ = true;
      beast::error_code ignored;
      beast::get_lowest_layer(self->stream_).socket().cancel(ignored);
    });
    beast::get_lowest_layer(stream_).expires_after(server_.options_.request_timeout + std::chrono::seconds(5));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    idle_ = false;
    timer_.cancel();
    if (ec && timed_out_) {
      if (parser_ && parser_->got_some()) return Fail(408, "request timeout");
      return Close();
    }
    if (ec) {
      if (ec == bhttp::error::body_limit) return Fail(413, "request body larger than the limit");
      if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
        return Fail(431, "request header fields too large");
      }
      if (ec == beast::error::timeout && parser_ && parser_->got_some()) return Fail(408, "request timeout");
      if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
          ec == asio::error::connection_reset || ec == asio::error::eof) {
        return Close();
      }
      if (parser_ && parser_->got_some()) return Fail(400, "malformed HTTP request");
      return Close();
    }
    beast::get_lowest_layer(stream_).expires_never();
    auto& msg = parser_->get();
    // The previous request's strings are overwritten in place: a keep-alive
    // connection's requests mostly fit in the capacity the first one left.
    req_.method.assign(std::string_view(msg.method_string()));
    req_.SetTarget(std::string_view(msg.target()));
    size_t n = 0;
    for (const auto& field : msg) {
      if (n == req_.headers.size()) req_.headers.emplace_back();
      req_.headers[n].first.assign(std::string_view(field.name_string()));
      req_.headers[n].second.assign(std::string_view(field.value()));
      ++n;
    }
    req_.headers.resize(n);
    req_.body = std::move(msg.body());
    req_.remote_address = remote_;
    std::string_view rid = req_.Header("X-Request-Id");
    if (SaneRequestId(rid)) {
      req_.request_id.assign(rid);
    } else {
      req_.request_id = RandomHex(32);
    }
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    res_.status = 200;
    res_.headers.clear();
    res_.body.clear();
    res_.body_file.clear();

    if (server_.Intercept(req_, res_)) return Write();
    if (server_.options_.is_long && server_.options_.is_long(req_)) {
      // Off the I/O thread; the guard keeps this loop alive until we post back.
      auto guard = asio::make_work_guard(loop_.ioc);
      bool accepted = server_.pool_.Submit([self = this->shared_from_this(), guard]() mutable {
        self->server_.Handle(self->req_, self->res_);
        asio::post(self->loop_.ioc, [self, guard]() mutable {
          self->Write();
          guard.reset();
        });
      });
      if (!accepted) {
        server_.options_.make_error(503, "server busy: too many long-running requests; retry later", res_);
        res_.SetHeader("Retry-After", "1");
        Write();
      }
      return;
    }
    if (server_.options_.async_handler) {
      // Keeps the loop alive while the request is pending elsewhere; the
      // response is written on this session's thread (inline when `done`
      // is called from it).
      auto guard = asio::make_work_guard(loop_.ioc);
      auto self = this->shared_from_this();
      auto done = [self, guard]() mutable {
        asio::dispatch(self->loop_.ioc, [self, guard]() mutable {
          self->Write();
          guard.reset();
        });
      };
      try {
        server_.options_.async_handler(req_, res_, std::move(done));
      } catch (...) {
        res_ = Response();
        server_.options_.make_error(500, "internal error", res_);
        Write();
      }
      return;
    }
    server_.Handle(req_, res_);
    Write();
  }

  void Fail(int status, std::string_view message) {
    res_ = Response();
    server_.options_.make_error(status, message, res_);
    req_ = Request();  // not the previous request's headers (Origin, Accept-Encoding)
    req_.request_id = RandomHex(32);
    keep_alive_ = false;
    version_ = 11;
    Write();
  }

  void Write() {
    if (res_.body_file.empty()) {
      server_.Finish(req_, res_, &server_fields_);
      return SendString();
    }
    server_.Finish(req_, res_, nullptr);
    // A file is streamed; its write may take longer than the request
    // timeout: one more second per MiB.
    beast::error_code ec;
    bhttp::file_body::value_type file;
    file.open(res_.body_file.c_str(), beast::file_mode::scan, ec);
    if (ec) {
      res_ = Response();
      server_.options_.make_error(500, "cannot read the file to send", res_);
      return Write();
    }
    auto timeout = server_.options_.request_timeout + std::chrono::seconds(file.size() >> 20);
    Send<bhttp::file_body>(std::move(file), timeout);
  }

  // Sends res_ (head and body in one gathered write), then reads the next
  // request or closes. res_ stays untouched until the write completes.
  void SendString() {
    bool keep = keep_alive_ && !server_.stopping_;
    WriteHead(res_, server_fields_, version_, keep, res_.body.size(), head_);
    beast::get_lowest_layer(stream_).expires_after(server_.options_.request_timeout);
    auto then = [self = this->shared_from_this(), keep](beast::error_code ec, size_t) {
      if (ec || !keep) return self->Close();
      self->Read();
    };
    if constexpr (kTls) {
      // Not the two-buffer array: Asio's write loop for std::array<_, 2>
      // passes an empty first buffer once the head is sent, and Beast's TLS
      // stream (flat_stream) then writes nothing, which ends the write short
      // of a body over 16 KiB. The generic loop skips sent buffers.
      asio::async_write(stream_, beast::buffers_cat(asio::buffer(head_), asio::buffer(res_.body)), std::move(then));
    } else {
      std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(res_.body)};
      asio::async_write(stream_, buffers, std::move(then));
    }
  }

  // Sends res_'s status and headers with `body` through Beast's serializer
  // (file bodies), then reads the next request or closes.
  template <typename Body>
  void Send(typename Body::value_type body, std::chrono::steady_clock::duration timeout) {
    auto res = std::make_shared<bhttp::response<Body>>();
    res->result(static_cast<unsigned>(res_.status));
    res->version(version_);
    for (auto& [k, v] : res_.headers) res->set(k, v);
    res->body() = std::move(body);
    bool keep = keep_alive_ && !server_.stopping_;
    res->keep_alive(keep);
    res->prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(timeout);
    bhttp::async_write(stream_, *res, [self = this->shared_from_this(), res, keep](beast::error_code ec, size_t) {
      if (ec || !keep) return self->Close();
      self->Read();
    });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->CloseSocket(); });
    } else {
      CloseSocket();
    }
  }

  void CloseSocket() {
    timer_.cancel();
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ec);
    beast::get_lowest_layer(stream_).close();
    loop_.closers.erase(closer_);
  }

  Impl& server_;
  Loop& loop_;
  Stream stream_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Request req_;
  Response res_;
  std::string head_;  // the response head being sent (reused)
  ServerFields server_fields_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  Timer timer_;
  bool timed_out_ = false;
  bool idle_ = false;
  bool closed_ = false;
  std::list<std::function<void()>>::iterator closer_;
};

namespace {

template <class Accept>
void AcceptLoop(Acceptor& acceptor, Accept on_socket) {
  acceptor.async_accept([&acceptor, on_socket](beast::error_code ec, Socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) on_socket(std::move(socket));
    AcceptLoop(acceptor, on_socket);
  });
}

}  // namespace

Status Server::Impl::Start() {
  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    if (options_.tls_cert_file.empty() || options_.tls_key_file.empty()) {
      return InvalidArgumentError("TLS needs both a certificate and a key file");
    }
    ssl_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    ssl_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    beast::error_code ec;
    ssl_->use_certificate_chain_file(options_.tls_cert_file, ec);
    if (ec) return InvalidArgumentError("cannot load TLS certificate " + options_.tls_cert_file + ": " + ec.message());
    ssl_->use_private_key_file(options_.tls_key_file, asio::ssl::context::pem, ec);
    if (ec) return InvalidArgumentError("cannot load TLS key " + options_.tls_key_file + ": " + ec.message());
  }
  int n = options_.io_threads > 0 ? options_.io_threads : static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  beast::error_code ec;
  auto address = asio::ip::make_address(options_.address, ec);
  if (ec) return InvalidArgumentError("invalid listen address '" + options_.address + "'");
  uint16_t port = options_.port;
  for (int i = 0; i < n; ++i) {
    auto loop = std::make_unique<Loop>();
    tcp::endpoint ep(address, port);
    loop->acceptor.open(ep.protocol(), ec);
    if (!ec) loop->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) loop->acceptor.set_option(ReusePort(true), ec);
    if (!ec) loop->acceptor.bind(ep, ec);
    if (!ec) loop->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return IoError("cannot listen on " + options_.address + ":" + std::to_string(port) + ": " + ec.message());
    }
    if (i == 0) port = loop->acceptor.local_endpoint().port();
    loops_.push_back(std::move(loop));
  }
  port_ = port;
  // The CPUs this process may run on, for pinning the loops (ServerOptions::pin_io_threads).
  std::vector<int> cpus;
  if (cpu_set_t allowed; sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
    }
  }
  for (auto& loop_ptr : loops_) {
    Loop* loop = loop_ptr.get();
    AcceptLoop(loop->acceptor, [this, loop](Socket socket) {
      beast::error_code ec2;
      auto remote = socket.remote_endpoint(ec2);
      std::string remote_ip = ec2 ? std::string() : remote.address().to_string();
      socket.set_option(tcp::no_delay(true), ec2);
      loop->closers.emplace_front();
      auto it = loop->closers.begin();
      if (ssl_) {
        auto s = std::make_shared<Session<beast::ssl_stream<TcpStream>>>(
            *this, *loop, beast::ssl_stream<TcpStream>(TcpStream(std::move(socket)), *ssl_), remote_ip);
        *it = [w = std::weak_ptr(s)] {
          if (auto p = w.lock()) p->CloseIfIdle();
        };
        s->Start(it);
      } else {
        auto s = std::make_shared<Session<TcpStream>>(*this, *loop, TcpStream(std::move(socket)), remote_ip);
        *it = [w = std::weak_ptr(s)] {
          if (auto p = w.lock()) p->CloseIfIdle();
        };
        s->Start(it);
      }
    });
    int cpu = -1;
    if (options_.pin_io_threads && loops_.size() <= cpus.size()) cpu = cpus[threads_.size()];
    threads_.emplace_back([loop, cpu] {
      if (cpu >= 0) {
        // Best effort: a refusal leaves the thread where the scheduler puts it.
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
      }
      loop->ioc.run();
    });
  }
  return Status::Ok();
}

void Server::Impl::Shutdown() {
  if (stopping_.exchange(true)) return;
  for (auto& loop_ptr : loops_) {
    Loop* loop = loop_ptr.get();
    asio::post(loop->ioc, [loop] {
      beast::error_code ec;
      loop->acceptor.close(ec);
      // Copy: closing may erase entries.
      std::vector<std::function<void()>> closers(loop->closers.begin(), loop->closers.end());
      for (auto& c : closers) c();
    });
  }
}

void Server::Impl::Wait() {
  std::call_once(wait_once_, [this] {
    for (auto& t : threads_) t.join();
    pool_.Stop();
  });
}

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options, Handler handler) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  Status st = impl->Start();
  if (!st.ok()) {
    impl->Shutdown();
    impl->Wait();
    return st;
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  impl_->Shutdown();
  impl_->Wait();
}

uint16_t Server::port() const { return impl_->port_; }
bool Server::tls() const { return impl_->ssl_ != nullptr; }
void Server::Shutdown() { impl_->Shutdown(); }
void Server::Wait() { impl_->Wait(); }

void Server::RunUntilSignal() {
  asio::io_context signals_ioc(1);
  asio::signal_set signals(signals_ioc, SIGTERM, SIGINT);
  signals.async_wait([this](beast::error_code, int) { Shutdown(); });
  signals_ioc.run();
  Wait();
}

}  // namespace bevan::http
