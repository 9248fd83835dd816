// Format checks for FHIR R4 primitive values, hand-written for speed. Each
// matches the official regular expression of its type in the model (a test
// checks them against the regexes on a corpus), and is stricter where the
// specification's prose is: dates must exist on the calendar, integers must
// fit 32 bits, base64 must decode.
#pragma once

#include <string_view>

namespace bevan::fhir {

// Which check applies to a primitive type. kString covers string and
// markdown; kUri covers uri, url and canonical.
enum class PrimitiveCheck : uint8_t {
  kBoolean,
  kInteger,
  kUnsignedInt,
  kPositiveInt,
  kDecimal,
  kString,
  kCode,
  kId,
  kUri,
  kOid,
  kUuid,
  kBase64Binary,
  kDate,
  kDateTime,
  kInstant,
  kTime,
  kXhtml,
  kNone
};

// The check for a primitive type name ("date", "positiveInt"); kNone if unknown.
PrimitiveCheck PrimitiveCheckFor(std::string_view type_name);

// Checks the text of a primitive value (for JSON numbers, the literal; for
// booleans "true"/"false"). Returns an empty string when valid, else the
// reason ("not a valid date: month 13").
std::string_view CheckPrimitive(PrimitiveCheck check, std::string_view text);

// True if `s` has control characters other than tab, CR and LF (R4: strings
// SHOULD NOT contain them; a warning, not an error).
bool HasControlCharacters(std::string_view s);

// Narrative XHTML safety: returns a reason when `xhtml` contains elements or
// attributes FHIR forbids (script, iframe, object, embed, form, base, link,
// head, body, event handler attributes, javascript: URLs), else empty.
std::string_view CheckNarrativeSafety(std::string_view xhtml);

}  // namespace bevan::fhir
