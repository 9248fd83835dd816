// `bevan reindex`: rebuild the index rows of stored resources (after adding
// or changing SearchParameter resources) without writing new versions.
#pragma once

#include <string>

namespace bevan::cli {

struct ReindexArgs {
  std::string db = "sqlite:./bevan.db";
  std::string type;  // empty: every resource type
  int batch = 5000;  // resources per write transaction
};

// Returns 0 on success (progress on stderr, a summary on stdout), 1 when some
// bodies could not be reindexed, 2 on a usage or store error.
int RunReindex(const ReindexArgs& args);

}  // namespace bevan::cli
