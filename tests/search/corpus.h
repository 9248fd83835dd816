// The search correctness suite's corpus: the Synthea sample
// ($BEVAN_SHARED/data/synthea-10) plus tests/search/fixtures.ndjson, in a fixed
// order, with Synthea's conditional references ("Practitioner?identifier=s|v")
// resolved to "Type/id" as a transaction would, and meta.lastUpdated stamped
// 2024-01-01T00:00:00Z + n seconds for the n-th resource (so _lastUpdated
// cases are reproducible). Used by the case generator and the runner.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace bevan::search::testing {

struct CorpusResource {
  std::string type;
  std::string id;
  std::string json;  // with meta.lastUpdated
  store::Micros last_updated = 0;
};

// kNotFound when the Synthea sample is absent.
Result<std::vector<CorpusResource>> LoadCorpus();

// Writes every resource (version 1, its index rows and compartment) in order.
Status LoadStore(store::Store& store, const std::vector<CorpusResource>& corpus);

}  // namespace bevan::search::testing
