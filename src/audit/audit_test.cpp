#include "audit/audit.h"

#include "audit/internal.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "fhir/validate.h"
#include "fhirpath/invariants.h"
#include "json/json.h"

// GCC 12 warns about designated initializers that leave members to their
// default member initializers, which is what the tests mean.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace bevan::audit {
namespace {

class TempLog {
 public:
  TempLog() {
    static std::atomic<int> n{0};
    path_ = (std::filesystem::temp_directory_path() /
             ("bevan_audit_test_" + std::to_string(getpid()) + "_" + std::to_string(n++) + ".db"))
                .string();
    Remove();
  }
  ~TempLog() { Remove(); }
  const std::string& path() const { return path_; }

  // Runs SQL on the log behind the writer's back, the way an attacker with
  // file access would (dropping the append-only triggers first).
  void Tamper(const std::string& sql) const {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    std::string all =
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;"
        "DROP TRIGGER IF EXISTS audit_patient_no_update; DROP TRIGGER IF EXISTS audit_patient_no_delete;" +
        sql;
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, all.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

 private:
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm", ".head", ".head.tmp"}) std::remove((path_ + suffix).c_str());
  }
  std::string path_;
};

AuditRecord Read(std::string user, std::string patient, std::string entity) {
  AuditRecord r;
  r.action = Action::kRead;
  r.subtype = "read";
  r.user = std::move(user);
  r.client_id = "app";
  r.source_address = "10.0.0.7";
  r.request_id = "req-1";
  r.patients = {std::move(patient)};
  r.entities = {std::move(entity)};
  return r;
}

std::unique_ptr<AuditLog> OpenLog(const std::string& path, AuditLogOptions options = {}) {
  options.path = path;
  auto log = AuditLog::Open(std::move(options));
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return log.ok() ? std::move(log).value() : nullptr;
}

void WriteEvents(const std::string& path, int n) {
  auto log = OpenLog(path);
  ASSERT_NE(log, nullptr);
  for (int i = 1; i <= n; ++i) {
    ASSERT_TRUE(log->Append(Read("Practitioner/" + std::to_string(i % 3), std::to_string(i % 5),
                                 "Observation/" + std::to_string(i)))
                    .ok());
  }
  ASSERT_TRUE(log->Flush().ok());
}

VerifyReport MustVerify(const std::string& path, const std::string& key = {}) {
  auto r = Verify(path, key);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : VerifyReport{};
}

TEST(AuditLog, ConcurrentAppendsVerify) {
  TempLog t;
  constexpr int kThreads = 4, kEach = 2500;
  {
    auto log = OpenLog(t.path());
    ASSERT_NE(log, nullptr);
    std::vector<std::thread> threads;
    for (int th = 0; th < kThreads; ++th) {
      threads.emplace_back([&, th] {
        for (int i = 0; i < kEach; ++i) {
          EXPECT_TRUE(log->Append(Read("Practitioner/" + std::to_string(th), std::to_string(i % 50),
                                       "Observation/" + std::to_string(i)))
                          .ok());
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_TRUE(log->Flush().ok());
    EXPECT_EQ(log->committed(), kThreads * kEach);
  }
  VerifyReport r = MustVerify(t.path());
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.events, kThreads * kEach);
  EXPECT_EQ(r.head.size(), 64u);

  // Reopening continues the chain.
  {
    auto log = OpenLog(t.path());
    ASSERT_NE(log, nullptr);
    ASSERT_TRUE(log->Append(Read("Practitioner/1", "1", "Patient/1")).ok());
  }  // the destructor drains
  r = MustVerify(t.path());
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.events, kThreads * kEach + 1);
}

TEST(AuditLog, TriggersRefuseEditsThroughSql) {
  TempLog t;
  WriteEvents(t.path(), 3);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(t.path().c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "UPDATE audit SET agent = 'x' WHERE seq = 1", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "DELETE FROM audit WHERE seq = 3", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_TRUE(MustVerify(t.path()).ok);
}

struct TamperCase {
  const char* name;
  const char* sql;
  int64_t bad_seq;
  const char* says;
};

class AuditTamper : public ::testing::TestWithParam<TamperCase> {};

TEST_P(AuditTamper, VerifyNamesTheFirstBadEvent) {
  TempLog t;
  WriteEvents(t.path(), 50);
  ASSERT_TRUE(MustVerify(t.path()).ok);
  t.Tamper(GetParam().sql);
  VerifyReport r = MustVerify(t.path());
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_seq, GetParam().bad_seq) << r.problem;
  EXPECT_NE(r.problem.find(GetParam().says), std::string::npos) << r.problem;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AuditTamper,
    ::testing::Values(
        TamperCase{"EditEvent",
                   "UPDATE audit SET record = replace(record, 'Observation/17', 'Observation/99') WHERE seq = 17", 17,
                   "does not match its hash"},
        TamperCase{"EditIndexedColumn", "UPDATE audit SET agent = 'Practitioner/9' WHERE seq = 8", 8,
                   "does not match its hash"},
        TamperCase{"DeleteRow", "DELETE FROM audit WHERE seq = 23", 23, "missing"},
        TamperCase{"DeleteRows", "DELETE FROM audit WHERE seq BETWEEN 23 AND 25", 23, "events 23 to 25 missing"},
        TamperCase{"SwapRows",
                   "UPDATE audit SET seq = -1 WHERE seq = 10; UPDATE audit SET seq = 10 WHERE seq = 30;"
                   "UPDATE audit SET seq = 30 WHERE seq = -1",
                   10, "reordered"},
        TamperCase{"TruncateTail", "DELETE FROM audit WHERE seq > 40", 41, "tail was removed"},
        TamperCase{"ModifyHash", "UPDATE audit SET hash = zeroblob(32) WHERE seq = 12", 12, "does not match its hash"},
        TamperCase{"RechainOneEvent",
                   // Replace an event and recompute nothing else: the next event no longer follows.
                   "UPDATE audit SET hash = (SELECT hash FROM audit WHERE seq = 5) WHERE seq = 6", 6,
                   "does not match its hash"},
        TamperCase{"DeletePatientIndexRow", "DELETE FROM audit_patient WHERE seq = 33", 33, "patient index"},
        TamperCase{"DowngradeChain", "UPDATE audit_meta SET value = 'hmac-sha256' WHERE name = 'chain'", 0, "keyed"}),
    [](const ::testing::TestParamInfo<TamperCase>& info) { return info.param.name; });

TEST(AuditLog, HeadFileDetectsTruncationOnOpenAndWhenMissing) {
  TempLog t;
  WriteEvents(t.path(), 10);
  t.Tamper("DELETE FROM audit WHERE seq > 7");
  auto log = AuditLog::Open({.path = t.path()});
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("tail was removed"), std::string::npos) << log.status().message();

  TempLog t2;
  WriteEvents(t2.path(), 5);
  std::remove((t2.path() + ".head").c_str());
  VerifyReport r = MustVerify(t2.path());
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("no head file"), std::string::npos) << r.problem;
  EXPECT_FALSE(AuditLog::Open({.path = t2.path()}).ok());
}

TEST(AuditLog, KeyedChain) {
  TempLog t;
  {
    auto log = OpenLog(t.path(), {.key = "s3cret"});
    ASSERT_NE(log, nullptr);
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(log->Append(Read("Practitioner/1", "1", "Patient/1")).ok());
  }
  EXPECT_TRUE(MustVerify(t.path(), "s3cret").ok);
  VerifyReport no_key = MustVerify(t.path());
  EXPECT_FALSE(no_key.ok);
  EXPECT_NE(no_key.problem.find("BEVAN_AUDIT_KEY"), std::string::npos);
  EXPECT_FALSE(MustVerify(t.path(), "other").ok);
  EXPECT_FALSE(AuditLog::Open({.path = t.path()}).ok());
  EXPECT_FALSE(AuditLog::Open({.path = t.path(), .key = "other"}).ok());
  // Recomputing the plain SHA-256 chain over an edit does not help without the key.
  t.Tamper("UPDATE audit SET record = replace(record, 'Patient/1', 'Patient/2') WHERE seq = 4");
  VerifyReport r = MustVerify(t.path(), "s3cret");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_seq, 4);
}

TEST(AuditLog, BackpressureDropsNothing) {
  TempLog t;
  constexpr int kThreads = 4, kEach = 300;
  {
    auto log = OpenLog(t.path(), {.queue_limit = 16, .batch_limit = 8, .batch_interval_ms = 5});
    ASSERT_NE(log, nullptr);
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int th = 0; th < kThreads; ++th) {
      threads.emplace_back([&] {
        for (int i = 0; i < kEach; ++i) {
          if (!log->Append(Read("Practitioner/1", "1", "Patient/1")).ok()) ++failures;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
  }
  VerifyReport r = MustVerify(t.path());
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.events, kThreads * kEach);
}

TEST(AuditLog, QueryFilters) {
  TempLog t;
  auto log = OpenLog(t.path());
  ASSERT_NE(log, nullptr);
  const int64_t t0 = 1'700'000'000'000'000;
  for (int i = 0; i < 30; ++i) {
    AuditRecord r =
        Read(i % 2 ? "Practitioner/a" : "Practitioner/b", std::to_string(i % 3), "Observation/" + std::to_string(i));
    r.time_us = t0 + i * 1'000'000;
    if (i % 10 == 9) {
      r.action = Action::kUpdate;
      r.subtype = "update";
    }
    if (i == 29) r.outcome = Outcome::kMinorFailure;
    ASSERT_TRUE(log->Append(std::move(r)).ok());
  }
  AuditRecord both;
  both.time_us = t0 + 100'000'000;
  both.subtype = "search-type";
  both.client_id = "system-app";
  both.patients = {"7", "8", "7"};
  both.resource_type = "Observation";
  both.query = "subject=Patient/7,Patient/8";
  ASSERT_TRUE(log->Append(both).ok());
  ASSERT_TRUE(log->Flush().ok());

  auto ids = [](const AuditPage& page) {
    std::vector<std::string> out;
    for (const auto& e : page.events) {
      auto doc = json::Document::Parse(e);
      EXPECT_TRUE(doc.ok());
      if (doc.ok()) out.emplace_back(doc->root().Find("id")->as_string());
    }
    return out;
  };
  auto q = [&](AuditQuery query) {
    auto page = log->Query(query);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    return page.ok() ? *page : AuditPage{};
  };

  // Newest first; patient "0" was read by events 1, 4, ..., 28.
  EXPECT_EQ(ids(q({.patient = "0", .count = 3})), (std::vector<std::string>{"28", "25", "22"}));
  EXPECT_EQ(ids(q({.patient = "7"})), std::vector<std::string>{"31"});
  EXPECT_EQ(ids(q({.patient = "8"})), std::vector<std::string>{"31"});
  EXPECT_EQ(q({.agent = "Practitioner/a"}).events.size(), 15u);
  EXPECT_EQ(ids(q({.agent = "system-app"})), std::vector<std::string>{"31"});
  EXPECT_EQ(ids(q({.action = 'U'})), (std::vector<std::string>{"30", "20", "10"}));
  EXPECT_EQ(ids(q({.outcome = 4})), std::vector<std::string>{"30"});
  EXPECT_EQ(ids(q({.since_us = t0 + 5'000'000, .until_us = t0 + 8'000'000})),
            (std::vector<std::string>{"8", "7", "6"}));
  // Patient "1", odd i, not an update: i = 1, 7, 13, 25.
  EXPECT_EQ(ids(q({.patient = "1", .agent = "Practitioner/a", .action = 'R'})),
            (std::vector<std::string>{"26", "14", "8", "2"}));

  // Paging by seq.
  AuditPage p1 = q({.patient = "0", .count = 4});
  EXPECT_EQ(ids(p1), (std::vector<std::string>{"28", "25", "22", "19"}));
  EXPECT_EQ(p1.next_before_seq, 19);
  AuditPage p3 = q({.patient = "0", .before_seq = 7, .count = 4});
  EXPECT_EQ(ids(p3), (std::vector<std::string>{"4", "1"}));
  EXPECT_EQ(p3.next_before_seq, 0);
}

TEST(AuditLog, StoredRecordRoundTrips) {
  AuditRecord r = Read("Practitioner/3", "9", "Observation/5");
  r.time_us = 1'700'000'000'123'456;
  r.action = Action::kDelete;
  r.outcome = Outcome::kMinorFailure;
  r.description = "insufficient scope \"x\"";
  r.purpose_of_use = "TREAT";
  r.entities.push_back("Observation/6");
  r.entity_count = 9;
  r.resource_type = "Observation";
  r.query = "code=a|b&_count=2";
  std::string stored = internal::EncodeRecord(r);
  EXPECT_LT(stored.size(), 400u) << stored;
  auto back = internal::DecodeRecord(stored);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(ToAuditEventJson(*back, 7, "Bevan"), ToAuditEventJson(r, 7, "Bevan"));
  EXPECT_EQ(internal::EncodeRecord(*back), stored);
  EXPECT_FALSE(internal::DecodeRecord("not json").ok());
}

TEST(AuditEvent, ValidR4WithTheExpectedShape) {
  fhir::ValidateOptions full = fhirpath::FullValidation();
  AuditRecord read = Read("Practitioner/3", "9", "Observation/5");
  read.purpose_of_use = "TREAT";
  read.time_us = 1'700'000'000'123'456;
  AuditRecord search;
  search.subtype = "search-type";
  search.client_id = "backend";
  search.patients = {"1", "2"};
  search.entities = {"Patient/1", "Observation/1", "Observation/2"};
  search.entity_count = 40;
  search.resource_type = "Observation";
  search.query = "code=http://loinc.org|1234-5&_count=10";
  AuditRecord failed;
  failed.action = Action::kExecute;
  failed.subtype = "login-failed";
  failed.outcome = Outcome::kSeriousFailure;
  failed.description = "invalid client credentials";
  failed.source_address = "192.0.2.1";
  AuditRecord exported;
  exported.action = Action::kExecute;
  exported.subtype = "export";
  exported.user = "a-subject-id";
  for (const AuditRecord* r : {&read, &search, &failed, &exported}) {
    std::string json = ToAuditEventJson(*r, 42, "Bevan");
    fhir::OperationOutcome oo = fhir::ValidateJson(json, full);
    EXPECT_FALSE(oo.HasErrors()) << r->subtype << ": " << json;
  }
  std::string j = ToAuditEventJson(read, 42, "Bevan");
  EXPECT_NE(j.find(R"("recorded":"2023-11-14T22:13:20.123456Z")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("who":{"reference":"Practitioner/3"},"requestor":true)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("what":{"reference":"Patient/9"})"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("address":"10.0.0.7")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("code":"TREAT")"), std::string::npos) << j;
  std::string s = ToAuditEventJson(search, 1, "Bevan");
  EXPECT_NE(s.find(R"("code":"search-type")"), std::string::npos) << s;
  EXPECT_NE(s.find(R"("valueString":"37")"), std::string::npos) << s;  // 40 - 3 listed
  EXPECT_EQ(s.find("loinc"), std::string::npos) << "the query is stored base64-encoded";
  std::string f = ToAuditEventJson(failed, 1, "Bevan");
  EXPECT_NE(f.find(R"("code":"110114")"), std::string::npos) << f;
  EXPECT_NE(f.find(R"("outcome":"8")"), std::string::npos) << f;
}

}  // namespace
}  // namespace bevan::audit
