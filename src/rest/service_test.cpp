// FHIR interactions through FhirService::Handle over a real SQLite store.
#include "rest/service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "json/json.h"

namespace bevan::rest {
namespace {

class RestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenStore("sqlite::memory:");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    ServiceOptions o;
    o.base_url = "http://test/fhir";
    o.max_bundle_entries = 20;
    service_ = std::make_unique<FhirService>(*store_, o);
  }

  http::Response Call(std::string method, std::string target, std::string body = "", http::Headers headers = {}) {
    http::Request req;
    req.method = std::move(method);
    req.SetTarget(std::move(target));
    req.body = std::move(body);
    req.headers = std::move(headers);
    http::Response res;
    service_->Handle(req, res);
    return res;
  }

  // HandleAsync, waiting for its completion.
  http::Response CallAsync(std::string method, std::string target, std::string body = "", http::Headers headers = {}) {
    auto req = std::make_shared<http::Request>();
    req->method = std::move(method);
    req->SetTarget(std::move(target));
    req->body = std::move(body);
    req->headers = std::move(headers);
    auto res = std::make_shared<http::Response>();
    std::promise<void> finished;
    int calls = 0;
    service_->HandleAsync(*req, *res, [&] {
      ++calls;
      finished.set_value();
    });
    finished.get_future().wait();
    EXPECT_EQ(calls, 1);
    return *res;
  }

  static std::string Field(const std::string& json_text, std::string_view pointer) {
    auto doc = json::Document::Parse(json_text);
    if (!doc.ok()) return "<not json>";
    auto v = json::ResolvePointer(doc->root(), pointer);
    if (!v.ok() || !*v) return "<missing>";
    return (*v)->is_string() ? std::string((*v)->as_string()) : json::ToString(**v);
  }

  std::string CreatePatient(const std::string& extra = "") {
    auto r = Call("POST", "/fhir/Patient", R"({"resourceType":"Patient","active":true)" + extra + "}");
    EXPECT_EQ(r.status, 201) << r.body;
    return Field(r.body, "/id");
  }

  std::unique_ptr<store::Store> store_;
  std::unique_ptr<FhirService> service_;
};

TEST_F(RestTest, CreateReadVreadWithHeaders) {
  auto r = Call("POST", "/fhir/Patient", R"({"resourceType":"Patient","id":"ignored","birthDate":"1970-01-01"})");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id = Field(r.body, "/id");
  EXPECT_NE(id, "ignored");
  EXPECT_EQ(r.Header("ETag"), "W/\"1\"");
  EXPECT_EQ(r.Header("Location"), "http://test/fhir/Patient/" + id + "/_history/1");
  EXPECT_FALSE(r.Header("Last-Modified").empty());
  EXPECT_EQ(Field(r.body, "/meta/versionId"), "1");
  auto read = Call("GET", "/fhir/Patient/" + id);
  ASSERT_EQ(read.status, 200);
  EXPECT_EQ(read.body, r.body);  // the stored bytes
  EXPECT_EQ(read.Header("Content-Type"), "application/fhir+json; charset=utf-8");
  EXPECT_EQ(Call("GET", "/fhir/Patient/" + id + "/_history/1").body, r.body);
  EXPECT_EQ(Call("GET", "/fhir/Patient/" + id + "/_history/2").status, 404);
  EXPECT_EQ(Call("GET", "/fhir/Patient/nope").status, 404);
  // Conditional read.
  EXPECT_EQ(Call("GET", "/fhir/Patient/" + id, "", {{"If-None-Match", "W/\"1\""}}).status, 304);
  EXPECT_EQ(
      Call("GET", "/fhir/Patient/" + id, "", {{"If-Modified-Since", std::string(r.Header("Last-Modified"))}}).status,
      304);
  EXPECT_EQ(Call("GET", "/fhir/Patient/" + id, "", {{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}).status,
            200);
}

TEST_F(RestTest, MetaIsStampedWhateverTheContent) {
  // Client-supplied versionId/lastUpdated are replaced; content that looks
  // like the server's internal placeholders is kept as it is.
  auto r = Call("POST", "/fhir/Patient",
                R"({"resourceType":"Patient","meta":{"tag":[{"display":"\u0001BevanVersion\u0001"}],"versionId":"99",)"
                R"("lastUpdated":"2000-01-01T00:00:00Z"},"name":[{"text":"\u0001BevanTime\u0001"}]})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto read = Call("GET", "/fhir/Patient/" + Field(r.body, "/id"));
  EXPECT_EQ(Field(read.body, "/meta/versionId"), "1");
  EXPECT_NE(Field(read.body, "/meta/lastUpdated"), "2000-01-01T00:00:00Z");
  EXPECT_EQ(Field(read.body, "/meta/tag/0/display"),
            "\x01"
            "BevanVersion\x01");
  EXPECT_EQ(Field(read.body, "/name/0/text"),
            "\x01"
            "BevanTime\x01");
}

TEST_F(RestTest, AsyncCreatesAndUpdates) {
  auto c = CallAsync("POST", "/fhir/Patient", R"({"resourceType":"Patient","active":true})");
  ASSERT_EQ(c.status, 201) << c.body;
  std::string id = Field(c.body, "/id");
  EXPECT_EQ(Call("GET", "/fhir/Patient/" + id).body, c.body);
  std::string body = R"({"resourceType":"Patient","id":")" + id + R"(","active":false})";
  EXPECT_EQ(CallAsync("PUT", "/fhir/Patient/" + id, body, {{"If-Match", "W/\"1\""}}).status, 200);
  EXPECT_EQ(CallAsync("PUT", "/fhir/Patient/" + id, body, {{"If-Match", "W/\"1\""}}).status, 412);
  EXPECT_EQ(CallAsync("PUT", "/fhir/Patient/other", body).status, 400);
  EXPECT_EQ(CallAsync("POST", "/fhir/Patient", R"({"resourceType":"Patient","birthDate":"x"})").status, 422);
  EXPECT_EQ(CallAsync("POST", "/fhir/Patient", "{").status, 400);
  // Everything else goes the synchronous way through the same entry point.
  EXPECT_EQ(CallAsync("GET", "/fhir/Patient/" + id).status, 200);
  EXPECT_EQ(CallAsync("DELETE", "/fhir/Patient/" + id).status, 204);
  // Many in flight at once: each answered once, all stored.
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        if (CallAsync("POST", "/fhir/Patient", R"({"resourceType":"Patient"})").status == 201) ++created;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(created, 160);
}

TEST_F(RestTest, BadInputIsRejectedAndNothingStored) {
  EXPECT_EQ(Call("POST", "/fhir/Patient", "{not json").status, 400);
  EXPECT_EQ(Call("POST", "/fhir/Patient", R"({"resourceType":"Observation"})").status, 400);
  auto invalid = Call("POST", "/fhir/Patient", R"({"resourceType":"Patient","birthDate":"1970-02-30"})");
  EXPECT_EQ(invalid.status, 422);
  EXPECT_EQ(Field(invalid.body, "/issue/0/expression/0"), "Patient.birthDate");
  EXPECT_EQ(Call("POST", "/fhir/Nonsense", R"({"resourceType":"Nonsense"})").status, 404);
  EXPECT_EQ(Call("POST", "/fhir/Patient", "<Patient/>", {{"Content-Type", "application/fhir+xml"}}).status, 415);
  EXPECT_EQ(Call("GET", "/fhir/Patient/a", "", {{"Accept", "application/fhir+xml"}}).status, 406);
  EXPECT_EQ(Call("GET", "/fhir/Patient/bad_id!").status, 400);
  auto history = Call("GET", "/fhir/_history");
  EXPECT_EQ(history.status, 200);
  EXPECT_EQ(Field(history.body, "/entry"), "[]");  // nothing was stored
}

TEST_F(RestTest, UpdateVersionsAndIfMatch) {
  std::string id = CreatePatient();
  std::string body = R"({"resourceType":"Patient","id":")" + id + R"(","active":false})";
  auto u = Call("PUT", "/fhir/Patient/" + id, body, {{"If-Match", "W/\"1\""}});
  ASSERT_EQ(u.status, 200) << u.body;
  EXPECT_EQ(u.Header("ETag"), "W/\"2\"");
  auto stale = Call("PUT", "/fhir/Patient/" + id, body, {{"If-Match", "W/\"1\""}});
  EXPECT_EQ(stale.status, 412);
  // id mismatch and missing id.
  EXPECT_EQ(Call("PUT", "/fhir/Patient/" + id, R"({"resourceType":"Patient","id":"other"})").status, 400);
  EXPECT_EQ(Call("PUT", "/fhir/Patient/" + id, R"({"resourceType":"Patient"})").status, 400);
  // Update as create with a client id.
  auto c = Call("PUT", "/fhir/Patient/client-1", R"({"resourceType":"Patient","id":"client-1"})");
  EXPECT_EQ(c.status, 201);
  EXPECT_EQ(Field(c.body, "/meta/versionId"), "1");
  // Prefer.
  auto minimal = Call("PUT", "/fhir/Patient/client-1", R"({"resourceType":"Patient","id":"client-1"})",
                      {{"Prefer", "return=minimal"}});
  EXPECT_EQ(minimal.status, 200);
  EXPECT_TRUE(minimal.body.empty());
  auto oo = Call("PUT", "/fhir/Patient/client-1", R"({"resourceType":"Patient","id":"client-1"})",
                 {{"Prefer", "return=OperationOutcome"}});
  EXPECT_EQ(Field(oo.body, "/resourceType"), "OperationOutcome");
}

TEST_F(RestTest, DeleteGivesGoneAndHistoryKeepsVersions) {
  std::string id = CreatePatient();
  EXPECT_EQ(Call("DELETE", "/fhir/Patient/" + id).status, 204);
  EXPECT_EQ(Call("GET", "/fhir/Patient/" + id).status, 410);
  EXPECT_EQ(Call("DELETE", "/fhir/Patient/" + id).status, 204);
  EXPECT_EQ(Call("DELETE", "/fhir/Patient/never").status, 404);
  EXPECT_EQ(Call("GET", "/fhir/Patient/" + id + "/_history/2").status, 410);
  EXPECT_EQ(Call("GET", "/fhir/Patient/" + id + "/_history/1").status, 200);
  auto h = Call("GET", "/fhir/Patient/" + id + "/_history");
  ASSERT_EQ(h.status, 200);
  EXPECT_EQ(Field(h.body, "/type"), "history");
  EXPECT_EQ(Field(h.body, "/entry/0/request/method"), "DELETE");
  EXPECT_EQ(Field(h.body, "/entry/1/request/method"), "POST");
  EXPECT_EQ(Field(h.body, "/entry/1/resource/id"), id);
  // Re-create after delete.
  auto again = Call("PUT", "/fhir/Patient/" + id, R"({"resourceType":"Patient","id":")" + id + R"("})");
  EXPECT_EQ(again.status, 201);
  EXPECT_EQ(again.Header("ETag"), "W/\"3\"");
}

TEST_F(RestTest, HistoryPagingAndSince) {
  for (int i = 0; i < 5; ++i) CreatePatient();
  auto page1 = Call("GET", "/fhir/Patient/_history?_count=2");
  ASSERT_EQ(page1.status, 200) << page1.body;
  std::string next = Field(page1.body, "/link/1/url");
  ASSERT_NE(next.find("_cursor="), std::string::npos) << page1.body;
  auto page2 = Call("GET", next.substr(std::string("http://test").size()));
  ASSERT_EQ(page2.status, 200) << page2.body;
  EXPECT_NE(Field(page1.body, "/entry/0/fullUrl"), Field(page2.body, "/entry/0/fullUrl"));
  EXPECT_EQ(Call("GET", "/fhir/_history?_since=2999-01-01").body.find("\"entry\":[]") != std::string::npos, true);
  EXPECT_EQ(Call("GET", "/fhir/_history?_since=notadate").status, 400);
  EXPECT_EQ(Call("GET", "/fhir/_history?_count=0").status, 400);
  EXPECT_EQ(Call("GET", "/fhir/_history?foo=1").status, 400);
}

TEST_F(RestTest, ConditionalCreateUpdateDelete) {
  std::string ident = R"(,"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}])";
  auto first = Call("POST", "/fhir/Patient", R"({"resourceType":"Patient")" + ident + "}",
                    {{"If-None-Exist", "identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009"}});
  ASSERT_EQ(first.status, 201) << first.body;
  auto second = Call("POST", "/fhir/Patient", R"({"resourceType":"Patient")" + ident + "}",
                     {{"If-None-Exist", "identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009"}});
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(Field(second.body, "/id"), Field(first.body, "/id"));
  auto upd = Call("PUT", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009",
                  R"({"resourceType":"Patient","active":false)" + ident + "}");
  EXPECT_EQ(upd.status, 200) << upd.body;
  EXPECT_EQ(Field(upd.body, "/id"), Field(first.body, "/id"));
  // A second resource with the same identifier makes the criteria ambiguous.
  CreatePatient(ident);
  EXPECT_EQ(Call("POST", "/fhir/Patient", R"({"resourceType":"Patient"})",
                 {{"If-None-Exist", "identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009"}})
                .status,
            412);
  EXPECT_EQ(Call("DELETE", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009").status, 412);
  EXPECT_EQ(Call("DELETE", "/fhir/Patient?_id=" + Field(first.body, "/id")).status, 204);
  EXPECT_EQ(Call("GET", "/fhir/Patient/" + Field(first.body, "/id")).status, 410);
  EXPECT_EQ(Call("POST", "/fhir/Patient", R"({"resourceType":"Patient"})", {{"If-None-Exist", "nonesuch=x"}}).status,
            400);
}

// Conditional operations take any search criteria, ANDed across parameters.
TEST_F(RestTest, ConditionalOperationsWithSearchCriteria) {
  auto patient = [](const std::string& family, const std::string& birth) {
    return R"({"resourceType":"Patient","name":[{"family":")" + family + R"("}],"birthDate":")" + birth + R"("})";
  };
  const std::string crit = "family=Quill&birthdate=1970-01-01";
  auto a = Call("POST", "/fhir/Patient", patient("Quill", "1970-01-01"), {{"If-None-Exist", crit}});
  ASSERT_EQ(a.status, 201) << a.body;
  std::string id = Field(a.body, "/id");
  // Same family, other birth date: not a match of the criteria.
  ASSERT_EQ(Call("POST", "/fhir/Patient", patient("Quill", "1980-05-05")).status, 201);
  auto again = Call("POST", "/fhir/Patient", patient("Quill", "1970-01-01"), {{"If-None-Exist", crit}});
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(Field(again.body, "/id"), id);
  // Conditional update of the one match, then patch.
  auto upd = Call("PUT", "/fhir/Patient?" + crit,
                  R"({"resourceType":"Patient","active":true,"name":[{"family":"Quill"}],"birthDate":"1970-01-01"})");
  EXPECT_EQ(upd.status, 200) << upd.body;
  EXPECT_EQ(Field(upd.body, "/id"), id);
  auto patch =
      Call("PATCH", "/fhir/Patient?" + crit + "&active=true", R"([{"op":"replace","path":"/active","value":false}])",
           {{"Content-Type", "application/json-patch+json"}});
  EXPECT_EQ(patch.status, 200) << patch.body;
  EXPECT_EQ(Field(patch.body, "/active"), "false");
  // Several matches: 412 for create, update and delete.
  EXPECT_EQ(Call("POST", "/fhir/Patient", patient("Quill", "1990-01-01"), {{"If-None-Exist", "family=Quill"}}).status,
            412);
  EXPECT_EQ(Call("PUT", "/fhir/Patient?family=quill&birthdate=ge1960", patient("Quill", "1970-01-01")).status, 412);
  EXPECT_EQ(Call("DELETE", "/fhir/Patient?family=Quill&birthdate=lt2000").status, 412);
  // Unknown and malformed criteria, and result parameters alone: 400.
  EXPECT_EQ(Call("DELETE", "/fhir/Patient?family=Quill&nonesuch=1").status, 400);
  EXPECT_EQ(Call("DELETE", "/fhir/Patient?birthdate=1970-13-01").status, 400);
  EXPECT_EQ(Call("DELETE", "/fhir/Patient?_count=1").status, 400);
  EXPECT_EQ(Call("PUT", "/fhir/Patient?birthdate=notadate", patient("Quill", "1970-01-01")).status, 400);
  // Conditional delete of the one match.
  EXPECT_EQ(Call("DELETE", "/fhir/Patient?" + crit).status, 204);
  EXPECT_EQ(Call("GET", "/fhir/Patient/" + id).status, 410);
  // A conditional reference with several criteria in a transaction.
  std::string other = Field(Call("POST", "/fhir/Patient", patient("Vell", "1955-03-04")).body, "/id");
  std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)"
                   R"({"resourceType":"Observation","status":"final","code":{"text":"x"},)"
                   R"("subject":{"reference":"Patient?family=Vell&birthdate=1955-03-04"}},)"
                   R"("request":{"method":"POST","url":"Observation"}}]})";
  auto r = Call("POST", "/fhir", tx);
  ASSERT_EQ(r.status, 200) << r.body;
  std::string loc = Field(r.body, "/entry/0/response/location");
  ASSERT_TRUE(loc.starts_with("http://test/fhir/Observation/")) << loc;
  auto obs = Call("GET", loc.substr(std::string_view("http://test").size(), loc.find("/_history") - 11));
  EXPECT_EQ(Field(obs.body, "/subject/reference"), "Patient/" + other);
}

// System-level search: _type with the common parameters, stable paging across
// types, POST [base]/_search, unknown types and non-common parameters.
TEST_F(RestTest, SystemSearchAcrossTypes) {
  const std::string tag = R"("meta":{"tag":[{"system":"urn:t","code":"sys"}]})";
  std::vector<std::string> made;
  for (int i = 0; i < 3; ++i) {
    auto p = Call("POST", "/fhir/Patient", R"({"resourceType":"Patient",)" + tag + "}");
    ASSERT_EQ(p.status, 201) << p.body;
    made.push_back("Patient/" + Field(p.body, "/id"));
    auto o = Call("POST", "/fhir/Observation",
                  R"({"resourceType":"Observation","status":"final","code":{"text":"x"},)" + tag + "}");
    ASSERT_EQ(o.status, 201) << o.body;
    made.push_back("Observation/" + Field(o.body, "/id"));
  }
  ASSERT_EQ(Call("POST", "/fhir/Encounter",
                 R"({"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},)" + tag + "}")
                .status,
            201);
  // Pages of two, following `next` links: every match once, in creation order.
  std::vector<std::string> got;
  std::string url = "/fhir?_type=Patient,Observation&_tag=urn:t|sys&_count=2";
  for (int pages = 0; !url.empty() && pages < 10; ++pages) {
    auto r = Call("GET", url);
    ASSERT_EQ(r.status, 200) << r.body;
    auto doc = json::Document::Parse(r.body);
    ASSERT_TRUE(doc.ok());
    for (const json::Value& e : doc->root().Find("entry")->items()) {
      const json::Value& res = *e.Find("resource");
      got.push_back(std::string(res.Find("resourceType")->as_string()) + "/" +
                    std::string(res.Find("id")->as_string()));
    }
    url.clear();
    for (const json::Value& l : doc->root().Find("link")->items()) {
      if (l.Find("relation")->as_string() == "next") {
        std::string next(l.Find("url")->as_string());
        ASSERT_TRUE(next.starts_with("http://test/fhir?")) << next;
        url = next.substr(std::string_view("http://test").size());
      }
    }
  }
  EXPECT_EQ(got, made);
  auto post = Call("POST", "/fhir/_search", "_type=Encounter,Observation&_tag=sys&_total=accurate",
                   {{"Content-Type", "application/x-www-form-urlencoded"}});
  ASSERT_EQ(post.status, 200) << post.body;
  EXPECT_EQ(Field(post.body, "/total"), "4");
  EXPECT_EQ(Call("GET", "/fhir?_type=Nonesuch&_tag=sys").status, 400);
  EXPECT_EQ(Call("GET", "/fhir?_type=Patient&_sort=birthdate").status, 400);
  // A type's own parameter is ignored (reported), or 400 under handling=strict.
  auto fam = Call("GET", "/fhir?_type=Patient&_tag=sys&family=x");
  ASSERT_EQ(fam.status, 200) << fam.body;
  EXPECT_NE(fam.body.find("family"), std::string::npos);
  EXPECT_EQ(Call("GET", "/fhir?_type=Patient&family=x", "", {{"Prefer", "handling=strict"}}).status, 400);
}

// Token :in against a ValueSet posted to the server; an unknown one is 400.
TEST_F(RestTest, TokenInAValueSetOnTheServer) {
  ASSERT_EQ(Call("POST", "/fhir/ValueSet",
                 R"({"resourceType":"ValueSet","url":"http://x/vs","status":"active","compose":{"include":[)"
                 R"({"system":"http://loinc.org","concept":[{"code":"8302-2"}]}]}})")
                .status,
            201);
  for (const char* code : {"8302-2", "29463-7"}) {
    ASSERT_EQ(Call("POST", "/fhir/Observation",
                   std::string(R"({"resourceType":"Observation","status":"final","code":{"coding":[)"
                               R"({"system":"http://loinc.org","code":")") +
                       code + R"("}]}})")
                  .status,
              201);
  }
  auto in = Call("GET", "/fhir/Observation?code:in=http://x/vs&_total=accurate");
  ASSERT_EQ(in.status, 200) << in.body;
  EXPECT_EQ(Field(in.body, "/total"), "1");
  EXPECT_EQ(Field(in.body, "/entry/0/resource/code/coding/0/code"), "8302-2");
  auto not_in = Call("GET", "/fhir/Observation?code:not-in=http://x/vs");
  EXPECT_EQ(Field(not_in.body, "/entry/0/resource/code/coding/0/code"), "29463-7");
  EXPECT_EQ(Call("GET", "/fhir/Observation?code:in=http://x/unknown").status, 400);
  // Conditional operations resolve it inside the transaction.
  EXPECT_EQ(Call("DELETE", "/fhir/Observation?code:in=http://x/vs").status, 204);
}

TEST_F(RestTest, RacingConditionalCreatesMakeOneResource) {
  std::atomic<int> created{0}, found{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      auto r = Call("POST", "/fhir/Patient",
                    R"({"resourceType":"Patient","identifier":[{"system":"urn:x","value":"race"}]})",
                    {{"If-None-Exist", "identifier=urn:x|race"}});
      if (r.status == 201) ++created;
      if (r.status == 200) ++found;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created, 1);
  EXPECT_EQ(found, 7);
}

TEST_F(RestTest, ParallelIfMatchUpdatesLoseNothing) {
  std::string id = CreatePatient();
  std::atomic<int> wins{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 50; ++t) {
    threads.emplace_back([&, t] {
      std::string body =
          R"({"resourceType":"Patient","id":")" + id + R"(","gender":")" + (t % 2 ? "male" : "female") + R"("})";
      auto r = Call("PUT", "/fhir/Patient/" + id, body, {{"If-Match", "W/\"1\""}});
      if (r.status == 200) ++wins;
      if (r.status == 412) ++conflicts;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins, 1);
  EXPECT_EQ(conflicts, 49);
  EXPECT_EQ(Call("GET", "/fhir/Patient/" + id).Header("ETag"), "W/\"2\"");
}

TEST_F(RestTest, JsonPatch) {
  std::string id = CreatePatient();
  auto p = Call("PATCH", "/fhir/Patient/" + id, R"([{"op":"replace","path":"/active","value":false}])",
                {{"Content-Type", "application/json-patch+json"}});
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(Field(p.body, "/active"), "false");
  EXPECT_EQ(Field(p.body, "/meta/versionId"), "2");
  auto bad = Call("PATCH", "/fhir/Patient/" + id, R"([{"op":"replace","path":"/birthDate","value":"x"}])",
                  {{"Content-Type", "application/json-patch+json"}});
  EXPECT_EQ(bad.status, 422);  // /birthDate does not exist
  auto invalid = Call("PATCH", "/fhir/Patient/" + id, R"([{"op":"add","path":"/birthDate","value":"1970-13-01"}])",
                      {{"Content-Type", "application/json-patch+json"}});
  EXPECT_EQ(invalid.status, 422);
  EXPECT_EQ(Call("GET", "/fhir/Patient/" + id).Header("ETag"), "W/\"2\"");
}

TEST_F(RestTest, FhirPathPatch) {
  std::string id = CreatePatient(R"(,"birthDate":"1920-01-01")");
  std::string params = R"({"resourceType":"Parameters","parameter":[{"name":"operation","part":[
    {"name":"type","valueCode":"replace"},{"name":"path","valueString":"Patient.birthDate"},
    {"name":"value","valueDate":"1930-01-01"}]}]})";
  auto p = Call("PATCH", "/fhir/Patient/" + id, params, {{"Content-Type", "application/fhir+json"}});
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(Field(p.body, "/birthDate"), "1930-01-01");
  EXPECT_EQ(Field(p.body, "/meta/versionId"), "2");
  // A patch whose path matches nothing to replace fails with 422 and changes nothing.
  std::string bad = R"({"resourceType":"Parameters","parameter":[{"name":"operation","part":[
    {"name":"type","valueCode":"replace"},{"name":"path","valueString":"Patient.deceased"},
    {"name":"value","valueBoolean":true}]}]})";
  EXPECT_EQ(Call("PATCH", "/fhir/Patient/" + id, bad, {{"Content-Type", "application/fhir+json"}}).status, 422);
  EXPECT_EQ(
      Call("PATCH", "/fhir/Patient/" + id, R"({"resourceType":"Patient"})", {{"Content-Type", "application/fhir+json"}})
          .status,
      400);
  EXPECT_EQ(Call("PATCH", "/fhir/Patient/" + id, "x", {{"Content-Type", "text/plain"}}).status, 415);
  // In a transaction.
  std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" + params +
                   R"(,"request":{"method":"PATCH","url":"Patient/)" + id + R"("}}]})";
  auto t = Call("POST", "/fhir", tx);
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(Field(t.body, "/entry/0/resource/meta/versionId"), "3");
}

TEST_F(RestTest, TransactionIsAtomicAndRewritesReferences) {
  std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"urn:uuid:11111111-1111-4111-8111-111111111111","resource":{"resourceType":"Patient","active":true},
     "request":{"method":"POST","url":"Patient"}},
    {"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},
      "subject":{"reference":"urn:uuid:11111111-1111-4111-8111-111111111111"}},
     "request":{"method":"POST","url":"Observation"}}]})";
  auto r = Call("POST", "/fhir", tx);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Field(r.body, "/type"), "transaction-response");
  EXPECT_EQ(Field(r.body, "/entry/0/response/status"), "201 Created");
  std::string pid = Field(r.body, "/entry/0/resource/id");
  EXPECT_EQ(Field(r.body, "/entry/1/resource/subject/reference"), "Patient/" + pid);
  // A failing entry rolls back the whole transaction.
  std::string bad = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"resource":{"resourceType":"Patient","active":true},"request":{"method":"POST","url":"Patient"}},
    {"request":{"method":"DELETE","url":"Patient/does-not-exist"}}]})";
  auto f = Call("POST", "/fhir", bad);
  EXPECT_EQ(f.status, 404) << f.body;
  auto h = Call("GET", "/fhir/Patient/_history");
  EXPECT_EQ(h.body.find(pid) != std::string::npos, true);
  // Only the first transaction's patient exists: one history entry for Patient.
  EXPECT_EQ(Field(h.body, "/entry/1"), "<missing>");
}

TEST_F(RestTest, BatchEntriesAreIndependent) {
  std::string batch = R"({"resourceType":"Bundle","type":"batch","entry":[
    {"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
    {"request":{"method":"GET","url":"Patient/missing"}},
    {"resource":{"resourceType":"Patient","birthDate":"bad"},"request":{"method":"POST","url":"Patient"}}]})";
  auto r = Call("POST", "/fhir", batch);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Field(r.body, "/entry/0/response/status"), "201 Created");
  EXPECT_EQ(Field(r.body, "/entry/1/response/status"), "404 Not Found");
  EXPECT_EQ(Field(r.body, "/entry/2/response/status"), "422 Unprocessable Entity");
  EXPECT_EQ(Field(r.body, "/entry/2/response/outcome/resourceType"), "OperationOutcome");
}

TEST_F(RestTest, BundleLimits) {
  std::string big = R"({"resourceType":"Bundle","type":"batch","entry":[)";
  for (int i = 0; i < 21; ++i) big += std::string(i ? "," : "") + R"({"request":{"method":"GET","url":"Patient/x"}})";
  big += "]}";
  EXPECT_EQ(Call("POST", "/fhir", big).status, 413);
  EXPECT_EQ(Call("POST", "/fhir", R"({"resourceType":"Bundle","type":"collection"})").status, 400);
}

TEST_F(RestTest, ValidateAndCapabilities) {
  auto v = Call("POST", "/fhir/Patient/$validate", R"({"resourceType":"Patient","gender":"x"})");
  EXPECT_EQ(v.status, 200);
  EXPECT_EQ(Field(v.body, "/issue/0/code"), "code-invalid");
  auto ok = Call("POST", "/fhir/Patient/$validate", R"({"resourceType":"Patient"})");
  EXPECT_EQ(Field(ok.body, "/issue/0/severity"), "information");
  auto m = Call("GET", "/fhir/metadata");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(Field(m.body, "/resourceType"), "CapabilityStatement");
  EXPECT_EQ(Field(m.body, "/fhirVersion"), "4.0.1");
  // The CapabilityStatement is itself a valid resource.
  auto self = Call("POST", "/fhir/CapabilityStatement/$validate", m.body);
  EXPECT_EQ(Field(self.body, "/issue/0/severity"), "information") << self.body.substr(0, 800);
}

TEST_F(RestTest, Search) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto r = Call("POST", "/fhir/Patient",
                  R"({"resourceType":"Patient","name":[{"family":"Ådams","given":["P)" + std::to_string(i) +
                      R"("]}],"birthDate":"19)" + std::to_string(50 + i) + R"(-06-01"})");
    ASSERT_EQ(r.status, 201) << r.body;
    ids.push_back(Field(r.body, "/id"));
  }
  Call("POST", "/fhir/Patient", R"({"resourceType":"Patient","name":[{"family":"Other"}]})");
  auto obs = Call(
      "POST", "/fhir/Observation",
      R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/)" +
          ids[0] +
          R"("},"valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}})");
  ASSERT_EQ(obs.status, 201) << obs.body;
  // String search: starts-with, accent- and case-insensitive.
  auto r = Call("GET", "/fhir/Patient?family=adams&_total=accurate");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Field(r.body, "/total"), "5");
  EXPECT_EQ(Field(r.body, "/entry/0/search/mode"), "match");
  // Dates with prefixes; paging through next links.
  auto page = Call("GET", "/fhir/Patient?birthdate=ge1952&_count=2");
  ASSERT_EQ(page.status, 200) << page.body;
  std::string next = Field(page.body, "/link/1/url");
  ASSERT_NE(next.find("_cursor="), std::string::npos) << page.body;
  auto page2 = Call("GET", next.substr(std::string("http://test").size()));
  EXPECT_EQ(page2.status, 200) << page2.body;
  EXPECT_NE(Field(page2.body, "/entry/0/resource/id"), Field(page.body, "/entry/0/resource/id"));
  // Token, quantity, reference and _include.
  auto o =
      Call("GET", "/fhir/Observation?code=http://loinc.org|8867-4&value-quantity=gt70&_include=Observation:subject");
  ASSERT_EQ(o.status, 200) << o.body;
  EXPECT_EQ(Field(o.body, "/entry/1/search/mode"), "include");
  EXPECT_EQ(Field(o.body, "/entry/1/resource/id"), ids[0]);
  // Compartment search.
  auto c = Call("GET", "/fhir/Patient/" + ids[0] + "/Observation");
  EXPECT_EQ(Field(c.body, "/entry/0/resource/resourceType"), "Observation");
  EXPECT_EQ(Field(Call("GET", "/fhir/Patient/" + ids[1] + "/Observation").body, "/entry"), "[]");
  // POST _search with a form body.
  auto post =
      Call("POST", "/fhir/Patient/_search", "family=other", {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(Field(post.body, "/entry/0/resource/name/0/family"), "Other");
  // Unknown parameters: reported, or 400 under strict handling; malformed values: 400.
  auto unknown = Call("GET", "/fhir/Patient?nonsense=1&family=other");
  EXPECT_EQ(Field(unknown.body, "/entry/1/search/mode"), "outcome");
  EXPECT_EQ(Call("GET", "/fhir/Patient?nonsense=1", "", {{"Prefer", "handling=strict"}}).status, 400);
  EXPECT_EQ(Call("GET", "/fhir/Patient?birthdate=notadate").status, 400);
  // $everything: the patient and their compartment.
  auto all = Call("GET", "/fhir/Patient/" + ids[0] + "/$everything");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(Field(all.body, "/total"), "2");
  EXPECT_EQ(Field(Call("GET", "/fhir/Patient/" + ids[0] + "/$everything?_type=Observation").body, "/total"), "1");
  EXPECT_EQ(Field(Call("GET", "/fhir/Patient/" + ids[0] + "/$everything?_since=2999-01-01").body, "/total"), "0");
  EXPECT_EQ(Call("GET", "/fhir/Patient/nobody/$everything").status, 404);
  EXPECT_EQ(Call("GET", "/fhir/Patient/" + ids[0] + "/$everything?_type=Nope").status, 400);
  // _summary and _elements.
  auto count = Call("GET", "/fhir/Patient?family=adams&_summary=count");
  EXPECT_EQ(Field(count.body, "/total"), "5");
  EXPECT_EQ(Field(count.body, "/entry"), "[]");
  auto el = Call("GET", "/fhir/Patient?family=adams&_elements=birthDate");
  EXPECT_EQ(Field(el.body, "/entry/0/resource/name"), "<missing>");
  EXPECT_NE(Field(el.body, "/entry/0/resource/birthDate"), "<missing>");
  EXPECT_EQ(Field(el.body, "/entry/0/resource/meta/tag/0/code"), "SUBSETTED");
  auto sum = Call("GET", "/fhir/Patient?family=adams&_summary=true");
  EXPECT_NE(Field(sum.body, "/entry/0/resource/name"), "<missing>");  // name is a summary element
}

TEST_F(RestTest, CompartmentIsRecorded) {
  std::string pid = CreatePatient();
  auto o =
      Call("POST", "/fhir/Observation",
           R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/)" +
               pid + R"("}})");
  ASSERT_EQ(o.status, 201) << o.body;
  auto stored = store_->Read("Observation", Field(o.body, "/id"));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->compartment, pid);
  auto p = store_->Read("Patient", pid);
  EXPECT_EQ(p->compartment, pid);
}

}  // namespace
}  // namespace bevan::rest
