#include "fhirpath/ucum.h"

#include <gtest/gtest.h>

namespace bevan::fhirpath::ucum {
namespace {

Decimal D(const char* s) { return *Decimal::Parse(s); }

TEST(UcumTest, ConvertsCommonUnits) {
  Decimal r;
  ASSERT_TRUE(Convert(D("4000.0"), "mg", "g", &r));
  EXPECT_EQ(r, D("4"));
  ASSERT_TRUE(Convert(D("1"), "[lb_av]", "kg", &r));
  EXPECT_EQ(r, D("0.45359237"));
  ASSERT_TRUE(Convert(D("1"), "wk", "d", &r));
  EXPECT_EQ(r, D("7"));
  ASSERT_TRUE(Convert(D("120"), "mm[Hg]", "kPa", &r));
  EXPECT_EQ(r, D("15.99864"));
  ASSERT_TRUE(Convert(D("37"), "Cel", "K", &r));
  EXPECT_EQ(r, D("310.15"));
  ASSERT_TRUE(Convert(D("1"), "mmol/L", "umol/mL", &r));
  EXPECT_EQ(r, D("1"));
}

TEST(UcumTest, Commensurability) {
  EXPECT_TRUE(Comparable("cm", "[in_i]"));
  EXPECT_FALSE(Comparable("cm", "s"));
  EXPECT_FALSE(Comparable("cm", "[s]"));
  EXPECT_TRUE(Comparable("10*3/uL", "10*9/L"));
  EXPECT_TRUE(Comparable("kg.m/s2", "N"));
  EXPECT_TRUE(Comparable("mg/dL{calc}", "g/L"));
  EXPECT_FALSE(Comparable("[iU]", "[arb'U]"));
  EXPECT_FALSE(Resolve("furlong").has_value());
}

}  // namespace
}  // namespace bevan::fhirpath::ucum
