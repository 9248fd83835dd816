#include "auth_command.h"

#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "auth/users.h"
#include "common/ids.h"
#include "json/json.h"

namespace bevan::cli {

int RunAuthHashPassword() {
  bool tty = ::isatty(STDIN_FILENO) != 0;
  termios saved{};
  if (tty) {
    std::cerr << "Password: " << std::flush;
    if (::tcgetattr(STDIN_FILENO, &saved) == 0) {
      termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
  }
  std::string password;
  std::getline(std::cin, password);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::cerr << "\n";
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  auto hash = auth::HashPassword(password);
  if (!hash.ok()) {
    std::cerr << "bevan auth hash-password: " << hash.status().message() << "\n";
    return 2;
  }
  std::cout << *hash << "\n";
  return 0;
}

namespace {

// Reads "username password" lines written by an earlier run.
std::vector<std::pair<std::string, std::string>> ReadCredentials(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string user, password;
    if (fields >> user >> password) out.emplace_back(user, password);
  }
  return out;
}

Status WritePrivate(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return IoError("cannot write " + path);
  out << text;
  out.close();
  if (!out || ::chmod(path.c_str(), 0600) != 0) return IoError("cannot write " + path);
  return Status::Ok();
}

}  // namespace

Result<DemoAuth> WriteDemoAuth(const std::string& dir, const std::string& patient_id) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  DemoAuth demo;
  demo.credentials_file = dir + "/demo-credentials.txt";
  demo.client_id = "bevan-demo-app";
  demo.redirect_uri = "http://127.0.0.1:9000/callback";
  demo.users = {{"demo-patient", "", "patient", "Patient/" + patient_id},
                {"demo-clinician", "", "clinician", "Practitioner/demo-clinician"},
                {"demo-admin", "", "administrator", "Practitioner/demo-admin"}};
  auto earlier = ReadCredentials(demo.credentials_file);
  for (DemoUser& u : demo.users) {
    for (const auto& [name, password] : earlier) {
      if (name == u.username) u.password = password;
    }
    if (u.password.empty()) u.password = RandomHex(20);
  }

  std::string users = "{\"users\": [\n";
  std::string credentials =
      "# DEMO ONLY: sign-in passwords of the `bevan demo` users, made at random by the demo.\n"
      "# Never use these files for a real server. username password\n";
  for (size_t i = 0; i < demo.users.size(); ++i) {
    const DemoUser& u = demo.users[i];
    ASSIGN_OR_RETURN(std::string hash, auth::HashPassword(u.password));
    users += "  {\"username\": ";
    json::WriteString(u.username, users);
    users += ", \"password_hash\": ";
    json::WriteString(hash, users);
    users += ", \"role\": ";
    json::WriteString(u.role, users);
    users += ", \"fhirUser\": ";
    json::WriteString(u.fhir_user, users);
    users += ", \"identity_level\": \"P9\"}";
    users += i + 1 < demo.users.size() ? ",\n" : "\n";
    credentials += u.username + " " + u.password + "\n";
  }
  users += "]}\n";
  std::string clients = R"({"clients": [
  {"client_id": "bevan-demo-app", "type": "public", "redirect_uris": ["http://127.0.0.1:9000/callback"],
   "scopes": ["openid", "fhirUser", "launch/patient", "offline_access", "online_access",
              "patient/*.rs", "patient/*.cruds", "patient/*.read", "user/*.rs", "user/*.cruds", "user/*.read",
              "user/AuditEvent.rs"]}
]}
)";
  RETURN_IF_ERROR(WritePrivate(dir + "/users.json", users));
  RETURN_IF_ERROR(WritePrivate(dir + "/clients.json", clients));
  RETURN_IF_ERROR(WritePrivate(demo.credentials_file, credentials));
  demo.config.users_file = dir + "/users.json";
  demo.config.clients_file = dir + "/clients.json";
  demo.config.data_dir = dir;
  return demo;
}

}  // namespace bevan::cli
