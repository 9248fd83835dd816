#include "json/json.h"

#include <charconv>
#include <cstring>

#include "common/hex.h"
#include "json/json_internal.h"

namespace bevan::json {

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kNull: return "null";
    case Kind::kBool: return "boolean";
    case Kind::kNumber: return "number";
    case Kind::kString: return "string";
    case Kind::kArray: return "array";
    case Kind::kObject: return "object";
  }
  return "unknown";
}

Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.size_ = b ? 1 : 0;
  return v;
}

Value Value::NumberLiteral(std::string_view literal) {
  Value v;
  v.kind_ = Kind::kNumber;
  v.str_ = literal.data();
  v.size_ = static_cast<uint32_t>(literal.size());
  return v;
}

Value Value::StringRef(std::string_view s) {
  Value v;
  v.kind_ = Kind::kString;
  v.str_ = s.data();
  v.size_ = static_cast<uint32_t>(s.size());
  return v;
}

Value Value::ArrayRef(const Value* items, uint32_t n) {
  Value v;
  v.kind_ = Kind::kArray;
  v.items_ = items;
  v.size_ = n;
  return v;
}

Value Value::ObjectRef(const Member* members, uint32_t n) {
  Value v;
  v.kind_ = Kind::kObject;
  v.members_ = members;
  v.size_ = n;
  return v;
}

Value Value::StringWithSource(const RawStringNode* node) {
  Value v;
  v.kind_ = Kind::kString;
  v.raw_ = node;
  v.size_ = static_cast<uint32_t>(node->unescaped.size());
  v.has_raw_ = true;
  return v;
}

std::string_view Value::raw_escaped() const { return (is_string() && has_raw_) ? raw_->raw : std::string_view(); }

std::optional<int64_t> Value::AsInt64() const {
  if (!is_number()) return std::nullopt;
  std::string_view s = number_literal();
  int64_t out = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return out;
}

std::optional<double> Value::AsDouble() const {
  if (!is_number()) return std::nullopt;
  std::string_view s = number_literal();
  double out = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (p != s.data() + s.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) return std::nullopt;
  return out;
}

const Value* Value::Find(std::string_view key) const {
  for (const Member& m : members()) {
    if (m.name() == key) return &m.value;
  }
  return nullptr;
}

bool Value::operator==(const Value& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kNull: return true;
    case Kind::kBool: return as_bool() == other.as_bool();
    case Kind::kNumber: return number_literal() == other.number_literal();
    case Kind::kString: return as_string() == other.as_string();
    case Kind::kArray: {
      if (size_ != other.size_) return false;
      for (uint32_t i = 0; i < size_; ++i) {
        if (!(items_[i] == other.items_[i])) return false;
      }
      return true;
    }
    case Kind::kObject: {
      if (size_ != other.size_) return false;
      for (uint32_t i = 0; i < size_; ++i) {
        if (members_[i].name() != other.members_[i].name() || !(members_[i].value == other.members_[i].value)) {
          return false;
        }
      }
      return true;
    }
  }
  return false;
}

bool IsValidNumberLiteral(std::string_view s) {
  size_t i = 0, n = s.size();
  auto digit = [&](size_t k) { return k < n && s[k] >= '0' && s[k] <= '9'; };
  if (i < n && s[i] == '-') ++i;
  if (!digit(i)) return false;
  if (s[i] == '0') {
    ++i;
  } else {
    while (digit(i)) ++i;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  return i == n;
}

bool IsValidUtf8(std::string_view s, size_t* bad_offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    if (i + len > n) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) {
        if (bad_offset) *bad_offset = i;
        return false;
      }
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

namespace internal {

namespace {

bool ReadHex4(std::string_view raw, size_t at, uint32_t* out) {
  if (at + 4 > raw.size()) return false;
  uint32_t v = 0;
  for (size_t k = 0; k < 4; ++k) {
    int h = HexDigitValue(raw[at + k]);
    if (h < 0) return false;
    v = (v << 4) | static_cast<uint32_t>(h);
  }
  *out = v;
  return true;
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// 0: copy as is; 1: needs escaping.
struct EscapeTable {
  unsigned char needs[256] = {};
  constexpr EscapeTable() {
    for (int c = 0; c < 0x20; ++c) needs[c] = 1;
    needs[static_cast<unsigned char>('"')] = 1;
    needs[static_cast<unsigned char>('\\')] = 1;
  }
};
constexpr EscapeTable kEscape;
}  // namespace

bool Unescape(std::string_view raw, std::string& out, size_t* bad_offset, std::string* reason) {
  size_t i = 0;
  while (i < raw.size()) {
    const char* bs = static_cast<const char*>(std::memchr(raw.data() + i, '\\', raw.size() - i));
    size_t stop = bs ? static_cast<size_t>(bs - raw.data()) : raw.size();
    out.append(raw.data() + i, stop - i);
    if (!bs) break;
    i = stop;
    if (i + 1 >= raw.size()) {
      *bad_offset = i;
      *reason = "invalid escape at end of string";
      return false;
    }
    char e = raw[i + 1];
    switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        uint32_t cp;
        if (!ReadHex4(raw, i + 2, &cp)) {
          *bad_offset = i;
          *reason = "invalid \\u escape";
          return false;
        }
        size_t used = 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo;
          if (i + 7 < raw.size() && raw[i + 6] == '\\' && raw[i + 7] == 'u' && ReadHex4(raw, i + 8, &lo) &&
              lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            used = 12;
          } else {
            *bad_offset = i;
            *reason = "unpaired UTF-16 surrogate in \\u escape";
            return false;
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          *bad_offset = i;
          *reason = "unpaired UTF-16 surrogate in \\u escape";
          return false;
        }
        AppendUtf8(cp, out);
        i += used;
        continue;
      }
      default:
        *bad_offset = i;
        *reason = std::string("invalid escape '\\") + e + "'";
        return false;
    }
    i += 2;
  }
  return true;
}

void AppendEscaped(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (!kEscape.needs[c]) continue;
    out.append(s.data() + start, i - start);
    start = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        char buf[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(buf, 6);
      }
    }
  }
  out.append(s.data() + start, s.size() - start);
}

Value MakeRawString(Arena& arena, std::string_view unescaped, std::string_view raw) {
  auto* node = arena.AllocateArray<RawStringNode>(1);
  node->unescaped = unescaped;
  node->raw = arena.CopyString(raw);
  return Value::StringWithSource(node);
}

}  // namespace internal
}  // namespace bevan::json
