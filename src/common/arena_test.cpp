#include "common/arena.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace bevan {
namespace {

TEST(Arena, AlignsAndGrows) {
  Arena arena(64);
  for (int i = 0; i < 1000; ++i) {
    auto* p = arena.AllocateArray<uint64_t>(3);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % alignof(uint64_t), 0u);
    p[0] = p[1] = p[2] = static_cast<uint64_t>(i);
  }
  EXPECT_GE(arena.BytesReserved(), 1000u * 24);
}

TEST(Arena, LargeAllocationsKeepCurrentBlock) {
  Arena arena(128);
  char* a = static_cast<char*>(arena.Allocate(8, 1));
  char* big = static_cast<char*>(arena.Allocate(100000, 8));
  char* b = static_cast<char*>(arena.Allocate(8, 1));
  EXPECT_EQ(b, a + 8);  // still in the first block
  big[99999] = 'x';
  EXPECT_EQ(big[99999], 'x');
}

TEST(Arena, CopyStringAndReset) {
  Arena arena;
  std::string src = "Patient.identifier[0].value";
  std::string_view v = arena.CopyString(src);
  src.assign(src.size(), '?');
  EXPECT_EQ(v, "Patient.identifier[0].value");
  arena.Reset();
  EXPECT_EQ(arena.CopyString("abc"), "abc");
}

}  // namespace
}  // namespace bevan
