#include "rest/service.h"

#include <algorithm>
#include <limits>
#include <set>
#include <unordered_map>

#include "audit/audit.h"
#include "auth/access.h"
#include "common/ids.h"
#include "fhir/model.h"
#include "fhir/operation_outcome.h"
#include "fhir/primitives.h"
#include "fhir/validate.h"
#include "fhirpath/invariants.h"
#include "json/json.h"
#include "json/patch.h"
#include "rest/capabilities.h"
#include "rest/export.h"
#include "rest/fhirpath_patch.h"
#include "rest/time.h"
#include "rest/url.h"
#include "rest/write.h"
#include "search/extract.h"
#include "search/query.h"
#include "search/search.h"

namespace bevan::rest {

using fhir::IssueType;
using fhir::OperationOutcome;
using fhir::Severity;
using store::Micros;

namespace {

constexpr std::string_view kFhirJson = "application/fhir+json; charset=utf-8";

// An HTTP error answered with an OperationOutcome.
struct HttpError {
  int status = 400;
  OperationOutcome outcome;

  static HttpError Of(int status, IssueType code, std::string message, std::string location = "") {
    HttpError e;
    e.status = status;
    e.outcome.Add(Severity::kError, code, std::move(location), std::move(message));
    return e;
  }
};

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kFailedPrecondition: return 412;
    case StatusCode::kResourceExhausted: return 413;
    case StatusCode::kUnimplemented: return 501;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kInternal:
    case StatusCode::kIoError: return 500;
  }
  return 500;
}

IssueType IssueTypeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument: return IssueType::kInvalid;
    case StatusCode::kNotFound: return IssueType::kNotSupported;
    case StatusCode::kFailedPrecondition: return IssueType::kBusinessRule;
    case StatusCode::kResourceExhausted: return IssueType::kTooCostly;
    case StatusCode::kPermissionDenied: return IssueType::kForbidden;
    default: return IssueType::kInvalid;
  }
}

HttpError FromStatus(const Status& s) {
  return HttpError::Of(HttpStatusFor(s.code()), IssueTypeFor(s.code()), s.message());
}

std::string ETag(int64_t version) { return "W/\"" + std::to_string(version) + "\""; }

// "W/\"3\"" or "\"3\"" or "3" -> 3.
std::optional<int64_t> ParseETag(std::string_view v) {
  if (v.starts_with("W/")) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return ParsePositiveInt(v);
}

bool IsJsonContentType(std::string_view ct) {
  if (ct.empty()) return true;  // lenient: many clients omit it
  std::string lower(ct.substr(0, ct.find(';')));
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!lower.empty() && lower.back() == ' ') lower.pop_back();
  return lower == "application/fhir+json" || lower == "application/json" || lower == "application/json+fhir" ||
         lower == "text/json";
}

enum class Prefer { kRepresentation, kMinimal, kOutcome };

Prefer ParsePrefer(std::string_view v) {
  if (v.find("return=minimal") != std::string_view::npos) return Prefer::kMinimal;
  if (v.find("return=OperationOutcome") != std::string_view::npos) return Prefer::kOutcome;
  return Prefer::kRepresentation;
}

}  // namespace

// The result of one interaction, as a response or a Bundle entry.
struct Answer {
  int status = 200;
  std::string body;  // resource or OperationOutcome JSON; may be empty
  std::string location;
  std::optional<int64_t> version;
  std::optional<Micros> last_modified;
  bool body_is_outcome = false;
  std::string entity;       // "Type/id" written or deleted (for the audit)
  std::string compartment;  // its Patient compartment (for the audit)
};

namespace {

// What one request touched, for its audit record: filled by the handlers on
// the request's own thread (never inside a store transaction's callback, which
// may run on the writer's thread), read by the public Handle once the
// response is ready.
struct AuditNote {
  std::string interaction;            // restful-interaction code
  std::vector<std::string> patients;  // ids, no duplicates
  std::vector<std::string> entities;  // "Type/id", the first kMaxEntities
  size_t entity_count = 0;
  std::string resource_type;  // searches
  bool search = false;

  static constexpr size_t kMaxEntities = 20;
  void Entity(std::string_view type, std::string_view id, std::string_view compartment) {
    ++entity_count;
    if (entities.size() < kMaxEntities) {
      std::string& e = entities.emplace_back();
      e.reserve(type.size() + 1 + id.size());
      e.append(type).append(1, '/').append(id);
    }
    Patient(type == "Patient" ? id : compartment);
  }
  void Patient(std::string_view id) {
    if (id.empty() || patients.size() >= kMaxEntities) return;
    if (std::find(patients.begin(), patients.end(), id) == patients.end()) patients.emplace_back(id);
  }
};

thread_local AuditNote* t_note = nullptr;

void Note(std::string_view interaction) {
  if (t_note != nullptr && t_note->interaction.empty()) t_note->interaction = interaction;
}
void NoteEntity(std::string_view type, std::string_view id, std::string_view compartment) {
  if (t_note != nullptr) t_note->Entity(type, id, compartment);
}
// The resource a successful write touched ("Type/id" in Answer::entity).
void NoteWritten(const Answer& a) {
  if (t_note == nullptr || a.entity.empty() || a.status >= 300) return;
  std::string_view entity = a.entity;
  size_t slash = entity.find('/');
  t_note->Entity(entity.substr(0, slash), entity.substr(slash + 1), a.compartment);
}

}  // namespace

class FhirService::Impl {
 public:
  Impl(store::Store& store, ServiceOptions options) : store_(store), opt_(std::move(options)) {}

  void Handle(const http::Request& req, http::Response& res, const auth::Access& who) const;
  void HandleAsync(const http::Request& req, http::Response& res, const auth::Access& who,
                   std::function<void()> done) const;
  // Whether `req` is a plain create (POST /fhir/Type) or update (PUT
  // /fhir/Type/id): the writes HandleAsync commits without holding a thread,
  // the bulk of writes. Sets `type` and `id` (empty for a create), views
  // into `req`.
  bool IsPlainWrite(const http::Request& req, std::string_view& type, std::string_view& id) const;
  bool IsLong(const http::Request& req) const {
    return req.method == "POST" && (req.path == opt_.base_path || req.path == opt_.base_path + "/");
  }

 private:
  friend class FhirService;

  // A parsed request body: the document keeps the values alive.
  struct Body {
    json::Document doc;
    json::Value root;
  };

  static void Send(http::Response& res, Answer a);
  static void SendError(http::Response& res, const HttpError& e);

  std::optional<HttpError> ParseResourceBody(std::string_view text, std::string_view url_type, Body& out) const;
  std::optional<HttpError> CheckValid(const json::Value& root) const;

  Status Prepare(std::string_view type, const std::string& id, Body& body, PreparedWrite& out) const;

  // Writes a new version of (type, id) inside `tx`. `if_match`: required
  // current version. Fills `a`.
  Status Commit(store::Transaction& tx, const auth::Access& who, std::string_view type, const std::string& id,
                const PreparedWrite& p, std::optional<int64_t> if_match, Answer& a) const;
  // Prepare and Commit in one (for writes whose body is only known inside the
  // transaction: patches, transaction Bundles with rewritten references).
  Status WriteVersion(store::Transaction& tx, const auth::Access& who, std::string_view type, const std::string& id,
                      Body& body, std::optional<int64_t> if_match, Answer& a) const;

  // Resources of `type` matching conditional `criteria` (a query string).
  // Under a patient-context grant only matches in that compartment count.
  Result<std::vector<store::ResourceKey>> FindMatches(store::Transaction& tx, const auth::Access& who,
                                                      std::string_view type, std::string_view criteria,
                                                      int limit) const;

  // Access control (auth/access.h). What a caller may see of one type for
  // one interaction: everything, or only one Patient's compartment, or only
  // resources matching a search (a SMART v2 scope's query).
  struct Grant {
    std::optional<std::string> patient;
    std::string query;
  };
  // PermissionDenied (403) when no scope of `who` grants `i` on `type`;
  // otherwise fills `g` with the least restrictive granting scope's limits.
  static Status Authorize(const auth::Access& who, auth::Interaction i, std::string_view type, Grant& g);
  // A first check before any parsing: whether some scope could allow a
  // create (or, with `update`, an update or update-as-create) of `type`. The
  // decision proper is in Commit, once it is known what is stored.
  static Status MayWrite(const auth::Access& who, std::string_view type, bool update) {
    Grant g;
    Status st = Authorize(who, update ? auth::Interaction::kUpdate : auth::Interaction::kCreate, type, g);
    if (!st.ok() && update) st = Authorize(who, auth::Interaction::kCreate, type, g);
    return st;
  }
  // Whether the resource (type, id) whose Patient compartment is
  // `compartment` is within `g`.
  Result<bool> Within(const Grant& g, std::string_view type, std::string_view id, std::string_view compartment) const;

  // Interactions.
  void Read(const auth::Access& who, std::string_view type, std::string_view id, const http::Request& req,
            http::Response& res) const;
  void VRead(const auth::Access& who, std::string_view type, std::string_view id, std::string_view vid,
             http::Response& res) const;
  Answer Create(const auth::Access& who, std::string_view type, const std::string& body, std::string_view if_none_exist,
                Prefer prefer) const;
  Answer Update(const auth::Access& who, std::string_view type, std::string_view id, const std::string& body,
                std::string_view if_match, Prefer prefer) const;
  Answer ConditionalUpdate(const auth::Access& who, std::string_view type, std::string_view criteria,
                           const std::string& body, Prefer prefer) const;
  Answer Delete(const auth::Access& who, std::string_view type, std::string_view id) const;
  Answer ConditionalDelete(const auth::Access& who, std::string_view type, std::string_view criteria) const;
  Answer Patch(const auth::Access& who, std::string_view type, std::string_view id, std::string_view criteria,
               const std::string& body, std::string_view content_type, std::string_view if_match, Prefer prefer) const;
  void History(const auth::Access& who, std::string_view type, std::string_view id, const http::Request& req,
               http::Response& res) const;
  void Validate(const auth::Access& who, std::string_view type, std::string_view id, const http::Request& req,
                http::Response& res) const;
  void Search(const auth::Access& who, std::string_view type, const http::Request& req, http::Response& res,
              std::string_view compartment = {}) const;
  void ProcessBundle(const auth::Access& who, const http::Request& req, http::Response& res) const;
  void Everything(const auth::Access& who, std::string_view id, const http::Request& req, http::Response& res) const;
  // GET AuditEvent?...: served from the audit trail (opt_.audit), not the store.
  void AuditSearch(const auth::Access& who, const http::Request& req, http::Response& res) const;

  Answer Finish(Answer a, Prefer prefer) const;

 public:
  // Records the request in opt_.audit (if set); turns the response into a
  // 503 when the log cannot take the record. Takes the note's lists.
  void Audit(const http::Request& req, http::Response& res, const auth::Access& who, AuditNote& note) const;
  bool audited() const { return opt_.audit != nullptr; }

 private:
  store::Store& store_;
  ServiceOptions opt_;
};

void FhirService::Impl::Send(http::Response& res, Answer a) {
  NoteWritten(a);
  res.status = a.status;
  if (!a.body.empty()) {
    res.SetHeader("Content-Type", std::string(kFhirJson));
    res.body = std::move(a.body);
  }
  if (!a.location.empty()) res.SetHeader("Location", std::move(a.location));
  if (a.version) res.SetHeader("ETag", ETag(*a.version));
  if (a.last_modified) res.SetHeader("Last-Modified", FormatHttpDate(*a.last_modified));
}

void FhirService::Impl::SendError(http::Response& res, const HttpError& e) {
  res.status = e.status;
  res.SetHeader("Content-Type", std::string(kFhirJson));
  res.body = e.outcome.ToJson();
}

std::optional<HttpError> FhirService::Impl::ParseResourceBody(std::string_view text, std::string_view url_type,
                                                              Body& out) const {
  auto doc = json::Document::Parse(text);
  if (!doc.ok()) return HttpError::Of(400, IssueType::kStructure, doc.status().message());
  out.doc = std::move(doc).value();
  out.root = out.doc.root();
  if (!out.root.is_object()) return HttpError::Of(400, IssueType::kStructure, "the body must be a JSON object");
  const json::Value* rt = out.root.Find("resourceType");
  if (!rt || !rt->is_string()) return HttpError::Of(400, IssueType::kRequired, "missing resourceType", "resourceType");
  if (!url_type.empty() && rt->as_string() != url_type) {
    return HttpError::Of(400, IssueType::kInvalid,
                         "resourceType '" + std::string(rt->as_string()) + "' does not match the URL's type '" +
                             std::string(url_type) + "'",
                         "resourceType");
  }
  return std::nullopt;
}

std::optional<HttpError> FhirService::Impl::CheckValid(const json::Value& root) const {
  // An active SearchParameter becomes a search parameter: it must compile.
  if (const json::Value* rt = root.Find("resourceType");
      rt && rt->is_string() && rt->as_string() == "SearchParameter") {
    if (Status st = search::CheckSearchParameter(root); !st.ok()) {
      return HttpError::Of(422, IssueType::kInvalid, st.message());
    }
  }
  if (!opt_.validate_writes) return std::nullopt;
  OperationOutcome o = fhir::Validate(root, fhirpath::FullValidation());
  if (!o.HasErrors()) return std::nullopt;
  HttpError e;
  e.status = 422;
  e.outcome = std::move(o);
  return e;
}

Status FhirService::Impl::Prepare(std::string_view type, const std::string& id, Body& body, PreparedWrite& out) const {
  return PrepareWrite(type, id, body.doc, body.root, out);
}

Status FhirService::Impl::Commit(store::Transaction& tx, const auth::Access& who, std::string_view type,
                                 const std::string& id, const PreparedWrite& p, std::optional<int64_t> if_match,
                                 Answer& a) const {
  if (who.enforce) {
    // Create or update is decided by what is stored now, inside the transaction.
    auto cur = tx.Read(type, id);
    if (!cur.ok() && cur.status().code() != StatusCode::kNotFound) return cur.status();
    bool exists = cur.ok() && !cur->deleted;
    Grant g;
    RETURN_IF_ERROR(Authorize(who, exists ? auth::Interaction::kUpdate : auth::Interaction::kCreate, type, g));
    if (!g.query.empty()) {
      return PermissionDeniedError("writes under a scope with a search restriction are not supported");
    }
    if (g.patient) {
      bool old_in = !exists || cur->compartment == *g.patient || (type == "Patient" && id == *g.patient);
      bool new_in = p.compartment == *g.patient;
      if (!old_in || !new_in) {
        return PermissionDeniedError(std::string(type) + "/" + id +
                                     " would not be in the compartment of the patient in context");
      }
    }
  }
  ASSIGN_OR_RETURN(CommitResult r, CommitWrite(store_, tx, type, id, p, if_match));
  a.entity = std::string(type) + "/" + id;
  a.compartment = p.compartment;
  a.status = r.created ? 201 : 200;
  a.version = r.version;
  a.last_modified = r.last_updated;
  a.location = opt_.base_url + "/" + std::string(type) + "/" + id + "/_history/" + std::to_string(r.version);
  a.body = std::move(r.body);
  return Status::Ok();
}

Status FhirService::Impl::WriteVersion(store::Transaction& tx, const auth::Access& who, std::string_view type,
                                       const std::string& id, Body& body, std::optional<int64_t> if_match,
                                       Answer& a) const {
  PreparedWrite p;
  RETURN_IF_ERROR(Prepare(type, id, body, p));
  return Commit(tx, who, type, id, p, if_match, a);
}

Result<std::vector<store::ResourceKey>> FhirService::Impl::FindMatches(store::Transaction& tx, const auth::Access& who,
                                                                       std::string_view type, std::string_view criteria,
                                                                       int limit) const {
  Grant grant;
  RETURN_IF_ERROR(Authorize(who, auth::Interaction::kSearch, type, grant));
  if (!grant.query.empty()) {
    return PermissionDeniedError("conditional operations under a scope with a search restriction are not supported");
  }
  // Any search criteria, evaluated inside the write transaction.
  search::ParseOptions popts;
  popts.base_url = opt_.base_url;
  ASSIGN_OR_RETURN(search::SearchQuery q, search::ParseSearchQuery(type, criteria, popts));
  std::function<Result<bool>(const store::SearchHit&)> keep;
  if (grant.patient) {
    keep = [&](const store::SearchHit& h) { return Within(grant, type, h.id, h.compartment); };
  }
  ASSIGN_OR_RETURN(std::vector<store::SearchHit> hits, search::FindConditional(tx, q, limit, keep));
  std::vector<store::ResourceKey> out;
  for (const store::SearchHit& h : hits) out.push_back({h.rid, h.id, h.version});
  return out;
}

namespace {

std::string_view InteractionName(auth::Interaction i) {
  switch (i) {
    case auth::Interaction::kCreate: return "create";
    case auth::Interaction::kRead: return "read";
    case auth::Interaction::kUpdate: return "update";
    case auth::Interaction::kDelete: return "delete";
    case auth::Interaction::kSearch: return "search";
  }
  return "access";
}

}  // namespace

Status FhirService::Impl::Authorize(const auth::Access& who, auth::Interaction i, std::string_view type, Grant& g) {
  g = Grant();
  if (!who.enforce) return Status::Ok();
  // The granting scopes, found without a temporary list (this runs on every request).
  bool any = false;
  for (const auth::Scope& sc : who.scopes) any = any || sc.Grants(i, type);
  if (!any) {
    return PermissionDeniedError("the access token's scopes do not allow " + std::string(InteractionName(i)) + " of " +
                                 std::string(type));
  }
  // The least restrictive granting scope wins; between a patient scope and a
  // search-restricted one the patient scope is taken (a union of the two
  // would be more permissive, never less safe to refuse).
  const auth::Scope* patient_scope = nullptr;
  const auth::Scope* query_scope = nullptr;
  for (const auth::Scope& scope : who.scopes) {
    if (!scope.Grants(i, type)) continue;
    const auth::Scope* sc = &scope;
    if (sc->context != auth::ScopeContext::kPatient && sc->query.empty()) return Status::Ok();
    if (sc->context == auth::ScopeContext::kPatient && sc->query.empty()) {
      patient_scope = sc;
    } else if (!query_scope) {
      query_scope = sc;
    }
  }
  bool patient_limited = patient_scope || query_scope->context == auth::ScopeContext::kPatient;
  if (patient_limited) {
    if (!who.patient || who.patient->empty()) {
      return PermissionDeniedError("patient/ scopes need a patient in the launch context");
    }
    g.patient = *who.patient;
  }
  if (!patient_scope) g.query = query_scope->query;
  return Status::Ok();
}

Result<bool> FhirService::Impl::Within(const Grant& g, std::string_view type, std::string_view id,
                                       std::string_view compartment) const {
  if (g.patient && compartment != *g.patient && !(type == "Patient" && id == *g.patient)) return false;
  if (g.query.empty()) return true;
  // The scope's query restriction, run as a search for this one resource.
  search::ParseOptions popts;
  popts.base_url = opt_.base_url;
  ASSIGN_OR_RETURN(search::SearchQuery q,
                   search::ParseSearchQuery(type, "_id=" + PercentEncode(id) + "&" + g.query, popts));
  if (!q.unknown.empty()) {
    return PermissionDeniedError("the scope's search restriction uses an unsupported parameter '" + q.unknown[0].first +
                                 "'");
  }
  q.count = 1;
  ASSIGN_OR_RETURN(search::SearchResult r, search::ExecuteSearch(store_, q));
  return !r.matches.empty();
}

Answer FhirService::Impl::Finish(Answer a, Prefer prefer) const {
  if (prefer == Prefer::kMinimal) {
    a.body.clear();
  } else if (prefer == Prefer::kOutcome) {
    // An outcome with no issues says "No issues detected" (informational).
    a.body = OperationOutcome().ToJson();
    a.body_is_outcome = true;
  }
  return a;
}

Answer ErrorAnswer(const HttpError& e) {
  Answer a;
  a.status = e.status;
  a.body = e.outcome.ToJson();
  a.body_is_outcome = true;
  return a;
}

Answer FhirService::Impl::Create(const auth::Access& who, std::string_view type, const std::string& text,
                                 std::string_view if_none_exist, Prefer prefer) const {
  if (Status st = MayWrite(who, type, false); !st.ok()) return ErrorAnswer(FromStatus(st));
  Body body;
  if (auto e = ParseResourceBody(text, type, body)) return ErrorAnswer(*e);
  if (auto e = CheckValid(body.root)) return ErrorAnswer(*e);
  std::string id = NewUuid();
  PreparedWrite prepared;
  if (Status st = Prepare(type, id, body, prepared); !st.ok()) return ErrorAnswer(FromStatus(st));
  Answer a;
  Status st = store_.Transact([&](store::Transaction& tx) -> Status {
    a = Answer();
    if (!if_none_exist.empty()) {
      ASSIGN_OR_RETURN(auto matches, FindMatches(tx, who, type, if_none_exist, 2));
      if (matches.size() > 1) {
        return FailedPreconditionError("If-None-Exist matches more than one " + std::string(type));
      }
      if (matches.size() == 1) {
        ASSIGN_OR_RETURN(store::ResourceVersion cur, tx.Read(type, matches[0].id, true));
        a.status = 200;
        a.version = cur.version;
        a.last_modified = cur.last_updated;
        a.location =
            opt_.base_url + "/" + std::string(type) + "/" + cur.id + "/_history/" + std::to_string(cur.version);
        a.body = std::move(cur.body);
        return Status::Ok();
      }
    }
    return Commit(tx, who, type, id, prepared, std::nullopt, a);
  });
  if (!st.ok()) return ErrorAnswer(FromStatus(st));
  return Finish(std::move(a), prefer);
}

Answer FhirService::Impl::Update(const auth::Access& who, std::string_view type, std::string_view id,
                                 const std::string& text, std::string_view if_match, Prefer prefer) const {
  if (Status st = MayWrite(who, type, true); !st.ok()) return ErrorAnswer(FromStatus(st));
  Body body;
  if (auto e = ParseResourceBody(text, type, body)) return ErrorAnswer(*e);
  const json::Value* body_id = body.root.Find("id");
  if (!body_id || !body_id->is_string()) {
    return ErrorAnswer(HttpError::Of(400, IssueType::kRequired, "an update must carry the resource id", "id"));
  }
  if (body_id->as_string() != id) {
    return ErrorAnswer(HttpError::Of(400, IssueType::kInvalid,
                                     "the resource id '" + std::string(body_id->as_string()) +
                                         "' does not match the URL's id '" + std::string(id) + "'",
                                     "id"));
  }
  if (!fhir::CheckPrimitive(fhir::PrimitiveCheck::kId, id).empty()) {
    return ErrorAnswer(HttpError::Of(400, IssueType::kValue, "invalid id '" + std::string(id) + "'"));
  }
  if (auto e = CheckValid(body.root)) return ErrorAnswer(*e);
  std::optional<int64_t> expected;
  if (!if_match.empty()) {
    expected = ParseETag(if_match);
    if (!expected) return ErrorAnswer(HttpError::Of(400, IssueType::kInvalid, "malformed If-Match (use W/\"n\")"));
  }
  Answer a;
  std::string sid(id);
  PreparedWrite prepared;
  if (Status st = Prepare(type, sid, body, prepared); !st.ok()) return ErrorAnswer(FromStatus(st));
  Status st =
      store_.Transact([&](store::Transaction& tx) { return Commit(tx, who, type, sid, prepared, expected, a); });
  if (!st.ok()) return ErrorAnswer(FromStatus(st));
  return Finish(std::move(a), prefer);
}

Answer FhirService::Impl::ConditionalUpdate(const auth::Access& who, std::string_view type, std::string_view criteria,
                                            const std::string& text, Prefer prefer) const {
  if (Status st = MayWrite(who, type, true); !st.ok()) return ErrorAnswer(FromStatus(st));
  Body body;
  if (auto e = ParseResourceBody(text, type, body)) return ErrorAnswer(*e);
  if (auto e = CheckValid(body.root)) return ErrorAnswer(*e);
  std::string body_id;
  if (const json::Value* v = body.root.Find("id"); v && v->is_string()) body_id = v->as_string();
  Answer a;
  Status st = store_.Transact([&](store::Transaction& tx) -> Status {
    a = Answer();
    ASSIGN_OR_RETURN(auto matches, FindMatches(tx, who, type, criteria, 2));
    if (matches.size() > 1) return FailedPreconditionError("the criteria match more than one " + std::string(type));
    std::string id;
    if (matches.size() == 1) {
      id = matches[0].id;
      if (!body_id.empty() && body_id != id) {
        return InvalidArgumentError("the resource id '" + body_id + "' does not match the resource found ('" + id +
                                    "')");
      }
    } else {
      id = body_id.empty() ? NewUuid() : body_id;
    }
    return WriteVersion(tx, who, type, id, body, std::nullopt, a);
  });
  if (!st.ok()) return ErrorAnswer(FromStatus(st));
  return Finish(std::move(a), prefer);
}

Answer FhirService::Impl::Delete(const auth::Access& who, std::string_view type, std::string_view id) const {
  Grant grant;
  if (Status st = Authorize(who, auth::Interaction::kDelete, type, grant); !st.ok()) return ErrorAnswer(FromStatus(st));
  if (!grant.query.empty()) {
    return ErrorAnswer(
        FromStatus(PermissionDeniedError("deletes under a scope with a search restriction are not supported")));
  }
  Answer a;
  Status st = store_.Transact([&](store::Transaction& tx) -> Status {
    a = Answer();
    auto cur = tx.Read(type, id);
    if (!cur.ok()) return cur.status();
    ASSIGN_OR_RETURN(bool within, Within(grant, type, id, cur->compartment));
    if (!within) return NotFoundError("not within the patient in context");
    if (cur->deleted) {
      a.status = 204;  // deleting a deleted resource is a no-op
      return Status::Ok();
    }
    a.entity = std::string(type) + "/" + std::string(id);
    a.compartment = cur->compartment;
    store::ResourceDelete d;
    d.type = type;
    d.id = id;
    d.version = cur->version + 1;
    d.last_updated = store_.Now();
    ASSIGN_OR_RETURN(store::WriteResult r, tx.Delete(d));
    if (type == "SearchParameter") search::Extractor::Default().Unregister(id);
    a.status = 204;
    a.version = r.version;
    return Status::Ok();
  });
  if (!st.ok()) {
    if (st.code() == StatusCode::kNotFound) {
      return ErrorAnswer(
          HttpError::Of(404, IssueType::kNotSupported, std::string(type) + "/" + std::string(id) + " does not exist"));
    }
    return ErrorAnswer(FromStatus(st));
  }
  return a;
}

Answer FhirService::Impl::ConditionalDelete(const auth::Access& who, std::string_view type,
                                            std::string_view criteria) const {
  Grant grant;
  if (Status st = Authorize(who, auth::Interaction::kDelete, type, grant); !st.ok()) return ErrorAnswer(FromStatus(st));
  Answer a;
  Status st = store_.Transact([&](store::Transaction& tx) -> Status {
    a = Answer();
    ASSIGN_OR_RETURN(auto matches, FindMatches(tx, who, type, criteria, 2));
    if (matches.size() > 1) return FailedPreconditionError("the criteria match more than one " + std::string(type));
    a.status = 204;
    if (matches.empty()) return Status::Ok();
    a.entity = std::string(type) + "/" + matches[0].id;
    store::ResourceDelete d;
    d.type = type;
    d.id = matches[0].id;
    d.version = matches[0].version + 1;
    d.last_updated = store_.Now();
    ASSIGN_OR_RETURN(store::WriteResult r, tx.Delete(d));
    if (type == "SearchParameter") search::Extractor::Default().Unregister(d.id);
    a.version = r.version;
    return Status::Ok();
  });
  if (!st.ok()) return ErrorAnswer(FromStatus(st));
  return a;
}

Answer FhirService::Impl::Patch(const auth::Access& who, std::string_view type, std::string_view id,
                                std::string_view criteria, const std::string& text, std::string_view content_type,
                                std::string_view if_match, Prefer prefer) const {
  std::string ct(content_type.substr(0, content_type.find(';')));
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  bool json_patch = ct == "application/json-patch+json";
  // FHIRPath Patch: a Parameters resource as FHIR JSON.
  bool fhirpath_patch = ct == "application/fhir+json" || ct == "application/json";
  if (!json_patch && !fhirpath_patch) {
    return ErrorAnswer(HttpError::Of(415, IssueType::kNotSupported,
                                     "PATCH takes application/json-patch+json (JSON Patch) or application/fhir+json "
                                     "(FHIRPath Patch: a Parameters resource)"));
  }
  auto patch_doc = json::Document::Parse(text);
  if (!patch_doc.ok()) return ErrorAnswer(HttpError::Of(400, IssueType::kStructure, patch_doc.status().message()));
  if (fhirpath_patch) {
    const json::Value* rt = patch_doc->root().Find("resourceType");
    if (!rt || rt->as_string() != "Parameters") {
      return ErrorAnswer(
          HttpError::Of(400, IssueType::kInvalid, "a FHIRPath Patch body must be a Parameters resource"));
    }
    if (auto o = fhir::Validate(patch_doc->root()); o.HasErrors()) {
      HttpError e;
      e.status = 400;
      e.outcome = std::move(o);
      return ErrorAnswer(e);
    }
  }
  std::optional<int64_t> expected;
  if (!if_match.empty()) {
    expected = ParseETag(if_match);
    if (!expected) return ErrorAnswer(HttpError::Of(400, IssueType::kInvalid, "malformed If-Match (use W/\"n\")"));
  }
  Answer a;
  std::optional<HttpError> invalid;
  Status st = store_.Transact([&](store::Transaction& tx) -> Status {
    a = Answer();
    invalid.reset();
    std::string target(id);
    if (target.empty()) {
      ASSIGN_OR_RETURN(auto matches, FindMatches(tx, who, type, criteria, 2));
      if (matches.size() != 1) {
        return matches.empty() ? NotFoundError("no " + std::string(type) + " matches the criteria")
                               : FailedPreconditionError("the criteria match more than one " + std::string(type));
      }
      target = matches[0].id;
    }
    ASSIGN_OR_RETURN(store::ResourceVersion cur, tx.Read(type, target, true));
    if (cur.deleted) return NotFoundError(std::string(type) + "/" + target + " is deleted");
    if (who.enforce) {
      Grant g;
      RETURN_IF_ERROR(Authorize(who, auth::Interaction::kRead, type, g));
      ASSIGN_OR_RETURN(bool within, Within(g, type, target, cur.compartment));
      if (!within) return NotFoundError(std::string(type) + "/" + target + " is not known");
    }
    Body body;
    ASSIGN_OR_RETURN(body.doc, json::Document::Parse(cur.body));
    auto patched = fhirpath_patch ? ApplyFhirPathPatch(body.doc, body.doc.root(), patch_doc->root())
                                  : json::ApplyJsonPatch(body.doc, body.doc.root(), patch_doc->root());
    if (!patched.ok()) {
      invalid = HttpError::Of(422, IssueType::kInvalid, patched.status().message());
      return patched.status();
    }
    body.root = *patched;
    const json::Value* rt = body.root.Find("resourceType");
    const json::Value* pid = body.root.Find("id");
    if (!rt || rt->as_string() != type || !pid || pid->as_string() != target) {
      invalid = HttpError::Of(422, IssueType::kInvalid, "a patch must not change resourceType or id");
      return InvalidArgumentError("patch changed resourceType or id");
    }
    if (auto e = CheckValid(body.root)) {
      invalid = std::move(e);
      return InvalidArgumentError("patched resource is invalid");
    }
    return WriteVersion(tx, who, type, target, body, expected, a);
  });
  if (invalid) return ErrorAnswer(*invalid);
  if (!st.ok()) return ErrorAnswer(FromStatus(st));
  return Finish(std::move(a), prefer);
}

void FhirService::Impl::Read(const auth::Access& who, std::string_view type, std::string_view id,
                             const http::Request& req, http::Response& res) const {
  Grant grant;
  if (Status st = Authorize(who, auth::Interaction::kRead, type, grant); !st.ok()) {
    return SendError(res, FromStatus(st));
  }
  auto r = store_.Read(type, id);
  if (r.ok() && who.enforce) {
    // Outside the caller's grant a resource is answered as unknown, so its
    // existence does not leak.
    auto within = Within(grant, type, id, r->compartment);
    if (!within.ok()) return SendError(res, FromStatus(within.status()));
    if (!*within) r = NotFoundError("outside the grant");
  }
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kNotFound) {
      return SendError(res, HttpError::Of(404, IssueType::kNotSupported,
                                          std::string(type) + "/" + std::string(id) + " is not known"));
    }
    return SendError(res, FromStatus(r.status()));
  }
  if (r->deleted) {
    res.SetHeader("ETag", ETag(r->version));
    return SendError(
        res, HttpError::Of(410, IssueType::kNotSupported, std::string(type) + "/" + std::string(id) + " was deleted"));
  }
  if (auto inm = req.Header("If-None-Match"); !inm.empty()) {
    if (auto v = ParseETag(inm); v && *v == r->version) {
      res.status = 304;
      res.SetHeader("ETag", ETag(r->version));
      return;
    }
  }
  if (auto ims = req.Header("If-Modified-Since"); !ims.empty()) {
    if (auto since = ParseHttpDate(ims); since && r->last_updated < *since + 1'000'000) {
      res.status = 304;
      res.SetHeader("ETag", ETag(r->version));
      return;
    }
  }
  NoteEntity(type, id, r->compartment);
  Answer a;
  a.status = 200;
  a.version = r->version;
  a.last_modified = r->last_updated;
  a.body = std::move(r->body);  // the stored bytes, not re-serialised
  Send(res, std::move(a));
}

void FhirService::Impl::VRead(const auth::Access& who, std::string_view type, std::string_view id, std::string_view vid,
                              http::Response& res) const {
  Grant grant;
  if (Status st = Authorize(who, auth::Interaction::kRead, type, grant); !st.ok()) {
    return SendError(res, FromStatus(st));
  }
  std::optional<int64_t> version = ParsePositiveInt(vid);
  if (!version) {
    return SendError(res, HttpError::Of(400, IssueType::kValue, "invalid version id '" + std::string(vid) + "'"));
  }
  auto r = store_.VRead(type, id, *version);
  if (r.ok() && who.enforce) {
    // The version's own compartment decides (a tombstone has none).
    auto within = Within(grant, type, id, r->compartment);
    if (!within.ok()) return SendError(res, FromStatus(within.status()));
    if (!*within) r = NotFoundError("outside the grant");
  }
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kNotFound) {
      return SendError(
          res, HttpError::Of(404, IssueType::kNotSupported,
                             std::string(type) + "/" + std::string(id) + " has no version " + std::string(vid)));
    }
    return SendError(res, FromStatus(r.status()));
  }
  if (r->deleted) {
    res.SetHeader("ETag", ETag(r->version));
    return SendError(res,
                     HttpError::Of(410, IssueType::kNotSupported, "version " + std::string(vid) + " is a deletion"));
  }
  NoteEntity(type, id, r->compartment);
  Answer a;
  a.version = r->version;
  a.last_modified = r->last_updated;
  a.body = std::move(r->body);
  Send(res, std::move(a));
}

namespace {

// Appends {"relation":..., "url":...}.
void AppendLink(std::string& out, std::string_view relation, std::string_view url) {
  out += "{\"relation\":";
  json::WriteString(relation, out);
  out += ",\"url\":";
  json::WriteString(url, out);
  out += "}";
}

std::string_view MethodName(store::Method m) {
  switch (m) {
    case store::Method::kCreate: return "POST";
    case store::Method::kUpdate: return "PUT";
    case store::Method::kDelete: return "DELETE";
  }
  return "PUT";
}

}  // namespace

void FhirService::Impl::History(const auth::Access& who, std::string_view type, std::string_view id,
                                const http::Request& req, http::Response& res) const {
  // Instance history is a read of the resource; type and system history a
  // search. Entries outside the caller's grant are left out of each page
  // (a page may then be shorter than _count; its next link still holds).
  Grant grant;
  if (who.enforce && !type.empty()) {
    auto i = id.empty() ? auth::Interaction::kSearch : auth::Interaction::kRead;
    if (Status st = Authorize(who, i, type, grant); !st.ok()) return SendError(res, FromStatus(st));
    if (!grant.query.empty()) {
      return SendError(
          res, FromStatus(PermissionDeniedError("history under a scope with a search restriction is not supported")));
    }
    if (!id.empty()) {
      auto cur = store_.Read(type, id);
      auto within = cur.ok() ? Within(grant, type, id, cur->compartment) : Result<bool>(false);
      if (!within.ok()) return SendError(res, FromStatus(within.status()));
      if (!*within) {
        return SendError(res, HttpError::Of(404, IssueType::kNotSupported,
                                            std::string(type) + "/" + std::string(id) + " is not known"));
      }
    }
  }
  // System history: each entry's type is authorised on its own (cached per type).
  std::unordered_map<std::string, std::optional<Grant>> type_grants;
  auto visible = [&](const store::HistoryEntry& e) -> bool {
    if (!who.enforce) return true;
    const Grant* g = &grant;
    if (type.empty()) {
      auto [it, fresh] = type_grants.try_emplace(e.type);
      if (fresh) {
        Grant tg;
        if (Authorize(who, auth::Interaction::kSearch, e.type, tg).ok() && tg.query.empty()) it->second = tg;
      }
      if (!it->second) return false;
      g = &*it->second;
    }
    // A deletion has no compartment of its own: under a patient grant it is left out.
    return !g->patient || e.compartment == *g->patient || (e.type == "Patient" && e.id == *g->patient);
  };
  auto params = ParseQuery(req.query);
  if (!params) return SendError(res, HttpError::Of(400, IssueType::kInvalid, "malformed query string"));
  store::HistoryQuery q;
  q.type = type;
  q.id = id;
  q.count = opt_.default_page_size;
  for (const auto& [name, value] : *params) {
    if (name == "_count") {
      std::optional<int64_t> n = ParsePositiveInt(value);
      if (!n || *n > std::numeric_limits<int>::max()) {
        return SendError(res, HttpError::Of(400, IssueType::kValue, "_count must be a positive integer", "_count"));
      }
      q.count = static_cast<int>(std::min<int64_t>(*n, opt_.max_page_size));
    } else if (name == "_since") {
      auto r = ParseDateTimeRange(value);
      if (!r) return SendError(res, HttpError::Of(400, IssueType::kValue, "_since must be an instant", "_since"));
      q.since = r->lo;
    } else if (name == "_at") {
      auto r = ParseDateTimeRange(value);
      if (!r) return SendError(res, HttpError::Of(400, IssueType::kValue, "_at must be a date or dateTime", "_at"));
      q.at_lo = r->lo;
      q.at_hi = r->hi;
    } else if (name == "_cursor") {
      auto c = store::HistoryCursor::Parse(value);
      if (!c.ok()) return SendError(res, HttpError::Of(400, IssueType::kValue, "invalid _cursor", "_cursor"));
      q.after = *c;
    } else if (name == "_format") {
      // JSON only; checked by the router.
    } else {
      return SendError(res, HttpError::Of(400, IssueType::kNotSupported,
                                          "unknown history parameter '" + name + "' (supported: _count, _since, _at)"));
    }
  }
  auto page = store_.History(q);
  if (!page.ok()) {
    if (page.status().code() == StatusCode::kNotFound) {
      return SendError(res, HttpError::Of(404, IssueType::kNotSupported,
                                          std::string(type) + "/" + std::string(id) + " is not known"));
    }
    return SendError(res, FromStatus(page.status()));
  }
  // Links keep every parameter but the cursor.
  std::string base = opt_.base_url;
  if (!type.empty()) base += "/" + std::string(type);
  if (!id.empty()) base += "/" + std::string(id);
  base += "/_history";
  std::string kept = QueryWithout(*params, "_cursor");
  std::string out = R"({"resourceType":"Bundle","type":"history","link":[)";
  AppendLink(out, "self", base + (req.query.empty() ? "" : "?" + req.query));
  if (page->next) {
    out += ",";
    AppendLink(out, "next", base + kept + (kept.empty() ? "?" : "&") + "_cursor=" + page->next->ToString());
  }
  out += "],\"entry\":[";
  bool first = true;
  for (const store::HistoryEntry& e : page->entries) {
    if (!visible(e)) continue;
    NoteEntity(e.type, e.id, e.compartment);
    if (!first) out += ",";
    first = false;
    std::string rel = e.type + "/" + e.id;
    out += "{\"fullUrl\":";
    json::WriteString(opt_.base_url + "/" + rel, out);
    if (!e.body.empty()) {
      out += ",\"resource\":";
      out += e.body;  // stored bytes, spliced in as they are
    }
    out += ",\"request\":{\"method\":\"";
    out += MethodName(e.method);
    out += "\",\"url\":";
    json::WriteString(e.method == store::Method::kCreate ? e.type : rel, out);
    out += "},\"response\":{\"status\":\"";
    out += e.method == store::Method::kCreate ? "201" : (e.method == store::Method::kDelete ? "204" : "200");
    out += "\",\"etag\":";
    json::WriteString(ETag(e.version), out);
    out += ",\"lastModified\":";
    json::WriteString(FormatInstant(e.last_updated), out);
    out += "}}";
  }
  out += "]}";
  res.status = 200;
  res.SetHeader("Content-Type", std::string(kFhirJson));
  res.body = std::move(out);
}

void FhirService::Impl::Validate(const auth::Access& who, std::string_view type, std::string_view id,
                                 const http::Request& req, http::Response& res) const {
  std::string text;
  if (!req.body.empty()) {
    text = req.body;
  } else if (!id.empty()) {
    Grant grant;
    if (Status st = Authorize(who, auth::Interaction::kRead, type, grant); !st.ok()) {
      return SendError(res, FromStatus(st));
    }
    auto r = store_.Read(type, id);
    if (r.ok() && who.enforce) {
      auto within = Within(grant, type, id, r->compartment);
      if (!within.ok() || !*within) r = NotFoundError("outside the grant");
    }
    if (!r.ok() || r->deleted) {
      return SendError(res, HttpError::Of(404, IssueType::kNotSupported,
                                          std::string(type) + "/" + std::string(id) + " is not known"));
    }
    text = std::move(r->body);
  } else {
    return SendError(res, HttpError::Of(400, IssueType::kRequired, "$validate needs a resource in the body"));
  }
  auto doc = json::Document::Parse(text);
  if (!doc.ok()) return SendError(res, HttpError::Of(400, IssueType::kStructure, doc.status().message()));
  const json::Value* resource = &doc->root();
  // A Parameters body carries the resource in parameter "resource".
  if (const json::Value* rt = resource->Find("resourceType"); rt && rt->as_string() == "Parameters") {
    const json::Value* found = nullptr;
    if (const json::Value* ps = resource->Find("parameter"); ps && ps->is_array()) {
      for (const json::Value& p : ps->items()) {
        const json::Value* n = p.Find("name");
        if (n && n->as_string() == "resource") found = p.Find("resource");
      }
    }
    if (!found) return SendError(res, HttpError::Of(400, IssueType::kRequired, "Parameters without a 'resource'"));
    resource = found;
  }
  const json::Value* rt = resource->Find("resourceType");
  if (rt && rt->as_string() != type) {
    return SendError(res, HttpError::Of(400, IssueType::kInvalid, "the resource is not a " + std::string(type)));
  }
  OperationOutcome o = fhir::Validate(*resource, fhirpath::FullValidation());
  res.status = 200;
  res.SetHeader("Content-Type", std::string(kFhirJson));
  res.body = o.ToJson();
}

namespace {

// Applies _summary (true, text, data) or _elements to a stored body, as the
// R4 search page says: mandatory elements, id and meta stay, and meta gets the
// SUBSETTED tag. Returns the body unchanged for no shaping.
std::string ShapeBody(const std::string& body, std::optional<search::Summary> summary,
                      const std::vector<std::string>& elements) {
  bool shape =
      !elements.empty() || (summary && *summary != search::Summary::kFalse && *summary != search::Summary::kCount);
  if (!shape) return body;
  auto doc = json::Document::Parse(body);
  if (!doc.ok() || !doc->root().is_object()) return body;
  const json::Value* rt = doc->root().Find("resourceType");
  const fhir::TypeDef* type = rt ? fhir::FindResourceType(rt->as_string()) : nullptr;
  if (!type) return body;
  std::vector<json::Member> kept;
  for (const json::Member& m : doc->root().members()) {
    std::string_view key = m.name();
    std::string_view name = key.starts_with("_") ? key.substr(1) : key;
    if (name == "resourceType" || name == "id" || name == "meta") {
      kept.push_back(m);
      continue;
    }
    const fhir::ElementDef* el = type->FindElement(name);
    bool keep = false;
    if (!elements.empty()) {
      std::string_view base = el ? el->name : name;
      keep = (el && el->min > 0) || std::find(elements.begin(), elements.end(), std::string(base)) != elements.end() ||
             std::find(elements.begin(), elements.end(), std::string(name)) != elements.end();
    } else if (*summary == search::Summary::kTrue) {
      keep = el && (el->is_summary || el->min > 0);
    } else if (*summary == search::Summary::kText) {
      keep = name == "text" || (el && el->min > 0);
    } else if (*summary == search::Summary::kData) {
      keep = name != "text";
    }
    if (keep) kept.push_back(m);
  }
  // meta.tag += SUBSETTED (http://terminology.hl7.org/CodeSystem/v3-ObservationValue).
  json::Document& d = *doc;
  for (json::Member& m : kept) {
    if (m.name() != "meta" || !m.value.is_object()) continue;
    std::vector<json::Value> tags;
    if (const json::Value* t = m.value.Find("tag"); t && t->is_array())
      tags.assign(t->items().begin(), t->items().end());
    std::vector<json::Member> tag{
        {d.MakeString("system"), d.MakeString("http://terminology.hl7.org/CodeSystem/v3-ObservationValue")},
        {d.MakeString("code"), d.MakeString("SUBSETTED")}};
    tags.push_back(d.MakeObject(tag));
    m.value = d.WithMember(m.value, "tag", d.MakeArray(tags));
  }
  return json::ToString(d.MakeObject(kept));
}

}  // namespace

void FhirService::Impl::Search(const auth::Access& who, std::string_view type, const http::Request& req,
                               http::Response& res, std::string_view compartment) const {
  Grant grant;
  // An empty type is a system-level search (GET [base]?_type=..., POST
  // [base]/_search): authorised per type once the types are known.
  bool system = type.empty();
  if (Status st = system ? Status::Ok() : Authorize(who, auth::Interaction::kSearch, type, grant); !st.ok()) {
    return SendError(res, FromStatus(st));
  }
  if (grant.patient && !compartment.empty() && compartment != *grant.patient) {
    return SendError(
        res,
        FromStatus(PermissionDeniedError("the access token is limited to the compartment of the patient in context")));
  }
  std::string query = req.method == "POST" ? req.body : req.query;
  search::ParseOptions popts;
  popts.base_url = opt_.base_url;
  popts.max_count = opt_.max_page_size;
  auto q = system ? search::ParseSystemSearch(query, popts) : search::ParseSearchQuery(type, query, popts);
  if (!q.ok()) return SendError(res, HttpError::Of(400, IssueType::kInvalid, q.status().message()));
  if (!compartment.empty()) q->compartment = std::string(compartment);
  if (system && who.enforce) {
    // Every type named in _type needs a search grant without a query
    // restriction (403 otherwise); without _type, the types the token may
    // search. A patient limit on any type narrows the whole search to that
    // patient's compartment, so no type shows more than its grant allows.
    bool named = query.find("_type=") != std::string::npos;
    std::vector<std::string> allowed;
    for (const std::string& t : q->types) {
      Grant g;
      Status st = Authorize(who, auth::Interaction::kSearch, t, g);
      if (st.ok() && !g.query.empty()) {
        st = PermissionDeniedError("a system-level search cannot apply the scope's search restriction on " + t);
      }
      if (!st.ok()) {
        if (named) return SendError(res, FromStatus(st));
        continue;
      }
      if (g.patient) grant.patient = g.patient;
      allowed.push_back(t);
    }
    if (allowed.empty()) {
      return SendError(res, FromStatus(PermissionDeniedError("the access token's scopes allow no search")));
    }
    q->types = std::move(allowed);
  }
  search::SearchOptions so;
  if (who.enforce) {
    // The grant narrows the search itself, so matches, totals and paging
    // never see anything outside it.
    if (grant.patient) q->compartment = *grant.patient;
    if (!grant.query.empty()) {
      auto restriction = search::ParseSearchQuery(type, grant.query, popts);
      if (!restriction.ok() || !restriction->unknown.empty()) {
        return SendError(res, FromStatus(PermissionDeniedError("the scope's search restriction cannot be applied to " +
                                                               std::string(type))));
      }
      for (auto& c : restriction->criteria) q->criteria.push_back(std::move(c));
    }
    // Included resources: only types the token may read without a search
    // restriction, and only inside the same compartment.
    so.include_compartment = grant.patient;
    so.include_type_allowed = [&who, &grant](std::string_view t) {
      Grant ig;
      if (!Authorize(who, auth::Interaction::kRead, t, ig).ok() || !ig.query.empty()) return false;
      return !ig.patient || grant.patient;
    };
  }
  bool strict = req.Header("Prefer").find("handling=strict") != std::string_view::npos;
  OperationOutcome ignored;
  for (const auto& [name, why] : q->unknown) {
    ignored.Add(strict ? Severity::kError : Severity::kWarning, IssueType::kNotSupported, name,
                "search parameter '" + name + "' was ignored: " + why);
  }
  if (strict && !ignored.issues.empty()) {
    HttpError e;
    e.status = 400;
    e.outcome = std::move(ignored);
    return SendError(res, e);
  }
  so.default_count = opt_.default_page_size;
  auto r = search::ExecuteSearch(store_, *q, so);
  if (!r.ok()) {
    int status = r.status().code() == StatusCode::kResourceExhausted ? 400 : HttpStatusFor(r.status().code());
    return SendError(res, HttpError::Of(status, IssueTypeFor(r.status().code()), r.status().message()));
  }
  std::string base = opt_.base_url + "/";
  if (!compartment.empty()) base += "Patient/" + std::string(compartment) + "/";
  base += std::string(type);
  if (system) base.pop_back();
  // Links keep the request's parameters (POST _search: its form body) minus any cursor.
  std::string kept;
  if (auto params = ParseQuery(query)) kept = QueryWithout(*params, "_cursor");
  std::string out = R"({"resourceType":"Bundle","type":"searchset")";
  if (r->total) out += ",\"total\":" + std::to_string(*r->total);
  out += R"(,"link":[)";
  std::string with_cursor = base + kept + (kept.empty() ? "?" : "&") + "_cursor=";
  AppendLink(out, "self", q->cursor ? with_cursor + *q->cursor : base + kept);
  if (r->next_cursor) {
    out += ",";
    AppendLink(out, "next", with_cursor + *r->next_cursor);
  }
  if (r->previous_cursor) {
    out += ",";
    AppendLink(out, "previous", with_cursor + *r->previous_cursor);
  }
  out += ",";
  AppendLink(out, "first", base + kept);
  out += "],\"entry\":[";
  bool first = true;
  auto entry = [&](const store::SearchHit& h, std::string_view mode) {
    if (!first) out += ",";
    first = false;
    out += "{\"fullUrl\":";
    json::WriteString(opt_.base_url + "/" + h.type + "/" + h.id, out);
    out += ",\"resource\":";
    out += ShapeBody(h.body, q->summary, q->elements);  // stored bytes unless shaped
    out += R"(,"search":{"mode":")";
    out += mode;
    out += "\"}}";
  };
  bool count_only = q->summary && *q->summary == search::Summary::kCount;
  if (t_note != nullptr) {
    t_note->search = true;
    t_note->resource_type = std::string(type);
    if (q->compartment) t_note->Patient(*q->compartment);
    if (!count_only) {
      for (const auto& h : r->matches) t_note->Entity(h.type, h.id, h.compartment);
      for (const auto& h : r->included) t_note->Entity(h.type, h.id, h.compartment);
    }
  }
  if (!count_only) {
    for (const auto& h : r->matches) entry(h, "match");
    for (const auto& h : r->included) entry(h, "include");
  }
  if (!ignored.issues.empty()) {
    if (!first) out += ",";
    out += "{\"resource\":" + ignored.ToJson() + R"(,"search":{"mode":"outcome"}})";
  }
  out += "]}";
  res.status = 200;
  res.SetHeader("Content-Type", std::string(kFhirJson));
  res.body = std::move(out);
}

namespace {

std::string StatusLine(int status) {
  switch (status) {
    case 200: return "200 OK";
    case 201: return "201 Created";
    case 204: return "204 No Content";
    case 304: return "304 Not Modified";
    case 400: return "400 Bad Request";
    case 404: return "404 Not Found";
    case 409: return "409 Conflict";
    case 410: return "410 Gone";
    case 412: return "412 Precondition Failed";
    case 422: return "422 Unprocessable Entity";
    default: return std::to_string(status);
  }
}

std::optional<std::string> DecodeBase64(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=' || c == ' ' || c == '\n' || c == '\r') continue;
    int v = val(c);
    if (v < 0) return std::nullopt;
    buf = (buf << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  return out;
}

// Replaces Reference.reference strings found in `map` everywhere under `v`;
// copies only the paths that change.
json::Value RewriteReferences(json::Document& doc, const json::Value& v,
                              const std::unordered_map<std::string, std::string>& map, bool* changed) {
  if (v.is_array()) {
    std::vector<json::Value> items;
    bool any = false;
    for (const json::Value& item : v.items()) {
      bool c = false;
      items.push_back(RewriteReferences(doc, item, map, &c));
      any |= c;
    }
    if (!any) return v;
    *changed = true;
    return doc.MakeArray(items);
  }
  if (!v.is_object()) return v;
  std::vector<json::Member> members;
  bool any = false;
  for (const json::Member& m : v.members()) {
    json::Member copy = m;
    if (m.name() == "reference" && m.value.is_string()) {
      if (auto it = map.find(std::string(m.value.as_string())); it != map.end()) {
        copy.value = doc.MakeString(it->second);
        any = true;
      }
    } else {
      bool c = false;
      copy.value = RewriteReferences(doc, m.value, map, &c);
      any |= c;
    }
    members.push_back(copy);
  }
  if (!any) return v;
  *changed = true;
  return doc.MakeObject(members);
}

// Collects conditional references ("Type?criteria") under `v`.
void CollectConditionalReferences(const json::Value& v, std::set<std::string>& out) {
  if (v.is_array()) {
    for (const json::Value& item : v.items()) CollectConditionalReferences(item, out);
  } else if (v.is_object()) {
    for (const json::Member& m : v.members()) {
      if (m.name() == "reference" && m.value.is_string()) {
        std::string_view r = m.value.as_string();
        size_t q = r.find('?');
        if (q != std::string_view::npos && r.find('/') > q && fhir::FindResourceType(r.substr(0, q))) {
          out.insert(std::string(r));
        }
      } else {
        CollectConditionalReferences(m.value, out);
      }
    }
  }
}

struct EntryRequest {
  std::string method;
  std::string type;
  std::string id;
  std::string vid;
  std::string criteria;  // for conditional operations (after '?')
  std::string if_none_exist;
  std::string if_match;
  std::string full_url;
  const json::Value* resource = nullptr;
  int order = 0;  // DELETE 0, POST 1, PUT/PATCH 2, GET/HEAD 3
};

}  // namespace

void FhirService::Impl::ProcessBundle(const auth::Access& who, const http::Request& req, http::Response& res) const {
  Body bundle;
  if (auto e = ParseResourceBody(req.body, "Bundle", bundle)) return SendError(res, *e);
  const json::Value* type_v = bundle.root.Find("type");
  std::string_view btype = type_v ? type_v->as_string() : "";
  bool transaction = btype == "transaction";
  if (!transaction && btype != "batch") {
    return SendError(
        res, HttpError::Of(400, IssueType::kInvalid, "POST to the base URL takes a Bundle of type batch or transaction",
                           "Bundle.type"));
  }
  const json::Value* entries_v = bundle.root.Find("entry");
  std::span<const json::Value> entries = entries_v ? entries_v->items() : std::span<const json::Value>();
  if (entries.size() > opt_.max_bundle_entries) {
    return SendError(res, HttpError::Of(413, IssueType::kTooCostly,
                                        "the Bundle has " + std::to_string(entries.size()) + " entries; the limit is " +
                                            std::to_string(opt_.max_bundle_entries)));
  }
  Prefer prefer = ParsePrefer(req.Header("Prefer"));

  // Parse every entry's request.
  std::vector<EntryRequest> reqs(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const json::Value& e = entries[i];
    std::string where = "Bundle.entry[" + std::to_string(i) + "]";
    EntryRequest& r = reqs[i];
    const json::Value* request = e.Find("request");
    if (!request || !request->is_object()) {
      return SendError(res, HttpError::Of(400, IssueType::kRequired, "entry without request", where + ".request"));
    }
    if (const json::Value* m = request->Find("method")) r.method = m->as_string();
    std::string url(request->Find("url") ? request->Find("url")->as_string() : "");
    if (url.starts_with(opt_.base_url + "/")) url = url.substr(opt_.base_url.size() + 1);
    if (!url.empty() && url[0] == '/') url = url.substr(1);
    if (const json::Value* v = request->Find("ifNoneExist")) r.if_none_exist = v->as_string();
    if (const json::Value* v = request->Find("ifMatch")) r.if_match = v->as_string();
    if (const json::Value* v = e.Find("fullUrl")) r.full_url = v->as_string();
    r.resource = e.Find("resource");
    size_t q = url.find('?');
    if (q != std::string::npos) {
      r.criteria = url.substr(q + 1);
      url = url.substr(0, q);
    }
    std::vector<std::string> seg;
    for (size_t s = 0; s <= url.size();) {
      size_t slash = url.find('/', s);
      if (slash == std::string::npos) slash = url.size();
      seg.push_back(url.substr(s, slash - s));
      s = slash + 1;
    }
    if (seg.empty() || !fhir::FindResourceType(seg[0])) {
      return SendError(
          res, HttpError::Of(400, IssueType::kInvalid, "entry request url '" + url + "' does not name a resource type",
                             where + ".request.url"));
    }
    r.type = seg[0];
    if (seg.size() >= 2) r.id = seg[1];
    if (seg.size() == 4 && seg[2] == "_history") r.vid = seg[3];
    if (r.method == "DELETE") {
      r.order = 0;
    } else if (r.method == "POST") {
      r.order = 1;
    } else if (r.method == "PUT" || r.method == "PATCH") {
      r.order = 2;
    } else if (r.method == "GET" || r.method == "HEAD") {
      r.order = 3;
    } else {
      return SendError(
          res, HttpError::Of(400, IssueType::kInvalid, "unknown method '" + r.method + "'", where + ".request.method"));
    }
    if ((r.method == "POST" || r.method == "PUT") && (!r.resource || !r.resource->is_object())) {
      return SendError(
          res, HttpError::Of(400, IssueType::kRequired, r.method + " entry without a resource", where + ".resource"));
    }
  }

  std::vector<Answer> answers(entries.size());
  if (!transaction) {
    // Batch: each entry on its own.
    for (size_t i = 0; i < reqs.size(); ++i) {
      const EntryRequest& r = reqs[i];
      std::string text = r.resource ? json::ToString(*r.resource) : "";
      if (r.method == "POST") {
        answers[i] = Create(who, r.type, text, r.if_none_exist, Prefer::kRepresentation);
      } else if (r.method == "PUT") {
        answers[i] = r.id.empty() ? ConditionalUpdate(who, r.type, r.criteria, text, Prefer::kRepresentation)
                                  : Update(who, r.type, r.id, text, r.if_match, Prefer::kRepresentation);
      } else if (r.method == "DELETE") {
        answers[i] = r.id.empty() ? ConditionalDelete(who, r.type, r.criteria) : Delete(who, r.type, r.id);
      } else if (r.method == "PATCH") {
        const json::Value* rt = r.resource ? r.resource->Find("resourceType") : nullptr;
        if (rt && rt->as_string() == "Parameters") {
          answers[i] =
              Patch(who, r.type, r.id, r.criteria, text, "application/fhir+json", r.if_match, Prefer::kRepresentation);
        } else {
          const json::Value* data = r.resource ? r.resource->Find("data") : nullptr;
          auto patch_text = data ? DecodeBase64(data->as_string()) : std::nullopt;
          answers[i] = patch_text ? Patch(who, r.type, r.id, r.criteria, *patch_text, "application/json-patch+json",
                                          r.if_match, Prefer::kRepresentation)
                                  : ErrorAnswer(HttpError::Of(400, IssueType::kInvalid,
                                                              "PATCH entries hold a Parameters resource or a Binary "
                                                              "with a base64 JSON Patch"));
        }
      } else {
        http::Request get;
        get.method = "GET";
        http::Response got;
        if (!r.id.empty() && r.vid.empty()) {
          Read(who, r.type, r.id, get, got);
        } else if (!r.vid.empty()) {
          VRead(who, r.type, r.id, r.vid, got);
        } else {
          get.query = r.criteria;
          Search(who, r.type, get, got);
        }
        answers[i].status = got.status;
        answers[i].body = got.body;
        if (auto et = got.Header("ETag"); !et.empty()) answers[i].version = ParseETag(et);
      }
    }
  } else {
    // Transaction: validate everything first, then one atomic store transaction.
    std::vector<Body> bodies(entries.size());
    for (size_t i = 0; i < reqs.size(); ++i) {
      const EntryRequest& r = reqs[i];
      if (!r.resource) continue;
      std::string where = "Bundle.entry[" + std::to_string(i) + "].resource";
      if (r.method == "PATCH") continue;
      const json::Value* rt = r.resource->Find("resourceType");
      if (!rt || rt->as_string() != r.type) {
        return SendError(res,
                         HttpError::Of(400, IssueType::kInvalid, "resourceType does not match the request url", where));
      }
      if (r.type == "SearchParameter") {
        if (Status st = search::CheckSearchParameter(*r.resource); !st.ok()) {
          return SendError(res, HttpError::Of(422, IssueType::kInvalid, st.message(), where));
        }
      }
      OperationOutcome o = fhir::Validate(*r.resource, fhirpath::FullValidation());
      if (o.HasErrors()) {
        for (auto& issue : o.issues) issue.location = where + (issue.location.empty() ? "" : "." + issue.location);
        HttpError e;
        e.status = 422;
        e.outcome = std::move(o);
        return SendError(res, e);
      }
    }
    std::vector<size_t> order(reqs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return reqs[a].order < reqs[b].order; });
    std::vector<std::string> new_ids(reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i) {
      if (reqs[i].method == "POST") new_ids[i] = NewUuid();
    }
    size_t failed_entry = 0;
    Status st = store_.Transact([&](store::Transaction& tx) -> Status {
      failed_entry = 0;
      std::unordered_map<std::string, std::string> refs;  // fullUrl or conditional -> Type/id
      std::vector<bool> skip(reqs.size(), false);
      for (size_t i = 0; i < reqs.size(); ++i) answers[i] = Answer();
      // Conditional creates: an existing match replaces the new resource.
      for (size_t i = 0; i < reqs.size(); ++i) {
        const EntryRequest& r = reqs[i];
        std::string id = new_ids[i];
        if (r.method == "POST" && !r.if_none_exist.empty()) {
          failed_entry = i;
          ASSIGN_OR_RETURN(auto m, FindMatches(tx, who, r.type, r.if_none_exist, 2));
          if (m.size() > 1) return FailedPreconditionError("ifNoneExist matches more than one " + r.type);
          if (m.size() == 1) {
            id = m[0].id;
            skip[i] = true;
            ASSIGN_OR_RETURN(store::ResourceVersion cur, tx.Read(r.type, id, true));
            answers[i].status = 200;
            answers[i].version = cur.version;
            answers[i].last_modified = cur.last_updated;
            answers[i].location = opt_.base_url + "/" + r.type + "/" + id + "/_history/" + std::to_string(cur.version);
            answers[i].body = cur.body;
          }
        }
        if (r.method == "POST" || r.method == "PUT") {
          std::string target = r.type + "/" + (r.method == "POST" ? id : r.id);
          if (!r.full_url.empty()) refs[r.full_url] = target;
        }
      }
      // Conditional references.
      std::set<std::string> conditional;
      for (const auto& r : reqs) {
        if (r.resource) CollectConditionalReferences(*r.resource, conditional);
      }
      for (const std::string& c : conditional) {
        size_t q = c.find('?');
        std::string type = c.substr(0, q);
        ASSIGN_OR_RETURN(auto m, FindMatches(tx, who, type, std::string_view(c).substr(q + 1), 2));
        if (m.size() != 1) {
          return FailedPreconditionError("conditional reference '" + c + "' matches " + std::to_string(m.size()) +
                                         " resources (exactly one is needed)");
        }
        refs[c] = type + "/" + m[0].id;
      }
      for (size_t k : order) {
        failed_entry = k;
        const EntryRequest& r = reqs[k];
        Answer& a = answers[k];
        if (skip[k]) continue;
        if (r.method == "DELETE") {
          std::string id = r.id;
          Grant grant;
          RETURN_IF_ERROR(Authorize(who, auth::Interaction::kDelete, r.type, grant));
          if (!grant.query.empty()) {
            return PermissionDeniedError("deletes under a scope with a search restriction are not supported");
          }
          if (id.empty()) {
            ASSIGN_OR_RETURN(auto m, FindMatches(tx, who, r.type, r.criteria, 2));
            if (m.size() > 1) return FailedPreconditionError("the criteria match more than one " + r.type);
            a.status = 204;
            if (m.empty()) continue;
            id = m[0].id;
          }
          auto cur = tx.Read(r.type, id);
          if (!cur.ok()) return cur.status();
          ASSIGN_OR_RETURN(bool within, Within(grant, r.type, id, cur->compartment));
          if (!within) return NotFoundError(r.type + "/" + id + " is not known");
          a.status = 204;
          if (cur->deleted) continue;
          store::ResourceDelete d{r.type, id, cur->version + 1, store_.Now()};
          ASSIGN_OR_RETURN(store::WriteResult w, tx.Delete(d));
          if (r.type == "SearchParameter") search::Extractor::Default().Unregister(id);
          a.version = w.version;
        } else if (r.method == "POST" || r.method == "PUT") {
          Body& body = bodies[k];
          // Re-parse the entry so a re-run of this callback starts clean.
          ASSIGN_OR_RETURN(body.doc, json::Document::Parse(json::ToString(*r.resource)));
          bool changed = false;
          body.root = RewriteReferences(body.doc, body.doc.root(), refs, &changed);
          std::string id = r.method == "POST" ? new_ids[k] : r.id;
          std::optional<int64_t> if_match;
          if (!r.if_match.empty()) {
            if_match = ParseETag(r.if_match);
            if (!if_match) return InvalidArgumentError("malformed ifMatch");
          }
          if (r.method == "PUT" && id.empty()) {
            ASSIGN_OR_RETURN(auto m, FindMatches(tx, who, r.type, r.criteria, 2));
            if (m.size() > 1) return FailedPreconditionError("the criteria match more than one " + r.type);
            id = m.empty() ? NewUuid() : m[0].id;
          }
          if (r.method == "PUT") {
            const json::Value* bid = body.root.Find("id");
            if (bid && bid->as_string() != id)
              return InvalidArgumentError("resource id does not match the request url");
          }
          RETURN_IF_ERROR(WriteVersion(tx, who, r.type, id, body, if_match, a));
        } else if (r.method == "PATCH") {
          // The entry's resource is either a Parameters (FHIRPath Patch) or a
          // Binary holding a JSON Patch.
          const json::Value* rt = r.resource ? r.resource->Find("resourceType") : nullptr;
          bool fhirpath_entry = rt && rt->as_string() == "Parameters";
          json::Document patch;
          if (!fhirpath_entry) {
            const json::Value* data = r.resource ? r.resource->Find("data") : nullptr;
            const json::Value* ct = r.resource ? r.resource->Find("contentType") : nullptr;
            if (!data || !ct || ct->as_string() != "application/json-patch+json") {
              return InvalidArgumentError(
                  "PATCH entries hold a Parameters resource (FHIRPath Patch) or a Binary with "
                  "application/json-patch+json");
            }
            auto patch_text = DecodeBase64(data->as_string());
            if (!patch_text) return InvalidArgumentError("PATCH entry: invalid base64");
            ASSIGN_OR_RETURN(patch, json::Document::Parse(*patch_text));
          }
          ASSIGN_OR_RETURN(store::ResourceVersion cur, tx.Read(r.type, r.id, true));
          if (cur.deleted) return NotFoundError(r.type + "/" + r.id + " is deleted");
          if (who.enforce) {
            Grant g;
            RETURN_IF_ERROR(Authorize(who, auth::Interaction::kRead, r.type, g));
            ASSIGN_OR_RETURN(bool within, Within(g, r.type, r.id, cur.compartment));
            if (!within) return NotFoundError(r.type + "/" + r.id + " is not known");
          }
          Body body;
          ASSIGN_OR_RETURN(body.doc, json::Document::Parse(cur.body));
          if (fhirpath_entry) {
            ASSIGN_OR_RETURN(body.root, ApplyFhirPathPatch(body.doc, body.doc.root(), *r.resource));
          } else {
            ASSIGN_OR_RETURN(body.root, json::ApplyJsonPatch(body.doc, body.doc.root(), patch.root()));
          }
          if (fhir::Validate(body.root, fhirpath::FullValidation()).HasErrors()) {
            return InvalidArgumentError("the patched resource is invalid");
          }
          std::optional<int64_t> if_match;
          if (!r.if_match.empty()) if_match = ParseETag(r.if_match);
          RETURN_IF_ERROR(WriteVersion(tx, who, r.type, r.id, body, if_match, a));
        } else {
          if (r.id.empty()) return UnimplementedError("search GET entries in a transaction are not supported yet");
          Grant grant;
          RETURN_IF_ERROR(Authorize(who, auth::Interaction::kRead, r.type, grant));
          auto cur = tx.Read(r.type, r.id, true);
          if (cur.ok() && who.enforce) {
            ASSIGN_OR_RETURN(bool within, Within(grant, r.type, r.id, cur->compartment));
            if (!within) cur = NotFoundError(r.type + "/" + r.id + " is not known");
          }
          if (!cur.ok()) return cur.status();
          if (cur->deleted) {
            a.status = 410;
          } else {
            a.status = 200;
            a.version = cur->version;
            a.last_modified = cur->last_updated;
            a.body = cur->body;
          }
        }
      }
      return Status::Ok();
    });
    if (!st.ok()) {
      HttpError e = FromStatus(st);
      e.outcome.issues[0].location = "Bundle.entry[" + std::to_string(failed_entry) + "]";
      e.outcome.issues[0].diagnostics = "transaction failed at entry " + std::to_string(failed_entry) +
                                        " (nothing was stored): " + e.outcome.issues[0].diagnostics;
      return SendError(res, e);
    }
  }

  Note(transaction ? "transaction" : "batch");
  for (const Answer& a : answers) NoteWritten(a);
  std::string out = R"({"resourceType":"Bundle","type":")";
  out += transaction ? "transaction-response" : "batch-response";
  out += R"(","entry":[)";
  for (size_t i = 0; i < answers.size(); ++i) {
    const Answer& a = answers[i];
    if (i) out += ",";
    out += "{";
    bool resource = !a.body.empty() && !a.body_is_outcome && prefer != Prefer::kMinimal;
    if (resource) {
      out += "\"resource\":";
      out += a.body;
      out += ",";
    }
    out += "\"response\":{\"status\":";
    json::WriteString(StatusLine(a.status), out);
    if (!a.location.empty()) {
      out += ",\"location\":";
      json::WriteString(a.location, out);
    }
    if (a.version) {
      out += ",\"etag\":";
      json::WriteString(ETag(*a.version), out);
    }
    if (a.last_modified) {
      out += ",\"lastModified\":";
      json::WriteString(FormatInstant(*a.last_modified), out);
    }
    if (a.body_is_outcome && !a.body.empty()) {
      out += ",\"outcome\":";
      out += a.body;
    }
    out += "}}";
  }
  out += "]}";
  res.status = 200;
  res.SetHeader("Content-Type", std::string(kFhirJson));
  res.body = std::move(out);
}

// Patient/{id}/$everything: the patient and every resource in their
// compartment, as one searchset Bundle. _type limits the types, _since the
// last update. The whole record is returned (up to kEverythingLimit
// resources; beyond that the answer is 413 and Bulk Data export is the tool).
void FhirService::Impl::Everything(const auth::Access& who, std::string_view id, const http::Request& req,
                                   http::Response& res) const {
  Grant grant;
  if (Status st = Authorize(who, auth::Interaction::kRead, "Patient", grant); !st.ok()) {
    return SendError(res, FromStatus(st));
  }
  constexpr size_t kEverythingLimit = 10000;
  auto params = ParseQuery(req.query);
  if (!params) return SendError(res, HttpError::Of(400, IssueType::kInvalid, "malformed query string"));
  std::vector<std::string> types;
  std::string since;
  for (const auto& [k, v] : *params) {
    if (k == "_type") {
      size_t start = 0;
      for (;;) {
        size_t comma = v.find(',', start);
        std::string t = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!fhir::FindResourceType(t)) {
          return SendError(res,
                           HttpError::Of(400, IssueType::kValue, "_type: unknown resource type '" + t + "'", "_type"));
        }
        types.push_back(t);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (k == "_since") {
      if (!ParseDateTimeRange(v)) {
        return SendError(res, HttpError::Of(400, IssueType::kValue, "_since must be an instant", "_since"));
      }
      since = v;
    } else if (k != "_format" && k != "_count") {
      return SendError(res, HttpError::Of(400, IssueType::kNotSupported,
                                          "unknown $everything parameter '" + k + "' (supported: _type, _since)"));
    }
  }
  auto patient = store_.Read("Patient", id);
  if (patient.ok() && who.enforce) {
    auto within = Within(grant, "Patient", id, patient->compartment);
    if (!within.ok() || !*within) patient = NotFoundError("outside the grant");
  }
  if (!patient.ok() || patient->deleted) {
    return SendError(res, HttpError::Of(404, IssueType::kNotSupported, "Patient/" + std::string(id) + " is not known"));
  }
  auto wanted = [&](std::string_view t) {
    return types.empty() || std::find(types.begin(), types.end(), t) != types.end();
  };
  std::vector<store::SearchHit> hits;
  if (wanted("Patient") && (since.empty() || patient->last_updated >= ParseDateTimeRange(since)->lo)) {
    store::SearchHit h;
    h.type = "Patient";
    h.id = std::string(id);
    h.body = patient->body;
    hits.push_back(std::move(h));
  }
  search::ParseOptions popts;
  popts.base_url = opt_.base_url;
  for (std::string_view type : fhir::ResourceTypeNames()) {
    if (type == "Patient" || fhir::PatientCompartmentParams(type).empty() || !wanted(type)) continue;
    // Types the token may not search are left out of the record; a scope's
    // search restriction narrows its type.
    Grant tg;
    if (!Authorize(who, auth::Interaction::kSearch, type, tg).ok()) continue;
    if (tg.patient && *tg.patient != id) continue;
    std::string query = "_count=1000";
    if (!tg.query.empty()) query += "&" + tg.query;
    if (!since.empty()) query += "&_lastUpdated=ge" + PercentEncode(since);
    auto q = search::ParseSearchQuery(type, query, popts);
    if (!q.ok()) return SendError(res, FromStatus(q.status()));
    if (!tg.query.empty() && !q->unknown.empty()) continue;
    q->compartment = std::string(id);
    for (;;) {
      auto r = search::ExecuteSearch(store_, *q);
      if (!r.ok()) return SendError(res, FromStatus(r.status()));
      for (auto& h : r->matches) hits.push_back(std::move(h));
      if (hits.size() > kEverythingLimit) {
        return SendError(res, HttpError::Of(413, IssueType::kTooCostly,
                                            "the record holds more than " + std::to_string(kEverythingLimit) +
                                                " resources; use Bulk Data $export"));
      }
      if (!r->next_cursor) break;
      q->cursor = *r->next_cursor;
    }
  }
  std::string out =
      R"({"resourceType":"Bundle","type":"searchset","total":)" + std::to_string(hits.size()) + R"(,"link":[)";
  AppendLink(
      out, "self",
      opt_.base_url + "/Patient/" + std::string(id) + "/$everything" + (req.query.empty() ? "" : "?" + req.query));
  out += "],\"entry\":[";
  for (size_t i = 0; i < hits.size(); ++i) {
    NoteEntity(hits[i].type, hits[i].id, id);
    if (i) out += ",";
    out += "{\"fullUrl\":";
    json::WriteString(opt_.base_url + "/" + hits[i].type + "/" + hits[i].id, out);
    out += ",\"resource\":" + hits[i].body + R"(,"search":{"mode":"match"}})";
  }
  out += "]}";
  res.status = 200;
  res.SetHeader("Content-Type", std::string(kFhirJson));
  res.body = std::move(out);
}

void FhirService::Impl::Handle(const http::Request& req, http::Response& res, const auth::Access& who) const {
  std::string_view path = req.path;
  if (!path.starts_with(opt_.base_path)) {
    return SendError(res, HttpError::Of(404, IssueType::kNotSupported, "not a FHIR URL"));
  }
  if (opt_.exporter && opt_.exporter->Handles(req)) {
    if (who.enforce && req.method == "GET" && req.path.ends_with("/$export")) {
      // Bulk export reads whole types: every type asked for (every type
      // when _type is absent) needs an unrestricted search grant, i.e.
      // system/ or user/ scopes without a patient or query limit.
      std::vector<std::string> types;
      auto qp = ParseQuery(req.query);
      if (!qp) return SendError(res, HttpError::Of(400, IssueType::kInvalid, "malformed query string"));
      if (auto t = FirstParam(*qp, "_type")) {
        std::string_view list = *t;
        for (size_t start = 0; start <= list.size();) {
          size_t comma = std::min(list.find(',', start), list.size());
          types.emplace_back(list.substr(start, comma - start));
          start = comma + 1;
        }
      } else {
        for (std::string_view t : fhir::ResourceTypeNames()) types.emplace_back(t);
      }
      for (const std::string& t : types) {
        if (!fhir::FindResourceType(t)) continue;  // the exporter answers 400
        Grant g;
        Status st = Authorize(who, auth::Interaction::kSearch, t, g);
        if (st.ok() && (g.patient || !g.query.empty())) {
          st = PermissionDeniedError("bulk export needs system/ or user/ scopes without restrictions (" + t + ")");
        }
        if (!st.ok()) return SendError(res, FromStatus(st));
      }
    }
    return opt_.exporter->Handle(req, res, who.client_id);
  }
  path.remove_prefix(opt_.base_path.size());
  if (!path.empty() && path[0] != '/')
    return SendError(res, HttpError::Of(404, IssueType::kNotSupported, "not a FHIR URL"));
  std::vector<std::string> seg;
  seg.reserve(4);  // most FHIR paths have at most four segments
  while (!path.empty()) {
    path.remove_prefix(1);  // '/'
    size_t slash = path.find('/');
    std::string_view s = path.substr(0, slash);
    auto decoded = PercentDecode(s, false);
    if (!decoded) return SendError(res, HttpError::Of(400, IssueType::kInvalid, "malformed URL path"));
    if (!decoded->empty()) seg.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  // JSON only.
  auto params = ParseQuery(req.query);
  if (!params) return SendError(res, HttpError::Of(400, IssueType::kInvalid, "malformed query string"));
  if (auto f = FirstParam(*params, "_format"); f && f->find("json") == std::string_view::npos) {
    return SendError(res, HttpError::Of(406, IssueType::kNotSupported, "only JSON is supported (_format=json)"));
  }
  if (auto accept = req.Header("Accept"); !accept.empty() && accept.find("json") == std::string_view::npos &&
                                          accept.find("*/*") == std::string_view::npos) {
    return SendError(res, HttpError::Of(406, IssueType::kNotSupported, "only application/fhir+json is supported"));
  }
  const std::string& m = req.method;
  if ((m == "POST" || m == "PUT") && !IsJsonContentType(req.Header("Content-Type")) &&
      !(seg.size() >= 2 && seg.back().starts_with("$")) && !(seg.size() == 2 && seg[1] == "_search") &&
      !(seg.size() == 1 && seg[0] == "_search")) {
    return SendError(res, HttpError::Of(415, IssueType::kNotSupported, "send resources as application/fhir+json"));
  }
  Prefer prefer = ParsePrefer(req.Header("Prefer"));
  auto bad_method = [&] {
    SendError(res, HttpError::Of(405, IssueType::kNotSupported, "method " + m + " is not allowed here"));
  };
  auto unknown_type = [&](const std::string& t) {
    SendError(res, HttpError::Of(404, IssueType::kNotSupported, "unknown resource type '" + t + "'"));
  };

  if (seg.empty()) {
    if (m == "POST") return ProcessBundle(who, req, res);
    if (m == "GET") return Search(who, "", req, res);
    return bad_method();
  }
  if (seg.size() == 1 && seg[0] == "_search") {
    if (m != "POST") return bad_method();
    return Search(who, "", req, res);
  }
  if (seg[0] == "metadata") {
    if (m != "GET") return bad_method();
    res.status = 200;
    res.SetHeader("Content-Type", std::string(kFhirJson));
    res.body = CapabilityStatementJson(opt_.base_url, opt_.smart ? &*opt_.smart : nullptr);
    return;
  }
  if (seg[0] == "_history") {
    if (m != "GET" || seg.size() != 1) return bad_method();
    return History(who, "", "", req, res);
  }
  const std::string& type = seg[0];
  if (!fhir::FindResourceType(type)) return unknown_type(type);
  if (type == "AuditEvent" && opt_.audit != nullptr) {
    if (seg.size() == 1 && m == "GET") return AuditSearch(who, req, res);
    return SendError(res, HttpError::Of(405, IssueType::kNotSupported,
                                        "the audit trail is append-only and searched with GET /AuditEvent?..."));
  }
  if (seg.size() == 1) {
    if (m == "POST") return Send(res, Create(who, type, req.body, req.Header("If-None-Exist"), prefer));
    if (m == "GET") return Search(who, type, req, res);
    if (m == "PUT" && !req.query.empty()) return Send(res, ConditionalUpdate(who, type, req.query, req.body, prefer));
    if (m == "DELETE" && !req.query.empty()) return Send(res, ConditionalDelete(who, type, req.query));
    if (m == "PATCH" && !req.query.empty()) {
      return Send(
          res, Patch(who, type, "", req.query, req.body, req.Header("Content-Type"), req.Header("If-Match"), prefer));
    }
    return bad_method();
  }
  const std::string& second = seg[1];
  if (seg.size() == 2 && second == "_history") {
    if (m != "GET") return bad_method();
    return History(who, type, "", req, res);
  }
  if (seg.size() == 2 && second == "_search") {
    if (m != "POST") return bad_method();
    return Search(who, type, req, res);
  }
  if (seg.size() == 2 && second == "$validate") {
    if (m != "POST") return bad_method();
    return Validate(who, type, "", req, res);
  }
  if (!fhir::CheckPrimitive(fhir::PrimitiveCheck::kId, second).empty()) {
    return SendError(res, HttpError::Of(400, IssueType::kValue, "invalid resource id '" + second + "'"));
  }
  if (seg.size() == 2) {
    if (m == "GET" || m == "HEAD") {
      Read(who, type, second, req, res);
      if (m == "HEAD") res.body.clear();
      return;
    }
    if (m == "PUT") return Send(res, Update(who, type, second, req.body, req.Header("If-Match"), prefer));
    if (m == "DELETE") return Send(res, Delete(who, type, second));
    if (m == "PATCH") {
      return Send(res,
                  Patch(who, type, second, "", req.body, req.Header("Content-Type"), req.Header("If-Match"), prefer));
    }
    return bad_method();
  }
  if (seg.size() == 3 && type == "Patient" && seg[2] == "$everything") {
    if (m != "GET") return bad_method();
    return Everything(who, second, req, res);
  }
  if (seg.size() == 3 && type == "Patient" && fhir::FindResourceType(seg[2])) {
    // Compartment search: Patient/{id}/Type?...
    if (m != "GET") return bad_method();
    return Search(who, seg[2], req, res, second);
  }
  if (seg.size() == 3 && seg[2] == "$validate") {
    if (m != "POST" && m != "GET") return bad_method();
    return Validate(who, type, second, req, res);
  }
  if (seg[2] == "_history") {
    if (m != "GET") return bad_method();
    if (seg.size() == 3) return History(who, type, second, req, res);
    if (seg.size() == 4) return VRead(who, type, second, seg[3], res);
  }
  SendError(res, HttpError::Of(404, IssueType::kNotSupported, "no such FHIR endpoint"));
}

bool FhirService::Impl::IsPlainWrite(const http::Request& req, std::string_view& type, std::string_view& id) const {
  if (req.method != "POST" && req.method != "PUT") return false;
  std::string_view path = req.path;
  if (!req.query.empty() || !req.Header("If-None-Exist").empty() || !path.starts_with(opt_.base_path) ||
      !path.substr(opt_.base_path.size()).starts_with("/") || !IsJsonContentType(req.Header("Content-Type")) ||
      req.Header("Accept").find("xml") != std::string_view::npos) {
    return false;
  }
  std::string_view rest = path.substr(opt_.base_path.size() + 1);
  size_t slash = rest.find('/');
  type = rest.substr(0, slash);
  id = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  bool shape_ok = req.method == "POST" ? id.empty() : (!id.empty() && id.find('/') == std::string_view::npos);
  return shape_ok && fhir::FindResourceType(type) != nullptr &&
         (id.empty() || fhir::CheckPrimitive(fhir::PrimitiveCheck::kId, id).empty());
}

void FhirService::Impl::HandleAsync(const http::Request& req, http::Response& res, const auth::Access& who,
                                    std::function<void()> done) const {
  std::string_view type_view, id_view;
  if (!IsPlainWrite(req, type_view, id_view)) {
    Handle(req, res, who);
    done();
    return;
  }
  std::string type(type_view), id(id_view);
  struct State {
    Body body;
    PreparedWrite prepared;
    Answer answer;
    std::string type, id;
    std::optional<int64_t> if_match;
    Prefer prefer;
    auth::Access who;  // a copy: the caller's may be gone when the commit runs
  };
  auto state = std::make_shared<State>();
  state->type = type;
  state->prefer = ParsePrefer(req.Header("Prefer"));
  if (who.enforce) state->who = who;
  auto fail = [&](const HttpError& e) {
    Send(res, ErrorAnswer(e));
    done();
  };
  if (Status st = Impl::MayWrite(who, type, req.method == "PUT"); !st.ok()) return fail(FromStatus(st));
  if (auto e = ParseResourceBody(req.body, type, state->body)) return fail(*e);
  if (req.method == "PUT") {
    const json::Value* body_id = state->body.root.Find("id");
    if (!body_id || !body_id->is_string()) {
      return fail(HttpError::Of(400, IssueType::kRequired, "an update must carry the resource id", "id"));
    }
    if (body_id->as_string() != id) {
      return fail(HttpError::Of(
          400, IssueType::kInvalid,
          "the resource id '" + std::string(body_id->as_string()) + "' does not match the URL's id '" + id + "'",
          "id"));
    }
    if (auto im = req.Header("If-Match"); !im.empty()) {
      state->if_match = ParseETag(im);
      if (!state->if_match) return fail(HttpError::Of(400, IssueType::kInvalid, "malformed If-Match (use W/\"n\")"));
    }
    state->id = id;
  } else {
    state->id = NewUuid();
  }
  if (auto e = CheckValid(state->body.root)) return fail(*e);
  if (Status st = Prepare(type, state->id, state->body, state->prepared); !st.ok()) return fail(FromStatus(st));
  store_.TransactAsync(
      [this, state](store::Transaction& tx) {
        state->answer = Answer();
        return Commit(tx, state->who, state->type, state->id, state->prepared, state->if_match, state->answer);
      },
      [this, state, &res, note = t_note, done = std::move(done)](Status st) {
        // This may run on another thread: the request's audit note goes with it.
        AuditNote* saved = t_note;
        t_note = note;
        if (!st.ok()) {
          Send(res, ErrorAnswer(FromStatus(st)));
        } else {
          Send(res, Finish(std::move(state->answer), state->prefer));
        }
        t_note = saved;
        done();
      });
}

void FhirService::Impl::AuditSearch(const auth::Access& who, const http::Request& req, http::Response& res) const {
  Note("search-type");
  Grant grant;
  if (Status st = Authorize(who, auth::Interaction::kSearch, "AuditEvent", grant); !st.ok()) {
    return SendError(res, FromStatus(st));
  }
  if (!grant.query.empty()) {
    return SendError(
        res,
        FromStatus(PermissionDeniedError("audit search under a scope with a search restriction is not supported")));
  }
  // Beyond one's own record, the trail is searched only with a scope that
  // names AuditEvent (user/AuditEvent.s: administrators; system/AuditEvent.s):
  // a wildcard such as user/*.rs does not reach it.
  if (who.enforce && !grant.patient) {
    bool named = std::any_of(who.scopes.begin(), who.scopes.end(), [](const auth::Scope& sc) {
      return sc.resource_type == "AuditEvent" && sc.context != auth::ScopeContext::kPatient &&
             sc.Grants(auth::Interaction::kSearch, "AuditEvent");
    });
    if (!named) {
      return SendError(res, FromStatus(PermissionDeniedError(
                                "searching the audit trail needs a user/AuditEvent or system/AuditEvent scope")));
    }
  }
  auto params = ParseQuery(req.query);
  if (!params) return SendError(res, HttpError::Of(400, IssueType::kInvalid, "malformed query string"));
  audit::AuditQuery q;
  q.count = static_cast<size_t>(opt_.default_page_size);
  auto bad = [&](const std::string& name, const std::string& why) {
    SendError(res, HttpError::Of(400, IssueType::kValue, name + ": " + why, name));
  };
  for (const auto& [name, value] : *params) {
    if (name == "patient") {
      q.patient = value.starts_with("Patient/") ? value.substr(8) : value;
    } else if (name == "agent") {
      q.agent = value;
    } else if (name == "action") {
      if (value.size() != 1 || std::string_view("CRUDE").find(value[0]) == std::string_view::npos) {
        return bad(name, "one of C, R, U, D, E");
      }
      q.action = value[0];
    } else if (name == "outcome") {
      if (value != "0" && value != "4" && value != "8" && value != "12") return bad(name, "one of 0, 4, 8, 12");
      q.outcome = std::stoi(value);
    } else if (name == "date") {
      std::string_view v = value;
      std::string_view prefix = "eq";
      if (v.size() > 2 && v[0] >= 'a' && v[0] <= 'z') {
        prefix = v.substr(0, 2);
        v.remove_prefix(2);
      }
      auto range = ParseDateTimeRange(v);
      if (!range) return bad(name, "a date or dateTime, optionally prefixed by eq, ge, gt, le, lt");
      if (prefix == "eq") {
        q.since_us = range->lo;
        q.until_us = range->hi + 1;
      } else if (prefix == "ge" || prefix == "gt") {
        q.since_us = prefix == "ge" ? range->lo : range->hi + 1;
      } else if (prefix == "le" || prefix == "lt") {
        q.until_us = prefix == "le" ? range->hi + 1 : range->lo;
      } else {
        return bad(name, "prefix must be eq, ge, gt, le or lt");
      }
    } else if (name == "_count") {
      std::optional<int64_t> n = ParsePositiveInt(value);
      if (!n || *n > std::numeric_limits<int>::max()) return bad(name, "a positive integer");
      q.count = static_cast<size_t>(std::min<int64_t>(*n, 1000));
    } else if (name == "_cursor") {
      std::optional<int64_t> seq = ParsePositiveInt(value);
      if (!seq) return bad(name, "invalid cursor");
      q.before_seq = *seq;
    } else if (name != "_format") {
      return SendError(res, HttpError::Of(400, IssueType::kNotSupported,
                                          "unknown AuditEvent search parameter '" + name +
                                              "' (supported: patient, agent, action, outcome, date, _count)"));
    }
  }
  if (grant.patient) {
    // A patient sees who accessed their own record, nothing else.
    if (!q.patient.empty() && q.patient != *grant.patient) {
      return SendError(res, FromStatus(PermissionDeniedError(
                                "the access token is limited to the compartment of the patient in context")));
    }
    q.patient = *grant.patient;
  }
  auto page = opt_.audit->Query(q);
  if (!page.ok()) return SendError(res, FromStatus(page.status()));
  std::string base = opt_.base_url + "/AuditEvent";
  std::string kept = QueryWithout(*params, "_cursor");
  std::string out = R"({"resourceType":"Bundle","type":"searchset","link":[)";
  AppendLink(out, "self", base + kept);
  if (page->next_before_seq > 0) {
    out += ",";
    AppendLink(out, "next",
               base + kept + (kept.empty() ? "?" : "&") + "_cursor=" + std::to_string(page->next_before_seq));
  }
  out += "],\"entry\":[";
  for (size_t i = 0; i < page->events.size(); ++i) {
    if (i) out += ",";
    out += "{\"resource\":" + page->events[i] + R"(,"search":{"mode":"match"}})";
  }
  out += "]}";
  res.status = 200;
  res.SetHeader("Content-Type", std::string(kFhirJson));
  res.body = std::move(out);
}

void FhirService::Impl::Audit(const http::Request& req, http::Response& res, const auth::Access& who,
                              AuditNote& note) const {
  std::string_view path = req.path;
  if (path.starts_with(opt_.base_path)) path.remove_prefix(opt_.base_path.size());
  if (path == "/metadata" || path.starts_with("/.well-known/")) return;  // no data: not audited
  std::vector<std::string_view> seg;
  seg.reserve(4);  // most FHIR paths have at most four segments
  for (size_t s = 1; s <= path.size();) {
    size_t slash = path.find('/', s);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > s) seg.push_back(path.substr(s, slash - s));
    s = slash + 1;
  }
  const std::string& m = req.method;
  std::string interaction = std::move(note.interaction);
  audit::Action action = audit::Action::kRead;
  if (interaction.empty()) {
    bool op = !seg.empty() && seg.back().starts_with("$");
    bool hist = std::find(seg.begin(), seg.end(), "_history") != seg.end();
    if (op) {
      interaction = seg.back() == "$export" ? "export" : "operation";
    } else if (hist) {
      interaction = seg.size() == 1   ? "history-system"
                    : seg.size() == 2 ? "history-type"
                    : seg.size() == 3 ? "history-instance"
                                      : "vread";
    } else if (seg.size() == 1 && m == "POST") {
      interaction = "create";
    } else if (seg.size() == 1 || (seg.size() == 2 && seg[1] == "_search") || seg.size() == 3) {
      interaction = m == "GET" || m == "POST" ? "search-type"
                    : m == "PUT"              ? "update"
                    : m == "PATCH"            ? "patch"
                                              : "delete";
    } else if (seg.size() == 2) {
      interaction = m == "PUT" ? "update" : m == "PATCH" ? "patch" : m == "DELETE" ? "delete" : "read";
    } else {
      interaction = "operation";
    }
  }
  if (interaction == "create") action = audit::Action::kCreate;
  if (interaction == "update" || interaction == "patch") action = audit::Action::kUpdate;
  if (interaction == "delete") action = audit::Action::kDelete;
  if (interaction == "operation" || interaction == "transaction" || interaction == "batch" || interaction == "export") {
    action = audit::Action::kExecute;
  }
  audit::AuditRecord r;
  r.action = action;
  r.subtype = std::move(interaction);
  r.outcome = res.status < 400   ? audit::Outcome::kSuccess
              : res.status < 500 ? audit::Outcome::kMinorFailure
                                 : audit::Outcome::kSeriousFailure;
  if (res.status == 401 || res.status == 403) r.description = "denied: insufficient authorisation";
  r.user = !who.fhir_user.empty() ? who.fhir_user : who.subject;
  r.client_id = who.client_id;
  r.source_address = req.remote_address;
  r.request_id = req.request_id;
  r.purpose_of_use = who.purpose_of_use;
  r.patients = std::move(note.patients);
  r.entities = std::move(note.entities);
  r.entity_count = note.entity_count;
  // A denied or failed request names what it asked for.
  if (r.entities.empty() && seg.size() >= 2 && fhir::FindResourceType(seg[0]) && !seg[1].starts_with("$") &&
      !seg[1].starts_with("_")) {
    r.entities.push_back(std::string(seg[0]) + "/" + std::string(seg[1]));
    if (seg[0] == "Patient") r.patients.push_back(std::string(seg[1]));
  }
  if (note.search) {
    r.resource_type = std::move(note.resource_type);
    r.query = req.method == "POST" ? req.body.substr(0, 4096) : req.query;
  }
  if (Status st = opt_.audit->Append(std::move(r)); !st.ok()) {
    // Never serve what could not be audited.
    res = http::Response();
    SendError(res, HttpError::Of(503, IssueType::kTransient, "the audit trail is unavailable; try again later"));
    res.SetHeader("Retry-After", "5");
  }
}

FhirService::FhirService(store::Store& store, ServiceOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}
FhirService::~FhirService() = default;

namespace {
const auth::Access& Open() {
  static const auth::Access open;  // enforce = false
  return open;
}
}  // namespace

void FhirService::Handle(const http::Request& req, http::Response& res) const { Handle(req, res, Open()); }
void FhirService::Handle(const http::Request& req, http::Response& res, const auth::Access& who) const {
  if (!impl_->audited()) return impl_->Handle(req, res, who);
  AuditNote note;
  t_note = &note;
  impl_->Handle(req, res, who);
  t_note = nullptr;
  impl_->Audit(req, res, who, note);
}
void FhirService::HandleAsync(const http::Request& req, http::Response& res, std::function<void()> done) const {
  HandleAsync(req, res, Open(), std::move(done));
}
void FhirService::HandleAsync(const http::Request& req, http::Response& res, const auth::Access& who,
                              std::function<void()> done) const {
  if (!impl_->audited()) return impl_->HandleAsync(req, res, who, std::move(done));
  std::string_view type, id;
  if (!impl_->IsPlainWrite(req, type, id)) {
    // Answered on this thread (reads, most of all): the note can live on
    // the stack, and the record is written before `done`, as below.
    Handle(req, res, who);
    return done();
  }
  // The note is filled on this thread (synchronous paths, and the async
  // write's failures before it is queued) and, for an async write, from its
  // answer when the commit finishes; the record is written in `done`.
  auto note = std::make_shared<AuditNote>();
  auto who_copy = std::make_shared<auth::Access>(who);
  t_note = note.get();
  impl_->HandleAsync(req, res, who, [this, &req, &res, note, who_copy, done = std::move(done)] {
    impl_->Audit(req, res, *who_copy, *note);
    done();
  });
  t_note = nullptr;
}
bool FhirService::IsLong(const http::Request& req) const { return impl_->IsLong(req); }

void FhirService::ServerError(int status, std::string_view message, http::Response& res) {
  IssueType code = status == 413 || status == 431 || status == 503 ? IssueType::kTooCostly : IssueType::kInvalid;
  FhirService::Impl::SendError(res, HttpError::Of(status, code, std::string(message)));
}

}  // namespace bevan::rest
