#include "search/values.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "fhir/model.h"
#include "fhirpath/datetime.h"
#include "fhirpath/decimal.h"
#include "fhirpath/ucum.h"

namespace bevan::search {

namespace {

// Base letters of U+00C0..U+00FF ('\0': keep the character).
constexpr const char* kLatin1[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",   //
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "ss",  //
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",   //
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "y",
};

// Base letters of U+0100..U+017F by ranges.
struct Fold {
  char32_t first, last;
  const char* base;
};
constexpr Fold kLatinExtA[] = {
    {0x100, 0x105, "a"}, {0x106, 0x10D, "c"}, {0x10E, 0x111, "d"},  {0x112, 0x11B, "e"},  {0x11C, 0x123, "g"},
    {0x124, 0x127, "h"}, {0x128, 0x131, "i"}, {0x132, 0x133, "ij"}, {0x134, 0x135, "j"},  {0x136, 0x138, "k"},
    {0x139, 0x142, "l"}, {0x143, 0x14B, "n"}, {0x14C, 0x151, "o"},  {0x152, 0x153, "oe"}, {0x154, 0x159, "r"},
    {0x15A, 0x161, "s"}, {0x162, 0x167, "t"}, {0x168, 0x173, "u"},  {0x174, 0x175, "w"},  {0x176, 0x178, "y"},
    {0x179, 0x17E, "z"}, {0x17F, 0x17F, "s"},
};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

constexpr std::int64_t kMicrosPerSecond = 1000000;
constexpr std::int64_t kMicrosPerDay = 86400 * kMicrosPerSecond;

}  // namespace

std::string NormalizeString(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : static_cast<char>(c);
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0 && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) {
      char32_t cp = ((c & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
      const char* base = nullptr;
      if (cp >= 0xC0 && cp <= 0xFF) {
        base = kLatin1[cp - 0xC0];
        if (*base == '\0') base = nullptr;
      } else if (cp >= 0x100 && cp <= 0x17F) {
        for (const Fold& f : kLatinExtA) {
          if (cp >= f.first && cp <= f.last) base = f.base;
        }
      }
      if (base != nullptr) {
        out += base;
      } else {
        out.append(s.substr(i, 2));
      }
      i += 2;
      continue;
    }
    out += static_cast<char>(c);
    ++i;
  }
  return out;
}

std::optional<MicrosRange> DateRange(std::string_view text) {
  using fhirpath::DateTime;
  using fhirpath::DtPrecision;
  std::optional<DateTime> dt = DateTime::ParseDateTime(text);
  if (!dt) {
    // Instants may carry more than millisecond digits: keep three.
    size_t dot = text.find('.');
    if (dot != std::string_view::npos) {
      size_t end = dot + 1;
      while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
      if (end - dot > 4) {
        std::string cut = std::string(text.substr(0, dot + 4)) + std::string(text.substr(end));
        dt = DateTime::ParseDateTime(cut);
      }
    }
  }
  if (!dt || dt->kind == fhirpath::DtKind::kTime) return std::nullopt;
  std::int64_t days = DaysFromCivil(dt->year, dt->month, dt->day);
  std::int64_t lo = days * kMicrosPerDay + dt->hour * 3600 * kMicrosPerSecond + dt->minute * 60 * kMicrosPerSecond +
                    dt->second * kMicrosPerSecond + static_cast<std::int64_t>(dt->millis) * 1000;
  if (dt->has_tz) lo -= static_cast<std::int64_t>(dt->tz_minutes) * 60 * kMicrosPerSecond;
  std::int64_t span = 0;
  switch (dt->precision) {
    case DtPrecision::kYear:
      span = (DaysFromCivil(dt->year + 1, 1, 1) - DaysFromCivil(dt->year, 1, 1)) * kMicrosPerDay;
      break;
    case DtPrecision::kMonth: {
      int y = dt->year + (dt->month == 12 ? 1 : 0);
      unsigned m = dt->month == 12 ? 1 : dt->month + 1;
      span = (DaysFromCivil(y, m, 1) - DaysFromCivil(dt->year, dt->month, 1)) * kMicrosPerDay;
      break;
    }
    case DtPrecision::kDay: span = kMicrosPerDay; break;
    case DtPrecision::kHour: span = 3600 * kMicrosPerSecond; break;
    case DtPrecision::kMinute: span = 60 * kMicrosPerSecond; break;
    case DtPrecision::kSecond: span = kMicrosPerSecond; break;
    case DtPrecision::kMillisecond: span = 1000; break;
  }
  return MicrosRange{lo, lo + span - 1};
}

std::optional<NumberRange> DecimalRange(std::string_view literal) {
  if (literal.empty()) return std::nullopt;
  std::string_view mantissa = literal;
  int exponent = 0;
  size_t e = literal.find_first_of("eE");
  if (e != std::string_view::npos) {
    mantissa = literal.substr(0, e);
    std::string_view exp = literal.substr(e + 1);
    if (!exp.empty() && exp[0] == '+') exp.remove_prefix(1);
    auto [p, ec] = std::from_chars(exp.data(), exp.data() + exp.size(), exponent);
    if (ec != std::errc() || p != exp.data() + exp.size() || exp.empty()) return std::nullopt;
  }
  std::string_view digits = mantissa;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
  if (digits.empty()) return std::nullopt;
  int frac = 0;
  bool seen_dot = false, seen_digit = false;
  for (char c : digits) {
    if (c == '.') {
      if (seen_dot) return std::nullopt;
      seen_dot = true;
    } else if (c >= '0' && c <= '9') {
      seen_digit = true;
      if (seen_dot) ++frac;
    } else {
      return std::nullopt;
    }
  }
  if (!seen_digit) return std::nullopt;
  std::string text(literal);
  if (!text.empty() && text[0] == '+') text.erase(0, 1);
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) return std::nullopt;
  double half = 0.5 * std::pow(10.0, exponent - frac);
  return NumberRange{value, value - half, value + half};
}

std::optional<CanonicalRange> UcumCanonical(double lo, double hi, std::string_view ucum_code) {
  using fhirpath::Decimal;
  auto dlo = Decimal::FromDouble(lo), dhi = Decimal::FromDouble(hi);
  if (!dlo || !dhi) return std::nullopt;
  Decimal blo, bhi;
  fhirpath::ucum::Canonical canonical;
  if (!fhirpath::ucum::ToBase(*dlo, ucum_code, &blo, &canonical)) return std::nullopt;
  if (!fhirpath::ucum::ToBase(*dhi, ucum_code, &bhi, &canonical)) return std::nullopt;
  static constexpr const char* kDims[] = {"m", "s", "g", "rad", "K", "C", "cd", "arb"};
  std::string unit;
  for (size_t i = 0; i < canonical.dims.size(); ++i) {
    if (canonical.dims[i] == 0) continue;
    if (!unit.empty()) unit += '.';
    unit += kDims[i];
    if (canonical.dims[i] != 1) unit += std::to_string(canonical.dims[i]);
  }
  if (canonical.arbitrary != 0) unit += "#" + std::to_string(canonical.arbitrary);
  if (unit.empty()) unit = "1";
  double a = blo.ToDouble(), b = bhi.ToDouble();
  return CanonicalRange{std::min(a, b), std::max(a, b), std::move(unit)};
}

ParsedReference ParseReference(std::string_view ref) {
  ParsedReference out;
  if (ref.empty() || ref[0] == '#') return out;
  size_t hist = ref.find("/_history/");
  std::string_view base = hist == std::string_view::npos ? ref : ref.substr(0, hist);
  size_t slash = base.find('/');
  bool relative = base.find(':') == std::string_view::npos && slash != std::string_view::npos &&
                  base.find('/', slash + 1) == std::string_view::npos && slash + 1 < base.size();
  if (relative && fhir::FindResourceType(base.substr(0, slash)) != nullptr) {
    out.type = base.substr(0, slash);
    out.id = base.substr(slash + 1);
    return out;
  }
  size_t bar = base.find('|');
  out.url = bar == std::string_view::npos ? base : base.substr(0, bar);
  return out;
}

namespace {

std::string_view StringField(const json::Value& v, std::string_view name) {
  const json::Value* f = v.Find(name);
  return f && f->is_string() ? f->as_string() : std::string_view();
}

Status AddContains(const json::Value& list, size_t max, std::vector<SystemCode>& out) {
  if (!list.is_array()) return Status::Ok();
  for (const json::Value& c : list.items()) {
    if (!c.is_object()) continue;
    std::string_view code = StringField(c, "code");
    if (!code.empty()) out.emplace_back(StringField(c, "system"), code);
    if (out.size() > max) return ResourceExhaustedError("value set has more than " + std::to_string(max) + " codes");
    if (const json::Value* nested = c.Find("contains")) RETURN_IF_ERROR(AddContains(*nested, max, out));
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<SystemCode>> ValueSetCodes(const json::Value& valueset, size_t max) {
  std::vector<SystemCode> out;
  if (const json::Value* expansion = valueset.Find("expansion"); expansion && expansion->is_object()) {
    if (const json::Value* contains = expansion->Find("contains")) RETURN_IF_ERROR(AddContains(*contains, max, out));
    return out;
  }
  const json::Value* compose = valueset.Find("compose");
  const json::Value* include = compose && compose->is_object() ? compose->Find("include") : nullptr;
  if (include == nullptr || !include->is_array()) return out;
  for (const json::Value& inc : include->items()) {
    if (!inc.is_object()) continue;
    std::string_view system = StringField(inc, "system");
    const json::Value* concepts = inc.Find("concept");
    if (system.empty() || concepts == nullptr || !concepts->is_array()) continue;
    for (const json::Value& c : concepts->items()) {
      if (!c.is_object() || StringField(c, "code").empty()) continue;
      out.emplace_back(system, StringField(c, "code"));
      if (out.size() > max) return ResourceExhaustedError("value set has more than " + std::to_string(max) + " codes");
    }
  }
  return out;
}

}  // namespace bevan::search
