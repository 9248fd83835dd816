// The PostgreSQL backend (libpq).
//
// A pool of connections shared by reads and writes. A write transaction holds
// one connection from BEGIN to COMMIT at READ COMMITTED isolation:
// - Transaction::Read locks the row it reads (SELECT ... FOR UPDATE), so
//   read-check-write sequences on one resource serialise (If-Match, and plain
//   updates that compute version + 1).
// - Transaction::FindByToken first takes a transaction-scoped advisory lock on
//   (type, param, code), so two racing conditional creates serialise: the second
//   searches after the first committed (each READ COMMITTED statement takes a
//   fresh snapshot) and finds its resource.
// - Two transactions inserting the same new (type, id) collide on the unique
//   key; deadlocks between multi-resource transactions are broken by the
//   server. Both abort one transaction, which Transact re-runs from the start.
//
// Statements that return nothing the caller needs (history and index rows,
// BEGIN) are queued and sent with the next statement that does return
// something, in one libpq pipeline: a create costs three round trips whatever
// its number of index rows. Their errors surface at that next statement or at
// COMMIT, and poison the transaction.
//
// Durability is the server's: COMMIT returns after the WAL is flushed
// (synchronous_commit = on, the default).
#include <libpq-fe.h>

#include <array>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "store/internal.h"
#include "store/search_sql.h"
#include "store/sql.h"

namespace bevan::store::internal {
namespace {

using sql::IndexTable;

enum Stmt : int {
  kBegin,
  kCommit,
  kReadCurrent,
  kReadCurrentMeta,
  kReadCurrentForUpdate,
  kReadCurrentForUpdateMeta,
  kVRead,
  kExists,
  kRidOf,
  kInsertResource,
  kUpdateResource,
  kDeleteResource,
  kInsertHistory,
  kInsertToken,
  kInsertString,
  kInsertDate,
  kInsertNumber,
  kInsertQuantity,
  kInsertReference,
  kInsertUri,
  kFindToken,
  kFindTokenAnySystem,
  kAdvisoryLock,
  kDeleteIndex0,
  kHistory0 = kDeleteIndex0 + sql::kIndexTableCount,
  kStmtCount = kHistory0 + 6,
};

const char* const kFixedSql[] = {
    "BEGIN",
    "COMMIT",
    "SELECT rid, version, last_updated, deleted, compartment, body FROM resource WHERE type = $1 AND id = $2",
    "SELECT rid, version, last_updated, deleted, compartment FROM resource WHERE type = $1 AND id = $2",
    "SELECT rid, version, last_updated, deleted, compartment, body FROM resource WHERE type = $1 AND id = $2 "
    "FOR UPDATE",
    "SELECT rid, version, last_updated, deleted, compartment FROM resource WHERE type = $1 AND id = $2 FOR UPDATE",
    "SELECT h.rid, h.version, h.last_updated, h.method, h.compartment, h.body FROM resource r "
    "JOIN resource_history h ON h.rid = r.rid WHERE r.type = $1 AND r.id = $2 AND h.version = $3",
    "SELECT deleted FROM resource WHERE type = $1 AND id = $2",
    "SELECT rid FROM resource WHERE type = $1 AND id = $2",
    "INSERT INTO resource (type, id, version, last_updated, deleted, compartment, body) "
    "VALUES ($1, $2, $3, $4, false, $5, $6) RETURNING rid",
    "UPDATE resource SET version = $2, last_updated = $3, deleted = false, compartment = $4, body = $5 "
    "WHERE rid = $1",
    "UPDATE resource SET version = $2, last_updated = $3, deleted = true, body = NULL WHERE rid = $1",
    "INSERT INTO resource_history (rid, version, type, last_updated, method, compartment, body) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)",
    "INSERT INTO idx_token (rid, param, system, code, compartment) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT DO NOTHING",
    "INSERT INTO idx_string (rid, param, normalized, exact, compartment) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT DO NOTHING",
    "INSERT INTO idx_date (rid, param, lo, hi, compartment) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    "INSERT INTO idx_number (rid, param, lo, hi, compartment) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    "INSERT INTO idx_quantity (rid, param, lo, hi, system, code, canonical_lo, canonical_hi, canonical_unit, "
    "compartment) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
    "INSERT INTO idx_reference (rid, param, target_type, target_id, url, compartment) "
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    "INSERT INTO idx_uri (rid, param, uri, compartment) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    "SELECT r.rid, r.id, r.version FROM resource r WHERE r.type = $1 AND NOT r.deleted AND r.rid IN "
    "(SELECT t.rid FROM idx_token t WHERE t.param = $2 AND t.code = $4 AND t.system = $3) ORDER BY r.id LIMIT $5",
    "SELECT r.rid, r.id, r.version FROM resource r WHERE r.type = $1 AND NOT r.deleted AND r.rid IN "
    "(SELECT t.rid FROM idx_token t WHERE t.param = $2 AND t.code = $3) ORDER BY r.id LIMIT $4",
    "SELECT pg_advisory_xact_lock($1)",
};
static_assert(sizeof(kFixedSql) / sizeof(kFixedSql[0]) == kDeleteIndex0);

std::string StmtSql(int id) {
  if (id < kDeleteIndex0) return kFixedSql[id];
  if (id < kHistory0) return sql::ToPostgres(sql::DeleteIndexRows(static_cast<IndexTable>(id - kDeleteIndex0)));
  int h = id - kHistory0;
  return sql::ToPostgres(sql::History(h / 2, h % 2 == 1));
}

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE resource (
  rid BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version BIGINT NOT NULL,
  last_updated BIGINT NOT NULL,
  deleted BOOLEAN NOT NULL,
  compartment TEXT,
  body BYTEA,
  UNIQUE (type, id));
CREATE INDEX resource_compartment ON resource (compartment) WHERE compartment IS NOT NULL;
CREATE TABLE resource_history (
  rid BIGINT NOT NULL,
  version BIGINT NOT NULL,
  type TEXT NOT NULL,
  last_updated BIGINT NOT NULL,
  method SMALLINT NOT NULL,
  compartment TEXT,
  body BYTEA,
  PRIMARY KEY (rid, version));
CREATE INDEX resource_history_time ON resource_history (last_updated, rid, version);
CREATE INDEX resource_history_type_time ON resource_history (type, last_updated, rid, version);
CREATE TABLE idx_token (
  rid BIGINT NOT NULL, param TEXT NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL, compartment TEXT,
  PRIMARY KEY (rid, param, system, code));
CREATE INDEX idx_token_value ON idx_token (param, code, system);
CREATE TABLE idx_string (
  rid BIGINT NOT NULL, param TEXT NOT NULL, normalized TEXT NOT NULL, exact TEXT NOT NULL, compartment TEXT,
  PRIMARY KEY (rid, param, exact));
CREATE INDEX idx_string_value ON idx_string (param, normalized);
CREATE TABLE idx_date (
  rid BIGINT NOT NULL, param TEXT NOT NULL, lo BIGINT NOT NULL, hi BIGINT NOT NULL, compartment TEXT,
  PRIMARY KEY (rid, param, lo, hi));
CREATE INDEX idx_date_value ON idx_date (param, lo, hi);
CREATE TABLE idx_number (
  rid BIGINT NOT NULL, param TEXT NOT NULL, lo DOUBLE PRECISION NOT NULL, hi DOUBLE PRECISION NOT NULL,
  compartment TEXT,
  PRIMARY KEY (rid, param, lo, hi));
CREATE INDEX idx_number_value ON idx_number (param, lo, hi);
CREATE TABLE idx_quantity (
  rid BIGINT NOT NULL, param TEXT NOT NULL, lo DOUBLE PRECISION NOT NULL, hi DOUBLE PRECISION NOT NULL,
  system TEXT NOT NULL, code TEXT NOT NULL, canonical_lo DOUBLE PRECISION, canonical_hi DOUBLE PRECISION,
  canonical_unit TEXT NOT NULL, compartment TEXT,
  PRIMARY KEY (rid, param, system, code, lo, hi));
CREATE INDEX idx_quantity_value ON idx_quantity (param, code, lo);
CREATE INDEX idx_quantity_canonical ON idx_quantity (param, canonical_unit, canonical_lo);
CREATE TABLE idx_reference (
  rid BIGINT NOT NULL, param TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
  url TEXT NOT NULL, compartment TEXT,
  PRIMARY KEY (rid, param, target_type, target_id, url));
CREATE INDEX idx_reference_target ON idx_reference (param, target_id, target_type);
CREATE INDEX idx_reference_url ON idx_reference (param, url);
CREATE TABLE idx_uri (
  rid BIGINT NOT NULL, param TEXT NOT NULL, uri TEXT NOT NULL, compartment TEXT,
  PRIMARY KEY (rid, param, uri));
CREATE INDEX idx_uri_value ON idx_uri (param, uri);
)sql";

// Schema version 2: the indexes search needs beyond version 1's (see the
// SQLite backend). String prefix searches compare bytes: databases should use
// the C collation (the test cluster does), as range scans on `normalized`
// follow the database collation.
constexpr const char* kSchemaV2 = R"sql(
CREATE INDEX IF NOT EXISTS idx_string_exact ON idx_string (param, exact);
CREATE INDEX IF NOT EXISTS idx_date_hi ON idx_date (param, hi);
CREATE INDEX IF NOT EXISTS idx_number_hi ON idx_number (param, hi);
CREATE INDEX IF NOT EXISTS idx_quantity_range ON idx_quantity (param, lo);
CREATE INDEX IF NOT EXISTS idx_reference_to ON idx_reference (target_id, target_type);
CREATE INDEX IF NOT EXISTS resource_compartment_type ON resource (compartment, type) WHERE compartment IS NOT NULL;
)sql";

// SQLSTATEs after which re-running the whole transaction can succeed.
bool IsRetryable(std::string_view sqlstate) {
  return sqlstate == "40001" /* serialization_failure */ || sqlstate == "40P01" /* deadlock_detected */ ||
         sqlstate == "23505" /* unique_violation: a racing insert of the same (type, id) */;
}

// Owns a PGresult.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : r_(r) {}
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult& operator=(PgResult&& o) noexcept {
    std::swap(r_, o.r_);
    return *this;
  }
  ~PgResult() { PQclear(r_); }

  PGresult* get() const { return r_; }

  int rows() const { return PQntuples(r_); }
  bool IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  // Binary-format integers of any width (BOOLEAN, SMALLINT, INTEGER, BIGINT).
  std::int64_t Int(int row, int col) const {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row, col));
    int n = PQgetlength(r_, row, col);
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
    // Sign-extend from n bytes.
    if (n > 0 && n < 8 && (p[0] & 0x80) != 0) v |= ~std::uint64_t{0} << (8 * n);
    return static_cast<std::int64_t>(v);
  }
  std::string Bytes(int row, int col) const { return std::string(PQgetvalue(r_, row, col), PQgetlength(r_, row, col)); }
  // A binary-format float8.
  double Double(int row, int col) const {
    std::uint64_t bits = static_cast<std::uint64_t>(Int(row, col));
    double d = 0;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }

 private:
  PGresult* r_ = nullptr;
};

// Bound values of one statement, copied: statements are queued beyond the
// lifetime of the caller's views (see PgTransaction). Everything but bodies
// travels in text format (so the server types each parameter from the
// statement); bodies go as binary bytea.
class Params {
 public:
  Params& Int(std::int64_t v) { return Own(std::to_string(v)); }
  Params& Bool(bool v) { return Own(v ? "t" : "f"); }
  Params& Double(double v) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
    return Own(std::string(buf, end));
  }
  Params& OptDouble(const std::optional<double>& v) { return v ? Double(*v) : Null(); }
  Params& Text(std::string_view v) { return Own(std::string(v)); }
  Params& TextOrNull(std::string_view v) { return v.empty() ? Null() : Text(v); }
  Params& Null() {
    items_.push_back({std::string(), true, false});
    return *this;
  }
  Params& Blob(std::string_view v) {
    items_.push_back({std::string(v), false, true});
    return *this;
  }

  int size() const { return static_cast<int>(items_.size()); }

  // Pointers for libpq; valid while this object is unchanged.
  void Fill(std::vector<const char*>& values, std::vector<int>& lengths, std::vector<int>& formats) const {
    values.clear();
    lengths.clear();
    formats.clear();
    for (const Item& it : items_) {
      if (it.null) {
        values.push_back(nullptr);
      } else {
        values.push_back(it.owned.c_str());
      }
      lengths.push_back(it.binary ? static_cast<int>(it.owned.size()) : 0);
      formats.push_back(it.binary ? 1 : 0);
    }
  }

 private:
  struct Item {
    std::string owned;
    bool null;
    bool binary;
  };
  Params& Own(std::string v) {
    items_.push_back({std::move(v), false, false});
    return *this;
  }
  std::vector<Item> items_;
};

struct Pending {
  int stmt;
  Params params;
};

// A pooled connection with all statements prepared.
class PgConn {
 public:
  explicit PgConn(PGconn* c) : conn_(c) {}
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;
  ~PgConn() { PQfinish(conn_); }

  PGconn* get() const { return conn_; }
  bool broken() const { return PQstatus(conn_) != CONNECTION_OK; }

  static Result<std::unique_ptr<PgConn>> Connect(const std::string& conninfo) {
    auto conn = std::make_unique<PgConn>(PQconnectdb(conninfo.c_str()));
    if (conn->conn_ == nullptr) return UnavailableError("postgresql: out of memory");
    if (conn->broken()) return UnavailableError("postgresql: connect: " + std::string(PQerrorMessage(conn->conn_)));
    // Server notices ("relation already exists, skipping") are not errors; the
    // default processor would print them on stderr.
    PQsetNoticeProcessor(
        conn->conn_, [](void*, const char*) {}, nullptr);
    return conn;
  }

  Status PrepareAll() {
    for (int id = 0; id < kStmtCount; ++id) {
      std::string name = "s" + std::to_string(id);
      PgResult r(PQprepare(conn_, name.c_str(), StmtSql(id).c_str(), 0, nullptr));
      RETURN_IF_ERROR(Check(r, "prepare " + StmtSql(id).substr(0, 60)));
    }
    return Status::Ok();
  }

  // Runs SQL text with no parameters (DDL, migrations).
  Status ExecSimple(const char* sql_text) {
    PgResult r(PQexec(conn_, sql_text));
    return Check(r, std::string(sql_text).substr(0, 60));
  }

  Result<PgResult> QuerySimple(const char* sql_text) {
    PgResult r(PQexecParams(conn_, sql_text, 0, nullptr, nullptr, nullptr, nullptr, 1));
    RETURN_IF_ERROR(Check(r, sql_text));
    return r;
  }

  // One statement outside a transaction, binary results.
  Result<PgResult> Query(int stmt, const Params& params) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    params.Fill(values, lengths, formats);
    std::string name = "s" + std::to_string(stmt);
    PgResult r(PQexecPrepared(conn_, name.c_str(), params.size(), values.data(), lengths.data(), formats.data(), 1));
    RETURN_IF_ERROR(Check(r, name));
    return r;
  }

  // Sends `batch` in one pipeline and returns the last statement's result.
  // On error returns the first failure; `sqlstate` receives its SQLSTATE.
  Result<PgResult> Pipeline(std::vector<Pending>& batch, std::string& sqlstate) {
    if (batch.size() == 1) {
      auto r = Query(batch[0].stmt, batch[0].params);
      if (!r.ok()) sqlstate = last_sqlstate_;
      batch.clear();
      return r;
    }
    if (PQenterPipelineMode(conn_) != 1) return InternalError("postgresql: cannot enter pipeline mode");
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    Status failure;
    size_t sent = 0;
    for (const Pending& p : batch) {
      p.params.Fill(values, lengths, formats);
      std::string name = "s" + std::to_string(p.stmt);
      if (PQsendQueryPrepared(conn_, name.c_str(), p.params.size(), values.data(), lengths.data(), formats.data(), 1) !=
          1) {
        failure = UnavailableError("postgresql: send: " + std::string(PQerrorMessage(conn_)));
        break;
      }
      ++sent;
    }
    PgResult last;
    if (PQpipelineSync(conn_) != 1 && failure.ok()) {
      failure = UnavailableError("postgresql: sync: " + std::string(PQerrorMessage(conn_)));
    }
    // Each query yields its result and then a null; the sync yields PGRES_PIPELINE_SYNC.
    for (size_t i = 0; i < sent; ++i) {
      PgResult r(PQgetResult(conn_));
      while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
      ExecStatusType st = PQresultStatus(r.get());
      if (st == PGRES_PIPELINE_ABORTED) continue;
      Status s = Check(r, "s" + std::to_string(batch[i].stmt));
      if (!s.ok() && failure.ok()) {
        failure = s;
        sqlstate = last_sqlstate_;
      }
      if (i + 1 == sent) last = std::move(r);
    }
    for (;;) {
      PgResult r(PQgetResult(conn_));
      if (r.get() == nullptr) break;
      if (PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC) break;
    }
    PQexitPipelineMode(conn_);
    bool complete = sent == batch.size();
    batch.clear();
    if (!failure.ok()) return failure;
    if (!complete) return InternalError("postgresql: pipeline incomplete");
    return last;
  }

  const std::string& last_sqlstate() const { return last_sqlstate_; }

  // An ad-hoc statement (search statements differ with every query's shape)
  // with its bound values; binary results.
  Result<PgResult> Statement(const SqlStatement& st, std::string_view prefix = {}) {
    Params params;
    for (const PlanValue& v : st.params) {
      if (const auto* n = std::get_if<std::int64_t>(&v)) {
        params.Int(*n);
      } else if (const auto* d = std::get_if<double>(&v)) {
        params.Double(*d);
      } else {
        params.Text(std::get<std::string>(v));
      }
    }
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    params.Fill(values, lengths, formats);
    std::string text = std::string(prefix) + st.sql;
    PgResult r(
        PQexecParams(conn_, text.c_str(), params.size(), nullptr, values.data(), lengths.data(), formats.data(), 1));
    RETURN_IF_ERROR(Check(r, "search " + text.substr(0, 200)));
    return r;
  }

 private:
  Status Check(const PgResult& r, const std::string& what) {
    PGresult* p = r.get();
    ExecStatusType st = p ? PQresultStatus(p) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      last_sqlstate_.clear();
      return Status::Ok();
    }
    const char* state = p ? PQresultErrorField(p, PG_DIAG_SQLSTATE) : nullptr;
    last_sqlstate_ = state ? state : "";
    std::string msg = "postgresql: " + what + ": " + (p ? PQresultErrorMessage(p) : PQerrorMessage(conn_));
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (IsRetryable(last_sqlstate_)) return UnavailableError(std::move(msg));
    if (last_sqlstate_.starts_with("08") || broken()) return UnavailableError(std::move(msg));
    if (last_sqlstate_ == "53100") return ResourceExhaustedError(std::move(msg));  // disk full
    return InternalError(std::move(msg));
  }

  PGconn* conn_;
  std::string last_sqlstate_;
};

class PgStore;

class PgTransaction final : public Transaction {
 public:
  explicit PgTransaction(PgConn& conn) : conn_(conn) { pending_.push_back({kBegin, {}}); }

  const Status& poison() const { return poison_; }
  bool retryable() const { return retryable_; }

  Status Commit() {
    pending_.push_back({kCommit, {}});
    return Flush(nullptr);
  }

  // Ends a failed attempt; the connection is reusable afterwards (or marked
  // broken).
  void Rollback() {
    pending_.clear();
    if (begun_) (void)conn_.ExecSimple("ROLLBACK");
  }

  Result<ResourceVersion> Read(std::string_view type, std::string_view id, bool with_body) override {
    ASSIGN_OR_RETURN(auto current, ReadLocked(type, id, with_body));
    if (!current) return NotFoundError(std::string(type) + "/" + std::string(id) + " does not exist");
    return std::move(*current);
  }

  Result<std::vector<ResourceKey>> FindByToken(std::string_view type, std::string_view param,
                                               std::optional<std::string_view> system, std::string_view code,
                                               int limit) override {
    // The lock ignores the system so "any system" and "this system" searches
    // for one code serialise with each other.
    Params lock;
    lock.Int(StableHash(type, param, code, "token"));
    pending_.push_back({kAdvisoryLock, std::move(lock)});
    Params p;
    p.Text(type).Text(param);
    if (system) p.Text(*system);
    p.Text(code).Int(limit);
    pending_.push_back({system ? kFindToken : kFindTokenAnySystem, std::move(p)});
    PgResult r;
    RETURN_IF_ERROR(Flush(&r));
    std::vector<ResourceKey> keys;
    for (int i = 0; i < r.rows(); ++i) keys.push_back({r.Int(i, 0), r.Bytes(i, 1), r.Int(i, 2)});
    return keys;
  }

  // Takes a transaction-scoped advisory lock on (type, compartment,
  // predicate) first, then searches on this connection at READ COMMITTED:
  // each statement's fresh snapshot sees what a racing transaction with the
  // same search committed before releasing the lock.
  Result<SearchPage> Search(const SearchPlan& plan) override;

  Result<WriteResult> Put(const ResourceWrite& w) override {
    RETURN_IF_ERROR(CheckWrite(w));
    ASSIGN_OR_RETURN(auto current, ReadLocked(w.type, w.id, /*with_body=*/false));
    RETURN_IF_ERROR(CheckNextVersion(w.type, w.id, current.has_value(), current ? current->version : 0,
                                     current ? current->last_updated : 0, w.version, w.last_updated));
    WriteResult result{0, w.version, w.last_updated, current ? Method::kUpdate : Method::kCreate};
    if (!current) {
      Params p;
      p.Text(w.type).Text(w.id).Int(w.version).Int(w.last_updated).TextOrNull(w.compartment).Blob(w.body);
      pending_.push_back({kInsertResource, std::move(p)});
      PgResult r;
      RETURN_IF_ERROR(Flush(&r));
      result.rid = r.Int(0, 0);
    } else {
      result.rid = current->rid;
      Params p;
      p.Int(result.rid).Int(w.version).Int(w.last_updated).TextOrNull(w.compartment).Blob(w.body);
      pending_.push_back({kUpdateResource, std::move(p)});
    }
    Params h;
    h.Int(result.rid).Int(w.version).Text(w.type).Int(w.last_updated).Int(static_cast<int>(result.method));
    h.TextOrNull(w.compartment).Blob(w.body);
    pending_.push_back({kInsertHistory, std::move(h)});
    if (current && !current->deleted) QueueDeleteIndexRows(result.rid);
    if (w.index != nullptr) QueueIndexRows(result.rid, w.compartment, *w.index);
    return result;
  }

  Result<WriteResult> Delete(const ResourceDelete& d) override {
    RETURN_IF_ERROR(CheckDelete(d));
    ASSIGN_OR_RETURN(auto current, ReadLocked(d.type, d.id, /*with_body=*/false));
    if (!current || current->deleted) {
      return NotFoundError(std::string(d.type) + "/" + std::string(d.id) +
                           (current ? " is already deleted" : " does not exist"));
    }
    RETURN_IF_ERROR(
        CheckNextVersion(d.type, d.id, true, current->version, current->last_updated, d.version, d.last_updated));
    Params p;
    p.Int(current->rid).Int(d.version).Int(d.last_updated);
    pending_.push_back({kDeleteResource, std::move(p)});
    Params h;
    h.Int(current->rid).Int(d.version).Text(d.type).Int(d.last_updated).Int(static_cast<int>(Method::kDelete));
    h.TextOrNull(current->compartment).Null();
    pending_.push_back({kInsertHistory, std::move(h)});
    QueueDeleteIndexRows(current->rid);
    return WriteResult{current->rid, d.version, d.last_updated, Method::kDelete};
  }

  Status Reindex(std::string_view type, std::string_view id, std::int64_t version, const IndexRows& rows) override {
    ASSIGN_OR_RETURN(auto current, ReadLocked(type, id, /*with_body=*/false));
    if (!current || current->deleted || current->version != version) {
      return FailedPreconditionError(std::string(type) + "/" + std::string(id) + " is no longer at version " +
                                     std::to_string(version));
    }
    QueueDeleteIndexRows(current->rid);
    QueueIndexRows(current->rid, current->compartment, rows);
    return Status::Ok();
  }

 private:
  Result<std::optional<ResourceVersion>> ReadLocked(std::string_view type, std::string_view id, bool with_body) {
    Params p;
    p.Text(type).Text(id);
    pending_.push_back({with_body ? kReadCurrentForUpdate : kReadCurrentForUpdateMeta, std::move(p)});
    PgResult r;
    RETURN_IF_ERROR(Flush(&r));
    if (r.rows() == 0) return std::optional<ResourceVersion>();
    ResourceVersion v;
    v.rid = r.Int(0, 0);
    v.type = type;
    v.id = id;
    v.version = r.Int(0, 1);
    v.last_updated = r.Int(0, 2);
    v.deleted = r.Int(0, 3) != 0;
    v.compartment = r.Bytes(0, 4);
    if (with_body) v.body = r.Bytes(0, 5);
    return std::optional<ResourceVersion>(std::move(v));
  }

  void QueueDeleteIndexRows(Rid rid) {
    for (int t = 0; t < sql::kIndexTableCount; ++t) {
      Params p;
      p.Int(rid);
      pending_.push_back({kDeleteIndex0 + t, std::move(p)});
    }
  }

  void QueueIndexRows(Rid rid, std::string_view compartment, const IndexRows& rows) {
    for (const TokenRow& r : rows.tokens) {
      Params p;
      p.Int(rid).Text(r.param).Text(r.system).Text(r.code).TextOrNull(compartment);
      pending_.push_back({kInsertToken, std::move(p)});
    }
    for (const StringRow& r : rows.strings) {
      Params p;
      p.Int(rid).Text(r.param).Text(r.normalized).Text(r.exact).TextOrNull(compartment);
      pending_.push_back({kInsertString, std::move(p)});
    }
    for (const DateRow& r : rows.dates) {
      Params p;
      p.Int(rid).Text(r.param).Int(r.lo).Int(r.hi).TextOrNull(compartment);
      pending_.push_back({kInsertDate, std::move(p)});
    }
    for (const NumberRow& r : rows.numbers) {
      Params p;
      p.Int(rid).Text(r.param).Double(r.lo).Double(r.hi).TextOrNull(compartment);
      pending_.push_back({kInsertNumber, std::move(p)});
    }
    for (const QuantityRow& r : rows.quantities) {
      Params p;
      p.Int(rid).Text(r.param).Double(r.lo).Double(r.hi).Text(r.system).Text(r.code);
      p.OptDouble(r.canonical_lo).OptDouble(r.canonical_hi).Text(r.canonical_unit).TextOrNull(compartment);
      pending_.push_back({kInsertQuantity, std::move(p)});
    }
    for (const ReferenceRow& r : rows.references) {
      Params p;
      p.Int(rid).Text(r.param).Text(r.target_type).Text(r.target_id).Text(r.url).TextOrNull(compartment);
      pending_.push_back({kInsertReference, std::move(p)});
    }
    for (const UriRow& r : rows.uris) {
      Params p;
      p.Int(rid).Text(r.param).Text(r.uri).TextOrNull(compartment);
      pending_.push_back({kInsertUri, std::move(p)});
    }
  }

  // Sends everything queued; `out` receives the last statement's result.
  // Any failure poisons the transaction (the server has aborted it).
  Status Flush(PgResult* out) {
    if (!poison_.ok()) return poison_;
    begun_ = true;  // BEGIN is always the first statement sent
    std::string sqlstate;
    auto r = conn_.Pipeline(pending_, sqlstate);
    if (!r.ok()) {
      poison_ = r.status();
      retryable_ = IsRetryable(sqlstate);
      return poison_;
    }
    if (out != nullptr) *out = std::move(r).value();
    return Status::Ok();
  }

  PgConn& conn_;
  std::vector<Pending> pending_;
  Status poison_;
  bool retryable_ = false;
  bool begun_ = false;
};

class PgStore final : public Store {
  friend class PgTransaction;

 public:
  PgStore(std::string conninfo, const StoreOptions& options) : conninfo_(std::move(conninfo)), options_(options) {}

  ~PgStore() override {
    {
      std::lock_guard lock(async_mu_);
      async_stop_ = true;
    }
    async_cv_.notify_all();
    for (std::thread& t : async_threads_) t.join();
  }

  Status Init() {
    ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, PgConn::Connect(conninfo_));
    RETURN_IF_ERROR(Migrate(*conn));
    RETURN_IF_ERROR(conn->PrepareAll());
    ASSIGN_OR_RETURN(PgResult r, conn->QuerySimple("SELECT max(last_updated) FROM resource_history"));
    if (r.rows() == 1 && !r.IsNull(0, 0)) clock_.RaiseFloor(r.Int(0, 0));
    ++open_;
    idle_.push_back(std::move(conn));
    return Status::Ok();
  }

  std::string_view backend() const override { return "postgresql"; }
  Micros Now() override { return clock_.Now(); }

  Result<ResourceVersion> Read(std::string_view type, std::string_view id) override {
    ASSIGN_OR_RETURN(Lease lease, Acquire());
    Params p;
    p.Text(type).Text(id);
    ASSIGN_OR_RETURN(PgResult r, lease.conn->Query(kReadCurrent, p));
    if (r.rows() == 0) return NotFoundError(std::string(type) + "/" + std::string(id) + " does not exist");
    ResourceVersion v;
    v.rid = r.Int(0, 0);
    v.type = type;
    v.id = id;
    v.version = r.Int(0, 1);
    v.last_updated = r.Int(0, 2);
    v.deleted = r.Int(0, 3) != 0;
    v.compartment = r.Bytes(0, 4);
    v.body = r.Bytes(0, 5);
    return v;
  }

  Result<ResourceVersion> VRead(std::string_view type, std::string_view id, std::int64_t version) override {
    ASSIGN_OR_RETURN(Lease lease, Acquire());
    Params p;
    p.Text(type).Text(id).Int(version);
    ASSIGN_OR_RETURN(PgResult r, lease.conn->Query(kVRead, p));
    if (r.rows() == 0) {
      return NotFoundError(std::string(type) + "/" + std::string(id) + " has no version " + std::to_string(version));
    }
    ResourceVersion v;
    v.rid = r.Int(0, 0);
    v.type = type;
    v.id = id;
    v.version = r.Int(0, 1);
    v.last_updated = r.Int(0, 2);
    v.deleted = r.Int(0, 3) == static_cast<int>(Method::kDelete);
    v.compartment = r.Bytes(0, 4);
    v.body = r.Bytes(0, 5);
    return v;
  }

  Result<bool> Exists(std::string_view type, std::string_view id) override {
    ASSIGN_OR_RETURN(Lease lease, Acquire());
    Params p;
    p.Text(type).Text(id);
    ASSIGN_OR_RETURN(PgResult r, lease.conn->Query(kExists, p));
    return r.rows() == 1 && r.Int(0, 0) == 0;
  }

  Status Transact(const std::function<Status(Transaction&)>& fn) override {
    Status last;
    for (int attempt = 0; attempt <= options_.pg_max_retries; ++attempt) {
      ASSIGN_OR_RETURN(Lease lease, Acquire());
      PgTransaction txn(*lease.conn);
      Status s = fn(txn);
      if (s.ok() && !txn.poison().ok()) s = txn.poison();
      if (s.ok()) {
        s = txn.Commit();
        if (s.ok()) return s;
      }
      txn.Rollback();
      if (!txn.retryable()) return s;
      last = s;
    }
    return UnavailableError("postgresql: transaction kept conflicting: " + last.message());
  }

  // PostgreSQL commits concurrent transactions in parallel (and groups their
  // WAL flushes itself), so async writes only need threads to run them on:
  // one per pooled connection, started on first use.
  void TransactAsync(std::function<Status(Transaction&)> fn, std::function<void(Status)> done) override {
    {
      std::lock_guard lock(async_mu_);
      if (!async_stop_) {
        if (async_threads_.empty()) {
          for (int i = 0; i < options_.pg_pool_size; ++i) async_threads_.emplace_back([this] { AsyncLoop(); });
        }
        async_queue_.push_back({std::move(fn), std::move(done)});
        async_cv_.notify_one();
        return;
      }
    }
    done(UnavailableError("store is closing"));
  }

  Result<WriteResult> Put(const ResourceWrite& write) override {
    WriteResult out;
    RETURN_IF_ERROR(Transact([&](Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(out, txn.Put(write));
      return Status::Ok();
    }));
    return out;
  }

  Result<WriteResult> Delete(const ResourceDelete& del) override {
    WriteResult out;
    RETURN_IF_ERROR(Transact([&](Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(out, txn.Delete(del));
      return Status::Ok();
    }));
    return out;
  }

  Result<SearchPage> Search(const SearchPlan& plan) override {
    RETURN_IF_ERROR(sql::CheckSearchPlan(plan));
    ASSIGN_OR_RETURN(Lease lease, Acquire());
    PgConn& conn = *lease.conn;
    // Several statements (a count, a page in two parts) read one snapshot.
    bool both = plan.limit > 0 && (plan.count || sql::PrintPage(plan, sql::Dialect::kPostgres).size() > 1);
    // The page and the count from one snapshot.
    if (both) RETURN_IF_ERROR(conn.ExecSimple("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    auto page = SearchIn(conn, plan);
    if (both) (void)conn.ExecSimple(page.ok() ? "COMMIT" : "ROLLBACK");
    return page;
  }

  // Each chunk is one statement (at most query.chunk rows in memory, as a
  // libpq result); no transaction spans chunks.
  Status Scan(const ScanQuery& query, const std::function<Status(const ScanRow&)>& fn) override {
    RETURN_IF_ERROR(CheckScanQuery(query));
    ASSIGN_OR_RETURN(Lease lease, Acquire());
    std::string text = ScanSql(query, /*postgres=*/true);
    std::vector<std::string> compartments = {std::string()};
    if (query.scope == ScanScope::kTheseCompartments) compartments = query.compartments;
    for (const std::string& compartment : compartments) {
      std::string after;
      for (;;) {
        SqlStatement st{text,
                        {std::string(query.type), after, query.since.value_or(std::numeric_limits<Micros>::min()),
                         std::int64_t{query.chunk}}};
        if (query.scope == ScanScope::kTheseCompartments) st.params.emplace_back(compartment);
        ASSIGN_OR_RETURN(PgResult r, lease.conn->Statement(st));
        for (int i = 0; i < r.rows(); ++i) {
          ScanRow row;
          row.rid = r.Int(i, 0);
          row.id = std::string_view(PQgetvalue(r.get(), i, 1), PQgetlength(r.get(), i, 1));
          row.last_updated = r.Int(i, 2);
          if (!r.IsNull(i, 3))
            row.compartment = std::string_view(PQgetvalue(r.get(), i, 3), PQgetlength(r.get(), i, 3));
          row.body = std::string_view(PQgetvalue(r.get(), i, 4), PQgetlength(r.get(), i, 4));
          RETURN_IF_ERROR(fn(row));
        }
        if (r.rows() < query.chunk) break;
        int last = r.rows() - 1;
        after.assign(PQgetvalue(r.get(), last, 1), PQgetlength(r.get(), last, 1));
      }
    }
    return Status::Ok();
  }

  Result<std::vector<SearchHit>> Include(const IncludeQuery& query) override {
    if (query.limit < 0) return InvalidArgumentError("include limit must not be negative");
    std::vector<SearchHit> hits;
    if (query.rids.empty() || query.specs.empty()) return hits;
    ASSIGN_OR_RETURN(Lease lease, Acquire());
    ASSIGN_OR_RETURN(PgResult r, lease.conn->Statement(sql::PrintInclude(query, sql::Dialect::kPostgres)));
    if (r.rows() > query.limit) {
      return ResourceExhaustedError("more than " + std::to_string(query.limit) + " included resources");
    }
    for (int i = 0; i < r.rows(); ++i) hits.push_back(HitAt(r, i));
    return hits;
  }

  Result<std::string> ExplainSearch(const SearchPlan& plan) override {
    RETURN_IF_ERROR(sql::CheckSearchPlan(plan));
    ASSIGN_OR_RETURN(Lease lease, Acquire());
    std::string out;
    for (const SqlStatement& st : sql::PrintAll(plan, sql::Dialect::kPostgres)) {
      ASSIGN_OR_RETURN(std::string e, Explain(*lease.conn, st));
      out += e;
    }
    return out;
  }

  Status Analyze() override {
    ASSIGN_OR_RETURN(Lease lease, Acquire());
    return lease.conn->ExecSimple("ANALYZE");
  }

  Result<std::string> ExplainInclude(const IncludeQuery& query) override {
    ASSIGN_OR_RETURN(Lease lease, Acquire());
    return Explain(*lease.conn, sql::PrintInclude(query, sql::Dialect::kPostgres));
  }

  Result<HistoryPage> History(const HistoryQuery& query) override {
    RETURN_IF_ERROR(CheckHistoryQuery(query));
    ASSIGN_OR_RETURN(Lease lease, Acquire());
    PgConn& conn = *lease.conn;
    int level = query.type.empty() ? 0 : query.id.empty() ? 1 : 2;
    Rid rid = 0;
    if (level == 2) {
      Params p;
      p.Text(query.type).Text(query.id);
      ASSIGN_OR_RETURN(PgResult r, conn.Query(kRidOf, p));
      if (r.rows() == 0)
        return NotFoundError(std::string(query.type) + "/" + std::string(query.id) + " does not exist");
      rid = r.Int(0, 0);
    }
    constexpr Micros kMax = std::numeric_limits<Micros>::max();
    constexpr Micros kMin = std::numeric_limits<Micros>::min();
    HistoryCursor after = query.after.value_or(HistoryCursor{kMax, kMax, kMax});
    Params p;
    p.Int(after.last_updated).Int(after.rid).Int(after.version);
    p.Int(query.since.value_or(kMin)).Int(query.at_hi.value_or(kMax));
    // One more row than asked for tells whether a next page exists.
    p.Int(query.count + 1).Bool(query.with_bodies);
    if (level == 1) p.Text(query.type);
    if (level == 2) p.Int(rid);
    if (query.at_lo) p.Int(*query.at_lo);
    ASSIGN_OR_RETURN(PgResult r, conn.Query(kHistory0 + level * 2 + (query.at_lo ? 1 : 0), p));
    HistoryPage page;
    for (int i = 0; i < r.rows(); ++i) {
      if (static_cast<int>(page.entries.size()) == query.count) {
        const HistoryEntry& last = page.entries.back();
        page.next = HistoryCursor{last.last_updated, last.rid, last.version};
        break;
      }
      HistoryEntry e;
      e.rid = r.Int(i, 0);
      e.type = r.Bytes(i, 1);
      e.id = r.Bytes(i, 2);
      e.version = r.Int(i, 3);
      e.last_updated = r.Int(i, 4);
      e.method = static_cast<Method>(r.Int(i, 5));
      if (!r.IsNull(i, 6)) e.body = r.Bytes(i, 6);
      if (!r.IsNull(i, 7)) e.compartment = r.Bytes(i, 7);
      page.entries.push_back(std::move(e));
    }
    return page;
  }

 private:
  static SearchHit HitAt(const PgResult& r, int i) {
    SearchHit h;
    h.rid = r.Int(i, 0);
    h.type = r.Bytes(i, 1);
    h.id = r.Bytes(i, 2);
    h.version = r.Int(i, 3);
    h.last_updated = r.Int(i, 4);
    if (!r.IsNull(i, 5)) h.body = r.Bytes(i, 5);
    if (!r.IsNull(i, 6)) h.compartment = r.Bytes(i, 6);
    return h;
  }

  static Result<SearchPage> SearchIn(PgConn& conn, const SearchPlan& plan) {
    auto run = [&conn](const SqlStatement& st, const std::vector<int>& kinds) -> Result<std::vector<sql::PageRow>> {
      ASSIGN_OR_RETURN(PgResult r, conn.Statement(st));
      std::vector<sql::PageRow> rows;
      for (int i = 0; i < r.rows(); ++i) {
        sql::PageRow row{HitAt(r, i), {}};
        for (size_t k = 0; k < kinds.size(); ++k) {
          int col = 7 + static_cast<int>(k);
          switch (kinds[k]) {
            case 0: row.keys.emplace_back(r.Int(i, col)); break;
            case 1: row.keys.emplace_back(r.Double(i, col)); break;
            default: row.keys.emplace_back(r.Bytes(i, col)); break;
          }
        }
        rows.push_back(std::move(row));
      }
      return rows;
    };
    ASSIGN_OR_RETURN(SearchPage page, sql::RunPage(plan, sql::Dialect::kPostgres, run));
    if (plan.count) {
      ASSIGN_OR_RETURN(PgResult r, conn.Statement(sql::PrintCount(plan, sql::Dialect::kPostgres)));
      page.total = r.Int(0, 0);
    }
    return page;
  }

  // Planned with sequential scans disabled, so that the plan shows whether an
  // index path exists whatever the (test) table sizes.
  static Result<std::string> Explain(PgConn& conn, const SqlStatement& st) {
    std::string out = "-- " + st.sql + "\n";
    RETURN_IF_ERROR(conn.ExecSimple("SET enable_seqscan = off"));
    auto r = conn.Statement(st, "EXPLAIN ");
    RETURN_IF_ERROR(conn.ExecSimple("RESET enable_seqscan"));
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) out += r->Bytes(i, 0) + "\n";
    return out;
  }

  struct Lease {
    PgStore* store = nullptr;
    std::unique_ptr<PgConn> conn;
    Lease(PgStore* s, std::unique_ptr<PgConn> c) : store(s), conn(std::move(c)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (conn) store->Release(std::move(conn));
    }
  };

  Result<Lease> Acquire() {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return !idle_.empty() || open_ < options_.pg_pool_size; });
      if (!idle_.empty()) {
        std::unique_ptr<PgConn> c = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(c));
      }
      ++open_;  // reserve the slot while connecting without the lock
    }
    auto conn = PgConn::Connect(conninfo_);
    Status s = conn.ok() ? (*conn)->PrepareAll() : conn.status();
    if (!s.ok()) {
      {
        std::lock_guard lock(mu_);
        --open_;
      }
      cv_.notify_one();
      return s;
    }
    return Lease(this, std::move(conn).value());
  }

  void Release(std::unique_ptr<PgConn> conn) {
    {
      std::lock_guard lock(mu_);
      if (conn->broken() || PQtransactionStatus(conn->get()) != PQTRANS_IDLE) {
        --open_;  // dropped; a fresh one is opened on demand
      } else {
        idle_.push_back(std::move(conn));
      }
    }
    cv_.notify_one();
  }

  // The advisory lock serialises schema creation between processes opening
  // one database at once.
  void AsyncLoop() {
    for (;;) {
      AsyncTask task;
      {
        std::unique_lock lock(async_mu_);
        async_cv_.wait(lock, [this] { return async_stop_ || !async_queue_.empty(); });
        if (async_queue_.empty()) return;
        task = std::move(async_queue_.front());
        async_queue_.pop_front();
      }
      task.done(Transact(task.fn));
    }
  }

  Status Migrate(PgConn& conn) {
    RETURN_IF_ERROR(conn.ExecSimple("SELECT pg_advisory_lock(4242424242)"));
    Status s = MigrateLocked(conn);
    Status unlock = conn.ExecSimple("SELECT pg_advisory_unlock(4242424242)");
    return s.ok() ? unlock : s;
  }

  Status MigrateLocked(PgConn& conn) {
    RETURN_IF_ERROR(conn.ExecSimple("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
    ASSIGN_OR_RETURN(PgResult r, conn.QuerySimple("SELECT COALESCE(max(version), 0)::bigint FROM schema_version"));
    std::int64_t version = r.Int(0, 0);
    if (version > kSchemaVersion) {
      return FailedPreconditionError("database schema version " + std::to_string(version) +
                                     " is newer than this build's " + std::to_string(kSchemaVersion));
    }
    if (version < 1) {
      RETURN_IF_ERROR(conn.ExecSimple("BEGIN"));
      Status s = conn.ExecSimple(kSchemaV1);
      if (s.ok()) s = conn.ExecSimple("INSERT INTO schema_version (version) VALUES (1)");
      if (s.ok()) s = conn.ExecSimple("COMMIT");
      if (!s.ok()) {
        (void)conn.ExecSimple("ROLLBACK");
        return s;
      }
    }
    if (version < 2) {
      RETURN_IF_ERROR(conn.ExecSimple("BEGIN"));
      Status s = conn.ExecSimple(kSchemaV2);
      if (s.ok()) s = conn.ExecSimple("INSERT INTO schema_version (version) VALUES (2)");
      if (s.ok()) s = conn.ExecSimple("COMMIT");
      if (!s.ok()) {
        (void)conn.ExecSimple("ROLLBACK");
        return s;
      }
    }
    return Status::Ok();
  }

  const std::string conninfo_;
  const StoreOptions options_;
  MonotonicClock clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConn>> idle_;
  int open_ = 0;

  struct AsyncTask {
    std::function<Status(Transaction&)> fn;
    std::function<void(Status)> done;
  };
  std::mutex async_mu_;
  std::condition_variable async_cv_;
  std::deque<AsyncTask> async_queue_;
  std::vector<std::thread> async_threads_;
  bool async_stop_ = false;
};

Result<SearchPage> PgTransaction::Search(const SearchPlan& plan) {
  RETURN_IF_ERROR(sql::CheckSearchPlan(plan));
  Params lock;
  lock.Int(StableHash(plan.type, plan.compartment.value_or(""), plan.where.DebugString(), "search"));
  pending_.push_back({kAdvisoryLock, std::move(lock)});
  RETURN_IF_ERROR(Flush(nullptr));
  auto page = PgStore::SearchIn(conn_, plan);
  if (!page.ok()) {
    // The server aborted the transaction.
    poison_ = page.status();
    retryable_ = IsRetryable(conn_.last_sqlstate());
  }
  return page;
}

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgresStore(std::string conninfo, const StoreOptions& options) {
  if (options.pg_pool_size < 1) return InvalidArgumentError("pg_pool_size must be at least 1");
  auto store = std::make_unique<PgStore>(std::move(conninfo), options);
  RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace bevan::store::internal
