// Printing a SearchPlan / IncludeQuery as one SQL statement per dialect. The
// text holds only identifiers and placeholders; every value (including the
// store's own sentinels) is a bound parameter.
#pragma once

#include <functional>
#include <vector>

#include "store/search_plan.h"

namespace bevan::store::sql {

enum class Dialect { kSqlite, kPostgres };

// Checks a plan before printing it (limits, node shapes, cursor arity).
Status CheckSearchPlan(const SearchPlan& plan);

// The page statement. Result columns: rid, type, id, version, last_updated,
// body (NULL without bodies), then one column per sort key (its value, never
// NULL: missing values are replaced by a sentinel that sorts last). Returns
// at most plan.limit + 1 rows (the extra row tells that a next page exists).
SqlStatement PrintSearch(const SearchPlan& plan, Dialect dialect);

// The statements of one page, run in order until the page is full: usually
// PrintSearch alone; for a plan sorted by one date key without a selective
// predicate, the matches read in the key's index order (no sort of every
// match), then, unless every match must have a value, those without one.
struct PageStatement {
  SqlStatement statement;
  bool keyless = false;  // no key column: the matches without a value (they sort last)
};
std::vector<PageStatement> PrintPage(const SearchPlan& plan, Dialect dialect);

// One row of a page statement: the hit and its sort-key values.
struct PageRow {
  SearchHit hit;
  std::vector<PlanValue> keys;
};
// Runs one statement, reading after the six hit columns one key column of
// each kind in `key_kinds` (SortKeyKind), at most as many rows as the statement's limit.
using RunStatement =
    std::function<Result<std::vector<PageRow>>(const SqlStatement& statement, const std::vector<int>& key_kinds)>;

// A page of `plan` (hits, next cursor; not the count) through `run`.
Result<SearchPage> RunPage(const SearchPlan& plan, Dialect dialect, const RunStatement& run);

// SELECT count(*) of every match (ignoring cursor and limit).
SqlStatement PrintCount(const SearchPlan& plan, Dialect dialect);

// Every statement a search of `plan` may run (its page statements, then its
// count), for the backends' EXPLAIN.
std::vector<SqlStatement> PrintAll(const SearchPlan& plan, Dialect dialect);

// The included resources of an IncludeQuery (the union of its specs), with
// the same first six columns as PrintSearch, at most query.limit + 1 rows.
SqlStatement PrintInclude(const IncludeQuery& query, Dialect dialect);

// What kind of value sort key `key` yields: 0 integer, 1 double, 2 text.
int SortKeyKind(const SortKey& key);

}  // namespace bevan::store::sql
