#include "fhirpath/values.h"

#include <cctype>
#include <new>

#include "fhirpath/ucum.h"

namespace bevan::fhirpath::internal {

const KnownTypes& Known() {
  static const KnownTypes known = [] {
    KnownTypes k;
    k.boolean = fhir::FindType("boolean");
    k.integer = fhir::FindType("integer");
    k.decimal = fhir::FindType("decimal");
    k.string = fhir::FindType("string");
    k.date = fhir::FindType("date");
    k.date_time = fhir::FindType("dateTime");
    k.instant = fhir::FindType("instant");
    k.time = fhir::FindType("time");
    k.quantity = fhir::FindType("Quantity");
    k.extension = fhir::FindType("Extension");
    k.reference = fhir::FindType("Reference");
    k.coding = fhir::FindType("Coding");
    k.codeable_concept = fhir::FindType("CodeableConcept");
    k.resource = fhir::FindType("Resource");
    return k;
  }();
  return known;
}

bool ToSystem(const Item& in, Arena& arena, Item* out) {
  if (!in.is_node()) {
    *out = in;
    return true;
  }
  const json::Value* v = in.node();
  if (v == nullptr) return false;
  const fhir::TypeDef* t = in.type();
  const KnownTypes& k = Known();
  switch (v->kind()) {
    case json::Kind::kBool: *out = Item::Boolean(v->as_bool()); return true;
    case json::Kind::kNumber: {
      std::string_view lit = v->number_literal();
      bool integral = t != nullptr ? t->IsA(k.integer) : lit.find_first_of(".eE") == std::string_view::npos;
      if (integral) {
        if (auto i = v->AsInt64()) {
          *out = Item::Integer(*i);
          return true;
        }
      }
      auto d = Decimal::Parse(lit);
      if (!d) return false;
      *out = Item::FromDecimal(*d);
      return true;
    }
    case json::Kind::kString: {
      std::string_view s = v->as_string();
      if (t == k.date) {
        if (auto d = DateTime::ParseDate(s)) return *out = Item::FromDateTime(*d), true;
      } else if (t == k.date_time || t == k.instant) {
        if (auto d = DateTime::ParseDateTime(s)) return *out = Item::FromDateTime(*d), true;
      } else if (t == k.time) {
        if (auto d = DateTime::ParseTime(s)) return *out = Item::FromDateTime(*d), true;
      }
      *out = Item::String(s);
      return true;
    }
    case json::Kind::kObject: {
      if (t == nullptr || !t->IsA(k.quantity)) return false;
      const json::Value* value = v->Find("value");
      if (value == nullptr || !value->is_number()) return false;
      auto d = Decimal::Parse(value->number_literal());
      if (!d) return false;
      auto* q = new (arena.AllocateArray<Quantity>(1)) Quantity();
      q->value = *d;
      const json::Value* code = v->Find("code");
      const json::Value* unit = v->Find("unit");
      if (code != nullptr && code->is_string()) {
        q->unit = code->as_string();
      } else if (unit != nullptr && unit->is_string()) {
        q->unit = unit->as_string();
      } else {
        q->unit = "1";
      }
      *out = Item::FromQuantity(q);
      return true;
    }
    default: return false;
  }
}

namespace {

bool IsNumber(const Item& i) { return i.kind() == ItemKind::kInteger || i.kind() == ItemKind::kDecimal; }
bool IsTemporal(const Item& i) {
  return i.kind() == ItemKind::kDate || i.kind() == ItemKind::kDateTime || i.kind() == ItemKind::kTime;
}
Decimal AsDecimal(const Item& i) {
  return i.kind() == ItemKind::kInteger ? Decimal::FromInt(i.integer()) : i.decimal();
}

// Parses a string as the temporal kind of `like`.
std::optional<DateTime> StringAsTemporal(std::string_view s, ItemKind like) {
  if (like == ItemKind::kTime) return DateTime::ParseTime(s);
  if (like == ItemKind::kDate) {
    auto d = DateTime::ParseLiteral(s);
    if (d && d->kind == DtKind::kTime) return std::nullopt;
    return d;
  }
  return DateTime::ParseDateTime(s);
}

bool TemporalPair(const Item& a, const Item& b, DateTime* x, DateTime* y) {
  if (IsTemporal(a) && IsTemporal(b)) {
    *x = a.datetime();
    *y = b.datetime();
    return true;
  }
  if (IsTemporal(a) && b.kind() == ItemKind::kString) {
    auto d = StringAsTemporal(b.string(), a.kind());
    if (!d) return false;
    *x = a.datetime();
    *y = *d;
    return true;
  }
  if (IsTemporal(b) && a.kind() == ItemKind::kString) return TemporalPair(b, a, y, x);
  return false;
}

// 1 year, 2 month, 0 otherwise.
int YearMonth(const Quantity& q) {
  if (!q.calendar) return 0;
  if (q.unit.starts_with("year")) return 1;
  if (q.unit.starts_with("month")) return 2;
  return 0;
}

std::string NormalizeSpace(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

}  // namespace

std::string_view UcumUnit(const Quantity& q) {
  if (!q.calendar) return q.unit;
  std::string_view u = q.unit;
  if (u.ends_with("s")) u.remove_suffix(1);
  if (u == "year") return "a";
  if (u == "month") return "mo";
  if (u == "week") return "wk";
  if (u == "day") return "d";
  if (u == "hour") return "h";
  if (u == "minute") return "min";
  if (u == "second") return "s";
  if (u == "millisecond") return "ms";
  return q.unit;
}

std::optional<int> CompareQuantities(const Quantity& a, const Quantity& b) {
  int ya = YearMonth(a), yb = YearMonth(b);
  if (ya != 0 || yb != 0) {
    if (ya == 0 || yb == 0) return std::nullopt;
    Decimal x = a.value, y = b.value;
    if (ya == 1 && !Decimal::Mul(x, Decimal::FromInt(12), &x)) return std::nullopt;
    if (yb == 1 && !Decimal::Mul(y, Decimal::FromInt(12), &y)) return std::nullopt;
    return x.Compare(y);
  }
  std::string_view ua = UcumUnit(a), ub = UcumUnit(b);
  if (ua == ub) return a.value.Compare(b.value);
  Decimal x, y;
  ucum::Canonical ca, cb;
  if (!ucum::ToBase(a.value, ua, &x, &ca) || !ucum::ToBase(b.value, ub, &y, &cb)) return std::nullopt;
  if (ca.dims != cb.dims || ca.arbitrary != cb.arbitrary) return std::nullopt;
  return x.Compare(y);
}

bool QuantitiesEquivalent(const Quantity& a, const Quantity& b) {
  std::string_view ua = UcumUnit(a), ub = UcumUnit(b);
  Decimal x = a.value, y = b.value;
  if (ua != ub) {
    if (YearMonth(a) != 0 || YearMonth(b) != 0) {
      auto c = CompareQuantities(a, b);
      return c && *c == 0;
    }
    ucum::Canonical ca, cb;
    if (!ucum::ToBase(a.value, ua, &x, &ca) || !ucum::ToBase(b.value, ub, &y, &cb)) return false;
    if (ca.dims != cb.dims || ca.arbitrary != cb.arbitrary) return false;
  }
  int s = x.scale() < y.scale() ? x.scale() : y.scale();
  return x.Round(s) == y.Round(s);
}

Tri ItemsEqual(const Item& a0, const Item& b0, Arena& arena) {
  Item a, b;
  bool pa = ToSystem(a0, arena, &a), pb = ToSystem(b0, arena, &b);
  if (!pa || !pb) {
    if (!pa && !pb && a0.node() != nullptr && b0.node() != nullptr) {
      return *a0.node() == *b0.node() ? Tri::kTrue : Tri::kFalse;
    }
    return Tri::kFalse;
  }
  if (IsNumber(a) && IsNumber(b)) {
    if (a.kind() == ItemKind::kInteger && b.kind() == ItemKind::kInteger) {
      return a.integer() == b.integer() ? Tri::kTrue : Tri::kFalse;
    }
    return AsDecimal(a) == AsDecimal(b) ? Tri::kTrue : Tri::kFalse;
  }
  if (a.kind() == ItemKind::kString && b.kind() == ItemKind::kString) {
    return a.string() == b.string() ? Tri::kTrue : Tri::kFalse;
  }
  if (a.kind() == ItemKind::kBoolean && b.kind() == ItemKind::kBoolean) {
    return a.boolean() == b.boolean() ? Tri::kTrue : Tri::kFalse;
  }
  DateTime x, y;
  if (TemporalPair(a, b, &x, &y)) {
    if ((x.kind == DtKind::kTime) != (y.kind == DtKind::kTime)) return Tri::kFalse;
    auto c = DateTime::Compare(x, y);
    if (!c) return Tri::kEmpty;
    return *c == 0 ? Tri::kTrue : Tri::kFalse;
  }
  if (a.kind() == ItemKind::kQuantity && b.kind() == ItemKind::kQuantity) {
    auto c = CompareQuantities(a.quantity(), b.quantity());
    if (!c) return Tri::kEmpty;
    return *c == 0 ? Tri::kTrue : Tri::kFalse;
  }
  if (a.kind() == ItemKind::kTypeInfo && b.kind() == ItemKind::kTypeInfo) {
    return a.type_info().ns == b.type_info().ns && a.type_info().name == b.type_info().name ? Tri::kTrue : Tri::kFalse;
  }
  return Tri::kFalse;
}

bool ItemsEquivalent(const Item& a0, const Item& b0, Arena& arena) {
  Item a, b;
  bool pa = ToSystem(a0, arena, &a), pb = ToSystem(b0, arena, &b);
  if (!pa || !pb) {
    if (!pa && !pb && a0.node() != nullptr && b0.node() != nullptr) return *a0.node() == *b0.node();
    return false;
  }
  if (IsNumber(a) && IsNumber(b)) {
    Decimal x = AsDecimal(a), y = AsDecimal(b);
    int s = x.scale() < y.scale() ? x.scale() : y.scale();
    return x.Round(s) == y.Round(s);
  }
  if (a.kind() == ItemKind::kString && b.kind() == ItemKind::kString) {
    return NormalizeSpace(a.string()) == NormalizeSpace(b.string());
  }
  if (a.kind() == ItemKind::kBoolean && b.kind() == ItemKind::kBoolean) return a.boolean() == b.boolean();
  DateTime x, y;
  if (TemporalPair(a, b, &x, &y)) return DateTime::Equivalent(x, y);
  if (a.kind() == ItemKind::kQuantity && b.kind() == ItemKind::kQuantity) {
    return QuantitiesEquivalent(a.quantity(), b.quantity());
  }
  return ItemsEqual(a, b, arena) == Tri::kTrue;
}

std::optional<int> CompareItems(const Item& a0, const Item& b0, Arena& arena, bool* incomparable) {
  *incomparable = false;
  Item a, b;
  if (!ToSystem(a0, arena, &a) || !ToSystem(b0, arena, &b)) {
    *incomparable = true;
    return std::nullopt;
  }
  if (IsNumber(a) && IsNumber(b)) {
    if (a.kind() == ItemKind::kInteger && b.kind() == ItemKind::kInteger) {
      return a.integer() < b.integer() ? -1 : (a.integer() > b.integer() ? 1 : 0);
    }
    return AsDecimal(a).Compare(AsDecimal(b));
  }
  if (a.kind() == ItemKind::kString && b.kind() == ItemKind::kString) {
    int c = a.string().compare(b.string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  DateTime x, y;
  if (TemporalPair(a, b, &x, &y)) {
    if ((x.kind == DtKind::kTime) != (y.kind == DtKind::kTime)) {
      *incomparable = true;
      return std::nullopt;
    }
    return DateTime::Compare(x, y);
  }
  if (a.kind() == ItemKind::kQuantity && b.kind() == ItemKind::kQuantity) {
    return CompareQuantities(a.quantity(), b.quantity());
  }
  *incomparable = true;
  return std::nullopt;
}

void AppendText(const Item& item, std::string& out) {
  switch (item.kind()) {
    case ItemKind::kBoolean: out += item.boolean() ? "true" : "false"; return;
    case ItemKind::kInteger: out += std::to_string(item.integer()); return;
    case ItemKind::kDecimal: item.decimal().AppendTo(out); return;
    case ItemKind::kString: out += item.string(); return;
    case ItemKind::kDate:
    case ItemKind::kDateTime:
    case ItemKind::kTime: item.datetime().AppendTo(out); return;
    case ItemKind::kQuantity: {
      const Quantity& q = item.quantity();
      q.value.AppendTo(out);
      if (q.calendar) {
        out.push_back(' ');
        out += q.unit;
      } else {
        out += " '";
        out += q.unit;
        out.push_back('\'');
      }
      return;
    }
    case ItemKind::kTypeInfo:
      out += item.type_info().ns;
      out.push_back('.');
      out += item.type_info().name;
      return;
    case ItemKind::kNode: return;
  }
}

}  // namespace bevan::fhirpath::internal
