#include "store/store.h"

#include <unistd.h>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "store/internal.h"

namespace bevan::store {

namespace {

bool ParseInt64(std::string_view text, std::int64_t& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

std::string HistoryCursor::ToString() const {
  return std::to_string(last_updated) + "." + std::to_string(rid) + "." + std::to_string(version);
}

Result<HistoryCursor> HistoryCursor::Parse(std::string_view text) {
  size_t a = text.find('.');
  size_t b = a == std::string_view::npos ? a : text.find('.', a + 1);
  HistoryCursor c;
  if (b == std::string_view::npos || !ParseInt64(text.substr(0, a), c.last_updated) ||
      !ParseInt64(text.substr(a + 1, b - a - 1), c.rid) || !ParseInt64(text.substr(b + 1), c.version) || c.rid <= 0 ||
      c.version <= 0) {
    return InvalidArgumentError("malformed history paging cursor");
  }
  return c;
}

Result<std::unique_ptr<Store>> OpenStore(std::string_view url, const StoreOptions& options) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (url.starts_with(kSqlite)) {
    std::string_view path = url.substr(kSqlite.size());
    if (path == ":memory:") {
      // WAL needs a real file; a private temp file removed on close behaves
      // like an in-memory database for tests.
      std::error_code ec;
      std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
      if (ec) return IoError("no temporary directory: " + ec.message());
      std::string templ = (dir / "bevan-store-XXXXXX").string();
      int fd = mkstemp(templ.data());
      if (fd < 0) return IoError("cannot create a temporary database file in " + dir.string());
      close(fd);
      return internal::OpenSqliteStore(templ, /*remove_on_close=*/true, options);
    }
    if (path.empty()) return InvalidArgumentError("sqlite: URL without a path");
    return internal::OpenSqliteStore(std::string(path), /*remove_on_close=*/false, options);
  }
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return internal::OpenPostgresStore(std::string(url), options);
  }
  return InvalidArgumentError("unsupported store URL (expected sqlite:PATH or postgresql://...)");
}

namespace internal {

Micros MonotonicClock::Now() {
  Micros wall =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  Micros prev = last_.load(std::memory_order_relaxed);
  for (;;) {
    Micros next = wall > prev ? wall : prev + 1;
    if (last_.compare_exchange_weak(prev, next, std::memory_order_relaxed)) return next;
  }
}

void MonotonicClock::RaiseFloor(Micros floor) {
  Micros prev = last_.load(std::memory_order_relaxed);
  while (prev < floor && !last_.compare_exchange_weak(prev, floor, std::memory_order_relaxed)) {
  }
}

Status CheckScanQuery(const ScanQuery& query) {
  if (query.type.empty()) return InvalidArgumentError("a scan needs a resource type");
  if (query.chunk < 1 || query.chunk > 100000) return InvalidArgumentError("scan chunk must be 1..100000");
  return Status::Ok();
}

std::string ScanSql(const ScanQuery& query, bool postgres) {
  // Keyset pages on (type, id): the UNIQUE (type, id) index drives, or for
  // one compartment the (compartment, type) index and a sort of its few rows.
  std::string s = "SELECT rid, id, last_updated, compartment, body FROM resource WHERE type = ?1 AND id > ?2 AND ";
  s += postgres ? "NOT deleted" : "deleted = 0";
  s += " AND last_updated > ?3";
  if (query.scope == ScanScope::kAnyCompartment) s += " AND compartment IS NOT NULL";
  if (query.scope == ScanScope::kTheseCompartments) s += " AND compartment = ?5";
  s += " ORDER BY id LIMIT ?4";
  if (postgres) {
    for (char& c : s) {
      if (c == '?') c = '$';
    }
  }
  return s;
}

Status CheckHistoryQuery(const HistoryQuery& query) {
  if (query.count < 1 || query.count > 1000) return InvalidArgumentError("history page size must be 1..1000");
  if (query.type.empty() && !query.id.empty()) return InvalidArgumentError("instance history needs a type");
  if (query.at_lo.has_value() != query.at_hi.has_value()) {
    return InvalidArgumentError("_at needs both ends of its range");
  }
  if (query.at_lo && *query.at_lo > *query.at_hi) return InvalidArgumentError("_at range is empty");
  return Status::Ok();
}

Status CheckWrite(const ResourceWrite& write) {
  if (write.type.empty() || write.id.empty()) return InvalidArgumentError("a write needs a type and an id");
  if (write.version < 1) return InvalidArgumentError("versions start at 1");
  if (write.body.empty()) return InvalidArgumentError("a write needs a body");
  return Status::Ok();
}

Status CheckDelete(const ResourceDelete& del) {
  if (del.type.empty() || del.id.empty()) return InvalidArgumentError("a delete needs a type and an id");
  if (del.version < 2) return InvalidArgumentError("a delete is at least version 2");
  return Status::Ok();
}

Status CheckNextVersion(std::string_view type, std::string_view id, bool exists, std::int64_t current_version,
                        Micros current_last_updated, std::int64_t version, Micros last_updated) {
  std::int64_t current = exists ? current_version : 0;
  if (version != current + 1) {
    std::string name = std::string(type) + "/" + std::string(id);
    if (!exists)
      return FailedPreconditionError(name + " does not exist (expected version " + std::to_string(version - 1) + ")");
    return FailedPreconditionError(name + " is at version " + std::to_string(current) + ", not " +
                                   std::to_string(version - 1));
  }
  if (exists && last_updated <= current_last_updated) {
    return FailedPreconditionError(std::string(type) + "/" + std::string(id) +
                                   ": last_updated is not later than the current version's");
  }
  return Status::Ok();
}

std::int64_t StableHash(std::string_view a, std::string_view b, std::string_view c, std::string_view d) {
  std::uint64_t h = 14695981039346656037ull;
  for (std::string_view part : {a, b, c, d}) {
    for (unsigned char ch : part) {
      h ^= ch;
      h *= 1099511628211ull;
    }
    h ^= 0xff;  // a separator no UTF-8 text contains, so ("ab","c") != ("a","bc")
    h *= 1099511628211ull;
  }
  return static_cast<std::int64_t>(h);
}

}  // namespace internal
}  // namespace bevan::store
