// Deterministic pseudo-random numbers for the synthetic data generator.
//
// xoshiro256** seeded through splitmix64: the same seed gives the same
// integer sequence on every platform. The helpers that return doubles use
// plain IEEE operations (no libm), exact except in Normalish.
// Not cryptographic. Not thread-safe: one Rng per thread or stream.
#pragma once

#include <cstdint>
#include <span>

namespace bevan::synth {

// splitmix64's finaliser: a bijection on 64-bit values with good avalanche.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t& word : state_) {
      s += 0x9e3779b97f4a7c15ULL;
      word = Mix64(s);
    }
  }

  // A stream derived from `seed` and `stream` (for example a patient's index),
  // independent of how many numbers other streams drew.
  static Rng ForStream(uint64_t seed, uint64_t stream) { return Rng(Mix64(seed ^ Mix64(stream + 0x5eed))); }

  uint64_t Next() {
    const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, n) (n > 0); multiply-shift, bias below 2^-32.
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(((Next() >> 32) * n) >> 32); }
  // Uniform in [lo, hi] (lo <= hi).
  int Range(int lo, int hi) { return lo + static_cast<int>(Below(static_cast<uint32_t>(hi - lo + 1))); }
  // True with probability per_mille / 1000.
  bool PerMille(int per_mille) { return static_cast<int>(Below(1000)) < per_mille; }
  // Uniform double in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Approximately normal (Irwin-Hall of four uniforms): mean, sd; bounded
  // to mean +- 3.46 sd.
  double Normalish(double mean, double sd) {
    double sum = Unit() + Unit() + Unit() + Unit();
    return mean + (sum - 2.0) * 1.7320508075688772 * sd;
  }
  // A uniformly chosen element of a non-empty array or span.
  template <typename Container>
  const auto& Pick(const Container& items) {
    return items[Below(static_cast<uint32_t>(items.size()))];
  }
  // An index drawn with the given integer weights (not all zero).
  size_t Weighted(std::span<const int> weights) {
    int total = 0;
    for (int w : weights) total += w;
    int r = static_cast<int>(Below(static_cast<uint32_t>(total)));
    for (size_t i = 0; i < weights.size(); ++i) {
      if (r < weights[i]) return i;
      r -= weights[i];
    }
    return weights.size() - 1;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};

}  // namespace bevan::synth
