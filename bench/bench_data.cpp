#include "bench_data.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/shared_dir.h"

namespace bevan::bench {

const Corpus& SyntheaCorpus() {
  static const Corpus corpus = [] {
    Corpus c;
    auto shared = SharedDir();
    if (!shared) {
      std::fprintf(stderr, "benchmark: BEVAN_SHARED (../shared) not found; it holds the Synthea sample\n");
      std::exit(2);
    }
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(*shared + "/data/synthea-10")) {
      if (e.path().extension() == ".ndjson" && e.path().filename() != "log.ndjson") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f);
      std::string line;
      while (std::getline(in, line)) {
        if (line.empty()) continue;
        c.bytes += line.size();
        c.resources.push_back(std::move(line));
      }
    }
    return c;
  }();
  return corpus;
}

}  // namespace bevan::bench
