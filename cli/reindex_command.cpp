#include "reindex_command.h"

#include <chrono>
#include <iostream>

#include "search/reindex.h"
#include "search/search.h"
#include "store/store.h"

namespace bevan::cli {

int RunReindex(const ReindexArgs& args) {
  if (args.batch < 1 || args.batch > 100000) {
    std::cerr << "bevan reindex: --batch must be 1..100000\n";
    return 2;
  }
  auto store = store::OpenStore(args.db);
  if (!store.ok()) {
    std::cerr << "bevan reindex: cannot open the store " << args.db << ": " << store.status().message() << "\n";
    return 2;
  }
  // The stored SearchParameters first, so their rows are built too.
  std::vector<std::string> failures;
  auto custom = search::LoadSearchParameters(**store, &failures);
  if (!custom.ok()) {
    std::cerr << "bevan reindex: reading the stored SearchParameters: " << custom.status().message() << "\n";
    return 2;
  }
  for (const std::string& f : failures) std::cerr << "bevan reindex: SearchParameter ignored: " << f << "\n";
  std::cerr << "bevan reindex: " << *custom << " custom search parameters\n";
  search::ReindexOptions options;
  if (!args.type.empty()) options.types.push_back(args.type);
  options.batch = args.batch;
  auto start = std::chrono::steady_clock::now();
  auto last = start;
  std::string last_type;
  auto progress = [&](std::string_view type, const search::ReindexStats& s) {
    auto now = std::chrono::steady_clock::now();
    if (type == last_type && now - last < std::chrono::seconds(1)) return;
    last = now;
    last_type = type;
    std::cerr << "bevan reindex: " << type << ": " << s.resources << " resources so far\n";
  };
  auto stats = search::Reindex(**store, options, progress);
  if (!stats.ok()) {
    std::cerr << "bevan reindex: " << stats.status().message() << "\n";
    return 2;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "bevan reindex: " << stats->resources << " resources of " << stats->types << " types reindexed in "
            << secs << " s (" << static_cast<std::int64_t>(stats->resources / (secs > 0 ? secs : 1)) << "/s); "
            << stats->skipped << " changed meanwhile (indexed by their own write), " << stats->failed
            << " could not be read" << std::endl;
  return stats->failed > 0 ? 1 : 0;
}

}  // namespace bevan::cli
