#include "common/ids.h"

#include <cstdint>
#include <random>

namespace bevan {

namespace {

uint64_t Next() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

std::string RandomHex(size_t n) {
  std::string out(n, '0');
  uint64_t bits = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i % 16 == 0) bits = Next();
    out[i] = kHex[bits & 0xF];
    bits >>= 4;
  }
  return out;
}

std::string NewUuid() {
  uint64_t a = Next(), b = Next();
  a = (a & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // variant 10
  std::string out;
  out.reserve(36);
  auto put = [&](uint64_t v, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) out += kHex[(v >> (i * 4)) & 0xF];
  };
  put(a >> 32, 8);
  out += '-';
  put((a >> 16) & 0xFFFF, 4);
  out += '-';
  put(a & 0xFFFF, 4);
  out += '-';
  put(b >> 48, 4);
  out += '-';
  put(b & 0xFFFFFFFFFFFFULL, 12);
  return out;
}

}  // namespace bevan
