// Internals shared by the parser and the writer. Not part of the API.
#pragma once

#include <string>
#include <string_view>

#include "common/arena.h"
#include "json/json.h"

namespace bevan::json::internal {

// Decodes the body of a JSON string literal (between the quotes) into `out`.
// On failure returns false with *bad_offset (relative to `raw`) and *reason.
bool Unescape(std::string_view raw, std::string& out, size_t* bad_offset, std::string* reason);

// Appends `s` canonically escaped, without quotes.
void AppendEscaped(std::string_view s, std::string& out);

// A string value that remembers its non-canonical source escaping.
Value MakeRawString(Arena& arena, std::string_view unescaped, std::string_view raw);

}  // namespace bevan::json::internal
