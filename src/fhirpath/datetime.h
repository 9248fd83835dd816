// FHIRPath Date, DateTime and Time values with their precision.
//
// A partial value keeps the precision it was written with (@2015-02 is a
// Date of month precision); comparisons follow FHIRPath: components are
// compared down to the coarser precision, seconds and milliseconds count as
// one precision, and a comparison that the precisions leave open yields no
// answer (nullopt). Plain 16-byte value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bevan::fhirpath {

enum class DtKind : uint8_t { kDate, kDateTime, kTime };
enum class DtPrecision : uint8_t { kYear, kMonth, kDay, kHour, kMinute, kSecond, kMillisecond };

// Units of calendar arithmetic.
enum class CalendarUnit : uint8_t { kYear, kMonth, kWeek, kDay, kHour, kMinute, kSecond, kMillisecond };

struct DateTime {
  int16_t year = 0;
  uint16_t millis = 0;
  int16_t tz_minutes = 0;  // offset from UTC when has_tz
  uint8_t month = 1, day = 1, hour = 0, minute = 0, second = 0;
  DtPrecision precision = DtPrecision::kYear;
  DtKind kind = DtKind::kDate;
  bool has_tz = false;
  bool tz_z = false;  // written as "Z"

  // FHIR / FHIRPath text without '@': "2015", "2015-02-04", "2015T",
  // "2015-02-04T14:34:28.123+10:00" (kind DateTime when a 'T' or time is
  // present); nullopt if malformed. ParseDate accepts dates only,
  // ParseTime times only ("14:34", leading 'T' allowed), ParseDateTime both
  // date-only and date-time forms (as DateTime).
  static std::optional<DateTime> ParseLiteral(std::string_view text);
  static std::optional<DateTime> ParseDate(std::string_view text);
  static std::optional<DateTime> ParseDateTime(std::string_view text);
  static std::optional<DateTime> ParseTime(std::string_view text);

  // The current instant (local offset, millisecond precision), and its date and time of day.
  static DateTime Now();

  // Text without '@': "2015-02-04", "2015-02-04T14:34:28.123+10:00", "14:34".
  void AppendTo(std::string& out) const;
  std::string ToString() const;

  // -1, 0 or 1; nullopt when precision or a missing offset leaves it open,
  // or the kinds cannot be compared (Time with Date).
  static std::optional<int> Compare(const DateTime& a, const DateTime& b);
  // FHIRPath equivalence: same precision and equal.
  static bool Equivalent(const DateTime& a, const DateTime& b);

  // Calendar arithmetic: adds `amount` of `unit`. Units finer than the
  // value's precision are converted to its precision (truncating). False if
  // the result is out of range or the unit does not apply (time units to a
  // Time are fine; years to a Time are not).
  bool Add(int64_t amount, CalendarUnit unit, DateTime* out) const;

  // The lowest / highest value within the precision, expressed at
  // `precision_digits` (Date 4/6/8, DateTime 4..17, Time 2..9); nullopt if
  // the digits are not valid for the kind.
  std::optional<DateTime> LowBoundary(int precision_digits) const;
  std::optional<DateTime> HighBoundary(int precision_digits) const;
  // Digits of the value's precision (@2014 is 4, @T10:30 is 4).
  int PrecisionDigits() const;
};

}  // namespace bevan::fhirpath
