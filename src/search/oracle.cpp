#include "search/oracle.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <set>
#include <unordered_map>

#include "fhirpath/fhirpath.h"
#include "search/values.h"

namespace bevan::search {

namespace {

using fhir::SearchParamType;
using fhirpath::Item;

std::string_view Get(const json::Value* obj, std::string_view key) {
  if (obj == nullptr || !obj->is_object()) return {};
  const json::Value* v = obj->Find(key);
  return v != nullptr && v->is_string() ? v->as_string() : std::string_view();
}

std::vector<std::string_view> GetAll(const json::Value* obj, std::string_view key) {
  std::vector<std::string_view> out;
  if (obj == nullptr || !obj->is_object()) return out;
  const json::Value* v = obj->Find(key);
  if (v == nullptr) return out;
  if (v->is_string()) out.push_back(v->as_string());
  for (const json::Value& i : v->items()) {
    if (i.is_string()) out.push_back(i.as_string());
  }
  return out;
}

std::string TypeOf(const Item& item) {
  if (item.is_node() && item.type() != nullptr) return std::string(item.type()->name);
  return std::string(fhirpath::TypeName(item));
}

// Text of a primitive item.
std::string TextOf(const Item& item) {
  if (!item.is_node()) return fhirpath::ToText(item);
  const json::Value* v = item.node();
  if (v == nullptr) return {};
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_number()) return std::string(v->number_literal());
  if (v->is_bool()) return v->as_bool() ? "true" : "false";
  return {};
}

// Everything a parameter's items say, by kind.
struct Facts {
  struct Token {
    std::string system, code;
  };
  struct Quantity {
    double lo, hi;
    std::string system, code;
  };
  std::vector<Token> tokens;
  std::vector<std::string> texts;  // :text material
  std::vector<Token> of_type;      // (type system, "type code|value")
  std::vector<std::string> strings;
  std::vector<std::pair<std::int64_t, std::int64_t>> dates;
  std::vector<std::pair<double, double>> numbers;
  std::vector<Quantity> quantities;
  std::vector<ParsedReference> refs;
  std::vector<Token> ref_identifiers;
  std::vector<std::string> uris;

  bool empty(SearchParamType type) const {
    switch (type) {
      case SearchParamType::kToken: return tokens.empty();
      case SearchParamType::kString: return strings.empty();
      case SearchParamType::kDate: return dates.empty();
      case SearchParamType::kNumber: return numbers.empty();
      case SearchParamType::kQuantity: return quantities.empty();
      case SearchParamType::kReference: return refs.empty();
      case SearchParamType::kUri: return uris.empty();
      default: return true;
    }
  }
};

std::optional<std::pair<std::int64_t, std::int64_t>> DateOf(std::string_view text) {
  auto r = DateRange(text);
  if (!r) return std::nullopt;
  return std::make_pair(r->lo, r->hi);
}

void AddQuantityObject(const json::Value* q, Facts& f) {
  if (q == nullptr || !q->is_object()) return;
  const json::Value* value = q->Find("value");
  if (value == nullptr || !value->is_number()) return;
  auto r = DecimalRange(value->number_literal());
  if (!r) return;
  std::string code(Get(q, "code"));
  if (code.empty()) code = Get(q, "unit");
  f.quantities.push_back({r->lo, r->hi, std::string(Get(q, "system")), code});
}

Facts FactsOf(SearchParamType type, fhirpath::Collection items) {
  Facts f;
  for (const Item& item : items) {
    std::string t = TypeOf(item);
    const json::Value* v = item.node();
    switch (type) {
      case SearchParamType::kToken:
        if (t == "CodeableConcept" || t == "Coding") {
          std::vector<const json::Value*> codings;
          if (t == "Coding") {
            codings.push_back(v);
          } else if (const json::Value* list = v->Find("coding")) {
            for (const json::Value& c : list->items()) codings.push_back(&c);
          }
          for (const json::Value* c : codings) {
            if (!Get(c, "system").empty() || !Get(c, "code").empty()) {
              f.tokens.push_back({std::string(Get(c, "system")), std::string(Get(c, "code"))});
            }
            if (!Get(c, "display").empty()) f.texts.emplace_back(Get(c, "display"));
          }
          if (t == "CodeableConcept" && !Get(v, "text").empty()) f.texts.emplace_back(Get(v, "text"));
        } else if (t == "Identifier" || t == "ContactPoint") {
          std::string value(Get(v, "value"));
          if (!value.empty() || !Get(v, "system").empty()) f.tokens.push_back({std::string(Get(v, "system")), value});
          if (t == "Identifier") {
            const json::Value* type_cc = v->Find("type");
            if (type_cc != nullptr) {
              if (!Get(type_cc, "text").empty()) f.texts.emplace_back(Get(type_cc, "text"));
              if (const json::Value* list = type_cc->Find("coding")) {
                for (const json::Value& c : list->items()) {
                  f.of_type.push_back({std::string(Get(&c, "system")), std::string(Get(&c, "code")) + "|" + value});
                }
              }
            }
          }
        } else if (t != "Quantity" && t != "Reference" && t != "HumanName" && t != "Address" && t != "Period") {
          std::string text = TextOf(item);
          if (!text.empty()) f.tokens.push_back({"", text});
        }
        break;
      case SearchParamType::kString:
        if (t == "HumanName") {
          for (std::string_view k : {"family", "text", "given", "prefix", "suffix"}) {
            for (std::string_view s : GetAll(v, k)) f.strings.emplace_back(s);
          }
        } else if (t == "Address") {
          for (std::string_view k : {"line", "city", "district", "state", "postalCode", "country", "text"}) {
            for (std::string_view s : GetAll(v, k)) f.strings.emplace_back(s);
          }
        } else if (!item.is_node() || v == nullptr || v->is_string()) {
          std::string text = TextOf(item);
          if (!text.empty()) f.strings.push_back(text);
        }
        break;
      case SearchParamType::kDate:
        if (t == "Period") {
          auto s = DateOf(Get(v, "start"));
          auto e = DateOf(Get(v, "end"));
          if (s || e) {
            f.dates.emplace_back(s ? s->first : std::numeric_limits<std::int64_t>::min(),
                                 e ? e->second : std::numeric_limits<std::int64_t>::max());
          }
        } else if (t == "Timing") {
          for (std::string_view e : GetAll(v, "event")) {
            if (auto d = DateOf(e)) f.dates.push_back(*d);
          }
        } else if (auto d = DateOf(TextOf(item))) {
          f.dates.push_back(*d);
        }
        break;
      case SearchParamType::kNumber:
        if (auto r = DecimalRange(TextOf(item))) f.numbers.emplace_back(r->lo, r->hi);
        break;
      case SearchParamType::kQuantity:
        if (t == "Money") {
          const json::Value* value = v->Find("value");
          if (value && value->is_number()) {
            if (auto r = DecimalRange(value->number_literal())) {
              f.quantities.push_back({r->lo, r->hi, "urn:iso:std:iso:4217", std::string(Get(v, "currency"))});
            }
          }
        } else if (t == "Range") {
          const json::Value* low = v->Find("low");
          const json::Value* high = v->Find("high");
          const json::Value* lv = low ? low->Find("value") : nullptr;
          const json::Value* hv = high ? high->Find("value") : nullptr;
          auto lr = lv && lv->is_number() ? DecimalRange(lv->number_literal()) : std::nullopt;
          auto hr = hv && hv->is_number() ? DecimalRange(hv->number_literal()) : std::nullopt;
          if (lr || hr) {
            const json::Value* u = low ? low : high;
            std::string code(Get(u, "code"));
            if (code.empty()) code = Get(u, "unit");
            f.quantities.push_back({lr ? lr->lo : -1e308, hr ? hr->hi : 1e308, std::string(Get(u, "system")), code});
          }
        } else if (v != nullptr && v->is_object()) {
          AddQuantityObject(v, f);
        } else if (auto r = DecimalRange(TextOf(item))) {
          f.quantities.push_back({r->lo, r->hi, "", ""});
        }
        break;
      case SearchParamType::kReference:
        if (t == "Reference") {
          ParsedReference r = ParseReference(Get(v, "reference"));
          if (!r.empty()) f.refs.push_back(std::move(r));
          const json::Value* ident = v->Find("identifier");
          if (ident != nullptr && ident->is_object()) {
            f.ref_identifiers.push_back({std::string(Get(ident, "system")), std::string(Get(ident, "value"))});
          }
        } else if (t == "canonical" || t == "uri" || t == "url" || t == "uuid" || t == "oid" || t == "string" ||
                   t == "String") {
          ParsedReference r = ParseReference(TextOf(item));
          if (!r.empty()) f.refs.push_back(std::move(r));
        }
        break;
      case SearchParamType::kUri: {
        std::string text = TextOf(item);
        if (!text.empty()) f.uris.push_back(text);
        break;
      }
      default: break;
    }
  }
  return f;
}

bool TokenMatches(const SearchValue& v, const Facts::Token& t) {
  if (v.system && *v.system != t.system) return false;
  if (!v.code.empty() && v.code != t.code) return false;
  return true;
}

bool StartsWithNormalized(const std::string& text, const std::string& prefix) {
  return NormalizeString(text).starts_with(NormalizeString(prefix));
}

// Whether `f` (the facts of a parameter of type `type`) matches value `v`.
bool ValueMatches(SearchParamType type, Modifier m, const SearchValue& v, const Facts& f) {
  switch (type) {
    case SearchParamType::kString:
      for (const std::string& s : f.strings) {
        if (m == Modifier::kExact      ? s == v.text
            : m == Modifier::kContains ? NormalizeString(s).find(NormalizeString(v.text)) != std::string::npos
                                       : StartsWithNormalized(s, v.text)) {
          return true;
        }
      }
      return false;
    case SearchParamType::kToken:
      if (m == Modifier::kText) {
        for (const std::string& s : f.texts) {
          if (StartsWithNormalized(s, v.text)) return true;
        }
        return false;
      }
      for (const Facts::Token& t : m == Modifier::kOfType ? f.of_type : f.tokens) {
        if (TokenMatches(v, t)) return true;
      }
      return false;
    case SearchParamType::kDate:
      for (const auto& [lo, hi] : f.dates) {
        if (RangeMatches<std::int64_t>(v.prefix, v.date_lo, v.date_hi, lo, hi)) return true;
      }
      return false;
    case SearchParamType::kNumber:
      for (const auto& [lo, hi] : f.numbers) {
        if (RangeMatches<double>(v.prefix, v.lo, v.hi, lo, hi)) return true;
      }
      return false;
    case SearchParamType::kQuantity:
      for (const Facts::Quantity& q : f.quantities) {
        if (!v.canonical_unit.empty()) {
          if (q.system != kUcumSystem || q.code.empty()) continue;
          auto c = UcumCanonical(q.lo, q.hi, q.code);
          if (c && c->unit == v.canonical_unit &&
              RangeMatches<double>(v.prefix, *v.canonical_lo, *v.canonical_hi, c->lo, c->hi)) {
            return true;
          }
          continue;
        }
        if (!v.unit_code.empty() && v.unit_code != q.code) continue;
        if (!v.unit_system.empty() && v.unit_system != q.system) continue;
        if (RangeMatches<double>(v.prefix, v.lo, v.hi, q.lo, q.hi)) return true;
      }
      return false;
    case SearchParamType::kReference:
      if (m == Modifier::kIdentifier) {
        for (const Facts::Token& t : f.ref_identifiers) {
          if (TokenMatches(v, t)) return true;
        }
        return false;
      }
      for (const ParsedReference& r : f.refs) {
        if (!v.ref_url.empty()) {
          if (r.url == v.ref_url) return true;
        } else if (r.url.empty() && r.id == v.ref_id && (v.ref_type.empty() || r.type == v.ref_type)) {
          return true;
        }
      }
      return false;
    case SearchParamType::kUri:
      for (const std::string& u : f.uris) {
        if (m == Modifier::kBelow ? u.starts_with(v.text)
            : m == Modifier::kAbove
                ? (u == v.text || (v.text.starts_with(u) && v.text.size() > u.size() && v.text[u.size()] == '/'))
                : u == v.text) {
          return true;
        }
      }
      return false;
    default: return false;
  }
}

}  // namespace

struct Oracle::Impl {
  struct Resource {
    std::string type, id;
    json::Document doc;
    std::int64_t last_updated = 0;
    std::string compartment;
    size_t order = 0;
  };
  std::vector<std::unique_ptr<Resource>> resources;
  std::unordered_map<std::string, std::vector<const Resource*>> by_type;
  std::unordered_map<std::string, const Resource*> by_key;  // "Type/id"
  mutable std::mutex mu;
  mutable std::map<std::pair<std::string, std::string>, std::shared_ptr<fhirpath::Expression>> compiled;

  const fhirpath::Expression* Compile(const std::string& expression, const std::string& context) const {
    std::lock_guard lock(mu);
    auto key = std::make_pair(expression, context);
    auto it = compiled.find(key);
    if (it != compiled.end()) return it->second.get();
    fhirpath::CompileOptions options;
    options.context_type = context;
    auto e = fhirpath::Expression::Compile(expression, options);
    std::shared_ptr<fhirpath::Expression> p;
    if (e.ok()) p = std::make_shared<fhirpath::Expression>(std::move(e).value());
    compiled[key] = p;
    return p.get();
  }

  // The values of parameter `code` on resource `r` (composites not included).
  Facts ParamFacts(const Resource& r, std::string_view code, SearchParamType* type_out = nullptr) const {
    const IndexedParam* p = Extractor::Default().Find(r.type, code);
    if (p == nullptr) return {};
    if (type_out) *type_out = p->type;
    const fhirpath::Expression* e = Compile(p->expression, r.type);
    if (e == nullptr) return {};
    Arena arena(4096);
    auto items = e->Evaluate(r.doc.root(), arena);
    if (!items.ok()) return {};
    return FactsOf(p->type, *items);
  }

  bool CompositeMatches(const Resource& r, const Criterion& c, const SearchValue& v) const {
    const IndexedParam* p = c.param;
    const fhir::SearchParamDef* def = p->def;
    const fhirpath::Expression* root = Compile(p->expression, r.type);
    if (root == nullptr) return false;
    Arena arena(4096);
    auto roots = root->Evaluate(r.doc.root(), arena);
    if (!roots.ok()) return false;
    for (const Item& item : *roots) {
      fhirpath::Collection one(&item, 1);
      fhirpath::EvalOptions options;
      options.resource = &r.doc.root();
      bool all = true;
      for (size_t i = 0; i < def->components.size() && all; ++i) {
        const fhirpath::Expression* ce = Compile(std::string(def->components[i].expression), "");
        if (ce == nullptr) return false;
        auto values = ce->Evaluate(one, arena, options);
        if (!values.ok()) return false;
        Facts f = FactsOf(p->component_types[i], *values);
        all = ValueMatches(p->component_types[i], Modifier::kNone, v.components[i], f);
      }
      if (all) return true;
    }
    return false;
  }

  // The codes of the ValueSet whose url is `url` (none when there is none).
  std::vector<SystemCode> ValueSetByUrl(const std::string& url) const {
    auto it = by_type.find("ValueSet");
    if (it == by_type.end()) return {};
    for (const Resource* vs : it->second) {
      const json::Value* u = vs->doc.root().Find("url");
      if (u == nullptr || !u->is_string() || u->as_string() != url) continue;
      auto codes = ValueSetCodes(vs->doc.root());
      return codes.ok() ? *codes : std::vector<SystemCode>();
    }
    return {};
  }

  bool Matches(const Resource& r, const Criterion& c) const {
    if (c.special == Criterion::Special::kHas) {
      auto it = by_type.find(c.has_type);
      if (it == by_type.end()) return false;
      for (const Resource* s : it->second) {
        Facts f = ParamFacts(*s, c.has_param);
        bool refers = false;
        for (const ParsedReference& ref : f.refs) refers = refers || (ref.type == r.type && ref.id == r.id);
        if (refers && Matches(*s, c.chain[0])) return true;
      }
      return false;
    }
    if (c.chained()) {
      Facts f = ParamFacts(r, c.code);
      for (const ParsedReference& ref : f.refs) {
        if (ref.type.empty() ||
            std::find(c.target_types.begin(), c.target_types.end(), ref.type) == c.target_types.end()) {
          continue;
        }
        auto t = by_key.find(ref.type + "/" + ref.id);
        if (t != by_key.end() && Matches(*t->second, c.chain[0])) return true;
      }
      return false;
    }
    if (c.special == Criterion::Special::kId) {
      for (const SearchValue& v : c.values) {
        if (v.text == r.id) return true;
      }
      return false;
    }
    if (c.special == Criterion::Special::kLastUpdated) {
      for (const SearchValue& v : c.values) {
        if (RangeMatches<std::int64_t>(v.prefix, v.date_lo, v.date_hi, r.last_updated, r.last_updated)) return true;
      }
      return false;
    }
    if (c.type == SearchParamType::kComposite) {
      for (const SearchValue& v : c.values) {
        if (CompositeMatches(r, c, v)) return true;
      }
      return false;
    }
    Facts f = ParamFacts(r, c.code);
    if (c.modifier == Modifier::kMissing) {
      for (const SearchValue& v : c.values) {
        if (f.empty(c.type) == v.missing) return true;
      }
      return false;
    }
    if (c.modifier == Modifier::kIn || c.modifier == Modifier::kNotIn) {
      bool any = false;
      for (const SearchValue& v : c.values) {
        std::vector<SystemCode> codes = ValueSetByUrl(v.text);
        for (const Facts::Token& t : f.tokens) {
          for (const SystemCode& sc : codes) any = any || (sc.first == t.system && sc.second == t.code);
        }
      }
      return c.modifier == Modifier::kNotIn ? !any : any;
    }
    Modifier m = c.modifier == Modifier::kNot ? Modifier::kNone : c.modifier;
    bool any = false;
    for (const SearchValue& v : c.values) any = any || ValueMatches(c.type, m, v, f);
    return c.modifier == Modifier::kNot ? !any : any;
  }

  using Key = std::variant<std::int64_t, double, std::string>;

  // The sort key of `r` for `s`, or nullopt (sorts last).
  std::optional<Key> SortValue(const Resource& r, const SortSpec& s) const {
    if (s.code == "_id") return Key(r.id);
    if (s.code == "_lastUpdated") return Key(r.last_updated);
    SearchParamType type = s.param->type;
    Facts f = ParamFacts(r, s.code);
    std::vector<Key> values;
    switch (type) {
      case SearchParamType::kDate:
        for (const auto& [lo, hi] : f.dates) values.emplace_back(s.descending ? hi : lo);
        break;
      case SearchParamType::kNumber:
        for (const auto& [lo, hi] : f.numbers) values.emplace_back(s.descending ? hi : lo);
        break;
      case SearchParamType::kQuantity:
        for (const auto& q : f.quantities) values.emplace_back(s.descending ? q.hi : q.lo);
        break;
      case SearchParamType::kString:
        for (const auto& v : f.strings) values.emplace_back(NormalizeString(v));
        break;
      case SearchParamType::kReference:
        for (const auto& v : f.refs) values.emplace_back(v.id);
        break;
      case SearchParamType::kUri:
        for (const auto& v : f.uris) values.emplace_back(v);
        break;
      default:
        for (const auto& v : f.tokens) values.emplace_back(v.code);
        break;
    }
    if (values.empty()) return std::nullopt;
    return s.descending ? *std::max_element(values.begin(), values.end())
                        : *std::min_element(values.begin(), values.end());
  }

  std::vector<const Resource*> Referenced(const Resource& r, const IncludeParam& inc) const {
    std::vector<const Resource*> out;
    std::vector<std::string> params;
    if (!inc.param.empty()) {
      params.push_back(inc.param);
    } else {
      for (const IndexedParam* p : Extractor::Default().Params(r.type)) {
        if (p->type == SearchParamType::kReference) params.push_back(p->code);
      }
    }
    for (const std::string& code : params) {
      Facts f = ParamFacts(r, code);
      for (const ParsedReference& ref : f.refs) {
        if (ref.type.empty() || (!inc.target_type.empty() && ref.type != inc.target_type)) continue;
        auto t = by_key.find(ref.type + "/" + ref.id);
        if (t != by_key.end()) out.push_back(t->second);
      }
    }
    return out;
  }
};

Oracle::Oracle() : impl_(std::make_unique<Impl>()) {}
Oracle::~Oracle() = default;

Status Oracle::Add(std::string_view json_text) {
  auto r = std::make_unique<Impl::Resource>();
  ASSIGN_OR_RETURN(r->doc, json::Document::Parse(json_text));
  const json::Value& root = r->doc.root();
  r->type = Get(&root, "resourceType");
  r->id = Get(&root, "id");
  if (r->type.empty() || r->id.empty()) return InvalidArgumentError("oracle: resource without type or id");
  auto lu = DateRange(Get(root.Find("meta"), "lastUpdated"));
  r->last_updated = lu ? lu->lo : 0;
  ASSIGN_OR_RETURN(ExtractResult x, Extract(r->type, r->id, root));
  r->compartment = x.compartment;
  r->order = impl_->resources.size();
  impl_->by_type[r->type].push_back(r.get());
  impl_->by_key[r->type + "/" + r->id] = r.get();
  impl_->resources.push_back(std::move(r));
  return Status::Ok();
}

Result<std::vector<std::string>> Oracle::Matches(const SearchQuery& query) const {
  std::vector<const Impl::Resource*> hits;
  // A system-level search reads every resource of its types, in Add order.
  std::vector<const Impl::Resource*> system;
  bool is_system = query.type.empty();
  if (is_system) {
    std::set<std::string_view> types(query.types.begin(), query.types.end());
    for (const auto& r : impl_->resources) {
      if (types.count(r->type)) system.push_back(r.get());
    }
  }
  auto it = impl_->by_type.find(query.type);
  if (is_system || it != impl_->by_type.end()) {
    for (const Impl::Resource* r : is_system ? system : it->second) {
      if (query.compartment && r->compartment != *query.compartment) continue;
      bool all = true;
      for (const Criterion& c : query.criteria) {
        if (!impl_->Matches(*r, c)) {
          all = false;
          break;
        }
      }
      if (all) hits.push_back(r);
    }
  }
  if (!query.sort.empty()) {
    std::map<const Impl::Resource*, std::vector<std::optional<Impl::Key>>> keys;
    for (const Impl::Resource* r : hits) {
      for (const SortSpec& s : query.sort) keys[r].push_back(impl_->SortValue(*r, s));
    }
    std::stable_sort(hits.begin(), hits.end(), [&](const Impl::Resource* a, const Impl::Resource* b) {
      const auto& ka = keys[a];
      const auto& kb = keys[b];
      for (size_t i = 0; i < query.sort.size(); ++i) {
        if (ka[i] == kb[i]) continue;
        if (!ka[i]) return false;  // missing sorts last
        if (!kb[i]) return true;
        return query.sort[i].descending ? *kb[i] < *ka[i] : *ka[i] < *kb[i];
      }
      return a->order < b->order;
    });
  }
  std::vector<std::string> ids;
  for (const Impl::Resource* r : hits) ids.push_back(is_system ? r->type + "/" + r->id : r->id);
  return ids;
}

Result<std::vector<std::string>> Oracle::Includes(const SearchQuery& query, const std::vector<std::string>& ids) const {
  std::set<const Impl::Resource*> seen;
  std::vector<const Impl::Resource*> frontier;
  for (const std::string& id : ids) {
    auto it = impl_->by_key.find(query.type + "/" + id);
    if (it == impl_->by_key.end()) continue;
    seen.insert(it->second);
    frontier.push_back(it->second);
  }
  std::set<std::string> out;
  for (int round = 0; round <= 4 && !frontier.empty(); ++round) {
    std::vector<const Impl::Resource*> next;
    auto add = [&](const Impl::Resource* r) {
      if (seen.insert(r).second) {
        next.push_back(r);
        out.insert(r->type + "/" + r->id);
      }
    };
    for (const auto* list : {&query.includes, &query.revincludes}) {
      for (const IncludeParam& inc : *list) {
        if (round > 0 && !inc.iterate) continue;
        for (const Impl::Resource* r : frontier) {
          if (!inc.reverse) {
            if (!inc.source_type.empty() && r->type != inc.source_type) continue;
            for (const Impl::Resource* t : impl_->Referenced(*r, inc)) add(t);
          } else {
            auto it = impl_->by_type.find(inc.source_type);
            if (it == impl_->by_type.end()) continue;
            for (const Impl::Resource* s : it->second) {
              IncludeParam fwd = inc;
              fwd.target_type = inc.target_type;
              for (const Impl::Resource* t : impl_->Referenced(*s, fwd)) {
                if (t == r) add(s);
              }
            }
          }
        }
      }
    }
    frontier = std::move(next);
  }
  return std::vector<std::string>(out.begin(), out.end());
}

}  // namespace bevan::search
