#include "search/query.h"

#include <charconv>
#include <cmath>
#include <set>

#include "common/percent.h"
#include "json/json.h"
#include "search/values.h"

namespace bevan::search {

namespace {

using fhir::SearchParamType;

constexpr store::Micros kDayMicros = 86400LL * 1000000;

Result<std::string> PercentDecode(std::string_view s) {
  auto decoded = ::bevan::PercentDecode(s, /*plus_is_space=*/true, /*allow_nul=*/true);
  if (!decoded) return InvalidArgumentError("malformed percent-encoding in '" + std::string(s) + "'");
  return std::move(*decoded);
}

// Splits on `sep` where it is not escaped by a backslash; parts stay escaped.
std::vector<std::string_view> SplitEscaped(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
      continue;
    }
    if (s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

std::string Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out += s[i];
  }
  return out;
}

Status Bad(std::string_view name, std::string_view value, std::string_view why) {
  return InvalidArgumentError(std::string(name) + ": '" + std::string(value) + "' " + std::string(why));
}

// Splits a leading prefix (eq, ne, ...) off a number, date or quantity value.
Prefix TakePrefix(std::string_view& v) {
  static constexpr std::pair<std::string_view, Prefix> kPrefixes[] = {
      {"eq", Prefix::kEq}, {"ne", Prefix::kNe}, {"gt", Prefix::kGt}, {"lt", Prefix::kLt}, {"ge", Prefix::kGe},
      {"le", Prefix::kLe}, {"sa", Prefix::kSa}, {"eb", Prefix::kEb}, {"ap", Prefix::kAp},
  };
  if (v.size() > 2) {
    for (const auto& [text, prefix] : kPrefixes) {
      if (v.starts_with(text)) {
        v.remove_prefix(2);
        return prefix;
      }
    }
  }
  return Prefix::kEq;
}

Status ParseDateValue(std::string_view name, std::string_view raw, SearchValue& out) {
  std::string_view v = raw;
  out.prefix = TakePrefix(v);
  std::string text = Unescape(v);
  auto r = DateRange(text);
  if (!r) return Bad(name, raw, "is not a valid date");
  out.text = text;
  out.date_lo = r->lo;
  out.date_hi = r->hi;
  if (out.prefix == Prefix::kAp) {
    store::Micros widen = (r->hi - r->lo + 1) / 10 + kDayMicros;
    out.date_lo -= widen;
    out.date_hi += widen;
  }
  return Status::Ok();
}

Status ParseNumberText(std::string_view name, std::string_view raw, std::string_view text, SearchValue& out) {
  auto r = DecimalRange(text);
  if (!r) return Bad(name, raw, "is not a valid number");
  out.number = r->value;
  out.lo = r->lo;
  out.hi = r->hi;
  if (out.prefix == Prefix::kAp) {
    double widen = std::fabs(r->value) * 0.1;
    out.lo = std::min(out.lo, r->value - widen);
    out.hi = std::max(out.hi, r->value + widen);
  }
  return Status::Ok();
}

Status ParseNumberValue(std::string_view name, std::string_view raw, SearchValue& out) {
  std::string_view v = raw;
  out.prefix = TakePrefix(v);
  out.text = Unescape(v);
  return ParseNumberText(name, raw, out.text, out);
}

Status ParseQuantityValue(std::string_view name, std::string_view raw, SearchValue& out) {
  std::string_view v = raw;
  out.prefix = TakePrefix(v);
  std::vector<std::string_view> parts = SplitEscaped(v, '|');
  if (parts.size() != 1 && parts.size() != 3) return Bad(name, raw, "is not number|system|code");
  std::string number = Unescape(parts[0]);
  RETURN_IF_ERROR(ParseNumberText(name, raw, number, out));
  out.text = Unescape(v);
  if (parts.size() == 3) {
    out.unit_system = Unescape(parts[1]);
    out.unit_code = Unescape(parts[2]);
    if (out.unit_system == kUcumSystem && !out.unit_code.empty()) {
      if (auto c = UcumCanonical(out.lo, out.hi, out.unit_code)) {
        out.canonical_lo = c->lo;
        out.canonical_hi = c->hi;
        out.canonical_unit = std::move(c->unit);
      }
    }
  }
  return Status::Ok();
}

Status ParseTokenValue(std::string_view name, std::string_view raw, Modifier modifier, SearchValue& out) {
  if (modifier == Modifier::kText) {
    out.text = Unescape(raw);
    return Status::Ok();
  }
  if (modifier == Modifier::kIn || modifier == Modifier::kNotIn) {
    out.text = Unescape(raw);
    if (size_t bar = out.text.find('|'); bar != std::string::npos) out.text.resize(bar);  // |version ignored
    if (out.text.empty()) return Bad(name, raw, "needs a value set URL");
    return Status::Ok();
  }
  std::vector<std::string_view> parts = SplitEscaped(raw, '|');
  if (modifier == Modifier::kOfType) {
    if (parts.size() != 3) return Bad(name, raw, "is not system|code|value (:of-type)");
    out.system = Unescape(parts[0]);
    out.code = Unescape(parts[1]) + "|" + Unescape(parts[2]);
    if (parts[1].empty() || parts[2].empty()) return Bad(name, raw, "needs a type code and a value (:of-type)");
    return Status::Ok();
  }
  if (parts.size() > 2) return Bad(name, raw, "has more than one unescaped '|'");
  if (parts.size() == 2) {
    out.system = Unescape(parts[0]);
    out.code = Unescape(parts[1]);
    if (out.system->empty() && out.code.empty()) return Bad(name, raw, "is empty");
  } else {
    out.code = Unescape(parts[0]);
    if (out.code.empty()) return Bad(name, raw, "is empty");
  }
  out.text = Unescape(raw);
  return Status::Ok();
}

Status ParseReferenceValue(std::string_view name, std::string_view raw, const Criterion& c, const ParseOptions& options,
                           SearchValue& out) {
  std::string v = Unescape(raw);
  if (v.empty()) return Bad(name, raw, "is empty");
  if (c.modifier == Modifier::kIdentifier) {
    return ParseTokenValue(name, raw, Modifier::kNone, out);
  }
  out.text = v;
  std::string_view view = v;
  std::string_view base = options.base_url;
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  if (!base.empty() && view.starts_with(base) && view.size() > base.size() && view[base.size()] == '/') {
    view.remove_prefix(base.size() + 1);
  }
  if (view.find('/') == std::string_view::npos && view.find(':') == std::string_view::npos) {
    out.ref_id = view;
    out.ref_type = c.modifier_type;
    return Status::Ok();
  }
  ParsedReference r = ParseReference(view);
  if (!r.type.empty()) {
    if (!c.modifier_type.empty() && r.type != c.modifier_type) {
      return Bad(name, raw, "names a type other than :" + c.modifier_type);
    }
    out.ref_type = r.type;
    out.ref_id = r.id;
  } else if (!r.url.empty()) {
    out.ref_url = r.url;
  } else {
    return Bad(name, raw, "is not a reference");
  }
  return Status::Ok();
}

Status ParseValue(std::string_view name, std::string_view raw, const Criterion& c, SearchParamType type,
                  const ParseOptions& options, SearchValue& out);

Status ParseCompositeValue(std::string_view name, std::string_view raw, const Criterion& c, const ParseOptions& options,
                           SearchValue& out) {
  std::vector<std::string_view> parts = SplitEscaped(raw, '$');
  const std::vector<SearchParamType>& types = c.param->component_types;
  if (parts.size() != types.size()) {
    return Bad(name, raw, "needs " + std::to_string(types.size()) + " components separated by '$'");
  }
  Criterion plain;
  plain.name = c.name;
  for (size_t i = 0; i < parts.size(); ++i) {
    SearchValue component;
    RETURN_IF_ERROR(ParseValue(name, parts[i], plain, types[i], options, component));
    out.components.push_back(std::move(component));
  }
  const SearchValue& first = out.components[0];
  if (types[0] == SearchParamType::kToken) {
    out.composite_key = first.system ? *first.system + "|" + first.code : first.code;
  } else if (types[0] == SearchParamType::kReference) {
    out.composite_key = !first.ref_url.empty()   ? first.ref_url
                        : first.ref_type.empty() ? first.ref_id
                                                 : first.ref_type + "/" + first.ref_id;
  } else {
    out.composite_key = first.text;
  }
  out.text = Unescape(raw);
  return Status::Ok();
}

Status ParseValue(std::string_view name, std::string_view raw, const Criterion& c, SearchParamType type,
                  const ParseOptions& options, SearchValue& out) {
  if (c.modifier == Modifier::kMissing) {
    if (raw == "true") {
      out.missing = true;
    } else if (raw == "false") {
      out.missing = false;
    } else {
      return Bad(name, raw, "must be true or false (:missing)");
    }
    out.text = raw;
    return Status::Ok();
  }
  if (c.special == Criterion::Special::kId) {
    out.text = Unescape(raw);
    if (out.text.empty()) return Bad(name, raw, "is empty");
    return Status::Ok();
  }
  if (c.special == Criterion::Special::kLastUpdated) return ParseDateValue(name, raw, out);
  switch (type) {
    case SearchParamType::kString: {
      out.text = Unescape(raw);
      if (out.text.empty()) return Bad(name, raw, "is empty");
      return Status::Ok();
    }
    case SearchParamType::kUri: {
      out.text = Unescape(raw);
      if (out.text.empty()) return Bad(name, raw, "is empty");
      return Status::Ok();
    }
    case SearchParamType::kToken: return ParseTokenValue(name, raw, c.modifier, out);
    case SearchParamType::kDate: return ParseDateValue(name, raw, out);
    case SearchParamType::kNumber: return ParseNumberValue(name, raw, out);
    case SearchParamType::kQuantity: return ParseQuantityValue(name, raw, out);
    case SearchParamType::kReference: return ParseReferenceValue(name, raw, c, options, out);
    case SearchParamType::kComposite: return ParseCompositeValue(name, raw, c, options, out);
    case SearchParamType::kSpecial: return Bad(name, raw, "belongs to a special parameter");
  }
  return Bad(name, raw, "has an unknown type");
}

// Which modifiers each parameter type supports.
bool ModifierAllowed(SearchParamType type, Modifier m) {
  if (m == Modifier::kNone || m == Modifier::kMissing) return true;
  switch (type) {
    case SearchParamType::kString: return m == Modifier::kExact || m == Modifier::kContains;
    case SearchParamType::kToken:
      return m == Modifier::kText || m == Modifier::kNot || m == Modifier::kOfType || m == Modifier::kIn ||
             m == Modifier::kNotIn;
    case SearchParamType::kReference: return m == Modifier::kType || m == Modifier::kIdentifier;
    case SearchParamType::kUri: return m == Modifier::kAbove || m == Modifier::kBelow;
    default: return false;
  }
}

// The outcome of parsing a parameter name: a criterion, or why it is ignored.
struct KeyResult {
  std::optional<Criterion> criterion;
  std::string unknown;  // set when the parameter is ignored
};

Result<KeyResult> ParseKey(std::string_view type, std::string_view key, int depth, const ParseOptions& options) {
  KeyResult out;
  if (depth > options.max_chain_depth) {
    return InvalidArgumentError(std::string(key) + ": chains deeper than " + std::to_string(options.max_chain_depth) +
                                " are not supported");
  }
  Criterion c;
  c.name = key;
  if (key.starts_with("_has:")) {
    // _has:Type:refparam:rest
    std::string_view rest = key.substr(5);
    size_t a = rest.find(':');
    size_t b = a == std::string_view::npos ? a : rest.find(':', a + 1);
    if (b == std::string_view::npos) {
      return InvalidArgumentError(std::string(key) + ": _has needs _has:Type:parameter:parameter");
    }
    std::string has_type(rest.substr(0, a));
    std::string has_param(rest.substr(a + 1, b - a - 1));
    if (fhir::FindResourceType(has_type) == nullptr) {
      return InvalidArgumentError(std::string(key) + ": unknown resource type " + has_type);
    }
    const IndexedParam* ref = Extractor::Default().Find(has_type, has_param);
    if (ref == nullptr || ref->type != SearchParamType::kReference) {
      return InvalidArgumentError(std::string(key) + ": " + has_type + " has no reference parameter " + has_param);
    }
    ASSIGN_OR_RETURN(KeyResult inner, ParseKey(has_type, rest.substr(b + 1), depth + 1, options));
    if (!inner.criterion) {
      out.unknown = inner.unknown;
      return out;
    }
    c.code = "_has";
    c.special = Criterion::Special::kHas;
    c.has_type = std::move(has_type);
    c.has_param = std::move(has_param);
    c.type = SearchParamType::kReference;
    c.chain.push_back(std::move(*inner.criterion));
    out.criterion = std::move(c);
    return out;
  }
  size_t dot = key.find('.');
  std::string_view head = key.substr(0, dot);
  size_t colon = head.find(':');
  c.code = head.substr(0, colon);
  std::string_view modifier = colon == std::string_view::npos ? std::string_view() : head.substr(colon + 1);
  if (c.code == "_id") {
    c.special = Criterion::Special::kId;
    c.type = SearchParamType::kToken;
  } else if (c.code == "_lastUpdated") {
    c.special = Criterion::Special::kLastUpdated;
    c.type = SearchParamType::kDate;
  } else {
    c.param = Extractor::Default().Find(type, c.code);
    if (c.param == nullptr) {
      const fhir::SearchParamDef* def = fhir::FindSearchParam(type, c.code);
      out.unknown = def ? "parameter " + c.code + " of " + std::string(type) + " is not supported"
                        : "unknown parameter " + c.code + " for " + std::string(type);
      return out;
    }
    c.type = c.param->type;
  }
  if (!modifier.empty()) {
    static constexpr std::pair<std::string_view, Modifier> kModifiers[] = {
        {"exact", Modifier::kExact},
        {"contains", Modifier::kContains},
        {"text", Modifier::kText},
        {"not", Modifier::kNot},
        {"of-type", Modifier::kOfType},
        {"missing", Modifier::kMissing},
        {"identifier", Modifier::kIdentifier},
        {"above", Modifier::kAbove},
        {"below", Modifier::kBelow},
        {"in", Modifier::kIn},
        {"not-in", Modifier::kNotIn},
    };
    bool found = false;
    for (const auto& [text, m] : kModifiers) {
      if (modifier == text) {
        c.modifier = m;
        found = true;
      }
    }
    if (!found && c.type == SearchParamType::kReference && fhir::FindResourceType(modifier) != nullptr) {
      c.modifier = Modifier::kType;
      c.modifier_type = modifier;
      found = true;
      if (c.param && c.param->def && !c.param->def->targets.empty()) {
        bool allowed = false;
        for (std::string_view t : c.param->def->targets) allowed = allowed || t == modifier;
        if (!allowed) {
          return InvalidArgumentError(std::string(key) + ": " + c.code + " cannot refer to " + std::string(modifier));
        }
      }
    }
    if (!found || !ModifierAllowed(c.type, c.modifier) ||
        (c.special != Criterion::Special::kNone && c.modifier != Modifier::kNone)) {
      out.unknown = "modifier :" + std::string(modifier) + " is not supported on " + c.code;
      if (found && c.type == SearchParamType::kToken &&
          (c.modifier == Modifier::kAbove || c.modifier == Modifier::kBelow)) {
        // R4 allows them on tokens whose code system defines subsumption;
        // that needs a terminology service, which Bevan does not have.
        out.unknown += " (token :above and :below need code system subsumption, which this server does not support)";
      }
      return out;
    }
    if (c.type == SearchParamType::kComposite && c.modifier == Modifier::kMissing) {
      out.unknown = "modifier :missing is not supported on composite " + c.code;
      return out;
    }
  }
  if (dot != std::string_view::npos) {
    if (c.type != SearchParamType::kReference || c.special != Criterion::Special::kNone ||
        (c.modifier != Modifier::kNone && c.modifier != Modifier::kType)) {
      return InvalidArgumentError(std::string(key) + ": only reference parameters can be chained");
    }
    std::string_view rest = key.substr(dot + 1);
    std::vector<std::string> candidates;
    if (!c.modifier_type.empty()) {
      candidates.push_back(c.modifier_type);
    } else if (c.param->def != nullptr && !c.param->def->targets.empty()) {
      for (std::string_view t : c.param->def->targets) candidates.emplace_back(t);
    } else {
      for (std::string_view t : fhir::ResourceTypeNames()) candidates.emplace_back(t);
    }
    std::optional<Criterion> next;
    std::string unknown;
    for (const std::string& target : candidates) {
      ASSIGN_OR_RETURN(KeyResult inner, ParseKey(target, rest, depth + 1, options));
      if (!inner.criterion) {
        unknown = inner.unknown;
        continue;
      }
      c.target_types.push_back(target);
      // The chained criterion of the first target stands for all of them;
      // each target type resolves the parameter code on its own at plan time.
      if (!next) next = std::move(inner.criterion);
    }
    if (!next) {
      out.unknown = "chained parameter " + std::string(rest) + " is not known on the targets of " + c.code +
                    (unknown.empty() ? "" : " (" + unknown + ")");
      return out;
    }
    c.chain.push_back(std::move(*next));
  }
  out.criterion = std::move(c);
  return out;
}

// The innermost criterion of a chain (the one the values belong to).
Criterion& Leaf(Criterion& c) { return c.chain.empty() ? c : Leaf(c.chain[0]); }

Status ParseInclude(std::string_view name, std::string_view value, bool reverse, bool iterate, std::string_view type,
                    SearchQuery& q) {
  IncludeParam inc;
  inc.reverse = reverse;
  inc.iterate = iterate;
  if (value == "*") {
    inc.source_type = reverse ? "" : std::string(type);
    if (reverse) return Bad(name, value, "is not supported: _revinclude needs Type:parameter");
  } else {
    std::vector<std::string_view> parts = SplitEscaped(value, ':');
    if (parts.size() < 2 || parts.size() > 3) return Bad(name, value, "is not Type:parameter[:targetType]");
    inc.source_type = parts[0];
    if (fhir::FindResourceType(inc.source_type) == nullptr) return Bad(name, value, "names an unknown type");
    if (parts[1] != "*") {
      inc.param = parts[1];
      const IndexedParam* p = Extractor::Default().Find(inc.source_type, inc.param);
      if (p == nullptr || p->type != SearchParamType::kReference) {
        return Bad(name, value, "does not name a reference parameter of " + inc.source_type);
      }
    }
    if (parts.size() == 3) {
      inc.target_type = parts[2];
      if (fhir::FindResourceType(inc.target_type) == nullptr) return Bad(name, value, "names an unknown target type");
    }
    if (!reverse && !iterate && inc.source_type != type) {
      return Bad(name, value, "names another type than the searched " + std::string(type) + " (use :iterate)");
    }
  }
  (reverse ? q.revincludes : q.includes).push_back(std::move(inc));
  return Status::Ok();
}

Status ParseResultParam(std::string_view name, std::string_view value, std::string_view type,
                        const ParseOptions& options, SearchQuery& q, bool& handled) {
  handled = true;
  if (name == "_count") {
    int n = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || p != value.data() + value.size() || n < 0) {
      return Bad(name, value, "is not a non-negative integer");
    }
    if (n > options.max_count) return Bad(name, value, "is above the limit of " + std::to_string(options.max_count));
    q.count = n;
  } else if (name == "_total") {
    if (value == "none") {
      q.total = Total::kNone;
    } else if (value == "estimate") {
      q.total = Total::kEstimate;
    } else if (value == "accurate") {
      q.total = Total::kAccurate;
    } else {
      return Bad(name, value, "is not none, estimate or accurate");
    }
  } else if (name == "_summary") {
    static constexpr std::pair<std::string_view, Summary> kSummaries[] = {{"true", Summary::kTrue},
                                                                          {"false", Summary::kFalse},
                                                                          {"text", Summary::kText},
                                                                          {"data", Summary::kData},
                                                                          {"count", Summary::kCount}};
    bool found = false;
    for (const auto& [text, s] : kSummaries) {
      if (value == text) {
        q.summary = s;
        found = true;
      }
    }
    if (!found) return Bad(name, value, "is not true, false, text, data or count");
  } else if (name == "_elements") {
    for (std::string_view e : SplitEscaped(value, ',')) {
      if (!e.empty()) q.elements.emplace_back(e);
    }
  } else if (name == "_sort") {
    for (std::string_view s : SplitEscaped(value, ',')) {
      SortSpec spec;
      if (s.starts_with('-')) {
        spec.descending = true;
        s.remove_prefix(1);
      }
      if (s.empty()) return Bad(name, value, "has an empty sort key");
      spec.code = s;
      if (s != "_id" && s != "_lastUpdated") {
        spec.param = Extractor::Default().Find(type, s);
        if (spec.param == nullptr || spec.param->type == SearchParamType::kComposite) {
          return Bad(name, value,
                     "names " + std::string(s) + ", which is not a sortable parameter of " + std::string(type));
        }
      }
      q.sort.push_back(std::move(spec));
    }
  } else if (name == "_include" || name == "_include:iterate" || name == "_include:recurse") {
    RETURN_IF_ERROR(ParseInclude(name, value, false, name != "_include", type, q));
  } else if (name == "_revinclude" || name == "_revinclude:iterate" || name == "_revinclude:recurse") {
    RETURN_IF_ERROR(ParseInclude(name, value, true, name != "_revinclude", type, q));
  } else if (name == "_cursor") {
    q.cursor = std::string(value);
  } else if (name == "_format" || name == "_pretty") {
    // The REST layer's.
  } else {
    handled = false;
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> DecodeQueryString(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    ASSIGN_OR_RETURN(std::string name, PercentDecode(pair.substr(0, eq)));
    ASSIGN_OR_RETURN(std::string value,
                     PercentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1)));
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

Result<SearchQuery> ParseSearchQuery(std::string_view type, std::string_view query, const ParseOptions& options) {
  ASSIGN_OR_RETURN(auto params, DecodeQueryString(query));
  return ParseSearchParams(type, params, options);
}

Result<SearchQuery> ParseSearchParams(std::string_view type,
                                      std::span<const std::pair<std::string, std::string>> params,
                                      const ParseOptions& options) {
  if (fhir::FindResourceType(type) == nullptr) {
    return InvalidArgumentError("unknown resource type " + std::string(type));
  }
  SearchQuery q;
  q.type = type;
  for (const auto& [name, value] : params) {
    if (!json::IsValidUtf8(name) || !json::IsValidUtf8(value)) {
      return InvalidArgumentError(name + ": the parameter is not valid UTF-8");
    }
    bool handled = false;
    RETURN_IF_ERROR(ParseResultParam(name, value, type, options, q, handled));
    if (handled) continue;
    ASSIGN_OR_RETURN(KeyResult key, ParseKey(type, name, 0, options));
    if (!key.criterion) {
      q.unknown.emplace_back(name, key.unknown);
      continue;
    }
    Criterion& leaf = Leaf(*key.criterion);
    std::vector<std::string_view> raws = SplitEscaped(value, ',');
    if (static_cast<int>(raws.size()) > options.max_values) {
      return InvalidArgumentError(name + ": more than " + std::to_string(options.max_values) + " values");
    }
    for (std::string_view raw : raws) {
      SearchValue v;
      RETURN_IF_ERROR(ParseValue(name, raw, leaf, leaf.type, options, v));
      leaf.values.push_back(std::move(v));
    }
    q.criteria.push_back(std::move(*key.criterion));
  }
  return q;
}

bool IsCommonParameter(std::string_view code) {
  return code == "_id" || code == "_lastUpdated" || code == "_tag" || code == "_profile" || code == "_security" ||
         code == "_source";
}

Result<SearchQuery> ParseSystemSearch(std::string_view query, const ParseOptions& options) {
  ASSIGN_OR_RETURN(auto params, DecodeQueryString(query));
  std::set<std::string> types;
  bool type_given = false;
  std::vector<std::pair<std::string, std::string>> rest;
  std::vector<std::pair<std::string, std::string>> unknown;
  for (auto& [name, value] : params) {
    if (name == "_type") {
      type_given = true;
      for (std::string_view t : SplitEscaped(value, ',')) {
        if (t.empty()) continue;
        if (fhir::FindResourceType(t) == nullptr)
          return InvalidArgumentError("_type: unknown resource type " + std::string(t));
        types.emplace(t);
      }
    } else if (name.starts_with("_include") || name.starts_with("_revinclude") || name.starts_with("_has")) {
      unknown.emplace_back(name, "not supported in a system-level search");
    } else {
      rest.emplace_back(std::move(name), std::move(value));
    }
  }
  if (!type_given) {
    for (std::string_view t : fhir::ResourceTypeNames()) types.emplace(t);
  }
  if (types.empty()) return InvalidArgumentError("_type: no resource type");
  // Common parameters parse alike for every type; the first one stands for all.
  ASSIGN_OR_RETURN(SearchQuery q, ParseSearchParams(*types.begin(), rest, options));
  q.type.clear();
  q.types.assign(types.begin(), types.end());
  std::vector<Criterion> common;
  for (Criterion& c : q.criteria) {
    if (IsCommonParameter(c.code) && !c.chained()) {
      common.push_back(std::move(c));
    } else {
      q.unknown.emplace_back(c.name,
                             "a system-level search takes only _id, _lastUpdated, _tag, _profile, _security, _source");
    }
  }
  q.criteria = std::move(common);
  for (const SortSpec& s : q.sort) {
    if (s.code != "_id" && s.code != "_lastUpdated") {
      return InvalidArgumentError("_sort: a system-level search sorts by _id or _lastUpdated only");
    }
  }
  for (auto& u : unknown) q.unknown.push_back(std::move(u));
  return q;
}

}  // namespace bevan::search
