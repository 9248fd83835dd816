// Civil dates and UK local times for the synthetic data generator.
//
// A day is a count of days since 1970-01-01; a local time is minutes since
// 1970-01-01T00:00 in UK civil time (GMT in winter, BST in summer), written
// with its offset (+00:00 or +01:00).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bevan::synth {

struct CivilDate {
  int year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..31
};

int32_t DaysFromCivil(CivilDate date);
CivilDate CivilFromDays(int32_t days);

// 0 = Sunday ... 6 = Saturday.
inline int Weekday(int32_t days) { return static_cast<int>(((days % 7) + 11) % 7); }

// Parses "YYYY-MM-DD" (a real calendar date) to days.
Result<int32_t> ParseIsoDate(std::string_view text);

// True when UK clocks show BST on `days` (from the last Sunday of March to
// the day before the last Sunday of October; the changeover hour is ignored).
bool IsBritishSummerTime(int32_t days);

// Appends "YYYY-MM-DD".
void AppendDate(int32_t days, std::string& out);
// Appends "YYYY-MM-DDThh:mm:00+00:00" (or +01:00 in BST) for a local time.
void AppendLocalDateTime(int64_t local_minutes, std::string& out);

}  // namespace bevan::synth
