// The value semantics search indexing, querying and the oracle share: how a
// string is normalised, the range a FHIR date or decimal stands for, UCUM
// canonical units, and how a reference string splits into type, id and URL.
// Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "json/json.h"
#include "store/search_plan.h"

namespace bevan::search {

// For case- and accent-insensitive string matching: ASCII lower case, Latin-1
// and Latin Extended-A letters folded to their base letters ("Ã" -> "a",
// "ß" -> "ss", "Œ" -> "oe"), other text unchanged. Invalid UTF-8 bytes are kept.
std::string NormalizeString(std::string_view s);

// The instant range a FHIR date, dateTime or instant stands for, inclusive on
// both ends, in microseconds since the epoch: "2024" is [2024-01-01T00:00:00Z,
// 2024-12-31T23:59:59.999999Z]. Values without a time zone are taken as UTC.
// nullopt when malformed.
struct MicrosRange {
  store::Micros lo = 0;
  store::Micros hi = 0;
};
std::optional<MicrosRange> DateRange(std::string_view text);

// A decimal literal's value and its implicit range by its significant digits:
// "100" is [99.5, 100.5], "1.50" is [1.495, 1.505], "1e2" is [50, 150].
// nullopt when malformed.
struct NumberRange {
  double value = 0;
  double lo = 0;
  double hi = 0;
};
std::optional<NumberRange> DecimalRange(std::string_view literal);

// [lo, hi] in `ucum_code` converted to the UCUM base units, with a key naming
// those units (equal keys: commensurable). nullopt when the unit is not UCUM
// as the FHIRPath UCUM table knows it.
struct CanonicalRange {
  double lo = 0;
  double hi = 0;
  std::string unit;
};
std::optional<CanonicalRange> UcumCanonical(double lo, double hi, std::string_view ucum_code);

inline constexpr std::string_view kUcumSystem = "http://unitsofmeasure.org";

// A reference as written, split for the index: "Patient/123" (also
// "Patient/123/_history/2") gives type and id; absolute URLs, urn: and other
// forms give `url` (a canonical's "|version" removed); "#contained" gives
// nothing (all empty). A relative reference needs a known resource type.
struct ParsedReference {
  std::string type;
  std::string id;
  std::string url;
  bool empty() const { return type.empty() && id.empty() && url.empty(); }
};
ParsedReference ParseReference(std::string_view reference);

// The (system, code) pairs of a ValueSet resource, for token :in / :not-in:
// its expansion.contains (nested contains included) when it has an
// expansion, else compose.include[].concept with each include's system
// (includes by filter or by other value sets contribute nothing).
// kResourceExhausted above `max` codes.
using SystemCode = std::pair<std::string, std::string>;
Result<std::vector<SystemCode>> ValueSetCodes(const json::Value& valueset, size_t max = 1000);

}  // namespace bevan::search
