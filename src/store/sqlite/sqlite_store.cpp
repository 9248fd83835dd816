// The SQLite backend.
//
// Connections: one writer connection owned by one writer thread, and a pool of
// reader connections (a thread takes one for the length of a call, so there is
// one per concurrently reading thread). WAL mode lets readers run while the
// writer writes; each read statement sees the last committed state.
//
// Group commit: Transact() queues its callback and blocks. The writer thread
// takes everything queued (up to StoreOptions::sqlite_max_group), opens one
// SQLite transaction, runs each callback inside its own SAVEPOINT (a failed
// callback rolls back to its savepoint only), commits once (one WAL fsync for
// the whole group) and only then wakes the callers. While a group commits, the
// next one queues up, so the group size adapts to the load with no timer.
//
// Durability (StoreOptions::sqlite_synchronous_full, the default): a write is
// acknowledged only after the WAL holding it is fsynced, so it survives kill -9
// and power loss. The fsync is not done inside COMMIT (SQLite's
// synchronous=FULL would block the writer thread for the whole fsync, several
// milliseconds on this class of disk, once per group): the writer connection
// runs with synchronous=NORMAL (WAL frames reach the OS page cache at COMMIT;
// SQLite still syncs the WAL before each checkpoint) and hands each committed
// group to a syncer thread, which fdatasyncs the WAL file (its own descriptor:
// fsync is per file) and only then calls the group's `done` callbacks. The
// writer goes on with the next group meanwhile, and one fsync covers every
// group committed before it started. A consequence: a reader may see a write
// a few milliseconds before it is acknowledged (never one that is rolled back;
// such a write is lost only if the machine loses power in that window).
// Without sqlite_synchronous_full (NORMAL): acknowledged at COMMIT, survives
// kill -9 but not power loss. During a bulk load (BeginBulkLoad) writes are
// acknowledged at COMMIT and EndBulkLoad syncs everything.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "store/internal.h"
#include "store/search_sql.h"
#include "store/sql.h"

namespace bevan::store::internal {
namespace {

using sql::IndexTable;

// Before SQLite initialises (static initialisation, before main): no
// global memory statistics. With them on (Debian's default), every SQLite
// allocation in every thread takes one process-wide mutex; the writer and
// the readers then contend on it.
[[maybe_unused]] const int kSqliteConfigured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);

// Prepared statements, by id; the text of each is in kSql.
enum Stmt : int {
  kBegin,
  kCommit,
  kRollback,
  kSavepoint,
  kRelease,
  kRollbackTo,
  kReadCurrent,
  kReadCurrentMeta,
  kVRead,
  kExists,
  kRidOf,
  kInsertResource,
  kUpdateResource,
  kDeleteResource,
  kInsertHistory,
  kKeepSupersededBody,
  kAnyResource,
  kFindToken,
  kFindTokenAnySystem,
  kDeleteIndex0,                                      // + IndexTable
  kHistory0 = kDeleteIndex0 + sql::kIndexTableCount,  // + level * 2 + with_at
  kStmtCount = kHistory0 + 6,
};

const char* const kFixedSql[] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT txn",
    "RELEASE txn",
    "ROLLBACK TO txn",
    "SELECT rid, version, last_updated, deleted, compartment, body FROM resource WHERE type = ?1 AND id = ?2",
    "SELECT rid, version, last_updated, deleted, compartment FROM resource WHERE type = ?1 AND id = ?2",
    "SELECT h.rid, h.version, h.last_updated, h.method, h.compartment, "
    "CASE WHEN h.version = r.version THEN r.body ELSE h.body END FROM resource r "
    "JOIN resource_history h ON h.rid = r.rid WHERE r.type = ?1 AND r.id = ?2 AND h.version = ?3",
    "SELECT deleted FROM resource WHERE type = ?1 AND id = ?2",
    "SELECT rid FROM resource WHERE type = ?1 AND id = ?2",
    "INSERT INTO resource (type, id, version, last_updated, deleted, compartment, body) "
    "VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)",
    "UPDATE resource SET version = ?2, last_updated = ?3, deleted = 0, compartment = ?4, body = ?5 WHERE rid = ?1",
    "UPDATE resource SET version = ?2, last_updated = ?3, deleted = 1, body = NULL WHERE rid = ?1",
    "INSERT INTO resource_history (rid, version, type, last_updated, method, compartment, body) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    "UPDATE resource_history SET body = (SELECT body FROM resource WHERE rid = ?1) "
    "WHERE rid = ?1 AND version = ?2 AND body IS NULL",
    "SELECT 1 FROM resource LIMIT 1",
    "SELECT r.rid, r.id, r.version FROM idx_token t JOIN resource r ON r.rid = t.rid "
    "WHERE t.param = ?2 AND t.code = ?4 AND t.system = ?3 AND r.type = ?1 AND r.deleted = 0 "
    "GROUP BY r.rid ORDER BY r.id LIMIT ?5",
    "SELECT r.rid, r.id, r.version FROM idx_token t JOIN resource r ON r.rid = t.rid "
    "WHERE t.param = ?2 AND t.code = ?4 AND r.type = ?1 AND r.deleted = 0 "
    "GROUP BY r.rid ORDER BY r.id LIMIT ?5",
};
static_assert(sizeof(kFixedSql) / sizeof(kFixedSql[0]) == kDeleteIndex0);

std::string StmtSql(int id) {
  if (id < kDeleteIndex0) return kFixedSql[id];
  if (id < kHistory0) return std::string(sql::DeleteIndexRows(static_cast<IndexTable>(id - kDeleteIndex0)));
  int h = id - kHistory0;
  return sql::History(h / 2, h % 2 == 1);
}

// Index rows are inserted up to this many per statement.
constexpr size_t kMaxRowsPerInsert = 16;

// "INSERT OR IGNORE INTO idx_<table> (rid, ...) VALUES (?, ...), ..." with
// `rows` rows, the parameters numbered in order.
std::string InsertSql(IndexTable table, int rows) {
  struct Shape {
    const char* head;
    int columns;
  };
  static constexpr Shape kShapes[] = {
      {"idx_token (rid, param, system, code)", 4},
      {"idx_string (rid, param, normalized, exact)", 4},
      {"idx_date (rid, param, lo, hi)", 4},
      {"idx_number (rid, param, lo, hi)", 4},
      {"idx_quantity (rid, param, lo, hi, system, code, canonical_lo, canonical_hi, canonical_unit)", 9},
      {"idx_reference (rid, param, target_type, target_id, url)", 5},
      {"idx_uri (rid, param, uri)", 3},
  };
  const Shape& shape = kShapes[static_cast<int>(table)];
  std::string s = std::string("INSERT OR IGNORE INTO ") + shape.head + " VALUES ";
  for (int r = 0; r < rows; ++r) {
    s += r ? ",(" : "(";
    for (int c = 0; c < shape.columns; ++c) s += c ? ",?" : "?";
    s += ")";
  }
  return s;
}

// Schema version 1. resource_history.body is NULL for a resource's current
// version, whose body is in `resource` (each body is written once; it moves to
// its history row when superseded; rows of older stores that hold it in both
// places read the same). Index tables are clustered by rid (WITHOUT ROWID), so
// replacing a resource's rows is one range delete, with a secondary index in
// search order.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE resource (
  rid INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  compartment TEXT,
  body BLOB,
  UNIQUE (type, id));
CREATE TABLE resource_history (
  rid INTEGER NOT NULL,
  version INTEGER NOT NULL,
  type TEXT NOT NULL,
  last_updated INTEGER NOT NULL,
  method INTEGER NOT NULL,
  compartment TEXT,
  body BLOB,
  PRIMARY KEY (rid, version));
CREATE TABLE idx_token (
  rid INTEGER NOT NULL, param TEXT NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL,
  PRIMARY KEY (rid, param, system, code)) WITHOUT ROWID;
CREATE TABLE idx_string (
  rid INTEGER NOT NULL, param TEXT NOT NULL, normalized TEXT NOT NULL, exact TEXT NOT NULL,
  PRIMARY KEY (rid, param, exact)) WITHOUT ROWID;
CREATE TABLE idx_date (
  rid INTEGER NOT NULL, param TEXT NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
  PRIMARY KEY (rid, param, lo, hi)) WITHOUT ROWID;
CREATE TABLE idx_number (
  rid INTEGER NOT NULL, param TEXT NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL,
  PRIMARY KEY (rid, param, lo, hi)) WITHOUT ROWID;
CREATE TABLE idx_quantity (
  rid INTEGER NOT NULL, param TEXT NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL, system TEXT NOT NULL,
  code TEXT NOT NULL, canonical_lo REAL, canonical_hi REAL, canonical_unit TEXT NOT NULL,
  PRIMARY KEY (rid, param, system, code, lo, hi)) WITHOUT ROWID;
CREATE TABLE idx_reference (
  rid INTEGER NOT NULL, param TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
  url TEXT NOT NULL,
  PRIMARY KEY (rid, param, target_type, target_id, url)) WITHOUT ROWID;
CREATE TABLE idx_uri (
  rid INTEGER NOT NULL, param TEXT NOT NULL, uri TEXT NOT NULL,
  PRIMARY KEY (rid, param, uri)) WITHOUT ROWID;
)sql";

// The secondary indexes (all but the primary keys and UNIQUE (type, id)):
// created when missing at every open, and dropped and rebuilt in one sorted
// pass around a bulk load (BeginBulkLoad). Version 2 of the schema added
// those from idx_date_hi on (date ranges from above, references to a target
// from any parameter for _revinclude=*, compartment searches by type), and
// idx_string (param, exact), which version 3 dropped.
struct IndexDef {
  const char* name;
  const char* on;
  // Kept through a bulk load: its keys arrive in nearly ascending order
  // (the load's times, a few distinct values), so keeping it costs the load
  // little and saves a scan and a sort at the end.
  bool kept_in_bulk = false;
};
constexpr IndexDef kSecondaryIndexes[] = {
    {"resource_history_time", "resource_history (last_updated, rid, version)", true},
    {"resource_history_type_time", "resource_history (type, last_updated, rid, version)", true},
    {"idx_token_value", "idx_token (param, code, system)"},
    {"idx_string_value", "idx_string (param, normalized)"},
    {"idx_date_value", "idx_date (param, lo, hi)"},
    {"idx_number_value", "idx_number (param, lo, hi)"},
    {"idx_quantity_canonical", "idx_quantity (param, canonical_unit, canonical_lo)"},
    {"idx_reference_absolute", "idx_reference (param, url) WHERE url <> ''"},
    {"idx_uri_value", "idx_uri (param, uri)", true},
    {"idx_date_hi", "idx_date (param, hi)"},
    {"idx_number_hi", "idx_number (param, hi)"},
    {"idx_quantity_range", "idx_quantity (param, lo)"},
    {"idx_reference_by_target", "idx_reference (target_id, target_type, param)"},
    {"resource_compartment_type", "resource (compartment, type) WHERE compartment IS NOT NULL"},
};

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string msg = "sqlite: " + std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return UnavailableError(std::move(msg));
    case SQLITE_FULL: return ResourceExhaustedError(std::move(msg));
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY: return IoError(std::move(msg));
    default: return InternalError(std::move(msg));
  }
}

// One SQLite connection and its lazily prepared statements. Used by one
// thread at a time.
class Conn {
 public:
  Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() {
    for (sqlite3_stmt* s : stmts_) sqlite3_finalize(s);
    for (auto& table : inserts_) {
      for (sqlite3_stmt* s : table) sqlite3_finalize(s);
    }
    for (auto& [text, s] : search_stmts_) sqlite3_finalize(s);
    sqlite3_close_v2(db_);
  }

  static Result<std::unique_ptr<Conn>> Open(const std::string& path, bool writer) {
    auto conn = std::make_unique<Conn>();
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path.c_str(), &conn->db_, flags, nullptr);
    if (rc != SQLITE_OK) return SqliteError(conn->db_, rc, "open " + path);
    sqlite3_extended_result_codes(conn->db_, 1);
    // The writer never waits for locks (it is the only writer); readers may
    // briefly wait while a checkpoint or WAL recovery runs.
    sqlite3_busy_timeout(conn->db_, 10000);
    if (writer) {
      // Pages stay at SQLite's 4 KiB: 16 KiB pages made bulk imports about
      // 10% faster but single creates 35% more expensive (every commit
      // writes each page it dirtied, and random index inserts dirty many).
      RETURN_IF_ERROR(conn->Exec("PRAGMA journal_mode = WAL"));
      // NORMAL in both modes: with sqlite_synchronous_full the syncer thread
      // fsyncs the WAL before any write is acknowledged (see the top).
      RETURN_IF_ERROR(conn->Exec("PRAGMA synchronous = NORMAL"));
      RETURN_IF_ERROR(conn->Exec("PRAGMA cache_size = -65536"));
      // Fewer, larger checkpoints: each one fsyncs the database file.
      RETURN_IF_ERROR(conn->Exec("PRAGMA wal_autocheckpoint = 4000"));
    } else {
      RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = 1"));
      RETURN_IF_ERROR(conn->Exec("PRAGMA cache_size = -16384"));
      // Readers map up to SQLite's default ceiling (about 2 GB): beyond the map
      // every page read is a pread system call.
      RETURN_IF_ERROR(conn->Exec("PRAGMA mmap_size = 2147418112"));
    }
    RETURN_IF_ERROR(conn->Exec("PRAGMA temp_store = MEMORY"));
    return conn;
  }

  sqlite3* db() const { return db_; }

  Status Exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = std::string(sql).substr(0, 60) + ": " + (err ? err : sqlite3_errstr(rc));
      sqlite3_free(err);
      return SqliteError(nullptr, rc, msg);
    }
    return Status::Ok();
  }

  Result<sqlite3_stmt*> Get(int id) {
    if (stmts_[id] == nullptr) {
      std::string text = StmtSql(id);
      int rc = sqlite3_prepare_v3(db_, text.c_str(), static_cast<int>(text.size()) + 1, SQLITE_PREPARE_PERSISTENT,
                                  &stmts_[id], nullptr);
      if (rc != SQLITE_OK) return SqliteError(db_, rc, "prepare " + text.substr(0, 60));
    }
    return stmts_[id];
  }

  // The INSERT of `rows` rows into an index table (1..kMaxRowsPerInsert).
  Result<sqlite3_stmt*> GetInsert(IndexTable table, int rows) {
    sqlite3_stmt*& stmt = inserts_[static_cast<size_t>(table)][static_cast<size_t>(rows - 1)];
    if (stmt == nullptr) {
      std::string text = InsertSql(table, rows);
      int rc = sqlite3_prepare_v3(db_, text.c_str(), static_cast<int>(text.size()) + 1, SQLITE_PREPARE_PERSISTENT,
                                  &stmt, nullptr);
      if (rc != SQLITE_OK) return SqliteError(db_, rc, "prepare " + text.substr(0, 60));
    }
    return stmt;
  }

  // A search statement by its text, prepared once per connection: query
  // shapes repeat (values are bound), so this saves the parse and plan of
  // every repeated search. Bounded: the cache is emptied when full.
  Result<sqlite3_stmt*> SearchStatement(const std::string& text) {
    auto it = search_stmts_.find(text);
    if (it != search_stmts_.end()) return it->second;
    if (search_stmts_.size() >= kMaxSearchStatements) {
      for (auto& [t, s] : search_stmts_) sqlite3_finalize(s);
      search_stmts_.clear();
    }
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, text.c_str(), static_cast<int>(text.size()) + 1, SQLITE_PREPARE_PERSISTENT, &stmt,
                                nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, "prepare search " + text.substr(0, 200));
    search_stmts_.emplace(text, stmt);
    return stmt;
  }

 private:
  static constexpr size_t kMaxSearchStatements = 256;

  sqlite3* db_ = nullptr;
  std::array<sqlite3_stmt*, kStmtCount> stmts_{};
  std::array<std::array<sqlite3_stmt*, kMaxRowsPerInsert>, sql::kIndexTableCount> inserts_{};
  std::unordered_map<std::string, sqlite3_stmt*> search_stmts_;
};

// One execution of a prepared statement: binds, steps, reads columns, and
// resets the statement when it goes out of scope (a statement left un-reset
// would hold its read snapshot open). Bound text and blobs are not copied: they
// must outlive the Query.
class Query {
 public:
  Query(Conn& conn, sqlite3_stmt* stmt) : conn_(conn), stmt_(stmt) {}
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  Query& Int(int i, std::int64_t v) { return Check(sqlite3_bind_int64(stmt_, i, v)); }
  Query& Double(int i, double v) { return Check(sqlite3_bind_double(stmt_, i, v)); }
  Query& Text(int i, std::string_view v) {
    return Check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  }
  Query& TextOrNull(int i, std::string_view v) { return v.empty() ? Check(sqlite3_bind_null(stmt_, i)) : Text(i, v); }
  Query& Blob(int i, std::string_view v) {
    return Check(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  }
  Query& OptDouble(int i, const std::optional<double>& v) {
    return v ? Double(i, *v) : Check(sqlite3_bind_null(stmt_, i));
  }

  // true: a row is available; false: done.
  Result<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return SqliteError(conn_.db(), bind_rc_, "bind");
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(conn_.db(), rc, "step");
  }
  Status Run() {
    ASSIGN_OR_RETURN(bool row, Step());
    (void)row;
    return Status::Ok();
  }

  std::int64_t ColInt(int c) const { return sqlite3_column_int64(stmt_, c); }
  std::string ColText(int c) const {
    const void* p = sqlite3_column_blob(stmt_, c);
    int n = sqlite3_column_bytes(stmt_, c);
    return p ? std::string(static_cast<const char*>(p), n) : std::string();
  }

 private:
  Query& Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    return *this;
  }

  Conn& conn_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

#define BEVAN_QUERY(var, conn, id)                            \
  ASSIGN_OR_RETURN(sqlite3_stmt* var##_stmt, (conn).Get(id)); \
  Query var((conn), var##_stmt)

Status ExecStmt(Conn& conn, int id) {
  BEVAN_QUERY(q, conn, id);
  return q.Run();
}

// The current row of (type, id); nullopt when there is none.
Result<std::optional<ResourceVersion>> ReadCurrent(Conn& conn, std::string_view type, std::string_view id,
                                                   bool with_body) {
  BEVAN_QUERY(q, conn, with_body ? kReadCurrent : kReadCurrentMeta);
  q.Text(1, type).Text(2, id);
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<ResourceVersion>();
  ResourceVersion v;
  v.rid = q.ColInt(0);
  v.type = type;
  v.id = id;
  v.version = q.ColInt(1);
  v.last_updated = q.ColInt(2);
  v.deleted = q.ColInt(3) != 0;
  v.compartment = q.ColText(4);
  if (with_body) v.body = q.ColText(5);
  return std::optional<ResourceVersion>(std::move(v));
}

Status DeleteIndexRows(Conn& conn, Rid rid) {
  for (int t = 0; t < sql::kIndexTableCount; ++t) {
    BEVAN_QUERY(q, conn, kDeleteIndex0 + t);
    RETURN_IF_ERROR(q.Int(1, rid).Run());
  }
  return Status::Ok();
}

// Inserts one table's rows of a resource, up to kMaxRowsPerInsert per
// statement: a statement's fixed cost (step, reset, bindings) is paid once
// per chunk rather than once per row. `bind` binds a row's columns after rid
// from position `at` on and returns the next position.
template <typename Row, typename Bind>
Status InsertRows(Conn& conn, IndexTable table, Rid rid, const std::vector<Row>& rows, Bind bind) {
  for (size_t at = 0; at < rows.size(); at += kMaxRowsPerInsert) {
    int n = static_cast<int>(std::min(kMaxRowsPerInsert, rows.size() - at));
    ASSIGN_OR_RETURN(sqlite3_stmt * stmt, conn.GetInsert(table, n));
    Query q(conn, stmt);
    int p = 1;
    for (int i = 0; i < n; ++i) {
      q.Int(p, rid);
      p = bind(q, p + 1, rows[at + static_cast<size_t>(i)]);
    }
    RETURN_IF_ERROR(q.Run());
  }
  return Status::Ok();
}

Status InsertIndexRows(Conn& conn, Rid rid, const IndexRows& rows) {
  RETURN_IF_ERROR(InsertRows(conn, IndexTable::kToken, rid, rows.tokens, [](Query& q, int p, const TokenRow& r) {
    q.Text(p, r.param).Text(p + 1, r.system).Text(p + 2, r.code);
    return p + 3;
  }));
  RETURN_IF_ERROR(InsertRows(conn, IndexTable::kString, rid, rows.strings, [](Query& q, int p, const StringRow& r) {
    q.Text(p, r.param).Text(p + 1, r.normalized).Text(p + 2, r.exact);
    return p + 3;
  }));
  RETURN_IF_ERROR(InsertRows(conn, IndexTable::kDate, rid, rows.dates, [](Query& q, int p, const DateRow& r) {
    q.Text(p, r.param).Int(p + 1, r.lo).Int(p + 2, r.hi);
    return p + 3;
  }));
  RETURN_IF_ERROR(InsertRows(conn, IndexTable::kNumber, rid, rows.numbers, [](Query& q, int p, const NumberRow& r) {
    q.Text(p, r.param).Double(p + 1, r.lo).Double(p + 2, r.hi);
    return p + 3;
  }));
  RETURN_IF_ERROR(
      InsertRows(conn, IndexTable::kQuantity, rid, rows.quantities, [](Query& q, int p, const QuantityRow& r) {
        q.Text(p, r.param).Double(p + 1, r.lo).Double(p + 2, r.hi).Text(p + 3, r.system).Text(p + 4, r.code);
        q.OptDouble(p + 5, r.canonical_lo).OptDouble(p + 6, r.canonical_hi).Text(p + 7, r.canonical_unit);
        return p + 8;
      }));
  RETURN_IF_ERROR(
      InsertRows(conn, IndexTable::kReference, rid, rows.references, [](Query& q, int p, const ReferenceRow& r) {
        q.Text(p, r.param).Text(p + 1, r.target_type).Text(p + 2, r.target_id).Text(p + 3, r.url);
        return p + 4;
      }));
  return InsertRows(conn, IndexTable::kUri, rid, rows.uris, [](Query& q, int p, const UriRow& r) {
    q.Text(p, r.param).Text(p + 1, r.uri);
    return p + 2;
  });
}

// The Transaction of one callback, on the writer connection inside the
// group's SQLite transaction.
class SqliteTransaction final : public Transaction {
 public:
  explicit SqliteTransaction(Conn& conn) : conn_(conn) {}

  const Status& poison() const { return poison_; }

  Result<ResourceVersion> Read(std::string_view type, std::string_view id, bool with_body) override {
    ASSIGN_OR_RETURN(auto current, Current(type, id, with_body));
    if (!current) return NotFoundError(std::string(type) + "/" + std::string(id) + " does not exist");
    return std::move(*current);
  }

  Result<std::vector<ResourceKey>> FindByToken(std::string_view type, std::string_view param,
                                               std::optional<std::string_view> system, std::string_view code,
                                               int limit) override {
    BEVAN_QUERY(q, conn_, system ? kFindToken : kFindTokenAnySystem);
    q.Text(1, type).Text(2, param).Text(4, code).Int(5, limit);
    if (system) q.Text(3, *system);
    std::vector<ResourceKey> keys;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      keys.push_back({q.ColInt(0), q.ColText(1), q.ColInt(2)});
    }
    return keys;
  }

  // On the writer connection: sees this transaction's writes; the single
  // writer serialises it with every other transaction.
  Result<SearchPage> Search(const SearchPlan& plan) override;

  Result<WriteResult> Put(const ResourceWrite& w) override {
    RETURN_IF_ERROR(CheckWrite(w));
    ASSIGN_OR_RETURN(auto current, Current(w.type, w.id, /*with_body=*/false));
    known_.reset();
    RETURN_IF_ERROR(CheckNextVersion(w.type, w.id, current.has_value(), current ? current->version : 0,
                                     current ? current->last_updated : 0, w.version, w.last_updated));
    WriteResult result{0, w.version, w.last_updated, current ? Method::kUpdate : Method::kCreate};
    Status s = WritePut(w, current ? &*current : nullptr, result);
    if (!s.ok()) {
      poison_ = s;
      return s;
    }
    return result;
  }

  Result<WriteResult> Delete(const ResourceDelete& d) override {
    RETURN_IF_ERROR(CheckDelete(d));
    ASSIGN_OR_RETURN(auto current, Current(d.type, d.id, /*with_body=*/false));
    known_.reset();
    if (!current || current->deleted) {
      return NotFoundError(std::string(d.type) + "/" + std::string(d.id) +
                           (current ? " is already deleted" : " does not exist"));
    }
    RETURN_IF_ERROR(
        CheckNextVersion(d.type, d.id, true, current->version, current->last_updated, d.version, d.last_updated));
    WriteResult result{current->rid, d.version, d.last_updated, Method::kDelete};
    Status s = WriteDelete(d, *current);
    if (!s.ok()) {
      poison_ = s;
      return s;
    }
    return result;
  }

  Status Reindex(std::string_view type, std::string_view id, std::int64_t version, const IndexRows& rows) override {
    ASSIGN_OR_RETURN(auto current, Current(type, id, /*with_body=*/false));
    known_.reset();
    if (!current || current->deleted || current->version != version) {
      return FailedPreconditionError(std::string(type) + "/" + std::string(id) + " is no longer at version " +
                                     std::to_string(version));
    }
    Status s = DeleteIndexRows(conn_, current->rid);
    if (s.ok()) s = InsertIndexRows(conn_, current->rid, rows);
    if (!s.ok()) poison_ = s;
    return s;
  }

 private:
  Status WritePut(const ResourceWrite& w, const ResourceVersion* current, WriteResult& result) {
    if (current == nullptr) {
      BEVAN_QUERY(q, conn_, kInsertResource);
      q.Text(1, w.type).Text(2, w.id).Int(3, w.version).Int(4, w.last_updated).TextOrNull(5, w.compartment);
      RETURN_IF_ERROR(q.Blob(6, w.body).Run());
      result.rid = sqlite3_last_insert_rowid(conn_.db());
    } else {
      result.rid = current->rid;
      RETURN_IF_ERROR(KeepSupersededBody(current->rid, current->version));
      BEVAN_QUERY(q, conn_, kUpdateResource);
      q.Int(1, result.rid).Int(2, w.version).Int(3, w.last_updated).TextOrNull(4, w.compartment);
      RETURN_IF_ERROR(q.Blob(5, w.body).Run());
    }
    {
      // The current version's body lives in `resource` only (body NULL here);
      // it moves into its history row when it is superseded.
      BEVAN_QUERY(q, conn_, kInsertHistory);
      q.Int(1, result.rid).Int(2, w.version).Text(3, w.type).Int(4, w.last_updated);
      RETURN_IF_ERROR(q.Int(5, static_cast<int>(result.method)).TextOrNull(6, w.compartment).Run());
    }
    // A tombstone has no index rows left to remove.
    if (current != nullptr && !current->deleted) RETURN_IF_ERROR(DeleteIndexRows(conn_, result.rid));
    if (w.index != nullptr) RETURN_IF_ERROR(InsertIndexRows(conn_, result.rid, *w.index));
    return Status::Ok();
  }

  Status WriteDelete(const ResourceDelete& d, const ResourceVersion& current) {
    RETURN_IF_ERROR(KeepSupersededBody(current.rid, current.version));
    {
      BEVAN_QUERY(q, conn_, kDeleteResource);
      RETURN_IF_ERROR(q.Int(1, current.rid).Int(2, d.version).Int(3, d.last_updated).Run());
    }
    {
      BEVAN_QUERY(q, conn_, kInsertHistory);
      q.Int(1, current.rid).Int(2, d.version).Text(3, d.type).Int(4, d.last_updated);
      RETURN_IF_ERROR(q.Int(5, static_cast<int>(Method::kDelete)).TextOrNull(6, current.compartment).Run());
    }
    return DeleteIndexRows(conn_, current.rid);
  }

  // The current row of (type, id) (nullopt: none). The row last looked up is
  // remembered, without its body, until the next write: a write usually
  // reads the resource first (REST, the importer), then Put needs the same
  // row again. Only this transaction writes, so it cannot go stale.
  Result<std::optional<ResourceVersion>> Current(std::string_view type, std::string_view id, bool with_body) {
    if (known_ && !with_body && known_->type == type && known_->id == id) return known_->row;
    ASSIGN_OR_RETURN(auto row, ReadCurrent(conn_, type, id, with_body));
    known_.emplace();
    known_->type = type;
    known_->id = id;
    if (row) {
      const ResourceVersion& r = *row;
      known_->row = ResourceVersion{r.rid, r.type, r.id, r.version, r.last_updated, r.deleted, r.compartment, {}};
    }
    return row;
  }

  // Copies the body of the version about to be superseded from `resource`
  // into its history row (NULL there while it is current).
  Status KeepSupersededBody(Rid rid, std::int64_t version) {
    BEVAN_QUERY(q, conn_, kKeepSupersededBody);
    return q.Int(1, rid).Int(2, version).Run();
  }

  struct Known {
    std::string type;
    std::string id;
    std::optional<ResourceVersion> row;
  };

  Conn& conn_;
  Status poison_;
  std::optional<Known> known_;
};

Status CreateSecondaryIndexes(Conn& conn) {
  for (const IndexDef& d : kSecondaryIndexes) {
    RETURN_IF_ERROR(conn.Exec(("CREATE INDEX IF NOT EXISTS " + std::string(d.name) + " ON " + d.on).c_str()));
  }
  return Status::Ok();
}

// A queued write transaction; `done` receives its result after the commit.
// A request with `raw` instead runs alone on the writer connection, outside
// any transaction (bulk-load switches, checkpoints).
struct WriteRequest {
  std::function<Status(Transaction&)> fn;
  std::function<void(Status)> done;
  Status result;
  std::function<Status(Conn&)> raw;
};

class SqliteStore final : public Store {
  friend class SqliteTransaction;

 public:
  SqliteStore(std::string path, bool remove_on_close, const StoreOptions& options)
      : path_(std::move(path)), remove_on_close_(remove_on_close), options_(options) {}

  ~SqliteStore() override {
    if (writer_thread_.joinable()) {
      {
        std::lock_guard lock(queue_mu_);
        stopping_ = true;
      }
      queue_cv_.notify_one();
      writer_thread_.join();
    }
    if (syncer_thread_.joinable()) {
      {
        std::lock_guard lock(sync_mu_);
        sync_stopping_ = true;
      }
      sync_cv_.notify_one();
      syncer_thread_.join();
    }
    readers_.clear();
    writer_.reset();
    if (remove_on_close_) {
      for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
    }
  }

  Status Init() {
    ASSIGN_OR_RETURN(writer_, Conn::Open(path_, /*writer=*/true));
    RETURN_IF_ERROR(Migrate());
    {
      BEVAN_QUERY(q, *writer_, kReadCurrentMeta);  // warm-up: fails early if the schema is unusable
      q.Text(1, "").Text(2, "");
      RETURN_IF_ERROR(q.Run());
    }
    sqlite3_stmt* max_stmt = nullptr;
    int rc =
        sqlite3_prepare_v2(writer_->db(), "SELECT max(last_updated) FROM resource_history", -1, &max_stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(writer_->db(), rc, "prepare");
    if (sqlite3_step(max_stmt) == SQLITE_ROW) clock_.RaiseFloor(sqlite3_column_int64(max_stmt, 0));
    sqlite3_finalize(max_stmt);
    if (options_.sqlite_synchronous_full) syncer_thread_ = std::thread([this] { SyncerLoop(); });
    writer_thread_ = std::thread([this] { WriterLoop(); });
    return Status::Ok();
  }

  std::string_view backend() const override { return "sqlite"; }
  Micros Now() override { return clock_.Now(); }

  Result<ResourceVersion> Read(std::string_view type, std::string_view id) override {
    ASSIGN_OR_RETURN(Lease lease, AcquireReader());
    ASSIGN_OR_RETURN(auto current, ReadCurrent(*lease.conn, type, id, /*with_body=*/true));
    if (!current) return NotFoundError(std::string(type) + "/" + std::string(id) + " does not exist");
    return std::move(*current);
  }

  Result<ResourceVersion> VRead(std::string_view type, std::string_view id, std::int64_t version) override {
    ASSIGN_OR_RETURN(Lease lease, AcquireReader());
    BEVAN_QUERY(q, *lease.conn, kVRead);
    q.Text(1, type).Text(2, id).Int(3, version);
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) {
      return NotFoundError(std::string(type) + "/" + std::string(id) + " has no version " + std::to_string(version));
    }
    ResourceVersion v;
    v.rid = q.ColInt(0);
    v.type = type;
    v.id = id;
    v.version = q.ColInt(1);
    v.last_updated = q.ColInt(2);
    v.deleted = q.ColInt(3) == static_cast<int>(Method::kDelete);
    v.compartment = q.ColText(4);
    v.body = q.ColText(5);
    return v;
  }

  Result<bool> Exists(std::string_view type, std::string_view id) override {
    ASSIGN_OR_RETURN(Lease lease, AcquireReader());
    BEVAN_QUERY(q, *lease.conn, kExists);
    q.Text(1, type).Text(2, id);
    ASSIGN_OR_RETURN(bool row, q.Step());
    return row && q.ColInt(0) == 0;
  }

  Status Transact(const std::function<Status(Transaction&)>& fn) override {
    if (std::this_thread::get_id() == writer_thread_.get_id()) {
      return InternalError("Store::Transact called on the store's writer thread (inside a callback)");
    }
    Waiter waiter;
    // fn is only borrowed: this call outlives the request.
    TransactAsync([&fn](Transaction& txn) { return fn(txn); }, waiter.Notifier());
    return waiter.Wait();
  }

  void TransactAsync(std::function<Status(Transaction&)> fn, std::function<void(Status)> done) override {
    Enqueue(std::make_unique<WriteRequest>(WriteRequest{std::move(fn), std::move(done), Status(), nullptr}));
  }

  static std::string JournalMode(Conn& conn) {
    sqlite3_stmt* stmt = nullptr;
    std::string mode;
    if (sqlite3_prepare_v2(conn.db(), "PRAGMA journal_mode", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      mode = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return mode;
  }

  Result<bool> BeginBulkLoad() override {
    bool engaged = false;
    RETURN_IF_ERROR(OnWriter([this, &engaged](Conn& conn) -> Status {
      BEVAN_QUERY(any, conn, kAnyResource);
      ASSIGN_OR_RETURN(bool stored, any.Step());
      if (stored) return Status::Ok();
      RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
      for (const IndexDef& d : kSecondaryIndexes) {
        if (d.kept_in_bulk) continue;
        Status s = conn.Exec(("DROP INDEX IF EXISTS " + std::string(d.name)).c_str());
        if (!s.ok()) {
          (void)conn.Exec("ROLLBACK");
          return s;
        }
      }
      RETURN_IF_ERROR(conn.Exec("COMMIT"));
      // Crash-safe without a sync per commit; EndBulkLoad syncs everything.
      engaged = true;
      bulk_ = true;
      return Status::Ok();
    }));
    return engaged;
  }

  Status EndBulkLoad() override {
    return OnWriter([this](Conn& conn) -> Status {
      // Each index is built by one sort of its table (spilling to temporary
      // files beyond its cache). The sorter runs on this thread alone: with
      // helper threads (PRAGMA threads) the three largest indexes of a
      // 10,000-patient trust took 1.40 s instead of 1.23 s on 2 cores.
      RETURN_IF_ERROR(conn.Exec("PRAGMA threads = 0"));
      RETURN_IF_ERROR(conn.Exec("PRAGMA temp_store = FILE"));
      // The loaded rows go into the database file first; the indexes are
      // then built with a rollback journal: their pages are new pages, which
      // such a journal does not copy, so they are written once instead of to
      // the WAL and again by the checkpoint. A crash during the build rolls
      // it back and the next open builds the indexes. If another connection
      // holds the WAL open the switch is refused and the build uses the WAL.
      RETURN_IF_ERROR(conn.Exec("PRAGMA wal_checkpoint(TRUNCATE)"));
      bool rollback_journal = conn.Exec("PRAGMA journal_mode = DELETE").ok() && JournalMode(conn) == "delete";
      Status built = conn.Exec("BEGIN IMMEDIATE");
      if (built.ok()) {
        built = CreateSecondaryIndexes(conn);
        Status end = conn.Exec(built.ok() ? "COMMIT" : "ROLLBACK");
        if (built.ok()) built = end;
      }
      // The configured durability comes back even when the build failed
      // (the next open builds the missing indexes).
      RETURN_IF_ERROR(conn.Exec("PRAGMA temp_store = MEMORY"));
      bulk_ = false;
      if (rollback_journal) {
        RETURN_IF_ERROR(conn.Exec("PRAGMA journal_mode = WAL"));
        if (JournalMode(conn) != "wal")
          return InternalError("sqlite: the store did not return to WAL mode after a bulk load");
      }
      RETURN_IF_ERROR(built);
      // Everything committed during the load goes into the database file and
      // is synced before this returns.
      return conn.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
    });
  }

 private:
  // The caller sleeps on a condition variable rather than a semaphore:
  // libstdc++'s semaphores spin with sched_yield first, which with dozens of
  // waiting writers on two cores burns the CPU the writer thread needs.
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status result;

    std::function<void(Status)> Notifier() {
      return [this](Status s) {
        std::lock_guard lock(mu);
        result = std::move(s);
        done = true;
        cv.notify_one();
      };
    }
    Status Wait() {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return done; });
      return std::move(result);
    }
  };

  // Runs `raw` on the writer thread between groups and waits for it.
  Status OnWriter(std::function<Status(Conn&)> raw) {
    if (std::this_thread::get_id() == writer_thread_.get_id()) {
      return InternalError("sqlite store: writer work requested from the writer thread");
    }
    Waiter waiter;
    Enqueue(std::make_unique<WriteRequest>(WriteRequest{nullptr, waiter.Notifier(), Status(), std::move(raw)}));
    return waiter.Wait();
  }

  void Enqueue(std::unique_ptr<WriteRequest> request) {
    {
      std::lock_guard lock(queue_mu_);
      if (!stopping_) {
        queue_.push_back(std::move(request));
        queue_cv_.notify_one();
        return;
      }
    }
    request->done(UnavailableError("store is closing"));
  }

 public:
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

  Result<HistoryPage> History(const HistoryQuery& query) override {
    RETURN_IF_ERROR(CheckHistoryQuery(query));
    ASSIGN_OR_RETURN(Lease lease, AcquireReader());
    Conn& conn = *lease.conn;
    int level = query.type.empty() ? 0 : query.id.empty() ? 1 : 2;
    Rid rid = 0;
    if (level == 2) {
      BEVAN_QUERY(q, conn, kRidOf);
      q.Text(1, query.type).Text(2, query.id);
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return NotFoundError(std::string(query.type) + "/" + std::string(query.id) + " does not exist");
      rid = q.ColInt(0);
    }
    constexpr Micros kMax = std::numeric_limits<Micros>::max();
    constexpr Micros kMin = std::numeric_limits<Micros>::min();
    HistoryCursor after = query.after.value_or(HistoryCursor{kMax, kMax, kMax});
    Micros lo = query.since.value_or(kMin);
    Micros hi = query.at_hi.value_or(kMax);
    BEVAN_QUERY(q, conn, kHistory0 + level * 2 + (query.at_lo ? 1 : 0));
    q.Int(1, after.last_updated).Int(2, after.rid).Int(3, after.version).Int(4, lo).Int(5, hi);
    // One more row than asked for tells whether a next page exists.
    q.Int(6, query.count + 1).Int(7, query.with_bodies ? 1 : 0);
    if (level == 1) q.Text(8, query.type);
    if (level == 2) q.Int(8, rid);
    if (query.at_lo) q.Int(sql::HistoryAtParam(level), *query.at_lo);
    HistoryPage page;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      if (static_cast<int>(page.entries.size()) == query.count) {
        const HistoryEntry& last = page.entries.back();
        page.next = HistoryCursor{last.last_updated, last.rid, last.version};
        break;
      }
      HistoryEntry e;
      e.rid = q.ColInt(0);
      e.type = q.ColText(1);
      e.id = q.ColText(2);
      e.version = q.ColInt(3);
      e.last_updated = q.ColInt(4);
      e.method = static_cast<Method>(q.ColInt(5));
      e.body = q.ColText(6);
      e.compartment = q.ColText(7);
      page.entries.push_back(std::move(e));
    }
    return page;
  }

  Result<SearchPage> Search(const SearchPlan& plan) override {
    RETURN_IF_ERROR(sql::CheckSearchPlan(plan));
    ASSIGN_OR_RETURN(Lease lease, AcquireReader());
    Conn& conn = *lease.conn;
    // One read transaction, so the page and the count see the same snapshot.
    RETURN_IF_ERROR(conn.Exec("BEGIN"));
    auto page = SearchIn(conn, plan);
    (void)conn.Exec("COMMIT");
    return page;
  }

  Result<std::vector<SearchHit>> Include(const IncludeQuery& query) override {
    if (query.limit < 0) return InvalidArgumentError("include limit must not be negative");
    std::vector<SearchHit> hits;
    if (query.rids.empty() || query.specs.empty()) return hits;
    ASSIGN_OR_RETURN(Lease lease, AcquireReader());
    SqlStatement st = sql::PrintInclude(query, sql::Dialect::kSqlite);
    ASSIGN_OR_RETURN(AdHoc q, AdHoc::Prepare(*lease.conn, st));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      if (static_cast<int>(hits.size()) == query.limit) {
        return ResourceExhaustedError("more than " + std::to_string(query.limit) + " included resources");
      }
      hits.push_back(q.Hit());
    }
    return hits;
  }

  Result<std::string> ExplainSearch(const SearchPlan& plan) override {
    RETURN_IF_ERROR(sql::CheckSearchPlan(plan));
    ASSIGN_OR_RETURN(Lease lease, AcquireReader());
    std::string out;
    for (const SqlStatement& st : sql::PrintAll(plan, sql::Dialect::kSqlite)) {
      ASSIGN_OR_RETURN(std::string e, Explain(*lease.conn, st));
      out += e;
    }
    return out;
  }

  Status Scan(const ScanQuery& query, const std::function<Status(const ScanRow&)>& fn) override {
    RETURN_IF_ERROR(CheckScanQuery(query));
    ASSIGN_OR_RETURN(Lease lease, AcquireReader());
    ASSIGN_OR_RETURN(sqlite3_stmt * stmt, lease.conn->SearchStatement(ScanSql(query, /*postgres=*/false)));
    if (query.scope != ScanScope::kTheseCompartments) return ScanChunks(*lease.conn, stmt, query, {}, fn);
    for (const std::string& c : query.compartments) RETURN_IF_ERROR(ScanChunks(*lease.conn, stmt, query, c, fn));
    return Status::Ok();
  }

  // SQLite's search plans are fixed by the statements (see search_sql.cpp):
  // statistics would only give its planner room to second-guess them.
  Status Analyze() override { return Status::Ok(); }

  Result<std::string> ExplainInclude(const IncludeQuery& query) override {
    ASSIGN_OR_RETURN(Lease lease, AcquireReader());
    return Explain(*lease.conn, sql::PrintInclude(query, sql::Dialect::kSqlite));
  }

 private:
  // An ad-hoc statement (search statements differ with every query's shape),
  // finalized when it goes out of scope.
  class AdHoc {
   public:
    AdHoc(AdHoc&& o) noexcept : db_(o.db_), stmt_(o.stmt_), owned_(o.owned_) { o.stmt_ = nullptr; }
    AdHoc& operator=(AdHoc&&) = delete;
    ~AdHoc() {
      if (owned_) {
        sqlite3_finalize(stmt_);
      } else if (stmt_ != nullptr) {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
      }
    }

    // A cached statement (Conn::SearchStatement), or with a prefix (EXPLAIN)
    // a one-off.
    static Result<AdHoc> Prepare(Conn& conn, const SqlStatement& st, std::string_view prefix = {}) {
      sqlite3_stmt* stmt = nullptr;
      int rc = SQLITE_OK;
      if (prefix.empty()) {
        ASSIGN_OR_RETURN(stmt, conn.SearchStatement(st.sql));
      } else {
        std::string text = std::string(prefix) + st.sql;
        rc = sqlite3_prepare_v2(conn.db(), text.c_str(), static_cast<int>(text.size()) + 1, &stmt, nullptr);
        if (rc != SQLITE_OK) return SqliteError(conn.db(), rc, "prepare search " + text.substr(0, 200));
      }
      AdHoc q(conn.db(), stmt, !prefix.empty());
      for (size_t i = 0; i < st.params.size(); ++i) {
        int at = static_cast<int>(i) + 1;
        const PlanValue& v = st.params[i];
        if (const auto* n = std::get_if<std::int64_t>(&v)) {
          rc = sqlite3_bind_int64(stmt, at, *n);
        } else if (const auto* d = std::get_if<double>(&v)) {
          rc = sqlite3_bind_double(stmt, at, *d);
        } else {
          const std::string& t = std::get<std::string>(v);
          rc = sqlite3_bind_text(stmt, at, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
        }
        if (rc != SQLITE_OK) return SqliteError(conn.db(), rc, "bind search");
      }
      return q;
    }

    Result<bool> Step() {
      int rc = sqlite3_step(stmt_);
      if (rc == SQLITE_ROW) return true;
      if (rc == SQLITE_DONE) return false;
      return SqliteError(db_, rc, "search step");
    }
    std::int64_t Int(int c) const { return sqlite3_column_int64(stmt_, c); }
    double Double(int c) const { return sqlite3_column_double(stmt_, c); }
    std::string Text(int c) const {
      const void* p = sqlite3_column_blob(stmt_, c);
      int n = sqlite3_column_bytes(stmt_, c);
      return p ? std::string(static_cast<const char*>(p), n) : std::string();
    }
    SearchHit Hit() const {
      SearchHit h;
      h.rid = Int(0);
      h.type = Text(1);
      h.id = Text(2);
      h.version = Int(3);
      h.last_updated = Int(4);
      h.body = Text(5);
      h.compartment = Text(6);
      return h;
    }

   private:
    AdHoc(sqlite3* db, sqlite3_stmt* stmt, bool owned) : db_(db), stmt_(stmt), owned_(owned) {}
    sqlite3* db_;
    sqlite3_stmt* stmt_;
    bool owned_;
  };

  static Result<SearchPage> SearchIn(Conn& conn, const SearchPlan& plan) {
    auto run = [&conn](const SqlStatement& st, const std::vector<int>& kinds) -> Result<std::vector<sql::PageRow>> {
      std::vector<sql::PageRow> rows;
      ASSIGN_OR_RETURN(AdHoc q, AdHoc::Prepare(conn, st));
      for (;;) {
        ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        sql::PageRow r{q.Hit(), {}};
        for (size_t i = 0; i < kinds.size(); ++i) {
          int c = 7 + static_cast<int>(i);
          switch (kinds[i]) {
            case 0: r.keys.emplace_back(q.Int(c)); break;
            case 1: r.keys.emplace_back(q.Double(c)); break;
            default: r.keys.emplace_back(q.Text(c)); break;
          }
        }
        rows.push_back(std::move(r));
      }
      return rows;
    };
    ASSIGN_OR_RETURN(SearchPage page, sql::RunPage(plan, sql::Dialect::kSqlite, run));
    if (plan.count) {
      ASSIGN_OR_RETURN(AdHoc q, AdHoc::Prepare(conn, sql::PrintCount(plan, sql::Dialect::kSqlite)));
      ASSIGN_OR_RETURN(bool row, q.Step());
      page.total = row ? q.Int(0) : 0;
    }
    return page;
  }

  // Runs the scan statement chunk by chunk. Each chunk is one statement
  // execution, reset before the next, so the read snapshot is released
  // between chunks; bodies are handed out straight from SQLite's buffers.
  static Status ScanChunks(Conn& conn, sqlite3_stmt* stmt, const ScanQuery& query, std::string_view compartment,
                           const std::function<Status(const ScanRow&)>& fn) {
    struct Reset {
      sqlite3_stmt* s;
      ~Reset() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
      }
    };
    auto text = [stmt](int c) {
      const char* p = static_cast<const char*>(sqlite3_column_blob(stmt, c));
      return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(stmt, c))) : std::string_view();
    };
    std::string after;
    for (;;) {
      Reset reset{stmt};
      int rc = sqlite3_bind_text(stmt, 1, query.type.data(), static_cast<int>(query.type.size()), SQLITE_STATIC);
      if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, after.data(), static_cast<int>(after.size()), SQLITE_TRANSIENT);
      if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(stmt, 3, query.since.value_or(std::numeric_limits<Micros>::min()));
      }
      if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt, 4, query.chunk);
      if (rc == SQLITE_OK && query.scope == ScanScope::kTheseCompartments) {
        rc = sqlite3_bind_text(stmt, 5, compartment.data(), static_cast<int>(compartment.size()), SQLITE_STATIC);
      }
      if (rc != SQLITE_OK) return SqliteError(conn.db(), rc, "bind scan");
      int rows = 0;
      for (;;) {
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return SqliteError(conn.db(), rc, "scan step");
        ++rows;
        ScanRow row;
        row.rid = sqlite3_column_int64(stmt, 0);
        row.id = text(1);
        row.last_updated = sqlite3_column_int64(stmt, 2);
        row.compartment = text(3);
        row.body = text(4);
        RETURN_IF_ERROR(fn(row));
        if (rows == query.chunk) after.assign(row.id);
      }
      if (rows < query.chunk) return Status::Ok();
    }
  }

  static Result<std::string> Explain(Conn& conn, const SqlStatement& st) {
    std::string out = "-- " + st.sql + "\n";
    ASSIGN_OR_RETURN(AdHoc q, AdHoc::Prepare(conn, st, "EXPLAIN QUERY PLAN "));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      out += q.Text(3) + "\n";
    }
    return out;
  }

  // A reader connection taken from the pool for one call.
  struct Lease {
    SqliteStore* store = nullptr;
    std::unique_ptr<Conn> conn;
    Lease() = default;
    Lease(SqliteStore* s, std::unique_ptr<Conn> c) : store(s), conn(std::move(c)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (conn) store->ReleaseReader(std::move(conn));
    }
  };

  Result<Lease> AcquireReader() {
    {
      std::lock_guard lock(readers_mu_);
      if (!readers_.empty()) {
        std::unique_ptr<Conn> c = std::move(readers_.back());
        readers_.pop_back();
        return Lease(this, std::move(c));
      }
    }
    ASSIGN_OR_RETURN(std::unique_ptr<Conn> c, Conn::Open(path_, /*writer=*/false));
    return Lease(this, std::move(c));
  }

  void ReleaseReader(std::unique_ptr<Conn> conn) {
    std::lock_guard lock(readers_mu_);
    readers_.push_back(std::move(conn));
  }

  Status Migrate() {
    RETURN_IF_ERROR(writer_->Exec("BEGIN IMMEDIATE"));
    Status s = MigrateInTransaction();
    if (!s.ok()) {
      (void)writer_->Exec("ROLLBACK");
      return s;
    }
    return writer_->Exec("COMMIT");
  }

  Status MigrateInTransaction() {
    RETURN_IF_ERROR(writer_->Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(writer_->db(), "SELECT max(version) FROM schema_version", -1, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(writer_->db(), rc, "prepare");
    std::int64_t version = 0;
    if (sqlite3_step(stmt) == SQLITE_ROW) version = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    if (version > kSchemaVersion) {
      return FailedPreconditionError("database schema version " + std::to_string(version) +
                                     " is newer than this build's " + std::to_string(kSchemaVersion));
    }
    if (version < 1) {
      RETURN_IF_ERROR(writer_->Exec(kSchemaV1));
      RETURN_IF_ERROR(writer_->Exec("INSERT INTO schema_version (version) VALUES (1)"));
    }
    if (version < 2) {
      // Version 2 added secondary indexes only (kSecondaryIndexes).
      RETURN_IF_ERROR(writer_->Exec("INSERT INTO schema_version (version) VALUES (2)"));
    }
    if (version < 3) {
      // resource (compartment) is a prefix of resource_compartment_type;
      // string :exact searches use (param, normalized) too.
      RETURN_IF_ERROR(writer_->Exec("DROP INDEX IF EXISTS resource_compartment"));
      RETURN_IF_ERROR(writer_->Exec("DROP INDEX IF EXISTS idx_string_exact"));
      // (param, target_id, target_type) and (target_id, target_type) become
      // one (target_id, target_type, param): ids are selective enough to
      // lead, and _revinclude=* (any parameter) uses the same index.
      RETURN_IF_ERROR(writer_->Exec("DROP INDEX IF EXISTS idx_reference_target"));
      RETURN_IF_ERROR(writer_->Exec("DROP INDEX IF EXISTS idx_reference_to"));
      // Only references written as URLs are looked up by url (search_sql.cpp
      // states url <> '' for the partial index).
      RETURN_IF_ERROR(writer_->Exec("DROP INDEX IF EXISTS idx_reference_url"));
      // Quantities with a unit search the canonical index (UCUM units) or
      // (param, lo) and check the code on those rows.
      RETURN_IF_ERROR(writer_->Exec("DROP INDEX IF EXISTS idx_quantity_value"));
      RETURN_IF_ERROR(writer_->Exec("INSERT INTO schema_version (version) VALUES (3)"));
    }
    // Later versions: `if (version < 4) { ALTER ...; INSERT 4 }`, in order.
    // Missing secondary indexes (a new store, or a bulk load cut short) are
    // built here.
    return CreateSecondaryIndexes(*writer_);
  }

  void WriterLoop() {
    std::vector<std::unique_ptr<WriteRequest>> group;
    for (;;) {
      {
        std::unique_lock lock(queue_mu_);
        queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        while (!queue_.empty() && static_cast<int>(group.size()) < options_.sqlite_max_group) {
          if (queue_.front()->raw && !group.empty()) break;
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
          if (group.back()->raw) break;
        }
      }
      if (group.back()->raw) {
        group.back()->result = group.back()->raw(*writer_);
      } else {
        RunGroup(group);
      }
      if (syncer_thread_.joinable() && !bulk_) {
        // Acknowledged by the syncer once the WAL is on disk.
        std::lock_guard lock(sync_mu_);
        for (auto& r : group) sync_pending_.push_back(std::move(r));
        sync_cv_.notify_one();
      } else {
        for (auto& r : group) r->done(std::move(r->result));
      }
      group.clear();
    }
  }

  // Acknowledges committed groups after an fdatasync of the WAL (see the top).
  void SyncerLoop() {
    std::vector<std::unique_ptr<WriteRequest>> batch;
    for (;;) {
      {
        std::unique_lock lock(sync_mu_);
        sync_cv_.wait(lock, [this] { return sync_stopping_ || !sync_pending_.empty(); });
        if (sync_pending_.empty()) return;
        batch.swap(sync_pending_);
      }
      Status synced = SyncWal();
      for (auto& r : batch) {
        Status result = std::move(r->result);
        if (result.ok() && !synced.ok()) result = synced;
        r->done(std::move(result));
      }
      batch.clear();
    }
  }

  // fdatasync of the WAL file (fsync is per file, so a descriptor of our own
  // does), and of its directory whenever the WAL file is new to us, so that
  // the file itself survives a power loss. No WAL file: the database file.
  Status SyncWal() {
    std::string wal = path_ + "-wal";
    int fd = open(wal.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError("sqlite: cannot open " + wal + " to sync it: " + std::strerror(errno));
    struct stat st {};
    bool ok = fstat(fd, &st) == 0 && fdatasync(fd) == 0;
    int err = errno;
    close(fd);
    if (!ok) return IoError("sqlite: fdatasync of " + wal + " failed: " + std::strerror(err));
    if (st.st_ino != synced_inode_) {
      size_t slash = path_.rfind('/');
      std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
      int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd < 0 || fsync(dfd) != 0) {
        err = errno;
        if (dfd >= 0) close(dfd);
        return IoError("sqlite: fsync of directory " + dir + " failed: " + std::strerror(err));
      }
      close(dfd);
      synced_inode_ = st.st_ino;
    }
    return Status::Ok();
  }

  void RunGroup(const std::vector<std::unique_ptr<WriteRequest>>& group) {
    Conn& conn = *writer_;
    Status begin = ExecStmt(conn, kBegin);
    if (!begin.ok()) {
      for (auto& r : group) r->result = begin;
      return;
    }
    std::vector<WriteRequest*> applied;  // succeeded, awaiting the commit
    for (auto& rp : group) {
      WriteRequest* r = rp.get();
      Status s = ExecStmt(conn, kSavepoint);
      if (s.ok()) {
        SqliteTransaction txn(conn);
        s = r->fn(txn);
        if (s.ok() && !txn.poison().ok()) s = txn.poison();
      }
      if (sqlite3_get_autocommit(conn.db())) {
        // SQLite rolled back the whole transaction (an I/O error or a full
        // disk): everything applied so far in this group is gone too.
        Status lost = s.ok() ? InternalError("sqlite: transaction rolled back") : s;
        r->result = lost;
        for (WriteRequest* a : applied) a->result = IoError("sqlite: group rolled back: " + lost.message());
        applied.clear();
        Status again = ExecStmt(conn, kBegin);
        if (!again.ok()) {
          for (auto& rest : group) {
            if (rest->result.ok()) rest->result = again;
          }
          return;
        }
        continue;
      }
      if (s.ok()) {
        s = ExecStmt(conn, kRelease);
        if (s.ok()) applied.push_back(r);
      } else {
        Status undo = ExecStmt(conn, kRollbackTo);
        if (undo.ok()) undo = ExecStmt(conn, kRelease);
        if (!undo.ok()) {
          // Cannot isolate this failure: give up on the whole group.
          (void)ExecStmt(conn, kRollback);
          r->result = s;
          for (auto& rest : group) {
            if (rest->result.ok()) rest->result = undo;
          }
          return;
        }
      }
      r->result = s;
    }
    Status commit = ExecStmt(conn, kCommit);
    if (!commit.ok()) {
      if (!sqlite3_get_autocommit(conn.db())) (void)ExecStmt(conn, kRollback);
      for (WriteRequest* a : applied) a->result = commit;
    }
  }

  const std::string path_;
  const bool remove_on_close_;
  const StoreOptions options_;
  MonotonicClock clock_;

  std::unique_ptr<Conn> writer_;  // used only by writer_thread_ after Init
  std::thread writer_thread_;
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::unique_ptr<WriteRequest>> queue_;
  bool stopping_ = false;
  bool bulk_ = false;  // writer thread only: between BeginBulkLoad and EndBulkLoad

  // The syncer (sqlite_synchronous_full): committed groups awaiting the fsync.
  std::thread syncer_thread_;
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::vector<std::unique_ptr<WriteRequest>> sync_pending_;
  bool sync_stopping_ = false;
  ino_t synced_inode_ = 0;  // syncer thread only

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Conn>> readers_;
};

Result<SearchPage> SqliteTransaction::Search(const SearchPlan& plan) {
  RETURN_IF_ERROR(sql::CheckSearchPlan(plan));
  return SqliteStore::SearchIn(conn_, plan);
}

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(std::string path, bool remove_on_close, const StoreOptions& options) {
  if (options.sqlite_max_group < 1) return InvalidArgumentError("sqlite_max_group must be at least 1");
  auto store = std::make_unique<SqliteStore>(std::move(path), remove_on_close, options);
  RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace bevan::store::internal
