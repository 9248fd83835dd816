// The `bevan` subcommands. main.cpp parses the command line (CLI11 lives
// only there) and calls one of these with plain arguments.
#pragma once

#include <string>
#include <vector>

namespace bevan::cli {

struct ValidateArgs {
  std::vector<std::string> files;  // "-" is standard input
  bool ndjson = false;             // one resource per line
  bool compact = false;            // one OperationOutcome per line instead of pretty JSON
  bool uk_core = true;
  bool invariants = true;  // FHIRPath invariants (pat-1, dom-3, ...)
};

// Validates each resource; prints an OperationOutcome per invalid resource
// and a one-line summary. Returns 0 when all are valid, 1 when any has an
// error, 2 when a file cannot be read.
int RunValidate(const ValidateArgs& args);

}  // namespace bevan::cli
