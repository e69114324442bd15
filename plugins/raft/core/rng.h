// A small seeded generator (xoshiro256**, seeded by splitmix64): the only
// source of randomness in the core and the simulator, identical on every
// platform (std::uniform_int_distribution is implementation-defined, so a
// seed would not replay across standard libraries).
#pragma once

#include <sluice/sdk/assert.h>

#include <cstdint>

namespace sluice::raft {

class rng {
 public:
  explicit rng(uint64_t seed) noexcept {
    for (auto& s : _s) s = splitmix(seed);
  }
  uint64_t next() noexcept {
    const uint64_t result = rotl(_s[1] * 5, 7) * 9;
    const uint64_t t = _s[1] << 17;
    _s[2] ^= _s[0];
    _s[3] ^= _s[1];
    _s[1] ^= _s[2];
    _s[0] ^= _s[3];
    _s[2] ^= t;
    _s[3] = rotl(_s[3], 45);
    return result;
  }
  // Uniform in [0, n), n > 0 (Lemire's multiply-shift; the bias is below 2^-32 for our n).
  uint64_t below(uint64_t n) noexcept {
    SLUICE_ASSERT(n > 0);
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  // Uniform in [lo, hi].
  uint64_t between(uint64_t lo, uint64_t hi) noexcept {
    SLUICE_ASSERT(lo <= hi);
    return lo + below(hi - lo + 1);
  }
  // True with probability per_million / 1e6.
  bool chance(uint32_t per_million) noexcept { return below(1'000'000) < per_million; }

  static uint64_t splitmix(uint64_t& x) noexcept {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  uint64_t _s[4];
};

}  // namespace sluice::raft
