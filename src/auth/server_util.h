// Small helpers of the authorisation server: randomness, hashing, base64,
// form encoding. Internal to src/auth (the server, users, clients).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/percent.h"
#include "common/status.h"

namespace bevan::auth::internal {

// `n` bytes from OpenSSL's CSPRNG. Aborts if the generator fails (continuing
// without randomness would hand out guessable codes).
std::string RandomBytes(size_t n);
// 32 random bytes, base64url without padding (43 characters).
std::string RandomToken();

std::string Sha256(std::string_view data);                    // 32 raw bytes
std::optional<std::string> Base64Decode(std::string_view s);  // standard alphabet, padding required

// Constant-time for equal lengths (OpenSSL CRYPTO_memcmp); the length is not secret.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

// application/x-www-form-urlencoded (also query strings). Limits: at most
// `max_fields` fields, each name and value at most `max_value` bytes after
// decoding; a repeated name is an error (OAuth 2.0 forbids repeats). Errors
// are InvalidArgument naming the problem (never echoing values).
using Form = std::vector<std::pair<std::string, std::string>>;
Result<Form> ParseForm(std::string_view body, size_t max_fields = 32, size_t max_value = 4096);
std::string_view FormValue(const Form& form, std::string_view name);
bool FormHas(const Form& form, std::string_view name);

using ::bevan::PercentDecode;  // common/percent.h
using ::bevan::PercentEncode;

// HTML-escapes &, <, >, ", '.
std::string HtmlEscape(std::string_view s);

Result<std::string> ReadFile(const std::string& path, size_t max_bytes = 4u << 20);

// Splits on single spaces, dropping empties.
std::vector<std::string> SplitSpaces(std::string_view s);
std::string JoinSpaces(const std::vector<std::string>& parts);

}  // namespace bevan::auth::internal
