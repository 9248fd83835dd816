// Evaluation: a recursive walk over the compiled node array, writing each
// node's result collection into an arena-backed vector.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "fhirpath/program.h"
#include "fhirpath/ucum.h"
#include "fhirpath/values.h"

namespace bevan::fhirpath {

namespace internal {
namespace {

const json::Value kNullValue{};

// A growable array of items in the arena; growth abandons the old block
// (the arena frees everything at once).
class Vec {
 public:
  explicit Vec(Arena& arena) : arena_(&arena) {}
  void push_back(const Item& item) {
    if (size_ == cap_) Grow(size_ + 1);
    data_[size_++] = item;
  }
  void append(Collection items) {
    if (items.empty()) return;
    if (size_ + items.size() > cap_) Grow(size_ + items.size());
    std::memcpy(static_cast<void*>(data_ + size_), items.data(), items.size() * sizeof(Item));
    size_ += static_cast<uint32_t>(items.size());
  }
  void clear() { size_ = 0; }
  uint32_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Item& operator[](size_t i) { return data_[i]; }
  Collection span() const { return Collection(data_, size_); }
  void truncate(uint32_t n) { size_ = n; }

 private:
  void Grow(size_t need) {
    size_t cap = cap_ == 0 ? 4 : cap_ * 2;
    while (cap < need) cap *= 2;
    Item* fresh = arena_->AllocateArray<Item>(cap);
    if (size_ != 0) std::memcpy(static_cast<void*>(fresh), data_, size_ * sizeof(Item));
    data_ = fresh;
    cap_ = static_cast<uint32_t>(cap);
  }

  Arena* arena_;
  Item* data_ = nullptr;
  uint32_t size_ = 0;
  uint32_t cap_ = 0;
};

bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }

// resourceType is nearly always a resource's first member: check it with a
// fixed-size compare before scanning.
const json::Value* FindResourceTypeMember(const json::Value& v) {
  auto members = v.members();
  if (!members.empty()) {
    std::string_view k = members[0].name();
    if (k.size() == 12 && std::memcmp(k.data(), "resourceType", 12) == 0) return &members[0].value;
  }
  return v.Find("resourceType");
}

const fhir::TypeDef* Refine(const json::Value& v, const fhir::TypeDef* declared) {
  if ((declared == nullptr || declared->kind == fhir::TypeKind::kResource) && v.is_object()) {
    const json::Value* rt = FindResourceTypeMember(v);
    if (rt != nullptr && rt->is_string()) {
      if (const fhir::TypeDef* t = fhir::FindResourceType(rt->as_string())) return t;
    }
  }
  return declared;
}

bool MayHaveExtension(const fhir::TypeDef* t) { return t == nullptr || t->kind == fhir::TypeKind::kPrimitive; }

// Emits the items of a property: its JSON value `v` (maybe an array) and
// the parallel `_name` extension value `x`.
void EmitValue(const json::Value* v, const json::Value* x, const fhir::TypeDef* type, Vec& out) {
  if (v != nullptr && v->is_array()) {
    std::span<const json::Value> items = v->items();
    std::span<const json::Value> exts = x != nullptr && x->is_array() ? x->items() : std::span<const json::Value>();
    for (size_t i = 0; i < items.size(); ++i) {
      const json::Value* ext = i < exts.size() && exts[i].is_object() ? &exts[i] : nullptr;
      if (items[i].is_null() && ext == nullptr) continue;
      out.push_back(Item::Node(&items[i], ext, Refine(items[i], type)));
    }
    for (size_t i = items.size(); i < exts.size(); ++i) {
      if (exts[i].is_object()) out.push_back(Item::Node(&kNullValue, &exts[i], type));
    }
    return;
  }
  const json::Value* ext = x != nullptr && x->is_object() ? x : nullptr;
  if (v != nullptr) {
    if (v->is_null() && ext == nullptr) return;
    out.push_back(Item::Node(v, ext, Refine(*v, type)));
    return;
  }
  if (x != nullptr && x->is_array()) {
    for (const json::Value& e : x->items()) {
      if (e.is_object()) out.push_back(Item::Node(&kNullValue, &e, type));
    }
  } else if (ext != nullptr) {
    out.push_back(Item::Node(&kNullValue, ext, type));
  }
}

// Whether n bytes at a and b are equal: inline word compares (member names
// are short; a call to memcmp per candidate key showed in profiles).
inline bool SameBytes(const char* a, const char* b, size_t n) {
  if (n >= 8) {
    uint64_t x, y;
    for (size_t i = 0; i + 8 < n; i += 8) {
      std::memcpy(&x, a + i, 8);
      std::memcpy(&y, b + i, 8);
      if (x != y) return false;
    }
    std::memcpy(&x, a + n - 8, 8);
    std::memcpy(&y, b + n - 8, 8);
    return x == y;
  }
  if (n >= 4) {
    uint32_t x0, y0, x1, y1;
    std::memcpy(&x0, a, 4);
    std::memcpy(&y0, b, 4);
    std::memcpy(&x1, a + n - 4, 4);
    std::memcpy(&y1, b + n - 4, 4);
    return x0 == y0 && x1 == y1;
  }
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// Finds `key` and, when `want_ext`, `_key` in one pass over the members.
// Compares the first byte before the rest: most keys differ there.
void FindMember(const json::Value& obj, std::string_view key, bool want_ext, const json::Value** value,
                const json::Value** ext) {
  *value = nullptr;
  *ext = nullptr;
  const char first = key.empty() ? '\0' : key[0];
  for (const json::Member& m : obj.members()) {
    std::string_view k = m.name();
    if (k.size() == key.size()) {
      if (!k.empty() && k[0] == first && SameBytes(k.data(), key.data(), k.size())) {
        *value = &m.value;
        if (!want_ext || *ext != nullptr) return;
      }
    } else if (want_ext && k.size() == key.size() + 1 && k[0] == '_' && k[1] == first &&
               SameBytes(k.data() + 1, key.data(), key.size())) {
      *ext = &m.value;
      if (*value != nullptr) return;
    }
  }
}

// Finds `_key` in `obj` without allocating.
const json::Value* FindUnderscore(const json::Value& obj, std::string_view key) {
  for (const json::Member& m : obj.members()) {
    std::string_view k = m.name();
    if (k.size() == key.size() + 1 && k[0] == '_' && k.substr(1) == key) return &m.value;
  }
  return nullptr;
}

// The object holding the children of a node: the node itself, or for a
// primitive its extension object.
const json::Value* ChildObject(const Item& parent) {
  const fhir::TypeDef* pt = parent.type();
  const json::Value* v = parent.node();
  if ((pt != nullptr && pt->kind == fhir::TypeKind::kPrimitive) || v == nullptr || !v->is_object()) {
    return parent.extension_object();
  }
  return v;
}

void ChildrenNamed(const fhir::TypeDef* cached_parent, const fhir::ElementDef* cached, std::string_view name,
                   const Item& parent, Vec& out) {
  const json::Value* obj = ChildObject(parent);
  if (obj == nullptr || !obj->is_object()) return;
  const fhir::TypeDef* pt = parent.type();
  if (pt != nullptr) {
    const fhir::ElementDef* e = nullptr;
    const fhir::TypeRef* choice = nullptr;
    if (pt == cached_parent) {
      e = cached;
    } else {
      e = pt->FindElement(name, &choice);
      if (e == nullptr) {
        for (const fhir::ElementDef& el : pt->elements) {
          if (el.is_choice && el.name == name) {
            e = &el;
            break;
          }
        }
      }
    }
    if (e == nullptr) return;
    if (!e->is_choice || choice != nullptr) {
      const fhir::TypeDef* t = choice != nullptr ? choice->type : e->types[0].type;
      const json::Value *v, *x;
      FindMember(*obj, name, MayHaveExtension(t), &v, &x);
      if (v != nullptr || x != nullptr) EmitValue(v, x, t, out);
      return;
    }
    std::string_view base = e->name;
    for (const json::Member& m : obj->members()) {
      std::string_view key = m.name();
      if (key.size() <= base.size() || !IsUpper(key[base.size()]) || key.substr(0, base.size()) != base) continue;
      const fhir::TypeRef* ch = nullptr;
      if (pt->FindElement(key, &ch) != e || ch == nullptr) continue;
      const fhir::TypeDef* t = ch->type;
      EmitValue(&m.value, MayHaveExtension(t) ? FindUnderscore(*obj, key) : nullptr, t, out);
    }
    // A choice primitive with only an extension (_valueString).
    for (const json::Member& m : obj->members()) {
      std::string_view key = m.name();
      if (key.size() <= base.size() + 1 || key[0] != '_' || key.substr(1, base.size()) != base ||
          !IsUpper(key[base.size() + 1]) || obj->Find(key.substr(1)) != nullptr) {
        continue;
      }
      const fhir::TypeRef* ch = nullptr;
      if (pt->FindElement(key.substr(1), &ch) != e || ch == nullptr) continue;
      EmitValue(nullptr, &m.value, ch->type, out);
    }
    return;
  }
  // Unknown parent type: by JSON name, else a choice by prefix.
  const json::Value *v, *x;
  FindMember(*obj, name, true, &v, &x);
  if (v != nullptr || x != nullptr) {
    EmitValue(v, x, nullptr, out);
    return;
  }
  for (const json::Member& m : obj->members()) {
    std::string_view key = m.name();
    if (key.size() <= name.size() || !IsUpper(key[name.size()]) || key.substr(0, name.size()) != name) continue;
    std::string suffix(key.substr(name.size()));
    const fhir::TypeDef* t = fhir::FindType(suffix);
    if (t == nullptr) {
      suffix[0] = static_cast<char>(suffix[0] - 'A' + 'a');
      t = fhir::FindType(suffix);
    }
    EmitValue(&m.value, FindUnderscore(*obj, key), t, out);
  }
}

void AllChildren(const Item& parent, Vec& out) {
  const json::Value* obj = ChildObject(parent);
  if (obj == nullptr || !obj->is_object()) return;
  const fhir::TypeDef* pt = parent.type();
  for (const json::Member& m : obj->members()) {
    std::string_view key = m.name();
    if (key == "resourceType") continue;
    bool ext_only = false;
    if (!key.empty() && key[0] == '_') {
      if (obj->Find(key.substr(1)) != nullptr) continue;
      key = key.substr(1);
      ext_only = true;
    }
    const fhir::TypeDef* t = nullptr;
    if (pt != nullptr) {
      const fhir::TypeRef* ch = nullptr;
      const fhir::ElementDef* e = pt->FindElement(key, &ch);
      if (e != nullptr) t = ch != nullptr ? ch->type : e->types[0].type;
    }
    if (ext_only) {
      EmitValue(nullptr, &m.value, t, out);
    } else {
      EmitValue(&m.value, MayHaveExtension(t) ? FindUnderscore(*obj, key) : nullptr, t, out);
    }
  }
}

// `exact_primitives`: as() and ofType() match FHIR primitive types exactly
// (HL7's suite: a code is(string) but as(string) is empty).
bool IsOfType(const Item& item, const TypeSpec& spec, bool exact_primitives = false) {
  if (spec.system != TypeSpec::System::kNone) {
    switch (item.kind()) {
      case ItemKind::kNode: return false;
      case ItemKind::kBoolean: return spec.system == TypeSpec::System::kBoolean;
      case ItemKind::kInteger: return spec.system == TypeSpec::System::kInteger;
      case ItemKind::kDecimal: return spec.system == TypeSpec::System::kDecimal;
      case ItemKind::kString: return spec.system == TypeSpec::System::kString;
      case ItemKind::kDate: return spec.system == TypeSpec::System::kDate;
      case ItemKind::kDateTime: return spec.system == TypeSpec::System::kDateTime;
      case ItemKind::kTime: return spec.system == TypeSpec::System::kTime;
      case ItemKind::kQuantity: return spec.system == TypeSpec::System::kQuantity;
      case ItemKind::kTypeInfo: return spec.system == TypeSpec::System::kAny;
    }
    return false;
  }
  if (spec.fhir == nullptr || !item.is_node() || item.type() == nullptr) return false;
  if (exact_primitives && spec.fhir->kind == fhir::TypeKind::kPrimitive) return item.type() == spec.fhir;
  return item.type()->IsA(spec.fhir);
}

std::string_view SystemKindName(ItemKind k) {
  switch (k) {
    case ItemKind::kBoolean: return "Boolean";
    case ItemKind::kInteger: return "Integer";
    case ItemKind::kDecimal: return "Decimal";
    case ItemKind::kString: return "String";
    case ItemKind::kDate: return "Date";
    case ItemKind::kDateTime: return "DateTime";
    case ItemKind::kTime: return "Time";
    case ItemKind::kQuantity: return "Quantity";
    case ItemKind::kTypeInfo: return "TypeInfo";
    case ItemKind::kNode: return "";
  }
  return "";
}

bool IsNumber(const Item& i) { return i.kind() == ItemKind::kInteger || i.kind() == ItemKind::kDecimal; }
Decimal AsDecimal(const Item& i) {
  return i.kind() == ItemKind::kInteger ? Decimal::FromInt(i.integer()) : i.decimal();
}

std::optional<CalendarUnit> CalendarUnitOf(std::string_view u) {
  if (u.ends_with("s") && u.size() > 2 && u != "ms") u.remove_suffix(1);
  if (u == "year") return CalendarUnit::kYear;
  if (u == "month") return CalendarUnit::kMonth;
  if (u == "week" || u == "wk") return CalendarUnit::kWeek;
  if (u == "day" || u == "d") return CalendarUnit::kDay;
  if (u == "hour" || u == "h") return CalendarUnit::kHour;
  if (u == "minute" || u == "min") return CalendarUnit::kMinute;
  if (u == "second" || u == "s") return CalendarUnit::kSecond;
  if (u == "millisecond" || u == "ms") return CalendarUnit::kMillisecond;
  return std::nullopt;
}

// Character (code point) helpers for string functions.
bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}
size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}
// Byte offset of code point `index` (s.size() when past the end).
size_t ByteOffset(std::string_view s, size_t index) {
  if (IsAscii(s)) return index < s.size() ? index : s.size();
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (n == index) return i;
      ++n;
    }
  }
  return s.size();
}

bool ParseIntegerText(std::string_view s, int64_t* out) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i == s.size()) return false;
  for (size_t j = i; j < s.size(); ++j) {
    if (s[j] < '0' || s[j] > '9') return false;
  }
  auto d = Decimal::Parse(s);
  if (!d) return false;
  auto v = d->ToInt64();
  if (!v || *v > INT32_MAX || *v < INT32_MIN) return false;
  *out = *v;
  return true;
}

bool IsDecimalText(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (digits == 0) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t frac = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++frac;
    if (frac == 0) return false;
  }
  return i == s.size();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64Encode(std::string_view in, bool url) {
  std::string out;
  size_t i = 0;
  while (i + 2 < in.size()) {
    uint32_t v =
        (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out.push_back(kB64[(v >> k) & 63]);
    i += 3;
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  if (url) {
    for (char& c : out) {
      if (c == '+') c = '-';
      if (c == '/') c = '_';
    }
  }
  return out;
}

bool Base64Decode(std::string_view in, std::string* out) {
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+' || c == '-') {
      v = 62;
    } else if (c == '/' || c == '_') {
      v = 63;
    } else if (c == '=') {
      break;
    } else {
      return false;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

// A small check that narrative XHTML carries no active content: the root is
// a div, and no script, form, embedded object or event-handler attribute.
bool HtmlSafe(std::string_view html) {
  std::string lower = Lower(html);
  size_t start = lower.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || lower.compare(start, 4, "<div") != 0) return false;
  static constexpr std::string_view kBanned[] = {"<script", "<iframe", "<object", "<embed", "<applet", "<form",
                                                 "<input",  "<base",   "<link",   "<meta",  "<frame",  "javascript:"};
  for (std::string_view b : kBanned) {
    if (lower.find(b) != std::string::npos) return false;
  }
  // on* event attributes inside tags.
  bool in_tag = false;
  for (size_t i = 0; i < lower.size(); ++i) {
    char c = lower[i];
    if (c == '<') in_tag = true;
    if (c == '>') in_tag = false;
    if (in_tag && (c == ' ' || c == '\t' || c == '\n') && i + 3 < lower.size() && lower[i + 1] == 'o' &&
        lower[i + 2] == 'n' && std::isalpha(static_cast<unsigned char>(lower[i + 3]))) {
      size_t j = i + 3;
      while (j < lower.size() && std::isalpha(static_cast<unsigned char>(lower[j]))) ++j;
      while (j < lower.size() && lower[j] == ' ') ++j;
      if (j < lower.size() && lower[j] == '=') return false;
    }
  }
  return true;
}

class Evaluator {
 public:
  Evaluator(const Program& p, Arena& arena, const EvalOptions& options) : p_(p), arena_(arena), options_(options) {}

  Status Run(Collection context, Collection* result) {
    context_ = context;
    this_ = context;
    Vec out(arena_);
    if (!Eval(p_.root, context, out)) return status_;
    *result = out.span();
    return Status::Ok();
  }

 private:
  const Node& N(int32_t i) const { return p_.nodes[static_cast<size_t>(i)]; }
  int32_t Arg(const Node& n, uint32_t i) const { return p_.args[n.args_begin + i]; }

  // %resource and %rootResource, worked out on first use.
  void EnsureResources() {
    if (resources_ready_) return;
    resources_ready_ = true;
    const json::Value* res = options_.resource;
    const json::Value* root = options_.root_resource;
    if (res == nullptr && context_.size() == 1 && context_[0].is_node() && context_[0].node() != nullptr &&
        context_[0].node()->is_object()) {
      res = context_[0].node();
    }
    if (res != nullptr) {
      resource_item_ = Item::Node(res, nullptr, Refine(*res, nullptr));
      has_resource_ = true;
    }
    if (root == nullptr) root = res;
    if (root != nullptr) {
      root_item_ = Item::Node(root, nullptr, Refine(*root, nullptr));
      has_root_ = true;
    }
  }

  bool Fail(const Node& n, const std::string& message) {
    if (status_.ok()) {
      std::string where = "FHIRPath evaluation error at " + std::to_string(n.pos);
      if (!n.name.empty()) where += " (" + std::string(n.name) + ")";
      status_ = InvalidArgumentError(where + ": " + message);
    }
    return false;
  }

  std::string_view Keep(std::string_view s) { return arena_.CopyString(s); }

  Item MakeQuantity(const Decimal& value, std::string_view unit, bool calendar) {
    auto* q = new (arena_.AllocateArray<Quantity>(1)) Quantity();
    q->value = value;
    q->unit = unit;
    q->calendar = calendar;
    return Item::FromQuantity(q);
  }

  // Evaluates `index` into a fresh collection.
  bool EvalTo(int32_t index, Collection focus, Collection* out) {
    const Node& n = N(index);
    if (n.op == Op::kLiteral) {
      *out = Collection(&n.literal, 1);
      return true;
    }
    if (n.op == Op::kThis) {
      *out = this_;
      return true;
    }
    Vec v(arena_);
    if (!Eval(index, focus, v)) return false;
    *out = v.span();
    return true;
  }

  // Evaluates to at most one item, converted to a System value when it is
  // a FHIR primitive. *present is false for an empty result.
  bool EvalSingle(const Node& n, int32_t index, Collection focus, Item* out, bool* present) {
    Collection c;
    if (!EvalTo(index, focus, &c)) return false;
    return Single(n, c, out, present);
  }

  bool Single(const Node& n, Collection c, Item* out, bool* present) {
    *present = false;
    if (c.empty()) return true;
    if (c.size() > 1) return Fail(n, "expected a single item, got " + std::to_string(c.size()));
    if (!ToSystem(c[0], arena_, out)) {
      *out = c[0];
    }
    *present = true;
    return true;
  }

  // Boolean of a collection per FHIRPath's singleton evaluation: empty is
  // unknown (-1), a single boolean itself, any other single item true.
  bool ToBool(const Node& n, Collection c, int* out) {
    if (c.empty()) return *out = -1, true;
    if (c.size() > 1) return Fail(n, "expected a single boolean, got " + std::to_string(c.size()) + " items");
    Item v;
    if (ToSystem(c[0], arena_, &v) && v.kind() == ItemKind::kBoolean) {
      *out = v.boolean() ? 1 : 0;
    } else {
      *out = 1;
    }
    return true;
  }

  // Value arguments see $this as their focus.
  bool EvalArg(const Node& n, uint32_t i, Collection* out) { return EvalTo(Arg(n, i), this_, out); }
  bool ArgSingle(const Node& n, uint32_t i, Item* out, bool* present) {
    return EvalSingle(n, Arg(n, i), this_, out, present);
  }
  bool ArgString(const Node& n, uint32_t i, std::string_view* out, bool* present) {
    Item v;
    if (!ArgSingle(n, i, &v, present)) return false;
    if (!*present) return true;
    if (v.kind() != ItemKind::kString) return Fail(n, "argument " + std::to_string(i + 1) + " must be a string");
    *out = v.string();
    return true;
  }
  bool ArgInteger(const Node& n, uint32_t i, int64_t* out, bool* present) {
    Item v;
    if (!ArgSingle(n, i, &v, present)) return false;
    if (!*present) return true;
    if (v.kind() != ItemKind::kInteger) return Fail(n, "argument " + std::to_string(i + 1) + " must be an integer");
    *out = v.integer();
    return true;
  }

  // Runs `body` for each item with $this, $index set; restores them after.
  template <typename F>
  bool ForEach(Collection input, F&& body) {
    Collection saved_this = this_;
    int64_t saved_index = index_;
    for (size_t i = 0; i < input.size(); ++i) {
      this_ = Collection(&input[i], 1);
      index_ = static_cast<int64_t>(i);
      if (!body(i, this_)) {
        this_ = saved_this;
        index_ = saved_index;
        return false;
      }
    }
    this_ = saved_this;
    index_ = saved_index;
    return true;
  }

  bool Contains(Collection c, const Item& item) {
    for (const Item& x : c) {
      if (ItemsEqual(x, item, arena_) == Tri::kTrue) return true;
    }
    return false;
  }

  void AppendDistinct(Collection items, Vec& out) {
    for (const Item& i : items) {
      if (!Contains(out.span(), i)) out.push_back(i);
    }
  }

  bool Eval(int32_t index, Collection focus, Vec& out);
  bool EvalBinary(const Node& n, Collection focus, Vec& out);
  bool Arithmetic(const Node& n, const Item& a, const Item& b, Vec& out);
  bool Call(const Node& n, Collection focus, Vec& out);
  bool MemberOfResourceType(const Node& n, Collection focus, Vec& out);
  bool MemberChain(const Node& n, Collection focus, Vec& out);
  bool CallString(const Node& n, Collection input, Vec& out);
  bool CallMath(const Node& n, Collection input, Vec& out);
  bool CallConversion(const Node& n, Collection input, Vec& out);
  bool Boundary(const Node& n, Collection input, Vec& out);
  bool Resolve(const Item& item, Vec& out);

  const Program& p_;
  Arena& arena_;
  const EvalOptions& options_;
  Status status_;
  Collection context_;
  Collection this_;
  int64_t index_ = 0;
  Collection total_;
  Item resource_item_;
  Item root_item_;
  bool resources_ready_ = false;
  bool has_resource_ = false;
  bool has_root_ = false;
  bool have_now_ = false;
  DateTime now_;
};

bool Evaluator::Eval(int32_t index, Collection focus, Vec& out) {
  const Node& n = N(index);
  switch (n.op) {
    case Op::kEmpty:
    case Op::kNothing: return true;
    case Op::kLiteral: out.push_back(n.literal); return true;
    case Op::kThis: out.append(this_); return true;
    case Op::kIndex: out.push_back(Item::Integer(index_)); return true;
    case Op::kTotal: out.append(total_); return true;
    case Op::kVariable: {
      if (n.name == "context") {
        out.append(context_);
        return true;
      }
      EnsureResources();
      if (n.name == "resource") {
        if (has_resource_) out.push_back(resource_item_);
        return true;
      }
      if (n.name == "rootResource") {
        if (has_root_) out.push_back(root_item_);
        return true;
      }
      for (const Variable& v : options_.variables) {
        if (v.name == n.name) {
          out.append(v.value);
          return true;
        }
      }
      return Fail(n, "no value for %" + std::string(n.name));
    }
    case Op::kMember: {
      if (n.chain >= 2) return MemberChain(n, focus, out);
      Collection input = focus;
      if (n.lhs >= 0 && !EvalTo(n.lhs, focus, &input)) return false;
      for (size_t i = 0; i < input.size(); ++i) {
        const Item& item = input[i];
        if (item.kind() == ItemKind::kTypeInfo) {
          if (n.name == "namespace") out.push_back(Item::String(item.type_info().ns));
          if (n.name == "name") out.push_back(Item::String(item.type_info().name));
          continue;
        }
        // Large collections (Bundle entries) are bound by memory latency:
        // fetch the members of an item a few places ahead, and their first
        // key's text, while this one is worked on.
        if (i + 4 < input.size()) {
          if (const json::Value* ahead = input[i + 4].node(); ahead != nullptr && ahead->is_object() && ahead->size()) {
            const json::Member* m = ahead->members().data();
            __builtin_prefetch(m);
            __builtin_prefetch(m->key.as_string().data());
          }
        }
        if (item.is_node()) ChildrenNamed(n.parent, n.element, n.name, item, out);
      }
      return true;
    }
    case Op::kTypeFilter: {
      for (const Item& item : focus) {
        if (item.is_node() && item.type() != nullptr && item.type()->IsA(n.type.fhir)) out.push_back(item);
      }
      return true;
    }
    case Op::kRootName: {
      for (const Item& item : focus) {
        if (item.is_node() && item.type() != nullptr && item.type()->IsA(n.type.fhir)) {
          out.push_back(item);
        } else if (item.is_node()) {
          ChildrenNamed(nullptr, nullptr, n.name, item, out);
        }
      }
      return true;
    }
    case Op::kIndexer: {
      Collection base;
      if (!EvalTo(n.lhs, focus, &base)) return false;
      Item i;
      bool present;
      if (!EvalSingle(n, n.rhs, this_, &i, &present)) return false;
      if (!present) return true;
      if (i.kind() != ItemKind::kInteger) return Fail(n, "an index must be an integer");
      if (i.integer() >= 0 && static_cast<uint64_t>(i.integer()) < base.size()) {
        out.push_back(base[static_cast<size_t>(i.integer())]);
      }
      return true;
    }
    case Op::kNegate: {
      Item v;
      bool present;
      if (!EvalSingle(n, n.lhs, focus, &v, &present)) return false;
      if (!present) return true;
      switch (v.kind()) {
        case ItemKind::kInteger: out.push_back(Item::Integer(-v.integer())); return true;
        case ItemKind::kDecimal: out.push_back(Item::FromDecimal(v.decimal().Negate())); return true;
        case ItemKind::kQuantity:
          out.push_back(MakeQuantity(v.quantity().value.Negate(), v.quantity().unit, v.quantity().calendar));
          return true;
        default: return Fail(n, "cannot negate a " + std::string(SystemKindName(v.kind())));
      }
    }
    case Op::kIs:
    case Op::kAs: {
      Collection c;
      if (!EvalTo(n.lhs, focus, &c)) return false;
      if (c.empty()) return true;
      if (c.size() > 1) return Fail(n, "'is'/'as' need a single item, got " + std::to_string(c.size()));
      bool match = IsOfType(c[0], n.type, n.op == Op::kAs);
      if (n.op == Op::kIs) {
        out.push_back(Item::Boolean(match));
      } else if (match) {
        out.push_back(c[0]);
      }
      return true;
    }
    case Op::kBinary: return EvalBinary(n, focus, out);
    case Op::kFunction: return Call(n, focus, out);
    case Op::kIdentifier:
    case Op::kCall: return Fail(n, "internal: uncompiled node");
  }
  return Fail(n, "internal: unknown node");
}

bool Evaluator::MemberChain(const Node& n, Collection focus, Vec& out) {
  const Node* steps[8];
  const int k = n.chain;
  const Node* c = &n;
  for (int i = k - 1; i >= 0; --i) {
    steps[i] = c;
    if (i > 0) c = &p_.nodes[c->lhs];
  }
  Collection input = focus;
  if (steps[0]->lhs >= 0 && !EvalTo(steps[0]->lhs, focus, &input)) return false;
  // One step down from `obj`; the last step emits items as ChildrenNamed does.
  auto descend = [&](auto& self, const json::Value& obj, int level) -> void {
    const Node& m = *steps[level];
    const fhir::TypeDef* t = m.element->types[0].type;
    const json::Value *v, *x;
    if (level == k - 1) {
      FindMember(obj, m.name, MayHaveExtension(t), &v, &x);
      if (v != nullptr || x != nullptr) EmitValue(v, x, t, out);
      return;
    }
    FindMember(obj, m.name, false, &v, &x);
    if (v == nullptr) return;
    if (v->is_array()) {
      for (const json::Value& e : v->items()) {
        if (e.is_object()) self(self, e, level + 1);
      }
    } else if (v->is_object()) {
      self(self, *v, level + 1);
    }
  };
  for (const Item& item : input) {
    if (!item.is_node()) continue;  // members of non-nodes are empty
    if (item.type() == steps[0]->parent) {
      const json::Value* obj = ChildObject(item);
      if (obj != nullptr && obj->is_object()) descend(descend, *obj, 0);
      continue;
    }
    // Not the type the compiler resolved (e.g. an untyped item): step by step.
    Vec cur(arena_);
    cur.push_back(item);
    for (int i = 0; i < k; ++i) {
      Vec next(arena_);
      for (const Item& it : cur.span()) {
        if (it.is_node())
          ChildrenNamed(steps[i]->parent, steps[i]->element, steps[i]->name, it, i == k - 1 ? out : next);
      }
      if (i == k - 1) break;
      cur = next;
    }
  }
  return true;
}

bool Evaluator::MemberOfResourceType(const Node& n, Collection focus, Vec& out) {
  const Node& member = p_.nodes[n.lhs];
  const fhir::TypeDef* want = n.type.fhir;
  const std::string_view name = want->name;
  // Sibling objects (a Bundle's entries) share a layout: look where the
  // member was in the previous one first.
  size_t hint = 0;
  auto find = [&](const json::Value& obj) -> const json::Value* {
    std::span<const json::Member> ms = obj.members();
    if (hint < ms.size() && ms[hint].name() == member.name) return &ms[hint].value;
    for (size_t i = 0; i < ms.size(); ++i) {
      if (ms[i].name() == member.name) {
        hint = i;
        return &ms[i].value;
      }
    }
    return nullptr;
  };
  auto emit = [&](const json::Value& r) {
    if (!r.is_object()) return;
    const json::Value* rt = FindResourceTypeMember(r);
    if (rt != nullptr && rt->is_string() && rt->as_string() == name) out.push_back(Item::Node(&r, nullptr, want));
  };
  auto from_object = [&](const json::Value& obj) {
    const json::Value* v = find(obj);
    if (v == nullptr) return;
    if (v->is_array()) {
      for (const json::Value& r : v->items()) emit(r);
    } else {
      emit(*v);
    }
  };
  auto from_item = [&](const Item& item) {
    if (!item.is_node()) return;
    if (item.type() != member.parent) {
      // Not the parent type the compiler resolved (e.g. an untyped item):
      // navigate and filter the general way.
      Vec children(arena_);
      ChildrenNamed(member.parent, member.element, member.name, item, children);
      for (const Item& c : children.span()) {
        if (IsOfType(c, n.type, true)) out.push_back(c);
      }
      return;
    }
    const json::Value* obj = ChildObject(item);
    if (obj != nullptr && obj->is_object()) from_object(*obj);
  };
  // X.entry.resource.ofType(T): X's entries are walked in place, without an
  // item for each.
  if (member.lhs >= 0) {
    const Node& outer = p_.nodes[member.lhs];
    const fhir::ElementDef* oe = outer.element;
    if (outer.op == Op::kMember && oe != nullptr && outer.parent != nullptr && !oe->is_choice &&
        oe->types.size() == 1 && oe->types[0].type == member.parent &&
        member.parent->kind != fhir::TypeKind::kPrimitive) {
      Collection base = focus;
      if (outer.lhs >= 0 && !EvalTo(outer.lhs, focus, &base)) return false;
      for (const Item& item : base) {
        if (!item.is_node()) continue;
        if (item.type() != outer.parent) {
          Vec mids(arena_);
          ChildrenNamed(outer.parent, outer.element, outer.name, item, mids);
          for (const Item& m : mids.span()) from_item(m);
          continue;
        }
        const json::Value* obj = ChildObject(item);
        if (obj == nullptr || !obj->is_object()) continue;
        const json::Value *v, *x;
        FindMember(*obj, outer.name, false, &v, &x);
        if (v == nullptr) continue;
        if (v->is_array()) {
          for (const json::Value& e : v->items()) {
            if (e.is_object()) from_object(e);
          }
        } else if (v->is_object()) {
          from_object(*v);
        }
      }
      return true;
    }
  }
  Collection input = focus;
  if (member.lhs >= 0 && !EvalTo(member.lhs, focus, &input)) return false;
  for (const Item& item : input) from_item(item);
  return true;
}

bool Evaluator::EvalBinary(const Node& n, Collection focus, Vec& out) {
  // Logic operators evaluate the right side only when needed.
  if (n.binop == BinOp::kAnd || n.binop == BinOp::kOr || n.binop == BinOp::kXor || n.binop == BinOp::kImplies) {
    Collection lc;
    int a, b;
    if (!EvalTo(n.lhs, focus, &lc) || !ToBool(n, lc, &a)) return false;
    if ((n.binop == BinOp::kAnd && a == 0) || (n.binop == BinOp::kOr && a == 1)) {
      out.push_back(Item::Boolean(a == 1));
      return true;
    }
    if (n.binop == BinOp::kImplies && a == 0) {
      out.push_back(Item::Boolean(true));
      return true;
    }
    Collection rc;
    if (!EvalTo(n.rhs, focus, &rc) || !ToBool(n, rc, &b)) return false;
    int r = -1;
    switch (n.binop) {
      case BinOp::kAnd: r = (a == 0 || b == 0) ? 0 : (a == 1 && b == 1 ? 1 : -1); break;
      case BinOp::kOr: r = (a == 1 || b == 1) ? 1 : (a == 0 && b == 0 ? 0 : -1); break;
      case BinOp::kXor: r = (a < 0 || b < 0) ? -1 : (a != b ? 1 : 0); break;
      default: r = b == 1 ? 1 : (a == 1 && b == 0 ? 0 : -1); break;  // implies with a true or unknown
    }
    if (r >= 0) out.push_back(Item::Boolean(r == 1));
    return true;
  }
  Collection lc, rc;
  if (!EvalTo(n.lhs, focus, &lc) || !EvalTo(n.rhs, focus, &rc)) return false;
  switch (n.binop) {
    case BinOp::kUnion: {
      Vec u(arena_);
      AppendDistinct(lc, u);
      AppendDistinct(rc, u);
      out.append(u.span());
      return true;
    }
    case BinOp::kEq:
    case BinOp::kNe: {
      if (lc.empty() || rc.empty()) return true;
      Tri r = Tri::kTrue;
      if (lc.size() != rc.size()) {
        r = Tri::kFalse;
      } else {
        for (size_t i = 0; i < lc.size(); ++i) {
          Tri t = ItemsEqual(lc[i], rc[i], arena_);
          if (t == Tri::kFalse) {
            r = Tri::kFalse;
            break;
          }
          if (t == Tri::kEmpty) r = Tri::kEmpty;
        }
      }
      if (r == Tri::kEmpty) return true;
      out.push_back(Item::Boolean((r == Tri::kTrue) == (n.binop == BinOp::kEq)));
      return true;
    }
    case BinOp::kEquiv:
    case BinOp::kNotEquiv: {
      bool eq = lc.size() == rc.size();
      if (eq) {
        std::vector<bool> used(rc.size(), false);
        for (const Item& a : lc) {
          bool found = false;
          for (size_t j = 0; j < rc.size() && !found; ++j) {
            if (!used[j] && ItemsEquivalent(a, rc[j], arena_)) used[j] = found = true;
          }
          if (!found) {
            eq = false;
            break;
          }
        }
      }
      out.push_back(Item::Boolean(eq == (n.binop == BinOp::kEquiv)));
      return true;
    }
    case BinOp::kIn:
    case BinOp::kContains: {
      Collection element = n.binop == BinOp::kIn ? lc : rc;
      Collection set = n.binop == BinOp::kIn ? rc : lc;
      if (element.empty()) return true;
      if (element.size() > 1) return Fail(n, "membership needs a single item");
      out.push_back(Item::Boolean(Contains(set, element[0])));
      return true;
    }
    case BinOp::kConcat: {
      if (lc.size() > 1 || rc.size() > 1) return Fail(n, "'&' needs single items");
      std::string s;
      for (Collection c : {lc, rc}) {
        if (c.empty()) continue;
        Item v;
        if (!ToSystem(c[0], arena_, &v) || v.kind() != ItemKind::kString) return Fail(n, "'&' needs strings");
        s += v.string();
      }
      out.push_back(Item::String(Keep(s)));
      return true;
    }
    default: break;
  }
  Item a, b;
  bool pa, pb;
  if (!Single(n, lc, &a, &pa) || !Single(n, rc, &b, &pb)) return false;
  if (!pa || !pb) return true;
  switch (n.binop) {
    case BinOp::kLt:
    case BinOp::kLe:
    case BinOp::kGt:
    case BinOp::kGe: {
      bool incomparable;
      auto c = CompareItems(a, b, arena_, &incomparable);
      if (incomparable) {
        return Fail(n, "cannot compare " + std::string(TypeName(a)) + " with " + std::string(TypeName(b)));
      }
      if (!c) return true;
      bool r = n.binop == BinOp::kLt   ? *c < 0
               : n.binop == BinOp::kLe ? *c <= 0
               : n.binop == BinOp::kGt ? *c > 0
                                       : *c >= 0;
      out.push_back(Item::Boolean(r));
      return true;
    }
    default: return Arithmetic(n, a, b, out);
  }
}

bool Evaluator::Arithmetic(const Node& n, const Item& a, const Item& b, Vec& out) {
  ItemKind ka = a.kind(), kb = b.kind();
  BinOp op = n.binop;
  if (ka == ItemKind::kInteger && kb == ItemKind::kInteger && op != BinOp::kDiv) {
    int64_t x = a.integer(), y = b.integer(), r = 0;
    bool overflow = false;
    switch (op) {
      case BinOp::kAdd: overflow = __builtin_add_overflow(x, y, &r); break;
      case BinOp::kSub: overflow = __builtin_sub_overflow(x, y, &r); break;
      case BinOp::kMul: overflow = __builtin_mul_overflow(x, y, &r); break;
      case BinOp::kIntDiv:
        if (y == 0) return true;
        r = x / y;
        break;
      case BinOp::kMod:
        if (y == 0) return true;
        r = x % y;
        break;
      default: break;
    }
    if (overflow) return true;
    out.push_back(Item::Integer(r));
    return true;
  }
  if (IsNumber(a) && IsNumber(b)) {
    Decimal x = AsDecimal(a), y = AsDecimal(b), r;
    bool ok = false;
    switch (op) {
      case BinOp::kAdd: ok = Decimal::Add(x, y, &r); break;
      case BinOp::kSub: ok = Decimal::Sub(x, y, &r); break;
      case BinOp::kMul: ok = Decimal::Mul(x, y, &r); break;
      case BinOp::kDiv: ok = Decimal::Div(x, y, &r); break;
      case BinOp::kIntDiv:
        ok = Decimal::IntDiv(x, y, &r);
        if (ok) {
          out.push_back(Item::Integer(r.ToInt64().value_or(0)));
          return true;
        }
        break;
      case BinOp::kMod: ok = Decimal::Mod(x, y, &r); break;
      default: break;
    }
    if (ok) out.push_back(Item::FromDecimal(r));
    return true;
  }
  if (ka == ItemKind::kString && kb == ItemKind::kString && op == BinOp::kAdd) {
    std::string s(a.string());
    s += b.string();
    out.push_back(Item::String(Keep(s)));
    return true;
  }
  if ((ka == ItemKind::kDate || ka == ItemKind::kDateTime || ka == ItemKind::kTime) && kb == ItemKind::kQuantity &&
      (op == BinOp::kAdd || op == BinOp::kSub)) {
    const Quantity& q = b.quantity();
    auto unit = CalendarUnitOf(q.unit);
    if (!unit) return Fail(n, "cannot add '" + std::string(q.unit) + "' to a date: not a calendar duration");
    auto amount = q.value.Truncate().ToInt64();
    if (!amount) return Fail(n, "duration out of range");
    DateTime r;
    if (!a.datetime().Add(op == BinOp::kSub ? -*amount : *amount, *unit, &r)) {
      return Fail(n, "date arithmetic out of range or not applicable");
    }
    out.push_back(Item::FromDateTime(r));
    return true;
  }
  if (ka == ItemKind::kQuantity && kb == ItemKind::kQuantity) {
    const Quantity& x = a.quantity();
    const Quantity& y = b.quantity();
    Decimal r;
    if (op == BinOp::kAdd || op == BinOp::kSub) {
      Decimal yv;
      if (UcumUnit(x) == UcumUnit(y)) {
        yv = y.value;
      } else if (!ucum::Convert(y.value, UcumUnit(y), UcumUnit(x), &yv)) {
        return true;
      }
      if (!(op == BinOp::kAdd ? Decimal::Add(x.value, yv, &r) : Decimal::Sub(x.value, yv, &r))) return true;
      out.push_back(MakeQuantity(r, x.unit, x.calendar));
      return true;
    }
    if (op == BinOp::kMul || op == BinOp::kDiv) {
      std::string_view ux = UcumUnit(x), uy = UcumUnit(y);
      if (!(op == BinOp::kMul ? Decimal::Mul(x.value, y.value, &r) : Decimal::Div(x.value, y.value, &r))) return true;
      std::string unit;
      auto wrap = [](std::string_view u) {
        return u.find_first_of("./") == std::string_view::npos ? std::string(u) : "(" + std::string(u) + ")";
      };
      if (op == BinOp::kDiv && ux == uy) {
        unit = "1";
      } else if (uy == "1") {
        unit = ux;
      } else if (ux == "1" && op == BinOp::kMul) {
        unit = uy;
      } else {
        unit = wrap(ux) + (op == BinOp::kMul ? "." : "/") + wrap(uy);
      }
      out.push_back(MakeQuantity(r, Keep(unit), false));
      return true;
    }
    return Fail(n, "unsupported quantity operation");
  }
  if (ka == ItemKind::kQuantity && IsNumber(b) && (op == BinOp::kMul || op == BinOp::kDiv)) {
    Decimal r;
    bool ok = op == BinOp::kMul ? Decimal::Mul(a.quantity().value, AsDecimal(b), &r)
                                : Decimal::Div(a.quantity().value, AsDecimal(b), &r);
    if (ok) out.push_back(MakeQuantity(r, a.quantity().unit, a.quantity().calendar));
    return true;
  }
  if (IsNumber(a) && kb == ItemKind::kQuantity && op == BinOp::kMul) {
    Decimal r;
    if (Decimal::Mul(AsDecimal(a), b.quantity().value, &r)) {
      out.push_back(MakeQuantity(r, b.quantity().unit, b.quantity().calendar));
    }
    return true;
  }
  return Fail(n, "operator not defined for " + std::string(TypeName(a)) + " and " + std::string(TypeName(b)));
}

bool Evaluator::Resolve(const Item& item, Vec& out) {
  std::string_view ref;
  if (item.is_node() && item.node() != nullptr && item.node()->is_object()) {
    const json::Value* r = item.node()->Find("reference");
    if (r == nullptr || !r->is_string()) return true;
    ref = r->as_string();
  } else {
    Item v;
    if (!ToSystem(item, arena_, &v) || v.kind() != ItemKind::kString) return true;
    ref = v.string();
  }
  if (ref.empty()) return true;
  EnsureResources();
  auto emit = [&](const json::Value& resource) {
    out.push_back(Item::Node(&resource, nullptr, Refine(resource, nullptr)));
  };
  if (ref[0] == '#') {
    std::string_view id = ref.substr(1);
    for (const Item* holder : {&resource_item_, &root_item_}) {
      if (holder->node() == nullptr) continue;
      const json::Value* contained = holder->node()->Find("contained");
      if (contained == nullptr) continue;
      for (const json::Value& c : contained->items()) {
        const json::Value* cid = c.Find("id");
        if (cid != nullptr && cid->as_string() == id) {
          emit(c);
          return true;
        }
      }
      if (id.empty()) {
        emit(*holder->node());
        return true;
      }
    }
    return true;
  }
  // Bundle-local: the root resource (or the context) is a Bundle.
  for (const Item* holder : {&root_item_, &resource_item_}) {
    const json::Value* bundle = holder->node();
    if (bundle == nullptr) continue;
    const json::Value* rt = bundle->Find("resourceType");
    if (rt == nullptr || rt->as_string() != "Bundle") continue;
    const json::Value* entries = bundle->Find("entry");
    if (entries == nullptr) continue;
    for (const json::Value& e : entries->items()) {
      const json::Value* full = e.Find("fullUrl");
      const json::Value* res = e.Find("resource");
      if (res == nullptr) continue;
      if (full != nullptr && full->as_string() == ref) {
        emit(*res);
        return true;
      }
      const json::Value* t = res->Find("resourceType");
      const json::Value* id = res->Find("id");
      if (t == nullptr || id == nullptr) continue;
      std::string_view ts = t->as_string(), ids = id->as_string();
      // "Patient/123" or ".../Patient/123" (optionally with /_history/n).
      std::string_view r = ref;
      size_t hist = r.find("/_history/");
      if (hist != std::string_view::npos) r = r.substr(0, hist);
      if (r.size() >= ts.size() + 1 + ids.size() && r.ends_with(ids) &&
          r.substr(r.size() - ids.size() - 1 - ts.size(), ts.size()) == ts && r[r.size() - ids.size() - 1] == '/' &&
          (r.size() == ts.size() + 1 + ids.size() || r[r.size() - ids.size() - 2 - ts.size()] == '/')) {
        emit(*res);
        return true;
      }
    }
  }
  if (options_.resolver != nullptr) {
    if (const json::Value* v = options_.resolver->Resolve(ref)) {
      emit(*v);
      return true;
    }
  }
  // Unresolved, but the reference names its target ("Patient/123" or
  // ".../Patient/123/_history/2"): a stub {resourceType, id} so that type
  // tests such as subject.where(resolve() is Patient) work without a store.
  std::string_view r = ref;
  size_t hist = r.find("/_history/");
  if (hist != std::string_view::npos) r = r.substr(0, hist);
  size_t slash = r.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return true;
  std::string_view id = r.substr(slash + 1);
  std::string_view head = r.substr(0, slash);
  std::string_view type = head.substr(head.rfind('/') == std::string_view::npos ? 0 : head.rfind('/') + 1);
  if (id.empty() || fhir::FindResourceType(type) == nullptr) return true;
  auto* members = arena_.AllocateArray<json::Member>(2);
  static constexpr std::string_view kResourceType = "resourceType";
  static constexpr std::string_view kId = "id";
  new (&members[0]) json::Member{json::Value::StringRef(kResourceType), json::Value::StringRef(type)};
  new (&members[1]) json::Member{json::Value::StringRef(kId), json::Value::StringRef(id)};
  auto* stub = new (arena_.AllocateArray<json::Value>(1)) json::Value(json::Value::ObjectRef(members, 2));
  emit(*stub);
  return true;
}

bool Evaluator::Call(const Node& n, Collection focus, Vec& out) {
  if (n.fused_member) return MemberOfResourceType(n, focus, out);
  Collection input = focus;
  if (n.lhs >= 0 && !EvalTo(n.lhs, focus, &input)) return false;
  switch (n.func) {
    case Func::kEmpty: out.push_back(Item::Boolean(input.empty())); return true;
    case Func::kExists: {
      if (n.args_count == 0) {
        out.push_back(Item::Boolean(!input.empty()));
        return true;
      }
      bool any = false;
      Vec tmp(arena_);
      bool ok = ForEach(input, [&](size_t, Collection item) {
        tmp.clear();
        int b;
        if (!Eval(Arg(n, 0), item, tmp) || !ToBool(n, tmp.span(), &b)) return false;
        if (b == 1) any = true;
        return !any;
      });
      if (!ok && !status_.ok()) return false;
      out.push_back(Item::Boolean(any));
      return true;
    }
    case Func::kAll: {
      bool all = true;
      Vec tmp(arena_);
      bool ok = ForEach(input, [&](size_t, Collection item) {
        tmp.clear();
        int b;
        if (!Eval(Arg(n, 0), item, tmp) || !ToBool(n, tmp.span(), &b)) return false;
        if (b != 1) all = false;
        return all;
      });
      if (!ok && !status_.ok()) return false;
      out.push_back(Item::Boolean(all));
      return true;
    }
    case Func::kAllTrue:
    case Func::kAnyTrue:
    case Func::kAllFalse:
    case Func::kAnyFalse: {
      bool want = n.func == Func::kAllTrue || n.func == Func::kAnyTrue;
      bool all = n.func == Func::kAllTrue || n.func == Func::kAllFalse;
      bool result = all;
      for (const Item& i : input) {
        Item v;
        if (!ToSystem(i, arena_, &v) || v.kind() != ItemKind::kBoolean) return Fail(n, "items must be booleans");
        if (all && v.boolean() != want) result = false;
        if (!all && v.boolean() == want) result = true;
      }
      out.push_back(Item::Boolean(result));
      return true;
    }
    case Func::kSubsetOf:
    case Func::kSupersetOf: {
      Collection other;
      if (!EvalArg(n, 0, &other)) return false;
      Collection sub = n.func == Func::kSubsetOf ? input : other;
      Collection super = n.func == Func::kSubsetOf ? other : input;
      bool r = true;
      for (const Item& i : sub) {
        if (!Contains(super, i)) {
          r = false;
          break;
        }
      }
      out.push_back(Item::Boolean(r));
      return true;
    }
    case Func::kCount: out.push_back(Item::Integer(static_cast<int64_t>(input.size()))); return true;
    case Func::kDistinct: {
      Vec d(arena_);
      AppendDistinct(input, d);
      out.append(d.span());
      return true;
    }
    case Func::kIsDistinct: {
      Vec d(arena_);
      AppendDistinct(input, d);
      out.push_back(Item::Boolean(d.size() == input.size()));
      return true;
    }
    case Func::kWhere: {
      Vec tmp(arena_);
      return ForEach(input, [&](size_t i, Collection item) {
        tmp.clear();
        int b;
        if (!Eval(Arg(n, 0), item, tmp) || !ToBool(n, tmp.span(), &b)) return false;
        if (b == 1) out.push_back(input[i]);
        return true;
      });
    }
    case Func::kSelect: return ForEach(input, [&](size_t, Collection item) { return Eval(Arg(n, 0), item, out); });
    case Func::kRepeat: {
      Vec result(arena_);
      Collection frontier = input;
      int rounds = 0;
      while (!frontier.empty()) {
        if (++rounds > 10000) return Fail(n, "repeat() did not finish");
        Vec next(arena_);
        if (!ForEach(frontier, [&](size_t, Collection item) {
              Vec found(arena_);
              if (!Eval(Arg(n, 0), item, found)) return false;
              for (const Item& f : found.span()) {
                bool seen = false;
                for (const Item& r : result.span()) {
                  if (f.is_node() && r.is_node()
                          ? (f.node() == r.node() && f.extension_object() == r.extension_object())
                          : ItemsEqual(f, r, arena_) == Tri::kTrue) {
                    seen = true;
                    break;
                  }
                }
                if (!seen) {
                  result.push_back(f);
                  next.push_back(f);
                }
              }
              return true;
            })) {
          return false;
        }
        frontier = next.span();
      }
      out.append(result.span());
      return true;
    }
    case Func::kOfType:
      for (const Item& i : input) {
        if (IsOfType(i, n.type, true)) out.push_back(i);
      }
      return true;
    case Func::kSingle:
      if (input.size() > 1) return Fail(n, "single() on " + std::to_string(input.size()) + " items");
      out.append(input);
      return true;
    case Func::kFirst:
      if (!input.empty()) out.push_back(input[0]);
      return true;
    case Func::kLast:
      if (!input.empty()) out.push_back(input[input.size() - 1]);
      return true;
    case Func::kTail:
      if (input.size() > 1) out.append(input.subspan(1));
      return true;
    case Func::kSkip:
    case Func::kTake: {
      int64_t k;
      bool present;
      if (!ArgInteger(n, 0, &k, &present)) return false;
      if (!present) return true;
      size_t count = k < 0 ? 0 : (static_cast<uint64_t>(k) > input.size() ? input.size() : static_cast<size_t>(k));
      out.append(n.func == Func::kSkip ? input.subspan(count) : input.first(count));
      return true;
    }
    case Func::kIntersect:
    case Func::kExclude: {
      Collection other;
      if (!EvalArg(n, 0, &other)) return false;
      if (n.func == Func::kIntersect) {
        Vec r(arena_);
        for (const Item& i : input) {
          if (Contains(other, i) && !Contains(r.span(), i)) r.push_back(i);
        }
        out.append(r.span());
      } else {
        for (const Item& i : input) {
          if (!Contains(other, i)) out.push_back(i);
        }
      }
      return true;
    }
    case Func::kUnion:
    case Func::kCombine: {
      Collection other;
      if (!EvalArg(n, 0, &other)) return false;
      if (n.func == Func::kUnion) {
        Vec u(arena_);
        AppendDistinct(input, u);
        AppendDistinct(other, u);
        out.append(u.span());
      } else {
        out.append(input);
        out.append(other);
      }
      return true;
    }
    case Func::kIif: {
      if (input.size() > 1) return Fail(n, "iif() on " + std::to_string(input.size()) + " items");
      Collection saved = this_;
      if (!input.empty()) this_ = input.first(1);
      Collection criterion;
      bool ok = EvalTo(Arg(n, 0), this_, &criterion);
      int b = -1;
      if (ok) {
        if (criterion.size() > 1) {
          ok = Fail(n, "the criterion of iif() must be a single boolean");
        } else if (criterion.size() == 1) {
          Item v;
          if (!ToSystem(criterion[0], arena_, &v) || v.kind() != ItemKind::kBoolean) {
            ok = Fail(n, "the criterion of iif() must be a boolean");
          } else {
            b = v.boolean() ? 1 : 0;
          }
        }
      }
      if (ok) {
        if (b == 1) {
          ok = Eval(Arg(n, 1), this_, out);
        } else if (n.args_count > 2) {
          ok = Eval(Arg(n, 2), this_, out);
        }
      }
      this_ = saved;
      return ok;
    }
    case Func::kNot: {
      int b;
      if (!ToBool(n, input, &b)) return false;
      if (b >= 0) out.push_back(Item::Boolean(b == 0));
      return true;
    }
    case Func::kIs:
    case Func::kAs: {
      if (input.empty()) return true;
      if (input.size() > 1) return Fail(n, std::string(n.name) + "() on " + std::to_string(input.size()) + " items");
      bool match = IsOfType(input[0], n.type, n.func == Func::kAs);
      if (n.func == Func::kIs) {
        out.push_back(Item::Boolean(match));
      } else if (match) {
        out.push_back(input[0]);
      }
      return true;
    }
    case Func::kType: {
      for (const Item& i : input) {
        auto* t = new (arena_.AllocateArray<TypeInfo>(1)) TypeInfo();
        t->ns = TypeNamespace(i);
        t->name = TypeName(i);
        out.push_back(Item::FromTypeInfo(t));
      }
      return true;
    }
    case Func::kChildren:
      for (const Item& i : input) AllChildren(i, out);
      return true;
    case Func::kDescendants: {
      Vec frontier(arena_);
      for (const Item& i : input) AllChildren(i, frontier);
      while (!frontier.empty()) {
        out.append(frontier.span());
        Vec next(arena_);
        for (const Item& i : frontier.span()) AllChildren(i, next);
        frontier = next;
      }
      return true;
    }
    case Func::kTrace: {
      std::string_view name;
      bool present;
      if (!ArgString(n, 0, &name, &present)) return false;
      if (options_.trace != nullptr) {
        Collection shown = input;
        if (n.args_count > 1) {
          Vec projected(arena_);
          if (!ForEach(input, [&](size_t, Collection item) { return Eval(Arg(n, 1), item, projected); })) return false;
          shown = projected.span();
        }
        options_.trace->Trace(name, shown);
      }
      out.append(input);
      return true;
    }
    case Func::kNow:
    case Func::kToday:
    case Func::kTimeOfDay: {
      if (!have_now_) {
        now_ = DateTime::Now();
        have_now_ = true;
      }
      DateTime v = now_;
      if (n.func == Func::kToday) {
        v.kind = DtKind::kDate;
        v.precision = DtPrecision::kDay;
        v.has_tz = false;
      } else if (n.func == Func::kTimeOfDay) {
        v.kind = DtKind::kTime;
        v.has_tz = false;
      }
      out.push_back(Item::FromDateTime(v));
      return true;
    }
    case Func::kAggregate: {
      Collection total;
      if (n.args_count > 1 && !EvalArg(n, 1, &total)) return false;
      Collection saved_total = total_;
      total_ = total;
      bool ok = ForEach(input, [&](size_t, Collection item) {
        Collection next;
        if (!EvalTo(Arg(n, 0), item, &next)) return false;
        total_ = next;
        return true;
      });
      Collection result = total_;
      total_ = saved_total;
      if (!ok) return false;
      out.append(result);
      return true;
    }
    case Func::kSort: {
      struct Keyed {
        Item item;
        Collection keys;  // one per sort argument, each at most one item
      };
      std::vector<Keyed> rows(input.size());
      for (size_t i = 0; i < input.size(); ++i) rows[i].item = input[i];
      uint32_t nkeys = n.args_count;
      if (nkeys > 0) {
        if (!ForEach(input, [&](size_t i, Collection item) {
              Vec keys(arena_);
              for (uint32_t k = 0; k < nkeys; ++k) {
                int32_t arg = Arg(n, k);
                if (N(arg).op == Op::kNegate) arg = N(arg).lhs;
                Collection c;
                if (!EvalTo(arg, item, &c)) return false;
                if (c.size() > 1) return Fail(n, "a sort key must be a single item");
                Item v;
                if (c.empty() || !ToSystem(c[0], arena_, &v)) v = Item::Node(nullptr, nullptr, nullptr);
                keys.push_back(v);
              }
              rows[i].keys = keys.span();
              return true;
            })) {
          return false;
        }
      }
      bool failed = false;
      auto compare = [&](const Item& a, const Item& b) -> int {
        bool ea = a.is_node(), eb = b.is_node();
        if (ea || eb) return ea == eb ? 0 : (ea ? -1 : 1);
        bool incomparable;
        auto c = CompareItems(a, b, arena_, &incomparable);
        if (incomparable) failed = true;
        return c.value_or(0);
      };
      std::stable_sort(rows.begin(), rows.end(), [&](const Keyed& x, const Keyed& y) {
        if (nkeys == 0) {
          Item a, b;
          if (!ToSystem(x.item, arena_, &a) || !ToSystem(y.item, arena_, &b)) return false;
          return compare(a, b) < 0;
        }
        for (uint32_t k = 0; k < nkeys; ++k) {
          const Item& a = x.keys[k];
          const Item& b = y.keys[k];
          int c = compare(a, b);
          if (c == 0) continue;
          bool descending = N(Arg(n, k)).op == Op::kNegate;
          // Empty keys come first in either direction.
          if (a.is_node() || b.is_node()) return a.is_node();
          return descending ? c > 0 : c < 0;
        }
        return false;
      });
      if (failed) return Fail(n, "sort keys cannot be compared");
      for (const Keyed& r : rows) out.push_back(r.item);
      return true;
    }
    case Func::kExtension: {
      std::string_view url;
      bool present;
      if (!ArgString(n, 0, &url, &present)) return false;
      if (!present) return true;
      const fhir::TypeDef* ext_type = Known().extension;
      for (const Item& i : input) {
        if (!i.is_node()) continue;
        const json::Value* obj = ChildObject(i);
        if (obj == nullptr || !obj->is_object()) continue;
        const json::Value* exts = obj->Find("extension");
        if (exts == nullptr) continue;
        for (const json::Value& e : exts->items()) {
          const json::Value* u = e.Find("url");
          if (u != nullptr && u->as_string() == url) out.push_back(Item::Node(&e, nullptr, ext_type));
        }
      }
      return true;
    }
    case Func::kHasValue: {
      bool r = input.size() == 1 && input[0].is_node() && input[0].node() != nullptr && !input[0].node()->is_null() &&
               !input[0].node()->is_object() && !input[0].node()->is_array();
      out.push_back(Item::Boolean(r));
      return true;
    }
    case Func::kGetValue: {
      if (input.size() != 1 || !input[0].is_node()) return true;
      const json::Value* v = input[0].node();
      if (v == nullptr || v->is_null() || v->is_object() || v->is_array()) return true;
      Item s;
      if (ToSystem(input[0], arena_, &s)) out.push_back(s);
      return true;
    }
    case Func::kResolve:
      for (const Item& i : input) {
        if (!Resolve(i, out)) return false;
      }
      return true;
    case Func::kHtmlChecks: {
      bool ok = true;
      for (const Item& i : input) {
        Item v;
        if (!ToSystem(i, arena_, &v) || v.kind() != ItemKind::kString || !HtmlSafe(v.string())) ok = false;
      }
      out.push_back(Item::Boolean(ok));
      return true;
    }
    case Func::kConformsTo: {
      std::string_view url;
      bool present;
      if (!ArgString(n, 0, &url, &present)) return false;
      if (!present) return true;
      constexpr std::string_view kBase = "http://hl7.org/fhir/StructureDefinition/";
      const fhir::TypeDef* t = url.starts_with(kBase) ? fhir::FindType(url.substr(kBase.size())) : nullptr;
      if (t == nullptr) return Fail(n, "unknown profile " + std::string(url));
      for (const Item& i : input) out.push_back(Item::Boolean(i.type() != nullptr && i.type()->IsA(t)));
      return true;
    }
    case Func::kMemberOf: {
      std::string_view url;
      bool present;
      if (!ArgString(n, 0, &url, &present)) return false;
      if (!present || input.size() != 1) return true;
      const fhir::ValueSetDef* vs = fhir::FindValueSet(url);
      if (vs == nullptr || !vs->enumerable) return true;
      const Item& i = input[0];
      auto coding_in = [&](const json::Value& coding) {
        const json::Value* s = coding.Find("system");
        const json::Value* c = coding.Find("code");
        return c != nullptr && vs->Contains(s != nullptr ? s->as_string() : std::string_view(), c->as_string());
      };
      bool r = false;
      if (i.type() == Known().coding && i.node() != nullptr) {
        r = coding_in(*i.node());
      } else if (i.type() == Known().codeable_concept && i.node() != nullptr) {
        if (const json::Value* codings = i.node()->Find("coding")) {
          for (const json::Value& c : codings->items()) r = r || coding_in(c);
        }
      } else {
        Item v;
        if (!ToSystem(i, arena_, &v) || v.kind() != ItemKind::kString) return true;
        r = vs->Contains({}, v.string());
      }
      out.push_back(Item::Boolean(r));
      return true;
    }
    case Func::kSubsumes:
    case Func::kSubsumedBy:
    case Func::kElementDefinition:
    case Func::kSlice: return true;  // needs a terminology server or profiles: unknown
    case Func::kCheckModifiers: out.append(input); return true;
    case Func::kDefineVariable: return Fail(n, "defineVariable() is not supported");
    case Func::kLowBoundary:
    case Func::kHighBoundary:
    case Func::kPrecision:
    case Func::kComparable: return Boundary(n, input, out);
    case Func::kYearOf:
    case Func::kMonthOf:
    case Func::kDayOf:
    case Func::kHourOf:
    case Func::kMinuteOf:
    case Func::kSecondOf:
    case Func::kMillisecondOf: {
      Item v;
      bool present;
      if (!Single(n, input, &v, &present)) return false;
      if (!present) return true;
      if (v.kind() != ItemKind::kDate && v.kind() != ItemKind::kDateTime && v.kind() != ItemKind::kTime) {
        return Fail(n, "needs a date or time");
      }
      const DateTime& d = v.datetime();
      int which = static_cast<int>(n.func) - static_cast<int>(Func::kYearOf);
      DtPrecision need = static_cast<DtPrecision>(which);
      if (d.kind == DtKind::kTime ? (which < 3) : false) return true;
      if (d.precision < need) return true;
      int64_t values[] = {d.year, d.month, d.day, d.hour, d.minute, d.second, d.millis};
      out.push_back(Item::Integer(values[which]));
      return true;
    }
    default: break;
  }
  if (n.func >= Func::kToBoolean && n.func <= Func::kConvertsToQuantity) return CallConversion(n, input, out);
  if (n.func == Func::kJoin) {
    std::string_view sep;
    bool present = false;
    if (n.args_count > 0 && !ArgString(n, 0, &sep, &present)) return false;
    std::string joined;
    for (size_t i = 0; i < input.size(); ++i) {
      Item v;
      if (!ToSystem(input[i], arena_, &v) || v.kind() != ItemKind::kString) return Fail(n, "join() needs strings");
      if (i > 0) joined += sep;
      joined += v.string();
    }
    out.push_back(Item::String(Keep(joined)));
    return true;
  }
  if (n.func >= Func::kIndexOf && n.func <= Func::kUnescape) return CallString(n, input, out);
  if (n.func >= Func::kAbs && n.func <= Func::kTruncate) return CallMath(n, input, out);
  return Fail(n, "internal: function not implemented");
}

bool Evaluator::CallConversion(const Node& n, Collection input, Vec& out) {
  Item v;
  bool present;
  if (!Single(n, input, &v, &present)) return false;
  if (!present) return true;
  bool converts = false;
  Item result;
  switch (n.func) {
    case Func::kToBoolean:
    case Func::kConvertsToBoolean: {
      switch (v.kind()) {
        case ItemKind::kBoolean: result = v, converts = true; break;
        case ItemKind::kInteger:
          if (v.integer() == 0 || v.integer() == 1) result = Item::Boolean(v.integer() == 1), converts = true;
          break;
        case ItemKind::kDecimal:
          if (v.decimal() == Decimal(0, 0) || v.decimal() == Decimal(1, 0)) {
            result = Item::Boolean(v.decimal() == Decimal(1, 0)), converts = true;
          }
          break;
        case ItemKind::kString: {
          std::string s = Lower(v.string());
          if (s == "true" || s == "t" || s == "yes" || s == "y" || s == "1" || s == "1.0") {
            result = Item::Boolean(true), converts = true;
          } else if (s == "false" || s == "f" || s == "no" || s == "n" || s == "0" || s == "0.0") {
            result = Item::Boolean(false), converts = true;
          }
          break;
        }
        default: break;
      }
      break;
    }
    case Func::kToInteger:
    case Func::kConvertsToInteger: {
      int64_t i;
      if (v.kind() == ItemKind::kInteger) {
        result = v, converts = true;
      } else if (v.kind() == ItemKind::kBoolean) {
        result = Item::Integer(v.boolean() ? 1 : 0), converts = true;
      } else if (v.kind() == ItemKind::kString && ParseIntegerText(v.string(), &i)) {
        result = Item::Integer(i), converts = true;
      }
      break;
    }
    case Func::kToDecimal:
    case Func::kConvertsToDecimal: {
      if (v.kind() == ItemKind::kDecimal) {
        result = v, converts = true;
      } else if (v.kind() == ItemKind::kInteger) {
        result = Item::FromDecimal(Decimal::FromInt(v.integer())), converts = true;
      } else if (v.kind() == ItemKind::kBoolean) {
        result = Item::FromDecimal(Decimal(v.boolean() ? 10 : 0, 1)), converts = true;
      } else if (v.kind() == ItemKind::kString && IsDecimalText(v.string())) {
        if (auto d = Decimal::Parse(v.string())) result = Item::FromDecimal(*d), converts = true;
      }
      break;
    }
    case Func::kToString:
    case Func::kConvertsToString: {
      if (v.is_node() || v.kind() == ItemKind::kTypeInfo) break;
      if (v.kind() == ItemKind::kString) {
        result = v;
      } else {
        std::string s;
        AppendText(v, s);
        result = Item::String(Keep(s));
      }
      converts = true;
      break;
    }
    case Func::kToDate:
    case Func::kConvertsToDate:
    case Func::kToDateTime:
    case Func::kConvertsToDateTime:
    case Func::kToTime:
    case Func::kConvertsToTime: {
      bool date = n.func == Func::kToDate || n.func == Func::kConvertsToDate;
      bool time = n.func == Func::kToTime || n.func == Func::kConvertsToTime;
      std::optional<DateTime> d;
      if (v.kind() == ItemKind::kString) {
        d = date ? DateTime::ParseDate(v.string())
                 : (time ? DateTime::ParseTime(v.string()) : DateTime::ParseDateTime(v.string()));
      } else if (v.kind() == ItemKind::kDate || v.kind() == ItemKind::kDateTime) {
        if (!time) {
          d = v.datetime();
          if (date) {
            d->kind = DtKind::kDate;
            if (d->precision > DtPrecision::kDay) d->precision = DtPrecision::kDay;
            d->has_tz = false;
          } else {
            d->kind = DtKind::kDateTime;
          }
        }
      } else if (v.kind() == ItemKind::kTime && time) {
        d = v.datetime();
      }
      if (d) result = Item::FromDateTime(*d), converts = true;
      break;
    }
    case Func::kToQuantity:
    case Func::kConvertsToQuantity: {
      const Quantity* q = nullptr;
      if (v.kind() == ItemKind::kQuantity) {
        q = &v.quantity();
      } else if (IsNumber(v)) {
        result = MakeQuantity(AsDecimal(v), "1", false);
        q = &result.quantity();
      } else if (v.kind() == ItemKind::kBoolean) {
        result = MakeQuantity(Decimal(v.boolean() ? 10 : 0, 1), "1", false);
        q = &result.quantity();
      } else if (v.kind() == ItemKind::kString) {
        std::string_view s = v.string();
        size_t sp = s.find(' ');
        std::string_view num = s.substr(0, sp);
        std::string_view unit = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
        while (!unit.empty() && unit[0] == ' ') unit.remove_prefix(1);
        if (IsDecimalText(num)) {
          auto d = Decimal::Parse(num);
          if (unit.empty()) {
            result = MakeQuantity(*d, "1", false);
            q = &result.quantity();
          } else if (unit.size() >= 2 && unit.front() == '\'' && unit.back() == '\'') {
            std::string_view u = unit.substr(1, unit.size() - 2);
            if (ucum::Resolve(u)) {
              result = MakeQuantity(*d, Keep(u), false);
              q = &result.quantity();
            }
          } else if (CalendarUnitOf(unit) && unit != "d" && unit != "wk" && unit != "h" && unit != "min" &&
                     unit != "s" && unit != "ms") {
            result = MakeQuantity(*d, Keep(unit), true);
            q = &result.quantity();
          }
        }
      }
      if (q != nullptr) {
        converts = true;
        if (v.kind() == ItemKind::kQuantity) result = v;
        if (n.args_count > 0) {
          std::string_view unit;
          bool has_unit;
          if (!ArgString(n, 0, &unit, &has_unit)) return false;
          if (has_unit && unit != UcumUnit(*q)) {
            Decimal converted;
            if (ucum::Convert(q->value, UcumUnit(*q), unit, &converted)) {
              result = MakeQuantity(converted, Keep(unit), false);
            } else {
              converts = false;
            }
          }
        }
      }
      break;
    }
    default: break;
  }
  bool converts_to = n.func == Func::kConvertsToBoolean || n.func == Func::kConvertsToInteger ||
                     n.func == Func::kConvertsToDecimal || n.func == Func::kConvertsToString ||
                     n.func == Func::kConvertsToDate || n.func == Func::kConvertsToDateTime ||
                     n.func == Func::kConvertsToTime || n.func == Func::kConvertsToQuantity;
  if (converts_to) {
    out.push_back(Item::Boolean(converts));
  } else if (converts) {
    out.push_back(result);
  }
  return true;
}

bool Evaluator::CallString(const Node& n, Collection input, Vec& out) {
  Item v;
  bool present;
  if (!Single(n, input, &v, &present)) return false;
  if (!present) return true;
  if (v.kind() != ItemKind::kString) {
    return Fail(n, std::string(n.name) + "() needs a string, not " + std::string(TypeName(v)));
  }
  std::string_view s = v.string();
  auto string_arg = [&](uint32_t i, std::string_view* a) {
    bool p;
    if (!ArgString(n, i, a, &p)) return -1;
    return p ? 1 : 0;
  };
  auto regex_for = [&](std::string_view pattern, std::unique_ptr<re2::RE2>* local) -> const re2::RE2* {
    if (n.regex >= 0) return p_.regexes[static_cast<size_t>(n.regex)].get();
    auto re = CompileRegex(pattern);
    if (!re.ok()) {
      Fail(n, re.status().message());
      return nullptr;
    }
    *local = std::move(re).value();
    return local->get();
  };
  switch (n.func) {
    case Func::kIndexOf:
    case Func::kLastIndexOf: {
      std::string_view sub;
      int r = string_arg(0, &sub);
      if (r <= 0) return r == 0;
      size_t at = n.func == Func::kIndexOf ? s.find(sub) : s.rfind(sub);
      out.push_back(
          Item::Integer(at == std::string_view::npos ? -1 : static_cast<int64_t>(CodePoints(s.substr(0, at)))));
      return true;
    }
    case Func::kSubstring: {
      int64_t start, length = -1;
      bool p;
      if (!ArgInteger(n, 0, &start, &p)) return false;
      if (!p) return true;
      if (n.args_count > 1) {
        bool pl;
        if (!ArgInteger(n, 1, &length, &pl)) return false;
        if (!pl) length = -1;
      }
      int64_t count = static_cast<int64_t>(CodePoints(s));
      if (start < 0 || start >= count) return true;
      size_t b = ByteOffset(s, static_cast<size_t>(start));
      size_t e = length < 0 ? s.size() : ByteOffset(s, static_cast<size_t>(std::min(count, start + length)));
      out.push_back(Item::String(s.substr(b, e - b)));
      return true;
    }
    case Func::kStartsWith:
    case Func::kEndsWith:
    case Func::kContains: {
      std::string_view a;
      int r = string_arg(0, &a);
      if (r <= 0) return r == 0;
      bool b = n.func == Func::kStartsWith
                   ? s.starts_with(a)
                   : (n.func == Func::kEndsWith ? s.ends_with(a) : s.find(a) != std::string_view::npos);
      out.push_back(Item::Boolean(b));
      return true;
    }
    case Func::kUpper:
    case Func::kLower: {
      std::string t(s);
      for (char& c : t) {
        c = static_cast<char>(n.func == Func::kUpper ? std::toupper(static_cast<unsigned char>(c))
                                                     : std::tolower(static_cast<unsigned char>(c)));
      }
      out.push_back(Item::String(Keep(t)));
      return true;
    }
    case Func::kReplace: {
      std::string_view pattern, subst;
      int r1 = string_arg(0, &pattern);
      if (r1 < 0) return false;
      int r2 = string_arg(1, &subst);
      if (r2 < 0) return false;
      if (r1 == 0 || r2 == 0) return true;
      std::string t;
      if (pattern.empty()) {
        t += subst;
        for (char c : s) {
          t.push_back(c);
          if ((static_cast<unsigned char>(c) & 0xC0) != 0xC0) t += subst;
        }
      } else {
        size_t at = 0;
        for (;;) {
          size_t f = s.find(pattern, at);
          if (f == std::string_view::npos) break;
          t += s.substr(at, f - at);
          t += subst;
          at = f + pattern.size();
        }
        t += s.substr(at);
      }
      out.push_back(Item::String(Keep(t)));
      return true;
    }
    case Func::kMatches:
    case Func::kMatchesFull: {
      std::string_view pattern;
      int r = string_arg(0, &pattern);
      if (r <= 0) return r == 0;
      std::unique_ptr<re2::RE2> local;
      const re2::RE2* re = regex_for(pattern, &local);
      if (re == nullptr) return false;
      re2::StringPiece text(s.data(), s.size());
      bool m = n.func == Func::kMatches ? RE2::PartialMatch(text, *re) : RE2::FullMatch(text, *re);
      out.push_back(Item::Boolean(m));
      return true;
    }
    case Func::kReplaceMatches: {
      std::string_view pattern, subst;
      int r1 = string_arg(0, &pattern);
      if (r1 < 0) return false;
      int r2 = string_arg(1, &subst);
      if (r2 < 0) return false;
      if (r1 == 0 || r2 == 0) return true;
      if (pattern.empty()) {
        out.push_back(v);
        return true;
      }
      std::unique_ptr<re2::RE2> local;
      const re2::RE2* re = regex_for(pattern, &local);
      if (re == nullptr) return false;
      // FHIRPath (like ECMAScript) writes groups as $1 in the substitution;
      // RE2 as \1, with backslashes escaped.
      std::string rewrite;
      for (size_t i = 0; i < subst.size(); ++i) {
        char c = subst[i];
        if (c == '\\') {
          rewrite += "\\\\";
        } else if (c == '$' && i + 1 < subst.size() && subst[i + 1] >= '0' && subst[i + 1] <= '9') {
          rewrite += '\\';
          rewrite += subst[++i];
        } else if (c == '$' && i + 1 < subst.size() && subst[i + 1] == '$') {
          rewrite += '$';
          ++i;
        } else {
          rewrite += c;
        }
      }
      std::string t(s);
      RE2::GlobalReplace(&t, *re, rewrite);
      out.push_back(Item::String(Keep(t)));
      return true;
    }
    case Func::kLength: out.push_back(Item::Integer(static_cast<int64_t>(CodePoints(s)))); return true;
    case Func::kToChars: {
      for (size_t i = 0; i < s.size();) {
        size_t j = i + 1;
        while (j < s.size() && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) ++j;
        out.push_back(Item::String(s.substr(i, j - i)));
        i = j;
      }
      return true;
    }
    case Func::kTrim: {
      size_t b = s.find_first_not_of(" \t\r\n");
      if (b == std::string_view::npos) {
        out.push_back(Item::String(""));
        return true;
      }
      size_t e = s.find_last_not_of(" \t\r\n");
      out.push_back(Item::String(s.substr(b, e - b + 1)));
      return true;
    }
    case Func::kSplit: {
      std::string_view sep;
      int r = string_arg(0, &sep);
      if (r <= 0) return r == 0;
      if (sep.empty()) {
        out.push_back(v);
        return true;
      }
      size_t at = 0;
      for (;;) {
        size_t f = s.find(sep, at);
        if (f == std::string_view::npos) break;
        out.push_back(Item::String(s.substr(at, f - at)));
        at = f + sep.size();
      }
      out.push_back(Item::String(s.substr(at)));
      return true;
    }
    case Func::kEncode:
    case Func::kDecode:
    case Func::kEscape:
    case Func::kUnescape: {
      std::string_view format;
      int r = string_arg(0, &format);
      if (r <= 0) return r == 0;
      std::string t;
      if (n.func == Func::kEncode) {
        if (format == "base64" || format == "urlbase64") {
          t = Base64Encode(s, format == "urlbase64");
        } else if (format == "hex") {
          static constexpr char kHex[] = "0123456789abcdef";
          for (char c : s) {
            t.push_back(kHex[(static_cast<unsigned char>(c) >> 4) & 15]);
            t.push_back(kHex[static_cast<unsigned char>(c) & 15]);
          }
        } else {
          return true;
        }
      } else if (n.func == Func::kDecode) {
        if (format == "base64" || format == "urlbase64") {
          if (!Base64Decode(s, &t)) return true;
        } else if (format == "hex") {
          if (s.size() % 2 != 0) return true;
          for (size_t i = 0; i < s.size(); i += 2) {
            int hi =
                std::isxdigit(static_cast<unsigned char>(s[i])) ? std::stoi(std::string(1, s[i]), nullptr, 16) : -1;
            int lo = std::isxdigit(static_cast<unsigned char>(s[i + 1]))
                         ? std::stoi(std::string(1, s[i + 1]), nullptr, 16)
                         : -1;
            if (hi < 0 || lo < 0) return true;
            t.push_back(static_cast<char>(hi * 16 + lo));
          }
        } else {
          return true;
        }
      } else if (n.func == Func::kEscape) {
        for (char c : s) {
          if (format == "html") {
            switch (c) {
              case '<': t += "&lt;"; break;
              case '>': t += "&gt;"; break;
              case '&': t += "&amp;"; break;
              case '"': t += "&quot;"; break;
              case '\'': t += "&#39;"; break;
              default: t.push_back(c);
            }
          } else if (format == "json") {
            switch (c) {
              case '"': t += "\\\""; break;
              case '\\': t += "\\\\"; break;
              case '\n': t += "\\n"; break;
              case '\r': t += "\\r"; break;
              case '\t': t += "\\t"; break;
              default: t.push_back(c);
            }
          } else {
            return true;
          }
        }
      } else {
        if (format == "html") {
          static constexpr std::pair<std::string_view, char> kEntities[] = {
              {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&#39;", '\''}, {"&apos;", '\''}};
          for (size_t i = 0; i < s.size();) {
            bool matched = false;
            for (const auto& [entity, ch] : kEntities) {
              if (s.substr(i, entity.size()) == entity) {
                t.push_back(ch);
                i += entity.size();
                matched = true;
                break;
              }
            }
            if (!matched) t.push_back(s[i++]);
          }
        } else if (format == "json") {
          for (size_t i = 0; i < s.size(); ++i) {
            if (s[i] == '\\' && i + 1 < s.size()) {
              char e = s[++i];
              t.push_back(e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e);
            } else {
              t.push_back(s[i]);
            }
          }
        } else {
          return true;
        }
      }
      out.push_back(Item::String(Keep(t)));
      return true;
    }
    default: return Fail(n, "internal: string function");
  }
}

bool Evaluator::CallMath(const Node& n, Collection input, Vec& out) {
  Item v;
  bool present;
  if (!Single(n, input, &v, &present)) return false;
  if (!present) return true;
  if (v.kind() == ItemKind::kQuantity && n.func == Func::kAbs) {
    out.push_back(MakeQuantity(v.quantity().value.Abs(), v.quantity().unit, v.quantity().calendar));
    return true;
  }
  if (!IsNumber(v)) return Fail(n, std::string(n.name) + "() needs a number");
  bool integer = v.kind() == ItemKind::kInteger;
  Decimal d = AsDecimal(v);
  auto from_double = [&](double x) {
    if (auto r = Decimal::FromDouble(x)) out.push_back(Item::FromDecimal(*r));
    return true;
  };
  switch (n.func) {
    case Func::kAbs:
      out.push_back(integer ? Item::Integer(v.integer() < 0 ? -v.integer() : v.integer()) : Item::FromDecimal(d.Abs()));
      return true;
    case Func::kCeiling:
    case Func::kFloor:
    case Func::kTruncate: {
      Decimal r = n.func == Func::kCeiling ? d.Ceiling() : (n.func == Func::kFloor ? d.Floor() : d.Truncate());
      auto i = r.ToInt64();
      if (i) out.push_back(Item::Integer(*i));
      return true;
    }
    case Func::kRound: {
      int64_t digits = 0;
      if (n.args_count > 0) {
        bool p;
        if (!ArgInteger(n, 0, &digits, &p)) return false;
        if (digits < 0) return Fail(n, "round() precision must not be negative");
      }
      out.push_back(Item::FromDecimal(d.Round(static_cast<int>(digits))));
      return true;
    }
    case Func::kExp: return from_double(std::exp(d.ToDouble()));
    case Func::kLn: {
      double x = d.ToDouble();
      if (x <= 0) return true;
      return from_double(std::log(x));
    }
    case Func::kSqrt: {
      double x = d.ToDouble();
      if (x < 0) return true;
      return from_double(std::sqrt(x));
    }
    case Func::kLog: {
      Item base;
      bool p;
      if (!ArgSingle(n, 0, &base, &p)) return false;
      if (!p) return true;
      if (!IsNumber(base)) return Fail(n, "log() base must be a number");
      double x = d.ToDouble(), b = AsDecimal(base).ToDouble();
      if (x <= 0 || b <= 0 || b == 1) return true;
      return from_double(std::log(x) / std::log(b));
    }
    case Func::kPower: {
      Item e;
      bool p;
      if (!ArgSingle(n, 0, &e, &p)) return false;
      if (!p) return true;
      if (!IsNumber(e)) return Fail(n, "power() exponent must be a number");
      if (e.kind() == ItemKind::kInteger && e.integer() >= 0 && e.integer() <= 64) {
        if (integer) {
          int64_t r = 1;
          for (int64_t i = 0; i < e.integer(); ++i) {
            if (__builtin_mul_overflow(r, v.integer(), &r)) return true;
          }
          out.push_back(Item::Integer(r));
          return true;
        }
        Decimal r(1, 0);
        for (int64_t i = 0; i < e.integer(); ++i) {
          if (!Decimal::Mul(r, d, &r)) return true;
        }
        out.push_back(Item::FromDecimal(r));
        return true;
      }
      double r = std::pow(d.ToDouble(), AsDecimal(e).ToDouble());
      if (std::isnan(r)) return true;
      return from_double(r);
    }
    default: return Fail(n, "internal: math function");
  }
}

bool Evaluator::Boundary(const Node& n, Collection input, Vec& out) {
  Item v;
  bool present;
  if (!Single(n, input, &v, &present)) return false;
  if (!present) return true;
  if (n.func == Func::kComparable) {
    Item other;
    bool p;
    if (!ArgSingle(n, 0, &other, &p)) return false;
    if (!p) return true;
    if (v.kind() != ItemKind::kQuantity || other.kind() != ItemKind::kQuantity) {
      return Fail(n, "comparable() needs quantities");
    }
    out.push_back(Item::Boolean(CompareQuantities(v.quantity(), other.quantity()).has_value()));
    return true;
  }
  if (n.func == Func::kPrecision) {
    switch (v.kind()) {
      case ItemKind::kDecimal: out.push_back(Item::Integer(v.decimal().scale())); return true;
      case ItemKind::kInteger: out.push_back(Item::Integer(0)); return true;
      case ItemKind::kDate:
      case ItemKind::kDateTime:
      case ItemKind::kTime: out.push_back(Item::Integer(v.datetime().PrecisionDigits())); return true;
      default: return Fail(n, "precision() needs a decimal, date or time");
    }
  }
  bool high = n.func == Func::kHighBoundary;
  int64_t digits = -1;
  if (n.args_count > 0) {
    bool p;
    if (!ArgInteger(n, 0, &digits, &p)) return false;
    if (!p) digits = -1;
  }
  if (v.kind() == ItemKind::kDate || v.kind() == ItemKind::kDateTime || v.kind() == ItemKind::kTime) {
    const DateTime& d = v.datetime();
    if (digits < 0) digits = d.kind == DtKind::kTime ? 9 : (d.kind == DtKind::kDate ? 8 : 17);
    auto r = high ? d.HighBoundary(static_cast<int>(digits)) : d.LowBoundary(static_cast<int>(digits));
    if (r) out.push_back(Item::FromDateTime(*r));
    return true;
  }
  const Quantity* q = v.kind() == ItemKind::kQuantity ? &v.quantity() : nullptr;
  if (q == nullptr && !IsNumber(v)) return Fail(n, std::string(n.name) + "() needs a number, quantity or date");
  Decimal d = q != nullptr ? q->value : AsDecimal(v);
  if (n.args_count == 0) digits = 8;
  if (digits < 0 || digits > 28) return true;
  // The interval the value stands for is [d - 5e-(p+1), d + 5e-(p+1)).
  bool negative = d.is_negative();
  Decimal abs = d.Abs();
  bool want_high = negative ? !high : high;
  Decimal half(5, abs.scale() + 1), bound;
  if (!(want_high ? Decimal::Add(abs, half, &bound) : Decimal::Sub(abs, half, &bound))) return true;
  int q_digits = static_cast<int>(digits);
  if (q_digits < bound.scale())
    bound = bound.Rescale(q_digits, want_high ? Decimal::kHalfUp : Decimal::kTruncate);
  else
    bound = bound.Rescale(q_digits, Decimal::kTruncate);
  if (negative) bound = Decimal(-bound.mantissa(), bound.scale(), true);
  if (q != nullptr) {
    out.push_back(MakeQuantity(bound, q->unit, q->calendar));
  } else {
    out.push_back(Item::FromDecimal(bound));
  }
  return true;
}

}  // namespace
}  // namespace internal

// --- Public API ---------------------------------------------------------------

std::string_view TypeName(const Item& item) {
  if (item.is_node()) return item.type() != nullptr ? item.type()->name : std::string_view();
  return internal::SystemKindName(item.kind());
}

std::string_view TypeNamespace(const Item& item) { return item.is_node() ? "FHIR" : "System"; }

std::string ToText(const Item& item) {
  std::string out;
  if (item.is_node()) {
    if (item.node() == nullptr) return out;
    if (item.node()->is_string()) return std::string(item.node()->as_string());
    json::Write(*item.node(), out);
    return out;
  }
  internal::AppendText(item, out);
  return out;
}

void AppendJson(const Item& item, std::string& out) {
  out += "{\"type\":";
  std::string type;
  if (item.is_node()) {
    type = TypeName(item);
  } else {
    type = "System.";
    type += TypeName(item);
  }
  json::WriteString(type, out);
  out += ",\"value\":";
  switch (item.kind()) {
    case ItemKind::kNode:
      if (item.node() != nullptr) {
        json::Write(*item.node(), out);
      } else {
        out += "null";
      }
      break;
    case ItemKind::kBoolean: out += item.boolean() ? "true" : "false"; break;
    case ItemKind::kInteger: out += std::to_string(item.integer()); break;
    case ItemKind::kDecimal: item.decimal().AppendTo(out); break;
    case ItemKind::kQuantity:
      out += "{\"value\":";
      item.quantity().value.AppendTo(out);
      out += ",\"unit\":";
      json::WriteString(item.quantity().unit, out);
      out += "}";
      break;
    default: json::WriteString(ToText(item), out); break;
  }
  out += "}";
}

Result<Expression> Expression::Compile(std::string_view text, const CompileOptions& options) {
  auto program = std::make_shared<internal::Program>();
  program->text = std::string(text);
  RETURN_IF_ERROR(internal::Parse(program->text, program.get()));
  RETURN_IF_ERROR(internal::CompileProgram(program.get(), options));
  return Expression(std::move(program));
}

const std::string& Expression::text() const { return program_->text; }
const fhir::TypeDef* Expression::context_type() const { return program_->context_type; }

Result<Collection> Expression::Evaluate(Collection context, Arena& arena, const EvalOptions& options) const {
  internal::Evaluator evaluator(*program_, arena, options);
  Collection result;
  RETURN_IF_ERROR(evaluator.Run(context, &result));
  return result;
}

Result<Collection> Expression::Evaluate(const json::Value& context, Arena& arena, const EvalOptions& options) const {
  const fhir::TypeDef* type = program_->context_type;
  const json::Value* rt = context.is_object() ? internal::FindResourceTypeMember(context) : nullptr;
  if (rt != nullptr && (type == nullptr || rt->as_string() != type->name)) type = internal::Refine(context, type);
  Item* root = new (arena.AllocateArray<Item>(1)) Item(Item::Node(&context, nullptr, type));
  return Evaluate(Collection(root, 1), arena, options);
}

Result<std::optional<bool>> Expression::EvaluateBoolean(const json::Value& context, Arena& arena,
                                                        const EvalOptions& options) const {
  ASSIGN_OR_RETURN(Collection c, Evaluate(context, arena, options));
  if (c.empty()) return std::optional<bool>();
  if (c.size() > 1)
    return InvalidArgumentError("FHIRPath: expected a boolean, got " + std::to_string(c.size()) + " items");
  Item v;
  if (internal::ToSystem(c[0], arena, &v) && v.kind() == ItemKind::kBoolean) return std::optional<bool>(v.boolean());
  return std::optional<bool>(true);
}

}  // namespace bevan::fhirpath
