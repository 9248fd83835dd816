// The search oracle: a SearchQuery evaluated by brute force over resources
// held in memory, with the FHIRPath engine and nothing of the store (no index
// rows, no plan, no SQL). The correctness suite compares the store's answers
// with the oracle's. The oracle reads the same SearchQuery (query.h) and
// follows the value semantics written there; the shared pieces are the value
// helpers of values.h (normalisation, precision ranges, UCUM) and the
// compartment rule of the extractor.
//
// Not thread-safe while adding; Matches/Includes may run concurrently after.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "json/json.h"
#include "search/query.h"

namespace bevan::search {

class Oracle {
 public:
  Oracle();
  ~Oracle();
  Oracle(const Oracle&) = delete;
  Oracle& operator=(const Oracle&) = delete;

  // Adds a resource (its JSON text, with meta.lastUpdated as the store has it).
  // The order of Add calls is the tie-break order of sorted results, which
  // is the store's rid order when the store is loaded in the same order.
  Status Add(std::string_view json_text);

  // Ids of every match of `query` (ignoring _count and _cursor), in result
  // order: by the _sort keys (lowest value ascending, highest descending,
  // resources without a value last), then in Add order. A system-level
  // query (empty type, query.types) gives "Type/id".
  Result<std::vector<std::string>> Matches(const SearchQuery& query) const;

  // "Type/id" of the resources _include/_revinclude (with :iterate) add to
  // the matches `ids` of `query`, sorted, matches themselves excluded.
  Result<std::vector<std::string>> Includes(const SearchQuery& query, const std::vector<std::string>& ids) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bevan::search
