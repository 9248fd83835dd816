// SMART App Launch scopes (v1 and v2 syntax) and the Access checks of access.h.
#include "auth/access.h"
#include "fhir/model.h"

namespace bevan::auth {

bool Scope::Allows(Interaction i) const {
  switch (i) {
    case Interaction::kCreate: return create;
    case Interaction::kRead: return read;
    case Interaction::kUpdate: return update;
    case Interaction::kDelete: return del;
    case Interaction::kSearch: return search;
  }
  return false;
}

bool Scope::Grants(Interaction i, std::string_view type) const {
  return Allows(i) && (resource_type == "*" || resource_type == type);
}

std::vector<const Scope*> Access::Granting(Interaction interaction, std::string_view type) const {
  std::vector<const Scope*> out;
  for (const Scope& s : scopes) {
    if (s.Grants(interaction, type)) out.push_back(&s);
  }
  return out;
}

namespace {

Status Malformed(std::string_view scope, std::string_view why) {
  return InvalidArgumentError("invalid scope \"" + std::string(scope) + "\": " + std::string(why));
}

// Sets the permissions from a v1 ("read", "write", "*") or v2 ("cruds"
// subset, in that order) suffix. Returns whether it was v2.
Result<bool> ParsePermissions(std::string_view scope, std::string_view perms, Scope& out) {
  if (perms == "read") {
    out.read = out.search = true;
    return false;
  }
  if (perms == "write") {
    out.create = out.update = out.del = true;
    return false;
  }
  if (perms == "*") {
    out.create = out.read = out.update = out.del = out.search = true;
    return false;
  }
  if (perms.empty()) return Malformed(scope, "no permissions");
  constexpr std::string_view kOrder = "cruds";
  bool* flags[] = {&out.create, &out.read, &out.update, &out.del, &out.search};
  size_t next = 0;  // letters must appear in kOrder's order, each at most once
  for (char c : perms) {
    size_t at = kOrder.find(c, next);
    if (at == std::string_view::npos) {
      return Malformed(scope, kOrder.find(c) == std::string_view::npos ? "unknown permission letter"
                                                                       : "permission letters out of order");
    }
    *flags[at] = true;
    next = at + 1;
  }
  return true;
}

// Whether a scope names a resource (context/Type.perms), as opposed to
// openid, fhirUser, launch/patient, or an unrelated (e.g. URI) scope.
bool LooksLikeResourceScope(std::string_view scope, std::string_view& context) {
  size_t slash = scope.find('/');
  if (slash == std::string_view::npos) return false;
  context = scope.substr(0, slash);
  if (context == "launch") return false;
  // URIs ("api://x/.default", "https://...") belong to other resource servers.
  if (context.find(':') != std::string_view::npos) return false;
  return true;
}

Result<Scope> ParseResourceScope(std::string_view scope, std::string_view context) {
  Scope out;
  if (context == "patient") {
    out.context = ScopeContext::kPatient;
  } else if (context == "user") {
    out.context = ScopeContext::kUser;
  } else if (context == "system") {
    out.context = ScopeContext::kSystem;
  } else {
    return Malformed(scope, "unknown context");
  }
  std::string_view rest = scope.substr(context.size() + 1);
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return Malformed(scope, "no permissions");
  std::string_view type = rest.substr(0, dot);
  if (type.empty()) return Malformed(scope, "no resource type");
  if (type != "*") {
    const fhir::TypeDef* def = fhir::FindResourceType(type);
    if (!def) return Malformed(scope, "unknown resource type");
  }
  out.resource_type = std::string(type);
  ASSIGN_OR_RETURN(bool v2, ParsePermissions(scope, rest.substr(dot + 1), out));
  if (!query.empty() && !v2) return Malformed(scope, "only v2 scopes take a query");
  out.query = std::string(query);
  return out;
}

}  // namespace

Result<std::vector<Scope>> ParseScopes(std::string_view scope_string) {
  std::vector<Scope> out;
  size_t pos = 0;
  while (pos < scope_string.size()) {
    size_t end = scope_string.find(' ', pos);
    if (end == std::string_view::npos) end = scope_string.size();
    std::string_view scope = scope_string.substr(pos, end - pos);
    pos = end + 1;
    std::string_view context;
    if (scope.empty() || !LooksLikeResourceScope(scope, context)) continue;
    ASSIGN_OR_RETURN(Scope parsed, ParseResourceScope(scope, context));
    out.push_back(std::move(parsed));
  }
  return out;
}

}  // namespace bevan::auth
