// Search execution: a parsed SearchQuery (query.h) becomes one store
// SearchPlan (one SQL statement per page, plus one for a count), and
// _include / _revinclude become one more statement over the page's rids (and
// one per :iterate round).
//
// For the REST layer:
//
//   ASSIGN_OR_RETURN(search::SearchQuery q, search::ParseSearchQuery("Observation", query_string, {.base_url = base}));
//   // report q.unknown (or 400 under Prefer: handling=strict)
//   ASSIGN_OR_RETURN(search::SearchResult r, search::ExecuteSearch(store, q));
//   // r.matches: entries with search.mode = match, in order;
//   // r.included: search.mode = include; r.total when asked for;
//   // r.next_cursor / r.previous_cursor: add `_cursor=<it>` to the request's
//   // own parameters (without any previous _cursor) for the `next` /
//   // `previous` links; without a _cursor they are the `first` link.
//
// _summary and _elements are parsed but not applied here: they shape the
// bodies, which is the REST layer's (summary=count gives no entries and a
// total). Paging is keyset paging on the sort keys plus the store's rid, so a
// `next` link stays correct while resources are created, changed or deleted:
// nothing before the cursor reappears and nothing after it is skipped. A
// `previous` cursor (a `before` SearchCursor) reads the same order backwards
// from the page's first entry, so it is just as stable.
//
// Totals: _total=accurate (and _summary=count) counts every match;
// _total=estimate counts at most SearchOptions::estimate_limit matches (an
// exact total up to that many, none above: "cheap" is the point); _total=none
// and no _total give none.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "search/query.h"
#include "store/store.h"

namespace bevan::search {

struct SearchOptions {
  int default_count = 50;  // page size when _count is absent
  int max_include = 1000;  // included resources per page (kResourceExhausted beyond)
  int max_iterate = 4;     // rounds of _include:iterate / _revinclude:iterate
  // Access control for included resources: only resources of this Patient
  // compartment, and only types this predicate allows (unset: all). Resources
  // left out are not iterated from either.
  std::optional<std::string> include_compartment;
  std::function<bool(std::string_view type)> include_type_allowed;
  // _total=estimate: the total is given only when at most this many match.
  std::int64_t estimate_limit = 1000;
};

struct SearchResult {
  std::vector<store::SearchHit> matches;
  std::vector<store::SearchHit> included;      // not among matches, no duplicates
  std::optional<std::string> next_cursor;      // set when another page follows
  std::optional<std::string> previous_cursor;  // set when the page was read from a cursor and may have a predecessor
  std::optional<std::int64_t> total;           // _total=accurate, _summary=count, or _total=estimate (see above)
};

// The store plan of `query` (no cursor, limit from _count). Exposed for tests
// and EXPLAIN; ExecuteSearch calls it.
Result<store::SearchPlan> BuildPlan(const SearchQuery& query, const SearchOptions& options = {});

// The predicate of one criterion on resources of its type.
store::PlanNode CriterionPlan(const Criterion& criterion);

// Conditional operations (create with If-None-Exist, conditional update,
// delete and patch, conditional references in transactions): the current
// resources matching `query`'s criteria (its result parameters ignored), read
// inside the write transaction `tx` (so racing conditional writes with the
// same criteria serialise, see store::Transaction::Search), in rid order,
// without bodies. Only matches `keep` accepts (unset: all) count; stops after
// `limit` of them (ask for 2 to tell none, one and several).
// kInvalidArgument when the query has no criteria or ignored parameters
// (conditional criteria must be understood entirely).
Result<std::vector<store::SearchHit>> FindConditional(
    store::Transaction& tx, const SearchQuery& query, int limit,
    const std::function<Result<bool>(const store::SearchHit&)>& keep = {});

// Token :in / :not-in: fills each such value's `codes` from the ValueSet
// stored with its url (read through `read`, a search of ValueSet by url;
// kInvalidArgument when there is none, kResourceExhausted above 1,000
// codes). ExecuteSearch and FindConditional call it; exposed for tests.
using ValueSetReader = std::function<Result<store::SearchPage>(const store::SearchPlan&)>;
Status ResolveValueSets(SearchQuery& query, const ValueSetReader& read);

// Registers every active SearchParameter stored in `store` on
// Extractor::Default() (at startup: `bevan serve`), reading them in pages of
// 100. Returns how many were registered; those that no longer compile are
// skipped and described in `failures` ("SearchParameter/id: why").
Result<int> LoadSearchParameters(store::Store& store, std::vector<std::string>* failures = nullptr);

// Runs `query` on `store`: one page of matches from query.cursor (kInvalidArgument
// if the cursor is malformed or from a search with another _sort), then its includes.
Result<SearchResult> ExecuteSearch(store::Store& store, const SearchQuery& query, const SearchOptions& options = {});

}  // namespace bevan::search
