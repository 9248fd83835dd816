#include "common/percent.h"

#include "common/hex.h"

namespace bevan {

std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space, bool allow_nul) {
  // Most path segments and parameters have nothing to decode.
  if (s.find('%') == std::string_view::npos && (!plus_is_space || s.find('+') == std::string_view::npos)) {
    return std::string(s);
  }
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = HexDigitValue(s[i + 1]), lo = HexDigitValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      char d = static_cast<char>(hi * 16 + lo);
      if (d == '\0' && !allow_nul) return std::nullopt;
      out += d;
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '-' || u == '.' ||
        u == '_' || u == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

}  // namespace bevan
