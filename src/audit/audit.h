// The audit trail: every access and change becomes an R4 AuditEvent in an
// append-only, hash-chained SQLite log of its own.
//
// The REST layer fills an `AuditRecord` per interaction and calls
// `AuditLog::Append`, which only enqueues it: a background writer encodes
// each record in a compact binary form, chains them (hash = SHA-256, or
// HMAC-SHA256 with a key, over the previous hash, the sequence number and the
// encoded record, which holds every field) and commits them in batches, one
// transaction and one fsync per batch, so a read costs no disk write of its
// own. A batch is stored as blocks of up to 1024 events (one row each: the
// records as one zstd frame, every event's hash, the block's distinct
// patients and agents, its time range). The patient and agent indexes name
// blocks and are written 16 blocks at a time; a query reads the newest,
// not yet indexed blocks' key lists directly, then the indexed blocks, and
// decodes only the blocks it visits. `Query` renders the stored records as R4
// AuditEvents. After each batch the writer replaces a small head file
// (`<log>.head`: last seq and hash), so truncating the tail of the log is
// detected too. `Verify` recomputes the chain, checks the key lists and the
// indexes against the records, and names the first bad event.
//
// Logs of format 1 (one row per event, before blocks) open, verify and
// query: new events go to blocks after the old rows. A log of a later format
// is refused.
//
// Limits: the chain proves that the log was not edited, reordered or cut
// without also rewriting every later hash and the head file. Without a key
// anyone who can write both files can rewrite both; with a key
// (BEVAN_AUDIT_KEY, see KeyFromEnvironment) they also need the key.
//
// The audit is itself patient data (patient ids, search parameters): never
// print an event to a log.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace bevan::audit {

// AuditEvent.action.
enum class Action : char { kCreate = 'C', kRead = 'R', kUpdate = 'U', kDelete = 'D', kExecute = 'E' };

// AuditEvent.outcome.
enum class Outcome : uint8_t { kSuccess = 0, kMinorFailure = 4, kSeriousFailure = 8, kMajorFailure = 12 };

// One audited interaction, as the REST layer sees it. Plain data.
struct AuditRecord {
  int64_t time_us = 0;  // microseconds since the Unix epoch; 0: when appended
  Action action = Action::kRead;
  // The interaction: a FHIR restful-interaction code ("read", "vread",
  // "search-type", "search-system", "create", "update", "patch", "delete",
  // "history-instance", "transaction", "batch", "operation", ...) or one of
  // "export", "login", "login-failed", "logout". A denied request keeps the
  // interaction it asked for, with a failure outcome and `description`.
  std::string subtype;
  Outcome outcome = Outcome::kSuccess;
  std::string description;  // AuditEvent.outcomeDesc, e.g. "insufficient scope"; no patient data

  // Who: the user (the token's fhirUser, e.g. "Practitioner/3", else its
  // subject) and the client application. Either may be empty.
  std::string user;
  std::string client_id;
  std::string source_address;  // the peer's IP address
  std::string request_id;      // X-Request-Id
  std::string purpose_of_use;  // v3-PurposeOfUse code, e.g. "TREAT"; empty: none

  // What: the patients whose data was touched (ids, not references) and the
  // resources ("Observation/5"). Keep `entities` bounded (e.g. the first 20)
  // and give the full number in `entity_count` (0: entities.size()).
  std::vector<std::string> patients;
  std::vector<std::string> entities;
  size_t entity_count = 0;
  std::string resource_type;  // the searched type, for searches
  std::string query;          // search parameters as sent; patient data, stored, never logged
};

struct AuditLogOptions {
  std::string path;                // the SQLite file; the head file is path + ".head"
  std::string key;                 // non-empty: HMAC-SHA256 chain with this key
  std::string observer = "Bevan";  // AuditEvent.source.observer.display
  size_t queue_limit = 65536;      // records waiting for the writer; beyond, Append blocks
  size_t batch_limit = 1000;       // records per transaction at most
  int batch_interval_ms = 20;      // how long the writer gathers a batch
  int append_timeout_ms = 10000;   // Append gives up (Unavailable) after blocking this long
};

struct AuditQuery {
  std::string patient;     // patient id: events that touched this patient
  std::string agent;       // the user, or the client id when there was no user
  char action = 0;         // 'C', 'R', 'U', 'D', 'E'; 0: any
  int outcome = -1;        // 0, 4, 8, 12; -1: any
  int64_t since_us = 0;    // recorded >= since (0: no bound)
  int64_t until_us = 0;    // recorded < until (0: no bound)
  int64_t before_seq = 0;  // paging: only events older than this seq (0: from the newest)
  size_t count = 50;       // page size (1..1000)
};

struct AuditPage {
  std::vector<std::string> events;  // AuditEvent JSON, newest first
  int64_t next_before_seq = 0;      // pass as before_seq for the next page; 0: no more
};

// The appending side of the log. Thread-safe.
class AuditLog {
 public:
  // Opens or creates the log (WAL, synchronous=FULL) and starts the writer.
  // Fails if the head file names a later event than the log holds (the tail
  // was cut), if the head file is missing for a non-empty log, or if the
  // key does not match how the log was created (keyed or not): the log must
  // be examined (`bevan audit verify`) before the server audits into it.
  static Result<std::unique_ptr<AuditLog>> Open(AuditLogOptions options);

  // Drains the queue (every appended record is committed) and stops.
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Enqueues a record; cheap (a move and a lock). When the queue is full it
  // blocks until the writer makes room (backpressure: records are never
  // dropped); after `append_timeout_ms`, or if the writer has stopped on an
  // error, it returns Unavailable and the caller must refuse the request
  // rather than serve it unaudited.
  Status Append(AuditRecord record);

  // Blocks until every record appended before the call is committed (or the
  // writer failed: its error is returned).
  Status Flush();

  // Events matching `q`, newest first. Sees committed events only (Flush
  // first to see one's own appends). Safe from any thread.
  Result<AuditPage> Query(const AuditQuery& q);

  // Committed events so far.
  int64_t committed() const;

  class Impl;

 private:
  explicit AuditLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct VerifyReport {
  bool ok = false;
  int64_t events = 0;   // events checked
  std::string head;     // hex hash of the last event
  int64_t bad_seq = 0;  // the first bad event (0 when ok, or when the problem is not one event's)
  std::string problem;  // why, in words (no event content)
};

// Recomputes the chain of the log at `path` (streaming; does not load the
// log), and compares its end with the head file. An error Status means the
// log could not be read at all; a damaged log is an OK result with !ok.
// `key` must be the key the log was written with (empty for none).
Result<VerifyReport> Verify(const std::string& path, const std::string& key = {});

// BEVAN_AUDIT_KEY from the environment (empty if unset).
std::string KeyFromEnvironment();

// The AuditEvent JSON for `record` as Query returns it (id = seq).
// Exposed for tests.
std::string ToAuditEventJson(const AuditRecord& record, int64_t seq, const std::string& observer);

}  // namespace bevan::audit
