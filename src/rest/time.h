// Instants as the REST layer writes and reads them: FHIR instants and
// dateTimes (meta.lastUpdated, _since, _at) and HTTP dates (Last-Modified,
// If-Modified-Since). Times are microseconds since the epoch, UTC.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bevan::rest {

using Micros = std::int64_t;

// "2024-05-06T10:11:12.123456Z" (always microseconds, always UTC).
std::string FormatInstant(Micros t);

// The range a FHIR date or dateTime covers, by its precision, inclusive:
// "2024" is [2024-01-01T00:00:00Z, 2024-12-31T23:59:59.999999Z]; a time with
// an offset is converted to UTC; a dateTime without a time zone is taken as
// UTC. nullopt when `text` is not a valid FHIR date/dateTime/instant.
struct TimeRange {
  Micros lo;
  Micros hi;
};
std::optional<TimeRange> ParseDateTimeRange(std::string_view text);

// RFC 7231 IMF-fixdate: "Tue, 24 Nov 2026 21:14:01 GMT" (seconds precision).
std::string FormatHttpDate(Micros t);
// Parses an IMF-fixdate; nullopt for anything else.
std::optional<Micros> ParseHttpDate(std::string_view text);

}  // namespace bevan::rest
