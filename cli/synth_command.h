// `bevan synth --patients N [--seed S] [--trust ODS] [--as-of DATE] --out DIR`:
// writes a synthetic English NHS trust as NDJSON, one file per resource type
// (Patient.ndjson, Observation.ndjson, ...). See src/synth/synth.h.
#pragma once

#include <cstdint>
#include <string>

namespace bevan::cli {

struct SynthArgs {
  uint32_t patients = 0;
  uint64_t seed = 1;
  std::string trust = "RZZ";  // the trust's ODS code
  std::string as_of;          // "YYYY-MM-DD"; empty: the generator's default
  std::string out;            // output directory (created if missing)
};

// Prints resource counts per type and the output rate on standard output.
// Returns 0 on success, 1 on bad arguments, 2 when the files cannot be written.
int RunSynth(const SynthArgs& args);

}  // namespace bevan::cli
