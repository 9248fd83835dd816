#include "rest/time.h"

#include <gtest/gtest.h>

#include <ctime>

#include "rest/url.h"

namespace bevan::rest {
namespace {

TEST(RestTime, FormatsAndParsesInstants) {
  EXPECT_EQ(FormatInstant(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatInstant(1'700'000'000'123'456), "2023-11-14T22:13:20.123456Z");
  auto r = ParseDateTimeRange("2023-11-14T22:13:20.123456Z");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->lo, 1'700'000'000'123'456);
  EXPECT_EQ(r->hi, 1'700'000'000'123'456);
}

TEST(RestTime, RangesByPrecision) {
  auto year = ParseDateTimeRange("2024");
  ASSERT_TRUE(year);
  EXPECT_EQ(FormatInstant(year->lo), "2024-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatInstant(year->hi), "2024-12-31T23:59:59.999999Z");
  auto month = ParseDateTimeRange("2024-02");
  ASSERT_TRUE(month);
  EXPECT_EQ(FormatInstant(month->hi), "2024-02-29T23:59:59.999999Z");
  auto zoned = ParseDateTimeRange("2024-02-01T10:00:00+01:00");
  ASSERT_TRUE(zoned);
  EXPECT_EQ(FormatInstant(zoned->lo), "2024-02-01T09:00:00.000000Z");
  EXPECT_EQ(FormatInstant(zoned->hi), "2024-02-01T09:00:00.999999Z");
  EXPECT_TRUE(ParseDateTimeRange("2024-02-01T10:00:00"));  // no zone: UTC
  EXPECT_FALSE(ParseDateTimeRange("2024-02-30"));
  EXPECT_FALSE(ParseDateTimeRange("yesterday"));
}

TEST(RestTime, HttpDates) {
  EXPECT_EQ(FormatHttpDate(784111777'000'000), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(FormatHttpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(951868799'999'999), "Tue, 29 Feb 2000 23:59:59 GMT");
  EXPECT_EQ(FormatHttpDate(253402300799'000'000), "Fri, 31 Dec 9999 23:59:59 GMT");
  EXPECT_EQ(*ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777'000'000);
  EXPECT_FALSE(ParseHttpDate("06 Nov 1994"));
}

TEST(RestUrl, Query) {
  auto q = ParseQuery("identifier=http%3A%2F%2Fx%7C1&name=a+b&empty=");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 3u);
  EXPECT_EQ((*q)[0].second, "http://x|1");
  EXPECT_EQ((*q)[1].second, "a b");
  EXPECT_EQ((*q)[2].second, "");
  EXPECT_FALSE(ParseQuery("a=%zz"));
  EXPECT_FALSE(ParseQuery("a=%0"));
  EXPECT_FALSE(ParseQuery("a=%00"));
  EXPECT_EQ(PercentEncode("a b|c/"), "a%20b%7Cc%2F");
  EXPECT_EQ(QueryWithout(*q, "name"), "?identifier=http%3A%2F%2Fx%7C1&empty=");
  EXPECT_EQ(QueryWithout(QueryParams{{"_cursor", "x"}}, "_cursor"), "");
}

// The hand-written formatter agrees with strftime over gmtime_r, day by day
// and at odd seconds, from 1970 to 9999.
TEST(RestTime, HttpDateMatchesStrftime) {
  auto reference = [](int64_t secs) {
    time_t t = static_cast<time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return std::string(buf);
  };
  for (int64_t secs = 0; secs < 253402300800; secs += 86400 * 7 + 3601 * 5 + 17) {
    ASSERT_EQ(FormatHttpDate(secs * 1'000'000 + 999'999), reference(secs)) << secs;
  }
  for (int64_t secs = 946684800 - 86400 * 400; secs < 946684800 + 86400 * 400; secs += 86399) {
    ASSERT_EQ(FormatHttpDate(secs * 1'000'000), reference(secs)) << secs;
  }
  EXPECT_EQ(FormatHttpDate(-1'000'000), reference(-1));  // outside the fast range: strftime
}

TEST(RestUrl, PositiveIntegers) {
  EXPECT_EQ(ParsePositiveInt("3"), 3);
  EXPECT_EQ(ParsePositiveInt("9223372036854775807"), INT64_MAX);
  for (const char* bad : {"", "0", "-1", "+1", " 1", "1 ", "1.0", "x", "9223372036854775808"}) {
    EXPECT_FALSE(ParsePositiveInt(bad)) << bad;
  }
}

}  // namespace
}  // namespace bevan::rest
