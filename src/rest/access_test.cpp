// The authorisation matrix: SMART scopes (patient/, user/, system/; c r u d s;
// v2 search restrictions) against every door of the REST service, over a
// real SQLite store holding two patients' records. Each row is a caller, a
// request and what must come back: the status and, for Bundles, exactly which
// resources are in it (so a leak of another patient's data fails the test).
#include <gtest/gtest.h>

#include <future>
#include <set>

#include <unistd.h>

#include <cstdio>

#include "audit/audit.h"
#include "auth/access.h"
#include "json/json.h"
#include "rest/export.h"
#include "rest/service.h"

namespace bevan::rest {
namespace {

using auth::Access;

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenStore("sqlite::memory:");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    ServiceOptions o;
    o.base_url = "http://test/fhir";
    service_ = std::make_unique<FhirService>(*store_, o);
    // Two patients, each with observations; a practitioner outside any compartment.
    Put("Patient", "pa", R"("name":[{"family":"Alpha"}])");
    Put("Patient", "pb", R"("name":[{"family":"Beta"}])");
    Put("Practitioner", "pr", R"("name":[{"family":"Doc"}])");
    Put("Observation", "oa-lab", Obs("pa", "laboratory"));
    Put("Observation", "oa-vit", Obs("pa", "vital-signs"));
    Put("Observation", "ob-lab", Obs("pb", "laboratory"));
    Put("Encounter", "ea", R"("status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/pa"})");
  }

  static std::string Obs(const std::string& patient, const std::string& category) {
    return R"("status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":")" +
           category + R"("}]}],"code":{"text":"x"},"subject":{"reference":"Patient/)" + patient +
           R"("},"performer":[{"reference":"Practitioner/pr"}])";
  }

  void Put(const std::string& type, const std::string& id, const std::string& fields) {
    auto r = Call(Access(), "PUT", "/fhir/" + type + "/" + id,
                  R"({"resourceType":")" + type + R"(","id":")" + id + "\"," + fields + "}");
    ASSERT_TRUE(r.status == 201 || r.status == 200) << r.status << " " << r.body;
  }

  http::Response Call(const Access& who, std::string method, std::string target, std::string body = "") {
    http::Request req;
    req.method = std::move(method);
    req.SetTarget(std::move(target));
    req.body = std::move(body);
    if (!req.body.empty()) req.headers.push_back({"Content-Type", "application/fhir+json"});
    http::Response res;
    service_->Handle(req, res, who);
    return res;
  }

  static Access Token(std::string scopes, std::optional<std::string> patient = std::nullopt) {
    Access a;
    a.enforce = true;
    a.client_id = "test-client";
    auto parsed = auth::ParseScopes(scopes);
    EXPECT_TRUE(parsed.ok()) << scopes;
    if (parsed.ok()) a.scopes = std::move(parsed).value();
    a.patient = std::move(patient);
    return a;
  }

  // "Type/id" of every entry of a Bundle (matches, includes and history alike).
  static std::set<std::string> Ids(const std::string& bundle) {
    std::set<std::string> out;
    auto doc = json::Document::Parse(bundle);
    if (!doc.ok()) return {"<not json>"};
    const json::Value* entries = doc->root().Find("entry");
    if (!entries) return out;
    for (const json::Value& e : entries->items()) {
      const json::Value* r = e.Find("resource");
      if (!r) continue;  // history deletes
      const json::Value* rt = r->Find("resourceType");
      if (rt->as_string() == "OperationOutcome") continue;
      out.insert(std::string(rt->as_string()) + "/" + std::string(r->Find("id")->as_string()));
    }
    return out;
  }

  std::unique_ptr<store::Store> store_;
  std::unique_ptr<FhirService> service_;
};

struct Row {
  const char* scopes;
  const char* patient;  // launch context, or nullptr
  const char* method;
  const char* target;
  int status;
  std::set<std::string> entries;  // for 200 Bundles: exactly these resources
};

TEST_F(AccessTest, Matrix) {
  const std::set<std::string> kNone;
  const std::vector<Row> rows = {
      // patient/*.rs: the patient's own compartment through every door, nothing else.
      {"patient/*.rs", "pa", "GET", "/fhir/Patient/pa", 200, {}},
      {"patient/*.rs", "pa", "GET", "/fhir/Patient/pb", 404, {}},
      {"patient/*.rs", "pa", "GET", "/fhir/Observation/oa-lab", 200, {}},
      {"patient/*.rs", "pa", "GET", "/fhir/Observation/ob-lab", 404, {}},
      {"patient/*.rs", "pa", "GET", "/fhir/Observation/ob-lab/_history/1", 404, {}},
      {"patient/*.rs", "pa", "GET", "/fhir/Observation/ob-lab/_history", 404, {}},
      {"patient/*.rs", "pa", "GET", "/fhir/Practitioner/pr", 404, {}},
      {"patient/*.rs", "pa", "GET", "/fhir/Observation", 200, {"Observation/oa-lab", "Observation/oa-vit"}},
      {"patient/*.rs", "pa", "GET", "/fhir/Observation?subject=Patient/pb", 200, kNone},
      {"patient/*.rs", "pa", "GET", "/fhir/Observation?_id=ob-lab", 200, kNone},
      {"patient/*.rs", "pa", "GET", "/fhir/Patient", 200, {"Patient/pa"}},
      {"patient/*.rs", "pa", "GET", "/fhir/Patient?family=Beta", 200, kNone},
      {"patient/*.rs", "pa", "GET", "/fhir/Patient/pa/Observation", 200, {"Observation/oa-lab", "Observation/oa-vit"}},
      {"patient/*.rs", "pa", "GET", "/fhir/Patient/pb/Observation", 403, {}},
      {"patient/*.rs",
       "pa",
       "GET",
       "/fhir/Observation?_include=Observation:subject&_include=Observation:performer",
       200,
       {"Observation/oa-lab", "Observation/oa-vit", "Patient/pa"}},
      {"patient/*.rs", "pa", "GET", "/fhir/Practitioner?_revinclude=Observation:performer", 200, kNone},
      {"patient/*.rs",
       "pa",
       "GET",
       "/fhir/Patient?_revinclude=Observation:subject",
       200,
       {"Patient/pa", "Observation/oa-lab", "Observation/oa-vit"}},
      {"patient/*.rs", "pa", "GET", "/fhir/Observation?subject:Patient.family=Beta", 200, kNone},
      {"patient/*.rs", "pa", "GET", "/fhir/Patient?_has:Observation:subject:category=laboratory", 200, {"Patient/pa"}},
      {"patient/*.rs", "pa", "GET", "/fhir/Observation/_history", 200, {"Observation/oa-lab", "Observation/oa-vit"}},
      {"patient/*.rs",
       "pa",
       "GET",
       "/fhir/_history",
       200,
       {"Patient/pa", "Observation/oa-lab", "Observation/oa-vit", "Encounter/ea"}},
      {"patient/*.rs",
       "pa",
       "GET",
       "/fhir/Patient/pa/$everything",
       200,
       {"Patient/pa", "Observation/oa-lab", "Observation/oa-vit", "Encounter/ea"}},
      {"patient/*.rs", "pa", "GET", "/fhir/Patient/pb/$everything", 404, {}},
      {"patient/*.rs", "pa", "POST", "/fhir/Observation", 403, {}},
      {"patient/*.rs", "pa", "DELETE", "/fhir/Observation/oa-lab", 403, {}},
      {"patient/*.rs", nullptr, "GET", "/fhir/Observation/oa-lab", 403, {}},
      // v1 scopes are accepted.
      {"patient/*.read", "pa", "GET", "/fhir/Observation", 200, {"Observation/oa-lab", "Observation/oa-vit"}},
      {"patient/*.read", "pa", "GET", "/fhir/Observation/ob-lab", 404, {}},
      // One type only: other types are refused, and not included.
      {"patient/Observation.rs", "pa", "GET", "/fhir/Patient/pa", 403, {}},
      {"patient/Observation.rs", "pa", "GET", "/fhir/Patient", 403, {}},
      {"patient/Observation.rs",
       "pa",
       "GET",
       "/fhir/Observation?_include=Observation:subject",
       200,
       {"Observation/oa-lab", "Observation/oa-vit"}},
      {"patient/Observation.rs", "pa", "GET", "/fhir/Patient/pa/$everything", 403, {}},
      {"patient/Observation.r", "pa", "GET", "/fhir/Observation", 403, {}},
      {"patient/Observation.s", "pa", "GET", "/fhir/Observation/oa-lab", 403, {}},
      // A v2 search restriction narrows reads and searches.
      {"patient/Observation.rs?category=laboratory", "pa", "GET", "/fhir/Observation/oa-lab", 200, {}},
      {"patient/Observation.rs?category=laboratory", "pa", "GET", "/fhir/Observation/oa-vit", 404, {}},
      {"patient/Observation.rs?category=laboratory", "pa", "GET", "/fhir/Observation", 200, {"Observation/oa-lab"}},
      {"patient/Observation.rs?category=laboratory", "pa", "GET", "/fhir/Observation?category=vital-signs", 200, kNone},
      {"user/Observation.rs?category=laboratory",
       nullptr,
       "GET",
       "/fhir/Observation",
       200,
       {"Observation/oa-lab", "Observation/ob-lab"}},
      // user/ and system/ scopes are not limited to a compartment.
      {"user/*.cruds", nullptr, "GET", "/fhir/Observation/ob-lab", 200, {}},
      {"user/*.cruds",
       nullptr,
       "GET",
       "/fhir/Observation",
       200,
       {"Observation/oa-lab", "Observation/oa-vit", "Observation/ob-lab"}},
      {"system/Patient.r", nullptr, "GET", "/fhir/Patient/pb", 200, {}},
      {"system/Patient.r", nullptr, "GET", "/fhir/Patient", 403, {}},
      {"system/Patient.r", nullptr, "GET", "/fhir/Observation/oa-lab", 403, {}},
      {"system/Patient.r", nullptr, "GET", "/fhir/Patient/pb/_history", 200, {"Patient/pb"}},
      // No resource scopes at all.
      {"openid fhirUser", "pa", "GET", "/fhir/Patient/pa", 403, {}},
      {"openid fhirUser", "pa", "GET", "/fhir/_history", 200, kNone},
      // metadata is public.
      {"openid", nullptr, "GET", "/fhir/metadata", 200, {}},
  };
  for (const Row& row : rows) {
    Access who = Token(row.scopes, row.patient ? std::optional<std::string>(row.patient) : std::nullopt);
    auto r = Call(who, row.method, row.target);
    std::string what = std::string(row.scopes) + " " + row.method + " " + row.target;
    EXPECT_EQ(r.status, row.status) << what << "\n" << r.body;
    if (r.status == 403) {
      EXPECT_NE(r.body.find("\"forbidden\""), std::string::npos) << what;
    }
    if (r.status == 200 && r.body.find("\"Bundle\"") != std::string::npos) {
      EXPECT_EQ(Ids(r.body), row.entries) << what;
    }
  }
}

TEST_F(AccessTest, TotalsCountOnlyWhatTheGrantAllows) {
  auto r = Call(Token("patient/*.rs", "pa"), "GET", "/fhir/Observation?_total=accurate");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"total\":2"), std::string::npos) << r.body;
  r = Call(Token("patient/*.rs", "pa"), "GET", "/fhir/Observation?_summary=count");
  EXPECT_NE(r.body.find("\"total\":2"), std::string::npos) << r.body;
}

// System-level search (_type): every named type needs a grant; a patient
// token sees only its own compartment across types.
TEST_F(AccessTest, SystemSearchAppliesTheGrantPerType) {
  const std::string q = "/fhir?_type=Patient,Observation,Practitioner&_lastUpdated=gt2000";
  auto r = Call(Token("patient/*.rs", "pa"), "GET", q);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Ids(r.body), (std::set<std::string>{"Patient/pa", "Observation/oa-lab", "Observation/oa-vit"}));
  r = Call(Token("user/*.rs"), "GET", q);
  EXPECT_EQ(Ids(r.body), (std::set<std::string>{"Patient/pa", "Patient/pb", "Practitioner/pr", "Observation/oa-lab",
                                                "Observation/oa-vit", "Observation/ob-lab"}));
  // A type the token may not search: 403 when named, left out otherwise.
  EXPECT_EQ(Call(Token("patient/Observation.rs", "pa"), "GET", q).status, 403);
  r = Call(Token("patient/Observation.rs", "pa"), "GET", "/fhir?_lastUpdated=gt2000");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Ids(r.body), (std::set<std::string>{"Observation/oa-lab", "Observation/oa-vit"}));
  // Mixed grants narrow every type to the patient's compartment.
  r = Call(Token("patient/Observation.rs user/Practitioner.rs user/Patient.rs", "pa"), "GET", q);
  EXPECT_EQ(Ids(r.body), (std::set<std::string>{"Patient/pa", "Observation/oa-lab", "Observation/oa-vit"}));
  // A search-restricted scope cannot be applied across types.
  EXPECT_EQ(
      Call(Token("user/Observation.rs?category=laboratory user/Patient.rs"), "GET", "/fhir?_type=Patient,Observation")
          .status,
      403);
}

TEST_F(AccessTest, PatientWritesStayInTheirCompartment) {
  Access pa = Token("patient/*.cruds", "pa");
  std::string own = R"({"resourceType":"Observation",)" + Obs("pa", "laboratory") + "}";
  std::string other = R"({"resourceType":"Observation",)" + Obs("pb", "laboratory") + "}";
  EXPECT_EQ(Call(pa, "POST", "/fhir/Observation", own).status, 201);
  EXPECT_EQ(Call(pa, "POST", "/fhir/Observation", other).status, 403);
  // Taking another patient's resource over, or moving one's own away.
  EXPECT_EQ(Call(pa, "PUT", "/fhir/Observation/ob-lab",
                 R"({"resourceType":"Observation","id":"ob-lab",)" + Obs("pa", "laboratory") + "}")
                .status,
            403);
  EXPECT_EQ(Call(pa, "PUT", "/fhir/Observation/oa-vit",
                 R"({"resourceType":"Observation","id":"oa-vit",)" + Obs("pb", "vital-signs") + "}")
                .status,
            403);
  EXPECT_EQ(Call(pa, "DELETE", "/fhir/Observation/ob-lab").status, 404);
  http::Request req;
  req.method = "PATCH";
  req.path = req.target = "/fhir/Observation/ob-lab";
  req.body = R"([{"op":"replace","path":"/status","value":"amended"}])";
  req.headers.push_back({"Content-Type", "application/json-patch+json"});
  http::Response res;
  service_->Handle(req, res, pa);
  EXPECT_EQ(res.status, 404) << res.body;
  // A transaction touching another patient fails as a whole.
  std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"resource":)" +
                   own + R"(,"request":{"method":"POST","url":"Observation"}},
    {"request":{"method":"DELETE","url":"Observation/ob-lab"}}]})";
  auto t = Call(pa, "POST", "/fhir", tx);
  EXPECT_EQ(t.status, 404) << t.body;
  // Conditional delete cannot reach outside the compartment.
  EXPECT_EQ(Call(pa, "DELETE", "/fhir/Observation?_id=ob-lab").status, 204);
  // None of that touched patient B's record.
  auto b = store_->Read("Observation", "ob-lab");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->deleted);
  EXPECT_EQ(b->version, 1);
  auto v = store_->Read("Observation", "oa-vit");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, 1);
  // Own resources can be deleted.
  EXPECT_EQ(Call(pa, "DELETE", "/fhir/Observation/oa-vit").status, 204);
  // Read-only and create-only scopes.
  EXPECT_EQ(Call(Token("patient/Observation.c", "pa"), "POST", "/fhir/Observation", own).status, 201);
  EXPECT_EQ(Call(Token("patient/Observation.c", "pa"), "PUT", "/fhir/Observation/oa-lab",
                 R"({"resourceType":"Observation","id":"oa-lab",)" + Obs("pa", "laboratory") + "}")
                .status,
            403);
}

TEST_F(AccessTest, AsyncWritesAreChecked) {
  auto req = std::make_shared<http::Request>();
  req->method = "POST";
  req->path = req->target = "/fhir/Observation";
  req->body = R"({"resourceType":"Observation",)" + Obs("pb", "laboratory") + "}";
  req->headers.push_back({"Content-Type", "application/fhir+json"});
  http::Response res;
  std::promise<void> done;
  {
    Access pa = Token("patient/*.cruds", "pa");
    service_->HandleAsync(*req, res, pa, [&] { done.set_value(); });
  }  // the caller's Access is gone before the commit may run
  done.get_future().wait();
  EXPECT_EQ(res.status, 403) << res.body;
}

}  // namespace
}  // namespace bevan::rest

namespace bevan::rest {
namespace {

TEST(Capabilities, DeclareSmartWhenAnAuthorisationServerGuardsTheApi) {
  auto s = store::OpenStore("sqlite::memory:");
  ASSERT_TRUE(s.ok());
  ServiceOptions o;
  o.base_url = "https://node.example/fhir";
  o.smart = SmartEndpoints{"https://node.example/auth/authorize", "https://node.example/auth/token",
                           "https://node.example/auth/introspect"};
  FhirService service(**s, o);
  http::Request req;
  req.method = "GET";
  req.path = req.target = "/fhir/metadata";
  http::Response res;
  service.Handle(req, res);
  ASSERT_EQ(res.status, 200);
  auto doc = json::Document::Parse(res.body);
  ASSERT_TRUE(doc.ok());
  auto code = json::ResolvePointer(doc->root(), "/rest/0/security/service/0/coding/0/code");
  ASSERT_TRUE(code.ok() && *code);
  EXPECT_EQ((*code)->as_string(), "SMART-on-FHIR");
  auto token = json::ResolvePointer(doc->root(), "/rest/0/security/extension/0/extension/1/valueUri");
  ASSERT_TRUE(token.ok() && *token);
  EXPECT_EQ((*token)->as_string(), "https://node.example/auth/token");
  // Without an authorisation server there is no security section.
  ServiceOptions plain;
  FhirService open(**s, plain);
  http::Response res2;
  open.Handle(req, res2);
  EXPECT_EQ(res2.body.find("\"security\""), std::string::npos);
}

}  // namespace
}  // namespace bevan::rest

namespace bevan::rest {
namespace {

// Every interaction is audited; an administrator searches the trail and a
// patient sees exactly who accessed their own record.
TEST(Audit, InteractionsAreRecordedAndSearchable) {
  auto s = store::OpenStore("sqlite::memory:");
  ASSERT_TRUE(s.ok());
  std::string path = ::testing::TempDir() + "/rest-audit-" + std::to_string(::getpid()) + ".db";
  std::remove(path.c_str());
  std::remove((path + ".head").c_str());
  audit::AuditLogOptions ao;
  ao.path = path;
  auto log = audit::AuditLog::Open(ao);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ServiceOptions o;
  o.base_url = "http://test/fhir";
  o.audit = log->get();
  FhirService service(**s, o);
  auto call = [&](const Access& who, std::string method, std::string target, std::string body = "") {
    http::Request req;
    req.method = std::move(method);
    req.SetTarget(std::move(target));
    req.body = std::move(body);
    req.remote_address = "127.0.0.9";
    if (!req.body.empty()) req.headers.push_back({"Content-Type", "application/fhir+json"});
    http::Response res;
    service.Handle(req, res, who);
    return res;
  };
  auto token = [](std::string scopes, std::optional<std::string> patient, std::string user) {
    Access a;
    a.enforce = true;
    a.client_id = "app";
    a.fhir_user = std::move(user);
    a.scopes = *auth::ParseScopes(scopes);
    a.patient = std::move(patient);
    return a;
  };
  Access admin = token("user/*.cruds user/AuditEvent.rs", std::nullopt, "Practitioner/admin");
  ASSERT_EQ(call(admin, "PUT", "/fhir/Patient/pa", R"({"resourceType":"Patient","id":"pa"})").status, 201);
  ASSERT_EQ(call(admin, "PUT", "/fhir/Patient/pb", R"({"resourceType":"Patient","id":"pb"})").status, 201);
  ASSERT_EQ(
      call(
          admin, "PUT", "/fhir/Observation/o1",
          R"({"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/pa"}})")
          .status,
      201);
  Access clinician = token("user/*.rs", std::nullopt, "Practitioner/doc");
  ASSERT_EQ(call(clinician, "GET", "/fhir/Observation?subject=Patient/pa").status, 200);
  ASSERT_EQ(call(clinician, "GET", "/fhir/Patient/pb").status, 200);
  Access patient = token("patient/*.rs", "pa", "Patient/pa");
  ASSERT_EQ(call(patient, "GET", "/fhir/Patient/pb").status, 404);  // audited as a failed read
  ASSERT_EQ(call(patient, "DELETE", "/fhir/Patient/pa").status, 403);
  ASSERT_TRUE((*log)->Flush().ok());

  // The administrator sees every event; the trail itself is not writable.
  auto all = call(admin, "GET", "/fhir/AuditEvent?_count=100");
  ASSERT_EQ(all.status, 200) << all.body;
  auto doc = json::Document::Parse(all.body);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->root().Find("entry")->size(), 7u) << all.body;  // 3 writes, 2 clinician reads, 2 patient requests
  EXPECT_EQ(call(admin, "POST", "/fhir/AuditEvent", R"({"resourceType":"AuditEvent"})").status, 405);
  // Who touched patient A: the admin's writes of Patient/pa and o1, the
  // clinician's search, and patient A's own refused delete.
  auto about_a = call(admin, "GET", "/fhir/AuditEvent?patient=Patient/pa&_count=100");
  ASSERT_EQ(about_a.status, 200);
  EXPECT_NE(about_a.body.find("Practitioner/doc"), std::string::npos);
  EXPECT_NE(about_a.body.find("Observation/o1"), std::string::npos);
  // Patient A reads their own trail and cannot read anyone else's.
  auto own = call(patient, "GET", "/fhir/AuditEvent");
  ASSERT_EQ(own.status, 200) << own.body;
  EXPECT_NE(own.body.find("Practitioner/doc"), std::string::npos);
  EXPECT_EQ(own.body.find("Patient/pb"), std::string::npos) << own.body;
  EXPECT_EQ(call(patient, "GET", "/fhir/AuditEvent?patient=pb").status, 403);
  auto denied = call(admin, "GET", "/fhir/AuditEvent?outcome=4");
  EXPECT_NE(denied.body.find("denied"), std::string::npos) << denied.body;
  EXPECT_EQ(call(admin, "GET", "/fhir/AuditEvent?bogus=1").status, 400);
  // A clinician's wildcard does not reach the trail; only a scope naming AuditEvent does.
  EXPECT_EQ(call(clinician, "GET", "/fhir/AuditEvent").status, 403);
  // And the chain verifies.
  log->reset();
  auto report = audit::Verify(path);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_GE(report->events, 7);
}

}  // namespace
}  // namespace bevan::rest

namespace bevan::rest {
namespace {

TEST(ExportAccess, BulkExportNeedsUnrestrictedScopes) {
  auto s = store::OpenStore("sqlite::memory:");
  ASSERT_TRUE(s.ok());
  ExportOptions eo;
  eo.base_url = "http://test/fhir";
  eo.directory = ::testing::TempDir() + "/access-export-" + std::to_string(::getpid());
  BulkExporter exporter(**s, eo);
  ServiceOptions o;
  o.base_url = "http://test/fhir";
  o.exporter = &exporter;
  FhirService service(**s, o);
  auto kick = [&](const std::string& scopes, std::optional<std::string> patient, const std::string& target) {
    Access a;
    a.enforce = true;
    a.client_id = "etl";
    a.scopes = *auth::ParseScopes(scopes);
    a.patient = std::move(patient);
    http::Request req;
    req.method = "GET";
    req.SetTarget(std::move(target));
    req.headers.push_back({"Prefer", "respond-async"});
    http::Response res;
    service.Handle(req, res, a);
    return res.status;
  };
  EXPECT_EQ(kick("system/*.rs", std::nullopt, "/fhir/$export"), 202);
  EXPECT_EQ(kick("system/Patient.rs system/Observation.rs", std::nullopt, "/fhir/$export?_type=Patient,Observation"),
            202);
  EXPECT_EQ(kick("system/Patient.rs", std::nullopt, "/fhir/$export?_type=Patient,Observation"), 403);
  EXPECT_EQ(kick("system/Patient.rs", std::nullopt, "/fhir/$export"), 403);
  EXPECT_EQ(kick("patient/*.rs", "pa", "/fhir/Patient/$export"), 403);
  EXPECT_EQ(kick("system/Observation.rs?category=laboratory", std::nullopt, "/fhir/$export?_type=Observation"), 403);
  EXPECT_EQ(kick("user/*.r", std::nullopt, "/fhir/$export"), 403);  // read without search
}

}  // namespace
}  // namespace bevan::rest
