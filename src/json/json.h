// Bevan's JSON DOM: an arena-allocated tree that keeps what FHIR needs kept.
//
//  - Number literals are kept verbatim: `1.50`, `1e2` and `-0.0` are written
//    back exactly as they were read (FHIR decimals carry their precision).
//  - Object members keep their order.
//  - Strings are stored unescaped; a string whose escaping in the source
//    differs from the writer's canonical escaping also keeps its source form,
//    so parse + compact write gives back the input bytes of compact JSON.
//
// A Document owns its input buffer and arena; Values are small handles into
// them (16 bytes), valid for the Document's life. Documents are movable, not
// copyable, and not thread-safe while being modified; concurrent reads are safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/arena.h"
#include "common/status.h"

namespace bevan::json {

enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

std::string_view KindName(Kind kind);  // "null", "boolean", "number", "string", "array", "object"

struct Member;

// A string whose source escaping differs from the writer's canonical one:
// both forms are kept so that writing reproduces the input. Internal.
struct RawStringNode {
  std::string_view unescaped;
  std::string_view raw;  // between the quotes, as in the source
};

// A JSON value: a handle into a Document's storage. Default-constructed is null.
class Value {
 public:
  Value() = default;

  static Value Null() { return Value(); }
  static Value Bool(bool b);
  // `literal` must be a valid JSON number literal and outlive the Value (use
  // Document::MakeNumber to copy it into an arena).
  static Value NumberLiteral(std::string_view literal);
  // `s` is the unescaped text and must outlive the Value.
  static Value StringRef(std::string_view s);
  static Value ArrayRef(const Value* items, uint32_t n);
  static Value ObjectRef(const Member* members, uint32_t n);
  // A string known to need no escaping (no '"', '\\' or control characters):
  // the writer copies it as is. The parser makes these for backslash-free strings.
  static Value StringNoEscapes(std::string_view s) {
    Value v = StringRef(s);
    v.no_escapes_ = true;
    return v;
  }
  // A string that also carries its source escaping (see RawStringNode).
  static Value StringWithSource(const RawStringNode* node);

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_number() const { return kind_ == Kind::kNumber; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_object() const { return kind_ == Kind::kObject; }

  bool as_bool() const { return size_ != 0; }
  // The number literal exactly as written ("1.50").
  std::string_view number_literal() const { return is_number() ? std::string_view(str_, size_) : std::string_view(); }
  // The unescaped string ("" when not a string).
  std::string_view as_string() const;

  // Integer value of a number literal without fraction or exponent that fits
  // int64; nullopt otherwise.
  std::optional<int64_t> AsInt64() const;
  // Nearest double of a number literal (nullopt when not a number).
  std::optional<double> AsDouble() const;

  // Arrays.
  std::span<const Value> items() const {
    return is_array() ? std::span<const Value>(items_, size_) : std::span<const Value>();
  }
  // Objects.
  std::span<const Member> members() const;
  // The member named `key`, or null if absent or not an object. Linear scan:
  // FHIR objects are small.
  const Value* Find(std::string_view key) const;
  // Number of items or members (0 for scalars).
  uint32_t size() const { return (is_array() || is_object()) ? size_ : 0; }

  // Structural equality: same kinds, same number literals (textually), same
  // strings, arrays equal item-wise, objects equal member-wise in order.
  bool operator==(const Value& other) const;

  // Internal: the source form of a string whose escaping is not canonical, or
  // empty. Used by the writer.
  std::string_view raw_escaped() const;

 private:
  union {
    const char* str_ = nullptr;
    const Value* items_;
    const Member* members_;
    const RawStringNode* raw_;
  };
  uint32_t size_ = 0;
  Kind kind_ = Kind::kNull;
  bool has_raw_ = false;     // strings only: str_ is really raw_
  bool no_escapes_ = false;  // strings only: nothing to escape when written

 public:
  bool needs_no_escaping() const { return no_escapes_; }
};

struct Member {
  Value key;  // always a string
  Value value;
  std::string_view name() const { return key.as_string(); }
};

inline std::span<const Member> Value::members() const {
  return is_object() ? std::span<const Member>(members_, size_) : std::span<const Member>();
}

inline std::string_view Value::as_string() const {
  if (!is_string()) return {};
  return has_raw_ ? raw_->unescaped : std::string_view(str_, size_);
}

// Parse limits. Exceeding one is an error naming the limit.
struct ParseOptions {
  size_t max_size = 64u << 20;  // bytes
  uint32_t max_depth = 128;     // nesting of arrays and objects
};

// Where a parse error happened: byte offset, and 1-based line and column (in bytes).
struct ErrorLocation {
  size_t offset = 0;
  size_t line = 1;
  size_t column = 1;
};

// A parsed (or built) JSON document: owns the text it was parsed from and
// every node. The root is a Value.
class Document {
 public:
  Document();
  Document(Document&&) noexcept;
  Document& operator=(Document&&) noexcept;
  ~Document();

  // Parses `text` (copied into the document). Errors are InvalidArgument with
  // a message such as "invalid JSON at byte 17 (line 2, column 5): duplicate
  // key \"id\"" and the location in *where when given.
  static Result<Document> Parse(std::string_view text, const ParseOptions& options = {},
                                ErrorLocation* where = nullptr);

  const Value& root() const { return root_; }
  void set_root(Value v) { root_ = v; }

  Arena& arena() { return arena_; }

  // Builders: values whose storage lives in this document's arena.
  Value MakeString(std::string_view s);
  // InvalidArgument unless `literal` is a valid JSON number literal.
  Result<Value> MakeNumber(std::string_view literal);
  Value MakeInt(int64_t n);
  Value MakeArray(std::span<const Value> items);
  Value MakeObject(std::span<const Member> members);
  // A copy of `object` with `key` set to `value` (replacing it in place if
  // present, else appended). `object` must be an object.
  Value WithMember(const Value& object, std::string_view key, Value value);
  // A copy of `object` without `key` (unchanged if absent).
  Value WithoutMember(const Value& object, std::string_view key);
  // Deep-copies a value from another document into this one.
  Value Import(const Value& v);

 private:
  friend class Parser;
  explicit Document(size_t first_block);

  // Holds the input text (plus simdjson's padding) and every node; values
  // point into it. Blocks never move, so neither do values when the
  // Document is moved.
  Arena arena_;
  Value root_;
};

// Returns true if `s` is a valid JSON number literal (RFC 8259 grammar).
bool IsValidNumberLiteral(std::string_view s);

// Serialisation.
struct WriteOptions {
  bool pretty = false;  // two-space indent, "key": value, newline-separated
};
void Write(const Value& v, std::string& out, const WriteOptions& options = {});
std::string ToString(const Value& v, const WriteOptions& options = {});
// Appends `s` as a JSON string literal (quoted, canonically escaped).
void WriteString(std::string_view s, std::string& out);

// JSON Pointer (RFC 6901): "/entry/0/resource". Returns null when the path
// does not resolve; InvalidArgument when the pointer is malformed.
Result<const Value*> ResolvePointer(const Value& root, std::string_view pointer);
// Splits a pointer into unescaped reference tokens ("~1" -> "/", "~0" -> "~").
Result<std::vector<std::string>> ParsePointer(std::string_view pointer);

// Checks that `s` is well-formed UTF-8 (no overlongs, surrogates or code
// points above U+10FFFF). On failure *bad_offset is the first bad byte.
bool IsValidUtf8(std::string_view s, size_t* bad_offset = nullptr);

}  // namespace bevan::json
