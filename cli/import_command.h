// `bevan import`: bulk load NDJSON and Bundle files into a store.
#pragma once

#include <string>
#include <vector>

namespace bevan::cli {

struct ImportArgs {
  std::string db = "sqlite:./bevan.db";
  std::vector<std::string> paths;
  int threads = 0;
  std::string errors_file;  // where to write the rejected resources' OperationOutcomes (NDJSON)
};

// Returns 0 when everything loaded, 1 when some resources were rejected, 2
// on a usage or I/O error.
int RunImport(const ImportArgs& args);

}  // namespace bevan::cli
