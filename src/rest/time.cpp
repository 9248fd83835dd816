#include "rest/time.h"

#include <cstdio>
#include <cstring>
#include <ctime>

#include "fhir/primitives.h"

namespace bevan::rest {

namespace {

constexpr Micros kSecond = 1'000'000;

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct Civil {
  int64_t year;
  unsigned month;  // 1-12
  unsigned day;    // 1-31
};

// The inverse of DaysFromCivil (Howard Hinnant's civil_from_days).
Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return Civil{static_cast<int64_t>(yoe) + era * 400 + (m <= 2), m, d};
}

int Num(std::string_view s, size_t at, size_t n) {
  int v = 0;
  for (size_t i = at; i < at + n; ++i) v = v * 10 + (s[i] - '0');
  return v;
}

}  // namespace

std::string FormatInstant(Micros t) {
  time_t secs = static_cast<time_t>(t >= 0 ? t / kSecond : (t - kSecond + 1) / kSecond);
  auto frac = static_cast<long>(t - static_cast<Micros>(secs) * kSecond);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

std::optional<TimeRange> ParseDateTimeRange(std::string_view s) {
  // Accept what the dateTime check accepts, plus a dateTime without a zone.
  bool valid = fhir::CheckPrimitive(fhir::PrimitiveCheck::kDateTime, s).empty();
  std::string_view zone;
  std::string_view body = s;
  if (!valid && s.size() > 10 && s[10] == 'T') {
    // "2024-05-06T10:11:12" without a zone: read as UTC.
    std::string with_z(s);
    with_z += 'Z';
    if (!fhir::CheckPrimitive(fhir::PrimitiveCheck::kDateTime, with_z).empty()) return std::nullopt;
    valid = true;
  }
  if (!valid) return std::nullopt;
  int year = Num(s, 0, 4);
  unsigned month = 1, day = 1;
  if (s.size() == 4) {
    Micros lo = DaysFromCivil(year, 1, 1) * 86400 * kSecond;
    Micros hi = DaysFromCivil(year + 1, 1, 1) * 86400 * kSecond - 1;
    return TimeRange{lo, hi};
  }
  month = static_cast<unsigned>(Num(s, 5, 2));
  if (s.size() == 7) {
    Micros lo = DaysFromCivil(year, month, 1) * 86400 * kSecond;
    Micros hi = (month == 12 ? DaysFromCivil(year + 1, 1, 1) : DaysFromCivil(year, month + 1, 1)) * 86400 * kSecond - 1;
    return TimeRange{lo, hi};
  }
  day = static_cast<unsigned>(Num(s, 8, 2));
  Micros day_start = DaysFromCivil(year, month, day) * 86400 * kSecond;
  if (s.size() == 10) return TimeRange{day_start, day_start + 86400 * kSecond - 1};
  // Time part.
  body = s.substr(11);
  Micros t =
      day_start + (static_cast<Micros>(Num(body, 0, 2)) * 3600 + Num(body, 3, 2) * 60 + Num(body, 6, 2)) * kSecond;
  size_t i = 8;
  Micros frac = 0;
  int digits = 0;
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && body[i] >= '0' && body[i] <= '9') {
      if (digits < 6) {
        frac = frac * 10 + (body[i] - '0');
        ++digits;
      }
      ++i;
    }
  }
  Micros unit = 1;
  for (int k = digits; k < 6; ++k) {
    frac *= 10;
    unit *= 10;
  }
  t += frac;
  zone = body.substr(i);
  if (!zone.empty() && zone != "Z") {
    int offset = (Num(zone, 1, 2) * 60 + Num(zone, 4, 2)) * 60;
    t += (zone[0] == '+' ? -1 : 1) * static_cast<Micros>(offset) * kSecond;
  }
  // Precision: seconds (or the fraction given) form the range.
  Micros width = digits == 0 ? kSecond : unit;
  return TimeRange{t, t + width - 1};
}

std::string FormatHttpDate(Micros t) {
  time_t secs = static_cast<time_t>(t / kSecond);
  // Every Last-Modified goes through here: years 1970-9999 are written by
  // hand (strftime with gmtime_r cost more than the rest of a read's REST
  // work); anything else, which no stored resource has, by strftime.
  constexpr int64_t kYear10000 = 253402300800;  // 10000-01-01T00:00:00Z
  if (secs >= 0 && secs < kYear10000) {
    static constexpr char kDays[] = "ThuFriSatSunMonTueWed";  // 1970-01-01 was a Thursday
    static constexpr char kMonths[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t days = secs / 86400;
    int64_t rest = secs % 86400;
    auto [year, month, day] = CivilFromDays(days);
    char buf[29];
    auto two = [&buf](size_t at, int64_t v) {
      buf[at] = static_cast<char>('0' + v / 10);
      buf[at + 1] = static_cast<char>('0' + v % 10);
    };
    std::memcpy(buf, kDays + 3 * (days % 7), 3);
    buf[3] = ',';
    buf[4] = ' ';
    two(5, day);
    buf[7] = ' ';
    std::memcpy(buf + 8, kMonths + 3 * (month - 1), 3);
    buf[11] = ' ';
    two(12, year / 100);
    two(14, year % 100);
    buf[16] = ' ';
    two(17, rest / 3600);
    buf[19] = ':';
    two(20, rest / 60 % 60);
    buf[22] = ':';
    two(23, rest % 60);
    std::memcpy(buf + 25, " GMT", 4);
    return std::string(buf, sizeof(buf));
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::optional<Micros> ParseHttpDate(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  return static_cast<Micros>(timegm(&tm)) * kSecond;
}

}  // namespace bevan::rest
