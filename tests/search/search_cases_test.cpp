// The search correctness suite: every case of tests/search/*.cases.json run
// against SQLite and PostgreSQL (a throw-away cluster), each compared with the
// expected result written by search_gen_cases and with the oracle evaluated
// again now (so a stale expectation is reported as such). Cases are paged
// through with small pages (_count 7 unless the case sets one), so cursors
// are exercised on every case with more than a page of results, forwards and
// then backwards through the `previous` cursors; _total=estimate is checked
// against the expected count. A second
// test checks the query plans of every case (first and previous pages) for
// full scans of the resource table. Skipped (with a message) when the Synthea sample is absent.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "corpus.h"
#include "json/json.h"
#include "search/oracle.h"
#include "search/search.h"
#include "store/postgres/pg_test_cluster.h"
#include "store/search_sql.h"

namespace bevan::search::testing {
namespace {

struct Case {
  std::string file;
  std::string type;
  std::string query;
  std::vector<std::string> expected;
  std::optional<std::vector<std::string>> included;
};

std::vector<Case> LoadCases() {
  std::vector<Case> cases;
  std::filesystem::path dir = std::filesystem::path(BEVAN_SOURCE_DIR) / "tests" / "search";
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().string().ends_with(".cases.json")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::stringstream ss;
    ss << std::ifstream(f).rdbuf();
    auto doc = json::Document::Parse(ss.str());
    EXPECT_TRUE(doc.ok()) << f << ": " << doc.status().ToString();
    if (!doc.ok()) continue;
    for (const json::Value& c : doc->root().items()) {
      Case k;
      k.file = f.filename().string();
      k.type = c.Find("resourceType")->as_string();
      k.query = c.Find("query")->as_string();
      for (const json::Value& id : c.Find("expected")->items()) k.expected.emplace_back(id.as_string());
      if (const json::Value* inc = c.Find("included")) {
        k.included.emplace();
        for (const json::Value& id : inc->items()) k.included->emplace_back(id.as_string());
      }
      cases.push_back(std::move(k));
    }
  }
  return cases;
}

// An empty type is a system-level search (expected entries are "Type/id").
Result<SearchQuery> ParseCase(const Case& c) {
  return c.type.empty() ? ParseSystemSearch(c.query) : ParseSearchQuery(c.type, c.query);
}

// Everything shared by both backends' runs, loaded once.
struct World {
  std::vector<CorpusResource> corpus;
  Oracle oracle;
  std::vector<Case> cases;
  Status status;
};

void LoadWorld(World& w) {
  auto corpus = LoadCorpus();
  if (!corpus.ok()) {
    w.status = corpus.status();
    return;
  }
  w.corpus = std::move(corpus).value();
  for (const CorpusResource& r : w.corpus) {
    Status s = w.oracle.Add(r.json);
    if (!s.ok()) w.status = s;
  }
  w.cases = LoadCases();
}

World& TheWorld() {
  static World world;
  static const bool loaded = (LoadWorld(world), true);
  (void)loaded;
  return world;
}

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
    store::PgTestCluster* c = Cluster();
    if (c == nullptr) return "postgresql://cluster-failed-to-start";
    auto url = c->CreateDatabase("search_cases");
    return url.ok() ? *url : "postgresql://cannot-create-database";
  }
};

template <typename Backend>
store::Store* LoadedStore() {
  static std::unique_ptr<store::Store> store = []() -> std::unique_ptr<store::Store> {
    World& w = TheWorld();
    if (!w.status.ok()) return nullptr;
    auto s = store::OpenStore(Backend::Url());
    if (!s.ok()) {
      ADD_FAILURE() << s.status().ToString();
      return nullptr;
    }
    Status loaded = LoadStore(**s, w.corpus);
    if (!loaded.ok()) {
      ADD_FAILURE() << loaded.ToString();
      return nullptr;
    }
    return std::move(s).value();
  }();
  return store.get();
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < 20; ++i) s += (i ? " " : "") + v[i];
  if (v.size() > 20) s += " ... (" + std::to_string(v.size()) + ")";
  return s;
}

template <typename Backend>
class SearchCasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    World& w = TheWorld();
    if (w.status.code() == StatusCode::kNotFound) GTEST_SKIP() << "Synthea sample absent: " << w.status.message();
    ASSERT_TRUE(w.status.ok()) << w.status.ToString();
    store_ = LoadedStore<Backend>();
    ASSERT_NE(store_, nullptr);
  }
  store::Store* store_ = nullptr;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, SqliteBackend> ? "Sqlite" : "Postgres";
  }
};
TYPED_TEST_SUITE(SearchCasesTest, Backends, BackendNames);

TYPED_TEST(SearchCasesTest, EveryCaseMatchesTheOracle) {
  World& w = TheWorld();
  ASSERT_GE(w.cases.size(), 400u);
  int failures = 0, paged = 0, backward = 0, estimated = 0;
  for (const Case& c : w.cases) {
    std::string name = c.file + ": " + c.type + "?" + c.query;
    auto q = ParseCase(c);
    if (!q.ok()) {
      ADD_FAILURE() << name << ": " << q.status().ToString();
      ++failures;
      continue;
    }
    auto oracle = w.oracle.Matches(*q);
    ASSERT_TRUE(oracle.ok());
    if (*oracle != c.expected) {
      ADD_FAILURE() << name << ": expectation is stale (run search_gen_cases): oracle now gives " << Join(*oracle);
      ++failures;
      continue;
    }
    SearchQuery paging = *q;
    if (!paging.count) paging.count = 7;
    std::vector<std::string> got;
    std::set<std::string> included;
    std::optional<std::int64_t> total;
    int pages = 0;
    Status error;
    auto key = [&c](const store::SearchHit& h) { return c.type.empty() ? h.type + "/" + h.id : h.id; };
    std::optional<std::string> last_previous;  // the last page's `previous` cursor
    for (;;) {
      auto r = ExecuteSearch(*this->store_, paging);
      if (!r.ok()) {
        error = r.status();
        break;
      }
      for (const auto& h : r->matches) got.push_back(key(h));
      for (const auto& h : r->included) included.insert(h.type + "/" + h.id);
      if (pages == 0) total = r->total;
      if (pages == 0 && r->previous_cursor) error = InternalError("the first page has a previous cursor");
      last_previous = r->previous_cursor;
      ++pages;
      if (!r->next_cursor || pages > 1000) break;
      paging.cursor = *r->next_cursor;
    }
    if (pages > 1) {
      ++paged;
      // Back from the last page through the `previous` links: the same pages
      // in reverse, ending at the first (which has no previous link), and the
      // first page's `next` link leads forward again.
      std::vector<std::string> back;
      std::optional<std::string> next_of_first;
      paging.cursor = last_previous;
      for (int i = 0; error.ok() && paging.cursor && i <= 1000; ++i) {
        auto r = ExecuteSearch(*this->store_, paging);
        if (!r.ok()) {
          error = r.status();
          break;
        }
        std::vector<std::string> page;
        for (const auto& h : r->matches) page.push_back(key(h));
        back.insert(back.begin(), page.begin(), page.end());
        next_of_first = r->next_cursor;
        paging.cursor = r->previous_cursor;
      }
      size_t last_page = got.size() - (got.size() % static_cast<size_t>(*paging.count) == 0
                                           ? static_cast<size_t>(*paging.count)
                                           : got.size() % static_cast<size_t>(*paging.count));
      std::vector<std::string> expected_back(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(last_page));
      if (error.ok() && back != expected_back) {
        ADD_FAILURE() << name << ": paging backwards\n  store:    " << Join(back)
                      << "\n  expected: " << Join(expected_back);
        ++failures;
        continue;
      }
      if (error.ok() && next_of_first) {
        paging.cursor = next_of_first;
        auto r = ExecuteSearch(*this->store_, paging);
        if (!r.ok() || r->matches.empty() || key(r->matches[0]) != got[static_cast<size_t>(*paging.count)]) {
          ADD_FAILURE() << name << ": the next link of the first page reached backwards is wrong";
          ++failures;
          continue;
        }
      }
      ++backward;
    }
    if (!error.ok()) {
      ADD_FAILURE() << name << ": " << error.ToString();
      ++failures;
      continue;
    }
    if (got != c.expected) {
      ADD_FAILURE() << name << ":\n  store:    " << Join(got) << "\n  expected: " << Join(c.expected);
      ++failures;
      continue;
    }
    if (q->total == Total::kAccurate && total != static_cast<std::int64_t>(c.expected.size())) {
      ADD_FAILURE() << name << ": total " << (total ? *total : -1) << ", expected " << c.expected.size();
      ++failures;
    }
    if (q->total == Total::kAccurate || (c.expected.size() % 5 == 3 && !q->summary)) {
      // _total=estimate: exact up to SearchOptions::estimate_limit, none above.
      SearchQuery est = *q;
      est.total = Total::kEstimate;
      est.cursor.reset();
      SearchOptions small;
      small.estimate_limit = 10;
      for (const SearchOptions& o : {SearchOptions{}, small}) {
        auto r = ExecuteSearch(*this->store_, est, o);
        std::optional<std::int64_t> want;
        if (static_cast<std::int64_t>(c.expected.size()) <= o.estimate_limit) want = c.expected.size();
        if (!r.ok() || r->total != want) {
          ADD_FAILURE() << name << ": _total=estimate (limit " << o.estimate_limit << ") gave "
                        << (r.ok() && r->total ? std::to_string(*r->total) : "none");
          ++failures;
        }
        ++estimated;
      }
    }
    if (c.included) {
      std::set<std::string> matches;
      for (const std::string& id : c.expected) matches.insert(c.type + "/" + id);
      std::vector<std::string> inc;
      for (const std::string& k : included) {
        if (!matches.count(k)) inc.push_back(k);
      }
      if (inc != *c.included) {
        ADD_FAILURE() << name << ": included\n  store:    " << Join(inc) << "\n  expected: " << Join(*c.included);
        ++failures;
      }
    }
    if (failures > 40) break;
  }
  std::printf("[%s] %zu cases, %d failed, %d paged through several pages (%d of them back again), %d estimates\n",
              this->store_->backend().data(), w.cases.size(), failures, paged, backward, estimated);
}

TYPED_TEST(SearchCasesTest, NoPlanScansTheResourceTable) {
  World& w = TheWorld();
  // SQLite: "SCAN r" (or an alias of resource: t<n>, s<n>); PostgreSQL: a
  // sequential scan of resource even with sequential scans disabled.
  std::regex sqlite_scan(R"((^|\n)\s*(\|--|`--)?\s*SCAN (r|t\d+|s\d+|resource)\b)");
  std::regex pg_scan(R"(Seq Scan on resource\b)");
  std::regex type_range(R"(SEARCH r USING (COVERING )?INDEX sqlite_autoindex_resource_1 \(type=\?\)\n)");
  std::regex include_type_range(
      R"(SEARCH (r|s\d+|t\d+) USING (COVERING )?INDEX sqlite_autoindex_resource_1 \(type=\?\))");
  int checked = 0, whole_type = 0;
  for (const Case& c : w.cases) {
    auto q = ParseCase(c);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    store::Store* s = this->store_;
    ASSERT_TRUE(ResolveValueSets(*q, [s](const store::SearchPlan& p) { return s->Search(p); }).ok()) << c.query;
    auto plan = BuildPlan(*q);
    ASSERT_TRUE(plan.ok());
    auto explained = this->store_->ExplainSearch(*plan);
    ASSERT_TRUE(explained.ok()) << c.query << ": " << explained.status().ToString();
    const std::regex& scan = this->store_->backend() == "sqlite" ? sqlite_scan : pg_scan;
    EXPECT_FALSE(std::regex_search(*explained, scan)) << c.type << "?" << c.query << "\n" << *explained;
    if (std::regex_search(*explained, type_range)) ++whole_type;
    // The `previous` page's statement (sorted backwards from a cursor).
    store::SearchPlan back = *plan;
    back.after = store::SearchCursor{{}, 1000, true};
    for (const store::SortKey& k : back.sort) {
      int kind = store::sql::SortKeyKind(k);
      if (kind == 0) back.after->keys.emplace_back(std::int64_t{0});
      if (kind == 1) back.after->keys.emplace_back(0.0);
      if (kind == 2) back.after->keys.emplace_back(std::string("m"));
    }
    auto back_explained = this->store_->ExplainSearch(back);
    ASSERT_TRUE(back_explained.ok()) << c.query << ": " << back_explained.status().ToString();
    EXPECT_FALSE(std::regex_search(*back_explained, scan)) << c.type << "?" << c.query << " (previous)\n"
                                                           << *back_explained;
    if (std::getenv("BEVAN_SEARCH_DUMP_PLANS") != nullptr) {
      std::printf("== %s?%s\n%s\n", c.type.c_str(), c.query.c_str(), explained->c_str());
    }
    if (!q->includes.empty() || !q->revincludes.empty()) {
      store::IncludeQuery iq;
      iq.rids = {1, 2, 3};
      for (const auto* list : {&q->includes, &q->revincludes}) {
        for (const IncludeParam& inc : *list)
          iq.specs.push_back({inc.reverse, inc.source_type, inc.param, inc.target_type});
      }
      auto inc = this->store_->ExplainInclude(iq);
      ASSERT_TRUE(inc.ok()) << inc.status().ToString();
      EXPECT_FALSE(std::regex_search(*inc, scan)) << c.type << "?" << c.query << "\n" << *inc;
      // The page's rids drive an include: never every resource of a type.
      EXPECT_FALSE(std::regex_search(*inc, include_type_range)) << c.type << "?" << c.query << "\n" << *inc;
    }
    ++checked;
  }
  std::printf(
      "[%s] %d plans checked; %d read a whole type through the (type, id) index (no criteria, "
      ":missing=true or :not alone)\n",
      this->store_->backend().data(), checked, whole_type);
}

}  // namespace
}  // namespace bevan::search::testing
