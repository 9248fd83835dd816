// Who is calling and what they may do: the resource server's view of a
// verified access token. Built once per request (by the serve glue, from the
// bearer token) and passed to the REST service, which enforces it on every
// interaction. No OpenSSL here: this header is all the REST layer sees of auth.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace bevan::auth {

enum class ScopeContext : unsigned char { kPatient, kUser, kSystem };

// What a scope permits, SMART App Launch v2 style ("cruds"). v1 scopes map
// onto it: ".read" = r+s, ".write" = c+u+d, ".*" = all five.
enum class Interaction : unsigned char { kCreate, kRead, kUpdate, kDelete, kSearch };

// One resource scope, e.g. "patient/Observation.rs?category=laboratory".
struct Scope {
  ScopeContext context = ScopeContext::kPatient;
  std::string resource_type;  // a resource type, or "*"
  bool create = false, read = false, update = false, del = false, search = false;
  std::string query;  // v2 restriction as a search query ("category=laboratory"); empty: none

  bool Allows(Interaction i) const;
  // Whether the scope applies to `type` and `interaction`, ignoring `query`.
  bool Grants(Interaction i, std::string_view type) const;
};

struct Access {
  // False when no authorisation is configured (the loopback-only developer
  // mode): every interaction is allowed and nothing below is consulted.
  bool enforce = false;
  std::string client_id;
  std::string subject;                 // the token's "sub"
  std::string fhir_user;               // "Patient/9", "Practitioner/3", ... (may be empty)
  std::optional<std::string> patient;  // launch context: patient/ scopes are limited to this Patient's compartment
  std::vector<Scope> scopes;           // resource scopes only
  std::string identity_level;          // "P0", "P5", "P9" (NHS login style); empty for system clients
  std::string purpose_of_use;          // e.g. "TREAT", for audit
  std::string remote_address;          // for audit

  // The scopes that grant `interaction` on `type` (each may carry a query
  // restriction); empty means the request must be refused with 403.
  std::vector<const Scope*> Granting(Interaction interaction, std::string_view type) const;
};

// Parses a space-separated SMART scope string, v2 ("patient/Observation.rs",
// "user/*.cruds", "system/Patient.r?identifier=x") and v1 ("patient/*.read",
// "user/Observation.write"). Non-resource scopes (openid, fhirUser, profile,
// launch, launch/patient, offline_access, online_access) are skipped. A
// malformed resource scope (unknown context, bad permission letters or order,
// unknown resource type) is an InvalidArgument error naming it.
Result<std::vector<Scope>> ParseScopes(std::string_view scope_string);

}  // namespace bevan::auth
