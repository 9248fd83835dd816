// SearchParameter resources as search parameters, through the REST service on
// both backends: a posted SearchParameter is accepted by searches and indexes
// later writes; Reindex (`bevan reindex`) gives resources written before it
// their rows; a restart (registry cleared, LoadSearchParameters, a new
// service over the same store) keeps it; invalid ones are 422. Results are
// compared with the oracle. Also the searchset links: first, next, previous.
#include <gtest/gtest.h>

#include <memory>

#include "json/json.h"
#include "rest/service.h"
#include "search/extract.h"
#include "search/oracle.h"
#include "search/reindex.h"
#include "search/search.h"
#include "store/postgres/pg_test_cluster.h"

namespace bevan::search::testing {
namespace {

store::PgTestCluster* Cluster() {
  std::string why;
  store::PgTestCluster* cluster = store::PgTestCluster::Shared(&why);
  if (cluster == nullptr) ADD_FAILURE() << "cannot start the PostgreSQL test cluster: " << why;
  return cluster;
}

struct SqliteBackend {
  static std::string Url() { return "sqlite::memory:"; }
};
struct PostgresBackend {
  static std::string Url() {
    static int n = 0;
    store::PgTestCluster* c = Cluster();
    if (c == nullptr) return "postgresql://cluster-failed-to-start";
    auto url = c->CreateDatabase("custom_params_" + std::to_string(++n));
    return url.ok() ? *url : "postgresql://cannot-create-database";
  }
};

constexpr std::string_view kEyeColour =
    R"({"resourceType":"SearchParameter","url":"http://example.org/SearchParameter/eye-colour",
  "name":"EyeColour","status":"active","description":"Eye colour extension","code":"eye-colour","base":["Patient"],
  "type":"token","expression":"Patient.extension.where(url = 'http://example.org/eye-colour').value"})";

template <typename Backend>
class CustomParamsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Extractor::Default().ClearCustom();
    auto s = store::OpenStore(Backend::Url());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    StartService();
  }
  void TearDown() override { Extractor::Default().ClearCustom(); }

  void StartService() {
    rest::ServiceOptions o;
    o.base_url = "http://test/fhir";
    service_ = std::make_unique<rest::FhirService>(*store_, o);
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

  std::string Patient(std::string_view colour, std::string_view family) {
    auto r = Call("POST", "/fhir/Patient",
                  R"({"resourceType":"Patient","name":[{"family":")" + std::string(family) +
                      R"("}],"extension":[{"url":"http://example.org/eye-colour","valueCode":")" + std::string(colour) +
                      R"("}]})");
    EXPECT_EQ(r.status, 201) << r.body;
    auto doc = json::Document::Parse(r.body);
    return doc.ok() ? std::string(doc->root().Find("id")->as_string()) : "";
  }

  // Ids of the matches, and whether the search reported an ignored parameter.
  std::pair<std::vector<std::string>, bool> Search(const std::string& query) {
    auto r = Call("GET", "/fhir/Patient?" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    auto doc = json::Document::Parse(r.body);
    std::vector<std::string> ids;
    bool ignored = false;
    if (!doc.ok()) return {ids, true};
    for (const json::Value& e : doc->root().Find("entry")->items()) {
      std::string_view mode = e.Find("search")->Find("mode")->as_string();
      if (mode == "outcome") ignored = true;
      if (mode == "match") ids.emplace_back(e.Find("resource")->Find("id")->as_string());
    }
    return {ids, ignored};
  }

  // The oracle's answer over every stored Patient.
  std::vector<std::string> OracleIds(const std::string& query) {
    Oracle oracle;
    auto all = ExecuteSearch(*store_, *ParseSearchQuery("Patient", "_count=1000"));
    EXPECT_TRUE(all.ok());
    for (const auto& h : all->matches) EXPECT_TRUE(oracle.Add(h.body).ok());
    auto q = ParseSearchQuery("Patient", query);
    EXPECT_TRUE(q.ok());
    auto ids = oracle.Matches(*q);
    EXPECT_TRUE(ids.ok());
    return ids.ok() ? *ids : std::vector<std::string>{};
  }

  std::unique_ptr<store::Store> store_;
  std::unique_ptr<rest::FhirService> service_;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, SqliteBackend> ? "Sqlite" : "Postgres";
  }
};
TYPED_TEST_SUITE(CustomParamsTest, Backends, BackendNames);

TYPED_TEST(CustomParamsTest, PostedSearchParameterIsSearchableReindexedAndSurvivesARestart) {
  std::string before_blue = this->Patient("blue", "Early");
  this->Patient("brown", "Early");
  // Unknown before the SearchParameter exists: ignored and reported.
  EXPECT_TRUE(this->Search("eye-colour=blue").second);

  auto sp = this->Call("POST", "/fhir/SearchParameter", std::string(kEyeColour));
  ASSERT_EQ(sp.status, 201) << sp.body;
  EXPECT_EQ(Extractor::Default().CustomParams(), std::vector<std::string>{"Patient.eye-colour"});
  EXPECT_NE(this->Call("GET", "/fhir/metadata").body.find("http://example.org/SearchParameter/eye-colour"),
            std::string::npos);
  // Known now; resources written before it have no rows yet, later ones do.
  auto [none, ignored] = this->Search("eye-colour=blue");
  EXPECT_FALSE(ignored);
  EXPECT_TRUE(none.empty());
  std::string after_blue = this->Patient("blue", "Late");
  EXPECT_EQ(this->Search("eye-colour=blue").first, std::vector<std::string>{after_blue});

  // Reindex gives the earlier resources their rows (versions unchanged).
  auto stats = Reindex(*this->store_, {.types = {"Patient"}});
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->resources, 3);
  EXPECT_EQ(stats->skipped, 0);
  std::vector<std::string> blue = {before_blue, after_blue};
  EXPECT_EQ(this->Search("eye-colour=blue").first, blue);
  EXPECT_EQ(this->OracleIds("eye-colour=blue"), blue);
  EXPECT_EQ(this->Search("eye-colour:not=blue&_sort=family").first,
            this->OracleIds("eye-colour:not=blue&_sort=family"));
  auto read = this->Call("GET", "/fhir/Patient/" + before_blue);
  EXPECT_NE(read.body.find(R"("versionId":"1")"), std::string::npos) << read.body;

  // A restart: the registry is rebuilt from the store.
  Extractor::Default().ClearCustom();
  EXPECT_TRUE(this->Search("eye-colour=blue").second);
  auto loaded = LoadSearchParameters(*this->store_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(*loaded, 1);
  this->StartService();
  EXPECT_EQ(this->Search("eye-colour=blue").first, blue);

  // Retired (status retired), then deleted: no longer a parameter.
  auto doc = json::Document::Parse(sp.body);
  ASSERT_TRUE(doc.ok());
  std::string id(doc->root().Find("id")->as_string());
  std::string retired(kEyeColour);
  retired.replace(retired.find(R"("status":"active")"), 17, R"("status":"retired","id":")" + id + "\"");
  EXPECT_EQ(this->Call("PUT", "/fhir/SearchParameter/" + id, retired).status, 200);
  EXPECT_TRUE(this->Search("eye-colour=blue").second);
  EXPECT_EQ(
      this->Call("PUT", "/fhir/SearchParameter/" + id, std::string(kEyeColour).insert(1, R"("id":")" + id + "\","))
          .status,
      200);
  EXPECT_FALSE(this->Search("eye-colour=blue").second);
  EXPECT_EQ(this->Call("DELETE", "/fhir/SearchParameter/" + id).status, 204);
  EXPECT_TRUE(this->Search("eye-colour=blue").second);
}

TYPED_TEST(CustomParamsTest, InvalidSearchParametersAre422NamingTheProblem) {
  auto post = [this](std::string_view from, std::string_view to) {
    std::string body(kEyeColour);
    body.replace(body.find(from), from.size(), to);
    return this->Call("POST", "/fhir/SearchParameter", body);
  };
  auto bad_expr = post("Patient.extension.where", "Patient.nosuchelement.where");
  EXPECT_EQ(bad_expr.status, 422);
  EXPECT_NE(bad_expr.body.find("does not compile for Patient"), std::string::npos) << bad_expr.body;
  auto bad_type = post(R"("type":"token")", R"("type":"composite")");
  EXPECT_EQ(bad_type.status, 422);
  EXPECT_NE(bad_type.body.find("composite"), std::string::npos) << bad_type.body;
  auto bad_base = post(R"("base":["Patient"])", R"("base":["Patient","Nope"])");
  EXPECT_EQ(bad_base.status, 422) << bad_base.body;
  EXPECT_TRUE(Extractor::Default().CustomParams().empty());
  // A write the store refuses (If-Match on a resource that does not exist)
  // registers nothing.
  auto refused = this->Call("PUT", "/fhir/SearchParameter/sp1", std::string(kEyeColour).insert(1, R"("id":"sp1",)"),
                            {{"If-Match", "W/\"3\""}});
  EXPECT_EQ(refused.status, 412) << refused.body;
  EXPECT_TRUE(Extractor::Default().CustomParams().empty());
  // A draft is stored and not used.
  auto draft = post(R"("status":"active")", R"("status":"draft")");
  EXPECT_EQ(draft.status, 201) << draft.body;
  EXPECT_TRUE(Extractor::Default().CustomParams().empty());
}

TYPED_TEST(CustomParamsTest, SearchsetLinksFirstNextPrevious) {
  for (int i = 0; i < 5; ++i) this->Patient("green", "Link");
  auto links = [this](const std::string& target) {
    std::map<std::string, std::string> out;
    auto r = this->Call("GET", target);
    EXPECT_EQ(r.status, 200) << r.body;
    auto doc = json::Document::Parse(r.body);
    if (!doc.ok()) return out;
    for (const json::Value& l : doc->root().Find("link")->items()) {
      out[std::string(l.Find("relation")->as_string())] =
          std::string(l.Find("url")->as_string()).substr(std::string_view("http://test").size());
    }
    std::string ids;
    for (const json::Value& e : doc->root().Find("entry")->items()) {
      ids += std::string(e.Find("resource")->Find("id")->as_string()) + " ";
    }
    out["ids"] = ids;
    return out;
  };
  auto p1 = links("/fhir/Patient?family=link&_count=2&_sort=-_lastUpdated");
  EXPECT_EQ(p1.count("previous"), 0u);
  EXPECT_EQ(p1["first"], "/fhir/Patient?family=link&_count=2&_sort=-_lastUpdated");
  auto p2 = links(p1["next"]);
  auto p3 = links(p2["next"]);
  EXPECT_EQ(p3.count("next"), 0u);
  EXPECT_EQ(links(p3["previous"])["ids"], p2["ids"]);
  EXPECT_EQ(links(p2["previous"])["ids"], p1["ids"]);
  EXPECT_EQ(links(p3["first"])["ids"], p1["ids"]);
  EXPECT_EQ(links(p2["self"])["ids"], p2["ids"]);
}

}  // namespace
}  // namespace bevan::search::testing
