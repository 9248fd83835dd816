#include "auth/server_util.h"

#include "auth/jwt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace bevan::auth::internal {

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    std::fputs("bevan: the random number generator failed\n", stderr);
    std::abort();
  }
  return out;
}

std::string RandomToken() { return Base64UrlEncode(RandomBytes(32)); }

std::string Sha256(std::string_view data) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

namespace {

int B64Index(char c, bool url) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (url ? c == '-' : c == '+') return 62;
  if (url ? c == '_' : c == '/') return 63;
  return -1;
}

std::optional<std::string> DecodeBase64(std::string_view s, bool url) {
  std::string out;
  out.reserve(s.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < s.size() && s[i] != '='; ++i) {
    int v = B64Index(s[i], url);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  size_t data_chars = i;
  size_t pad = s.size() - i;
  for (; i < s.size(); ++i) {
    if (s[i] != '=') return std::nullopt;
  }
  if (data_chars % 4 == 1) return std::nullopt;
  if (!url && (data_chars + pad) % 4 != 0) return std::nullopt;
  if (pad > 2) return std::nullopt;
  // Leftover bits must be zero (canonical encoding).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

}  // namespace

std::optional<std::string> Base64Decode(std::string_view s) { return DecodeBase64(s, false); }

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<Form> ParseForm(std::string_view body, size_t max_fields, size_t max_value) {
  Form form;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t amp = body.find('&', pos);
    if (amp == std::string_view::npos) amp = body.size();
    std::string_view part = body.substr(pos, amp - pos);
    pos = amp + 1;
    if (part.empty()) {
      if (amp == body.size()) break;
      continue;
    }
    if (form.size() >= max_fields) return InvalidArgumentError("too many form fields");
    size_t eq = part.find('=');
    std::string_view raw_name = part.substr(0, eq);
    std::string_view raw_value = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    auto name = PercentDecode(raw_name, true, /*allow_nul=*/true);
    auto value = PercentDecode(raw_value, true, /*allow_nul=*/true);
    if (!name || !value) return InvalidArgumentError("malformed percent-encoding in the form");
    if (name->size() > 64) return InvalidArgumentError("form field name too long");
    if (value->size() > max_value) return InvalidArgumentError("form field '" + *name + "' too long");
    for (const auto& [n, v] : form) {
      if (n == *name) return InvalidArgumentError("form field '" + *name + "' repeated");
    }
    form.emplace_back(std::move(*name), std::move(*value));
  }
  return form;
}

std::string_view FormValue(const Form& form, std::string_view name) {
  for (const auto& [n, v] : form) {
    if (n == name) return v;
  }
  return {};
}

bool FormHas(const Form& form, std::string_view name) {
  for (const auto& [n, v] : form) {
    if (n == name) return true;
  }
  return false;
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Result<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot read " + path);
  std::string data;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > max_bytes)
      return ResourceExhaustedError(path + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  return data;
}

std::vector<std::string> SplitSpaces(std::string_view s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t sp = s.find(' ', pos);
    if (sp == std::string_view::npos) sp = s.size();
    if (sp > pos) out.emplace_back(s.substr(pos, sp - pos));
    pos = sp + 1;
  }
  return out;
}

std::string JoinSpaces(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += ' ';
    out += p;
  }
  return out;
}

}  // namespace bevan::auth::internal
