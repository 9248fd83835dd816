// Rebuilding the index rows of stored resources (`bevan reindex`): after a
// SearchParameter was added or changed, resources written before it get its
// rows. Versions, bodies and history are untouched; each resource's rows are
// replaced only if its current version is still the one read (a write that
// overtook the reindex has indexed that version itself).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace bevan::search {

struct ReindexOptions {
  std::vector<std::string> types;  // empty: every resource type
  int chunk = 1000;                // rows per Store::Scan statement
  int batch = 5000;                // resources per write transaction
};

struct ReindexStats {
  std::int64_t resources = 0;  // index rows replaced
  std::int64_t skipped = 0;    // changed or deleted while the reindex ran
  std::int64_t failed = 0;     // bodies that no longer parse (left as they were)
  std::int64_t types = 0;      // types with at least one resource
};

// Reads every current resource of the types (Store::Scan, `chunk` rows per
// statement), extracts its rows with Extractor::Default() (register custom
// parameters first: LoadSearchParameters) and rewrites them in transactions
// of `batch` resources. `progress`, when set, is called after each batch with
// the type and the running totals. Stops at the first store error.
Result<ReindexStats> Reindex(store::Store& store, const ReindexOptions& options,
                             const std::function<void(std::string_view type, const ReindexStats&)>& progress = {});

}  // namespace bevan::search
