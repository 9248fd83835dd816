// A small XML reader for the conformance suites' test files: elements,
// attributes, text, comments, processing instructions, CDATA and the
// predefined and numeric character references. No DTDs or namespaces
// (prefixes are kept as part of names). Enough for HL7's published test
// files, not a general XML parser.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace bevan::testing {

struct XmlElement {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;
  std::vector<std::unique_ptr<XmlElement>> children;
  std::string text;  // all character data directly inside, concatenated

  // The attribute's value, or "" when absent.
  std::string_view Attribute(std::string_view key) const {
    for (const auto& [k, v] : attributes) {
      if (k == key) return v;
    }
    return {};
  }
  bool HasAttribute(std::string_view key) const {
    for (const auto& [k, v] : attributes) {
      if (k == key) return true;
    }
    return false;
  }
  // Direct children named `child`.
  std::vector<const XmlElement*> Children(std::string_view child) const {
    std::vector<const XmlElement*> out;
    for (const auto& c : children) {
      if (c->name == child) out.push_back(c.get());
    }
    return out;
  }
};

class XmlReader {
 public:
  // Parses a document and returns its root element.
  static Result<std::unique_ptr<XmlElement>> Parse(std::string_view text) {
    XmlReader r(text);
    r.SkipMisc();
    auto root = std::make_unique<XmlElement>();
    if (!r.ParseElement(root.get())) return InvalidArgumentError("XML error at byte " + std::to_string(r.at_));
    return root;
  }

 private:
  explicit XmlReader(std::string_view text) : s_(text) {}

  bool StartsWith(std::string_view p) const { return s_.substr(at_, p.size()) == p; }

  // Skips whitespace, comments, processing instructions and doctype.
  void SkipMisc() {
    for (;;) {
      while (at_ < s_.size() && std::string_view(" \t\r\n").find(s_[at_]) != std::string_view::npos) ++at_;
      if (StartsWith("<!--")) {
        size_t e = s_.find("-->", at_ + 4);
        at_ = e == std::string_view::npos ? s_.size() : e + 3;
      } else if (StartsWith("<?") || StartsWith("<!DOCTYPE")) {
        size_t e = s_.find('>', at_);
        at_ = e == std::string_view::npos ? s_.size() : e + 1;
      } else {
        return;
      }
    }
  }

  static void Decode(std::string_view raw, std::string& out) {
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '&') {
        out.push_back(raw[i]);
        continue;
      }
      size_t semi = raw.find(';', i);
      if (semi == std::string_view::npos) {
        out.push_back('&');
        continue;
      }
      std::string_view ent = raw.substr(i + 1, semi - i - 1);
      if (ent == "lt") {
        out.push_back('<');
      } else if (ent == "gt") {
        out.push_back('>');
      } else if (ent == "amp") {
        out.push_back('&');
      } else if (ent == "quot") {
        out.push_back('"');
      } else if (ent == "apos") {
        out.push_back('\'');
      } else if (!ent.empty() && ent[0] == '#') {
        unsigned long cp = ent.size() > 1 && ent[1] == 'x' ? std::stoul(std::string(ent.substr(2)), nullptr, 16)
                                                           : std::stoul(std::string(ent.substr(1)));
        if (cp < 0x80) {
          out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
          out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
          out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
          out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
          out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
          out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
      } else {
        out.append(raw.substr(i, semi - i + 1));
      }
      i = semi;
    }
  }

  static bool IsNameChar(char c) { return std::string_view(" \t\r\n/>=").find(c) == std::string_view::npos; }

  bool ParseElement(XmlElement* e) {
    if (!StartsWith("<")) return false;
    ++at_;
    size_t start = at_;
    while (at_ < s_.size() && IsNameChar(s_[at_])) ++at_;
    e->name = std::string(s_.substr(start, at_ - start));
    for (;;) {
      while (at_ < s_.size() && std::string_view(" \t\r\n").find(s_[at_]) != std::string_view::npos) ++at_;
      if (at_ >= s_.size()) return false;
      if (StartsWith("/>")) {
        at_ += 2;
        return true;
      }
      if (s_[at_] == '>') {
        ++at_;
        break;
      }
      size_t ks = at_;
      while (at_ < s_.size() && IsNameChar(s_[at_])) ++at_;
      std::string key(s_.substr(ks, at_ - ks));
      while (at_ < s_.size() && s_[at_] != '=') ++at_;
      ++at_;
      while (at_ < s_.size() && s_[at_] != '"' && s_[at_] != '\'') ++at_;
      if (at_ >= s_.size()) return false;
      char q = s_[at_++];
      size_t ve = s_.find(q, at_);
      if (ve == std::string_view::npos) return false;
      std::string value;
      Decode(s_.substr(at_, ve - at_), value);
      e->attributes.emplace_back(std::move(key), std::move(value));
      at_ = ve + 1;
    }
    for (;;) {
      if (at_ >= s_.size()) return false;
      if (StartsWith("</")) {
        size_t end = s_.find('>', at_);
        if (end == std::string_view::npos) return false;
        at_ = end + 1;
        return true;
      }
      if (StartsWith("<!--")) {
        size_t end = s_.find("-->", at_ + 4);
        if (end == std::string_view::npos) return false;
        at_ = end + 3;
        continue;
      }
      if (StartsWith("<![CDATA[")) {
        size_t end = s_.find("]]>", at_ + 9);
        if (end == std::string_view::npos) return false;
        e->text.append(s_.substr(at_ + 9, end - at_ - 9));
        at_ = end + 3;
        continue;
      }
      if (StartsWith("<?")) {
        size_t end = s_.find("?>", at_);
        if (end == std::string_view::npos) return false;
        at_ = end + 2;
        continue;
      }
      if (s_[at_] == '<') {
        auto child = std::make_unique<XmlElement>();
        if (!ParseElement(child.get())) return false;
        e->children.push_back(std::move(child));
        continue;
      }
      size_t next = s_.find('<', at_);
      if (next == std::string_view::npos) return false;
      Decode(s_.substr(at_, next - at_), e->text);
      at_ = next;
    }
  }

  std::string_view s_;
  size_t at_ = 0;
};

}  // namespace bevan::testing
