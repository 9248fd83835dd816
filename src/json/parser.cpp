// JSON text to Document, on simdjson's On-Demand API.
//
// simdjson's stage 1 finds the structure and validates UTF-8 and control
// characters at several GB/s; we then walk the tokens and build the arena DOM.
// Scalars are taken from their raw tokens: strings without a backslash and all
// number literals point straight into the document's own copy of the input,
// so most of a FHIR resource is never copied.
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "json/json.h"
#include "json/json_internal.h"

namespace bevan::json {

namespace od = simdjson::ondemand;

class Parser {
 public:
  Parser(Document& doc, const ParseOptions& options) : doc_(doc), options_(options) {}

  Status Run(std::string_view text, ErrorLocation* where);

 private:
  Status ParseValue(od::value value, Value* out, uint32_t depth);
  Status ParseObject(od::object object, Value* out, uint32_t depth);
  Status ParseArray(od::array array, Value* out, uint32_t depth);
  Status ParseScalar(std::string_view token, od::json_type type, Value* out);
  Status MakeStringValue(const char* begin, const char* end, Value* out);
  // `key_pos` are the source positions of the keys' opening quotes.
  Status CheckDuplicates(const Member* members, const char* const* key_pos, uint32_t n);
  Status Fail(const char* at, std::string message);
  Status FailSimd(simdjson::error_code error);

  Document& doc_;
  const ParseOptions& options_;
  const char* base_ = nullptr;
  size_t size_ = 0;
  od::document* sdoc_ = nullptr;
  std::vector<Value> value_stack_;
  std::vector<Member> member_stack_;
  std::vector<const char*> key_pos_stack_;
  std::vector<std::string_view> key_scratch_;
  std::string escape_scratch_;
  size_t error_offset_ = 0;
};

namespace {

thread_local od::parser* tls_parser = nullptr;

od::parser& ThreadParser() {
  // One parser per thread, reused: its buffers grow to the largest document
  // seen. Intentionally leaked at thread exit only if the thread never ends;
  // a thread_local unique_ptr frees it.
  thread_local std::unique_ptr<od::parser> owner;
  if (!tls_parser) {
    owner = std::make_unique<od::parser>();
    tls_parser = owner.get();
  }
  return *tls_parser;
}

bool IsJsonSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// First offset of a raw control character inside a string literal, for
// simdjson's UNESCAPED_CHARS error (which has no location).
size_t FindUnescapedControl(std::string_view text) {
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      } else if (c < 0x20) {
        return i;
      }
    } else if (c == '"') {
      in_string = true;
    }
  }
  return text.size();
}

}  // namespace

Status Parser::Fail(const char* at, std::string message) {
  error_offset_ = at ? static_cast<size_t>(at - base_) : size_;
  if (error_offset_ > size_) error_offset_ = size_;
  return InvalidArgumentError(std::move(message));
}

Status Parser::FailSimd(simdjson::error_code error) {
  std::string message;
  const char* at = nullptr;
  switch (error) {
    case simdjson::UTF8_ERROR: {
      size_t bad = size_;
      IsValidUtf8(std::string_view(base_, size_), &bad);
      at = base_ + bad;
      message = "invalid UTF-8";
      break;
    }
    case simdjson::UNESCAPED_CHARS:
      at = base_ + FindUnescapedControl(std::string_view(base_, size_));
      message = "unescaped control character in string";
      break;
    case simdjson::UNCLOSED_STRING:
      message = "unclosed string";
      at = base_ + size_;
      break;
    case simdjson::EMPTY:
      message = "empty document";
      at = base_ + size_;
      break;
    default: {
      message = simdjson::error_message(error);
      if (!message.empty()) message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
      const char* loc = nullptr;
      if (sdoc_ && sdoc_->current_location().get(loc) == simdjson::SUCCESS) at = loc;
      break;
    }
  }
  return Fail(at, std::move(message));
}

Status Parser::Run(std::string_view text, ErrorLocation* where) {
  Status st = [&]() -> Status {
    base_ = text.data();
    size_ = text.size();
    if (text.size() > options_.max_size) {
      return Fail(base_ + options_.max_size, "document is " + std::to_string(text.size()) +
                                                 " bytes, over the limit of " + std::to_string(options_.max_size));
    }
    // The document keeps its own padded copy: values point into it.
    char* copy = static_cast<char*>(doc_.arena_.Allocate(text.size() + simdjson::SIMDJSON_PADDING, 64));
    std::memcpy(copy, text.data(), text.size());
    std::memset(copy + text.size(), 0, simdjson::SIMDJSON_PADDING);
    base_ = copy;

    od::parser& parser = ThreadParser();
    // Our own depth check fires first; simdjson's limit is a backstop.
    if (parser.max_depth() < options_.max_depth + 2) {
      if (auto e = parser.allocate(std::max<size_t>(parser.capacity(), 4096), options_.max_depth + 2)) {
        return FailSimd(e);
      }
    }
    od::document sdoc;
    simdjson::padded_string_view input(base_, size_, size_ + simdjson::SIMDJSON_PADDING);
    if (auto e = parser.iterate(input).get(sdoc)) return FailSimd(e);
    sdoc_ = &sdoc;

    od::json_type type;
    if (auto e = sdoc.type().get(type)) return FailSimd(e);
    Value root;
    switch (type) {
      case od::json_type::object: {
        od::object object;
        if (auto e = sdoc.get_object().get(object)) return FailSimd(e);
        RETURN_IF_ERROR(ParseObject(object, &root, 1));
        break;
      }
      case od::json_type::array: {
        od::array array;
        if (auto e = sdoc.get_array().get(array)) return FailSimd(e);
        RETURN_IF_ERROR(ParseArray(array, &root, 1));
        break;
      }
      default: {
        std::string_view token;
        if (auto e = sdoc.raw_json_token().get(token)) return FailSimd(e);
        // The raw token runs over trailing whitespace up to the next token.
        if (token.data() + token.size() != base_ + size_) {
          return Fail(token.data() + token.size(), "unexpected content after the JSON value");
        }
        RETURN_IF_ERROR(ParseScalar(TrimRight(token), type, &root));
        break;
      }
    }
    if (type == od::json_type::object || type == od::json_type::array) {
      // Past the root container there must be nothing but whitespace.
      const char* loc = nullptr;
      if (sdoc.current_location().get(loc) == simdjson::SUCCESS) {
        return Fail(loc, "unexpected content after the JSON value");
      }
    }
    doc_.root_ = root;
    return Status::Ok();
  }();
  if (!st.ok()) {
    ErrorLocation loc;
    loc.offset = error_offset_;
    for (size_t i = 0; i < error_offset_ && i < size_; ++i) {
      if (base_[i] == '\n') {
        ++loc.line;
        loc.column = 1;
      } else {
        ++loc.column;
      }
    }
    if (where) *where = loc;
    return InvalidArgumentError("invalid JSON at byte " + std::to_string(loc.offset) + " (line " +
                                std::to_string(loc.line) + ", column " + std::to_string(loc.column) +
                                "): " + st.message());
  }
  return st;
}

Status Parser::ParseValue(od::value value, Value* out, uint32_t depth) {
  od::json_type type;
  if (auto e = value.type().get(type)) return FailSimd(e);
  switch (type) {
    case od::json_type::object: {
      if (depth >= options_.max_depth) {
        return Fail(value.raw_json_token().data(),
                    "nesting deeper than the limit of " + std::to_string(options_.max_depth));
      }
      od::object object;
      if (auto e = value.get_object().get(object)) return FailSimd(e);
      return ParseObject(object, out, depth + 1);
    }
    case od::json_type::array: {
      if (depth >= options_.max_depth) {
        return Fail(value.raw_json_token().data(),
                    "nesting deeper than the limit of " + std::to_string(options_.max_depth));
      }
      od::array array;
      if (auto e = value.get_array().get(array)) return FailSimd(e);
      return ParseArray(array, out, depth + 1);
    }
    default: {
      return ParseScalar(TrimRight(value.raw_json_token()), type, out);
    }
  }
}

Status Parser::ParseScalar(std::string_view token, od::json_type type, Value* out) {
  switch (type) {
    case od::json_type::string: {
      if (token.size() < 2 || token.back() != '"') return Fail(token.data(), "unterminated string");
      return MakeStringValue(token.data() + 1, token.data() + token.size() - 1, out);
    }
    case od::json_type::number:
      if (!IsValidNumberLiteral(token)) {
        return Fail(token.data(), "invalid number '" + std::string(token.substr(0, 32)) + "'");
      }
      *out = Value::NumberLiteral(token);
      return Status::Ok();
    case od::json_type::boolean:
      if (token == "true") {
        *out = Value::Bool(true);
      } else if (token == "false") {
        *out = Value::Bool(false);
      } else {
        return Fail(token.data(), "invalid literal '" + std::string(token.substr(0, 32)) + "'");
      }
      return Status::Ok();
    case od::json_type::null:
      if (token != "null") return Fail(token.data(), "invalid literal '" + std::string(token.substr(0, 32)) + "'");
      *out = Value::Null();
      return Status::Ok();
    default: return Fail(token.data(), "unexpected token");
  }
}

Status Parser::MakeStringValue(const char* begin, const char* end, Value* out) {
  std::string_view raw(begin, static_cast<size_t>(end - begin));
  if (std::memchr(raw.data(), '\\', raw.size()) == nullptr) {
    // simdjson's stage 1 rejected raw control characters, and a quote cannot
    // appear unescaped: this string needs no escaping when written.
    *out = Value::StringNoEscapes(raw);
    return Status::Ok();
  }
  escape_scratch_.clear();
  size_t bad = 0;
  std::string reason;
  if (!internal::Unescape(raw, escape_scratch_, &bad, &reason)) return Fail(begin + bad, reason);
  std::string_view unescaped = doc_.arena_.CopyString(escape_scratch_);
  // Keep the source form only when our writer would escape differently.
  std::string canonical;
  internal::AppendEscaped(unescaped, canonical);
  if (canonical == raw) {
    *out = Value::StringRef(unescaped);
  } else {
    *out = internal::MakeRawString(doc_.arena_, unescaped, raw);
  }
  return Status::Ok();
}

Status Parser::ParseObject(od::object object, Value* out, uint32_t depth) {
  size_t mark = member_stack_.size();
  for (auto field_result : object) {
    od::field field;
    if (auto e = std::move(field_result).get(field)) return FailSimd(e);
    const char* key_begin = field.key().raw();
    od::value value = field.value();
    // The key's closing quote is the last quote before the ':' that precedes
    // the value: found backwards from the value's first byte in O(1).
    const char* p = value.raw_json_token().data() - 1;
    while (p > key_begin && IsJsonSpace(*p)) --p;
    if (*p != ':') return Fail(p, "expected ':' after key");
    --p;
    while (p > key_begin && IsJsonSpace(*p)) --p;
    if (*p != '"' || p < key_begin) return Fail(key_begin, "unterminated key");
    Member m;
    RETURN_IF_ERROR(MakeStringValue(key_begin, p, &m.key));
    RETURN_IF_ERROR(ParseValue(value, &m.value, depth));
    member_stack_.push_back(m);
    key_pos_stack_.push_back(key_begin - 1);
  }
  auto n = static_cast<uint32_t>(member_stack_.size() - mark);
  Member* members = doc_.arena_.AllocateArray<Member>(n);
  if (n) std::memcpy(static_cast<void*>(members), member_stack_.data() + mark, n * sizeof(Member));
  member_stack_.resize(mark);
  RETURN_IF_ERROR(CheckDuplicates(members, key_pos_stack_.data() + mark, n));
  key_pos_stack_.resize(mark);
  *out = Value::ObjectRef(members, n);
  return Status::Ok();
}

Status Parser::CheckDuplicates(const Member* members, const char* const* key_pos, uint32_t n) {
  if (n < 2) return Status::Ok();
  if (n <= 16) {
    for (uint32_t i = 1; i < n; ++i) {
      std::string_view k = members[i].name();
      for (uint32_t j = 0; j < i; ++j) {
        if (members[j].name() == k) return Fail(key_pos[i], "duplicate key \"" + std::string(k.substr(0, 64)) + "\"");
      }
    }
    return Status::Ok();
  }
  key_scratch_.clear();
  for (uint32_t i = 0; i < n; ++i) key_scratch_.push_back(members[i].name());
  std::sort(key_scratch_.begin(), key_scratch_.end());
  auto dup = std::adjacent_find(key_scratch_.begin(), key_scratch_.end());
  if (dup == key_scratch_.end()) return Status::Ok();
  // Report the second occurrence in document order.
  bool seen = false;
  for (uint32_t i = 0; i < n; ++i) {
    if (members[i].name() == *dup) {
      if (seen) return Fail(key_pos[i], "duplicate key \"" + std::string(dup->substr(0, 64)) + "\"");
      seen = true;
    }
  }
  return Fail(nullptr, "duplicate key");
}

Status Parser::ParseArray(od::array array, Value* out, uint32_t depth) {
  size_t mark = value_stack_.size();
  for (auto item_result : array) {
    od::value item;
    if (auto e = std::move(item_result).get(item)) return FailSimd(e);
    Value v;
    RETURN_IF_ERROR(ParseValue(item, &v, depth));
    value_stack_.push_back(v);
  }
  auto n = static_cast<uint32_t>(value_stack_.size() - mark);
  Value* items = doc_.arena_.AllocateArray<Value>(n);
  if (n) std::memcpy(static_cast<void*>(items), value_stack_.data() + mark, n * sizeof(Value));
  value_stack_.resize(mark);
  *out = Value::ArrayRef(items, n);
  return Status::Ok();
}

Result<Document> Document::Parse(std::string_view text, const ParseOptions& options, ErrorLocation* where) {
  // One block for the text and, typically, all nodes: FHIR JSON needs about
  // as many bytes of nodes as of text.
  Document doc(text.size() * 2 + simdjson::SIMDJSON_PADDING + 1024);
  Parser parser(doc, options);
  RETURN_IF_ERROR(parser.Run(text, where));
  return doc;
}

}  // namespace bevan::json
