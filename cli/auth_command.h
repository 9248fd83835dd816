// `bevan auth ...`: tools for the SMART authorisation server, and the demo's
// authorisation setup.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "auth/auth_config.h"
#include "common/status.h"

namespace bevan::cli {

// `bevan auth hash-password`: reads a password from standard input (one line;
// not echoed when it is a terminal) and prints its Argon2id PHC string, for
// users files ("password_hash") and confidential clients
// ("client_secret_hash"). Returns the exit status.
int RunAuthHashPassword();

struct DemoUser {
  std::string username;
  std::string password;  // demo only: random, made at demo time, kept in demo-credentials.txt
  std::string role;
  std::string fhir_user;
};

struct DemoAuth {
  auth::AuthConfig config;  // for ServeArgs::auth
  std::vector<DemoUser> users;
  std::string client_id;     // a public client
  std::string redirect_uri;  // its one redirect URI
  std::string credentials_file;
};

// The demo's authorisation setup, in `dir` (created, mode 0700): three users
// (a patient who is `patient_id`, a clinician, an administrator; all P9) with
// random passwords, a public client "bevan-demo-app" redirecting to
// http://127.0.0.1:9000/callback, and a signing key kept in `dir`. The
// passwords are written to DIR/demo-credentials.txt (0600) and reused by the
// next run. Demo only: never point a production server at these files.
Result<DemoAuth> WriteDemoAuth(const std::string& dir, const std::string& patient_id);

}  // namespace bevan::cli
