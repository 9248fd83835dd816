#include "synth/calendar.h"

namespace bevan::synth {

namespace {

void Append2(int v, std::string& out) {
  out.push_back(static_cast<char>('0' + v / 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

void Append4(int v, std::string& out) {
  Append2(v / 100, out);
  Append2(v % 100, out);
}

int32_t LastSunday(int year, int month, int last_day) {
  int32_t d = DaysFromCivil({year, month, last_day});
  return d - Weekday(d);
}

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

}  // namespace

// Howard Hinnant's days_from_civil / civil_from_days.
int32_t DaysFromCivil(CivilDate date) {
  int y = date.year - (date.month <= 2 ? 1 : 0);
  int era = (y >= 0 ? y : y - 399) / 400;
  int yoe = y - era * 400;
  int mp = date.month > 2 ? date.month - 3 : date.month + 9;
  int doy = (153 * mp + 2) / 5 + date.day - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

CivilDate CivilFromDays(int32_t days) {
  int z = days + 719468;
  int era = (z >= 0 ? z : z - 146096) / 146097;
  int doe = z - era * 146097;
  int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int mp = (5 * doy + 2) / 153;
  CivilDate c;
  c.day = doy - (153 * mp + 2) / 5 + 1;
  c.month = mp < 10 ? mp + 3 : mp - 9;
  c.year = yoe + era * 400 + (c.month <= 2 ? 1 : 0);
  return c;
}

Result<int32_t> ParseIsoDate(std::string_view text) {
  auto digits = [&](size_t from, size_t n, int* v) {
    *v = 0;
    for (size_t i = from; i < from + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      *v = *v * 10 + (text[i] - '0');
    }
    return true;
  };
  CivilDate c;
  if (text.size() != 10 || text[4] != '-' || text[7] != '-' || !digits(0, 4, &c.year) || !digits(5, 2, &c.month) ||
      !digits(8, 2, &c.day) || c.year < 1900 || c.month < 1 || c.month > 12 || c.day < 1 ||
      c.day > DaysInMonth(c.year, c.month)) {
    return InvalidArgumentError("expected a date YYYY-MM-DD, got \"" + std::string(text) + "\"");
  }
  return DaysFromCivil(c);
}

bool IsBritishSummerTime(int32_t days) {
  int year = CivilFromDays(days).year;
  return days >= LastSunday(year, 3, 31) && days < LastSunday(year, 10, 31);
}

void AppendDate(int32_t days, std::string& out) {
  CivilDate c = CivilFromDays(days);
  Append4(c.year, out);
  out.push_back('-');
  Append2(c.month, out);
  out.push_back('-');
  Append2(c.day, out);
}

void AppendLocalDateTime(int64_t local_minutes, std::string& out) {
  int32_t days = static_cast<int32_t>(local_minutes >= 0 ? local_minutes / 1440 : (local_minutes - 1439) / 1440);
  int minute_of_day = static_cast<int>(local_minutes - static_cast<int64_t>(days) * 1440);
  AppendDate(days, out);
  out.push_back('T');
  Append2(minute_of_day / 60, out);
  out.push_back(':');
  Append2(minute_of_day % 60, out);
  out.append(IsBritishSummerTime(days) ? ":00+01:00" : ":00+00:00");
}

}  // namespace bevan::synth
