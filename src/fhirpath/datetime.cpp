#include "fhirpath/datetime.h"

#include <chrono>
#include <ctime>

namespace bevan::fhirpath {

namespace {

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Howard Hinnant's civil-from-days algorithms (proleptic Gregorian).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t yy = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yy + (*m <= 2);
}

constexpr int64_t kMsPerDay = 86400000;

int64_t ToMillis(const DateTime& v) {
  int64_t days = v.kind == DtKind::kTime ? 0 : DaysFromCivil(v.year, v.month, v.day);
  return days * kMsPerDay + ((v.hour * 60 + v.minute) * 60 + v.second) * 1000LL + v.millis;
}

bool FromMillis(int64_t ms, DateTime* v) {
  int64_t days = ms >= 0 ? ms / kMsPerDay : -((-ms + kMsPerDay - 1) / kMsPerDay);
  int64_t rest = ms - days * kMsPerDay;
  if (v->kind != DtKind::kTime) {
    int64_t y;
    unsigned m, d;
    CivilFromDays(days, &y, &m, &d);
    if (y < 1 || y > 9999) return false;
    v->year = static_cast<int16_t>(y);
    v->month = static_cast<uint8_t>(m);
    v->day = static_cast<uint8_t>(d);
  }
  v->millis = static_cast<uint16_t>(rest % 1000);
  rest /= 1000;
  v->second = static_cast<uint8_t>(rest % 60);
  rest /= 60;
  v->minute = static_cast<uint8_t>(rest % 60);
  v->hour = static_cast<uint8_t>(rest / 60);
  return true;
}

bool Digits(std::string_view s, size_t at, size_t n, int* out) {
  if (at + n > s.size()) return false;
  int v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// Parses "HH(:MM(:SS(.f+)?)?)?" at s[*at]; sets fields and precision.
bool ParseTimePart(std::string_view s, size_t* at, DateTime* v) {
  int h, mi, se;
  if (!Digits(s, *at, 2, &h) || h > 23) return false;
  v->hour = static_cast<uint8_t>(h);
  v->precision = DtPrecision::kHour;
  *at += 2;
  if (*at < s.size() && s[*at] == ':') {
    if (!Digits(s, *at + 1, 2, &mi) || mi > 59) return false;
    v->minute = static_cast<uint8_t>(mi);
    v->precision = DtPrecision::kMinute;
    *at += 3;
    if (*at < s.size() && s[*at] == ':') {
      if (!Digits(s, *at + 1, 2, &se) || se > 60) return false;
      v->second = static_cast<uint8_t>(se > 59 ? 59 : se);
      v->precision = DtPrecision::kSecond;
      *at += 3;
      if (*at < s.size() && s[*at] == '.') {
        size_t i = *at + 1;
        int ms = 0, n = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
          if (n < 3) ms = ms * 10 + (s[i] - '0');
          ++n;
          ++i;
        }
        if (n == 0) return false;
        for (int k = n; k < 3; ++k) ms *= 10;
        v->millis = static_cast<uint16_t>(ms);
        v->precision = DtPrecision::kMillisecond;
        *at = i;
      }
    }
  }
  return true;
}

bool ParseTz(std::string_view s, size_t* at, DateTime* v) {
  if (*at >= s.size()) return true;
  if (s[*at] == 'Z') {
    v->has_tz = true;
    v->tz_z = true;
    v->tz_minutes = 0;
    ++*at;
    return true;
  }
  if (s[*at] != '+' && s[*at] != '-') return false;
  int h, m;
  if (!Digits(s, *at + 1, 2, &h) || *at + 3 >= s.size() || s[*at + 3] != ':' || !Digits(s, *at + 4, 2, &m)) {
    return false;
  }
  if (h > 14 || m > 59) return false;
  v->has_tz = true;
  v->tz_minutes = static_cast<int16_t>((s[*at] == '-' ? -1 : 1) * (h * 60 + m));
  *at += 6;
  return true;
}

void Append2(std::string& out, int v) {
  out.push_back(static_cast<char>('0' + v / 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

DtPrecision Collapse(DtPrecision p) { return p == DtPrecision::kMillisecond ? DtPrecision::kSecond : p; }

int Cmp(int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); }

std::optional<int> CompareFields(const DateTime& a, const DateTime& b) {
  DtPrecision pa = Collapse(a.precision), pb = Collapse(b.precision);
  DtPrecision p = pa < pb ? pa : pb;
  bool time = a.kind == DtKind::kTime;
  if (!time) {
    if (int c = Cmp(a.year, b.year)) return c;
    if (p >= DtPrecision::kMonth) {
      if (int c = Cmp(a.month, b.month)) return c;
    }
    if (p >= DtPrecision::kDay) {
      if (int c = Cmp(a.day, b.day)) return c;
    }
  }
  if (p >= DtPrecision::kHour) {
    if (int c = Cmp(a.hour, b.hour)) return c;
  }
  if (p >= DtPrecision::kMinute) {
    if (int c = Cmp(a.minute, b.minute)) return c;
  }
  if (p >= DtPrecision::kSecond) {
    if (int c = Cmp(a.second * 1000 + a.millis, b.second * 1000 + b.millis)) return c;
  }
  if (pa != pb) return std::nullopt;
  return 0;
}

DateTime Shifted(const DateTime& v, int offset_minutes) {
  DateTime r = v;
  FromMillis(ToMillis(v) - offset_minutes * 60000LL, &r);
  return r;
}

}  // namespace

std::optional<DateTime> DateTime::ParseLiteral(std::string_view s) {
  if (!s.empty() && s[0] == 'T') return ParseTime(s);
  DateTime v;
  int y, m, d;
  if (!Digits(s, 0, 4, &y)) return std::nullopt;
  v.year = static_cast<int16_t>(y);
  v.precision = DtPrecision::kYear;
  size_t at = 4;
  if (at < s.size() && s[at] == '-') {
    if (!Digits(s, at + 1, 2, &m) || m < 1 || m > 12) return std::nullopt;
    v.month = static_cast<uint8_t>(m);
    v.precision = DtPrecision::kMonth;
    at += 3;
    if (at < s.size() && s[at] == '-') {
      if (!Digits(s, at + 1, 2, &d) || d < 1 || d > DaysInMonth(y, m)) return std::nullopt;
      v.day = static_cast<uint8_t>(d);
      v.precision = DtPrecision::kDay;
      at += 3;
    }
  }
  if (at < s.size() && s[at] == 'T') {
    v.kind = DtKind::kDateTime;
    ++at;
    if (at < s.size() && s[at] >= '0' && s[at] <= '9') {
      if (v.precision != DtPrecision::kDay) return std::nullopt;
      if (!ParseTimePart(s, &at, &v)) return std::nullopt;
      if (!ParseTz(s, &at, &v)) return std::nullopt;
    }
  }
  if (at != s.size()) return std::nullopt;
  return v;
}

std::optional<DateTime> DateTime::ParseDate(std::string_view s) {
  auto v = ParseLiteral(s);
  if (!v || v->kind != DtKind::kDate) return std::nullopt;
  return v;
}

std::optional<DateTime> DateTime::ParseDateTime(std::string_view s) {
  auto v = ParseLiteral(s);
  if (!v || v->kind == DtKind::kTime) return std::nullopt;
  v->kind = DtKind::kDateTime;
  return v;
}

std::optional<DateTime> DateTime::ParseTime(std::string_view s) {
  size_t at = 0;
  if (!s.empty() && s[0] == 'T') at = 1;
  DateTime v;
  v.kind = DtKind::kTime;
  if (!ParseTimePart(s, &at, &v) || at != s.size()) return std::nullopt;
  return v;
}

DateTime DateTime::Now() {
  auto now = std::chrono::system_clock::now();
  int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  // The local offset changes at most every quarter hour; localtime_r is slow.
  thread_local int64_t cached_bucket = -1;
  thread_local int cached_offset = 0;
  int64_t bucket = secs / 900;
  if (bucket != cached_bucket) {
    std::tm local{};
    localtime_r(&secs, &local);
    cached_offset = static_cast<int>(local.tm_gmtoff / 60);
    cached_bucket = bucket;
  }
  int offset = cached_offset;
  DateTime v;
  v.kind = DtKind::kDateTime;
  v.precision = DtPrecision::kMillisecond;
  FromMillis(ms + offset * 60000LL + DaysFromCivil(1970, 1, 1) * kMsPerDay, &v);
  v.has_tz = true;
  v.tz_minutes = static_cast<int16_t>(offset);
  v.tz_z = offset == 0;
  return v;
}

void DateTime::AppendTo(std::string& out) const {
  if (kind != DtKind::kTime) {
    out.push_back(static_cast<char>('0' + year / 1000));
    out.push_back(static_cast<char>('0' + year / 100 % 10));
    Append2(out, year % 100);
    if (precision >= DtPrecision::kMonth) {
      out.push_back('-');
      Append2(out, month);
    }
    if (precision >= DtPrecision::kDay) {
      out.push_back('-');
      Append2(out, day);
    }
    if (kind == DtKind::kDate || precision <= DtPrecision::kDay) return;
    out.push_back('T');
  }
  Append2(out, hour);
  if (precision >= DtPrecision::kMinute) {
    out.push_back(':');
    Append2(out, minute);
  }
  if (precision >= DtPrecision::kSecond) {
    out.push_back(':');
    Append2(out, second);
  }
  if (precision >= DtPrecision::kMillisecond) {
    out.push_back('.');
    out.push_back(static_cast<char>('0' + millis / 100));
    Append2(out, millis % 100);
  }
  if (kind == DtKind::kDateTime && has_tz) {
    if (tz_z && tz_minutes == 0) {
      out.push_back('Z');
    } else {
      int t = tz_minutes < 0 ? -tz_minutes : tz_minutes;
      out.push_back(tz_minutes < 0 ? '-' : '+');
      Append2(out, t / 60);
      out.push_back(':');
      Append2(out, t % 60);
    }
  }
}

std::string DateTime::ToString() const {
  std::string s;
  AppendTo(s);
  return s;
}

std::optional<int> DateTime::Compare(const DateTime& a, const DateTime& b) {
  if ((a.kind == DtKind::kTime) != (b.kind == DtKind::kTime)) return std::nullopt;
  if (a.kind == DtKind::kTime) return CompareFields(a, b);
  bool timed = a.precision >= DtPrecision::kHour && b.precision >= DtPrecision::kHour;
  if (!timed || (!a.has_tz && !b.has_tz)) return CompareFields(a, b);
  if (a.has_tz && b.has_tz) return CompareFields(Shifted(a, a.tz_minutes), Shifted(b, b.tz_minutes));
  // One offset unknown: the answer must hold for every offset it could have.
  const DateTime& known = a.has_tz ? a : b;
  const DateTime& unknown = a.has_tz ? b : a;
  DateTime k = Shifted(known, known.tz_minutes);
  auto lo = CompareFields(k, Shifted(unknown, 14 * 60));
  auto hi = CompareFields(k, Shifted(unknown, -14 * 60));
  if (!lo || !hi || *lo != *hi || *lo == 0) return std::nullopt;
  return a.has_tz ? *lo : -*lo;
}

bool DateTime::Equivalent(const DateTime& a, const DateTime& b) {
  if (Collapse(a.precision) != Collapse(b.precision)) return false;
  auto c = Compare(a, b);
  return c && *c == 0;
}

bool DateTime::Add(int64_t amount, CalendarUnit unit, DateTime* out) const {
  DateTime r = *this;
  if (kind == DtKind::kTime && unit <= CalendarUnit::kDay) return false;
  static constexpr DtPrecision kUnitPrecision[] = {DtPrecision::kYear,   DtPrecision::kMonth,      DtPrecision::kDay,
                                                   DtPrecision::kDay,    DtPrecision::kHour,       DtPrecision::kMinute,
                                                   DtPrecision::kSecond, DtPrecision::kMillisecond};
  DtPrecision up = kUnitPrecision[static_cast<int>(unit)];
  if (up > precision) {
    // Express the amount in the value's own precision, dropping the rest.
    static constexpr int64_t kUnitMs[] = {0, 0, 7 * kMsPerDay, kMsPerDay, 3600000, 60000, 1000, 1};
    if (unit == CalendarUnit::kMonth) {
      amount /= 12;
      unit = CalendarUnit::kYear;
    } else {
      int64_t ms = amount * kUnitMs[static_cast<int>(unit)];
      switch (precision) {
        case DtPrecision::kYear: amount = ms / (365 * kMsPerDay), unit = CalendarUnit::kYear; break;
        case DtPrecision::kMonth: amount = ms / (30 * kMsPerDay), unit = CalendarUnit::kMonth; break;
        case DtPrecision::kDay: amount = ms / kMsPerDay, unit = CalendarUnit::kDay; break;
        case DtPrecision::kHour: amount = ms / 3600000, unit = CalendarUnit::kHour; break;
        case DtPrecision::kMinute: amount = ms / 60000, unit = CalendarUnit::kMinute; break;
        default: amount = ms / 1000, unit = CalendarUnit::kSecond; break;
      }
    }
  }
  if (unit == CalendarUnit::kYear || unit == CalendarUnit::kMonth) {
    int64_t months = unit == CalendarUnit::kYear ? amount * 12 : amount;
    int64_t total = static_cast<int64_t>(r.year) * 12 + (r.month - 1) + months;
    int64_t y = total >= 0 ? total / 12 : -1;
    if (y < 1 || y > 9999) return false;
    r.year = static_cast<int16_t>(y);
    r.month = static_cast<uint8_t>(total % 12 + 1);
    int dim = DaysInMonth(r.year, r.month);
    if (r.day > dim) r.day = static_cast<uint8_t>(dim);
    *out = r;
    return true;
  }
  static constexpr int64_t kMs[] = {0, 0, 7 * kMsPerDay, kMsPerDay, 3600000, 60000, 1000, 1};
  int64_t delta = amount * kMs[static_cast<int>(unit)];
  int64_t ms = ToMillis(r) + delta;
  if (kind == DtKind::kTime) ms = ((ms % kMsPerDay) + kMsPerDay) % kMsPerDay;
  if (!FromMillis(ms, &r)) return false;
  *out = r;
  return true;
}

namespace {

std::optional<DtPrecision> PrecisionFor(DtKind kind, int digits) {
  if (kind == DtKind::kTime) {
    switch (digits) {
      case 2: return DtPrecision::kHour;
      case 4: return DtPrecision::kMinute;
      case 6: return DtPrecision::kSecond;
      case 9: return DtPrecision::kMillisecond;
      default: return std::nullopt;
    }
  }
  switch (digits) {
    case 4: return DtPrecision::kYear;
    case 6: return DtPrecision::kMonth;
    case 8: return DtPrecision::kDay;
    default: break;
  }
  if (kind == DtKind::kDate) return std::nullopt;
  switch (digits) {
    case 10: return DtPrecision::kHour;
    case 12: return DtPrecision::kMinute;
    case 14: return DtPrecision::kSecond;
    case 17: return DtPrecision::kMillisecond;
    default: return std::nullopt;
  }
}

std::optional<DateTime> Boundary(const DateTime& v, int digits, bool high) {
  auto target = PrecisionFor(v.kind, digits);
  if (!target) return std::nullopt;
  DateTime r = v;
  // FHIR has no hour precision: a value such as T08 is read as T08:00
  // (HL7's test suite expects @2014-01-01T08.highBoundary(17) to be
  // 08:00:59.999).
  DtPrecision have = v.precision == DtPrecision::kHour ? DtPrecision::kMinute : v.precision;
  if (have < DtPrecision::kMonth) r.month = high ? 12 : 1;
  if (have < DtPrecision::kDay) r.day = static_cast<uint8_t>(high ? DaysInMonth(r.year, r.month) : 1);
  if (have < DtPrecision::kHour) r.hour = high ? 23 : 0;
  if (have < DtPrecision::kMinute) r.minute = high ? 59 : 0;
  if (have < DtPrecision::kSecond) r.second = high ? 59 : 0;
  if (have < DtPrecision::kMillisecond) r.millis = high ? 999 : 0;
  r.precision = *target;
  if (v.kind == DtKind::kDateTime && *target >= DtPrecision::kHour && !v.has_tz) {
    r.has_tz = true;
    r.tz_z = false;
    r.tz_minutes = static_cast<int16_t>(high ? -12 * 60 : 14 * 60);
  }
  return r;
}

}  // namespace

std::optional<DateTime> DateTime::LowBoundary(int digits) const { return Boundary(*this, digits, false); }
std::optional<DateTime> DateTime::HighBoundary(int digits) const { return Boundary(*this, digits, true); }

int DateTime::PrecisionDigits() const {
  if (kind == DtKind::kTime) {
    static constexpr int kTime[] = {0, 0, 0, 2, 4, 6, 9};
    return kTime[static_cast<int>(precision)];
  }
  static constexpr int kDate[] = {4, 6, 8, 10, 12, 14, 17};
  return kDate[static_cast<int>(precision)];
}

}  // namespace bevan::fhirpath
