// Local users of the authorisation server: Argon2id password hashes (PHC
// strings, libargon2), the FHIR user each one is, a role and an identity
// level; and the per-username failed-login throttle that guards them.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "json/json.h"

namespace bevan::auth {

enum class Role : unsigned char { kPatient, kClinician, kAdministrator };

std::string_view RoleName(Role role);  // "patient", "clinician", "administrator"
std::optional<Role> ParseRole(std::string_view name);

// NHS login style identity assurance: "P0" < "P5" < "P9". Returns -1 for
// anything else.
int IdentityLevelRank(std::string_view level);

struct User {
  std::string username;
  std::string password_hash;  // "$argon2id$v=19$m=...,t=...,p=...$salt$hash"
  std::string fhir_user;      // "Patient/abc", "Practitioner/xyz"; may be empty for administrators
  Role role = Role::kPatient;
  std::string identity_level = "P0";
};

// Argon2id cost. The defaults are OWASP's minimum recommendation (19 MiB,
// two passes, one lane); tests use cheaper ones.
struct Argon2Params {
  uint32_t memory_kib = 19 * 1024;
  uint32_t iterations = 2;
  uint32_t parallelism = 1;
};

// Hashes `password` with a fresh random 16-byte salt into a PHC string.
// InvalidArgument for an empty or over-long (> 1024 bytes) password.
Result<std::string> HashPassword(std::string_view password, const Argon2Params& params = {});

// Whether `password` matches the PHC string `encoded` (argon2id only). The
// hash comparison is constant-time (libargon2); a malformed or too costly
// (> 256 MiB, > 16 passes) encoding never matches.
bool VerifyPassword(std::string_view encoded, std::string_view password);

// The users file: {"users": [{"username": "...", "password_hash": "...",
// "fhirUser": "Patient/1", "role": "patient", "identity_level": "P9"}, ...]}.
// Immutable after loading; thread-safe.
class UserDirectory {
 public:
  UserDirectory() = default;
  explicit UserDirectory(std::vector<User> users);

  static Result<UserDirectory> FromJson(const json::Value& root);
  static Result<UserDirectory> FromFile(const std::string& path);

  const User* Find(std::string_view username) const;
  size_t size() const { return users_.size(); }

 private:
  std::map<std::string, User, std::less<>> users_;
};

// Failed-login throttle, per username (known or not, so that probing for
// names looks the same): after `max_failures` consecutive failures the name is
// locked for `lockout_seconds`, doubling with each further lockout up to a
// day. A success clears the record. Thread-safe; bounded (`max_tracked`
// names, the oldest records are dropped first).
class LoginThrottle {
 public:
  struct Options {
    int max_failures = 5;
    int64_t lockout_seconds = 60;
    size_t max_tracked = 100000;
  };
  LoginThrottle() : LoginThrottle(Options{}) {}
  explicit LoginThrottle(Options options) : options_(options) {}

  // Seconds until `username` may try again (0: now).
  int64_t LockedFor(std::string_view username, int64_t now) const;
  void RecordFailure(std::string_view username, int64_t now);
  void RecordSuccess(std::string_view username);

 private:
  struct Entry {
    int failures = 0;
    int lockouts = 0;
    int64_t locked_until = 0;
    int64_t last = 0;
  };
  Options options_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace bevan::auth
