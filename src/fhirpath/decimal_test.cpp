#include "fhirpath/decimal.h"

#include <gtest/gtest.h>

namespace bevan::fhirpath {
namespace {

Decimal D(const char* s) { return *Decimal::Parse(s); }

TEST(DecimalTest, ParsesAndPrintsKeepingScale) {
  EXPECT_EQ(D("1.50").ToString(), "1.50");
  EXPECT_EQ(D("-0.0").ToString(), "-0.0");
  EXPECT_EQ(D("1e2").ToString(), "100");
  EXPECT_EQ(D("2.5E-2").ToString(), "0.025");
  EXPECT_EQ(D("1234567890987654321.0").ToString(), "1234567890987654321.0");
  EXPECT_FALSE(Decimal::Parse("1.").has_value());
  EXPECT_FALSE(Decimal::Parse("abc").has_value());
}

TEST(DecimalTest, ComparesByValue) {
  EXPECT_EQ(D("1.10"), D("1.1"));
  EXPECT_EQ(D("0.0"), D("0"));
  EXPECT_LT(D("1.0").Compare(D("1.2")), 0);
  EXPECT_GT(D("-1").Compare(D("-2.5")), 0);
}

TEST(DecimalTest, Arithmetic) {
  Decimal r;
  ASSERT_TRUE(Decimal::Add(D("1.2"), D("1.8"), &r));
  EXPECT_EQ(r.ToString(), "3.0");
  ASSERT_TRUE(Decimal::Mul(D("1.2"), D("1.8"), &r));
  EXPECT_EQ(r.ToString(), "2.16");
  ASSERT_TRUE(Decimal::Div(D("1"), D("2"), &r));
  EXPECT_EQ(r.ToString(), "0.5");
  ASSERT_TRUE(Decimal::Div(D("1.2"), D("1.8"), &r));
  EXPECT_EQ(r.Round(2).ToString(), "0.67");
  EXPECT_FALSE(Decimal::Div(D("1"), D("0"), &r));
  ASSERT_TRUE(Decimal::Mod(D("2.2"), D("1.8"), &r));
  EXPECT_EQ(r, D("0.4"));
  ASSERT_TRUE(Decimal::IntDiv(D("2.2"), D("1.8"), &r));
  EXPECT_EQ(r, D("1"));
}

TEST(DecimalTest, Rounding) {
  EXPECT_EQ(D("3.14159").Round(3).ToString(), "3.142");
  EXPECT_EQ(D("-2.1").Floor().ToString(), "-3");
  EXPECT_EQ(D("-1.1").Ceiling().ToString(), "-1");
  EXPECT_EQ(D("-1.56").Truncate().ToString(), "-1");
}

}  // namespace
}  // namespace bevan::fhirpath
