// `bevan explain`: the SQL statements a search becomes, with their bound
// values, the store's query plan for them, and the search's latency, against
// a real store. For finding why a search is slow; it writes nothing.
#pragma once

#include <string>

namespace bevan::cli {

struct ExplainArgs {
  std::string db = "sqlite:./bevan.db";
  std::string search;  // Type?query (a system-level search: ?query)
  int repeat = 20;     // timed runs of the search (0: none)
};

// Returns 0 on success (statements, plans and timings on stdout), 2 on a
// usage, parse or store error.
int RunExplain(const ExplainArgs& args);

}  // namespace bevan::cli
