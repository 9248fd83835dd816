#include "search/extract.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <unordered_map>

#include "fhirpath/fhirpath.h"
#include "search/values.h"

namespace bevan::search {

namespace {

using fhir::SearchParamType;
using fhirpath::Item;
using fhirpath::ItemKind;

// Splits on '|' outside parentheses and quotes.
std::vector<std::string_view> SplitUnion(std::string_view e) {
  std::vector<std::string_view> parts;
  int depth = 0;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    char c = e[i];
    if (c == '\'' && (i == 0 || e[i - 1] != '\\')) quoted = !quoted;
    if (quoted) continue;
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == '|' && depth == 0) {
      parts.push_back(e.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(e.substr(start));
  for (auto& p : parts) {
    while (!p.empty() && p.front() == ' ') p.remove_prefix(1);
    while (!p.empty() && p.back() == ' ') p.remove_suffix(1);
  }
  return parts;
}

std::string_view Str(const json::Value* obj, std::string_view key) {
  if (obj == nullptr) return {};
  const json::Value* v = obj->Find(key);
  return v != nullptr && v->is_string() ? v->as_string() : std::string_view();
}

// The FHIR type name of an item, or the System type for System values.
std::string_view ItemType(const Item& item) {
  if (item.is_node()) return item.type() != nullptr ? item.type()->name : std::string_view();
  return fhirpath::TypeName(item);
}

// Text of a primitive item (node or System value).
std::string PrimitiveText(const Item& item) {
  if (item.is_node()) {
    const json::Value* v = item.node();
    if (v == nullptr) return {};
    if (v->is_string()) return std::string(v->as_string());
    if (v->is_number()) return std::string(v->number_literal());
    if (v->is_bool()) return v->as_bool() ? "true" : "false";
    return {};
  }
  switch (item.kind()) {
    case ItemKind::kString: return std::string(item.string());
    case ItemKind::kBoolean: return item.boolean() ? "true" : "false";
    case ItemKind::kInteger: return std::to_string(item.integer());
    case ItemKind::kDecimal: return item.decimal().ToString();
    case ItemKind::kDate:
    case ItemKind::kDateTime: return item.datetime().ToString();
    default: return {};
  }
}

constexpr store::Micros kMinMicros = std::numeric_limits<store::Micros>::min();
constexpr store::Micros kMaxMicros = std::numeric_limits<store::Micros>::max();

// Builds rows of one parameter name from items.
class RowWriter {
 public:
  RowWriter(store::IndexRows& rows, std::string param) : rows_(rows), param_(std::move(param)) {}

  void String(std::string_view text, std::string_view param = {}) {
    if (text.empty()) return;
    rows_.strings.push_back(
        {std::string(param.empty() ? std::string_view(param_) : param), NormalizeString(text), std::string(text)});
  }
  void Token(std::string_view system, std::string_view code, std::string_view param = {}) {
    if (code.empty() && system.empty()) return;
    rows_.tokens.push_back(
        {std::string(param.empty() ? std::string_view(param_) : param), std::string(system), std::string(code)});
  }
  void Date(store::Micros lo, store::Micros hi) { rows_.dates.push_back({param_, lo, hi}); }
  void Number(double lo, double hi) { rows_.numbers.push_back({param_, lo, hi}); }
  void Quantity(const NumberRange& range, std::string_view system, std::string_view code) {
    Quantity(range.lo, range.hi, system, code);
  }
  void Quantity(double lo, double hi, std::string_view system, std::string_view code) {
    store::QuantityRow row{param_, lo, hi, std::string(system), std::string(code), std::nullopt, std::nullopt, ""};
    if (system == kUcumSystem && !code.empty()) {
      if (auto c = UcumCanonical(lo, hi, code)) {
        row.canonical_lo = c->lo;
        row.canonical_hi = c->hi;
        row.canonical_unit = std::move(c->unit);
      }
    }
    rows_.quantities.push_back(std::move(row));
  }
  void Reference(std::string_view text) {
    ParsedReference r = ParseReference(text);
    if (r.empty()) return;
    rows_.references.push_back({param_, std::move(r.type), std::move(r.id), std::move(r.url)});
  }
  void Uri(std::string_view uri) {
    if (!uri.empty()) rows_.uris.push_back({param_, std::string(uri)});
  }

  // One item of a parameter of type `type`.
  void Add(SearchParamType type, const Item& item) {
    std::string_view t = ItemType(item);
    const json::Value* v = item.node();
    switch (type) {
      case SearchParamType::kToken: return AddToken(t, item, v);
      case SearchParamType::kString: return AddString(t, item, v);
      case SearchParamType::kDate: return AddDate(t, item, v);
      case SearchParamType::kNumber: {
        std::string text = PrimitiveText(item);
        if (auto r = DecimalRange(text)) Number(r->lo, r->hi);
        return;
      }
      case SearchParamType::kQuantity: return AddQuantity(t, item, v);
      case SearchParamType::kReference:
        if (t == "Reference") {
          Reference(Str(v, "reference"));
          if (const json::Value* ident = v ? v->Find("identifier") : nullptr; ident && ident->is_object()) {
            Token(Str(ident, "system"), Str(ident, "value"), param_ + ":identifier");
          }
          return;
        }
        if (t == "canonical" || t == "uri" || t == "url" || t == "uuid" || t == "oid" || t == "String" ||
            t == "string") {
          Reference(PrimitiveText(item));
        }
        return;
      case SearchParamType::kUri: {
        std::string text = PrimitiveText(item);
        Uri(text);
        return;
      }
      case SearchParamType::kComposite:
      case SearchParamType::kSpecial: return;
    }
  }

 private:
  void AddToken(std::string_view t, const Item& item, const json::Value* v) {
    if (t == "Coding") {
      Token(Str(v, "system"), Str(v, "code"));
      String(Str(v, "display"), param_ + ":text");
    } else if (t == "CodeableConcept") {
      if (const json::Value* codings = v ? v->Find("coding") : nullptr) {
        for (const json::Value& c : codings->items()) {
          Token(Str(&c, "system"), Str(&c, "code"));
          String(Str(&c, "display"), param_ + ":text");
        }
      }
      String(Str(v, "text"), param_ + ":text");
    } else if (t == "Identifier") {
      std::string_view value = Str(v, "value");
      Token(Str(v, "system"), value);
      if (const json::Value* type = v ? v->Find("type") : nullptr) {
        if (const json::Value* codings = type->Find("coding")) {
          for (const json::Value& c : codings->items()) {
            Token(Str(&c, "system"), std::string(Str(&c, "code")) + "|" + std::string(value), param_ + ":of-type");
          }
        }
      }
      String(Str(v ? v->Find("type") : nullptr, "text"), param_ + ":text");
    } else if (t == "ContactPoint") {
      Token(Str(v, "system"), Str(v, "value"));
    } else if (t == "Quantity" || t == "Reference" || t == "HumanName" || t == "Address" || t == "Period") {
      // Not token material.
    } else {
      std::string text = PrimitiveText(item);
      if (!text.empty()) Token("", text);
    }
  }

  void AddString(std::string_view t, const Item& item, const json::Value* v) {
    if (t == "HumanName") {
      for (std::string_view key : {"family", "text"}) String(Str(v, key));
      for (std::string_view key : {"given", "prefix", "suffix"}) {
        if (const json::Value* a = v ? v->Find(key) : nullptr) {
          for (const json::Value& s : a->items()) String(s.as_string());
        }
      }
    } else if (t == "Address") {
      for (std::string_view key : {"city", "district", "state", "postalCode", "country", "text"}) String(Str(v, key));
      if (const json::Value* a = v ? v->Find("line") : nullptr) {
        for (const json::Value& s : a->items()) String(s.as_string());
      }
    } else if (item.is_node() && v != nullptr && !v->is_string()) {
      // Other complex types are not string material.
    } else {
      String(PrimitiveText(item));
    }
  }

  void AddDate(std::string_view t, const Item& item, const json::Value* v) {
    if (t == "Period") {
      auto start = DateRange(Str(v, "start"));
      auto end = DateRange(Str(v, "end"));
      if (!start && !end) return;
      Date(start ? start->lo : kMinMicros, end ? end->hi : kMaxMicros);
    } else if (t == "Timing") {
      if (const json::Value* events = v ? v->Find("event") : nullptr) {
        for (const json::Value& e : events->items()) {
          if (auto r = DateRange(e.as_string())) Date(r->lo, r->hi);
        }
      }
    } else {
      if (auto r = DateRange(PrimitiveText(item))) Date(r->lo, r->hi);
    }
  }

  void AddQuantity(std::string_view t, const Item& item, const json::Value* v) {
    if (t == "Money") {
      const json::Value* value = v ? v->Find("value") : nullptr;
      if (value == nullptr || !value->is_number()) return;
      if (auto r = DecimalRange(value->number_literal())) Quantity(*r, "urn:iso:std:iso:4217", Str(v, "currency"));
    } else if (t == "Range") {
      const json::Value* low = v ? v->Find("low") : nullptr;
      const json::Value* high = v ? v->Find("high") : nullptr;
      const json::Value* lv = low ? low->Find("value") : nullptr;
      const json::Value* hv = high ? high->Find("value") : nullptr;
      auto lr = lv && lv->is_number() ? DecimalRange(lv->number_literal()) : std::nullopt;
      auto hr = hv && hv->is_number() ? DecimalRange(hv->number_literal()) : std::nullopt;
      if (!lr && !hr) return;
      const json::Value* unit_of = low ? low : high;
      std::string_view code = Str(unit_of, "code");
      Quantity(lr ? lr->lo : -1e308, hr ? hr->hi : 1e308, Str(unit_of, "system"),
               code.empty() ? Str(unit_of, "unit") : code);
    } else if (v != nullptr && v->is_object()) {
      // Quantity and its profiles (Age, Duration, Count, Distance, SimpleQuantity).
      const json::Value* value = v->Find("value");
      if (value == nullptr || !value->is_number()) return;
      auto r = DecimalRange(value->number_literal());
      if (!r) return;
      std::string_view code = Str(v, "code");
      Quantity(*r, Str(v, "system"), code.empty() ? Str(v, "unit") : code);
    } else {
      if (auto r = DecimalRange(PrimitiveText(item))) Quantity(*r, "", "");
    }
  }

  store::IndexRows& rows_;
  std::string param_;
};

}  // namespace

std::string ExpressionForType(std::string_view expression, std::string_view type) {
  std::string out;
  std::string dot = std::string(type) + ".";
  std::string paren = "(" + dot;
  for (std::string_view part : SplitUnion(expression)) {
    if (part == type || part.starts_with(dot) || part.starts_with(paren)) {
      if (!out.empty()) out += " | ";
      out += part;
    }
  }
  return out.empty() ? std::string(expression) : out;
}

struct Extractor::Impl {
  struct Compiled {
    IndexedParam info;
    std::optional<fhirpath::Expression> expression;
    std::vector<fhirpath::Expression> components;
  };
  struct PerType {
    std::vector<std::unique_ptr<Compiled>> params;
    std::unordered_map<std::string, const Compiled*> by_code;
    std::vector<fhirpath::Expression> compartment;
    bool is_patient = false;
  };
  std::unordered_map<std::string, PerType> types;
  std::vector<std::string> failures;

  // Custom parameters (Register). Definitions and compiled expressions are
  // kept for the extractor's life, so pointers handed out stay valid.
  struct CustomDef {
    std::string url, code, expression;
    std::vector<std::string> base_text, target_text;
    std::vector<std::string_view> bases, targets;
    fhir::SearchParamDef def{};
  };
  struct CustomEntry {
    std::string type;
    const Compiled* compiled = nullptr;
  };
  mutable std::shared_mutex custom_mu;
  std::atomic<bool> any_custom{false};
  std::vector<std::unique_ptr<CustomDef>> custom_defs;
  std::vector<std::unique_ptr<Compiled>> custom_compiled;
  std::unordered_map<std::string, std::map<std::string, const Compiled*>> custom_by_type;  // type -> code
  std::unordered_map<std::string, std::vector<CustomEntry>> custom_of;  // SearchParameter id -> entries

  // Removes the entries of SearchParameter `id` (custom_mu held).
  void RemoveCustomLocked(const std::string& id) {
    auto it = custom_of.find(id);
    if (it == custom_of.end()) return;
    for (const CustomEntry& e : it->second) {
      auto t = custom_by_type.find(e.type);
      if (t == custom_by_type.end()) continue;
      auto c = t->second.find(e.compiled->info.code);
      if (c != t->second.end() && c->second == e.compiled) t->second.erase(c);
    }
    custom_of.erase(it);
  }
};

namespace {

// What identifies a parameter's rows: its type, expression and, for
// composites, its components.
std::string Signature(const IndexedParam& p, std::string_view expression) {
  std::string s = std::to_string(static_cast<int>(p.type)) + '\x1f' + std::string(expression);
  if (p.type == SearchParamType::kComposite && p.def != nullptr) {
    for (const fhir::SearchParamComponent& c : p.def->components) s += '\x1f' + std::string(c.expression);
  }
  return s;
}

// "Q.where(resolve() is T)": Q and T, else nothing.
std::optional<std::pair<std::string, std::string>> RestrictedTo(std::string_view e) {
  constexpr std::string_view kWhere = ".where(resolve() is ";
  if (!e.ends_with(")")) return std::nullopt;
  size_t at = e.rfind(kWhere);
  if (at == std::string_view::npos || at == 0) return std::nullopt;
  std::string_view type = e.substr(at + kWhere.size(), e.size() - 1 - at - kWhere.size());
  if (type.empty() ||
      !std::all_of(type.begin(), type.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); }))
    return std::nullopt;
  if (fhir::FindResourceType(type) == nullptr) return std::nullopt;
  return std::make_pair(std::string(e.substr(0, at)), std::string(type));
}

}  // namespace

// Decides IndexedParam::storage for the built-in parameters of one type.
void LinkStorage(std::vector<IndexedParam*>& params) {
  // The first parameter of each signature keeps its rows.
  std::unordered_map<std::string, IndexedParam*> first;
  for (IndexedParam* p : params) first.try_emplace(Signature(*p, p->expression), p);
  auto own = [&](std::string_view expression, const IndexedParam& like) -> IndexedParam* {
    auto it = first.find(Signature(like, expression));
    return it == first.end() ? nullptr : it->second;
  };
  for (IndexedParam* p : params) {
    if (first.at(Signature(*p, p->expression)) != p) continue;
    std::vector<std::string_view> parts = SplitUnion(p->expression);
    if (parts.size() >= 2) {
      std::vector<std::string> sources;
      for (std::string_view part : parts) {
        IndexedParam* q = own(part, *p);
        if (q == nullptr || q == p) break;
        sources.push_back(q->code);
      }
      if (sources.size() == parts.size()) {
        p->storage = IndexedParam::Storage::kUnion;
        p->sources = std::move(sources);
      }
      continue;
    }
    if (p->type != SearchParamType::kReference) continue;
    if (auto r = RestrictedTo(p->expression)) {
      if (IndexedParam* q = own(r->first, *p); q != nullptr && q != p) {
        p->storage = IndexedParam::Storage::kRestricted;
        p->sources = {q->code};
        p->restrict_type = r->second;
      }
    }
  }
  // The sources must hold rows of their own.
  for (IndexedParam* p : params) {
    if (p->storage == IndexedParam::Storage::kOwn) continue;
    for (const std::string& code : p->sources) {
      for (IndexedParam* q : params) {
        if (q->code == code && q->storage != IndexedParam::Storage::kOwn) {
          p->storage = IndexedParam::Storage::kOwn;
          p->sources.clear();
          p->restrict_type.clear();
        }
      }
    }
  }
  // Duplicates read what the first of their signature reads.
  for (IndexedParam* p : params) {
    IndexedParam* f = first.at(Signature(*p, p->expression));
    if (f == p) continue;
    if (f->storage == IndexedParam::Storage::kOwn) {
      p->storage = IndexedParam::Storage::kSame;
      p->sources = {f->code};
    } else {
      p->storage = f->storage;
      p->sources = f->sources;
      p->restrict_type = f->restrict_type;
    }
  }
}

Extractor::Extractor() : impl_(std::make_unique<Impl>()) {
  std::unordered_map<std::string_view, const fhir::SearchParamDef*> by_url;
  for (const fhir::SearchParamDef& sp : fhir::AllSearchParams()) by_url.emplace(sp.url, &sp);
  const fhir::TypeDef* resource_type = fhir::FindType("Resource");
  const fhir::TypeDef* domain_type = fhir::FindType("DomainResource");
  for (std::string_view type : fhir::ResourceTypeNames()) {
    Impl::PerType per;
    per.is_patient = type == "Patient";
    const fhir::TypeDef* td = fhir::FindResourceType(type);
    auto compile = [&](std::string_view code, const std::string& expr,
                       std::string_view context) -> std::optional<fhirpath::Expression> {
      fhirpath::CompileOptions options;
      options.context_type = context;
      auto e = fhirpath::Expression::Compile(expr, options);
      if (!e.ok()) {
        impl_->failures.push_back(std::string(type) + "." + std::string(code) + ": " + e.status().message());
        return std::nullopt;
      }
      return std::move(e).value();
    };
    for (const fhir::SearchParamDef& sp : fhir::AllSearchParams()) {
      bool applies = false;
      for (std::string_view base : sp.bases) {
        if (base == type || (base == "Resource" && resource_type && td && td->IsA(resource_type)) ||
            (base == "DomainResource" && domain_type && td && td->IsA(domain_type))) {
          applies = true;
        }
      }
      if (!applies || sp.expression.empty() || sp.code == "_id" || sp.code == "_lastUpdated") continue;
      if (sp.type == SearchParamType::kSpecial) continue;
      if (per.by_code.count(std::string(sp.code)) != 0) continue;
      auto c = std::make_unique<Impl::Compiled>();
      c->info.def = &sp;
      c->info.code = sp.code;
      c->info.type = sp.type;
      c->info.expression = ExpressionForType(sp.expression, type);
      auto e = compile(sp.code, c->info.expression, type);
      if (!e) continue;
      c->expression = std::move(e);
      if (sp.type == SearchParamType::kComposite) {
        bool ok = sp.components.size() >= 2;
        for (const fhir::SearchParamComponent& comp : sp.components) {
          auto it = by_url.find(comp.definition);
          if (it == by_url.end()) {
            ok = false;
            break;
          }
          auto ce = compile(sp.code, std::string(comp.expression), "");
          if (!ce) {
            ok = false;
            break;
          }
          c->info.component_types.push_back(it->second->type);
          c->components.push_back(std::move(*ce));
        }
        if (!ok) continue;
      }
      per.by_code.emplace(c->info.code, c.get());
      per.params.push_back(std::move(c));
    }
    std::vector<IndexedParam*> infos;
    for (auto& c : per.params) infos.push_back(&c->info);
    LinkStorage(infos);
    for (std::string_view code : fhir::PatientCompartmentParams(type)) {
      const fhir::SearchParamDef* sp = fhir::FindSearchParam(type, code);
      if (!sp || sp->expression.empty()) continue;
      // "X.subject.where(resolve() is Patient)": the Patient test is done on
      // the reference text, which needs no resolution.
      std::string expr = ExpressionForType(sp->expression, type);
      for (std::string_view filter : {".where(resolve() is Patient)"}) {
        for (size_t at; (at = expr.find(filter)) != std::string::npos;) expr.erase(at, filter.size());
      }
      if (auto e = compile(code, expr, type)) per.compartment.push_back(std::move(*e));
    }
    impl_->types.emplace(std::string(type), std::move(per));
  }
}

Extractor::~Extractor() = default;

namespace {

struct ParsedCustom {
  std::unique_ptr<Extractor::Impl::CustomDef> def;
  // One compiled expression per base type, in base order.
  std::vector<fhirpath::Expression> expressions;
};

// Validates and compiles an active SearchParameter (see CheckSearchParameter).
Result<ParsedCustom> ParseCustom(const json::Value& sp) {
  if (Str(&sp, "resourceType") != "SearchParameter") return InvalidArgumentError("not a SearchParameter");
  auto def = std::make_unique<Extractor::Impl::CustomDef>();
  def->url = Str(&sp, "url");
  def->code = Str(&sp, "code");
  def->expression = Str(&sp, "expression");
  if (def->code.empty()) return InvalidArgumentError("SearchParameter.code is required");
  for (char ch : def->code) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.') {
      return InvalidArgumentError("SearchParameter.code '" + def->code +
                                  "' has a character other than letters, digits, '-', '_' and '.'");
    }
  }
  if (def->code.front() == '_')
    return InvalidArgumentError("SearchParameter.code '" + def->code + "': codes starting with '_' are reserved");
  static constexpr std::pair<std::string_view, SearchParamType> kTypes[] = {{"number", SearchParamType::kNumber},
                                                                            {"date", SearchParamType::kDate},
                                                                            {"string", SearchParamType::kString},
                                                                            {"token", SearchParamType::kToken},
                                                                            {"reference", SearchParamType::kReference},
                                                                            {"quantity", SearchParamType::kQuantity},
                                                                            {"uri", SearchParamType::kUri}};
  std::string_view type = Str(&sp, "type");
  bool known = false;
  for (const auto& [name, t] : kTypes) {
    if (name == type) {
      def->def.type = t;
      known = true;
    }
  }
  if (!known) {
    return InvalidArgumentError("SearchParameter.type '" + std::string(type) +
                                "' is not supported (number, date, string, token, reference, quantity or uri)");
  }
  if (def->expression.empty()) return InvalidArgumentError("SearchParameter.expression is required");
  auto strings = [&sp](std::string_view key, std::vector<std::string>& out) {
    if (const json::Value* a = sp.Find(key); a != nullptr && a->is_array()) {
      for (const json::Value& v : a->items()) {
        if (v.is_string()) out.emplace_back(v.as_string());
      }
    }
  };
  strings("base", def->base_text);
  strings("target", def->target_text);
  if (def->base_text.empty()) return InvalidArgumentError("SearchParameter.base is required");
  ParsedCustom out;
  for (const std::string& base : def->base_text) {
    if (fhir::FindResourceType(base) == nullptr) {
      return InvalidArgumentError("SearchParameter.base '" + base + "' is not a concrete resource type");
    }
    fhirpath::CompileOptions options;
    options.context_type = base;
    auto e = fhirpath::Expression::Compile(ExpressionForType(def->expression, base), options);
    if (!e.ok()) {
      return InvalidArgumentError("SearchParameter.expression does not compile for " + base + ": " +
                                  e.status().message());
    }
    out.expressions.push_back(std::move(e).value());
  }
  for (const std::string& t : def->target_text) {
    if (fhir::FindResourceType(t) == nullptr) {
      return InvalidArgumentError("SearchParameter.target '" + t + "' is not a concrete resource type");
    }
  }
  for (const std::string& b : def->base_text) def->bases.push_back(b);
  for (const std::string& t : def->target_text) def->targets.push_back(t);
  def->def.url = def->url;
  def->def.code = def->code;
  def->def.expression = def->expression;
  def->def.bases = def->bases;
  def->def.targets = def->targets;
  out.def = std::move(def);
  return out;
}

}  // namespace

Status CheckSearchParameter(const json::Value& search_parameter) {
  if (Str(&search_parameter, "status") != "active") return Status::Ok();
  return ParseCustom(search_parameter).status();
}

Status Extractor::Register(std::string_view resource_id, const json::Value& search_parameter) const {
  std::string id(resource_id);
  if (Str(&search_parameter, "status") != "active") {
    Unregister(id);
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(ParsedCustom parsed, ParseCustom(search_parameter));
  std::vector<std::unique_ptr<Impl::Compiled>> compiled;
  std::vector<Impl::CustomEntry> entries;
  for (size_t i = 0; i < parsed.def->base_text.size(); ++i) {
    const std::string& base = parsed.def->base_text[i];
    auto per = impl_->types.find(base);
    // A code the type has in R4 stays the built-in parameter.
    if (per == impl_->types.end() || per->second.by_code.count(parsed.def->code) != 0) continue;
    auto c = std::make_unique<Impl::Compiled>();
    c->info.def = &parsed.def->def;
    c->info.code = parsed.def->code;
    c->info.type = parsed.def->def.type;
    c->info.expression = parsed.expressions[i].text();
    c->expression = std::move(parsed.expressions[i]);
    entries.push_back({base, c.get()});
    compiled.push_back(std::move(c));
  }
  std::unique_lock lock(impl_->custom_mu);
  impl_->RemoveCustomLocked(id);
  for (const Impl::CustomEntry& e : entries) impl_->custom_by_type[e.type][e.compiled->info.code] = e.compiled;
  impl_->custom_of[id] = std::move(entries);
  impl_->custom_defs.push_back(std::move(parsed.def));
  for (auto& c : compiled) impl_->custom_compiled.push_back(std::move(c));
  impl_->any_custom.store(true, std::memory_order_release);
  return Status::Ok();
}

void Extractor::Unregister(std::string_view resource_id) const {
  std::unique_lock lock(impl_->custom_mu);
  impl_->RemoveCustomLocked(std::string(resource_id));
}

void Extractor::ClearCustom() const {
  std::unique_lock lock(impl_->custom_mu);
  impl_->custom_by_type.clear();
  impl_->custom_of.clear();
}

std::vector<std::string> Extractor::CustomParams() const {
  std::vector<std::string> out;
  std::shared_lock lock(impl_->custom_mu);
  for (const auto& [type, codes] : impl_->custom_by_type) {
    for (const auto& [code, c] : codes) out.push_back(type + "." + code);
  }
  std::sort(out.begin(), out.end());
  return out;
}

const Extractor& Extractor::Default() {
  static const Extractor kDefault;
  return kDefault;
}

const std::vector<std::string>& Extractor::failures() const { return impl_->failures; }

const IndexedParam* Extractor::Find(std::string_view type, std::string_view code) const {
  auto it = impl_->types.find(std::string(type));
  if (it == impl_->types.end()) return nullptr;
  auto p = it->second.by_code.find(std::string(code));
  if (p != it->second.by_code.end()) return &p->second->info;
  if (!impl_->any_custom.load(std::memory_order_acquire)) return nullptr;
  std::shared_lock lock(impl_->custom_mu);
  auto t = impl_->custom_by_type.find(std::string(type));
  if (t == impl_->custom_by_type.end()) return nullptr;
  auto c = t->second.find(std::string(code));
  return c == t->second.end() ? nullptr : &c->second->info;
}

std::vector<const IndexedParam*> Extractor::Params(std::string_view type) const {
  std::vector<const IndexedParam*> out;
  auto it = impl_->types.find(std::string(type));
  if (it == impl_->types.end()) return out;
  for (const auto& c : it->second.params) out.push_back(&c->info);
  if (impl_->any_custom.load(std::memory_order_acquire)) {
    std::shared_lock lock(impl_->custom_mu);
    auto t = impl_->custom_by_type.find(std::string(type));
    if (t != impl_->custom_by_type.end()) {
      for (const auto& [code, c] : t->second) out.push_back(&c->info);
    }
  }
  return out;
}

namespace {

// Keys of a composite's first component from its rows.
std::vector<std::string> KeysOf(SearchParamType type, const store::IndexRows& rows) {
  std::vector<std::string> keys;
  if (type == SearchParamType::kToken) {
    for (const store::TokenRow& t : rows.tokens) {
      if (t.param.find(':') != std::string::npos) continue;
      keys.push_back(t.system + "|" + t.code);
      keys.push_back(t.code);
    }
  } else if (type == SearchParamType::kReference) {
    for (const store::ReferenceRow& r : rows.references) {
      if (!r.url.empty()) {
        keys.push_back(r.url);
      } else {
        keys.push_back(r.target_type + "/" + r.target_id);
        keys.push_back(r.target_id);
      }
    }
  } else {
    for (const store::StringRow& s : rows.strings) keys.push_back(s.exact);
    for (const store::UriRow& u : rows.uris) keys.push_back(u.uri);
  }
  return keys;
}

}  // namespace

Result<ExtractResult> Extractor::Extract(std::string_view type, std::string_view id,
                                         const json::Value& resource) const {
  auto it = impl_->types.find(std::string(type));
  if (it == impl_->types.end()) return InvalidArgumentError("unknown resource type " + std::string(type));
  const Impl::PerType& per = it->second;
  ExtractResult out;
  Arena arena(8192);
  for (const auto& c : per.params) {
    using Storage = IndexedParam::Storage;
    if (c->info.storage == Storage::kSame || c->info.storage == Storage::kUnion) continue;
    auto items = c->expression->Evaluate(resource, arena);
    if (!items.ok()) continue;
    if (c->info.type != SearchParamType::kComposite) {
      size_t before = out.rows.references.size();
      RowWriter w(out.rows, c->info.code);
      for (const Item& item : *items) w.Add(c->info.type, item);
      if (c->info.storage == Storage::kRestricted) {
        // Rows with the target type are the source's rows already.
        auto& refs = out.rows.references;
        refs.erase(std::remove_if(refs.begin() + static_cast<std::ptrdiff_t>(before), refs.end(),
                                  [&](const store::ReferenceRow& r) { return r.target_type == c->info.restrict_type; }),
                   refs.end());
      }
      continue;
    }
    for (const Item& root : *items) {
      fhirpath::Collection one(&root, 1);
      fhirpath::EvalOptions options;
      options.resource = &resource;
      auto first = c->components[0].Evaluate(one, arena, options);
      if (!first.ok()) continue;
      store::IndexRows first_rows;
      RowWriter fw(first_rows, "k");
      for (const Item& item : *first) fw.Add(c->info.component_types[0], item);
      std::vector<std::string> keys = KeysOf(c->info.component_types[0], first_rows);
      if (keys.empty()) continue;
      for (size_t k = 1; k < c->components.size(); ++k) {
        auto values = c->components[k].Evaluate(one, arena, options);
        if (!values.ok()) continue;
        for (const std::string& key : keys) {
          RowWriter w(out.rows, c->info.code + "$" + key);
          for (const Item& item : *values) w.Add(c->info.component_types[k], item);
        }
      }
    }
  }
  if (impl_->any_custom.load(std::memory_order_acquire)) {
    std::shared_lock lock(impl_->custom_mu);
    auto t = impl_->custom_by_type.find(std::string(type));
    if (t != impl_->custom_by_type.end()) {
      for (const auto& [code, c] : t->second) {
        auto items = c->expression->Evaluate(resource, arena);
        if (!items.ok()) continue;
        RowWriter w(out.rows, c->info.code);
        for (const Item& item : *items) w.Add(c->info.type, item);
      }
    }
  }
  if (per.is_patient) {
    out.compartment = id;
    return out;
  }
  constexpr std::string_view kPrefix = "Patient/";
  for (const auto& e : per.compartment) {
    auto items = e.Evaluate(resource, arena);
    if (!items.ok()) continue;
    for (const Item& item : *items) {
      std::string_view r = Str(item.node(), "reference");
      // Relative "Patient/id" (or ".../Patient/id" on this server).
      size_t at = r.rfind(kPrefix);
      if (at == std::string_view::npos || (at != 0 && r[at - 1] != '/')) continue;
      std::string_view pid = r.substr(at + kPrefix.size());
      pid = pid.substr(0, pid.find('/'));
      if (pid.empty()) continue;
      out.compartment = pid;
      return out;
    }
  }
  return out;
}

Result<ExtractResult> Extract(std::string_view type, std::string_view id, const json::Value& resource) {
  return Extractor::Default().Extract(type, id, resource);
}

}  // namespace bevan::search
