// The storage layer: one `Store` interface over SQLite (embedded default) and
// PostgreSQL. Both backends keep the same schema (see README.md beside this
// file): `resource` holds the current version of every resource, `resource_history`
// every version, and one index table per search-parameter type holds the rows the
// search layer extracts. The store knows nothing of FHIR search syntax or HTTP; it
// stores bytes, versions, timestamps and index rows, and keeps them consistent.
//
// Conventions of the whole interface:
// - No exceptions: every fallible call returns a Status or Result<T>.
// - Every `Store` method is thread-safe and may be called from any number of
//   threads at once.
// - Resource bodies are opaque bytes (the resource JSON exactly as the REST layer
//   serialised it, including meta.versionId and meta.lastUpdated); reads return
//   the same bytes.
// - Versions are integers 1, 2, 3, ... per resource, with no gaps; a delete is a
//   version too (a tombstone with no body).
// - Instants are microseconds since 1970-01-01T00:00:00Z (UTC).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/search_plan.h"

namespace bevan::store {

// Microseconds since the Unix epoch, UTC.
using Micros = std::int64_t;

// The store's surrogate key of a resource (all its versions share it). Stable
// for the life of the resource, including across delete and re-create.
using Rid = std::int64_t;

// How a version came to be; kept in the history (FHIR Bundle.entry.request.method
// of a history entry: POST, PUT, DELETE).
enum class Method : unsigned char {
  kCreate = 1,  // the first version of (type, id)
  kUpdate = 2,  // any later non-delete version, including re-creating after a delete
  kDelete = 3,  // a tombstone
};

// ---------------------------------------------------------------------------
// Index rows. The search layer extracts them from a resource; the store writes
// them in the same transaction as the resource and replaces all of a resource's
// rows on every write (a delete removes them). `param` is the search parameter's
// code (e.g. "identifier"). Exact duplicates within one write are stored once.
// Empty strings mean "absent" (e.g. a token without a system).

struct TokenRow {
  std::string param;
  std::string system;
  std::string code;
};

struct StringRow {
  std::string param;
  std::string normalized;  // as the search layer normalises (case, accents) for matching
  std::string exact;       // the original text, for :exact
};

// FHIR dates are ranges by their precision: 2024-03 is [2024-03-01T00:00, 2024-04-01T00:00).
struct DateRow {
  std::string param;
  Micros lo = 0;  // inclusive
  Micros hi = 0;  // inclusive (the last microsecond of the range)
};

// A decimal's implicit range by its precision (1.5 is [1.45, 1.55]).
struct NumberRow {
  std::string param;
  double lo = 0;
  double hi = 0;
};

struct QuantityRow {
  std::string param;
  double lo = 0;
  double hi = 0;
  std::string system;
  std::string code;
  // The value converted to the canonical UCUM unit, when convertible.
  std::optional<double> canonical_lo;
  std::optional<double> canonical_hi;
  std::string canonical_unit;
};

struct ReferenceRow {
  std::string param;
  std::string target_type;  // "Patient" for "Patient/123"; empty for unresolved URLs
  std::string target_id;    // "123"
  std::string url;          // the reference as written when it is not a local Type/id (absolute, canonical)
};

struct UriRow {
  std::string param;
  std::string uri;
};

struct IndexRows {
  std::vector<TokenRow> tokens;
  std::vector<StringRow> strings;
  std::vector<DateRow> dates;
  std::vector<NumberRow> numbers;
  std::vector<QuantityRow> quantities;
  std::vector<ReferenceRow> references;
  std::vector<UriRow> uris;

  bool empty() const {
    return tokens.empty() && strings.empty() && dates.empty() && numbers.empty() && quantities.empty() &&
           references.empty() && uris.empty();
  }
};

// ---------------------------------------------------------------------------
// Reads.

// One version of a resource as stored.
struct ResourceVersion {
  Rid rid = 0;
  std::string type;
  std::string id;
  std::int64_t version = 0;
  Micros last_updated = 0;
  bool deleted = false;     // a tombstone: `body` is empty; REST answers 410 Gone
  std::string compartment;  // the Patient id the resource belongs to, or empty
  std::string body;         // the stored bytes; empty for tombstones and when not requested
};

// A match of Transaction::FindByToken.
struct ResourceKey {
  Rid rid = 0;
  std::string id;
  std::int64_t version = 0;
};

// ---------------------------------------------------------------------------
// Writes.

// One new version of (type, id). The caller (REST) has already written
// `version` and `last_updated` into the body's meta; the store checks them:
// - `version` must be the current version + 1 (1 when (type, id) has never
//   existed; a tombstone counts as a version, so re-creating a deleted resource
//   at version 3 needs current version 2). Otherwise the write fails with
//   kFailedPrecondition and changes nothing. This is the optimistic-concurrency
//   check behind If-Match: "update only if the current version is N" is a write
//   with version N + 1.
// - `last_updated` must be later than the current version's last_updated
//   (kFailedPrecondition otherwise). Take it from Store::Now(), which is strictly
//   increasing, after reading the current version.
// The views must stay valid until the call that takes this struct returns.
struct ResourceWrite {
  std::string_view type;
  std::string_view id;
  std::int64_t version = 0;
  Micros last_updated = 0;
  std::string_view body;             // non-empty
  std::string_view compartment;      // the Patient id, or empty
  const IndexRows* index = nullptr;  // nullptr = no index rows
};

// A tombstone for (type, id): same version and last_updated rules as
// ResourceWrite. Deleting a resource that does not exist or is already deleted
// fails with kNotFound and writes nothing (REST decides whether that is 200/204).
struct ResourceDelete {
  std::string_view type;
  std::string_view id;
  std::int64_t version = 0;
  Micros last_updated = 0;
};

struct WriteResult {
  Rid rid = 0;
  std::int64_t version = 0;
  Micros last_updated = 0;
  Method method = Method::kCreate;
};

// The handle a Store::Transact callback works through. Valid only during the
// callback and only on the thread that runs it. Reads through it see the
// transaction's own writes and are serialised with other writers: on SQLite
// every write transaction runs on the single writer connection; on PostgreSQL
// Read locks the row it reads (SELECT ... FOR UPDATE) and FindByToken takes a
// transaction-scoped lock on the (type, param, system, code) it searches, so two
// racing "create unless one exists" transactions cannot both see nothing.
class Transaction {
 public:
  virtual ~Transaction() = default;

  // The current version of (type, id), with its body when `with_body`.
  // kNotFound when (type, id) never existed; a deleted resource is returned
  // with deleted == true.
  virtual Result<ResourceVersion> Read(std::string_view type, std::string_view id, bool with_body = false) = 0;

  // Current, non-deleted resources of `type` with a token index row
  // (param, system, code), ordered by id, at most `limit` of them (conditional
  // create asks for 2 to tell "one" from "several"). `system` nullopt matches
  // any system; "" matches only rows without a system (FHIR `|code`).
  virtual Result<std::vector<ResourceKey>> FindByToken(std::string_view type, std::string_view param,
                                                       std::optional<std::string_view> system, std::string_view code,
                                                       int limit) = 0;

  // Search (see search_plan.h and Store::Search) inside the transaction: sees
  // the transaction's own writes. Transactions searching with the same
  // plan.type and plan.where serialise until they end (PostgreSQL: a
  // transaction-scoped advisory lock keyed by the two; SQLite has one writer),
  // so two racing conditional creates with the same criteria make one
  // resource: the second searches after the first committed.
  virtual Result<SearchPage> Search(const SearchPlan& plan) = 0;

  // Writes a new version: the resource row, a history row and the index rows.
  // kFailedPrecondition on a version or timestamp mismatch (nothing written).
  virtual Result<WriteResult> Put(const ResourceWrite& write) = 0;

  // Writes a tombstone: resource row marked deleted (body removed), a history
  // row with method kDelete, index rows removed.
  virtual Result<WriteResult> Delete(const ResourceDelete& del) = 0;

  // Replaces the index rows of the current version of (type, id) with `rows`
  // (`bevan reindex`): no new version, no history row, body and compartment
  // unchanged. kFailedPrecondition, writing nothing, unless the current
  // version is `version` and not deleted (a write overtook the reindex; it
  // indexed that version itself).
  virtual Status Reindex(std::string_view type, std::string_view id, std::int64_t version, const IndexRows& rows) {
    (void)type, (void)id, (void)version, (void)rows;
    return UnimplementedError("this store cannot reindex");
  }
};

// ---------------------------------------------------------------------------
// History.

// A position in a history listing: the last entry of a page. Entries are
// ordered newest first by (last_updated, rid, version) descending, a total order,
// so paging is stable: versions written after the first page have later
// timestamps and never shift later pages.
struct HistoryCursor {
  Micros last_updated = 0;
  Rid rid = 0;
  std::int64_t version = 0;

  // An opaque token for a paging URL ("<last_updated>.<rid>.<version>").
  std::string ToString() const;
  // kInvalidArgument for anything ToString did not produce.
  static Result<HistoryCursor> Parse(std::string_view text);
};

struct HistoryQuery {
  std::string_view type;  // empty = system level (then `id` must be empty)
  std::string_view id;    // non-empty = instance level
  // _since: only versions with last_updated >= since.
  std::optional<Micros> since;
  // _at (a FHIR date-time is a range, so the REST layer passes its range,
  // inclusive on both ends): only versions that were current at some instant in
  // [at_lo, at_hi], i.e. written at or before at_hi and not superseded at or before at_lo.
  std::optional<Micros> at_lo;
  std::optional<Micros> at_hi;
  int count = 50;                      // page size, 1..1000 (kInvalidArgument otherwise)
  std::optional<HistoryCursor> after;  // the `next` of the previous page
  bool with_bodies = true;
};

struct HistoryEntry {
  Rid rid = 0;
  std::string type;
  std::string id;
  std::int64_t version = 0;
  Micros last_updated = 0;
  Method method = Method::kCreate;
  std::string body;         // empty for deletes and when bodies were not requested
  std::string compartment;  // the Patient id the version belonged to, or empty
};

struct HistoryPage {
  std::vector<HistoryEntry> entries;  // newest first
  std::optional<HistoryCursor> next;  // set when more entries may follow
};

// ---------------------------------------------------------------------------
// Scans (bulk export).

// Which resources of a type a scan reads.
enum class ScanScope {
  kAll,               // every current resource of the type
  kAnyCompartment,    // only those in some Patient's compartment (compartment set)
  kTheseCompartments  // only those in the compartment of one of ScanQuery::compartments
};

struct ScanQuery {
  std::string_view type;  // required: a resource type
  // Only resources whose current version was written after `since` (last_updated > since).
  std::optional<Micros> since;
  ScanScope scope = ScanScope::kAll;
  // Patient ids, for kTheseCompartments (ignored otherwise). Each id's rows
  // are read in turn, so a duplicate id gives its rows twice.
  std::vector<std::string> compartments;
  // Rows per statement (1..100000; kInvalidArgument otherwise): the backend
  // holds at most this many rows at once (PostgreSQL) and releases its read
  // snapshot between chunks (SQLite), so a scan never blocks WAL checkpoints
  // for long and never holds a whole type in memory.
  int chunk = 5000;
};

// One row a scan hands to its callback. The views are valid only during the
// callback (they may point into the database's own buffers: copy what you keep).
struct ScanRow {
  Rid rid = 0;
  std::string_view id;
  Micros last_updated = 0;
  std::string_view compartment;  // empty when none
  std::string_view body;         // the stored bytes, verbatim
};

// ---------------------------------------------------------------------------

struct StoreOptions {
  // SQLite: PRAGMA synchronous. true = FULL (default: the WAL is fsynced at
  // every commit, so an acknowledged write survives power loss as well as
  // kill -9); false = NORMAL (survives kill -9 of the process, may lose the
  // last commits on power loss or OS crash).
  bool sqlite_synchronous_full = true;
  // SQLite: most write transactions committed together in one group.
  int sqlite_max_group = 512;
  // PostgreSQL: connections in the pool (reads and writes share it).
  int pg_pool_size = 8;
  // PostgreSQL: how often a write transaction is re-run after a deadlock,
  // serialisation failure or a racing insert of the same (type, id).
  int pg_max_retries = 20;
};

// The storage interface. Implementations: SQLite, PostgreSQL (see OpenStore).
// Destroying a Store waits for in-flight writes to finish; no call may be in
// progress or start during destruction.
class Store {
 public:
  virtual ~Store() = default;

  // "sqlite" or "postgresql".
  virtual std::string_view backend() const = 0;

  // A timestamp for a new version: wall-clock microseconds, strictly greater
  // than any value this Store returned before and than any last_updated it
  // found stored when it opened. Thread-safe.
  virtual Micros Now() = 0;

  // The current version of (type, id) with its body. kNotFound when it never
  // existed; a deleted resource is OK with deleted == true and no body.
  virtual Result<ResourceVersion> Read(std::string_view type, std::string_view id) = 0;

  // Version `version` of (type, id) (vread); kNotFound when there is no such
  // version. A deleted version is returned with deleted == true.
  virtual Result<ResourceVersion> VRead(std::string_view type, std::string_view id, std::int64_t version) = 0;

  // Whether (type, id) exists and its current version is not deleted.
  virtual Result<bool> Exists(std::string_view type, std::string_view id) = 0;

  // Runs `fn` as one atomic write transaction: either everything it wrote is
  // committed durably before Transact returns OK, or nothing is. Returns fn's
  // Status when fn fails (everything rolled back), or the storage error when a
  // write or the commit failed. A Put/Delete that failed on a storage error
  // (not a precondition) poisons the transaction: it is rolled back even if
  // fn returns OK.
  //
  // Contract for fn:
  // - It may run more than once (PostgreSQL re-runs it after a deadlock or a
  //   racing insert), so it must reset anything it captures and have no effects
  //   except through the Transaction.
  // - On SQLite it runs on the store's single writer thread, in a group with
  //   other transactions: keep it short and never call back into the Store
  //   (that deadlocks); use only the Transaction.
  virtual Status Transact(const std::function<Status(Transaction&)>& fn) = 0;

  // Transact without blocking the caller: queues fn and returns at once.
  // `done` is called exactly once with what Transact would have returned,
  // after the commit is durable (or failed), on a store-owned thread: it must
  // be quick and must not block or call back into the Store synchronously
  // (post the result to your own event loop). fn follows Transact's contract.
  //
  // This is how an event-loop server should write: on SQLite every
  // transaction waiting in the queue joins the next group commit, so
  // throughput grows with the number of writes in flight (one fsync per group),
  // not with the number of threads blocked in Transact.
  virtual void TransactAsync(std::function<Status(Transaction&)> fn, std::function<void(Status)> done) = 0;

  // One-operation transactions.
  virtual Result<WriteResult> Put(const ResourceWrite& write) = 0;
  virtual Result<WriteResult> Delete(const ResourceDelete& del) = 0;

  // History, newest first; see HistoryQuery. Instance history of a resource
  // that never existed is kNotFound.
  virtual Result<HistoryPage> History(const HistoryQuery& query) = 0;

  // Search (see search_plan.h): one page of the current, non-deleted
  // resources of plan.type matching plan.where, in the plan's order, after
  // plan.after; `next` is set when more follow; `total` when plan.count.
  // One SQL statement (two with a count), read from a consistent snapshot.
  // kInvalidArgument for a malformed plan or a cursor that does not fit its
  // sort keys.
  virtual Result<SearchPage> Search(const SearchPlan& plan) = 0;

  // _include / _revinclude: the current resources the IncludeQuery names, in
  // rid order, without duplicates, at most query.limit (kResourceExhausted
  // beyond). One SQL statement for all specs.
  virtual Result<std::vector<SearchHit>> Include(const IncludeQuery& query) = 0;

  // The statements Search and Include would run, in this backend's dialect,
  // and the database's plan for them (SQLite EXPLAIN QUERY PLAN, PostgreSQL
  // EXPLAIN), one line per plan node. For tests and diagnostics.
  virtual Result<std::string> ExplainSearch(const SearchPlan& plan) = 0;
  virtual Result<std::string> ExplainInclude(const IncludeQuery& query) = 0;

  // Refreshes the database's planner statistics (ANALYZE). Call after a bulk
  // load: PostgreSQL plans searches from them (without them it assumes tiny
  // tables and may pick nested loops that are quadratic on real data);
  // autovacuum keeps them fresh afterwards. SQLite's search plans are fixed by
  // the statements themselves and do not need them.
  virtual Status Analyze() = 0;

  // Bulk loading (bevan import). BeginBulkLoad() returns true when the store
  // switched to bulk mode, which it does only while it holds no resources:
  // SQLite then drops its secondary (search) indexes, to build each once from
  // a sort in EndBulkLoad(), and commits without a sync per transaction
  // (still crash-safe: a crash loses the latest transactions, never corrupts).
  // Until EndBulkLoad() returns, searches stay correct but read whole tables,
  // and a commit is not yet durable; EndBulkLoad() builds the indexes and
  // makes everything committed durable. A store opened after a load cut short
  // builds the missing indexes then. The default is no bulk mode.
  virtual Result<bool> BeginBulkLoad() { return false; }
  virtual Status EndBulkLoad() { return Status::Ok(); }

  // Streams the current, non-deleted resources of query.type that match the
  // query to `fn`, one row at a time, ordered by id (for kTheseCompartments:
  // by compartment in the given order, then id). Keyset-paged in chunks of
  // query.chunk rows (see ScanQuery), so it is not one consistent snapshot:
  // a resource written while the scan runs may or may not be seen, but
  // every resource that exists unchanged throughout is seen exactly once.
  // Stops at, and returns, the first non-OK Status from fn. kInvalidArgument
  // for an empty type or a chunk out of range. Thread-safe like every call;
  // fn must not call back into the Store on the same thread (SQLite: it holds
  // a reader connection; PostgreSQL: a pool connection) other than through
  // further independent calls, which take their own connections.
  virtual Status Scan(const ScanQuery& query, const std::function<Status(const ScanRow&)>& fn) = 0;
};

// Opens (creating or migrating the schema when needed) the store named by `url`:
// - "sqlite:PATH": a SQLite database file (created if missing).
// - "sqlite::memory:": a fresh SQLite database in a temporary file that is
//   removed when the Store is destroyed (WAL and per-thread readers need a file).
// - "postgresql://..." or "postgres://...": a libpq connection URI.
// kInvalidArgument for other URLs; kUnavailable/kIoError when the database
// cannot be opened; kFailedPrecondition when the schema is newer than this code.
Result<std::unique_ptr<Store>> OpenStore(std::string_view url, const StoreOptions& options = {});

// The schema version this code creates and understands (table schema_version).
inline constexpr int kSchemaVersion = 3;

}  // namespace bevan::store
