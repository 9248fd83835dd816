// A small blocking HTTP/1.1 GET client, for fetching small documents from
// other servers (an OpenID provider's configuration and JWKS). One request
// per call, one connection per request (no pooling), no redirects followed,
// no compression asked for.
//
// https verifies the server's certificate chain against the system CA store
// (or `ca_file`) and its name (DNS or IP subject alternative name), with SNI
// and TLS 1.2 or later.
//
// Only client.cpp includes Beast; this header does not include Boost.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "http/message.h"

namespace bevan::http {

struct ClientOptions {
  // The whole exchange (resolve, connect, TLS handshake, request, response)
  // must finish within this time.
  std::chrono::milliseconds timeout{5000};
  size_t max_body_bytes = 1u << 20;     // a larger response body is an error
  size_t max_header_bytes = 16 * 1024;  // likewise for the response header
  // PEM file of CA certificates to trust instead of the system store (tests,
  // private CAs). Empty: the system store.
  std::string ca_file;
};

struct ClientResponse {
  int status = 0;
  Headers headers;  // in the order received
  std::string body;

  std::string_view Header(std::string_view name) const { return FindHeader(headers, name); }
};

// A parsed absolute http(s) URL.
struct Url {
  bool https = false;
  std::string host;  // without brackets for IPv6 literals
  uint16_t port = 0;
  std::string target;  // path and query, "/" at least
};

// Parses "http://host[:port]/path?query" or "https://...". A fragment is
// dropped; user information ("user@host") is refused. InvalidArgument when
// malformed.
Result<Url> ParseUrl(std::string_view url);

// GETs `url` and returns the response whatever its status (a 404 is a
// response, not an error). Errors: InvalidArgument (bad URL), Unavailable
// (resolution, connection or TLS failure, certificate rejected, timeout),
// ResourceExhausted (body or header over the limit), IoError (malformed
// response). Thread-safe: calls share nothing.
Result<ClientResponse> HttpGet(std::string_view url, const ClientOptions& options);
Result<ClientResponse> HttpGet(std::string_view url, std::chrono::milliseconds timeout);

}  // namespace bevan::http
