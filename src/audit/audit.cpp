#include "audit/audit.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "audit/internal.h"
#include "audit/sqlite_util.h"

namespace bevan::audit {

using internal::ChainedRow;
using internal::Db;
using internal::Hash;
using internal::Stmt;

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS audit_meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit(
  seq INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  agent TEXT NOT NULL,
  action TEXT NOT NULL,
  outcome INTEGER NOT NULL,
  patients TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL,
  record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time);
CREATE INDEX IF NOT EXISTS audit_agent ON audit(agent);
CREATE TABLE IF NOT EXISTS audit_patient(patient TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY(patient, seq))
  WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_patient_no_update BEFORE UPDATE ON audit_patient
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_patient_no_delete BEFORE DELETE ON audit_patient
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql";

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The patients of a record, unique, in first-seen order, joined by '\n'.
std::vector<std::string_view> UniquePatients(const AuditRecord& r) {
  std::vector<std::string_view> out;
  for (const auto& p : r.patients) {
    if (!p.empty() && std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  }
  return out;
}

std::string Join(const std::vector<std::string_view>& v) {
  std::string s;
  for (auto p : v) {
    if (!s.empty()) s += '\n';
    s += p;
  }
  return s;
}

Result<std::string> MetaValue(Db& db, const char* name) {
  Stmt st;
  RETURN_IF_ERROR(st.Prepare(db, "SELECT value FROM audit_meta WHERE name = ?"));
  st.Bind(1, std::string_view(name));
  if (st.Step() != SQLITE_ROW) return NotFoundError(name);
  return std::string(st.Text(0));
}

}  // namespace

class AuditLog::Impl {
 public:
  explicit Impl(AuditLogOptions options) : options_(std::move(options)) {}

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

  AuditLogOptions options_;
  Db db_;  // the writer's connection (writer thread only, after Open)
  Stmt insert_, insert_patient_;
  int64_t last_seq_ = 0;
  Hash last_hash_{};

  std::mutex reader_mu_;
  Db reader_;
  bool reader_open_ = false;

  mutable std::mutex mu_;
  std::condition_variable not_empty_, not_full_, progress_;
  std::deque<AuditRecord> queue_;
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
  // Pages through the map and a larger cache: profiles showed the writer's
  // time going to pread copies of index and WAL pages.
  RETURN_IF_ERROR(db_.Exec("PRAGMA mmap_size = 268435456"));
  RETURN_IF_ERROR(db_.Exec("PRAGMA cache_size = -32768"));
  RETURN_IF_ERROR(db_.Exec("BEGIN IMMEDIATE"));
  Status st = db_.Exec(kSchema);
  std::string chain = options_.key.empty() ? "sha256" : "hmac-sha256";
  if (st.ok()) {
    Stmt meta;
    st = meta.Prepare(db_,
                      "INSERT OR IGNORE INTO audit_meta(name, value) VALUES ('format', '1'), ('chain', ?), "
                      "('key_check', ?)");
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

  Stmt last;
  RETURN_IF_ERROR(last.Prepare(db_, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
  if (last.Step() == SQLITE_ROW) {
    last_seq_ = last.Int(0);
    std::string_view h = last.Blob(1);
    if (h.size() != last_hash_.size()) return FailedPreconditionError("audit log: the last event's hash is malformed");
    std::memcpy(last_hash_.data(), h.data(), h.size());
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

  RETURN_IF_ERROR(insert_.Prepare(db_,
                                  "INSERT INTO audit(seq, time, agent, action, outcome, patients, prev_hash, hash, "
                                  "record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  RETURN_IF_ERROR(insert_patient_.Prepare(db_, "INSERT INTO audit_patient(patient, seq) VALUES (?, ?)"));
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
  queue_.push_back(std::move(record));
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
        size_t n = std::min(queue_.size(), options_.batch_limit);
        batch.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        not_full_.notify_all();
      }
    }
    Status st = WriteBatch(batch);
    std::unique_lock l(mu_);
    if (st.ok()) {
      written_ += batch.size();
      committed_events_ = last_seq_;
      error_ = Status::Ok();
      batch.clear();
    } else {
      error_ = st;
      not_full_.notify_all();
      // Keep the batch and retry: a full disk may clear. At shutdown give up
      // after a few tries rather than hang, and say how much was lost.
      if (stop_ && ++failures_at_stop >= 5) {
        std::fprintf(stderr, "bevan: audit log: %zu events could not be written: %s\n", batch.size() + queue_.size(),
                     st.message().c_str());
        written_ += batch.size() + queue_.size();
        queue_.clear();
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

Status AuditLog::Impl::WriteBatch(std::vector<AuditRecord>& batch) {
  RETURN_IF_ERROR(db_.Exec("BEGIN IMMEDIATE"));
  int64_t seq = last_seq_;
  Hash prev = last_hash_;
  auto fail = [&](std::string_view what) {
    Status st = db_.Error(what);
    insert_.Reset();
    insert_patient_.Reset();
    (void)db_.Exec("ROLLBACK");
    return st;
  };
  for (const AuditRecord& r : batch) {
    ++seq;
    std::string record = internal::EncodeRecord(r);
    std::vector<std::string_view> patients = UniquePatients(r);
    std::string joined = Join(patients);
    ChainedRow row;
    row.seq = seq;
    row.time_us = r.time_us;
    row.agent = !r.user.empty() ? std::string_view(r.user) : std::string_view(r.client_id);
    row.action = static_cast<char>(r.action);
    row.outcome = static_cast<int>(r.outcome);
    row.patients = joined;
    row.record = record;
    Hash hash = internal::ChainHash(prev, row, options_.key);
    char action[1] = {row.action};
    insert_.Bind(1, seq);
    insert_.Bind(2, row.time_us);
    insert_.Bind(3, row.agent);
    insert_.Bind(4, std::string_view(action, 1));
    insert_.Bind(5, static_cast<int64_t>(row.outcome));
    insert_.Bind(6, row.patients);
    insert_.BindBlob(7, prev.data(), prev.size());
    insert_.BindBlob(8, hash.data(), hash.size());
    insert_.Bind(9, row.record);
    if (insert_.Step() != SQLITE_DONE) return fail("insert");
    insert_.Reset();
    for (std::string_view p : patients) {
      insert_patient_.Bind(1, p);
      insert_patient_.Bind(2, seq);
      if (insert_patient_.Step() != SQLITE_DONE) return fail("insert patient");
      insert_patient_.Reset();
    }
    prev = hash;
  }
  if (sqlite3_exec(db_.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return fail("commit");
  last_seq_ = seq;
  last_hash_ = prev;
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
  st.Bind(8, static_cast<int64_t>(count + 1));
  AuditPage page;
  int64_t last_seq = 0;
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
  return page;
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
