// Boost.Beast implementation of client.h. Each call runs its exchange as a
// coroutine on a private io_context, so a deadline covers every step without
// threads; nothing is shared between calls.
#include "http/client.h"

#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <exception>
#include <optional>

namespace bevan::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

std::string HostHeader(const Url& url) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  uint16_t default_port = url.https ? 443 : 80;
  if (url.port != default_port) host += ":" + std::to_string(url.port);
  return host;
}

// What the coroutine leaves behind; lives on HttpGet's stack, outliving the
// io_context (and so the coroutine frame).
struct Outcome {
  bool done = false;
  Status status;
  ClientResponse response;
};

Status NetworkError(std::string_view step, const Url& url, const beast::error_code& ec) {
  if (ec == beast::error::timeout) return UnavailableError("timed out (" + std::string(step) + ") " + url.host);
  return UnavailableError(std::string(step) + " " + url.host + " failed: " + ec.message());
}

template <class Stream>
asio::awaitable<Status> Exchange(Stream& stream, beast::tcp_stream& tcp_layer, const Url& url,
                                 const ClientOptions& options, ClientResponse& out) {
  beast::error_code ec;
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, url.target, 11};
  req.set(bhttp::field::host, HostHeader(url));
  req.set(bhttp::field::user_agent, "bevan");
  req.set(bhttp::field::accept, "application/json");
  req.set(bhttp::field::connection, "close");
  co_await bhttp::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return NetworkError("sending to", url, ec);

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(options.max_body_bytes);
  parser.header_limit(static_cast<uint32_t>(options.max_header_bytes));
  co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec == bhttp::error::body_limit) {
    co_return ResourceExhaustedError("response body from " + url.host + " over " +
                                     std::to_string(options.max_body_bytes) + " bytes");
  }
  if (ec == bhttp::error::header_limit)
    co_return ResourceExhaustedError("response header from " + url.host + " too large");
  if (ec == beast::error::timeout) co_return NetworkError("reading from", url, ec);
  if (ec && ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category()) {
    co_return IoError("malformed HTTP response from " + url.host + ": " + ec.message());
  }
  if (ec) co_return NetworkError("reading from", url, ec);

  auto& res = parser.get();
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  out.body = std::move(res.body());
  beast::error_code ignored;
  tcp_layer.socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return Status::Ok();
}

asio::awaitable<Status> Run(Url url, ClientOptions options, ClientResponse& out) {
  auto executor = co_await asio::this_coro::executor;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  beast::error_code ec;

  tcp::resolver resolver(executor);
  auto endpoints = co_await resolver.async_resolve(url.host, std::to_string(url.port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return NetworkError("resolving", url, ec);

  if (!url.https) {
    beast::tcp_stream stream(executor);
    stream.expires_at(deadline);
    co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return NetworkError("connecting to", url, ec);
    co_return co_await Exchange(stream, stream, url, options, out);
  }

  ssl::context ctx(ssl::context::tls_client);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (options.ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
  } else {
    ctx.load_verify_file(options.ca_file, ec);
  }
  if (ec) co_return UnavailableError("cannot load CA certificates: " + ec.message());
  ctx.set_verify_mode(ssl::verify_peer);

  beast::ssl_stream<beast::tcp_stream> stream(executor, ctx);
  stream.set_verify_callback(ssl::host_name_verification(url.host));
  // SNI is for names only (RFC 6066 forbids IP literals).
  boost::system::error_code addr_ec;
  asio::ip::make_address(url.host, addr_ec);
  if (addr_ec && !SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str())) {
    co_return InternalError("cannot set TLS server name");
  }
  auto& tcp_layer = beast::get_lowest_layer(stream);
  tcp_layer.expires_at(deadline);
  co_await tcp_layer.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return NetworkError("connecting to", url, ec);
  co_await stream.async_handshake(ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return NetworkError("TLS handshake with", url, ec);
  co_return co_await Exchange(stream, tcp_layer, url, options, out);
}

}  // namespace

Result<Url> ParseUrl(std::string_view url) {
  Url out;
  if (StartsWithNoCase(url, "https://")) {
    out.https = true;
    url.remove_prefix(8);
  } else if (StartsWithNoCase(url, "http://")) {
    url.remove_prefix(7);
  } else {
    return InvalidArgumentError("not an http(s) URL");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return InvalidArgumentError("URL contains a space or control character");
  }
  if (size_t hash = url.find('#'); hash != std::string_view::npos) url = url.substr(0, hash);
  size_t authority_end = url.find_first_of("/?");
  std::string_view authority = url.substr(0, authority_end);
  std::string_view rest = authority_end == std::string_view::npos ? std::string_view() : url.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return InvalidArgumentError("URL with user information refused");

  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgumentError("URL has an unterminated IPv6 address");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgumentError("URL has junk after its IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return InvalidArgumentError("URL has an empty port");
    }
  } else {
    size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return InvalidArgumentError("URL has an empty port");
    }
  }
  if (out.host.empty()) return InvalidArgumentError("URL has no host");
  out.port = out.https ? 443 : 80;
  if (!port_text.empty()) {
    unsigned port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) return InvalidArgumentError("URL has a bad port");
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (port == 0 || port > 65535) return InvalidArgumentError("URL has a bad port");
    out.port = static_cast<uint16_t>(port);
  }
  out.target = rest.empty() || rest.front() == '?' ? "/" + std::string(rest) : std::string(rest);
  return out;
}

Result<ClientResponse> HttpGet(std::string_view url_text, const ClientOptions& options) {
  ASSIGN_OR_RETURN(Url url, ParseUrl(url_text));
  std::string host = url.host;
  Outcome outcome;
  try {
    asio::io_context ioc(1);
    asio::co_spawn(ioc, Run(std::move(url), options, outcome.response),
                   [&outcome](std::exception_ptr e, Status status) {
                     outcome.done = true;
                     outcome.status = e ? InternalError("HTTP client failed unexpectedly") : std::move(status);
                   });
    // The stream deadlines cover connecting and the exchange; this bounds
    // name resolution too. Whatever is pending is dropped with the context.
    ioc.run_for(options.timeout + std::chrono::milliseconds(100));
  } catch (const std::exception& e) {
    return InternalError(std::string("HTTP client failed: ") + e.what());
  }
  if (!outcome.done) return UnavailableError("timed out fetching from " + host);
  if (!outcome.status.ok()) return outcome.status;
  return std::move(outcome.response);
}

Result<ClientResponse> HttpGet(std::string_view url, std::chrono::milliseconds timeout) {
  ClientOptions options;
  options.timeout = timeout;
  return HttpGet(url, options);
}

}  // namespace bevan::http
