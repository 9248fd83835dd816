#include "fhir/xhtml.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

namespace bevan::fhir {

namespace {

constexpr std::string_view kXhtmlNamespace = "http://www.w3.org/1999/xhtml";

// txt-1: HTML 4.0 chapters 7-11 and 15, <a>, <img>.
constexpr std::array<std::string_view, 55> kAllowed = {
    "a",      "abbr", "acronym", "address", "b",        "basefont", "bdo",   "big",   "blockquote", "br",    "caption",
    "center", "cite", "code",    "col",     "colgroup", "dd",       "del",   "dfn",   "dir",        "div",   "dl",
    "dt",     "em",   "font",    "h1",      "h2",       "h3",       "h4",    "h5",    "h6",         "hr",    "i",
    "img",    "ins",  "kbd",     "li",      "menu",     "ol",       "p",     "pre",   "q",          "s",     "samp",
    "small",  "span", "strike",  "strong",  "sub",      "sup",      "table", "tbody", "td",         "tfoot", "th"};
constexpr std::array<std::string_view, 6> kAllowedMore = {"thead", "tr", "tt", "u", "ul", "var"};

bool Allowed(std::string_view name) {
  return std::find(kAllowed.begin(), kAllowed.end(), name) != kAllowed.end() ||
         std::find(kAllowedMore.begin(), kAllowedMore.end(), name) != kAllowedMore.end();
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' || c == '.' ||
         static_cast<unsigned char>(c) >= 0x80;
}

// Decodes the character references of an attribute value (enough to see a
// hidden "javascript:"); false on a malformed reference.
bool DecodeEntities(std::string_view s, std::string& out) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos || semi == i + 1) return false;
    std::string_view ref = s.substr(i + 1, semi - i - 1);
    if (ref[0] == '#') {
      unsigned long cp = 0;
      bool hex = ref.size() > 1 && (ref[1] == 'x' || ref[1] == 'X');
      std::string_view digits = ref.substr(hex ? 2 : 1);
      if (digits.empty()) return false;
      for (char c : digits) {
        int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                : (hex && std::isxdigit(static_cast<unsigned char>(c)))
                    ? std::tolower(static_cast<unsigned char>(c)) - 'a' + 10
                    : -1;
        if (d < 0) return false;
        cp = cp * (hex ? 16 : 10) + static_cast<unsigned long>(d);
        if (cp > 0x10FFFF) return false;
      }
      out += cp < 0x80 ? static_cast<char>(cp) : '?';
    } else {
      for (char c : ref) {
        if (!std::isalnum(static_cast<unsigned char>(c))) return false;
      }
      if (ref == "lt")
        out += '<';
      else if (ref == "gt")
        out += '>';
      else if (ref == "amp")
        out += '&';
      else if (ref == "quot")
        out += '"';
      else if (ref == "apos")
        out += '\'';
      else
        out += '?';
    }
    i = semi;
  }
  return true;
}

bool UnsafeUrl(std::string_view value) {
  std::string compact;
  for (char c : value) {
    if (static_cast<unsigned char>(c) > 0x20) compact += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return compact.starts_with("javascript:") || compact.starts_with("vbscript:") ||
         compact.starts_with("data:text/html");
}

XhtmlCheck Problem(XhtmlProblem p, std::string message) { return {p, std::move(message)}; }

}  // namespace

XhtmlCheck CheckNarrativeXhtml(std::string_view x) {
  // The root: <div ...> in the XHTML namespace.
  if (!x.starts_with("<div") || x.size() < 5 || !(IsSpace(x[4]) || x[4] == '>' || x[4] == '/')) {
    return Problem(XhtmlProblem::kMalformed, "narrative must be an XHTML <div> element");
  }
  std::vector<std::string_view> stack;
  bool content = false;
  bool root_closed = false;
  size_t i = 0;
  while (i < x.size()) {
    char c = x[i];
    if (c != '<') {
      if (root_closed) {
        if (!IsSpace(c)) return Problem(XhtmlProblem::kMalformed, "content after the closing </div>");
        ++i;
        continue;
      }
      if (c == '&') {
        size_t semi = x.find(';', i);
        std::string decoded;
        if (semi == std::string_view::npos || !DecodeEntities(x.substr(i, semi - i + 1), decoded)) {
          return Problem(XhtmlProblem::kMalformed, "narrative is not well-formed: bad character reference");
        }
        content = true;
        i = semi + 1;
        continue;
      }
      if (c == '>') return Problem(XhtmlProblem::kMalformed, "narrative is not well-formed: stray '>'");
      if (!IsSpace(c) && !stack.empty()) content = true;
      ++i;
      continue;
    }
    if (x.substr(i, 4) == "<!--") {
      size_t end = x.find("-->", i + 4);
      if (end == std::string_view::npos) return Problem(XhtmlProblem::kMalformed, "unterminated comment");
      i = end + 3;
      continue;
    }
    if (root_closed) return Problem(XhtmlProblem::kMalformed, "content after the closing </div>");
    if (x.substr(i, 2) == "</") {
      size_t j = i + 2, start = j;
      while (j < x.size() && IsNameChar(x[j])) ++j;
      std::string_view name = x.substr(start, j - start);
      while (j < x.size() && IsSpace(x[j])) ++j;
      if (j >= x.size() || x[j] != '>') return Problem(XhtmlProblem::kMalformed, "malformed end tag");
      if (stack.empty() || stack.back() != name) {
        return Problem(XhtmlProblem::kMalformed,
                       "narrative is not well-formed: </" + std::string(name) + "> does not close the open element");
      }
      stack.pop_back();
      if (stack.empty()) root_closed = true;
      i = j + 1;
      continue;
    }
    if (x.substr(i, 2) == "<!" || x.substr(i, 2) == "<?") {
      return Problem(XhtmlProblem::kUnsafe, "narrative must not contain declarations or processing instructions");
    }
    // Start tag.
    size_t j = i + 1, start = j;
    while (j < x.size() && IsNameChar(x[j])) ++j;
    std::string_view name = x.substr(start, j - start);
    if (name.empty()) return Problem(XhtmlProblem::kMalformed, "narrative is not well-formed: '<' without a tag");
    std::string_view local = name.substr(name.rfind(':') == std::string_view::npos ? 0 : name.rfind(':') + 1);
    if (!Allowed(local)) {
      return Problem(XhtmlProblem::kUnsafe,
                     "element <" + std::string(name) + "> is not allowed in narrative (txt-1: basic formatting only)");
    }
    bool is_root = stack.empty();
    bool has_namespace = false;
    std::vector<std::string_view> seen;
    for (;;) {
      size_t k = j;
      while (j < x.size() && IsSpace(x[j])) ++j;
      if (j >= x.size()) return Problem(XhtmlProblem::kMalformed, "unterminated tag <" + std::string(name) + ">");
      if (x[j] == '>' || x.substr(j, 2) == "/>") break;
      if (j == k) return Problem(XhtmlProblem::kMalformed, "attributes must be separated by spaces");
      size_t a = j;
      while (j < x.size() && IsNameChar(x[j])) ++j;
      std::string_view attr = x.substr(a, j - a);
      if (attr.empty()) return Problem(XhtmlProblem::kMalformed, "malformed attribute in <" + std::string(name) + ">");
      while (j < x.size() && IsSpace(x[j])) ++j;
      if (j >= x.size() || x[j] != '=') {
        return Problem(XhtmlProblem::kMalformed, "attribute '" + std::string(attr) + "' has no value");
      }
      ++j;
      while (j < x.size() && IsSpace(x[j])) ++j;
      if (j >= x.size() || (x[j] != '"' && x[j] != '\'')) {
        return Problem(XhtmlProblem::kMalformed, "attribute '" + std::string(attr) + "' value must be quoted");
      }
      char q = x[j];
      size_t end = x.find(q, j + 1);
      if (end == std::string_view::npos) return Problem(XhtmlProblem::kMalformed, "unterminated attribute value");
      std::string_view raw = x.substr(j + 1, end - j - 1);
      j = end + 1;
      if (std::find(seen.begin(), seen.end(), attr) != seen.end()) {
        return Problem(XhtmlProblem::kMalformed, "duplicate attribute '" + std::string(attr) + "'");
      }
      seen.push_back(attr);
      if (raw.find('<') != std::string_view::npos) {
        return Problem(XhtmlProblem::kMalformed, "'<' in an attribute value");
      }
      std::string value;
      if (!DecodeEntities(raw, value)) return Problem(XhtmlProblem::kMalformed, "bad character reference");
      std::string lower(attr);
      for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (lower.size() > 2 && lower.starts_with("on")) {
        return Problem(XhtmlProblem::kUnsafe, "narrative contains an event handler attribute (" + lower + ")");
      }
      if (UnsafeUrl(value)) return Problem(XhtmlProblem::kUnsafe, "narrative contains a script URL");
      if (is_root && attr == "xmlns" && value == kXhtmlNamespace) has_namespace = true;
    }
    if (is_root && !has_namespace) {
      return Problem(XhtmlProblem::kMalformed,
                     "narrative <div> must declare xmlns=\"" + std::string(kXhtmlNamespace) + "\"");
    }
    if (!is_root) content = true;  // an element inside the div is content
    if (x[j] == '/') {
      if (is_root) root_closed = true;
      i = j + 2;
    } else {
      stack.push_back(name);
      i = j + 1;
    }
  }
  if (!stack.empty())
    return Problem(XhtmlProblem::kMalformed,
                   "narrative is not well-formed: unclosed <" + std::string(stack.back()) + ">");
  if (!content) return Problem(XhtmlProblem::kEmpty, "narrative has no content (txt-2)");
  return {};
}

}  // namespace bevan::fhir
