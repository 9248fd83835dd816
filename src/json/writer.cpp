// Serialisation. The writer appends into a buffer it grows in large steps and
// fills through a raw pointer; strings are scanned eight bytes at a time for
// characters that need escaping (most FHIR strings have none).
#include <cstring>

#include "json/json.h"
#include "json/json_internal.h"

namespace bevan::json {

namespace {

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out), pos_(out.size()) {}
  ~Writer() { out_.resize(pos_); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void Reserve(size_t n) {
    if (out_.size() - pos_ < n) out_.resize(std::max(out_.size() * 2, pos_ + n + 256));
  }
  void Put(char c) {
    Reserve(1);
    out_[pos_++] = c;
  }
  void PutUnchecked(char c) { out_[pos_++] = c; }
  void Append(std::string_view s) {
    Reserve(s.size());
    std::memcpy(out_.data() + pos_, s.data(), s.size());
    pos_ += s.size();
  }

  void String(const Value& v) {
    std::string_view raw = v.raw_escaped();
    if (!raw.empty()) {
      Reserve(raw.size() + 2);
      PutUnchecked('"');
      std::memcpy(out_.data() + pos_, raw.data(), raw.size());
      pos_ += raw.size();
      PutUnchecked('"');
      return;
    }
    std::string_view s = v.as_string();
    size_t clean = v.needs_no_escaping() ? s.size() : CleanPrefix(s);
    Reserve(s.size() + 2);
    PutUnchecked('"');
    std::memcpy(out_.data() + pos_, s.data(), clean);
    pos_ += clean;
    if (clean < s.size()) {
      // Rare: escape the rest through the general routine.
      std::string tail;
      internal::AppendEscaped(s.substr(clean), tail);
      Append(tail);
      Put('"');
      return;
    }
    PutUnchecked('"');
  }

  void Compact(const Value& v) {
    switch (v.kind()) {
      case Kind::kNull: Append("null"); return;
      case Kind::kBool: Append(v.as_bool() ? std::string_view("true") : std::string_view("false")); return;
      case Kind::kNumber: Append(v.number_literal()); return;
      case Kind::kString: String(v); return;
      case Kind::kArray: {
        Put('[');
        bool first = true;
        for (const Value& item : v.items()) {
          if (!first) Put(',');
          first = false;
          Compact(item);
        }
        Put(']');
        return;
      }
      case Kind::kObject: {
        Put('{');
        bool first = true;
        for (const Member& m : v.members()) {
          if (!first) Put(',');
          first = false;
          String(m.key);
          Put(':');
          Compact(m.value);
        }
        Put('}');
        return;
      }
    }
  }

  void Indent(int level) {
    Reserve(1 + static_cast<size_t>(level) * 2);
    PutUnchecked('\n');
    std::memset(out_.data() + pos_, ' ', static_cast<size_t>(level) * 2);
    pos_ += static_cast<size_t>(level) * 2;
  }

  void Pretty(const Value& v, int level) {
    switch (v.kind()) {
      case Kind::kArray: {
        if (v.size() == 0) {
          Append("[]");
          return;
        }
        Put('[');
        bool first = true;
        for (const Value& item : v.items()) {
          if (!first) Put(',');
          first = false;
          Indent(level + 1);
          Pretty(item, level + 1);
        }
        Indent(level);
        Put(']');
        return;
      }
      case Kind::kObject: {
        if (v.size() == 0) {
          Append("{}");
          return;
        }
        Put('{');
        bool first = true;
        for (const Member& m : v.members()) {
          if (!first) Put(',');
          first = false;
          Indent(level + 1);
          String(m.key);
          Append(": ");
          Pretty(m.value, level + 1);
        }
        Indent(level);
        Put('}');
        return;
      }
      default: Compact(v);
    }
  }

 private:
  // Length of the longest prefix of `s` that needs no escaping.
  static size_t CleanPrefix(std::string_view s) {
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHigh = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t x;
      std::memcpy(&x, s.data() + i, 8);
      uint64_t quote = x ^ (kOnes * '"');
      uint64_t slash = x ^ (kOnes * '\\');
      uint64_t bad = ((x - kOnes * 0x20) & ~x) | ((quote - kOnes) & ~quote) | ((slash - kOnes) & ~slash);
      if (bad & kHigh) break;
    }
    for (; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c == '"' || c == '\\') break;
    }
    return i;
  }

  std::string& out_;
  size_t pos_;
};

}  // namespace

void Write(const Value& v, std::string& out, const WriteOptions& options) {
  if (out.capacity() - out.size() < 4096) out.reserve(out.size() + 4096);
  Writer w(out);
  if (options.pretty) {
    w.Pretty(v, 0);
  } else {
    w.Compact(v);
  }
}

std::string ToString(const Value& v, const WriteOptions& options) {
  std::string out;
  Write(v, out, options);
  return out;
}

void WriteString(std::string_view s, std::string& out) {
  out += '"';
  internal::AppendEscaped(s, out);
  out += '"';
}

}  // namespace bevan::json
