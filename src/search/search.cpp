#include "search/search.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "search/values.h"

namespace bevan::search {

namespace {

using fhir::SearchParamType;
using store::Column;
using store::Cond;
using store::IndexTable;
using store::Op;
using store::PlanNode;
using store::PlanValue;

IndexTable TableOf(SearchParamType type) {
  switch (type) {
    case SearchParamType::kString: return IndexTable::kString;
    case SearchParamType::kDate: return IndexTable::kDate;
    case SearchParamType::kNumber: return IndexTable::kNumber;
    case SearchParamType::kQuantity: return IndexTable::kQuantity;
    case SearchParamType::kReference: return IndexTable::kReference;
    case SearchParamType::kUri: return IndexTable::kUri;
    default: return IndexTable::kToken;
  }
}

Cond C(Column column, Op op, PlanValue value) { return Cond{column, op, std::move(value), {}}; }

// Alternatives (ORed) of ANDed conditions: an indexed range [lo_col, hi_col]
// satisfying `prefix` against [slo, shi] (RangeMatches in SQL).
template <typename T>
std::vector<std::vector<Cond>> RangeConds(Prefix prefix, T slo, T shi, Column lo, Column hi) {
  switch (prefix) {
    case Prefix::kEq: return {{C(lo, Op::kGe, slo), C(hi, Op::kLe, shi)}};
    case Prefix::kNe: return {{C(lo, Op::kLt, slo)}, {C(hi, Op::kGt, shi)}};
    case Prefix::kGt: return {{C(hi, Op::kGt, shi)}};
    case Prefix::kLt: return {{C(lo, Op::kLt, slo)}};
    case Prefix::kGe: return {{C(hi, Op::kGe, slo)}};
    case Prefix::kLe: return {{C(lo, Op::kLe, shi)}};
    case Prefix::kSa: return {{C(lo, Op::kGt, shi)}};
    case Prefix::kEb: return {{C(hi, Op::kLt, slo)}};
    case Prefix::kAp: return {{C(lo, Op::kLe, shi), C(hi, Op::kGe, slo)}};
  }
  return {};
}

PlanNode RangeRows(IndexTable table, const std::string& param, std::vector<Cond> fixed,
                   std::vector<std::vector<Cond>> alternatives) {
  std::vector<PlanNode> any;
  for (auto& alt : alternatives) {
    std::vector<Cond> conds = fixed;
    for (Cond& c : alt) conds.push_back(std::move(c));
    any.push_back(PlanNode::Rows(table, param, std::move(conds)));
  }
  return PlanNode::Or(std::move(any));
}

std::vector<Cond> TokenConds(const SearchValue& v) {
  std::vector<Cond> conds;
  if (!v.code.empty()) conds.push_back(C(Column::kCode, Op::kEq, v.code));
  if (v.system) conds.push_back(C(Column::kSystem, Op::kEq, *v.system));
  return conds;
}

// One value of a parameter of type `type` whose rows are named `param`.
PlanNode ValueNode(SearchParamType type, Modifier modifier, const std::string& param, const SearchValue& v) {
  switch (type) {
    case SearchParamType::kString:
      if (modifier == Modifier::kExact) {
        // The normalised form is a function of the exact text, so its index
        // (param, normalized) finds the candidates; no index on exact needed.
        return PlanNode::Rows(
            IndexTable::kString, param,
            {C(Column::kNormalized, Op::kEq, NormalizeString(v.text)), C(Column::kExact, Op::kEq, v.text)});
      }
      return PlanNode::Rows(IndexTable::kString, param,
                            {C(Column::kNormalized, modifier == Modifier::kContains ? Op::kContains : Op::kPrefix,
                               NormalizeString(v.text))});
    case SearchParamType::kToken:
      if (modifier == Modifier::kText) {
        return PlanNode::Rows(IndexTable::kString, param + ":text",
                              {C(Column::kNormalized, Op::kPrefix, NormalizeString(v.text))});
      }
      if (modifier == Modifier::kOfType) return PlanNode::Rows(IndexTable::kToken, param + ":of-type", TokenConds(v));
      return PlanNode::Rows(IndexTable::kToken, param, TokenConds(v));
    case SearchParamType::kDate:
      return RangeRows(IndexTable::kDate, param, {},
                       RangeConds<std::int64_t>(v.prefix, v.date_lo, v.date_hi, Column::kLo, Column::kHi));
    case SearchParamType::kNumber:
      return RangeRows(IndexTable::kNumber, param, {},
                       RangeConds<double>(v.prefix, v.lo, v.hi, Column::kLo, Column::kHi));
    case SearchParamType::kQuantity: {
      if (!v.canonical_unit.empty()) {
        return RangeRows(
            IndexTable::kQuantity, param, {C(Column::kCanonicalUnit, Op::kEq, v.canonical_unit)},
            RangeConds<double>(v.prefix, *v.canonical_lo, *v.canonical_hi, Column::kCanonicalLo, Column::kCanonicalHi));
      }
      std::vector<Cond> fixed;
      if (!v.unit_code.empty()) fixed.push_back(C(Column::kCode, Op::kEq, v.unit_code));
      if (!v.unit_system.empty()) fixed.push_back(C(Column::kSystem, Op::kEq, v.unit_system));
      return RangeRows(IndexTable::kQuantity, param, std::move(fixed),
                       RangeConds<double>(v.prefix, v.lo, v.hi, Column::kLo, Column::kHi));
    }
    case SearchParamType::kReference: {
      if (modifier == Modifier::kIdentifier)
        return PlanNode::Rows(IndexTable::kToken, param + ":identifier", TokenConds(v));
      if (!v.ref_url.empty())
        return PlanNode::Rows(IndexTable::kReference, param, {C(Column::kUrl, Op::kEq, v.ref_url)});
      std::vector<Cond> conds{C(Column::kTargetId, Op::kEq, v.ref_id)};
      if (!v.ref_type.empty()) conds.push_back(C(Column::kTargetType, Op::kEq, v.ref_type));
      return PlanNode::Rows(IndexTable::kReference, param, std::move(conds));
    }
    case SearchParamType::kUri: {
      if (modifier == Modifier::kBelow)
        return PlanNode::Rows(IndexTable::kUri, param, {C(Column::kUri, Op::kPrefix, v.text)});
      if (modifier == Modifier::kAbove) {
        Cond in{Column::kUri, Op::kIn, {}, {}};
        for (size_t i = 1; i <= v.text.size(); ++i) {
          if (i == v.text.size() || v.text[i] == '/') in.values.emplace_back(v.text.substr(0, i));
        }
        return PlanNode::Rows(IndexTable::kUri, param, {std::move(in)});
      }
      return PlanNode::Rows(IndexTable::kUri, param, {C(Column::kUri, Op::kEq, v.text)});
    }
    case SearchParamType::kComposite:
    case SearchParamType::kSpecial: break;
  }
  return PlanNode::False();
}

using Storage = IndexedParam::Storage;

// Adds "target type is `type`" to the reference rows of `n`.
PlanNode RestrictTarget(PlanNode n, const std::string& type) {
  if (n.kind == PlanNode::Kind::kRows && n.table == IndexTable::kReference) {
    n.conds.push_back(C(Column::kTargetType, Op::kEq, type));
  }
  for (PlanNode& child : n.children) child = RestrictTarget(std::move(child), type);
  return n;
}

// The rows standing for parameter `p` (code `code`), given how to look in the
// rows of one stored parameter (extract.h: IndexedParam::storage).
PlanNode OverRows(const IndexedParam* p, const std::string& code,
                  const std::function<PlanNode(const std::string& param)>& make) {
  if (p == nullptr) return make(code);
  switch (p->storage) {
    case Storage::kOwn: break;
    case Storage::kSame: return make(p->sources[0]);
    case Storage::kUnion: {
      std::vector<PlanNode> any;
      for (const std::string& s : p->sources) any.push_back(make(s));
      return PlanNode::Or(std::move(any));
    }
    case Storage::kRestricted: return PlanNode::Or({make(code), RestrictTarget(make(p->sources[0]), p->restrict_type)});
  }
  return make(code);
}

// One reference value of a restricted parameter: a local Type/id is among the
// source's rows with the target type; URLs and identifiers are its own rows.
PlanNode RestrictedValue(const IndexedParam& p, Modifier m, const std::string& code, const SearchValue& v) {
  if (m == Modifier::kIdentifier || !v.ref_url.empty()) return ValueNode(SearchParamType::kReference, m, code, v);
  if (!v.ref_type.empty() && v.ref_type != p.restrict_type) return PlanNode::False();
  return RestrictTarget(ValueNode(SearchParamType::kReference, m, p.sources[0], v), p.restrict_type);
}

}  // namespace

PlanNode CriterionPlan(const Criterion& c) {
  if (c.special == Criterion::Special::kHas) {
    const IndexedParam* hp = Extractor::Default().Find(c.has_type, c.has_param);
    PlanNode inner = CriterionPlan(c.chain[0]);
    if (hp != nullptr && hp->storage == Storage::kRestricted) {
      // Only references with the target type: the resources searched are of that type.
      PlanNode n = PlanNode::Has(c.has_type, hp->sources[0], std::move(inner));
      n.conds.push_back(C(Column::kTargetType, Op::kEq, hp->restrict_type));
      return n;
    }
    return OverRows(hp, c.has_param, [&](const std::string& param) { return PlanNode::Has(c.has_type, param, inner); });
  }
  if (c.chained()) {
    PlanNode inner = CriterionPlan(c.chain[0]);
    if (c.param != nullptr && c.param->storage == Storage::kRestricted) {
      // Chains follow local references only: the source's rows to targets of the type.
      std::vector<std::string> types;
      for (const std::string& t : c.target_types) {
        if (t == c.param->restrict_type) types.push_back(t);
      }
      if (types.empty()) return PlanNode::False();
      return PlanNode::Chain(c.param->sources[0], std::move(types), std::move(inner));
    }
    return OverRows(c.param, c.code,
                    [&](const std::string& param) { return PlanNode::Chain(param, c.target_types, inner); });
  }
  std::vector<PlanNode> any;
  for (const SearchValue& v : c.values) {
    if (c.modifier == Modifier::kMissing) {
      PlanNode some = OverRows(c.param, c.code,
                               [&](const std::string& param) { return PlanNode::Rows(TableOf(c.type), param, {}); });
      if (c.special == Criterion::Special::kId || c.special == Criterion::Special::kLastUpdated)
        some = PlanNode::True();
      any.push_back(v.missing ? PlanNode::Not(std::move(some)) : std::move(some));
      continue;
    }
    switch (c.special) {
      case Criterion::Special::kId: any.push_back(PlanNode::Id({v.text})); continue;
      case Criterion::Special::kLastUpdated: {
        // The instant is the range [t, t].
        std::vector<PlanNode> alts;
        for (auto& alt : RangeConds<std::int64_t>(v.prefix, v.date_lo, v.date_hi, Column::kLo, Column::kHi)) {
          alts.push_back(PlanNode::LastUpdated(std::move(alt)));
        }
        any.push_back(PlanNode::Or(std::move(alts)));
        continue;
      }
      default: break;
    }
    if (c.type == SearchParamType::kComposite) {
      any.push_back(OverRows(c.param, c.code, [&](const std::string& code) {
        std::string param = code + "$" + v.composite_key;
        std::vector<PlanNode> all;
        for (size_t i = 1; i < v.components.size(); ++i) {
          all.push_back(ValueNode(c.param->component_types[i], Modifier::kNone, param, v.components[i]));
        }
        return PlanNode::And(std::move(all));
      }));
      continue;
    }
    if (c.modifier == Modifier::kIn || c.modifier == Modifier::kNotIn) {
      // One index range per system: code IN (the system's codes).
      std::map<std::string, Cond> by_system;
      for (const auto& [system, code] : v.codes) {
        auto [it, fresh] = by_system.try_emplace(system, Cond{Column::kCode, Op::kIn, {}, {}});
        it->second.values.emplace_back(code);
      }
      any.push_back(OverRows(c.param, c.code, [&](const std::string& param) {
        std::vector<PlanNode> systems;
        for (const auto& [system, in] : by_system) {
          systems.push_back(PlanNode::Rows(IndexTable::kToken, param, {in, C(Column::kSystem, Op::kEq, system)}));
        }
        return PlanNode::Or(std::move(systems));
      }));
      continue;
    }
    Modifier m = c.modifier == Modifier::kNot ? Modifier::kNone : c.modifier;
    if (c.param != nullptr && c.param->storage == Storage::kRestricted) {
      any.push_back(RestrictedValue(*c.param, m, c.code, v));
      continue;
    }
    any.push_back(OverRows(c.param, c.code, [&](const std::string& param) { return ValueNode(c.type, m, param, v); }));
  }
  // Ids merge into one IN list.
  if (c.special == Criterion::Special::kId && c.modifier != Modifier::kMissing) {
    std::vector<std::string> ids;
    for (const SearchValue& v : c.values) ids.push_back(v.text);
    return PlanNode::Id(std::move(ids));
  }
  PlanNode node = PlanNode::Or(std::move(any));
  if (c.modifier == Modifier::kNot || c.modifier == Modifier::kNotIn) return PlanNode::Not(std::move(node));
  return node;
}

namespace {

bool NeedsValueSets(const std::vector<Criterion>& criteria) {
  for (const Criterion& c : criteria) {
    if (c.modifier == Modifier::kIn || c.modifier == Modifier::kNotIn || NeedsValueSets(c.chain)) return true;
  }
  return false;
}

Status ResolveIn(std::vector<Criterion>& criteria, const ValueSetReader& read) {
  for (Criterion& c : criteria) {
    RETURN_IF_ERROR(ResolveIn(c.chain, read));
    if (c.modifier != Modifier::kIn && c.modifier != Modifier::kNotIn) continue;
    for (SearchValue& v : c.values) {
      store::SearchPlan plan;
      plan.type = "ValueSet";
      plan.limit = 1;
      plan.where = PlanNode::Rows(IndexTable::kUri, "url", {C(Column::kUri, Op::kEq, v.text)});
      ASSIGN_OR_RETURN(store::SearchPage page, read(plan));
      if (page.hits.empty())
        return InvalidArgumentError(c.name + ": no ValueSet with url " + v.text + " on this server");
      ASSIGN_OR_RETURN(json::Document doc, json::Document::Parse(page.hits[0].body));
      ASSIGN_OR_RETURN(v.codes, ValueSetCodes(doc.root()));
    }
  }
  return Status::Ok();
}

}  // namespace

Status ResolveValueSets(SearchQuery& query, const ValueSetReader& read) {
  if (!NeedsValueSets(query.criteria)) return Status::Ok();
  return ResolveIn(query.criteria, read);
}

Result<store::SearchPlan> BuildPlan(const SearchQuery& query, const SearchOptions& options) {
  store::SearchPlan plan;
  plan.type = query.type;
  plan.types = query.types;
  plan.compartment = query.compartment;
  std::vector<PlanNode> all;
  for (const Criterion& c : query.criteria) all.push_back(CriterionPlan(c));
  plan.where = PlanNode::And(std::move(all));
  for (const SortSpec& s : query.sort) {
    store::SortKey k;
    k.descending = s.descending;
    if (s.code == "_id") {
      k.source = store::SortKey::Source::kId;
    } else if (s.code == "_lastUpdated") {
      k.source = store::SortKey::Source::kLastUpdated;
    } else {
      k.param = s.code;
      switch (s.param->storage) {
        case Storage::kOwn: break;
        case Storage::kSame: k.param = s.param->sources[0]; break;
        case Storage::kUnion:
          k.param = s.param->sources[0];
          k.also.assign(s.param->sources.begin() + 1, s.param->sources.end());
          break;
        case Storage::kRestricted:
          // The source's rows of the target type, and its own (URLs).
          k.param = s.param->sources[0];
          k.target_type = s.param->restrict_type;
          k.also = {s.code};
          break;
      }
      k.table = TableOf(s.param->type);
      switch (s.param->type) {
        case SearchParamType::kDate:
        case SearchParamType::kNumber:
        case SearchParamType::kQuantity: k.column = s.descending ? Column::kHi : Column::kLo; break;
        case SearchParamType::kString: k.column = Column::kNormalized; break;
        case SearchParamType::kReference: k.column = Column::kTargetId; break;
        case SearchParamType::kUri: k.column = Column::kUri; break;
        default: k.column = Column::kCode; break;
      }
    }
    plan.sort.push_back(std::move(k));
  }
  bool count_only = query.summary == Summary::kCount;
  plan.limit = count_only ? 0 : query.count.value_or(options.default_count);
  plan.count = count_only || query.total == Total::kAccurate || query.total == Total::kEstimate;
  if (!count_only && query.total == Total::kEstimate) plan.count_limit = options.estimate_limit;
  return plan;
}

Result<std::vector<store::SearchHit>> FindConditional(
    store::Transaction& tx, const SearchQuery& query, int limit,
    const std::function<Result<bool>(const store::SearchHit&)>& keep) {
  if (!query.unknown.empty()) {
    return InvalidArgumentError("conditional criteria: parameter '" + query.unknown[0].first +
                                "' is not supported: " + query.unknown[0].second);
  }
  if (query.criteria.empty()) return InvalidArgumentError("conditional criteria are empty");
  SearchQuery criteria_only;
  criteria_only.type = query.type;
  criteria_only.types = query.types;
  criteria_only.compartment = query.compartment;
  criteria_only.criteria = query.criteria;
  RETURN_IF_ERROR(ResolveValueSets(criteria_only, [&tx](const store::SearchPlan& p) { return tx.Search(p); }));
  ASSIGN_OR_RETURN(store::SearchPlan plan, BuildPlan(criteria_only));
  plan.with_bodies = false;
  plan.count = false;
  // Without a filter one page of `limit` answers; with one, pages of a
  // bounded size until enough are kept.
  plan.limit = keep ? std::max(limit, 100) : limit;
  std::vector<store::SearchHit> out;
  for (;;) {
    ASSIGN_OR_RETURN(store::SearchPage page, tx.Search(plan));
    for (store::SearchHit& h : page.hits) {
      if (static_cast<int>(out.size()) >= limit) return out;
      if (keep) {
        ASSIGN_OR_RETURN(bool k, keep(h));
        if (!k) continue;
      }
      out.push_back(std::move(h));
    }
    if (!page.next || static_cast<int>(out.size()) >= limit) return out;
    plan.after = std::move(page.next);
  }
}

Result<int> LoadSearchParameters(store::Store& store, std::vector<std::string>* failures) {
  ASSIGN_OR_RETURN(SearchQuery q, ParseSearchQuery("SearchParameter", "status=active&_count=100"));
  int registered = 0;
  for (int pages = 0; pages < 100000; ++pages) {
    ASSIGN_OR_RETURN(SearchResult r, ExecuteSearch(store, q));
    for (const store::SearchHit& h : r.matches) {
      auto doc = json::Document::Parse(h.body);
      Status st = doc.ok() ? Extractor::Default().Register(h.id, doc->root()) : doc.status();
      if (st.ok()) {
        ++registered;
      } else if (failures != nullptr) {
        failures->push_back("SearchParameter/" + h.id + ": " + st.message());
      }
    }
    if (!r.next_cursor) break;
    q.cursor = r.next_cursor;
  }
  return registered;
}

Result<SearchResult> ExecuteSearch(store::Store& store, const SearchQuery& query, const SearchOptions& options) {
  std::optional<SearchQuery> resolved;
  if (NeedsValueSets(query.criteria)) {
    resolved = query;
    RETURN_IF_ERROR(ResolveValueSets(*resolved, [&store](const store::SearchPlan& p) { return store.Search(p); }));
  }
  ASSIGN_OR_RETURN(store::SearchPlan plan, BuildPlan(resolved ? *resolved : query, options));
  if (query.cursor) {
    ASSIGN_OR_RETURN(store::SearchCursor after, store::SearchCursor::Parse(*query.cursor));
    plan.after = std::move(after);
  }
  ASSIGN_OR_RETURN(store::SearchPage page, store.Search(plan));
  SearchResult result;
  result.matches = std::move(page.hits);
  if (page.next) result.next_cursor = page.next->ToString();
  if (page.previous) result.previous_cursor = page.previous->ToString();
  result.total = page.total;
  if (plan.count_limit > 0 && result.total && *result.total > plan.count_limit) result.total.reset();
  if ((query.includes.empty() && query.revincludes.empty()) || result.matches.empty()) return result;

  std::set<store::Rid> seen;
  std::vector<store::Rid> frontier;
  for (const store::SearchHit& h : result.matches) {
    seen.insert(h.rid);
    frontier.push_back(h.rid);
  }
  auto specs_of = [&](bool iterate_only) {
    std::vector<store::IncludeSpec> specs;
    for (const auto* list : {&query.includes, &query.revincludes}) {
      for (const IncludeParam& inc : *list) {
        if (iterate_only && !inc.iterate) continue;
        const IndexedParam* p = inc.param.empty() ? nullptr : Extractor::Default().Find(inc.source_type, inc.param);
        if (p == nullptr || p->storage == Storage::kOwn) {
          specs.push_back({inc.reverse, inc.source_type, inc.param, inc.target_type});
        } else if (p->storage == Storage::kRestricted) {
          // Local targets only, which are the source's rows of the type.
          if (inc.target_type.empty() || inc.target_type == p->restrict_type)
            specs.push_back({inc.reverse, inc.source_type, p->sources[0], p->restrict_type});
        } else {
          for (const std::string& source : p->sources)
            specs.push_back({inc.reverse, inc.source_type, source, inc.target_type});
        }
      }
    }
    return specs;
  };
  for (int round = 0; round <= options.max_iterate && !frontier.empty(); ++round) {
    store::IncludeQuery iq;
    iq.rids = frontier;
    iq.specs = specs_of(round > 0);
    if (iq.specs.empty()) break;
    iq.limit = options.max_include;
    iq.compartment = options.include_compartment;
    ASSIGN_OR_RETURN(std::vector<store::SearchHit> hits, store.Include(iq));
    frontier.clear();
    for (store::SearchHit& h : hits) {
      if (options.include_type_allowed && !options.include_type_allowed(h.type)) continue;
      if (!seen.insert(h.rid).second) continue;
      frontier.push_back(h.rid);
      result.included.push_back(std::move(h));
    }
    if (static_cast<int>(result.included.size()) > options.max_include) {
      return ResourceExhaustedError("more than " + std::to_string(options.max_include) + " included resources");
    }
  }
  return result;
}

}  // namespace bevan::search
