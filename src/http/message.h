// HTTP requests and responses as plain values: the interface between the
// Beast-based server (server.cpp, the only file that includes Beast) and the
// layers above it, which never see Boost.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bevan::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Finds a header by case-insensitive name; empty if absent.
std::string_view FindHeader(const Headers& headers, std::string_view name);

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: "/fhir/Patient?name=x"
  std::string path;    // target without the query, percent-decoding left to the router
  std::string query;   // after '?', without it; empty when absent
  Headers headers;
  std::string body;
  std::string remote_address;  // peer IP, for audit and rate limits
  std::string request_id;      // X-Request-Id (the client's, or one the server made)

  std::string_view Header(std::string_view name) const { return FindHeader(headers, name); }
  // Sets `target` and splits it into `path` and `query` at the first '?'
  // (reusing the strings' capacity).
  void SetTarget(std::string_view t);
};

struct Response {
  int status = 200;
  // Each name once (SetHeader replaces). Connection and Content-Length are
  // the server's: a handler's are not sent.
  Headers headers;
  std::string body;
  // When set (and `body` empty): the body is this file, which the server
  // streams from disk in chunks rather than holding it in memory (export
  // downloads). Never gzipped.
  std::string body_file;

  void SetHeader(std::string name, std::string value);
  std::string_view Header(std::string_view name) const { return FindHeader(headers, name); }
};

// Handles one request. Called on an I/O thread for short work, or on the work
// pool for requests the server's `is_long` hook picks. Must not throw.
using Handler = std::function<void(const Request&, Response&)>;

// Handles one request that may finish later (e.g. after a group commit): it
// must call `done` exactly once, from any thread, after filling the
// response. `req` and `res` stay valid until then.
using AsyncHandler = std::function<void(const Request& req, Response& res, std::function<void()> done)>;

}  // namespace bevan::http
