// Verify: one pass over the log in seq order, merged with one pass over the
// patient index, then the head file.
#include <algorithm>
#include <cstring>

#include "audit/audit.h"
#include "audit/internal.h"
#include "audit/sqlite_util.h"

namespace bevan::audit {

using internal::ChainedRow;
using internal::Db;
using internal::Hash;
using internal::Stmt;

namespace {

VerifyReport Bad(VerifyReport r, int64_t seq, std::string problem) {
  r.ok = false;
  r.bad_seq = seq;
  r.problem = std::move(problem);
  return r;
}

std::string Ev(int64_t seq) { return "event " + std::to_string(seq); }

}  // namespace

Result<VerifyReport> Verify(const std::string& path, const std::string& key) {
  Db db;
  RETURN_IF_ERROR(db.Open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX));
  VerifyReport report;
  Stmt meta;
  RETURN_IF_ERROR(meta.Prepare(db,
                               "SELECT (SELECT value FROM audit_meta WHERE name = 'chain'), "
                               "(SELECT value FROM audit_meta WHERE name = 'key_check')"));
  if (meta.Step() != SQLITE_ROW) return db.Error("metadata");
  std::string chain(meta.Text(0)), key_check(meta.Text(1));
  if (chain == "hmac-sha256") {
    if (key.empty()) return Bad(report, 0, "the log is keyed (HMAC-SHA256): set BEVAN_AUDIT_KEY to verify it");
    if (key_check != internal::KeyCheck(key)) return Bad(report, 0, "BEVAN_AUDIT_KEY is not the key of this log");
  } else if (chain == "sha256") {
    if (!key.empty()) {
      return Bad(report, 0, "BEVAN_AUDIT_KEY is set but the log is not keyed (was its chain downgraded?)");
    }
  } else {
    return Bad(report, 0, "unknown chain '" + chain + "' in the log's metadata");
  }

  Stmt rows, index;
  RETURN_IF_ERROR(rows.Prepare(db,
                               "SELECT seq, time, agent, action, outcome, patients, prev_hash, hash, record FROM audit "
                               "ORDER BY seq"));
  RETURN_IF_ERROR(index.Prepare(db, "SELECT seq, patient FROM audit_patient ORDER BY seq, patient"));
  int index_rc = index.Step();

  Hash running{};
  int64_t expected = 1;
  int rc;
  auto head = internal::ReadHead(path);
  std::string hash_at_head;
  std::vector<std::string> listed, indexed;
  while ((rc = rows.Step()) == SQLITE_ROW) {
    int64_t seq = rows.Int(0);
    if (seq != expected) {
      if (seq > expected) {
        std::string which = seq == expected + 1
                                ? Ev(expected)
                                : "events " + std::to_string(expected) + " to " + std::to_string(seq - 1);
        return Bad(report, expected, which + " missing: deleted from the log");
      }
      return Bad(report, seq, Ev(seq) + " has an invalid sequence number");
    }
    std::string_view action = rows.Text(3);
    ChainedRow row;
    row.seq = seq;
    row.time_us = rows.Int(1);
    row.agent = rows.Text(2);
    row.action = action.size() == 1 ? action[0] : '?';
    row.outcome = static_cast<int>(rows.Int(4));
    row.patients = rows.Text(5);
    row.record = rows.Text(8);
    std::string_view prev = rows.Blob(6), stored = rows.Blob(7);
    if (prev.size() != running.size() || std::memcmp(prev.data(), running.data(), running.size()) != 0) {
      return Bad(report, seq,
                 Ev(seq) + " does not follow " + (seq == 1 ? std::string("the start") : Ev(seq - 1)) +
                     " (its previous hash differs): events were reordered, replaced or inserted");
    }
    Hash h = internal::ChainHash(running, row, key);
    if (stored.size() != h.size() || std::memcmp(stored.data(), h.data(), h.size()) != 0) {
      return Bad(report, seq, Ev(seq) + " does not match its hash: its content or its hash was edited");
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
      if (index.Int(0) < seq) return Bad(report, index.Int(0), "the patient index names a missing " + Ev(index.Int(0)));
      indexed.emplace_back(index.Text(1));
      index_rc = index.Step();
    }
    if (listed != indexed) {
      return Bad(report, seq, "the patient index does not match " + Ev(seq) + " (index rows edited or deleted)");
    }
    running = h;
    if (head.ok() && seq == head->seq) hash_at_head = internal::Hex(h);
    report.events = seq;
    ++expected;
  }
  if (rc != SQLITE_DONE) return db.Error("read");
  report.head = internal::Hex(running);
  if (head.ok() && head->seq > report.events) {
    return Bad(report, report.events + 1,
               "the log ends at event " + std::to_string(report.events) + " but its head file names event " +
                   std::to_string(head->seq) + ": the tail was removed");
  }
  if (index_rc == SQLITE_ROW) {
    return Bad(report, index.Int(0), "the patient index names a missing " + Ev(index.Int(0)));
  }

  if (!head.ok()) {
    if (head.status().code() == StatusCode::kNotFound && report.events == 0) {
      report.ok = true;
      return report;
    }
    return Bad(report, 0, head.status().message());
  }
  if (head->seq > 0 && hash_at_head != head->hash_hex) {
    return Bad(report, head->seq, "the head file's hash does not match " + Ev(head->seq));
  }
  // A head behind the log (a crash between a commit and the head update) is
  // accepted: the chain covers the events after it.
  report.ok = true;
  return report;
}

}  // namespace bevan::audit
