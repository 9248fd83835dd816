#include "common/shared_dir.h"

#include <cstdlib>
#include <filesystem>

namespace bevan {

std::optional<std::string> SharedDir() {
  namespace fs = std::filesystem;
  std::string dir;
  if (const char* env = std::getenv("BEVAN_SHARED"); env && *env) {
    dir = env;
  } else if (const char* src = std::getenv("BEVAN_SOURCE_DIR"); src && *src) {
    dir = std::string(src) + "/../shared";
  } else {
    dir = "../shared";
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  return fs::weakly_canonical(dir, ec).string();
}

}  // namespace bevan
