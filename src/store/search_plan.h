// The store's search plan: a small relational plan over the index tables that
// the search layer builds from a FHIR search and each backend prints in its SQL
// dialect (search_sql.h). The store knows nothing of FHIR search syntax: a plan
// says "resources of type T whose index rows satisfy this predicate tree, in
// this order, after this cursor", and every value in it travels to the database
// as a bound parameter, never as SQL text.
//
// Predicates (PlanNode) are evaluated against one resource row at a time:
// - kRows: the resource has at least one row of `table` with this `param` on
//   which every Cond holds (no conds: any row of the param, i.e. not missing).
// - kAnd / kOr / kNot over children; kTrue / kFalse constants.
// - kId: the resource's id is one of `ids`; kLastUpdated: its last_updated
//   satisfies every Cond (their column is ignored).
// - kChain: the resource has a reference row `param` whose target is a current
//   resource of one of `types` satisfying children[0] (forward chaining).
// - kHas: some current resource of type types[0] with a reference row `param`
//   pointing at this resource satisfies children[0] (reverse chaining, _has).
// Every predicate is answered through an index (a range of an index table, or
// the resource table's primary or (type, id) key); only kNot and kTrue at the
// top of a plan read a whole type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"

namespace bevan::store {

using Micros = std::int64_t;
using Rid = std::int64_t;

// The index tables, in the order of IndexRows' members.
enum class IndexTable : std::uint8_t { kToken, kString, kDate, kNumber, kQuantity, kReference, kUri };

// Columns of the index tables (each valid on the tables that have it).
enum class Column : std::uint8_t {
  kSystem,         // token, quantity
  kCode,           // token, quantity
  kNormalized,     // string
  kExact,          // string
  kLo,             // date (micros), number, quantity
  kHi,             // date (micros), number, quantity
  kCanonicalLo,    // quantity
  kCanonicalHi,    // quantity
  kCanonicalUnit,  // quantity
  kTargetType,     // reference
  kTargetId,       // reference
  kUrl,            // reference
  kUri,            // uri
};

enum class Op : std::uint8_t {
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kPrefix,    // text starts with the value (an index range)
  kContains,  // text contains the value
  kIn,        // equal to one of `values`
};

using PlanValue = std::variant<std::int64_t, double, std::string>;

struct Cond {
  Column column = Column::kCode;
  Op op = Op::kEq;
  PlanValue value;                // all ops but kIn
  std::vector<PlanValue> values;  // kIn
};

struct PlanNode {
  enum class Kind : std::uint8_t { kTrue, kFalse, kAnd, kOr, kNot, kRows, kId, kLastUpdated, kChain, kHas };
  Kind kind = Kind::kTrue;
  std::vector<PlanNode> children;
  IndexTable table = IndexTable::kToken;  // kRows
  std::string param;                      // kRows, kChain, kHas
  std::vector<Cond> conds;                // kRows, kLastUpdated, kHas (see below)
  std::vector<std::string> ids;           // kId
  std::vector<std::string> types;         // kChain: target types; kHas: the source type
  // kHas: conditions on the source's reference rows too (the target type).

  static PlanNode True() { return PlanNode{}; }
  static PlanNode False();
  static PlanNode Rows(IndexTable table, std::string param, std::vector<Cond> conds);
  static PlanNode And(std::vector<PlanNode> children);  // simplifies: drops kTrue, one child is itself
  static PlanNode Or(std::vector<PlanNode> children);   // simplifies: drops kFalse, one child is itself
  static PlanNode Not(PlanNode child);
  static PlanNode Id(std::vector<std::string> ids);
  static PlanNode LastUpdated(std::vector<Cond> conds);
  static PlanNode Chain(std::string param, std::vector<std::string> target_types, PlanNode target);
  static PlanNode Has(std::string source_type, std::string param, PlanNode source);

  // A one-line readable form for tests and logs (values shown, no SQL).
  std::string DebugString() const;
};

// A sort key: the lowest (ascending) or highest (descending) value of an index
// column among the resource's rows of `param`, or the resource's id or
// last_updated. Resources without a value sort last in both directions.
struct SortKey {
  enum class Source : std::uint8_t { kIndex, kId, kLastUpdated };
  Source source = Source::kIndex;
  IndexTable table = IndexTable::kToken;
  std::string param;
  Column column = Column::kCode;  // ascending uses min(column), descending max(column)
  bool descending = false;
  // Restricts `param`'s rows to references of this target type (empty: any).
  std::string target_type;
  // Parameters whose rows (all of them) give values too: a search parameter
  // answered from several parameters' rows (search::IndexedParam::storage).
  std::vector<std::string> also;
};

// A position in a result listing: the sort key values and rid of the last entry
// of a page. Results are ordered by the sort keys and then rid, a total order,
// so a cursor stays correct while data changes: entries that sort before it
// never reappear and later ones are never skipped (unless they change).
//
// A `before` cursor asks for the page that ends just before the position (a
// `previous` link): the plan is run with every direction reversed (sort keys
// and rid), and the page is turned back into result order.
struct SearchCursor {
  std::vector<PlanValue> keys;
  Rid rid = 0;
  bool before = false;

  // A URL-safe token ([A-Za-z0-9._-]); a `before` cursor starts with "b_".
  std::string ToString() const;
  // kInvalidArgument for anything ToString did not produce.
  static Result<SearchCursor> Parse(std::string_view text);
};

struct SearchPlan {
  std::string type;                        // the resource type searched
  std::vector<std::string> types;          // or, when `type` is empty, these types (system-level search)
  std::optional<std::string> compartment;  // only resources of this Patient compartment
  PlanNode where;
  std::vector<SortKey> sort;  // then rid ascending
  int limit = 50;             // 0..10000; 0 returns no entries and no cursor (a count alone)
  std::optional<SearchCursor> after;
  bool with_bodies = true;
  bool count = false;  // also count every match (ignores `after` and `limit`)
  // With `count`: count at most this many matches plus one (0: all). A total
  // above the limit means "more than count_limit" (_total=estimate).
  std::int64_t count_limit = 0;
};

struct SearchHit {
  Rid rid = 0;
  std::string type;
  std::string id;
  std::int64_t version = 0;
  Micros last_updated = 0;
  std::string body;         // empty when bodies were not requested
  std::string compartment;  // the Patient id the resource belongs to, or empty
};

struct SearchPage {
  std::vector<SearchHit> hits;
  std::optional<SearchCursor> next;      // set when more matches follow
  std::optional<SearchCursor> previous;  // set when the page did not start at the first match (a `before` cursor)
  std::optional<std::int64_t> total;     // when SearchPlan::count
};

// One _include (forward: the targets of `param` references of the given
// resources) or _revinclude (reverse: resources of `source_type` whose `param`
// refers to the given resources). Empty `param` = every reference parameter
// (`*`); empty `target_type` = any target type.
struct IncludeSpec {
  bool reverse = false;
  std::string source_type;
  std::string param;
  std::string target_type;
};

struct IncludeQuery {
  std::vector<Rid> rids;  // the resources to include from (a page)
  std::vector<IncludeSpec> specs;
  bool with_bodies = true;
  int limit = 1000;  // at most this many included resources
  // Only resources of this Patient compartment are included (access control:
  // a patient-context token never sees another patient's data through includes).
  std::optional<std::string> compartment;
};

// A printed statement: SQL text with numbered placeholders and the values bound to them.
struct SqlStatement {
  std::string sql;
  std::vector<PlanValue> params;
};

}  // namespace bevan::store
