// The FHIR search query language (R4 search page): a GET query string or a
// POST _search form body parsed, for one resource type, into a typed
// SearchQuery. Parsing checks every parameter against the registry
// (Extractor::Default()) and every value against its parameter's type, so
// that building the store plan (search.h) and the oracle (oracle.h) never see
// malformed input.
//
// Errors: a malformed value or modifier of a known parameter is
// kInvalidArgument naming the parameter ("date: 'ge2020-13' is not a valid
// date"); unknown parameters and unsupported modifiers (`:in`, `:not-in`,
// `:above`/`:below` on tokens, _text, _content, _filter, ...) are not errors:
// they are collected in SearchQuery::unknown for the REST layer to report (or
// to answer 400 under Prefer: handling=strict).
//
// Value semantics (documented here once; the plan builder and the oracle both
// follow them):
// - string: starts-with on NormalizeString (case and Latin accents ignored);
//   :exact equality on the text as written; :contains substring, normalised.
// - token: `code` any system, `system|code`, `|code` no system, `system|` any
//   code of the system; :not = no row matches; :text = starts-with on the
//   CodeableConcept.text / Coding.display material; :of-type
//   `system|code|value` on an Identifier's type and value.
// - reference: `Type/id`, `id` (any target type), absolute URL (this
//   server's base stripped when given in ParseOptions), canonical URL
//   (`|version` ignored); :Type restricts the target type; :identifier
//   matches Reference.identifier as a token.
// - date, number, quantity: the search value's range by its precision
//   [slo, shi] against each indexed range [lo, hi]: eq lo >= slo and hi <= shi;
//   ne the negation of eq (on some value); gt hi > shi; lt lo < slo; ge hi >= slo;
//   le lo <= shi; sa lo > shi; eb hi < slo; ap overlaps [slo, shi] widened by
//   10% of the value (numbers, quantities) or of the range's width plus one
//   day (dates). _lastUpdated likewise with the instant as [t, t].
// - quantity `value|system|code`: with the UCUM system and a unit the UCUM
//   table knows, compared in canonical units (1 g matches 1000 mg); else
//   code (or unit) and system, when given, must equal the indexed ones.
// - token :in / :not-in `url`: some / no indexed (system, code) is one of the
//   codes of the ValueSet with that url stored on the server (ValueSetCodes in
//   values.h; `|version` ignored; an unknown value set is an error).
// - uri: equality; :below prefix; :above the indexed uri is a prefix of the
//   value at a '/' boundary (or equal).
// - composite `a$b`: see extract.h (the first component selects the row
//   group, later components are matched by their own types).
// - :missing=true: no value indexed for the parameter; false: some value.
// - Values of one parameter separated by ',' are ORed; repeated parameters
//   are ANDed. `\,` `\|` `\$` `\\` escape those characters in values.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "fhir/model.h"
#include "search/extract.h"
#include "store/search_plan.h"

namespace bevan::search {

enum class Prefix : std::uint8_t { kEq, kNe, kGt, kLt, kGe, kLe, kSa, kEb, kAp };

enum class Modifier : std::uint8_t {
  kNone,
  kExact,
  kContains,
  kText,
  kNot,
  kOfType,
  kMissing,
  kType,  // reference :[type] (the type is in Criterion::modifier_type)
  kIdentifier,
  kAbove,
  kBelow,
  kIn,     // token: a code of the value set (SearchValue::text, a canonical URL)
  kNotIn,  // token: no code of the value set
};

// One value of a parameter (one item of a comma-separated list), unescaped
// and typed by the parameter's type.
struct SearchValue {
  std::string text;  // the whole value, unescaped (string, uri, _id)
  Prefix prefix = Prefix::kEq;
  // token: system nullopt = any system; "" = explicitly none.
  std::optional<std::string> system;
  std::string code;
  // number, quantity: the range [lo, hi] this value stands for (ap: widened).
  double number = 0, lo = 0, hi = 0;
  // quantity: unit system and code ("" = not given); canonical when UCUM.
  std::string unit_system, unit_code;
  std::optional<double> canonical_lo, canonical_hi;
  std::string canonical_unit;
  // date, _lastUpdated: the range (ap: widened).
  store::Micros date_lo = 0, date_hi = 0;
  // reference
  std::string ref_type, ref_id, ref_url;
  // :missing
  bool missing = false;
  // composite: one value per component; `composite_key` the row group (extract.h).
  std::vector<SearchValue> components;
  std::string composite_key;
  // token :in / :not-in: the value set's (system, code) pairs, filled by
  // ResolveValueSets (search.h) before a plan is built.
  std::vector<std::pair<std::string, std::string>> codes;
};

// One search parameter of the query (one `name=value` pair): its values are
// ORed. A chained or reverse-chained criterion has no values of its own: its
// `chain` holds the criterion on the other resources.
struct Criterion {
  enum class Special : std::uint8_t { kNone, kId, kLastUpdated, kHas };
  std::string name;  // as written, e.g. "subject:Patient.name"
  std::string code;  // the parameter code ("subject", "_id", "_has")
  Special special = Special::kNone;
  const IndexedParam* param = nullptr;  // null for special parameters
  fhir::SearchParamType type = fhir::SearchParamType::kToken;
  Modifier modifier = Modifier::kNone;
  std::string modifier_type;  // :[type]
  std::vector<SearchValue> values;
  // Chaining (`param.next`): resources of `target_types` that the reference
  // parameter points at must satisfy chain[0]. _has (`_has:T:ref:next`):
  // some resource of has_type whose reference parameter `has_param` points
  // here must satisfy chain[0].
  std::vector<std::string> target_types;
  std::string has_type;
  std::string has_param;
  std::vector<Criterion> chain;  // zero or one

  bool chained() const { return !chain.empty(); }
};

struct SortSpec {
  std::string code;                     // "date", "_id", "_lastUpdated"
  const IndexedParam* param = nullptr;  // null for _id and _lastUpdated
  bool descending = false;
};

// _include / _revinclude: `source_type:param[:target_type]` or `*`.
struct IncludeParam {
  bool reverse = false;
  bool iterate = false;
  std::string source_type;
  std::string param;        // empty for `*`
  std::string target_type;  // empty = any
};

enum class Total : std::uint8_t { kNone, kEstimate, kAccurate };
enum class Summary : std::uint8_t { kFalse, kTrue, kText, kData, kCount };

struct SearchQuery {
  std::string type;                        // empty for a system-level search
  std::vector<std::string> types;          // system-level search: the types searched
  std::optional<std::string> compartment;  // Patient/{id}/Type searches (set by REST)
  std::vector<Criterion> criteria;         // ANDed
  std::vector<SortSpec> sort;
  std::optional<int> count;  // _count
  std::optional<Total> total;
  std::optional<Summary> summary;
  std::vector<std::string> elements;
  std::vector<IncludeParam> includes;
  std::vector<IncludeParam> revincludes;
  std::optional<std::string> cursor;  // _cursor: the `next` token of a previous page
  // Parameters ignored: (name as written, why).
  std::vector<std::pair<std::string, std::string>> unknown;
};

struct ParseOptions {
  // This server's base URL ("http://localhost:8080/fhir"): absolute references
  // under it are searched as relative ones.
  std::string_view base_url;
  int max_count = 1000;     // _count above is an error
  int max_chain_depth = 4;  // chained and _has links in one parameter
  int max_values = 100;     // comma-separated values of one parameter
};

// Parses `query` ("a=1&b=2", percent-encoded, '+' as space as in form bodies)
// for resource type `type`. kInvalidArgument for an unknown type or a
// malformed known parameter; see the header comment.
Result<SearchQuery> ParseSearchQuery(std::string_view type, std::string_view query, const ParseOptions& options = {});

// The same from decoded (name, value) pairs in request order.
Result<SearchQuery> ParseSearchParams(std::string_view type,
                                      std::span<const std::pair<std::string, std::string>> params,
                                      const ParseOptions& options = {});

// The parameters every resource type has, the only ones a system-level search takes.
bool IsCommonParameter(std::string_view code);

// A system-level search (GET [base]?query, POST [base]/_search): `_type`
// (comma-separated resource types; absent = every type) and criteria on the
// common parameters _id, _lastUpdated, _tag, _profile, _security, _source
// (modifiers as for one type; no chains or _has), sorted by _id or
// _lastUpdated only. Other parameters, includes among them, go to `unknown`.
// kInvalidArgument for an unknown type in _type, a malformed value, or a
// _sort on another parameter. The query's `type` is empty, `types` sorted.
Result<SearchQuery> ParseSystemSearch(std::string_view query, const ParseOptions& options = {});

// Decodes a query string or form body into (name, value) pairs.
Result<std::vector<std::pair<std::string, std::string>>> DecodeQueryString(std::string_view query);

// Whether an indexed range [lo, hi] satisfies `prefix` against the search
// range [slo, shi] (the semantics in the header comment; ne is "not eq").
template <typename T>
bool RangeMatches(Prefix prefix, T slo, T shi, T lo, T hi) {
  switch (prefix) {
    case Prefix::kEq: return lo >= slo && hi <= shi;
    case Prefix::kNe: return !(lo >= slo && hi <= shi);
    case Prefix::kGt: return hi > shi;
    case Prefix::kLt: return lo < slo;
    case Prefix::kGe: return hi >= slo;
    case Prefix::kLe: return lo <= shi;
    case Prefix::kSa: return lo > shi;
    case Prefix::kEb: return hi < slo;
    case Prefix::kAp: return lo <= shi && hi >= slo;  // the search range is already widened
  }
  return false;
}

}  // namespace bevan::search
