#include "auth/users.h"

#include <argon2.h>

#include <algorithm>
#include <charconv>

#include "auth/server_util.h"

namespace bevan::auth {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kPatient: return "patient";
    case Role::kClinician: return "clinician";
    case Role::kAdministrator: return "administrator";
  }
  return "patient";
}

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "patient") return Role::kPatient;
  if (name == "clinician") return Role::kClinician;
  if (name == "administrator") return Role::kAdministrator;
  return std::nullopt;
}

int IdentityLevelRank(std::string_view level) {
  if (level == "P0") return 0;
  if (level == "P5") return 5;
  if (level == "P9") return 9;
  return -1;
}

namespace {

constexpr size_t kMaxPassword = 1024;
constexpr uint32_t kMaxMemoryKib = 256 * 1024;
constexpr uint32_t kMaxIterations = 16;
constexpr uint32_t kMaxParallelism = 8;

// Reads "m=..,t=..,p=.." from a PHC string so that costly encodings (a
// tampered users file) are refused before libargon2 allocates.
bool CostAcceptable(std::string_view encoded) {
  if (!encoded.starts_with("$argon2id$v=19$")) return false;
  std::string_view rest = encoded.substr(15);
  uint32_t m = 0, t = 0, p = 0;
  for (int i = 0; i < 3; ++i) {
    if (rest.size() < 3 || rest[1] != '=') return false;
    char key = rest[0];
    rest.remove_prefix(2);
    uint32_t v = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
    if (ec != std::errc()) return false;
    rest.remove_prefix(static_cast<size_t>(ptr - rest.data()));
    if (key == 'm')
      m = v;
    else if (key == 't')
      t = v;
    else if (key == 'p')
      p = v;
    else
      return false;
    if (i < 2) {
      if (rest.empty() || rest[0] != ',') return false;
      rest.remove_prefix(1);
    }
  }
  return m > 0 && m <= kMaxMemoryKib && t > 0 && t <= kMaxIterations && p > 0 && p <= kMaxParallelism;
}

}  // namespace

Result<std::string> HashPassword(std::string_view password, const Argon2Params& params) {
  if (password.empty()) return InvalidArgumentError("the password is empty");
  if (password.size() > kMaxPassword) return InvalidArgumentError("the password is longer than 1024 bytes");
  std::string salt = internal::RandomBytes(16);
  size_t len = argon2_encodedlen(params.iterations, params.memory_kib, params.parallelism,
                                 static_cast<uint32_t>(salt.size()), 32, Argon2_id);
  std::string encoded(len, '\0');
  int rc = argon2id_hash_encoded(params.iterations, params.memory_kib, params.parallelism, password.data(),
                                 password.size(), salt.data(), salt.size(), 32, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) return InternalError(std::string("argon2id: ") + argon2_error_message(rc));
  encoded.resize(encoded.find('\0') == std::string::npos ? encoded.size() : encoded.find('\0'));
  return encoded;
}

bool VerifyPassword(std::string_view encoded, std::string_view password) {
  if (password.size() > kMaxPassword || encoded.size() > 512 || !CostAcceptable(encoded)) return false;
  std::string enc(encoded);  // NUL-terminated for libargon2
  return argon2id_verify(enc.c_str(), password.data(), password.size()) == ARGON2_OK;
}

UserDirectory::UserDirectory(std::vector<User> users) {
  for (User& u : users) {
    std::string name = u.username;
    users_.emplace(std::move(name), std::move(u));
  }
}

Result<UserDirectory> UserDirectory::FromJson(const json::Value& root) {
  const json::Value* list = root.Find("users");
  if (!list || !list->is_array()) return InvalidArgumentError("users file: expected {\"users\": [...]}");
  std::vector<User> users;
  for (const json::Value& item : list->items()) {
    if (!item.is_object()) return InvalidArgumentError("users file: each user must be an object");
    User u;
    std::string role = "patient";
    for (const json::Member& m : item.members()) {
      std::string_view k = m.name();
      if (!m.value.is_string()) return InvalidArgumentError("users file: '" + std::string(k) + "' must be a string");
      std::string_view v = m.value.as_string();
      if (k == "username")
        u.username = v;
      else if (k == "password_hash")
        u.password_hash = v;
      else if (k == "fhirUser")
        u.fhir_user = v;
      else if (k == "role")
        role = v;
      else if (k == "identity_level")
        u.identity_level = v;
      else
        return InvalidArgumentError("users file: unknown key '" + std::string(k) + "'");
    }
    if (u.username.empty() || u.username.size() > 128) {
      return InvalidArgumentError("users file: every user needs a username (at most 128 bytes)");
    }
    if (!u.password_hash.starts_with("$argon2id$")) {
      return InvalidArgumentError("users file: user '" + u.username +
                                  "' needs an argon2id password_hash (bevan auth hash-password)");
    }
    auto r = ParseRole(role);
    if (!r) return InvalidArgumentError("users file: user '" + u.username + "': unknown role '" + role + "'");
    u.role = *r;
    if (IdentityLevelRank(u.identity_level) < 0) {
      return InvalidArgumentError("users file: user '" + u.username + "': identity_level must be P0, P5 or P9");
    }
    if (u.role == Role::kPatient && !u.fhir_user.starts_with("Patient/")) {
      return InvalidArgumentError("users file: patient user '" + u.username + "' needs fhirUser \"Patient/<id>\"");
    }
    if (std::any_of(users.begin(), users.end(), [&](const User& o) { return o.username == u.username; })) {
      return InvalidArgumentError("users file: user '" + u.username + "' appears twice");
    }
    users.push_back(std::move(u));
  }
  return UserDirectory(std::move(users));
}

Result<UserDirectory> UserDirectory::FromFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, internal::ReadFile(path));
  auto doc = json::Document::Parse(text);
  if (!doc.ok()) return InvalidArgumentError(path + ": " + doc.status().message());
  auto dir = FromJson(doc->root());
  if (!dir.ok()) return InvalidArgumentError(path + ": " + dir.status().message());
  return dir;
}

const User* UserDirectory::Find(std::string_view username) const {
  auto it = users_.find(username);
  return it == users_.end() ? nullptr : &it->second;
}

int64_t LoginThrottle::LockedFor(std::string_view username, int64_t now) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(username);
  if (it == entries_.end() || it->second.locked_until <= now) return 0;
  return it->second.locked_until - now;
}

void LoginThrottle::RecordFailure(std::string_view username, int64_t now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(username);
  if (it == entries_.end()) {
    if (entries_.size() >= options_.max_tracked) {
      auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                     [](const auto& a, const auto& b) { return a.second.last < b.second.last; });
      entries_.erase(oldest);
    }
    it = entries_.emplace(std::string(username), Entry{}).first;
  }
  Entry& e = it->second;
  e.last = now;
  if (++e.failures >= options_.max_failures) {
    int64_t lock = options_.lockout_seconds << std::min(e.lockouts, 10);
    e.locked_until = now + std::min<int64_t>(lock, 86400);
    e.failures = 0;
    ++e.lockouts;
  }
}

void LoginThrottle::RecordSuccess(std::string_view username) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(username);
  if (it != entries_.end()) entries_.erase(it);
}

}  // namespace bevan::auth
