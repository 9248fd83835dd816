// `bevan export [--db URL] --out DIR [--type T,...] [--since INSTANT] [--patient-only]`:
// writes the store's current resources as NDJSON, one `Type.ndjson` file per
// resource type, with the code behind the Bulk Data `$export` operation
// (rest/export.h): stored bytes, verbatim, a type at a time.
#pragma once

#include <string>

namespace bevan::cli {

struct ExportArgs {
  std::string db = "sqlite:./bevan.db";
  std::string out;            // output directory (created if missing)
  std::string types;          // comma-separated; empty: every type
  std::string since;          // an instant: only resources changed after it
  bool patient_only = false;  // only resources in some Patient's compartment ($export at Patient level)
};

// Prints progress on standard error and a per-type summary on standard
// output. Returns 0 on success, 1 on bad arguments, 2 on a store or file error.
int RunExport(const ExportArgs& args);

}  // namespace bevan::cli
