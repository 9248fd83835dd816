#include <charconv>

#include "json/json.h"

namespace bevan::json {

Result<std::vector<std::string>> ParsePointer(std::string_view pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer[0] != '/') return InvalidArgumentError("JSON Pointer must be empty or start with '/'");
  size_t i = 1;
  std::string token;
  for (;;) {
    token.clear();
    while (i < pointer.size() && pointer[i] != '/') {
      char c = pointer[i];
      if (c == '~') {
        if (i + 1 >= pointer.size() || (pointer[i + 1] != '0' && pointer[i + 1] != '1')) {
          return InvalidArgumentError("invalid escape in JSON Pointer at position " + std::to_string(i) +
                                      " (only ~0 and ~1 are allowed)");
        }
        token += pointer[i + 1] == '0' ? '~' : '/';
        i += 2;
      } else {
        token += c;
        ++i;
      }
    }
    tokens.push_back(token);
    if (i >= pointer.size()) break;
    ++i;  // skip '/'
  }
  return tokens;
}

Result<const Value*> ResolvePointer(const Value& root, std::string_view pointer) {
  ASSIGN_OR_RETURN(std::vector<std::string> tokens, ParsePointer(pointer));
  const Value* cur = &root;
  for (const std::string& t : tokens) {
    if (cur->is_object()) {
      cur = cur->Find(t);
    } else if (cur->is_array()) {
      // RFC 6901: decimal digits, no leading zeros (except "0"); "-" is past the end.
      if (t.empty() || (t.size() > 1 && t[0] == '0')) return static_cast<const Value*>(nullptr);
      size_t index = 0;
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), index);
      if (ec != std::errc() || p != t.data() + t.size() || index >= cur->size()) {
        return static_cast<const Value*>(nullptr);
      }
      cur = &cur->items()[index];
    } else {
      return static_cast<const Value*>(nullptr);
    }
    if (!cur) return static_cast<const Value*>(nullptr);
  }
  return cur;
}

}  // namespace bevan::json
