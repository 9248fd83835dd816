// Loads the benchmark corpus: the resources of ../shared/data/synthea-10.
#pragma once

#include <string>
#include <vector>

namespace bevan::bench {

struct Corpus {
  std::vector<std::string> resources;  // one compact JSON resource each
  size_t bytes = 0;
};

// The Synthea sample (every resource NDJSON line). Exits with a message when
// ../shared (BEVAN_SHARED) is missing: a benchmark without data means nothing.
const Corpus& SyntheaCorpus();

}  // namespace bevan::bench
