#include "fhir/primitives.h"

#include <array>
#include <cctype>
#include <cstdint>

#include "fhir/xhtml.h"
#include "json/json.h"

namespace bevan::fhir {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool Digits(std::string_view s, size_t at, size_t n) {
  if (at + n > s.size()) return false;
  for (size_t i = at; i < at + n; ++i) {
    if (!IsDigit(s[i])) return false;
  }
  return true;
}

int Num(std::string_view s, size_t at, size_t n) {
  int v = 0;
  for (size_t i = at; i < at + n; ++i) v = v * 10 + (s[i] - '0');
  return v;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysIn(int y, int m) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// YYYY, YYYY-MM or YYYY-MM-DD at the start of s; returns characters used or 0.
size_t ParseDatePart(std::string_view s, std::string_view* error, bool require_full) {
  if (!Digits(s, 0, 4)) {
    *error = "expected a four-digit year";
    return 0;
  }
  int year = Num(s, 0, 4);
  if (year == 0) {
    *error = "year 0000 is not allowed";
    return 0;
  }
  if (s.size() == 4 || s[4] != '-') {
    if (require_full) *error = "expected YYYY-MM-DD";
    return require_full ? 0 : 4;
  }
  if (!Digits(s, 5, 2)) {
    *error = "expected a two-digit month";
    return 0;
  }
  int month = Num(s, 5, 2);
  if (month < 1 || month > 12) {
    *error = "month out of range";
    return 0;
  }
  if (s.size() == 7 || s[7] != '-') {
    if (require_full) *error = "expected YYYY-MM-DD";
    return require_full ? 0 : 7;
  }
  if (!Digits(s, 8, 2)) {
    *error = "expected a two-digit day";
    return 0;
  }
  int day = Num(s, 8, 2);
  if (day < 1 || day > DaysIn(year, month)) {
    *error = "day does not exist in that month";
    return 0;
  }
  return 10;
}

// hh:mm:ss(.f+)? at the start of s; returns characters used or 0.
size_t ParseTimePart(std::string_view s, std::string_view* error) {
  if (!Digits(s, 0, 2) || s.size() < 8 || s[2] != ':' || !Digits(s, 3, 2) || s[5] != ':' || !Digits(s, 6, 2)) {
    *error = "expected hh:mm:ss";
    return 0;
  }
  if (Num(s, 0, 2) > 23 || Num(s, 3, 2) > 59 || Num(s, 6, 2) > 60) {
    *error = "time out of range";
    return 0;
  }
  size_t i = 8;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) {
      *error = "expected digits after '.'";
      return 0;
    }
  }
  return i;
}

// Z or +hh:mm / -hh:mm, exactly the rest of s.
bool ParseZone(std::string_view s, std::string_view* error) {
  if (s == "Z") return true;
  if (s.size() == 6 && (s[0] == '+' || s[0] == '-') && Digits(s, 1, 2) && s[3] == ':' && Digits(s, 4, 2)) {
    int h = Num(s, 1, 2), m = Num(s, 4, 2);
    if (h < 14 || (h == 14 && m == 0)) {
      if (m <= 59) return true;
    }
  }
  *error = "expected a time zone: Z or +hh:mm";
  return false;
}

std::string_view CheckDateTime(std::string_view s, bool instant) {
  std::string_view error;
  size_t n = ParseDatePart(s, &error, instant);
  if (n == 0) return error;
  if (n == s.size()) return instant ? std::string_view("an instant needs a time and zone") : std::string_view();
  if (n != 10 || s[n] != 'T') return "unexpected characters after the date";
  std::string_view rest = s.substr(11);
  size_t t = ParseTimePart(rest, &error);
  if (t == 0) return error;
  if (!ParseZone(rest.substr(t), &error)) return "a time must have a time zone (Z or +hh:mm)";
  return {};
}

std::string_view CheckInteger(std::string_view s, int64_t min) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && s[i] == '-') {
    if (min >= 0) return "must not be negative";
    neg = true;
    ++i;
  }
  if (i == s.size()) return "not an integer";
  if (s[i] == '0' && i + 1 < s.size()) return "leading zeros are not allowed";
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (!IsDigit(s[i])) return "not an integer";
    v = v * 10 + (s[i] - '0');
    if (v > 2147483648LL) return "integer out of 32-bit range";
  }
  if (neg) v = -v;
  if (v > 2147483647LL) return "integer out of 32-bit range";
  if (v < min)
    return min == 0 ? "must not be negative" : (min == 1 ? "must be positive" : "integer out of 32-bit range");
  return {};
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

// Control characters in strings are only a SHOULD NOT in R4: the validator
// warns about them (HasControlCharacters); they are not an error here.
std::string_view CheckStringChars(std::string_view s) {
  if (s.empty()) return "must not be empty";
  return {};
}

std::string_view CheckCodeChars(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) return "contains a control character";
  }
  return {};
}

std::string_view CheckCode(std::string_view s) {
  if (s.empty()) return "must not be empty";
  if (IsSpace(s.front()) || IsSpace(s.back())) return "must not start or end with whitespace";
  for (size_t i = 0; i < s.size(); ++i) {
    if (IsSpace(s[i]) && (s[i] != ' ' || (i + 1 < s.size() && IsSpace(s[i + 1])))) {
      return "only single spaces may separate parts of a code";
    }
  }
  return CheckCodeChars(s);
}

std::string_view CheckId(std::string_view s) {
  if (s.empty() || s.size() > 64) return "an id has 1 to 64 characters";
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) {
      return "an id may only contain A-Z, a-z, 0-9, '-' and '.'";
    }
  }
  return {};
}

std::string_view CheckUri(std::string_view s) {
  if (s.empty()) return "must not be empty";
  for (char c : s) {
    if (IsSpace(c) || static_cast<unsigned char>(c) < 0x20) return "a URI must not contain whitespace";
  }
  return {};
}

std::string_view CheckOid(std::string_view s) {
  constexpr std::string_view kPrefix = "urn:oid:";
  if (s.substr(0, kPrefix.size()) != kPrefix) return "an oid must start with urn:oid:";
  std::string_view rest = s.substr(kPrefix.size());
  if (rest.empty() || rest[0] < '0' || rest[0] > '2') return "an oid starts with 0, 1 or 2";
  size_t i = 1;
  if (i == rest.size()) return "an oid has at least two arcs";
  while (i < rest.size()) {
    if (rest[i] != '.') return "invalid oid";
    ++i;
    size_t start = i;
    while (i < rest.size() && IsDigit(rest[i])) ++i;
    if (i == start || (rest[start] == '0' && i - start > 1)) return "invalid oid arc";
  }
  return {};
}

std::string_view CheckUuid(std::string_view s) {
  constexpr std::string_view kPrefix = "urn:uuid:";
  if (s.size() != kPrefix.size() + 36 || s.substr(0, kPrefix.size()) != kPrefix) {
    return "a uuid is urn:uuid: followed by 36 characters";
  }
  std::string_view u = s.substr(kPrefix.size());
  for (size_t i = 0; i < 36; ++i) {
    char c = u[i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !(IsDigit(c) || (c >= 'a' && c <= 'f'))) return "invalid uuid (lower-case hex)";
  }
  return {};
}

std::string_view CheckBase64(std::string_view s) {
  size_t n = 0, pad = 0;
  for (char c : s) {
    if (IsSpace(c)) continue;
    if (c == '=') {
      ++pad;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/') {
      if (pad) return "base64 padding must come last";
    } else {
      return "invalid base64 character";
    }
    ++n;
  }
  if (n == 0) return "must not be empty";
  if (n % 4 != 0 || pad > 2) return "base64 length must be a multiple of 4";
  return {};
}

std::string_view CheckTime(std::string_view s) {
  std::string_view error;
  size_t n = ParseTimePart(s, &error);
  if (n == 0) return error;
  if (n != s.size()) return "unexpected characters after the time";
  return {};
}

}  // namespace

bool HasControlCharacters(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t' && c != '\r' && c != '\n') return true;
  }
  return false;
}

PrimitiveCheck PrimitiveCheckFor(std::string_view t) {
  struct Entry {
    std::string_view name;
    PrimitiveCheck check;
  };
  // Primitive type names of FHIR R4 mapped to their checks. The model test
  // checks that every primitive type of the model has an entry here.
  static constexpr std::array<Entry, 20> kTable = {{
      {"boolean", PrimitiveCheck::kBoolean},
      {"integer", PrimitiveCheck::kInteger},
      {"unsignedInt", PrimitiveCheck::kUnsignedInt},
      {"positiveInt", PrimitiveCheck::kPositiveInt},
      {"decimal", PrimitiveCheck::kDecimal},
      {"string", PrimitiveCheck::kString},
      {"markdown", PrimitiveCheck::kString},
      {"code", PrimitiveCheck::kCode},
      {"id", PrimitiveCheck::kId},
      {"uri", PrimitiveCheck::kUri},
      {"url", PrimitiveCheck::kUri},
      {"canonical", PrimitiveCheck::kUri},
      {"oid", PrimitiveCheck::kOid},
      {"uuid", PrimitiveCheck::kUuid},
      {"base64Binary", PrimitiveCheck::kBase64Binary},
      {"date", PrimitiveCheck::kDate},
      {"dateTime", PrimitiveCheck::kDateTime},
      {"instant", PrimitiveCheck::kInstant},
      {"time", PrimitiveCheck::kTime},
      {"xhtml", PrimitiveCheck::kXhtml},
  }};
  for (const Entry& e : kTable) {
    if (e.name == t) return e.check;
  }
  return PrimitiveCheck::kNone;
}

std::string_view CheckPrimitive(PrimitiveCheck check, std::string_view s) {
  switch (check) {
    case PrimitiveCheck::kBoolean: return (s == "true" || s == "false") ? std::string_view() : "not a boolean";
    case PrimitiveCheck::kInteger: return CheckInteger(s, INT32_MIN);
    case PrimitiveCheck::kUnsignedInt: return CheckInteger(s, 0);
    case PrimitiveCheck::kPositiveInt: return CheckInteger(s, 1);
    case PrimitiveCheck::kDecimal: {
      // The decimal regex is the JSON number grammar (the parser already
      // enforced it for JSON input; text from elsewhere is checked here).
      return json::IsValidNumberLiteral(s) ? std::string_view() : "not a decimal";
    }
    case PrimitiveCheck::kString: return CheckStringChars(s);
    case PrimitiveCheck::kCode: return CheckCode(s);
    case PrimitiveCheck::kId: return CheckId(s);
    case PrimitiveCheck::kUri: return CheckUri(s);
    case PrimitiveCheck::kOid: return CheckOid(s);
    case PrimitiveCheck::kUuid: return CheckUuid(s);
    case PrimitiveCheck::kBase64Binary: return CheckBase64(s);
    case PrimitiveCheck::kDate: {
      std::string_view error;
      size_t n = ParseDatePart(s, &error, false);
      if (n == 0) return error;
      return n == s.size() ? std::string_view() : "unexpected characters after the date";
    }
    case PrimitiveCheck::kDateTime: return CheckDateTime(s, false);
    case PrimitiveCheck::kInstant: return CheckDateTime(s, true);
    case PrimitiveCheck::kTime: return CheckTime(s);
    case PrimitiveCheck::kXhtml: {
      // The validator reports unsafe and empty narrative separately (security,
      // txt-2); here only the form: a well-formed XHTML <div>.
      thread_local std::string reason;
      XhtmlCheck c = CheckNarrativeXhtml(s);
      if (c.problem != XhtmlProblem::kMalformed) return {};
      reason = std::move(c.message);
      return reason;
    }
    case PrimitiveCheck::kNone: return {};
  }
  return {};
}

std::string_view CheckNarrativeSafety(std::string_view x) {
  thread_local std::string reason;
  XhtmlCheck c = CheckNarrativeXhtml(x);
  if (c.problem != XhtmlProblem::kUnsafe) return {};
  reason = std::move(c.message);
  return reason;
}

}  // namespace bevan::fhir
