// Pieces shared by the store backends; not part of the public interface.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "store/store.h"

namespace bevan::store::internal {

// A wall clock in microseconds that never returns the same value twice and
// never goes backwards, even when the system clock does (NTP steps): it
// returns max(wall clock, previous + 1).
class MonotonicClock {
 public:
  Micros Now();
  // Future values will be greater than `floor` (the newest stored timestamp,
  // so versions written after a restart stay in order).
  void RaiseFloor(Micros floor);

 private:
  std::atomic<Micros> last_{0};
};

// Validates the parts of a HistoryQuery both backends check the same way.
Status CheckHistoryQuery(const HistoryQuery& query);

// Validates a ScanQuery (both backends check it the same way).
Status CheckScanQuery(const ScanQuery& query);

// The statement reading one chunk of a scan: placeholders ?1 type, ?2 the
// last id of the previous chunk ('' at first), ?3 since (exclusive), ?4 the
// chunk size, ?5 the Patient id for kTheseCompartments; $N instead of ?N
// and a boolean `deleted` when `postgres`.
std::string ScanSql(const ScanQuery& query, bool postgres);

// The checks of ResourceWrite/ResourceDelete that need no stored state.
Status CheckWrite(const ResourceWrite& write);
Status CheckDelete(const ResourceDelete& del);

// The precondition of a new version given the current one (`exists` false when
// (type, id) has no row). Returns kFailedPrecondition with a message naming
// the mismatch.
Status CheckNextVersion(std::string_view type, std::string_view id, bool exists, std::int64_t current_version,
                        Micros current_last_updated, std::int64_t version, Micros last_updated);

// A stable 64-bit FNV-1a hash (the same in every process and build): names
// PostgreSQL advisory locks.
std::int64_t StableHash(std::string_view a, std::string_view b, std::string_view c, std::string_view d);

Result<std::unique_ptr<Store>> OpenSqliteStore(std::string path, bool remove_on_close, const StoreOptions& options);
Result<std::unique_ptr<Store>> OpenPostgresStore(std::string conninfo, const StoreOptions& options);

}  // namespace bevan::store::internal
