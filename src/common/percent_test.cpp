#include "common/percent.h"

#include <gtest/gtest.h>

namespace bevan {
namespace {

TEST(Percent, Decodes) {
  EXPECT_EQ(PercentDecode("a%20b%7cc%2F", false), "a b|c/");
  EXPECT_EQ(PercentDecode("a+b", true), "a b");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(PercentDecode("", true), "");
  for (const char* bad : {"%", "%4", "a%zz", "%g0", "%%41"}) EXPECT_FALSE(PercentDecode(bad, true)) << bad;
  // An escaped NUL only where the caller allows it.
  EXPECT_FALSE(PercentDecode("a%00b", true));
  EXPECT_EQ(PercentDecode("a%00b", true, /*allow_nul=*/true), std::string("a\0b", 3));
}

TEST(Percent, EncodesAllButUnreserved) {
  EXPECT_EQ(PercentEncode("aZ09-._~"), "aZ09-._~");
  EXPECT_EQ(PercentEncode("a b|c/+\xc3\xa9"), "a%20b%7Cc%2F%2B%C3%A9");
  EXPECT_EQ(PercentDecode(PercentEncode("x=1&y=\xff"), false), "x=1&y=\xff");
}

}  // namespace
}  // namespace bevan
