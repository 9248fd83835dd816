#include "fhir/uk_core.h"

#include <gtest/gtest.h>

#include <string>

namespace bevan::fhir::uk {
namespace {

TEST(NhsNumber, ValidNumbers) {
  EXPECT_TRUE(IsValidNhsNumber("9000000009"));  // the reserved test number
  EXPECT_TRUE(IsValidNhsNumber("9434765919"));  // published example
  EXPECT_TRUE(IsValidNhsNumber("4010232137"));
}

TEST(NhsNumber, NearMisses) {
  EXPECT_FALSE(IsValidNhsNumber("9000000008"));  // wrong check digit
  EXPECT_FALSE(IsValidNhsNumber("9000000000"));
  EXPECT_FALSE(IsValidNhsNumber("900000000"));    // nine digits
  EXPECT_FALSE(IsValidNhsNumber("90000000090"));  // eleven digits
  EXPECT_FALSE(IsValidNhsNumber("900000000X"));
  EXPECT_FALSE(IsValidNhsNumber("900 000 0009"));  // spaces are presentation only
  EXPECT_FALSE(IsValidNhsNumber("9434765918"));    // transposed/altered last digit
  EXPECT_FALSE(IsValidNhsNumber("4934765919"));    // transposition of the first two digits
  EXPECT_FALSE(IsValidNhsNumber(""));
}

// Remainder rules: 11 - r == 11 means check digit 0; == 10 means no valid number.
TEST(NhsNumber, CheckDigitEdgeCases) {
  int found_zero = 0, found_ten = 0;
  for (int n = 100000000; n < 100000200; ++n) {
    std::string nine = std::to_string(n);
    int sum = 0;
    for (int i = 0; i < 9; ++i) sum += (nine[static_cast<size_t>(i)] - '0') * (10 - i);
    int expected = 11 - sum % 11;
    int got = NhsCheckDigit(nine);
    if (expected == 11) {
      EXPECT_EQ(got, 0);
      EXPECT_TRUE(IsValidNhsNumber(nine + "0"));
      ++found_zero;
    } else if (expected == 10) {
      EXPECT_EQ(got, -1);
      for (char d = '0'; d <= '9'; ++d) EXPECT_FALSE(IsValidNhsNumber(nine + d)) << nine << d;
      ++found_ten;
    } else {
      EXPECT_EQ(got, expected);
      EXPECT_TRUE(IsValidNhsNumber(nine + static_cast<char>('0' + expected)));
    }
  }
  EXPECT_GT(found_zero, 0);
  EXPECT_GT(found_ten, 0);
}

TEST(OdsCode, Form) {
  EXPECT_TRUE(IsValidOdsCode("RR8"));
  EXPECT_TRUE(IsValidOdsCode("A81001"));
  EXPECT_TRUE(IsValidOdsCode("RR813"));
  EXPECT_FALSE(IsValidOdsCode("rr8"));
  EXPECT_FALSE(IsValidOdsCode("R8"));
  EXPECT_FALSE(IsValidOdsCode("A81-001"));
  EXPECT_FALSE(IsValidOdsCode("ABCDEFGHIJK"));
}

}  // namespace
}  // namespace bevan::fhir::uk
