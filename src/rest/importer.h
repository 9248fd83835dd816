// Bulk import into a Store: NDJSON files (one resource per line) and Bundle
// files. Resources are parsed, validated and prepared on several threads and
// written in batched store transactions (many batches share a group commit);
// every index the REST layer keeps is filled. Ids are kept, so importing the
// same files twice leaves the same data: a resource whose content is
// unchanged is not written again. Invalid resources are reported (file, line,
// OperationOutcome) while the valid ones load.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace bevan::rest {

struct ImportProgress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  uint64_t resources = 0;  // read so far (loaded, unchanged or rejected)
  double seconds = 0;
  bool indexing = false;  // reading is done; the store is building its search indexes
};

struct ImportOptions {
  size_t batch = 500;  // resources per store transaction
  int threads = 0;     // parse/validate workers; 0: one per core
  // Called from the importing thread about every `progress_every` seconds.
  std::function<void(const ImportProgress&)> progress;
  double progress_every = 0.5;
  size_t max_errors_kept = 1000;  // further rejections are counted, not kept
};

struct ImportError {
  std::string file;
  size_t line = 0;      // 1-based; 0 for a whole file
  std::string outcome;  // OperationOutcome JSON
};

struct TypeCounts {
  uint64_t created = 0;
  uint64_t updated = 0;
  uint64_t unchanged = 0;
};

struct ImportSummary {
  std::map<std::string, TypeCounts> by_type;
  uint64_t loaded = 0;  // created + updated
  uint64_t unchanged = 0;
  uint64_t rejected = 0;
  std::vector<ImportError> errors;
  uint64_t bytes = 0;
  double seconds = 0;        // all of it, index building included
  bool bulk = false;         // the store was empty: search indexes were built at the end
  double index_seconds = 0;  // of which building them
};

// Imports `paths` (files, or directories whose *.ndjson and *.json files are
// read in name order). Fails only when the store fails or a path cannot be
// read; rejected resources are in the summary.
Result<ImportSummary> Import(store::Store& store, const std::vector<std::string>& paths, const ImportOptions& options);

}  // namespace bevan::rest
