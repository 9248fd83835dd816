#include "common/ids.h"

#include <gtest/gtest.h>

#include <set>

namespace bevan {
namespace {

TEST(Ids, UuidsAreVersion4AndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string u = NewUuid();
    ASSERT_EQ(u.size(), 36u);
    EXPECT_EQ(u[8], '-');
    EXPECT_EQ(u[14], '4');                                                      // version
    EXPECT_TRUE(u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b');  // variant
    for (char c : u) EXPECT_TRUE(c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << u;
    EXPECT_TRUE(seen.insert(u).second);
  }
}

TEST(Ids, RandomHex) {
  EXPECT_EQ(RandomHex(32).size(), 32u);
  EXPECT_EQ(RandomHex(0), "");
  EXPECT_NE(RandomHex(32), RandomHex(32));
}

}  // namespace
}  // namespace bevan
