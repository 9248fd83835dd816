#include "fhirpath/datetime.h"

#include <gtest/gtest.h>

namespace bevan::fhirpath {
namespace {

DateTime T(const char* s) { return *DateTime::ParseLiteral(s); }

TEST(DateTimeTest, ParsesAndPrints) {
  EXPECT_EQ(T("2015").ToString(), "2015");
  EXPECT_EQ(T("2015-02-04T14:34:28.123+10:00").ToString(), "2015-02-04T14:34:28.123+10:00");
  EXPECT_EQ(T("T14:34").ToString(), "14:34");
  EXPECT_EQ(T("2015T").kind, DtKind::kDateTime);
  EXPECT_FALSE(DateTime::ParseLiteral("2015-13").has_value());
  EXPECT_FALSE(DateTime::ParseLiteral("2015-02-30").has_value());
}

TEST(DateTimeTest, ComparesWithPrecision) {
  EXPECT_EQ(DateTime::Compare(T("2012-04-15"), T("2012-04-16")), -1);
  EXPECT_FALSE(DateTime::Compare(T("2012-04-15"), T("2012-04-15T10:00:00")).has_value());
  EXPECT_EQ(DateTime::Compare(T("2012-04-15T15:30:31"), T("2012-04-15T15:30:31.0")), 0);
  EXPECT_EQ(DateTime::Compare(T("2012-04-15T15:00:00+02:00"), T("2012-04-15T16:00:00+03:00")), 0);
  EXPECT_FALSE(DateTime::Compare(T("2012-04-15T15:00:00Z"), T("2012-04-15T10:00:00")).has_value());
}

TEST(DateTimeTest, CalendarArithmetic) {
  DateTime r;
  ASSERT_TRUE(T("1973-12-25").Add(7, CalendarUnit::kDay, &r));
  EXPECT_EQ(r.ToString(), "1974-01-01");
  ASSERT_TRUE(T("2014-01-31").Add(1, CalendarUnit::kMonth, &r));
  EXPECT_EQ(r.ToString(), "2014-02-28");
  ASSERT_TRUE(T("1973-12-25T00:00:00.000+10:00").Add(1, CalendarUnit::kHour, &r));
  EXPECT_EQ(r.ToString(), "1973-12-25T01:00:00.000+10:00");
}

TEST(DateTimeTest, Boundaries) {
  EXPECT_EQ(T("2014").LowBoundary(6)->ToString(), "2014-01");
  EXPECT_EQ(T("2014").HighBoundary(6)->ToString(), "2014-12");
  EXPECT_EQ(T("T10:30").HighBoundary(9)->ToString(), "10:30:59.999");
  EXPECT_EQ(T("2014-01-01T08:05+08:00").LowBoundary(17)->ToString(), "2014-01-01T08:05:00.000+08:00");
}

}  // namespace
}  // namespace bevan::fhirpath
