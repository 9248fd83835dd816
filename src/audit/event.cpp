// AuditEvent JSON for one record. The codes follow FHIR R4 AuditEvent and
// IHE Basic Audit Log Patterns (BALP): RESTful interactions are type "rest"
// with the restful-interaction as subtype; logins are DICOM "User
// Authentication"; exports DICOM "Export".
#include <openssl/evp.h>
#include <zstd.h>

#include <algorithm>
#include <ctime>

#include "audit/audit.h"
#include "audit/internal.h"
#include "json/json.h"

namespace bevan::audit {

namespace {

constexpr std::string_view kDicom = "http://dicom.nema.org/resources/ontology/DCM";
constexpr std::string_view kEventType = "http://terminology.hl7.org/CodeSystem/audit-event-type";
constexpr std::string_view kInteraction = "http://hl7.org/fhir/restful-interaction";
constexpr std::string_view kEntityType = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
constexpr std::string_view kObjectRole = "http://terminology.hl7.org/CodeSystem/object-role";
constexpr std::string_view kPurposeOfUse = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
constexpr std::string_view kSourceType = "http://terminology.hl7.org/CodeSystem/security-source-type";
constexpr std::string_view kBalpEntityType = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType";
constexpr std::string_view kClientIdSystem = "urn:ietf:params:oauth:client-id";

// The R4 restful-interaction codes.
constexpr std::string_view kInteractions[] = {
    "read",         "vread",          "update",   "patch",  "delete",      "history",       "history-instance",
    "history-type", "history-system", "create",   "search", "search-type", "search-system", "capabilities",
    "transaction",  "batch",          "operation"};

class Out {
 public:
  explicit Out(std::string& s) : s_(s) {}
  void Raw(std::string_view v) {
    s_ += v;
    first_ = false;
  }
  void Str(std::string_view v) { json::WriteString(v, s_); }
  void Key(std::string_view k) {
    Comma();
    Str(k);
    s_ += ':';
    first_ = true;
  }
  void Item(std::string_view v) {
    Comma();
    Str(v);
  }
  void Member(std::string_view k, std::string_view v) {
    Key(k);
    Str(v);
    first_ = false;
  }
  void Open(char c) {
    Comma();
    s_ += c;
    first_ = true;
  }
  void Close(char c) {
    s_ += c;
    first_ = false;
  }
  void Coding(std::string_view system, std::string_view code, std::string_view display = {}) {
    Open('{');
    Member("system", system);
    Member("code", code);
    if (!display.empty()) Member("display", display);
    Close('}');
  }

 private:
  void Comma() {
    if (!first_) s_ += ',';
    first_ = false;
  }
  std::string& s_;
  bool first_ = true;
};

std::string Instant(int64_t time_us) {
  time_t secs = static_cast<time_t>(time_us / 1000000);
  int64_t micros = time_us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    --secs;
  }
  tm t{};
  gmtime_r(&secs, &t);
  char buf[96];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
           t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(micros));
  return buf;
}

std::string Base64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// "Practitioner/3" or an absolute URL ending in Type/id: a reference; else an
// identifier (a token subject).
bool LooksLikeReference(std::string_view s) {
  size_t slash = s.rfind('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == s.size()) return false;
  size_t type_start = s.rfind('/', slash - 1);
  type_start = type_start == std::string_view::npos ? 0 : type_start + 1;
  return type_start < slash && s[type_start] >= 'A' && s[type_start] <= 'Z';
}

void Who(Out& o, std::string_view who, bool client) {
  o.Key("who");
  o.Open('{');
  if (!client && LooksLikeReference(who)) {
    o.Member("reference", who);
  } else {
    o.Key("identifier");
    o.Open('{');
    if (client) o.Member("system", kClientIdSystem);
    o.Member("value", who);
    o.Close('}');
  }
  o.Close('}');
}

void Network(Out& o, const AuditRecord& r) {
  if (r.source_address.empty()) return;
  o.Key("network");
  o.Open('{');
  o.Member("address", r.source_address);
  o.Member("type", "2");  // IP address
  o.Close('}');
}

void PurposeOfUse(Out& o, const AuditRecord& r) {
  if (r.purpose_of_use.empty()) return;
  o.Key("purposeOfUse");
  o.Open('[');
  o.Open('{');
  o.Key("coding");
  o.Open('[');
  o.Coding(kPurposeOfUse, r.purpose_of_use);
  o.Close(']');
  o.Close('}');
  o.Close(']');
}

void EntityHead(Out& o, std::string_view type_code, std::string_view type_display, std::string_view role_code,
                std::string_view role_display) {
  o.Key("type");
  o.Coding(kEntityType, type_code, type_display);
  if (!role_code.empty()) {
    o.Key("role");
    o.Coding(kObjectRole, role_code, role_display);
  }
}

}  // namespace

std::string ToAuditEventJson(const AuditRecord& r, int64_t seq, const std::string& observer) {
  std::string s;
  s.reserve(768 + r.query.size() * 2);
  Out o(s);
  o.Open('{');
  o.Member("resourceType", "AuditEvent");
  o.Member("id", std::to_string(seq));

  bool login = r.subtype == "login" || r.subtype == "login-failed" || r.subtype == "logout";
  o.Key("type");
  if (login) {
    o.Coding(kDicom, "110114", "User Authentication");
  } else if (r.subtype == "export") {
    o.Coding(kDicom, "110106", "Export");
  } else {
    o.Coding(kEventType, "rest", "RESTful Operation");
  }
  o.Key("subtype");
  o.Open('[');
  if (login) {
    bool out = r.subtype == "logout";
    o.Coding(kDicom, out ? "110123" : "110122", out ? "Logout" : "Login");
  } else if (std::find(std::begin(kInteractions), std::end(kInteractions), r.subtype) != std::end(kInteractions)) {
    o.Coding(kInteraction, r.subtype);
  } else {
    // "export" and other operations: the restful-interaction is "operation";
    // the display names which one.
    o.Coding(kInteraction, "operation", r.subtype.empty() ? std::string_view("operation") : r.subtype);
  }
  o.Close(']');

  char action[2] = {static_cast<char>(r.action), '\0'};
  o.Member("action", action);
  o.Member("recorded", Instant(r.time_us));
  o.Member("outcome", std::to_string(static_cast<int>(r.outcome)));
  if (!r.description.empty()) o.Member("outcomeDesc", r.description);

  o.Key("agent");
  o.Open('[');
  bool any_agent = false;
  if (!r.user.empty()) {
    o.Open('{');
    Who(o, r.user, false);
    o.Key("requestor");
    o.Raw("true");
    Network(o, r);
    PurposeOfUse(o, r);
    o.Close('}');
    any_agent = true;
  }
  if (!r.client_id.empty()) {
    o.Open('{');
    o.Key("type");
    o.Open('{');
    o.Key("coding");
    o.Open('[');
    o.Coding(kDicom, "110150", "Application");
    o.Close(']');
    o.Close('}');
    Who(o, r.client_id, true);
    o.Key("requestor");
    o.Raw(any_agent ? "false" : "true");
    if (!any_agent) {
      Network(o, r);
      PurposeOfUse(o, r);
    }
    o.Close('}');
    any_agent = true;
  }
  if (!any_agent) {
    // Unauthenticated (e.g. a failed login or a request without a token).
    o.Open('{');
    o.Key("who");
    o.Open('{');
    o.Member("display", "anonymous");
    o.Close('}');
    o.Key("requestor");
    o.Raw("true");
    Network(o, r);
    o.Close('}');
  }
  o.Close(']');

  o.Key("source");
  o.Open('{');
  o.Key("observer");
  o.Open('{');
  o.Member("display", observer);
  o.Close('}');
  o.Key("type");
  o.Open('[');
  o.Coding(kSourceType, "4", "Application Server");
  o.Close(']');
  o.Close('}');

  std::vector<std::string_view> patients;
  for (const auto& p : r.patients) {
    if (!p.empty() && std::find(patients.begin(), patients.end(), p) == patients.end()) patients.push_back(p);
  }
  bool entities = !patients.empty() || !r.entities.empty() || !r.query.empty() || !r.request_id.empty();
  if (entities) {
    o.Key("entity");
    o.Open('[');
    for (std::string_view p : patients) {
      o.Open('{');
      o.Key("what");
      o.Open('{');
      o.Member("reference", "Patient/" + std::string(p));
      o.Close('}');
      EntityHead(o, "1", "Person", "1", "Patient");
      o.Close('}');
    }
    size_t listed = 0;
    for (const auto& e : r.entities) {
      if (e.starts_with("Patient/") &&
          std::find(patients.begin(), patients.end(), std::string_view(e).substr(8)) != patients.end()) {
        ++listed;
        continue;
      }
      o.Open('{');
      o.Key("what");
      o.Open('{');
      o.Member("reference", e);
      o.Close('}');
      EntityHead(o, "2", "System Object", "4", "Domain Resource");
      o.Close('}');
      ++listed;
    }
    size_t total = std::max(r.entity_count, r.entities.size());
    if (total > listed) {
      o.Open('{');
      EntityHead(o, "2", "System Object", "", "");
      o.Member("description", "further resources not listed");
      o.Key("detail");
      o.Open('[');
      o.Open('{');
      o.Member("type", "unlisted-count");
      o.Member("valueString", std::to_string(total - listed));
      o.Close('}');
      o.Close(']');
      o.Close('}');
    }
    if (!r.query.empty()) {
      o.Open('{');
      EntityHead(o, "2", "System Object", "24", "Query");
      if (!r.resource_type.empty()) o.Member("description", r.resource_type);
      o.Member("query", Base64(r.query));
      o.Close('}');
    }
    if (!r.request_id.empty()) {
      o.Open('{');
      o.Key("what");
      o.Open('{');
      o.Key("identifier");
      o.Open('{');
      o.Member("value", r.request_id);
      o.Close('}');
      o.Close('}');
      o.Key("type");
      o.Coding(kBalpEntityType, "XrequestId", "X-Request-Id");
      o.Close('}');
    }
    o.Close(']');
  }
  o.Close('}');
  return s;
}

namespace internal {

void AppendRecord(const AuditRecord& r, std::string& out) {
  auto str = [&](std::string_view v) {
    PutVarint(v.size(), out);
    out.append(v);
  };
  auto list = [&](const std::vector<std::string>& v) {
    PutVarint(v.size(), out);
    for (const auto& x : v) str(x);
  };
  PutVarint(static_cast<uint64_t>(r.time_us), out);
  out.push_back(static_cast<char>(r.action));
  out.push_back(static_cast<char>(r.outcome));
  str(r.user);
  str(r.client_id);
  list(r.patients);
  str(r.subtype);
  str(r.description);
  str(r.source_address);
  str(r.request_id);
  str(r.purpose_of_use);
  str(r.resource_type);
  str(r.query);
  list(r.entities);
  PutVarint(r.entity_count, out);
}

namespace {

// Parses the leading fields and leaves `in` after the patients.
bool ParseHead(std::string_view& in, RecordHead& h) {
  uint64_t time = 0;
  if (!GetVarint(in, time) || in.size() < 2) return false;
  h.time_us = static_cast<int64_t>(time);
  h.action = in[0];
  h.outcome = static_cast<unsigned char>(in[1]);
  in.remove_prefix(2);
  if (!GetString(in, h.user) || !GetString(in, h.client_id) || !GetVarint(in, h.patient_count) ||
      h.patient_count > in.size()) {
    return false;
  }
  const char* start = in.data();
  std::string_view id;
  for (uint64_t i = 0; i < h.patient_count; ++i) {
    if (!GetString(in, id)) return false;
  }
  h.patients = std::string_view(start, static_cast<size_t>(in.data() - start));
  return true;
}

}  // namespace

bool RecordHead::HasPatient(std::string_view id) const {
  bool found = false;
  ForEachPatient([&](std::string_view p) { found = found || p == id; });
  return found;
}

bool PeekRecord(std::string_view record, RecordHead& head) { return ParseHead(record, head); }

Result<AuditRecord> DecodeBinaryRecord(std::string_view in) {
  auto bad = [] { return InvalidArgumentError("not an audit record"); };
  RecordHead h;
  if (!ParseHead(in, h)) return bad();
  AuditRecord r;
  r.time_us = h.time_us;
  r.action = static_cast<Action>(h.action);
  r.outcome = static_cast<Outcome>(h.outcome);
  r.user = h.user;
  r.client_id = h.client_id;
  r.patients.reserve(h.patient_count);
  h.ForEachPatient([&](std::string_view p) { r.patients.emplace_back(p); });
  std::string_view s;
  for (std::string* field :
       {&r.subtype, &r.description, &r.source_address, &r.request_id, &r.purpose_of_use, &r.resource_type, &r.query}) {
    if (!GetString(in, s)) return bad();
    field->assign(s);
  }
  uint64_t n = 0;
  if (!GetVarint(in, n) || n > in.size()) return bad();
  r.entities.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    if (!GetString(in, s)) return bad();
    r.entities.emplace_back(s);
  }
  if (!GetVarint(in, n) || !in.empty()) return bad();
  r.entity_count = n;
  return r;
}

struct ZstdContexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ~ZstdContexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};

std::unique_ptr<ZstdContexts, void (*)(ZstdContexts*)> NewZstdContexts() {
  return {new ZstdContexts, [](ZstdContexts* z) { delete z; }};
}

Status CompressBlock(ZstdContexts& z, std::string_view raw, std::string& out) {
  out.resize(ZSTD_compressBound(raw.size()));
  // Level 1: the writer's CPU matters more than the last few bytes.
  size_t n = ZSTD_compressCCtx(z.c, out.data(), out.size(), raw.data(), raw.size(), 1);
  if (ZSTD_isError(n)) return InternalError(std::string("audit log: zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return Status::Ok();
}

Status DecompressBlock(ZstdContexts& z, std::string_view stored, size_t limit, std::string& raw) {
  unsigned long long size = ZSTD_getFrameContentSize(stored.data(), stored.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > limit) {
    return InvalidArgumentError("not a block");
  }
  raw.resize(static_cast<size_t>(size));
  size_t n = ZSTD_decompressDCtx(z.d, raw.data(), raw.size(), stored.data(), stored.size());
  if (ZSTD_isError(n) || n != raw.size()) return InvalidArgumentError("not a block");
  return Status::Ok();
}

void AppendKeys(const std::vector<std::string_view>& sorted, std::string& out) {
  PutVarint(sorted.size(), out);
  for (std::string_view k : sorted) AppendFramed(k, out);
}

bool SplitKeys(std::string_view blob, std::vector<std::string_view>& keys) {
  keys.clear();
  uint64_t n = 0;
  if (!GetVarint(blob, n) || n > blob.size()) return false;
  std::string_view k;
  for (uint64_t i = 0; i < n; ++i) {
    if (!GetString(blob, k)) return false;
    keys.push_back(k);
  }
  return blob.empty();
}

bool KeysContain(std::string_view blob, std::string_view key) {
  uint64_t n = 0;
  if (!GetVarint(blob, n)) return false;
  std::string_view k;
  for (uint64_t i = 0; i < n && GetString(blob, k); ++i) {
    if (k == key) return true;
  }
  return false;
}

void AppendFramed(std::string_view record, std::string& raw) {
  PutVarint(record.size(), raw);
  raw.append(record);
}

bool SplitRecords(std::string_view raw, std::vector<std::string_view>& records) {
  records.clear();
  std::string_view rec;
  while (!raw.empty()) {
    if (!GetString(raw, rec)) return false;
    records.push_back(rec);
  }
  return true;
}

std::string EncodeRecord(const AuditRecord& r) {
  std::string s;
  s.reserve(256 + r.query.size());
  Out o(s);
  o.Open('{');
  o.Key("t");
  o.Raw(std::to_string(r.time_us));
  char action[2] = {static_cast<char>(r.action), '\0'};
  o.Member("a", action);
  o.Member("s", r.subtype);
  o.Key("o");
  o.Raw(std::to_string(static_cast<int>(r.outcome)));
  auto opt = [&](std::string_view k, const std::string& v) {
    if (!v.empty()) o.Member(k, v);
  };
  auto list = [&](std::string_view k, const std::vector<std::string>& v) {
    if (v.empty()) return;
    o.Key(k);
    o.Open('[');
    for (const auto& x : v) o.Item(x);
    o.Close(']');
  };
  opt("d", r.description);
  opt("u", r.user);
  opt("c", r.client_id);
  opt("ip", r.source_address);
  opt("r", r.request_id);
  opt("pou", r.purpose_of_use);
  list("p", r.patients);
  list("e", r.entities);
  if (r.entity_count > r.entities.size()) {
    o.Key("n");
    o.Raw(std::to_string(r.entity_count));
  }
  opt("rt", r.resource_type);
  opt("q", r.query);
  o.Close('}');
  return s;
}

Result<AuditRecord> DecodeRecord(std::string_view text) {
  auto doc = json::Document::Parse(text);
  if (!doc.ok() || !doc->root().is_object()) return InvalidArgumentError("not an audit record");
  AuditRecord r;
  for (const json::Member& m : doc->root().members()) {
    std::string_view k = m.name();
    const json::Value& v = m.value;
    auto str = [&] { return std::string(v.as_string()); };
    auto strings = [&] {
      std::vector<std::string> out;
      for (const json::Value& x : v.items()) out.emplace_back(x.as_string());
      return out;
    };
    if (k == "t") {
      r.time_us = v.AsInt64().value_or(0);
    } else if (k == "a") {
      std::string_view a = v.as_string();
      r.action = static_cast<Action>(a.empty() ? 'R' : a[0]);
    } else if (k == "s") {
      r.subtype = str();
    } else if (k == "o") {
      r.outcome = static_cast<Outcome>(v.AsInt64().value_or(0));
    } else if (k == "d") {
      r.description = str();
    } else if (k == "u") {
      r.user = str();
    } else if (k == "c") {
      r.client_id = str();
    } else if (k == "ip") {
      r.source_address = str();
    } else if (k == "r") {
      r.request_id = str();
    } else if (k == "pou") {
      r.purpose_of_use = str();
    } else if (k == "p") {
      r.patients = strings();
    } else if (k == "e") {
      r.entities = strings();
    } else if (k == "n") {
      r.entity_count = static_cast<size_t>(v.AsInt64().value_or(0));
    } else if (k == "rt") {
      r.resource_type = str();
    } else if (k == "q") {
      r.query = str();
    }
  }
  return r;
}

}  // namespace internal

}  // namespace bevan::audit
