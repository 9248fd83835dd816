#include "audit/audit.h"

#include "audit/internal.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
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
        "DROP TRIGGER IF EXISTS audit_patient_no_update; DROP TRIGGER IF EXISTS audit_patient_no_delete;"
        "DROP TRIGGER IF EXISTS audit_block_no_update; DROP TRIGGER IF EXISTS audit_block_no_delete;"
        "DROP TRIGGER IF EXISTS audit_block_patient_no_update; DROP TRIGGER IF EXISTS audit_block_patient_no_delete;"
        "DROP TRIGGER IF EXISTS audit_block_agent_no_update; DROP TRIGGER IF EXISTS audit_block_agent_no_delete;" +
        sql;
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, all.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  // Rewrites the block holding event `seq` the way an attacker who knows the
  // format would: `edit` changes its decoded records and its hashes (32
  // bytes per event; event `seq` is at index seq - first), then the block is
  // re-encoded and stored.
  using BlockEdit = std::function<void(int64_t first, std::vector<std::string>&, std::string&)>;
  void EditBlock(int64_t seq, const BlockEdit& edit) const {
    Tamper("");
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT first_seq, hashes, records FROM audit_block WHERE first_seq <= ? "
                                 "ORDER BY first_seq DESC LIMIT 1",
                                 -1, &st, nullptr),
              SQLITE_OK);
    sqlite3_bind_int64(st, 1, seq);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    int64_t first = sqlite3_column_int64(st, 0);
    std::string hashes(static_cast<const char*>(sqlite3_column_blob(st, 1)), sqlite3_column_bytes(st, 1));
    std::string stored(static_cast<const char*>(sqlite3_column_blob(st, 2)), sqlite3_column_bytes(st, 2));
    sqlite3_finalize(st);
    auto z = internal::NewZstdContexts();
    std::string raw;
    ASSERT_TRUE(internal::DecompressBlock(*z, stored, internal::kBlockDecodeLimit, raw).ok());
    std::vector<std::string_view> views;
    ASSERT_TRUE(internal::SplitRecords(raw, views));
    std::vector<std::string> records(views.begin(), views.end());
    edit(first, records, hashes);
    raw.clear();
    for (const auto& r : records) internal::AppendFramed(r, raw);
    ASSERT_TRUE(internal::CompressBlock(*z, raw, stored).ok());
    ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE audit_block SET hashes = ?, records = ?, last_seq = ? WHERE first_seq = ?",
                                 -1, &st, nullptr),
              SQLITE_OK);
    sqlite3_bind_blob(st, 1, hashes.data(), static_cast<int>(hashes.size()), SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, stored.data(), static_cast<int>(stored.size()), SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, first + static_cast<int64_t>(records.size()) - 1);
    sqlite3_bind_int64(st, 4, first);
    EXPECT_EQ(sqlite3_step(st), SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_finalize(st);
    sqlite3_close(db);
  }

  // Copies a log from src/audit/testdata (a fixture and its head file).
  void CopyFixture(const std::string& name) const {
    std::string dir = std::string(BEVAN_SOURCE_DIR) + "/src/audit/testdata/";
    std::filesystem::copy_file(dir + name, path_);
    std::filesystem::copy_file(dir + name + ".head", path_ + ".head");
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

// Small batches (so blocks of two events): the log then holds both indexed
// blocks and a tail of blocks not yet indexed (see kIndexLag).
void WriteEvents(const std::string& path, int n, size_t batch_limit = 2) {
  // A long interval: the writer waits for full batches, so the blocks are
  // [1, 2], [3, 4], ... whatever the scheduling.
  auto log = OpenLog(path, {.batch_limit = batch_limit, .batch_interval_ms = 5000});
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
  WriteEvents(t.path(), 40);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(t.path().c_str(), &db), SQLITE_OK);
  for (const char* sql :
       {"UPDATE audit_block SET min_time = 0 WHERE first_seq = 1", "DELETE FROM audit_block WHERE first_seq = 3",
        "DELETE FROM audit_block_patient WHERE block = 1",
        "UPDATE audit_block_agent SET agent = 'x' WHERE block = 1"}) {
    EXPECT_NE(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sql;
  }
  sqlite3_close(db);
  EXPECT_TRUE(MustVerify(t.path()).ok);
}

std::function<void(const TempLog&)> Sql(std::string sql) {
  return [sql](const TempLog& t) { t.Tamper(sql); };
}

// Replaces `from` by `to` (same length) in the record of event `seq`.
std::function<void(const TempLog&)> EditRecord(int64_t seq, std::string from, std::string to, bool rehash = false) {
  return [=](const TempLog& t) {
    t.EditBlock(seq, [&](int64_t first, std::vector<std::string>& records, std::string& hashes) {
      auto i = static_cast<size_t>(seq - first);
      size_t at = records[i].find(from);
      ASSERT_NE(at, std::string::npos);
      records[i].replace(at, from.size(), to);
      if (rehash) {
        // Recompute this event's hash (possible without a key): the next
        // event then no longer follows.
        internal::Hash prev{};
        if (i == 1) std::memcpy(prev.data(), hashes.data(), prev.size());
        ASSERT_EQ(i, 1u);
        internal::Hash h = internal::EventHasher("").Next(prev, seq, records[i]);
        hashes.replace(32 * i, 32, reinterpret_cast<const char*>(h.data()), h.size());
      }
    });
  };
}

struct TamperCase {
  const char* name;
  std::function<void(const TempLog&)> tamper;
  int64_t bad_seq;
  const char* says;
};

class AuditTamper : public ::testing::TestWithParam<TamperCase> {};

// 50 events in blocks of two: blocks 1 to 31 are indexed, 33 to 49 are the
// tail not yet indexed.
TEST_P(AuditTamper, VerifyNamesTheFirstBadEvent) {
  TempLog t;
  WriteEvents(t.path(), 50);
  ASSERT_TRUE(MustVerify(t.path()).ok);
  GetParam().tamper(t);
  VerifyReport r = MustVerify(t.path());
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_seq, GetParam().bad_seq) << r.problem;
  EXPECT_NE(r.problem.find(GetParam().says), std::string::npos) << r.problem;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AuditTamper,
    ::testing::Values(
        TamperCase{"EditFirstEventOfBlock", EditRecord(17, "Observation/17", "Observation/99"), 17,
                   "does not match its hash"},
        TamperCase{"EditSecondEventOfBlock", EditRecord(18, "Observation/18", "Observation/98"), 18,
                   "does not match its hash"},
        TamperCase{"EditTailEvent", EditRecord(45, "Practitioner/0", "Practitioner/7"), 45, "does not match its hash"},
        TamperCase{"RechainOneEvent", EditRecord(18, "Observation/18", "Observation/98", true), 19,
                   "does not follow event 18"},
        TamperCase{"DeleteBlock", Sql("DELETE FROM audit_block WHERE first_seq = 23"), 23, "events 23 to 24 missing"},
        TamperCase{"DeleteEventInsideBlock",
                   [](const TempLog& t) {
                     t.EditBlock(23, [](int64_t, std::vector<std::string>& records, std::string& hashes) {
                       records.pop_back();
                       hashes.resize(32);
                     });
                   },
                   // The block's time range or patient list still covers event 24.
                   23, "of the block of events 23 to 23 does not match its events"},
        TamperCase{"SwapBlocks",
                   Sql("UPDATE audit_block SET first_seq = -1 WHERE first_seq = 9;"
                       "UPDATE audit_block SET first_seq = 9 WHERE first_seq = 29;"
                       "UPDATE audit_block SET first_seq = 29 WHERE first_seq = -1"),
                   9, "reordered"},
        TamperCase{"SwapEventsInsideBlock",
                   [](const TempLog& t) {
                     t.EditBlock(9, [](int64_t, std::vector<std::string>& records, std::string&) {
                       std::swap(records[0], records[1]);
                     });
                   },
                   9, "does not match its hash"},
        TamperCase{"TruncateTail", Sql("DELETE FROM audit_block WHERE first_seq > 40"), 41, "tail was removed"},
        TamperCase{"TruncateIndexedBlocks", Sql("DELETE FROM audit_block WHERE first_seq > 20"), 21, "missing"},
        TamperCase{"ModifyHash",
                   [](const TempLog& t) {
                     t.EditBlock(12, [](int64_t, std::vector<std::string>&, std::string& hashes) {
                       hashes.replace(32, 32, std::string(32, '\0'));
                     });
                   },
                   12, "does not match its hash"},
        TamperCase{"DeletePatientIndexRows", Sql("DELETE FROM audit_block_patient WHERE block = 11"), 11,
                   "patient index"},
        TamperCase{"DeleteAgentIndexRows", Sql("DELETE FROM audit_block_agent WHERE block = 5"), 5, "agent index"},
        TamperCase{"EmptyTailPatientList", Sql("UPDATE audit_block SET patients = x'00' WHERE first_seq = 41"), 41,
                   "list of patients"},
        TamperCase{"MoveIndexMark", Sql("UPDATE audit_meta SET value = '51' WHERE name = 'indexed_before'"), 33,
                   "patient index"},
        TamperCase{"DowngradeChain", Sql("UPDATE audit_meta SET value = 'hmac-sha256' WHERE name = 'chain'"), 0,
                   "keyed"}),
    [](const ::testing::TestParamInfo<TamperCase>& info) { return info.param.name; });

TEST(AuditLog, HeadFileDetectsTruncationOnOpenAndWhenMissing) {
  TempLog t;
  WriteEvents(t.path(), 10);
  t.Tamper("DELETE FROM audit_block WHERE first_seq > 7");
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
  t.EditBlock(4, [](int64_t first, std::vector<std::string>& records, std::string&) {
    std::string& r = records[static_cast<size_t>(4 - first)];
    r.replace(r.find("Patient/1"), 9, "Patient/2");
  });
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

std::vector<int64_t> Ids(const AuditPage& page) {
  std::vector<int64_t> out;
  for (const auto& e : page.events) {
    auto doc = json::Document::Parse(e);
    EXPECT_TRUE(doc.ok());
    if (doc.ok()) out.push_back(std::stoll(std::string(doc->root().Find("id")->as_string())));
  }
  return out;
}

// Every event matching `q`, page by page; checks the pages chain up.
std::vector<int64_t> AllPages(AuditLog& log, AuditQuery q) {
  std::vector<int64_t> all;
  for (int pages = 0; pages < 1000; ++pages) {
    auto page = log.Query(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    std::vector<int64_t> ids = Ids(*page);
    all.insert(all.end(), ids.begin(), ids.end());
    if (page->next_before_seq == 0) break;
    EXPECT_EQ(page->next_before_seq, ids.back());
    q.before_seq = page->next_before_seq;
  }
  return all;
}

TEST(AuditLog, PagingAcrossBlocksAndIndexRuns) {
  TempLog t;
  const int64_t t0 = 1'700'000'000'000'000;
  // Blocks of three events: 50 blocks, of which the first 48 are indexed
  // (three runs of kIndexLag) and the last 2 are the unindexed tail.
  auto log = OpenLog(t.path(), {.batch_limit = 3, .batch_interval_ms = 5000});
  ASSERT_NE(log, nullptr);
  for (int i = 0; i < 150; ++i) {
    AuditRecord r =
        Read("Practitioner/" + std::to_string(i % 3), std::to_string(i % 4), "Observation/" + std::to_string(i));
    r.time_us = t0 + i * 1000;
    ASSERT_TRUE(log->Append(std::move(r)).ok());
  }
  ASSERT_TRUE(log->Flush().ok());
  auto expect = [](auto pred) {
    std::vector<int64_t> out;
    for (int i = 149; i >= 0; --i) {
      if (pred(i)) out.push_back(i + 1);
    }
    return out;
  };
  for (size_t count : {1u, 5u, 7u, 1000u}) {
    EXPECT_EQ(AllPages(*log, {.patient = "1", .count = count}), expect([](int i) { return i % 4 == 1; })) << count;
    EXPECT_EQ(AllPages(*log, {.agent = "Practitioner/2", .count = count}), expect([](int i) { return i % 3 == 2; }));
    EXPECT_EQ(AllPages(*log, {.patient = "3", .agent = "Practitioner/0", .count = count}),
              expect([](int i) { return i % 4 == 3 && i % 3 == 0; }));
    EXPECT_EQ(AllPages(*log, {.since_us = t0 + 30'000, .until_us = t0 + 60'000, .count = count}),
              expect([](int i) { return i >= 30 && i < 60; }));
    EXPECT_EQ(AllPages(*log, {.patient = "2", .since_us = t0 + 140'000, .count = count}),
              expect([](int i) { return i % 4 == 2 && i >= 140; }));
  }
  // A page may start inside a block.
  EXPECT_EQ(Ids(*log->Query({.patient = "0", .before_seq = 101, .count = 3})), (std::vector<int64_t>{97, 93, 89}));
  EXPECT_TRUE(log->Query({.patient = "no-such-patient"})->events.empty());
  log.reset();
  VerifyReport r = MustVerify(t.path());
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.events, 150);
}

TEST(AuditLog, ReadsAndExtendsAFormat1Log) {
  TempLog t;
  t.CopyFixture("format1.db");
  VerifyReport r = MustVerify(t.path());
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.events, 41);
  {
    auto log = OpenLog(t.path());
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->committed(), 41);
    // The fixture's events: i = 0..39 as seq i + 1 (patient i % 3, user a
    // for odd i, updates at i % 10 == 9, a failure at 39), then a search.
    EXPECT_EQ(Ids(*log->Query({.patient = "0", .count = 3})), (std::vector<int64_t>{40, 37, 34}));
    EXPECT_EQ(Ids(*log->Query({.patient = "8"})), std::vector<int64_t>{41});
    EXPECT_EQ(Ids(*log->Query({.agent = "system-app"})), std::vector<int64_t>{41});
    EXPECT_EQ(Ids(*log->Query({.action = 'U'})), (std::vector<int64_t>{40, 30, 20, 10}));
    EXPECT_EQ(Ids(*log->Query({.outcome = 4})), std::vector<int64_t>{40});
    std::string search = log->Query({.patient = "7"})->events.at(0);
    EXPECT_NE(search.find(R"("valueString":"10")"), std::string::npos) << search;  // 12 - 2 listed
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(log->Append(Read("Practitioner/b", "0", "Patient/0")).ok());
    ASSERT_TRUE(log->Flush().ok());
    std::vector<int64_t> want;
    for (int64_t seq = 51; seq >= 42; --seq) want.push_back(seq);
    for (int64_t seq = 40; seq >= 1; seq -= 3) want.push_back(seq);
    EXPECT_EQ(AllPages(*log, {.patient = "0", .count = 4}), want);
    EXPECT_EQ(AllPages(*log, {.patient = "0", .agent = "Practitioner/b", .count = 4}).size(), 10u + 7u);
  }
  r = MustVerify(t.path());
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.events, 51);
  // The old rows stay covered by the chain.
  t.Tamper("UPDATE audit SET record = replace(record, 'Observation/17', 'Observation/99') WHERE seq = 18");
  r = MustVerify(t.path());
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_seq, 18) << r.problem;
}

TEST(AuditLog, ReadsAKeyedFormat1Log) {
  TempLog t;
  t.CopyFixture("format1-keyed.db");
  EXPECT_TRUE(MustVerify(t.path(), "fixture-key").ok);
  EXPECT_FALSE(MustVerify(t.path()).ok);
  {
    auto log = OpenLog(t.path(), {.key = "fixture-key"});
    ASSERT_NE(log, nullptr);
    ASSERT_TRUE(log->Append(Read("Practitioner/1", "1", "Patient/1")).ok());
  }
  VerifyReport r = MustVerify(t.path(), "fixture-key");
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.events, 42);
}

TEST(AuditLog, RefusesALaterFormat) {
  TempLog t;
  WriteEvents(t.path(), 4);
  t.Tamper("UPDATE audit_meta SET value = '3' WHERE name = 'format'");
  auto log = AuditLog::Open({.path = t.path()});
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("newer Bevan"), std::string::npos) << log.status().message();
  EXPECT_NE(MustVerify(t.path()).problem.find("unknown format"), std::string::npos);
}

// A crash after a commit and before the head file is replaced leaves the
// head behind the log: accepted, and the chain still covers every event.
TEST(AuditLog, HeadBehindTheLogAfterACrash) {
  TempLog t;
  WriteEvents(t.path(), 10);
  std::filesystem::copy_file(t.path() + ".head", t.path() + ".head.old");
  WriteEvents(t.path(), 6);
  std::filesystem::rename(t.path() + ".head.old", t.path() + ".head");
  auto head = internal::ReadHead(t.path());
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 10);
  VerifyReport r = MustVerify(t.path());
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.events, 16);
  WriteEvents(t.path(), 2);  // Open accepts it and moves the head on
  EXPECT_EQ(internal::ReadHead(t.path())->seq, 18);
  EXPECT_TRUE(MustVerify(t.path()).ok);
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
