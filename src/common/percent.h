// Percent-encoding (RFC 3986) for URLs, query strings and form bodies: one
// implementation for the REST router, the search parser and the
// authorisation server.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bevan {

// Decodes `s`: "%XX" (either case) to its byte, '+' to a space when
// `plus_is_space` (form bodies and query strings). nullopt on a truncated or
// non-hex escape, and on an escaped NUL unless `allow_nul`.
std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space, bool allow_nul = false);

// Encodes every byte but RFC 3986's unreserved ones (ASCII letters, digits,
// '-', '.', '_', '~') as "%XX" (upper case).
std::string PercentEncode(std::string_view s);

}  // namespace bevan
