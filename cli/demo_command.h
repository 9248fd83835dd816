// `bevan demo [--dir DIR] [--patients N] [--port P]`: the quick start. Makes
// a synthetic English NHS trust (bevan synth) in DIR/trust unless one is
// there, imports it into embedded SQLite (DIR/bevan.db) unless that import
// already happened, prints things to try, then serves it on 127.0.0.1 until
// Ctrl-C (bevan serve).
#pragma once

#include <cstdint>
#include <string>

namespace bevan::cli {

struct DemoArgs {
  std::string dir = "./demo";
  uint32_t patients = 1000;
  uint16_t port = 8080;
  // Serve with SMART on FHIR authorisation and seeded demo users (a patient,
  // a clinician, an administrator; passwords in DIR/auth/demo-credentials.txt).
  bool auth = false;
};

// Returns the server's exit status, or 1/2 when generating or importing failed.
int RunDemo(const DemoArgs& args);

}  // namespace bevan::cli
