// gzip for response bodies (zlib).
#pragma once

#include <string>
#include <string_view>

namespace bevan::http {

// True if an Accept-Encoding header value allows gzip (q > 0).
bool AcceptsGzip(std::string_view accept_encoding);

// gzip-compresses `in`; false on a zlib failure (then send uncompressed).
bool Gzip(std::string_view in, std::string& out, int level = 1);

// Decompresses a gzip member (for tests and Content-Encoding: gzip requests);
// false if `in` is not valid gzip or inflates past `max_out` bytes.
bool Gunzip(std::string_view in, std::string& out, size_t max_out);

}  // namespace bevan::http
