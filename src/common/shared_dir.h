// Where the project's shared material (../shared: conformance suites, sample
// data) lives for tests, tools and benchmarks.
#pragma once

#include <optional>
#include <string>

namespace bevan {

// The directory named by $BEVAN_SHARED, else "../shared" relative to
// $BEVAN_SOURCE_DIR (or the working directory). Returns nullopt when that
// directory does not exist; callers say so and skip.
std::optional<std::string> SharedDir();

}  // namespace bevan
