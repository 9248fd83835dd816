// One suite, run against every backend: SQLite on a temporary file and
// PostgreSQL in a throw-away cluster started once per test binary.
#include "store/store.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <unistd.h>
#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "store/postgres/pg_test_cluster.h"
#include "store/search_sql.h"

namespace bevan::store {
namespace {

// --- Backends -------------------------------------------------------------

struct SqliteBackend {
  static std::string NewUrl() {
    static std::atomic<int> counter{0};
    std::string path = (std::filesystem::temp_directory_path() /
                        ("bevan-store-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".db"))
                           .string();
    return "sqlite:" + path;
  }
  static void Remove(const std::string& url) {
    std::string path = url.substr(7);
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  }
  // Rows of `table` for `rid`, read straight from the database file.
  static int CountRows(const std::string& url, const std::string& table, Rid rid) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(url.substr(7).c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    std::string sql = "SELECT count(*) FROM " + table + " WHERE rid = ?1";
    sqlite3_stmt* stmt = nullptr;
    int n = -1;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK) {
      sqlite3_bind_int64(stmt, 1, rid);
      if (sqlite3_step(stmt) == SQLITE_ROW) n = sqlite3_column_int(stmt, 0);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
  }
};

PgTestCluster* Cluster() {
  std::string why;
  PgTestCluster* cluster = PgTestCluster::Shared(&why);
  if (cluster == nullptr) ADD_FAILURE() << "cannot start the PostgreSQL test cluster: " << why;
  return cluster;
}

struct PostgresBackend {
  static std::string NewUrl() {
    static std::atomic<int> counter{0};
    PgTestCluster* cluster = Cluster();
    if (cluster == nullptr) return "postgresql://cluster-failed-to-start";
    auto url = cluster->CreateDatabase("t" + std::to_string(counter++));
    EXPECT_TRUE(url.ok()) << url.status().ToString();
    return url.ok() ? *url : "postgresql://cannot-create-database";
  }
  static void Remove(const std::string&) {}
  static int CountRows(const std::string& url, const std::string& table, Rid rid) {
    PGconn* conn = PQconnectdb(url.c_str());
    std::string sql = "SELECT count(*) FROM " + table + " WHERE rid = " + std::to_string(rid);
    PGresult* r = PQexec(conn, sql.c_str());
    int n = PQresultStatus(r) == PGRES_TUPLES_OK ? std::atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(conn);
    return n;
  }
};

template <typename Backend>
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = Backend::NewUrl();
    Open();
  }
  void TearDown() override {
    store_.reset();
    Backend::Remove(url_);
  }
  void Open() {
    auto s = OpenStore(url_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void Reopen() {
    store_.reset();
    Open();
  }
  int CountRows(const std::string& table, Rid rid) { return Backend::CountRows(url_, table, rid); }

  Store& store() { return *store_; }

  // Writes version `version` of type/id with a body naming it.
  Result<WriteResult> PutVersion(std::string_view type, std::string_view id, std::int64_t version,
                                 const IndexRows* index = nullptr, std::string_view compartment = {}) {
    std::string body = Body(type, id, version);
    ResourceWrite w{type, id, version, store_->Now(), body, compartment, index};
    return store_->Put(w);
  }
  static std::string Body(std::string_view type, std::string_view id, std::int64_t version) {
    return "{\"resourceType\":\"" + std::string(type) + "\",\"id\":\"" + std::string(id) +
           "\",\"meta\":{\"versionId\":\"" + std::to_string(version) + "\"}}";
  }

  std::string url_;
  std::unique_ptr<Store> store_;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, SqliteBackend> ? "Sqlite" : "Postgres";
  }
};
TYPED_TEST_SUITE(StoreTest, Backends, BackendNames);

#define ASSERT_OK(expr)                                          \
  do {                                                           \
    const auto& bevan_s_ = (expr);                               \
    ASSERT_TRUE(bevan_s_.ok()) << StatusOf(bevan_s_).ToString(); \
  } while (0)

const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

Status CancelledOrError() { return UnavailableError("stop here"); }

// --- CRUD and versions ------------------------------------------------------

TYPED_TEST(StoreTest, CreateReadUpdateVRead) {
  Store& s = this->store();
  auto w1 = this->PutVersion("Patient", "p1", 1, nullptr, "p1");
  ASSERT_OK(w1);
  EXPECT_EQ(w1->method, Method::kCreate);
  EXPECT_EQ(w1->version, 1);

  auto r = s.Read("Patient", "p1");
  ASSERT_OK(r);
  EXPECT_EQ(r->version, 1);
  EXPECT_EQ(r->body, this->Body("Patient", "p1", 1));
  EXPECT_EQ(r->last_updated, w1->last_updated);
  EXPECT_EQ(r->compartment, "p1");
  EXPECT_FALSE(r->deleted);
  EXPECT_EQ(r->rid, w1->rid);

  auto w2 = this->PutVersion("Patient", "p1", 2, nullptr, "p1");
  ASSERT_OK(w2);
  EXPECT_EQ(w2->method, Method::kUpdate);
  EXPECT_EQ(w2->rid, w1->rid);
  EXPECT_GT(w2->last_updated, w1->last_updated);
  r = s.Read("Patient", "p1");
  ASSERT_OK(r);
  EXPECT_EQ(r->version, 2);
  EXPECT_EQ(r->body, this->Body("Patient", "p1", 2));

  auto v1 = s.VRead("Patient", "p1", 1);
  ASSERT_OK(v1);
  EXPECT_EQ(v1->body, this->Body("Patient", "p1", 1));
  EXPECT_EQ(v1->last_updated, w1->last_updated);
  EXPECT_FALSE(v1->deleted);
  EXPECT_EQ(s.VRead("Patient", "p1", 3).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.VRead("Patient", "nope", 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.Read("Patient", "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.Read("Observation", "p1").status().code(), StatusCode::kNotFound);

  auto e = s.Exists("Patient", "p1");
  ASSERT_OK(e);
  EXPECT_TRUE(*e);
  e = s.Exists("Patient", "nope");
  ASSERT_OK(e);
  EXPECT_FALSE(*e);
}

TYPED_TEST(StoreTest, BodiesAreStoredByteForByte) {
  std::string body = "{\"resourceType\":\"Basic\",\"id\":\"b\",\"text\":\"caf\xc3\xa9 \\u00e9 1.50\"}";
  body += std::string(200000, ' ');  // large, with trailing whitespace no serialiser would keep
  body += '\n';
  ResourceWrite w{"Basic", "b", 1, this->store().Now(), body, {}, nullptr};
  ASSERT_OK(this->store().Put(w));
  auto r = this->store().Read("Basic", "b");
  ASSERT_OK(r);
  EXPECT_EQ(r->body, body);
}

// --- Scans (bulk export) ------------------------------------------------------

// Every (id, body) a scan hands out, in order.
std::vector<std::pair<std::string, std::string>> ScanAll(Store& s, const ScanQuery& q) {
  std::vector<std::pair<std::string, std::string>> out;
  Status st = s.Scan(q, [&](const ScanRow& r) {
    out.emplace_back(std::string(r.id), std::string(r.body));
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

std::vector<std::string> Ids(const std::vector<std::pair<std::string, std::string>>& rows) {
  std::vector<std::string> ids;
  for (const auto& r : rows) ids.push_back(r.first);
  return ids;
}

TYPED_TEST(StoreTest, ScanStreamsCurrentVersionsInChunks) {
  Store& s = this->store();
  for (int i = 0; i < 25; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "o%02d", i);
    ASSERT_OK(this->PutVersion("Observation", id, 1, nullptr, i % 2 ? "p1" : ""));
  }
  ASSERT_OK(this->PutVersion("Observation", "o03", 2, nullptr, "p1"));
  ASSERT_OK(s.Delete(ResourceDelete{"Observation", "o04", 2, s.Now()}));
  ASSERT_OK(this->PutVersion("Patient", "p1", 1, nullptr, "p1"));

  ScanQuery q;
  q.type = "Observation";
  q.chunk = 7;  // several chunks, the last one partial
  auto rows = ScanAll(s, q);
  ASSERT_EQ(rows.size(), 24u);  // 25 minus the deleted one, each once
  for (size_t i = 1; i < rows.size(); ++i) EXPECT_LT(rows[i - 1].first, rows[i].first);
  for (const auto& [id, body] : rows) {
    EXPECT_EQ(body, this->Body("Observation", id, id == "o03" ? 2 : 1)) << id;  // current version, verbatim
    EXPECT_NE(id, "o04");
  }
  q.chunk = 12;  // an exact multiple: the last chunk is empty
  q.type = "Observation";
  EXPECT_EQ(ScanAll(s, q).size(), 24u);

  // Stopping: the callback's error comes back and no more rows are read.
  int seen = 0;
  Status stop = s.Scan(q, [&](const ScanRow&) { return ++seen == 3 ? CancelledOrError() : Status::Ok(); });
  EXPECT_EQ(stop.code(), StatusCode::kUnavailable);
  EXPECT_EQ(seen, 3);

  q.type = "Encounter";
  EXPECT_TRUE(ScanAll(s, q).empty());
  q.type = "";
  EXPECT_EQ(s.Scan(q, [](const ScanRow&) { return Status::Ok(); }).code(), StatusCode::kInvalidArgument);
  q.type = "Observation";
  q.chunk = 0;
  EXPECT_EQ(s.Scan(q, [](const ScanRow&) { return Status::Ok(); }).code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, ScanFiltersBySinceAndCompartment) {
  Store& s = this->store();
  ASSERT_OK(this->PutVersion("Patient", "pa", 1, nullptr, "pa"));
  ASSERT_OK(this->PutVersion("Patient", "pb", 1, nullptr, "pb"));
  ASSERT_OK(this->PutVersion("Observation", "a1", 1, nullptr, "pa"));
  ASSERT_OK(this->PutVersion("Observation", "b1", 1, nullptr, "pb"));
  auto mid = this->PutVersion("Observation", "n1", 1, nullptr, "");  // in no compartment
  ASSERT_OK(mid);
  ASSERT_OK(this->PutVersion("Observation", "a2", 1, nullptr, "pa"));
  ASSERT_OK(this->PutVersion("Observation", "b1", 2, nullptr, "pb"));

  ScanQuery q;
  q.type = "Observation";
  q.chunk = 1;
  EXPECT_EQ(Ids(ScanAll(s, q)), (std::vector<std::string>{"a1", "a2", "b1", "n1"}));
  q.since = mid->last_updated;  // strictly after
  EXPECT_EQ(Ids(ScanAll(s, q)), (std::vector<std::string>{"a2", "b1"}));
  q.since.reset();
  q.scope = ScanScope::kAnyCompartment;
  EXPECT_EQ(Ids(ScanAll(s, q)), (std::vector<std::string>{"a1", "a2", "b1"}));
  q.scope = ScanScope::kTheseCompartments;
  q.compartments = {"pb", "pa", "nobody"};
  EXPECT_EQ(Ids(ScanAll(s, q)), (std::vector<std::string>{"b1", "a1", "a2"}));
  q.type = "Patient";
  q.compartments = {"pa"};
  EXPECT_EQ(Ids(ScanAll(s, q)), (std::vector<std::string>{"pa"}));
  q.compartments.clear();
  EXPECT_TRUE(ScanAll(s, q).empty());
}

TYPED_TEST(StoreTest, VersionAndTimestampPreconditions) {
  Store& s = this->store();
  ASSERT_OK(this->PutVersion("Patient", "p", 1));
  // Creating again, skipping a version, or going back all fail and change nothing.
  EXPECT_EQ(this->PutVersion("Patient", "p", 1).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(this->PutVersion("Patient", "p", 3).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(this->PutVersion("Patient", "new", 2).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.Read("Patient", "new").status().code(), StatusCode::kNotFound);
  auto cur = s.Read("Patient", "p");
  ASSERT_OK(cur);
  std::string body = this->Body("Patient", "p", 2);
  ResourceWrite stale{"Patient", "p", 2, cur->last_updated, body, {}, nullptr};
  EXPECT_EQ(s.Put(stale).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.Read("Patient", "p")->version, 1);
  ResourceWrite bad{"Patient", "p", 2, s.Now(), "", {}, nullptr};
  EXPECT_EQ(s.Put(bad).status().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, DeleteIsAVersionedTombstone) {
  Store& s = this->store();
  ASSERT_OK(this->PutVersion("Observation", "o", 1, nullptr, "p9"));
  auto d = s.Delete({"Observation", "o", 2, s.Now()});
  ASSERT_OK(d);
  EXPECT_EQ(d->method, Method::kDelete);
  auto r = s.Read("Observation", "o");
  ASSERT_OK(r);  // distinguishable from never-existed: REST answers 410
  EXPECT_TRUE(r->deleted);
  EXPECT_EQ(r->version, 2);
  EXPECT_TRUE(r->body.empty());
  EXPECT_FALSE(*s.Exists("Observation", "o"));
  auto v2 = s.VRead("Observation", "o", 2);
  ASSERT_OK(v2);
  EXPECT_TRUE(v2->deleted);
  auto v1 = s.VRead("Observation", "o", 1);
  ASSERT_OK(v1);
  EXPECT_EQ(v1->body, this->Body("Observation", "o", 1));

  EXPECT_EQ(s.Delete({"Observation", "o", 3, s.Now()}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.Delete({"Observation", "never", 2, s.Now()}).status().code(), StatusCode::kNotFound);
  auto back = this->PutVersion("Observation", "o", 3);
  ASSERT_OK(back);
  EXPECT_EQ(back->method, Method::kUpdate);
  EXPECT_EQ(back->rid, d->rid);
  EXPECT_FALSE(s.Read("Observation", "o")->deleted);

  HistoryQuery q;
  q.type = "Observation";
  q.id = "o";
  auto h = s.History(q);
  ASSERT_OK(h);
  ASSERT_EQ(h->entries.size(), 3u);
  EXPECT_EQ(h->entries[0].method, Method::kUpdate);
  EXPECT_EQ(h->entries[1].method, Method::kDelete);
  EXPECT_TRUE(h->entries[1].body.empty());
  EXPECT_EQ(h->entries[2].method, Method::kCreate);
  // Each version's own body, whether current, superseded by a delete or
  // superseded by an update (a body is stored once and moves to its history
  // row when superseded).
  EXPECT_EQ(h->entries[0].body, this->Body("Observation", "o", 3));
  EXPECT_EQ(h->entries[2].body, this->Body("Observation", "o", 1));
  ASSERT_OK(this->PutVersion("Observation", "o", 4));
  EXPECT_EQ(s.VRead("Observation", "o", 3)->body, this->Body("Observation", "o", 3));
  EXPECT_EQ(s.VRead("Observation", "o", 4)->body, this->Body("Observation", "o", 4));
  EXPECT_EQ(s.VRead("Observation", "o", 1)->body, this->Body("Observation", "o", 1));
  EXPECT_TRUE(s.VRead("Observation", "o", 2)->deleted);
  h = s.History(q);
  ASSERT_OK(h);
  ASSERT_EQ(h->entries.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    int version = 4 - i;
    EXPECT_EQ(h->entries[i].body, version == 2 ? "" : this->Body("Observation", "o", version)) << version;
  }
}

// --- History ----------------------------------------------------------------

TYPED_TEST(StoreTest, HistoryAtAllLevelsWithPaging) {
  Store& s = this->store();
  // 3 patients x 3 versions and 2 observations x 2 versions, interleaved.
  std::vector<Micros> stamps;
  for (int v = 1; v <= 3; ++v) {
    for (int p = 0; p < 3; ++p) {
      auto w = this->PutVersion("Patient", "p" + std::to_string(p), v);
      ASSERT_OK(w);
      stamps.push_back(w->last_updated);
    }
    if (v <= 2) {
      for (int o = 0; o < 2; ++o) {
        auto w = this->PutVersion("Observation", "o" + std::to_string(o), v);
        ASSERT_OK(w);
        stamps.push_back(w->last_updated);
      }
    }
  }
  auto page_through = [&](HistoryQuery q) {
    std::vector<HistoryEntry> all;
    for (int pages = 0; pages < 100; ++pages) {
      auto page = s.History(q);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok()) break;
      EXPECT_LE(static_cast<int>(page->entries.size()), q.count);
      for (auto& e : page->entries) all.push_back(std::move(e));
      if (!page->next) break;
      // Cursors survive a round trip through a URL.
      auto parsed = HistoryCursor::Parse(page->next->ToString());
      EXPECT_TRUE(parsed.ok());
      q.after = *parsed;
    }
    return all;
  };
  auto newest_first = [](const std::vector<HistoryEntry>& es) {
    for (size_t i = 1; i < es.size(); ++i) {
      if (es[i - 1].last_updated < es[i].last_updated) return false;
    }
    return true;
  };

  HistoryQuery sys;
  sys.count = 4;
  auto all = page_through(sys);
  EXPECT_EQ(all.size(), 13u);
  EXPECT_TRUE(newest_first(all));
  EXPECT_EQ(all.front().last_updated, stamps.back());
  std::set<std::pair<Rid, std::int64_t>> distinct;
  for (const auto& e : all) distinct.insert({e.rid, e.version});
  EXPECT_EQ(distinct.size(), 13u);

  HistoryQuery type;
  type.type = "Patient";
  type.count = 2;
  auto patients = page_through(type);
  EXPECT_EQ(patients.size(), 9u);
  EXPECT_TRUE(newest_first(patients));
  for (const auto& e : patients) {
    EXPECT_EQ(e.type, "Patient");
    EXPECT_EQ(e.body, this->Body("Patient", e.id, e.version));
  }

  HistoryQuery inst;
  inst.type = "Patient";
  inst.id = "p1";
  inst.count = 1;
  auto p1 = page_through(inst);
  ASSERT_EQ(p1.size(), 3u);
  EXPECT_EQ(p1[0].version, 3);
  EXPECT_EQ(p1[2].version, 1);
  inst.id = "missing";
  EXPECT_EQ(s.History(inst).status().code(), StatusCode::kNotFound);

  // _since: the last round (v3 of the patients) only.
  HistoryQuery since;
  since.since = stamps[10];  // first write of round 3
  since.count = 100;
  auto recent = s.History(since);
  ASSERT_OK(recent);
  EXPECT_EQ(recent->entries.size(), 3u);
  EXPECT_FALSE(recent->next);

  // _at: versions current at the instant of the 8th write: every resource's
  // then-current version (p0..p2 at v2 or v1, o0 and o1 at v1 or v2).
  HistoryQuery at;
  at.at_lo = at.at_hi = stamps[7];
  at.count = 100;
  auto then = s.History(at);
  ASSERT_OK(then);
  std::map<std::string, std::int64_t> current;
  for (const auto& e : then->entries) {
    EXPECT_EQ(current.count(e.type + "/" + e.id), 0u) << "one version per resource at an instant";
    current[e.type + "/" + e.id] = e.version;
  }
  EXPECT_EQ(current.size(), 5u);
  // stamps: [p0v1 p1v1 p2v1 o0v1 o1v1 p0v2 p1v2 p2v2 ...]: stamps[7] is p2v2.
  EXPECT_EQ(current["Patient/p0"], 2);
  EXPECT_EQ(current["Patient/p2"], 2);
  EXPECT_EQ(current["Observation/o0"], 1);
  // Without bodies.
  at.with_bodies = false;
  auto bare = s.History(at);
  ASSERT_OK(bare);
  for (const auto& e : bare->entries) EXPECT_TRUE(e.body.empty());

  HistoryQuery bad;
  bad.count = 0;
  EXPECT_EQ(s.History(bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HistoryCursor::Parse("x.1.2").status().code(), StatusCode::kInvalidArgument);
}

// --- Index rows -------------------------------------------------------------

TYPED_TEST(StoreTest, IndexRowsWrittenReplacedAndRemoved) {
  Store& s = this->store();
  IndexRows rows;
  rows.tokens = {{"identifier", "https://fhir.nhs.uk/Id/nhs-number", "9000000009"},
                 {"identifier", "https://fhir.nhs.uk/Id/nhs-number", "9000000009"},  // duplicate: stored once
                 {"gender", "http://hl7.org/fhir/administrative-gender", "female"},
                 {"active", "", "true"}};
  rows.strings = {{"family", "smith", "Smith"}};
  rows.dates = {{"birthdate", 0, 86399999999}};
  rows.numbers = {{"probability", 1.45, 1.55}};
  rows.quantities = {{"value-quantity", 5.35, 5.45, "http://unitsofmeasure.org", "mmol/L", 5.35, 5.45, "mol/m3"}};
  rows.references = {{"general-practitioner", "Practitioner", "gp1", ""}};
  rows.uris = {{"url", "http://example.org/fhir"}};
  auto w = this->PutVersion("Patient", "p", 1, &rows, "p");
  ASSERT_OK(w);
  const char* tables[] = {"idx_token",    "idx_string",    "idx_date", "idx_number",
                          "idx_quantity", "idx_reference", "idx_uri"};
  int expected[] = {3, 1, 1, 1, 1, 1, 1};
  for (int i = 0; i < 7; ++i) EXPECT_EQ(this->CountRows(tables[i], w->rid), expected[i]) << tables[i];

  auto find = [&](std::string_view type, std::optional<std::string_view> system, std::string_view code,
                  std::string_view param = "identifier") {
    std::vector<ResourceKey> out;
    EXPECT_TRUE(s.Transact([&](Transaction& txn) -> Status {
                   ASSIGN_OR_RETURN(out, txn.FindByToken(type, param, system, code, 10));
                   return Status::Ok();
                 }).ok());
    return out;
  };
  auto hits = find("Patient", "https://fhir.nhs.uk/Id/nhs-number", "9000000009");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].id, "p");
  EXPECT_EQ(hits[0].version, 1);
  EXPECT_EQ(find("Patient", std::nullopt, "9000000009").size(), 1u);  // any system
  EXPECT_EQ(find("Patient", "", "9000000009").size(), 0u);            // |code: no system only
  EXPECT_EQ(find("Patient", "", "true", "active").size(), 1u);
  EXPECT_EQ(find("Observation", std::nullopt, "9000000009").size(), 0u);  // other type

  // An update replaces every row.
  IndexRows next;
  next.tokens = {{"identifier", "https://fhir.nhs.uk/Id/nhs-number", "9000000017"}};
  ASSERT_OK(this->PutVersion("Patient", "p", 2, &next, "p"));
  EXPECT_EQ(find("Patient", std::nullopt, "9000000009").size(), 0u);
  EXPECT_EQ(find("Patient", std::nullopt, "9000000017").size(), 1u);
  int after_update[] = {1, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < 7; ++i) EXPECT_EQ(this->CountRows(tables[i], w->rid), after_update[i]) << tables[i];

  // A delete removes them.
  ASSERT_OK(s.Delete({"Patient", "p", 3, s.Now()}));
  EXPECT_EQ(find("Patient", std::nullopt, "9000000017").size(), 0u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(this->CountRows(tables[i], w->rid), 0) << tables[i];
}

// --- Search -------------------------------------------------------------------

// Ids of a page.
std::vector<std::string> Ids(const std::vector<SearchHit>& hits) {
  std::vector<std::string> ids;
  for (const SearchHit& h : hits) ids.push_back(h.id);
  return ids;
}

TYPED_TEST(StoreTest, SearchPlanPredicatesSortingAndCount) {
  Store& s = this->store();
  // o0..o9: code c<i%3>, date day i, subject Patient/p<i%2>; p0 has family "smith".
  for (int i = 0; i < 10; ++i) {
    IndexRows rows;
    rows.tokens = {{"code", "sys", "c" + std::to_string(i % 3)}};
    rows.dates = {{"date", i * 86400000000LL, (i + 1) * 86400000000LL - 1}};
    rows.references = {{"subject", "Patient", "p" + std::to_string(i % 2), ""}};
    ASSERT_OK(this->PutVersion("Observation", "o" + std::to_string(i), 1, &rows, "p" + std::to_string(i % 2)));
  }
  IndexRows p0;
  p0.strings = {{"family", "smith", "Smith"}};
  ASSERT_OK(this->PutVersion("Patient", "p0", 1, &p0, "p0"));
  ASSERT_OK(this->PutVersion("Patient", "p1", 1, nullptr, "p1"));

  SearchPlan plan;
  plan.type = "Observation";
  plan.where = PlanNode::And(
      {PlanNode::Rows(IndexTable::kToken, "code", {Cond{Column::kCode, Op::kEq, std::string("c1"), {}}}),
       PlanNode::Rows(IndexTable::kReference, "subject", {Cond{Column::kTargetId, Op::kEq, std::string("p1"), {}}})});
  auto page = s.Search(plan);
  ASSERT_OK(page);
  EXPECT_EQ(Ids(page->hits), (std::vector<std::string>{"o1", "o7"}));
  EXPECT_FALSE(page->next);
  EXPECT_FALSE(page->hits[0].body.empty());

  // Chain: observations whose subject is a Patient with family starting "smi".
  plan.where = PlanNode::Chain(
      "subject", {"Patient"},
      PlanNode::Rows(IndexTable::kString, "family", {Cond{Column::kNormalized, Op::kPrefix, std::string("smi"), {}}}));
  plan.sort = {SortKey{SortKey::Source::kIndex, IndexTable::kDate, "date", Column::kHi, true, {}, {}}};
  plan.count = true;
  page = s.Search(plan);
  ASSERT_OK(page);
  EXPECT_EQ(Ids(page->hits), (std::vector<std::string>{"o8", "o6", "o4", "o2", "o0"}));
  EXPECT_EQ(page->total, 5);
  SearchPlan count_only = plan;
  count_only.limit = 0;
  page = s.Search(count_only);
  ASSERT_OK(page);
  EXPECT_TRUE(page->hits.empty());
  EXPECT_FALSE(page->next);
  EXPECT_EQ(page->total, 5);

  // _has: patients with an observation of code c2 dated day 6 or later; NOT; compartment.
  SearchPlan has;
  has.type = "Patient";
  has.where = PlanNode::Has(
      "Observation", "subject",
      PlanNode::And({PlanNode::Rows(IndexTable::kToken, "code", {Cond{Column::kCode, Op::kEq, std::string("c2"), {}}}),
                     PlanNode::Rows(IndexTable::kDate, "date",
                                    {Cond{Column::kLo, Op::kGe, std::int64_t{6 * 86400000000LL}, {}}})}));
  page = s.Search(has);
  ASSERT_OK(page);
  EXPECT_EQ(Ids(page->hits), (std::vector<std::string>{"p0"}));  // o8
  has.where = PlanNode::Not(PlanNode::Rows(IndexTable::kString, "family", {}));
  page = s.Search(has);
  ASSERT_OK(page);
  EXPECT_EQ(Ids(page->hits), (std::vector<std::string>{"p1"}));
  SearchPlan in_compartment;
  in_compartment.type = "Observation";
  in_compartment.compartment = "p1";
  in_compartment.where = PlanNode::Id({"o1", "o2", "o3"});
  page = s.Search(in_compartment);
  ASSERT_OK(page);
  EXPECT_EQ(Ids(page->hits), (std::vector<std::string>{"o1", "o3"}));

  // Includes: the subjects of o1 and o2; the observations of p0.
  IncludeQuery inc;
  auto first = s.Search(plan);
  ASSERT_OK(first);
  inc.rids = {first->hits[0].rid};
  inc.specs = {IncludeSpec{false, "Observation", "subject", ""}};
  auto included = s.Include(inc);
  ASSERT_OK(included);
  EXPECT_EQ(Ids(*included), (std::vector<std::string>{"p0"}));
  SearchPlan p0_plan;
  p0_plan.type = "Patient";
  p0_plan.where = PlanNode::Id({"p0"});
  auto p0_page = s.Search(p0_plan);
  ASSERT_OK(p0_page);
  inc.rids = {p0_page->hits[0].rid};
  inc.specs = {IncludeSpec{true, "Observation", "subject", ""}};
  inc.limit = 3;
  EXPECT_EQ(s.Include(inc).status().code(), StatusCode::kResourceExhausted);
  inc.limit = 100;
  included = s.Include(inc);
  ASSERT_OK(included);
  EXPECT_EQ(included->size(), 5u);

  // A bad cursor is refused.
  plan.after = SearchCursor{{std::string("x")}, 1};
  EXPECT_EQ(s.Search(plan).status().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, SearchPagesStayCorrectWhileDataChanges) {
  Store& s = this->store();
  auto put = [&](const std::string& id, int day, std::int64_t version = 1) {
    IndexRows rows;
    rows.dates = {{"date", day * 86400000000LL, (day + 1) * 86400000000LL - 1}};
    return this->PutVersion("Encounter", id, version, &rows);
  };
  for (int i = 0; i < 20; ++i) ASSERT_OK(put("e" + std::to_string(i), 100 + i));
  SearchPlan plan;
  plan.type = "Encounter";
  plan.sort = {SortKey{SortKey::Source::kIndex, IndexTable::kDate, "date", Column::kHi, true, {}, {}}};
  plan.limit = 5;
  auto page = s.Search(plan);
  ASSERT_OK(page);
  EXPECT_EQ(Ids(page->hits), (std::vector<std::string>{"e19", "e18", "e17", "e16", "e15"}));
  ASSERT_TRUE(page->next);
  std::string token = page->next->ToString();
  // Changes while the client holds the cursor: a newer encounter (sorts before
  // the cursor), an older one (after it), one deleted, one moved back in time.
  ASSERT_OK(put("new-first", 500));
  ASSERT_OK(put("new-late", 50));
  ASSERT_OK(s.Delete({"Encounter", "e13", 2, s.Now()}));
  ASSERT_OK(put("e12", 10, 2));
  auto cursor = SearchCursor::Parse(token);
  ASSERT_OK(cursor);
  plan.after = *cursor;
  std::vector<std::string> rest;
  for (;;) {
    auto next = s.Search(plan);
    ASSERT_OK(next);
    for (const std::string& id : Ids(next->hits)) rest.push_back(id);
    if (!next->next) break;
    plan.after = next->next;
  }
  EXPECT_EQ(rest, (std::vector<std::string>{"e14", "e11", "e10", "e9", "e8", "e7", "e6", "e5", "e4", "e3", "e2", "e1",
                                            "e0", "new-late", "e12"}));
}

// A token with system and code, or a reference with its target, drives as a
// join read in rid order (search_sql.cpp, StreamJoin): each match once even
// when a resource holds the target under two spellings, other types and
// deleted resources left out, pages forwards and back, and counts agree.
TYPED_TEST(StoreTest, StreamedDriversGiveEachMatchOnceInRidOrder) {
  Store& s = this->store();
  for (int i = 0; i < 7; ++i) {
    IndexRows rows;
    rows.tokens = {{"code", "sys", "c"}, {"code", "other", "c"}};
    rows.references = {{"subject", "Patient", "p", ""}};
    // Odd ones also name the patient by an absolute URL: two rows, one match.
    if (i % 2) rows.references.push_back({"subject", "Patient", "p", "http://example.org/fhir/Patient/p"});
    ASSERT_OK(this->PutVersion("Observation", "o" + std::to_string(i), 1, &rows, "p"));
  }
  IndexRows condition;
  condition.tokens = {{"code", "sys", "c"}};
  condition.references = {{"subject", "Patient", "p", ""}};
  ASSERT_OK(this->PutVersion("Condition", "c0", 1, &condition, "p"));
  ASSERT_OK(s.Delete({"Observation", "o3", 2, s.Now()}));
  const std::vector<std::string> all = {"o0", "o1", "o2", "o4", "o5", "o6"};

  for (const PlanNode& where : {PlanNode::Rows(IndexTable::kToken, "code",
                                               {Cond{Column::kSystem, Op::kEq, std::string("sys"), {}},
                                                Cond{Column::kCode, Op::kEq, std::string("c"), {}}}),
                                PlanNode::Rows(IndexTable::kReference, "subject",
                                               {Cond{Column::kTargetType, Op::kEq, std::string("Patient"), {}},
                                                Cond{Column::kTargetId, Op::kEq, std::string("p"), {}}})}) {
    SCOPED_TRACE(where.DebugString());
    SearchPlan plan;
    plan.type = "Observation";
    plan.where = where;
    plan.count = true;
    plan.limit = 4;
    auto first = s.Search(plan);
    ASSERT_OK(first);
    EXPECT_EQ(Ids(first->hits), (std::vector<std::string>{"o0", "o1", "o2", "o4"}));
    EXPECT_EQ(first->total, 6);
    ASSERT_TRUE(first->next);
    plan.after = first->next;
    auto second = s.Search(plan);
    ASSERT_OK(second);
    EXPECT_EQ(Ids(second->hits), (std::vector<std::string>{"o5", "o6"}));
    EXPECT_FALSE(second->next);
    ASSERT_TRUE(second->previous);
    plan.after = second->previous;
    auto back = s.Search(plan);
    ASSERT_OK(back);
    EXPECT_EQ(Ids(back->hits), (std::vector<std::string>{"o0", "o1", "o2", "o4"}));
    EXPECT_FALSE(back->previous);
    plan.after.reset();
    plan.limit = 100;
    plan.count_limit = 3;  // _total=estimate: stops counting after 4
    auto estimate = s.Search(plan);
    ASSERT_OK(estimate);
    EXPECT_EQ(Ids(estimate->hits), all);
    EXPECT_EQ(estimate->total, 4);
    plan.count_limit = 0;
    plan.where = PlanNode::And({where, PlanNode::Id({"o1", "o4", "c0"})});
    auto narrowed = s.Search(plan);
    ASSERT_OK(narrowed);
    EXPECT_EQ(Ids(narrowed->hits), (std::vector<std::string>{"o1", "o4"}));
    EXPECT_EQ(narrowed->total, 2);
    plan.where = where;
    EXPECT_NE(sql::PrintSearch(plan, sql::Dialect::kSqlite).sql.find(" xs CROSS JOIN resource r"), std::string::npos);
  }
}

TEST(SearchSqlTest, ValuesAreBoundNeverPrinted) {
  const std::string evil = "x'); DROP TABLE resource; --";
  SearchPlan plan;
  plan.type = evil;
  plan.compartment = evil;
  plan.where = PlanNode::Or(
      {PlanNode::Rows(IndexTable::kString, evil, {Cond{Column::kNormalized, Op::kContains, evil, {}}}),
       PlanNode::Chain(evil, {evil}, PlanNode::Id({evil})),
       PlanNode::Has(evil, evil,
                     PlanNode::Rows(IndexTable::kUri, evil, {Cond{Column::kUri, Op::kIn, {}, {evil, evil}}}))});
  plan.sort = {SortKey{SortKey::Source::kIndex, IndexTable::kString, evil, Column::kNormalized, false, {}, {}}};
  plan.after = SearchCursor{{evil}, 1};
  for (auto dialect : {sql::Dialect::kSqlite, sql::Dialect::kPostgres}) {
    for (const SqlStatement& st : {sql::PrintSearch(plan, dialect), sql::PrintCount(plan, dialect)}) {
      EXPECT_EQ(st.sql.find("DROP"), std::string::npos) << st.sql;
      EXPECT_FALSE(st.params.empty());
    }
    IncludeQuery inc{
        {1, 2}, {IncludeSpec{false, evil, evil, evil}, IncludeSpec{true, evil, evil, ""}}, true, 10, std::nullopt};
    EXPECT_EQ(sql::PrintInclude(inc, dialect).sql.find("DROP"), std::string::npos);
  }
}

TEST(SearchCursorTest, RoundTripsAndRejectsGarbage) {
  SearchCursor c{{std::int64_t{-5}, 2.5e-300, std::string("a_b.c\xff")}, 42};
  std::string text = c.ToString();
  EXPECT_EQ(text.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"),
            std::string::npos)
      << text;
  auto back = SearchCursor::Parse(text);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->keys, c.keys);
  EXPECT_EQ(back->rid, 42);
  for (std::string_view bad : {"", "r", "rx", "i1", "q1_r2", "s1_r2", "i1_r2_", "d1e_r1"}) {
    EXPECT_FALSE(SearchCursor::Parse(bad).ok()) << bad;
  }
}

// --- Transactions -------------------------------------------------------------

TYPED_TEST(StoreTest, TransactionIsAllOrNothing) {
  Store& s = this->store();
  ASSERT_OK(this->PutVersion("Patient", "existing", 1));
  std::string a = this->Body("Patient", "a", 1), b = this->Body("Patient", "b", 1);
  IndexRows rows;
  rows.tokens = {{"identifier", "sys", "A"}};
  // The callback fails after two writes: neither is kept.
  Status st = s.Transact([&](Transaction& txn) -> Status {
    RETURN_IF_ERROR(txn.Put({"Patient", "a", 1, s.Now(), a, {}, &rows}).status());
    RETURN_IF_ERROR(txn.Put({"Patient", "b", 1, s.Now(), b, {}, nullptr}).status());
    RETURN_IF_ERROR(txn.Delete({"Patient", "existing", 2, s.Now()}).status());
    // Reads inside the transaction see its own writes.
    auto ra = txn.Read("Patient", "a", true);
    if (!ra.ok() || ra->body != a) return InternalError("own write not visible");
    auto found = txn.FindByToken("Patient", "identifier", "sys", "A", 2);
    if (!found.ok() || found->size() != 1) return InternalError("own index rows not visible");
    return InvalidArgumentError("entry 3 is invalid");
  });
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Read("Patient", "a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.Read("Patient", "b").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(s.Read("Patient", "existing")->deleted);
  HistoryQuery q;
  q.type = "Patient";
  EXPECT_EQ(s.History(q)->entries.size(), 1u);

  // A failed precondition inside propagates and rolls back the earlier write.
  st = s.Transact([&](Transaction& txn) -> Status {
    RETURN_IF_ERROR(txn.Put({"Patient", "a", 1, s.Now(), a, {}, nullptr}).status());
    std::string e2 = this->Body("Patient", "existing", 5);
    RETURN_IF_ERROR(txn.Put({"Patient", "existing", 5, s.Now(), e2, {}, nullptr}).status());
    return Status::Ok();
  });
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.Read("Patient", "a").status().code(), StatusCode::kNotFound);

  // And a successful one commits everything.
  st = s.Transact([&](Transaction& txn) -> Status {
    RETURN_IF_ERROR(txn.Put({"Patient", "a", 1, s.Now(), a, {}, nullptr}).status());
    RETURN_IF_ERROR(txn.Put({"Patient", "b", 1, s.Now(), b, {}, nullptr}).status());
    return txn.Delete({"Patient", "existing", 2, s.Now()}).status();
  });
  ASSERT_OK(st);
  EXPECT_EQ(s.Read("Patient", "a")->body, a);
  EXPECT_EQ(s.Read("Patient", "b")->body, b);
  EXPECT_TRUE(s.Read("Patient", "existing")->deleted);
}

// 50 threads race updates with If-Match: exactly one wins each version.
TYPED_TEST(StoreTest, IfMatchRaceHasOneWinnerPerVersion) {
  Store& s = this->store();
  ASSERT_OK(this->PutVersion("Patient", "hot", 1));
  constexpr int kThreads = 50, kTries = 3;
  std::mutex mu;
  std::map<std::int64_t, int> winners;  // version -> wins
  int successes = 0, conflicts = 0;
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kTries; ++i) {
        auto cur = s.Read("Patient", "hot");
        if (!cur.ok()) continue;
        std::int64_t next = cur->version + 1;  // If-Match: W/"<cur->version>"
        std::string body = "{\"by\":" + std::to_string(t) + ",\"v\":" + std::to_string(next) + "}";
        auto w = s.Put({"Patient", "hot", next, s.Now(), body, {}, nullptr});
        std::lock_guard lock(mu);
        if (w.ok()) {
          ++winners[next];
          ++successes;
        } else {
          EXPECT_EQ(w.status().code(), StatusCode::kFailedPrecondition) << w.status().ToString();
          ++conflicts;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& [version, wins] : winners) EXPECT_EQ(wins, 1) << "version " << version;
  auto final_version = s.Read("Patient", "hot");
  ASSERT_OK(final_version);
  EXPECT_EQ(final_version->version, successes + 1);
  EXPECT_EQ(successes + conflicts, kThreads * kTries);
  EXPECT_GT(conflicts, 0);
  HistoryQuery q;
  q.type = "Patient";
  q.id = "hot";
  q.count = 1000;
  q.with_bodies = false;
  EXPECT_EQ(static_cast<int>(s.History(q)->entries.size()), successes + 1);
}

// Two threads "create a Patient unless one has identifier X": one resource per X.
TYPED_TEST(StoreTest, ConditionalCreateRaceMakesOneResource) {
  Store& s = this->store();
  constexpr int kThreads = 4, kIdentifiers = 25;
  std::atomic<int> created{0};
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kIdentifiers; ++i) {
        std::string code = "X" + std::to_string(i);
        std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        IndexRows rows;
        rows.tokens = {{"identifier", "urn:sys", code}};
        bool made = false;
        Status st = s.Transact([&](Transaction& txn) -> Status {
          made = false;
          ASSIGN_OR_RETURN(auto hits, txn.FindByToken("Patient", "identifier", "urn:sys", code, 2));
          if (!hits.empty()) return Status::Ok();  // 200 with the existing one
          std::string body = "{\"id\":\"" + id + "\"}";
          RETURN_IF_ERROR(txn.Put({"Patient", id, 1, s.Now(), body, {}, &rows}).status());
          made = true;
          return Status::Ok();
        });
        EXPECT_TRUE(st.ok()) << st.ToString();
        if (st.ok() && made) ++created;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(created.load(), kIdentifiers);
  for (int i = 0; i < kIdentifiers; ++i) {
    std::vector<ResourceKey> hits;
    ASSERT_OK(s.Transact([&](Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(hits, txn.FindByToken("Patient", "identifier", "urn:sys", "X" + std::to_string(i), 10));
      return Status::Ok();
    }));
    EXPECT_EQ(hits.size(), 1u) << "X" << i;
  }
}

// The same race through Transaction::Search with a two-criteria plan
// (conditional operations with any search criteria): one resource per
// (family, birthdate), and the transaction sees its own writes.
TYPED_TEST(StoreTest, ConditionalCreateRaceThroughSearchMakesOneResource) {
  Store& s = this->store();
  constexpr int kThreads = 4, kNames = 20;
  std::atomic<int> created{0};
  std::barrier start(kThreads);
  auto plan_for = [](int i) {
    SearchPlan plan;
    plan.type = "Patient";
    plan.limit = 2;
    plan.with_bodies = false;
    plan.where = PlanNode::And(
        {PlanNode::Rows(IndexTable::kString, "family",
                        {Cond{Column::kNormalized, Op::kPrefix, "name" + std::to_string(i) + "x", {}}}),
         PlanNode::Rows(IndexTable::kDate, "birthdate", {Cond{Column::kLo, Op::kGe, std::int64_t{0}, {}}})});
    return plan;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kNames; ++i) {
        std::string id = "s" + std::to_string(t) + "-" + std::to_string(i);
        IndexRows rows;
        rows.strings = {{"family", "name" + std::to_string(i) + "x", "Name"}};
        rows.dates = {{"birthdate", 86400000000LL, 2 * 86400000000LL - 1}};
        bool made = false;
        Status st = s.Transact([&](Transaction& txn) -> Status {
          made = false;
          ASSIGN_OR_RETURN(SearchPage found, txn.Search(plan_for(i)));
          if (!found.hits.empty()) return Status::Ok();
          RETURN_IF_ERROR(txn.Put({"Patient", id, 1, s.Now(), "{}", {}, &rows}).status());
          ASSIGN_OR_RETURN(SearchPage mine, txn.Search(plan_for(i)));
          if (mine.hits.size() != 1 || mine.hits[0].id != id) return InternalError("own write not seen");
          made = true;
          return Status::Ok();
        });
        EXPECT_TRUE(st.ok()) << st.ToString();
        if (st.ok() && made) ++created;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(created.load(), kNames);
  for (int i = 0; i < kNames; ++i) {
    auto page = s.Search(plan_for(i));
    ASSERT_OK(page);
    EXPECT_EQ(page->hits.size(), 1u) << i;
  }
}

// Many concurrent writers (grouped commits on SQLite): every acknowledged
// write is readable, with its history and index rows.
TYPED_TEST(StoreTest, ConcurrentWritersAllDurable) {
  Store& s = this->store();
  constexpr int kThreads = 16, kEach = 60;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string id = std::to_string(t) + "-" + std::to_string(i);
        IndexRows rows;
        rows.tokens = {{"identifier", "urn:w", id}};
        std::string body = "{\"id\":\"" + id + "\"}";
        if (!s.Put({"Observation", id, 1, s.Now(), body, "pat", &rows}).ok()) ++failures;
        // Every few writes, an update of the same resource and a read from this thread.
        if (i % 10 == 0) {
          std::string body2 = "{\"id\":\"" + id + "\",\"v\":2}";
          if (!s.Put({"Observation", id, 2, s.Now(), body2, "pat", &rows}).ok()) ++failures;
          auto r = s.Read("Observation", id);
          if (!r.ok() || r->version != 2 || r->body != body2) ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  this->Reopen();
  HistoryQuery q;
  q.type = "Observation";
  q.count = 1000;
  q.with_bodies = false;
  int entries = 0;
  for (;;) {
    auto page = this->store().History(q);
    ASSERT_OK(page);
    entries += static_cast<int>(page->entries.size());
    if (!page->next) break;
    q.after = page->next;
  }
  EXPECT_EQ(entries, kThreads * kEach + kThreads * (kEach / 10));
  for (int t = 0; t < kThreads; ++t) {
    std::string id = std::to_string(t) + "-" + std::to_string(kEach - 1);
    auto r = this->store().Read("Observation", id);
    ASSERT_OK(r);
    EXPECT_EQ(r->body, "{\"id\":\"" + id + "\"}");
    EXPECT_EQ(r->compartment, "pat");
  }
}

// Writes in flight from one thread without blocking it: each gets exactly one
// completion, after which it is readable.
TYPED_TEST(StoreTest, AsyncTransactionsCompleteOnceEach) {
  Store& s = this->store();
  constexpr int kWrites = 300;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> completions(kWrites, 0);
  int finished = 0, failed = 0;
  for (int i = 0; i < kWrites; ++i) {
    std::string id = "a" + std::to_string(i);
    s.TransactAsync(
        [&s, id](Transaction& txn) -> Status {
          std::string body = "{\"id\":\"" + id + "\"}";
          return txn.Put({"Basic", id, 1, s.Now(), body, {}, nullptr}).status();
        },
        [&, i](Status st) {
          std::lock_guard lock(mu);
          ++completions[i];
          ++finished;
          if (!st.ok()) ++failed;
          cv.notify_one();
        });
  }
  // A failing one reports its own error and does not disturb the others.
  Status bad_status;
  s.TransactAsync([](Transaction&) -> Status { return InvalidArgumentError("no"); },
                  [&](Status st) {
                    std::lock_guard lock(mu);
                    bad_status = st;
                    ++finished;
                    cv.notify_one();
                  });
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return finished == kWrites + 1; }));
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(bad_status.code(), StatusCode::kInvalidArgument);
  for (int i = 0; i < kWrites; ++i) EXPECT_EQ(completions[i], 1);
  lock.unlock();
  for (int i = 0; i < kWrites; i += 37) EXPECT_TRUE(*s.Exists("Basic", "a" + std::to_string(i)));
}

TYPED_TEST(StoreTest, ReopenKeepsDataAndTimeMovesOn) {
  auto w = this->PutVersion("Patient", "keep", 1);
  ASSERT_OK(w);
  ASSERT_OK(this->PutVersion("Patient", "keep", 2));
  ASSERT_OK(this->store().Delete({"Patient", "keep", 3, this->store().Now()}));
  ASSERT_OK(this->PutVersion("Patient", "other", 1));
  this->Reopen();
  auto r = this->store().Read("Patient", "keep");
  ASSERT_OK(r);
  EXPECT_TRUE(r->deleted);
  EXPECT_EQ(r->version, 3);
  auto v2 = this->store().VRead("Patient", "keep", 2);
  ASSERT_OK(v2);
  EXPECT_EQ(v2->body, this->Body("Patient", "keep", 2));
  EXPECT_GT(this->store().Now(), r->last_updated);
  auto again = this->PutVersion("Patient", "keep", 4);
  ASSERT_OK(again);
  EXPECT_EQ(again->rid, w->rid);
  // Opening an existing schema a second time (migration is idempotent).
  this->Reopen();
  EXPECT_EQ(this->store().Read("Patient", "keep")->version, 4);
}

// --- Backend-specific -------------------------------------------------------------

TEST(OpenStoreTest, RejectsUnknownUrls) {
  EXPECT_EQ(OpenStore("mysql://x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenStore("sqlite:").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(OpenStore("sqlite:/nonexistent-dir/x/y.db").ok());
}

TEST(SqliteStoreTest, MemoryUrlIsAPrivateTemporaryDatabase) {
  auto a = OpenStore("sqlite::memory:");
  auto b = OpenStore("sqlite::memory:");
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ((*a)->backend(), "sqlite");
  ASSERT_OK((*a)->Put({"Patient", "x", 1, (*a)->Now(), "{}", {}, nullptr}));
  EXPECT_TRUE(*(*a)->Exists("Patient", "x"));
  EXPECT_FALSE(*(*b)->Exists("Patient", "x"));
}

TEST(SqliteStoreTest, TransactInsideACallbackFailsInsteadOfDeadlocking) {
  auto s = OpenStore("sqlite::memory:");
  ASSERT_OK(s);
  Store& store = **s;
  Status inner;
  ASSERT_OK(store.Transact([&](Transaction&) -> Status {
    inner = store.Put({"Patient", "x", 1, store.Now(), "{}", {}, nullptr}).status();
    return Status::Ok();
  }));
  EXPECT_EQ(inner.code(), StatusCode::kInternal);
}

TEST(SqliteStoreTest, NewerSchemaIsRefused) {
  std::string url = SqliteBackend::NewUrl();
  { ASSERT_OK(OpenStore(url)); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(url.substr(7).c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_version VALUES (999)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(OpenStore(url).status().code(), StatusCode::kFailedPrecondition);
  SqliteBackend::Remove(url);
}

TEST(SqliteStoreTest, VersionOneDatabaseGainsTheSearchIndexes) {
  std::string url = SqliteBackend::NewUrl();
  { ASSERT_OK(OpenStore(url)); }
  auto count_indexes = [&] {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(url.substr(7).c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db,
                       "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN ("
                       "'idx_date_hi', 'idx_number_hi', 'idx_quantity_range', 'idx_reference_by_target', "
                       "'resource_compartment_type')",
                       -1, &stmt, nullptr);
    int n = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
  };
  EXPECT_EQ(count_indexes(), 5);
  // Back to version 1's shape.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(url.substr(7).c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP INDEX idx_date_hi; DROP INDEX idx_number_hi; "
                         "DROP INDEX idx_quantity_range; DROP INDEX idx_reference_by_target; "
                         "DROP INDEX resource_compartment_type; DELETE FROM schema_version WHERE version = 2",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(count_indexes(), 0);
  { ASSERT_OK(OpenStore(url)); }
  EXPECT_EQ(count_indexes(), 5);
  SqliteBackend::Remove(url);
}

// Secondary indexes in the SQLite file (the primary keys' automatic ones
// have no SQL text).
int CountSecondaryIndexes(const std::string& url) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(url.substr(7).c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL", -1, &stmt,
                     nullptr);
  int n = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return n;
}

TEST(SqliteStoreTest, BulkLoadDefersTheSearchIndexesIntoAnEmptyStoreOnly) {
  std::string url = SqliteBackend::NewUrl();
  auto store = OpenStore(url);
  ASSERT_OK(store);
  const int all = CountSecondaryIndexes(url);
  EXPECT_GE(all, 10);
  auto bulk = (*store)->BeginBulkLoad();
  ASSERT_OK(bulk);
  EXPECT_TRUE(*bulk);
  // Only the three whose keys arrive in order during a load stay.
  EXPECT_EQ(CountSecondaryIndexes(url), 3);
  IndexRows rows;
  rows.tokens.push_back({"gender", "", "female"});
  std::string body = R"({"resourceType":"Patient","id":"p"})";
  ASSERT_OK((*store)->Put({"Patient", "p", 1, (*store)->Now(), body, "p", &rows}));
  ASSERT_OK((*store)->EndBulkLoad());
  EXPECT_EQ(CountSecondaryIndexes(url), all);
  EXPECT_EQ(SqliteBackend::CountRows(url, "idx_token", 1), 1);
  {
    // The indexes were built with a rollback journal; the store is back in WAL mode.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(url.substr(7).c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
  }
  ASSERT_OK((*store)->Put({"Patient", "q", 1, (*store)->Now(), R"({"resourceType":"Patient","id":"q"})", "q", &rows}));
  EXPECT_EQ((*store)->Read("Patient", "q")->version, 1);
  // Not empty any more: no bulk mode, the indexes stay.
  bulk = (*store)->BeginBulkLoad();
  ASSERT_OK(bulk);
  EXPECT_FALSE(*bulk);
  EXPECT_EQ(CountSecondaryIndexes(url), all);
  ASSERT_OK((*store)->EndBulkLoad());
  store->reset();
  SqliteBackend::Remove(url);
}

TEST(SqliteStoreTest, BulkLoadCutShortGetsItsIndexesAtTheNextOpen) {
  std::string url = SqliteBackend::NewUrl();
  int all = 0;
  {
    auto store = OpenStore(url);
    ASSERT_OK(store);
    all = CountSecondaryIndexes(url);
    ASSERT_TRUE(*(*store)->BeginBulkLoad());
    std::string body = R"({"resourceType":"Patient","id":"p"})";
    ASSERT_OK((*store)->Put({"Patient", "p", 1, (*store)->Now(), body, "p", nullptr}));
    // Closed without EndBulkLoad, as if the import had been killed.
  }
  EXPECT_EQ(CountSecondaryIndexes(url), 3);
  auto store = OpenStore(url);
  ASSERT_OK(store);
  EXPECT_EQ(CountSecondaryIndexes(url), all);
  EXPECT_EQ((*store)->Read("Patient", "p")->body, R"({"resourceType":"Patient","id":"p"})");
  store->reset();
  SqliteBackend::Remove(url);
}

}  // namespace
}  // namespace bevan::store
