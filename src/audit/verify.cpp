// Verify: one pass over the log in seq order (format-1 rows first, then the
// blocks), each merged with its indexes, then the head file.
#include <algorithm>
#include <cstring>
#include <optional>

#include "audit/audit.h"
#include "audit/internal.h"
#include "audit/sqlite_util.h"

namespace bevan::audit {

using internal::ChainedRow;
using internal::Db;
using internal::Hash;
using internal::Stmt;

namespace {

std::string Ev(int64_t seq) { return "event " + std::to_string(seq); }

bool SameHash(std::string_view stored, const Hash& h) {
  return stored.size() == h.size() && std::memcmp(stored.data(), h.data(), h.size()) == 0;
}

// The state of one pass along the chain.
class Walk {
 public:
  Walk(const std::string& path, const std::string& key) : key_(key), head_(internal::ReadHead(path)) {}

  const std::string& key() const { return key_; }
  const Hash& running() const { return running_; }
  int64_t expected() const { return expected_; }
  const Result<internal::Head>& head() const { return head_; }
  VerifyReport& report() { return report_; }
  bool failed() const { return failed_; }

  void Fail(int64_t seq, std::string problem) {
    failed_ = true;
    report_.ok = false;
    report_.bad_seq = seq;
    report_.problem = std::move(problem);
  }

  // Whether `seq` is the next event; else records why not.
  bool CheckSeq(int64_t seq) {
    if (seq == expected_) return true;
    if (seq > expected_) {
      std::string which = seq == expected_ + 1
                              ? Ev(expected_)
                              : "events " + std::to_string(expected_) + " to " + std::to_string(seq - 1);
      Fail(expected_, which + " missing: deleted from the log");
    } else {
      Fail(seq, Ev(seq) + " has an invalid sequence number");
    }
    return false;
  }

  // Whether `prev` (a stored previous hash) is the running hash.
  bool CheckPrev(int64_t seq, std::string_view prev) {
    if (SameHash(prev, running_)) return true;
    Fail(seq, Ev(seq) + " does not follow " + (seq == 1 ? std::string("the start") : Ev(seq - 1)) +
                  " (its previous hash differs): events were reordered, replaced or inserted");
    return false;
  }

  // Event `seq` (the next one) hashed to `h`.
  void Accept(int64_t seq, const Hash& h) {
    running_ = h;
    if (head_.ok() && seq == head_->seq) hash_at_head_ = internal::Hex(h);
    report_.events = seq;
    ++expected_;
  }

  const std::string& hash_at_head() const { return hash_at_head_; }

 private:
  std::string key_;
  Result<internal::Head> head_;
  VerifyReport report_;
  Hash running_{};
  int64_t expected_ = 1;
  std::string hash_at_head_;
  bool failed_ = false;
};

bool HasTable(Db& db, const char* name) {
  Stmt st;
  if (!st.Prepare(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").ok()) return false;
  st.Bind(1, std::string_view(name));
  return st.Step() == SQLITE_ROW;
}

// Format 1: `audit` rows merged with `audit_patient`.
Status VerifyRows(Db& db, Walk& w) {
  Stmt rows, index;
  RETURN_IF_ERROR(rows.Prepare(db,
                               "SELECT seq, time, agent, action, outcome, patients, prev_hash, hash, record FROM audit "
                               "ORDER BY seq"));
  RETURN_IF_ERROR(index.Prepare(db, "SELECT seq, patient FROM audit_patient ORDER BY seq, patient"));
  int index_rc = index.Step();
  std::vector<std::string> listed, indexed;
  int rc;
  while ((rc = rows.Step()) == SQLITE_ROW) {
    int64_t seq = rows.Int(0);
    if (!w.CheckSeq(seq)) return Status::Ok();
    std::string_view action = rows.Text(3);
    ChainedRow row;
    row.seq = seq;
    row.time_us = rows.Int(1);
    row.agent = rows.Text(2);
    row.action = action.size() == 1 ? action[0] : '?';
    row.outcome = static_cast<int>(rows.Int(4));
    row.patients = rows.Text(5);
    row.record = rows.Text(8);
    if (!w.CheckPrev(seq, rows.Blob(6))) return Status::Ok();
    Hash h = internal::ChainHash(w.running(), row, w.key());
    if (!SameHash(rows.Blob(7), h)) {
      w.Fail(seq, Ev(seq) + " does not match its hash: its content or its hash was edited");
      return Status::Ok();
    }
    // The patient index rows of this event must be exactly its patients.
    listed.clear();
    for (size_t start = 0; start < row.patients.size();) {
      size_t end = row.patients.find('\n', start);
      if (end == std::string_view::npos) end = row.patients.size();
      listed.emplace_back(row.patients.substr(start, end - start));
      start = end + 1;
    }
    std::sort(listed.begin(), listed.end());
    indexed.clear();
    while (index_rc == SQLITE_ROW && index.Int(0) <= seq) {
      if (index.Int(0) < seq) {
        w.Fail(index.Int(0), "the patient index names a missing " + Ev(index.Int(0)));
        return Status::Ok();
      }
      indexed.emplace_back(index.Text(1));
      index_rc = index.Step();
    }
    if (listed != indexed) {
      w.Fail(seq, "the patient index does not match " + Ev(seq) + " (index rows edited or deleted)");
      return Status::Ok();
    }
    w.Accept(seq, h);
  }
  if (rc != SQLITE_DONE) return db.Error("read");
  if (index_rc == SQLITE_ROW) w.Fail(index.Int(0), "the patient index names a missing " + Ev(index.Int(0)));
  return Status::Ok();
}

// One index of blocks (patient or agent), read in block order alongside the
// blocks.
class BlockIndex {
 public:
  BlockIndex(const char* name, const char* column) : name_(name), column_(column) {}

  Status Prepare(Db& db) {
    RETURN_IF_ERROR(
        st_.Prepare(db, std::string("SELECT block, ") + column_ + " FROM " + table() + " ORDER BY block, " + column_));
    rc_ = st_.Step();
    return Status::Ok();
  }
  std::string table() const { return std::string("audit_block_") + column_; }

  // Checks that the index rows of the block starting at `first` are exactly
  // `values` (sorted, unique); `first_with` names the first event holding a
  // value, for the report.
  template <class FirstWith>
  bool Check(Walk& w, int64_t first, const std::vector<std::string_view>& values, FirstWith first_with) {
    indexed_.clear();
    while (rc_ == SQLITE_ROW && st_.Int(0) <= first) {
      if (st_.Int(0) < first) {
        w.Fail(st_.Int(0), std::string("the ") + name_ + " index names a missing block at " + Ev(st_.Int(0)));
        return false;
      }
      indexed_.emplace_back(st_.Text(1));
      rc_ = st_.Step();
    }
    std::sort(indexed_.begin(), indexed_.end());
    if (std::equal(values.begin(), values.end(), indexed_.begin(), indexed_.end())) return true;
    // The first event holding a value the index lacks, else the block.
    int64_t bad = INT64_MAX;
    for (std::string_view v : values) {
      if (!std::binary_search(indexed_.begin(), indexed_.end(), v)) bad = std::min(bad, first_with(v));
    }
    if (bad == INT64_MAX) bad = first;
    w.Fail(bad, std::string("the ") + name_ + " index does not match " + Ev(bad) + " (index rows edited or deleted)");
    return false;
  }

  // After the last block: any row left names no block.
  bool CheckEnd(Walk& w) {
    if (rc_ != SQLITE_ROW) return true;
    w.Fail(st_.Int(0), std::string("the ") + name_ + " index names a missing block at " + Ev(st_.Int(0)));
    return false;
  }

 private:
  const char* name_;
  const char* column_;
  Stmt st_;
  int rc_ = SQLITE_DONE;
  std::vector<std::string> indexed_;
};

// Format 2: blocks, their per-event hashes, their key lists and the block
// indexes (blocks from `indexed_before` on must have no index rows yet).
Status VerifyBlocks(Db& db, Walk& w, int64_t indexed_before) {
  Stmt blocks;
  RETURN_IF_ERROR(blocks.Prepare(db,
                                 "SELECT first_seq, last_seq, min_time, max_time, prev_hash, hashes, records, "
                                 "patients, agents FROM audit_block ORDER BY first_seq"));
  BlockIndex patients("patient", "patient"), agents("agent", "agent");
  RETURN_IF_ERROR(patients.Prepare(db));
  RETURN_IF_ERROR(agents.Prepare(db));
  internal::EventHasher hasher(w.key());
  auto zstd = internal::NewZstdContexts();
  std::string raw;
  std::vector<std::string_view> records, block_patients, block_agents, stored_keys;
  const std::vector<std::string_view> none;
  std::vector<internal::RecordHead> heads;
  int rc;
  while ((rc = blocks.Step()) == SQLITE_ROW) {
    const int64_t first = blocks.Int(0), last = blocks.Int(1);
    if (!w.CheckSeq(first) || !w.CheckPrev(first, blocks.Blob(4))) return Status::Ok();
    std::string range = "events " + std::to_string(first) + " to " + std::to_string(last);
    if (!internal::DecompressBlock(*zstd, blocks.Blob(6), internal::kBlockDecodeLimit, raw).ok() ||
        !internal::SplitRecords(raw, records)) {
      w.Fail(first, "the block of " + range + " cannot be decoded: it was edited");
      return Status::Ok();
    }
    std::string_view hashes = blocks.Blob(5);
    size_t n = std::min(records.size(), hashes.size() / sizeof(Hash));
    heads.assign(n, {});
    int64_t min_time = INT64_MAX, max_time = INT64_MIN;
    block_patients.clear();
    block_agents.clear();
    for (size_t i = 0; i < n; ++i) {
      int64_t seq = first + static_cast<int64_t>(i);
      Hash h = hasher.Next(w.running(), seq, records[i]);
      if (!SameHash(hashes.substr(i * sizeof(Hash), sizeof(Hash)), h)) {
        w.Fail(seq, Ev(seq) + " does not match its hash: its content or its hash was edited");
        return Status::Ok();
      }
      if (!internal::PeekRecord(records[i], heads[i])) {
        w.Fail(seq, Ev(seq) + " is not a well-formed record");
        return Status::Ok();
      }
      min_time = std::min(min_time, heads[i].time_us);
      max_time = std::max(max_time, heads[i].time_us);
      heads[i].ForEachPatient([&](std::string_view p) {
        if (!p.empty()) block_patients.push_back(p);
      });
      if (!heads[i].agent().empty()) block_agents.push_back(heads[i].agent());
      w.Accept(seq, h);
    }
    if (records.size() != hashes.size() / sizeof(Hash) || hashes.size() % sizeof(Hash) != 0 ||
        last != first + static_cast<int64_t>(n) - 1) {
      w.Fail(first + static_cast<int64_t>(n), "the block of " + range + " holds " + std::to_string(records.size()) +
                                                  " events and " + std::to_string(hashes.size() / sizeof(Hash)) +
                                                  " hashes: events were removed or added");
      return Status::Ok();
    }
    if (min_time != blocks.Int(2) || max_time != blocks.Int(3)) {
      w.Fail(first, "the time range of the block of " + range + " does not match its events (edited)");
      return Status::Ok();
    }
    for (auto* v : {&block_patients, &block_agents}) {
      std::sort(v->begin(), v->end());
      v->erase(std::unique(v->begin(), v->end()), v->end());
    }
    for (auto [col, keys, what] :
         {std::tuple{7, &block_patients, "patients"}, std::tuple{8, &block_agents, "agents"}}) {
      if (!internal::SplitKeys(blocks.Blob(col), stored_keys) || stored_keys != *keys) {
        w.Fail(first, std::string("the list of ") + what + " of the block of " + range +
                          " does not match its events (edited)");
        return Status::Ok();
      }
    }
    const bool indexed = first < indexed_before;
    auto first_with = [&](auto holds) {
      for (size_t i = 0; i < n; ++i) {
        if (holds(heads[i])) return first + static_cast<int64_t>(i);
      }
      return first;
    };
    if (!patients.Check(w, first, indexed ? block_patients : none, [&](std::string_view v) {
          return first_with([&](const internal::RecordHead& h) { return h.HasPatient(v); });
        })) {
      return Status::Ok();
    }
    if (!agents.Check(w, first, indexed ? block_agents : none, [&](std::string_view v) {
          return first_with([&](const internal::RecordHead& h) { return h.agent() == v; });
        })) {
      return Status::Ok();
    }
  }
  if (rc != SQLITE_DONE) return db.Error("read");
  if (patients.CheckEnd(w)) (void)agents.CheckEnd(w);
  return Status::Ok();
}

}  // namespace

Result<VerifyReport> Verify(const std::string& path, const std::string& key) {
  Db db;
  RETURN_IF_ERROR(db.Open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX));
  Walk w(path, key);
  VerifyReport& report = w.report();
  Stmt meta;
  RETURN_IF_ERROR(meta.Prepare(db,
                               "SELECT (SELECT value FROM audit_meta WHERE name = 'chain'), "
                               "(SELECT value FROM audit_meta WHERE name = 'key_check'), "
                               "(SELECT value FROM audit_meta WHERE name = 'format'), "
                               "(SELECT value FROM audit_meta WHERE name = 'indexed_before')"));
  if (meta.Step() != SQLITE_ROW) return db.Error("metadata");
  std::string chain(meta.Text(0)), key_check(meta.Text(1)), format(meta.Text(2));
  const int64_t indexed_before = meta.Int(3);
  if (chain == "hmac-sha256") {
    if (key.empty())
      w.Fail(0, "the log is keyed (HMAC-SHA256): set BEVAN_AUDIT_KEY to verify it");
    else if (key_check != internal::KeyCheck(key))
      w.Fail(0, "BEVAN_AUDIT_KEY is not the key of this log");
  } else if (chain == "sha256") {
    if (!key.empty()) w.Fail(0, "BEVAN_AUDIT_KEY is set but the log is not keyed (was its chain downgraded?)");
  } else {
    w.Fail(0, "unknown chain '" + chain + "' in the log's metadata");
  }
  if (!w.failed() && format != "1" && format != "2") {
    w.Fail(0, "unknown format '" + format + "' in the log's metadata (written by a newer Bevan?)");
  }
  if (w.failed()) return report;

  if (HasTable(db, "audit")) RETURN_IF_ERROR(VerifyRows(db, w));
  if (w.failed()) return report;
  if (HasTable(db, "audit_block")) {
    RETURN_IF_ERROR(VerifyBlocks(db, w, indexed_before));
  } else if (format == "2") {
    w.Fail(0, "the log's blocks table is missing");
  }
  if (w.failed()) return report;

  report.head = internal::Hex(w.running());
  const auto& head = w.head();
  if (head.ok() && head->seq > report.events) {
    w.Fail(report.events + 1, "the log ends at event " + std::to_string(report.events) +
                                  " but its head file names event " + std::to_string(head->seq) +
                                  ": the tail was removed");
    return report;
  }
  if (!head.ok()) {
    if (head.status().code() == StatusCode::kNotFound && report.events == 0) {
      report.ok = true;
      return report;
    }
    w.Fail(0, head.status().message());
    return report;
  }
  if (head->seq > 0 && w.hash_at_head() != head->hash_hex) {
    w.Fail(head->seq, "the head file's hash does not match " + Ev(head->seq));
    return report;
  }
  // A head behind the log (a crash between a commit and the head update) is
  // accepted: the chain covers the events after it.
  report.ok = true;
  return report;
}

}  // namespace bevan::audit
