#include "audit/audit.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <span>
#include <thread>

#include "audit/internal.h"
#include "audit/sqlite_util.h"

namespace bevan::audit {

using internal::Db;
using internal::Hash;
using internal::Stmt;

namespace {

// Format 2: one row per block of up to kBlockEvents consecutive events,
// holding the block's distinct patients and agents. The patient and agent
// indexes name blocks, one row per distinct value per block, and are written
// kIndexLag blocks at a time; audit_meta 'indexed_before' is the first block
// not yet indexed.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS audit_meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_block(
  first_seq INTEGER PRIMARY KEY,
  last_seq INTEGER NOT NULL,
  min_time INTEGER NOT NULL,
  max_time INTEGER NOT NULL,
  prev_hash BLOB NOT NULL,
  patients BLOB NOT NULL,
  agents BLOB NOT NULL,
  hashes BLOB NOT NULL,
  records BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS audit_block_patient(patient TEXT NOT NULL, block INTEGER NOT NULL,
  PRIMARY KEY(patient, block)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_block_agent(agent TEXT NOT NULL, block INTEGER NOT NULL,
  PRIMARY KEY(agent, block)) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS audit_block_no_update BEFORE UPDATE ON audit_block
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_block_no_delete BEFORE DELETE ON audit_block
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_block_patient_no_update BEFORE UPDATE ON audit_block_patient
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_block_patient_no_delete BEFORE DELETE ON audit_block_patient
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_block_agent_no_update BEFORE UPDATE ON audit_block_agent
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_block_agent_no_delete BEFORE DELETE ON audit_block_agent
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql";

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::string> MetaValue(Db& db, const char* name) {
  Stmt st;
  RETURN_IF_ERROR(st.Prepare(db, "SELECT value FROM audit_meta WHERE name = ?"));
  st.Bind(1, std::string_view(name));
  if (st.Step() != SQLITE_ROW) return NotFoundError(name);
  return std::string(st.Text(0));
}

// Adds a non-empty value to a block's patients or agents (sorted and made
// unique once the block is complete).
void Collect(std::vector<std::string_view>& out, std::string_view v) {
  if (!v.empty()) out.push_back(v);
}

constexpr size_t kIndexRowsPerInsert = 64;

void SortUnique(std::vector<std::string_view>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// The records waiting for the writer, in chunks of at most one batch: the
// writer takes a batch by taking a vector, not by moving each record (a
// record is a dozen strings), and emptied vectors come back for reuse.
class RecordQueue {
 public:
  explicit RecordQueue(size_t chunk) : chunk_(chunk) {}
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void Push(AuditRecord&& r) {
    if (chunks_.empty() || chunks_.back().size() >= chunk_) {
      chunks_.emplace_back();
      if (!spare_.empty()) {
        chunks_.back().swap(spare_.back());
        spare_.pop_back();
      } else {
        // Growing by doubling would move every record again.
        chunks_.back().reserve(std::min<size_t>(chunk_, 4096));
      }
    }
    chunks_.back().push_back(std::move(r));
    ++size_;
  }
  // Moves the oldest records (at most one chunk) into `out`, which is empty.
  void TakeFront(std::vector<AuditRecord>& out) {
    out.swap(chunks_.front());
    chunks_.pop_front();
    size_ -= out.size();
  }
  // Takes back an emptied vector for reuse.
  void Recycle(std::vector<AuditRecord>& v) {
    if (spare_.size() < 2) {
      spare_.emplace_back();
      spare_.back().swap(v);
    }
  }
  void Clear() {
    chunks_.clear();
    size_ = 0;
  }

 private:
  size_t chunk_;
  std::deque<std::vector<AuditRecord>> chunks_;
  std::vector<std::vector<AuditRecord>> spare_;
  size_t size_ = 0;
};

}  // namespace

class AuditLog::Impl {
 public:
  explicit Impl(AuditLogOptions options)
      : options_(std::move(options)), hasher_(options_.key), queue_(std::max<size_t>(options_.batch_limit, 1)) {}

  Status Open();
  void StartWriter() {
    writer_ = std::thread([this] {
      WriterLoop();
      std::lock_guard l(mu_);
      writer_done_ = true;
      progress_.notify_all();
    });
  }
  void Stop();

  Status Append(AuditRecord record);
  Status Flush();
  Result<AuditPage> Query(const AuditQuery& q);
  int64_t committed() const {
    std::lock_guard l(mu_);
    return committed_events_;
  }

 private:
  void WriterLoop();
  Status WriteBatch(std::vector<AuditRecord>& batch);
  // Encodes, chains and inserts the first records of `records` as one block
  // (up to kBlockEvents, or until it holds kBlockBytes); returns how many.
  Result<size_t> WriteBlock(std::span<const AuditRecord> records, int64_t& seq, Hash& prev);
  // Writes the index rows of every unindexed block (the last one ends at
  // `through_seq`) and moves the mark past them.
  Status IndexBlocks(int64_t through_seq);
  // Appends matches from the blocks `st` yields (first_seq, records), newest
  // first; `keys` (a block's patients or agents, else null) skips blocks
  // without the value (for blocks not yet in the indexes).
  Status QueryBlockRows(Stmt& st, const AuditQuery& q, const std::string* key, size_t count, AuditPage& page,
                        int64_t& last_seq, bool& full);
  Status QueryBlocks(const AuditQuery& q, size_t count, AuditPage& page, int64_t& last_seq, bool& full);
  Status QueryLegacy(const AuditQuery& q, size_t count, AuditPage& page, int64_t& last_seq);

  AuditLogOptions options_;
  Db db_;  // the writer's connection (writer thread only, after Open)
  Stmt insert_block_, insert_patient_, insert_agent_, unindexed_, set_indexed_;
  Stmt insert_patients_, insert_agents_;  // kIndexRowsPerInsert rows each
  int64_t last_seq_ = 0;
  int64_t indexed_before_ = 1;    // the first block not in the indexes
  int64_t unindexed_blocks_ = 0;  // blocks from indexed_before_ on
  Hash last_hash_{};
  // The writer's scratch, kept between batches so that a batch allocates
  // nothing once they have grown.
  internal::EventHasher hasher_;
  std::unique_ptr<internal::ZstdContexts, void (*)(internal::ZstdContexts*)> zstd_ = internal::NewZstdContexts();
  std::string record_, raw_, hashes_, compressed_, patient_keys_, agent_keys_, key_arena_;
  std::vector<std::string_view> patients_, agents_;
  std::vector<std::pair<std::string_view, int64_t>> patient_rows_, agent_rows_;

  std::mutex reader_mu_;
  Db reader_;
  bool reader_open_ = false;
  bool has_legacy_ = false;  // the log holds format-1 rows (below the first block)
  std::unique_ptr<internal::ZstdContexts, void (*)(internal::ZstdContexts*)> reader_zstd_ = internal::NewZstdContexts();

  mutable std::mutex mu_;
  std::condition_variable not_empty_, not_full_, progress_;
  RecordQueue queue_;
  uint64_t appended_ = 0;  // records accepted by Append
  uint64_t written_ = 0;   // records committed
  int64_t committed_events_ = 0;
  int flush_waiters_ = 0;
  bool stop_ = false;
  bool writer_done_ = false;
  Status error_;  // the writer's last failure; cleared when a retry succeeds
  bool head_error_reported_ = false;
  std::thread writer_;
};

Status AuditLog::Impl::Open() {
  if (options_.path.empty()) return InvalidArgumentError("audit log: no path");
  options_.batch_limit = std::max<size_t>(options_.batch_limit, 1);
  options_.queue_limit = std::max(options_.queue_limit, options_.batch_limit);
  RETURN_IF_ERROR(db_.Open(options_.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX));
  RETURN_IF_ERROR(db_.Exec("PRAGMA journal_mode = WAL"));
  RETURN_IF_ERROR(db_.Exec("PRAGMA synchronous = FULL"));
  RETURN_IF_ERROR(db_.Exec("PRAGMA mmap_size = 268435456"));
  RETURN_IF_ERROR(db_.Exec("PRAGMA cache_size = -32768"));
  RETURN_IF_ERROR(db_.Exec("BEGIN IMMEDIATE"));
  std::string chain = options_.key.empty() ? "sha256" : "hmac-sha256";
  // A format-1 log (one row per event) gets the block tables next to its
  // rows: new events go to blocks, the old rows stay where they are and are
  // still read and verified. A log of a later format is left alone.
  Status st = db_.Exec(
      "CREATE TABLE IF NOT EXISTS audit_meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "INSERT OR IGNORE INTO audit_meta(name, value) VALUES ('format', '2')");
  std::string format;
  if (st.ok()) {
    auto f = MetaValue(db_, "format");
    st = f.status();
    if (f.ok()) format = *f;
    if (st.ok() && format != "1" && format != "2") {
      st = FailedPreconditionError("audit log " + options_.path + " has format '" + format +
                                   "', which this version of Bevan cannot write; use a newer Bevan");
    }
  }
  if (st.ok()) st = db_.Exec(kSchema);
  if (st.ok() && format == "1") st = db_.Exec("UPDATE audit_meta SET value = '2' WHERE name = 'format'");
  if (st.ok()) {
    Stmt meta;
    st = meta.Prepare(db_,
                      "INSERT OR IGNORE INTO audit_meta(name, value) VALUES ('chain', ?), ('key_check', ?), "
                      "('indexed_before', '1')");
    std::string check = options_.key.empty() ? "" : internal::KeyCheck(options_.key);
    meta.Bind(1, chain);
    meta.Bind(2, check);
    if (st.ok() && meta.Step() != SQLITE_DONE) st = db_.Error("metadata");
  }
  if (!st.ok()) {
    (void)db_.Exec("ROLLBACK");
    return st;
  }
  RETURN_IF_ERROR(db_.Exec("COMMIT"));

  ASSIGN_OR_RETURN(std::string stored_chain, MetaValue(db_, "chain"));
  if (stored_chain != chain) {
    return FailedPreconditionError("audit log " + options_.path + " uses a " + stored_chain + " chain but " +
                                   (options_.key.empty() ? "no key is set (BEVAN_AUDIT_KEY)" : "a key is set"));
  }
  if (!options_.key.empty()) {
    ASSIGN_OR_RETURN(std::string check, MetaValue(db_, "key_check"));
    if (check != internal::KeyCheck(options_.key)) {
      return FailedPreconditionError("audit log " + options_.path + " was written with a different key");
    }
  }

  {
    Stmt legacy;
    RETURN_IF_ERROR(legacy.Prepare(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'"));
    has_legacy_ = legacy.Step() == SQLITE_ROW;
  }
  auto take_hash = [&](std::string_view h) {
    if (h.size() < last_hash_.size()) return false;
    std::memcpy(last_hash_.data(), h.data() + h.size() - last_hash_.size(), last_hash_.size());
    return true;
  };
  Stmt last;
  RETURN_IF_ERROR(last.Prepare(db_, "SELECT last_seq, hashes FROM audit_block ORDER BY first_seq DESC LIMIT 1"));
  if (last.Step() == SQLITE_ROW) {
    last_seq_ = last.Int(0);
    if (!take_hash(last.Blob(1))) return FailedPreconditionError("audit log: the last block's hashes are malformed");
  } else if (has_legacy_) {
    RETURN_IF_ERROR(last.Prepare(db_, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
    if (last.Step() == SQLITE_ROW) {
      last_seq_ = last.Int(0);
      if (last.Blob(1).size() != last_hash_.size() || !take_hash(last.Blob(1))) {
        return FailedPreconditionError("audit log: the last event's hash is malformed");
      }
    }
  }
  auto head = internal::ReadHead(options_.path);
  if (!head.ok() && (head.status().code() != StatusCode::kNotFound || last_seq_ != 0)) {
    return FailedPreconditionError(head.status().message() + " for a non-empty audit log; run `bevan audit verify`");
  }
  if (head.ok() && (head->seq > last_seq_)) {
    return FailedPreconditionError("audit log " + options_.path + " ends at event " + std::to_string(last_seq_) +
                                   " but its head file names event " + std::to_string(head->seq) +
                                   ": the tail was removed; run `bevan audit verify`");
  }
  // A head behind the log is a crash between a commit and the head update.
  RETURN_IF_ERROR(internal::WriteHead(options_.path, {last_seq_, internal::Hex(last_hash_)}));

  ASSIGN_OR_RETURN(std::string indexed, MetaValue(db_, "indexed_before"));
  indexed_before_ = std::atoll(indexed.c_str());
  {
    Stmt tail;
    RETURN_IF_ERROR(tail.Prepare(db_, "SELECT count(*) FROM audit_block WHERE first_seq >= ?"));
    tail.Bind(1, indexed_before_);
    if (tail.Step() != SQLITE_ROW) return db_.Error("count blocks");
    unindexed_blocks_ = tail.Int(0);
  }
  RETURN_IF_ERROR(insert_block_.Prepare(db_,
                                        "INSERT INTO audit_block(first_seq, last_seq, min_time, max_time, prev_hash, "
                                        "patients, agents, hashes, records) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  RETURN_IF_ERROR(unindexed_.Prepare(
      db_, "SELECT first_seq, patients, agents FROM audit_block WHERE first_seq >= ? ORDER BY first_seq"));
  RETURN_IF_ERROR(set_indexed_.Prepare(db_, "UPDATE audit_meta SET value = ? WHERE name = 'indexed_before'"));
  for (auto [one, many, table] : {std::tuple{&insert_patient_, &insert_patients_, "audit_block_patient"},
                                  std::tuple{&insert_agent_, &insert_agents_, "audit_block_agent"}}) {
    std::string sql = std::string("INSERT INTO ") + table + " VALUES (?, ?)";
    RETURN_IF_ERROR(one->Prepare(db_, sql));
    for (size_t i = 1; i < kIndexRowsPerInsert; ++i) sql += ", (?, ?)";
    RETURN_IF_ERROR(many->Prepare(db_, sql));
  }
  committed_events_ = last_seq_;
  return Status::Ok();
}

Status AuditLog::Impl::Append(AuditRecord record) {
  if (record.time_us == 0) record.time_us = NowMicros();
  std::unique_lock l(mu_);
  if (stop_) return UnavailableError("audit log is closed");
  if (queue_.size() >= options_.queue_limit) {
    // Wait for room while the writer is making progress; while it is failing
    // (it retries) a full queue refuses at once rather than stall the caller.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.append_timeout_ms);
    not_full_.wait_until(l, deadline, [&] { return queue_.size() < options_.queue_limit || stop_ || !error_.ok(); });
    if (queue_.size() >= options_.queue_limit || stop_) {
      return UnavailableError(error_.ok() ? "audit log is full; the writer is behind"
                                          : "audit log cannot be written: " + error_.message());
    }
  }
  queue_.Push(std::move(record));
  ++appended_;
  // The writer waits either for a first record or for a full batch.
  if (queue_.size() == 1 || queue_.size() == options_.batch_limit) not_empty_.notify_one();
  return Status::Ok();
}

Status AuditLog::Impl::Flush() {
  std::unique_lock l(mu_);
  uint64_t target = appended_;
  ++flush_waiters_;
  not_empty_.notify_one();
  progress_.wait(l, [&] { return written_ >= target || !error_.ok() || writer_done_; });
  --flush_waiters_;
  if (written_ >= target) return Status::Ok();
  return error_.ok() ? UnavailableError("audit log is closed") : error_;
}

void AuditLog::Impl::WriterLoop() {
  std::vector<AuditRecord> batch;
  int failures_at_stop = 0;
  for (;;) {
    {
      std::unique_lock l(mu_);
      if (batch.empty()) {
        not_empty_.wait(l, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping and drained
        // Gather: a batch fills up, a flush is waiting, or the interval ends.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.batch_interval_ms);
        not_empty_.wait_until(l, deadline,
                              [&] { return stop_ || flush_waiters_ > 0 || queue_.size() >= options_.batch_limit; });
        queue_.TakeFront(batch);
        not_full_.notify_all();
      }
    }
    Status st = WriteBatch(batch);
    std::unique_lock l(mu_);
    if (st.ok()) {
      written_ += batch.size();
      committed_events_ = last_seq_;
      error_ = Status::Ok();
      l.unlock();
      // The records' strings are freed outside the lock, so that Append
      // need not wait for it.
      batch.clear();
      l.lock();
      queue_.Recycle(batch);
    } else {
      error_ = st;
      not_full_.notify_all();
      // Keep the batch and retry: a full disk may clear. At shutdown give up
      // after a few tries rather than hang, and say how much was lost.
      if (stop_ && ++failures_at_stop >= 5) {
        std::fprintf(stderr, "bevan: audit log: %zu events could not be written: %s\n", batch.size() + queue_.size(),
                     st.message().c_str());
        written_ += batch.size() + queue_.size();
        queue_.Clear();
        batch.clear();
        progress_.notify_all();
        return;
      }
      progress_.notify_all();
      progress_.wait_for(l, std::chrono::milliseconds(200));
      continue;
    }
    progress_.notify_all();
  }
}

Result<size_t> AuditLog::Impl::WriteBlock(std::span<const AuditRecord> records, int64_t& seq, Hash& prev) {
  const int64_t first = seq + 1;
  const Hash block_prev = prev;
  int64_t min_time = INT64_MAX, max_time = INT64_MIN;
  raw_.clear();
  hashes_.clear();
  patients_.clear();
  agents_.clear();
  size_t n = 0;
  while (n < records.size() && n < internal::kBlockEvents && raw_.size() < internal::kBlockBytes) {
    const AuditRecord& r = records[n++];
    ++seq;
    record_.clear();
    internal::AppendRecord(r, record_);
    prev = hasher_.Next(prev, seq, record_);
    hashes_.append(reinterpret_cast<const char*>(prev.data()), prev.size());
    internal::AppendFramed(record_, raw_);
    min_time = std::min(min_time, r.time_us);
    max_time = std::max(max_time, r.time_us);
    for (const std::string& p : r.patients) Collect(patients_, p);
    Collect(agents_, !r.user.empty() ? std::string_view(r.user) : std::string_view(r.client_id));
  }
  RETURN_IF_ERROR(internal::CompressBlock(*zstd_, raw_, compressed_));
  SortUnique(patients_);
  SortUnique(agents_);
  patient_keys_.clear();
  agent_keys_.clear();
  internal::AppendKeys(patients_, patient_keys_);
  internal::AppendKeys(agents_, agent_keys_);
  insert_block_.Bind(1, first);
  insert_block_.Bind(2, seq);
  insert_block_.Bind(3, min_time);
  insert_block_.Bind(4, max_time);
  insert_block_.BindBlob(5, block_prev.data(), block_prev.size());
  insert_block_.BindBlob(6, patient_keys_.data(), patient_keys_.size());
  insert_block_.BindBlob(7, agent_keys_.data(), agent_keys_.size());
  insert_block_.BindBlob(8, hashes_.data(), hashes_.size());
  insert_block_.BindBlob(9, compressed_.data(), compressed_.size());
  int rc = insert_block_.Step();
  insert_block_.Reset();
  if (rc != SQLITE_DONE) return db_.Error("insert block");
  return n;
}

Status AuditLog::Impl::IndexBlocks(int64_t through_seq) {
  key_arena_.clear();
  patient_rows_.clear();
  agent_rows_.clear();
  // The keys are copied into one arena first (the column memory lasts only
  // until the next step); views into it are taken once it stops growing.
  std::vector<std::pair<size_t, int64_t>> spans;  // (arena offset of a block's keys, block)
  unindexed_.Bind(1, indexed_before_);
  int rc;
  while ((rc = unindexed_.Step()) == SQLITE_ROW) {
    spans.emplace_back(key_arena_.size(), unindexed_.Int(0));
    for (int col : {1, 2}) internal::AppendFramed(unindexed_.Blob(col), key_arena_);
  }
  unindexed_.Reset();
  if (rc != SQLITE_DONE) return db_.Error("read unindexed blocks");
  for (auto [offset, block] : spans) {
    std::string_view in = std::string_view(key_arena_).substr(offset), blob;
    for (auto* rows : {&patient_rows_, &agent_rows_}) {
      if (!internal::GetString(in, blob) || !internal::SplitKeys(blob, patients_)) {
        return InternalError("audit log: the keys of block " + std::to_string(block) + " are malformed");
      }
      for (std::string_view k : patients_) rows->emplace_back(k, block);
    }
  }
  // In key order: each index page is visited once. Many rows per statement:
  // a statement's step, reset and bindings cost about as much as a row.
  for (auto [one, many, rows] : {std::tuple{&insert_patient_, &insert_patients_, &patient_rows_},
                                 std::tuple{&insert_agent_, &insert_agents_, &agent_rows_}}) {
    std::sort(rows->begin(), rows->end());
    for (size_t i = 0; i < rows->size();) {
      Stmt* stmt = rows->size() - i >= kIndexRowsPerInsert ? many : one;
      int n = stmt == many ? static_cast<int>(kIndexRowsPerInsert) : 1;
      for (int j = 0; j < n; ++j, ++i) {
        stmt->Bind(2 * j + 1, (*rows)[i].first);
        stmt->Bind(2 * j + 2, (*rows)[i].second);
      }
      rc = stmt->Step();
      stmt->Reset();
      if (rc != SQLITE_DONE) return db_.Error("insert index");
    }
  }
  std::string next = std::to_string(through_seq + 1);
  set_indexed_.Bind(1, next);
  rc = set_indexed_.Step();
  set_indexed_.Reset();
  if (rc != SQLITE_DONE) return db_.Error("update index mark");
  return Status::Ok();
}

Status AuditLog::Impl::WriteBatch(std::vector<AuditRecord>& batch) {
  RETURN_IF_ERROR(db_.Exec("BEGIN IMMEDIATE"));
  int64_t seq = last_seq_;
  Hash prev = last_hash_;
  std::span<const AuditRecord> rest(batch);
  int64_t blocks = unindexed_blocks_;
  Status st;
  while (st.ok() && !rest.empty()) {
    auto n = WriteBlock(rest, seq, prev);
    st = n.status();
    if (n.ok()) rest = rest.subspan(*n);
    ++blocks;
  }
  bool index = st.ok() && blocks >= internal::kIndexLag;
  if (index) st = IndexBlocks(seq);
  if (!st.ok()) {
    (void)db_.Exec("ROLLBACK");
    return st;
  }
  if (sqlite3_exec(db_.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    st = db_.Error("commit");
    (void)db_.Exec("ROLLBACK");
    return st;
  }
  last_seq_ = seq;
  last_hash_ = prev;
  if (index) {
    indexed_before_ = seq + 1;
    unindexed_blocks_ = 0;
  } else {
    unindexed_blocks_ = blocks;
  }
  // After the commit: a crash in between leaves the head behind the log,
  // which Open and Verify accept; never ahead of it.
  Status head = internal::WriteHead(options_.path, {last_seq_, internal::Hex(last_hash_)});
  if (!head.ok() && !head_error_reported_) {
    head_error_reported_ = true;
    std::fprintf(stderr, "bevan: audit log: %s\n", head.message().c_str());
  }
  return Status::Ok();
}

void AuditLog::Impl::Stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  not_empty_.notify_all();
  not_full_.notify_all();
  progress_.notify_all();
  if (writer_.joinable()) writer_.join();
}

Result<AuditPage> AuditLog::Impl::Query(const AuditQuery& q) {
  std::lock_guard l(reader_mu_);
  if (!reader_open_) {
    RETURN_IF_ERROR(reader_.Open(options_.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX));
    reader_open_ = true;
  }
  size_t count = std::clamp<size_t>(q.count, 1, 1000);
  AuditPage page;
  int64_t last_seq = 0;
  bool full = false;
  // One snapshot: the index mark, the unindexed blocks and the indexes must
  // agree, or a run of indexing committed in between could hide blocks.
  RETURN_IF_ERROR(reader_.Exec("BEGIN"));
  Status st = QueryBlocks(q, count, page, last_seq, full);
  // Format-1 rows are all older than the first block.
  if (st.ok() && !full && has_legacy_) st = QueryLegacy(q, count, page, last_seq);
  (void)reader_.Exec("COMMIT");
  RETURN_IF_ERROR(st);
  return page;
}

Status AuditLog::Impl::QueryBlockRows(Stmt& st, const AuditQuery& q, const std::string* key, size_t count,
                                      AuditPage& page, int64_t& last_seq, bool& full) {
  std::string raw;
  std::vector<std::string_view> records;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    int64_t first = st.Int(0);
    auto unreadable = [&] {
      return InternalError("audit log: the block of event " + std::to_string(first) + " is unreadable");
    };
    if (key != nullptr && !internal::KeysContain(st.Blob(2), *key)) continue;
    if (!internal::DecompressBlock(*reader_zstd_, st.Blob(1), internal::kBlockDecodeLimit, raw).ok() ||
        !internal::SplitRecords(raw, records)) {
      return unreadable();
    }
    for (size_t i = records.size(); i-- > 0;) {
      int64_t seq = first + static_cast<int64_t>(i);
      if (q.before_seq != 0 && seq >= q.before_seq) continue;
      internal::RecordHead h;
      if (!internal::PeekRecord(records[i], h)) return unreadable();
      if ((!q.agent.empty() && h.agent() != q.agent) || (q.action != 0 && h.action != q.action) ||
          (q.outcome >= 0 && h.outcome != q.outcome) || (q.since_us != 0 && h.time_us < q.since_us) ||
          (q.until_us != 0 && h.time_us >= q.until_us) || (!q.patient.empty() && !h.HasPatient(q.patient))) {
        continue;
      }
      if (page.events.size() == count) {
        page.next_before_seq = last_seq;
        full = true;
        return Status::Ok();
      }
      auto record = internal::DecodeBinaryRecord(records[i]);
      if (!record.ok()) return unreadable();
      last_seq = seq;
      page.events.push_back(ToAuditEventJson(*record, seq, options_.observer));
    }
  }
  if (rc != SQLITE_DONE) return reader_.Error("query");
  return Status::Ok();
}

// Blocks newest first: with a patient (or agent), first the unindexed tail
// (fewer than kIndexLag blocks, skipped by their key lists), then the
// blocks the index names; otherwise every block whose time range overlaps.
// Each visited block is decoded and its events filtered, newest first.
Status AuditLog::Impl::QueryBlocks(const AuditQuery& q, size_t count, AuditPage& page, int64_t& last_seq, bool& full) {
  std::string time_sql;
  if (q.since_us != 0) time_sql += " AND b.max_time >= ?4";
  if (q.until_us != 0) time_sql += " AND b.min_time < ?5";
  auto bind = [&](Stmt& st) {
    if (q.before_seq != 0) st.Bind(3, q.before_seq);
    if (q.since_us != 0) st.Bind(4, q.since_us);
    if (q.until_us != 0) st.Bind(5, q.until_us);
  };
  const std::string before_sql = q.before_seq != 0 ? " AND b.first_seq < ?3" : "";
  if (q.patient.empty() && q.agent.empty()) {
    Stmt st;
    RETURN_IF_ERROR(st.Prepare(reader_, "SELECT b.first_seq, b.records FROM audit_block b WHERE 1" + before_sql +
                                            time_sql + " ORDER BY b.first_seq DESC"));
    bind(st);
    return QueryBlockRows(st, q, nullptr, count, page, last_seq, full);
  }
  const bool by_patient = !q.patient.empty();
  const std::string& key = by_patient ? q.patient : q.agent;
  const char* column = by_patient ? "patient" : "agent";
  auto mark = MetaValue(reader_, "indexed_before");
  if (!mark.ok() && mark.status().code() != StatusCode::kNotFound) return mark.status();
  // Without a mark every block counts as unindexed: slower, never incomplete.
  const int64_t indexed_before = mark.ok() ? std::max<int64_t>(std::atoll(mark->c_str()), 1) : 1;

  Stmt tail;
  RETURN_IF_ERROR(tail.Prepare(reader_, std::string("SELECT b.first_seq, b.records, b.") + column +
                                            "s FROM audit_block b WHERE b.first_seq >= ?1" + before_sql + time_sql +
                                            " ORDER BY b.first_seq DESC"));
  tail.Bind(1, indexed_before);
  bind(tail);
  RETURN_IF_ERROR(QueryBlockRows(tail, q, &key, count, page, last_seq, full));
  if (full) return Status::Ok();

  Stmt indexed;
  RETURN_IF_ERROR(indexed.Prepare(
      reader_, std::string("SELECT b.first_seq, b.records FROM audit_block_") + column +
                   " x JOIN audit_block b ON b.first_seq = x.block WHERE x." + column + " = ?2 AND x.block < ?1" +
                   (q.before_seq != 0 ? " AND x.block < ?3" : "") + time_sql + " ORDER BY x.block DESC"));
  indexed.Bind(1, indexed_before);
  indexed.Bind(2, std::string_view(key));
  bind(indexed);
  return QueryBlockRows(indexed, q, nullptr, count, page, last_seq, full);
}

// Format 1: one row per event, as that format's writer left them.
Status AuditLog::Impl::QueryLegacy(const AuditQuery& q, size_t count, AuditPage& page, int64_t& last_seq) {
  std::string sql;
  if (!q.patient.empty()) {
    sql = "SELECT a.seq, a.record FROM audit_patient p JOIN audit a ON a.seq = p.seq WHERE p.patient = ?1";
  } else {
    sql = "SELECT a.seq, a.record FROM audit a WHERE 1";
  }
  if (!q.agent.empty()) sql += " AND a.agent = ?2";
  if (q.action != 0) sql += " AND a.action = ?3";
  if (q.outcome >= 0) sql += " AND a.outcome = ?4";
  if (q.since_us != 0) sql += " AND a.time >= ?5";
  if (q.until_us != 0) sql += " AND a.time < ?6";
  if (q.before_seq != 0) sql += q.patient.empty() ? " AND a.seq < ?7" : " AND p.seq < ?7";
  sql += q.patient.empty() ? " ORDER BY a.seq DESC LIMIT ?8" : " ORDER BY p.seq DESC LIMIT ?8";
  Stmt st;
  RETURN_IF_ERROR(st.Prepare(reader_, sql));
  char action[1] = {q.action};
  if (!q.patient.empty()) st.Bind(1, std::string_view(q.patient));
  if (!q.agent.empty()) st.Bind(2, std::string_view(q.agent));
  if (q.action != 0) st.Bind(3, std::string_view(action, 1));
  if (q.outcome >= 0) st.Bind(4, static_cast<int64_t>(q.outcome));
  if (q.since_us != 0) st.Bind(5, q.since_us);
  if (q.until_us != 0) st.Bind(6, q.until_us);
  if (q.before_seq != 0) st.Bind(7, q.before_seq);
  st.Bind(8, static_cast<int64_t>(count - page.events.size() + 1));
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    if (page.events.size() == count) {
      page.next_before_seq = last_seq;
      break;
    }
    last_seq = st.Int(0);
    auto record = internal::DecodeRecord(st.Text(1));
    if (!record.ok()) return InternalError("audit log: event " + std::to_string(last_seq) + " is unreadable");
    page.events.push_back(ToAuditEventJson(*record, last_seq, options_.observer));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return reader_.Error("query");
  return Status::Ok();
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(AuditLogOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  RETURN_IF_ERROR(impl->Open());
  impl->StartWriter();
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(impl)));
}

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditLog::~AuditLog() { impl_->Stop(); }
Status AuditLog::Append(AuditRecord record) { return impl_->Append(std::move(record)); }
Status AuditLog::Flush() { return impl_->Flush(); }
Result<AuditPage> AuditLog::Query(const AuditQuery& q) { return impl_->Query(q); }
int64_t AuditLog::committed() const { return impl_->committed(); }

std::string KeyFromEnvironment() {
  const char* k = std::getenv("BEVAN_AUDIT_KEY");
  return k ? std::string(k) : std::string();
}

}  // namespace bevan::audit
