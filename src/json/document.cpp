#include <charconv>
#include <cstring>

#include "json/json.h"
#include "json/json_internal.h"

namespace bevan::json {

Document::Document() : arena_(4096) {}
Document::Document(size_t first_block) : arena_(first_block) {}
Document::Document(Document&&) noexcept = default;
Document& Document::operator=(Document&&) noexcept = default;
Document::~Document() = default;

Value Document::MakeString(std::string_view s) { return Value::StringRef(arena_.CopyString(s)); }

Result<Value> Document::MakeNumber(std::string_view literal) {
  if (!IsValidNumberLiteral(literal)) {
    return InvalidArgumentError("not a JSON number: '" + std::string(literal.substr(0, 32)) + "'");
  }
  return Value::NumberLiteral(arena_.CopyString(literal));
}

Value Document::MakeInt(int64_t n) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), n);
  (void)ec;
  return Value::NumberLiteral(arena_.CopyString(std::string_view(buf, static_cast<size_t>(p - buf))));
}

Value Document::MakeArray(std::span<const Value> items) {
  Value* out = arena_.AllocateArray<Value>(items.size());
  if (!items.empty()) std::memcpy(static_cast<void*>(out), items.data(), items.size_bytes());
  return Value::ArrayRef(out, static_cast<uint32_t>(items.size()));
}

Value Document::MakeObject(std::span<const Member> members) {
  Member* out = arena_.AllocateArray<Member>(members.size());
  if (!members.empty()) std::memcpy(static_cast<void*>(out), members.data(), members.size_bytes());
  return Value::ObjectRef(out, static_cast<uint32_t>(members.size()));
}

Value Document::WithMember(const Value& object, std::string_view key, Value value) {
  auto members = object.members();
  size_t n = members.size();
  bool present = object.Find(key) != nullptr;
  Member* out = arena_.AllocateArray<Member>(present ? n : n + 1);
  for (size_t i = 0; i < n; ++i) {
    out[i] = members[i];
    if (members[i].name() == key) out[i].value = value;
  }
  if (!present) {
    out[n].key = MakeString(key);
    out[n].value = value;
    ++n;
  }
  return Value::ObjectRef(out, static_cast<uint32_t>(n));
}

Value Document::WithoutMember(const Value& object, std::string_view key) {
  auto members = object.members();
  Member* out = arena_.AllocateArray<Member>(members.size());
  size_t n = 0;
  for (const Member& m : members) {
    if (m.name() != key) out[n++] = m;
  }
  return Value::ObjectRef(out, static_cast<uint32_t>(n));
}

Value Document::Import(const Value& v) {
  switch (v.kind()) {
    case Kind::kNull:
    case Kind::kBool: return v;
    case Kind::kNumber: return Value::NumberLiteral(arena_.CopyString(v.number_literal()));
    case Kind::kString:
      if (!v.raw_escaped().empty()) {
        return internal::MakeRawString(arena_, arena_.CopyString(v.as_string()), v.raw_escaped());
      }
      return MakeString(v.as_string());
    case Kind::kArray: {
      auto items = v.items();
      Value* out = arena_.AllocateArray<Value>(items.size());
      for (size_t i = 0; i < items.size(); ++i) out[i] = Import(items[i]);
      return Value::ArrayRef(out, static_cast<uint32_t>(items.size()));
    }
    case Kind::kObject: {
      auto members = v.members();
      Member* out = arena_.AllocateArray<Member>(members.size());
      for (size_t i = 0; i < members.size(); ++i) {
        out[i].key = Import(members[i].key);
        out[i].value = Import(members[i].value);
      }
      return Value::ObjectRef(out, static_cast<uint32_t>(members.size()));
    }
  }
  return Value();
}

}  // namespace bevan::json
