#include "crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

namespace sluice::storage {

namespace {

constexpr uint32_t poly = 0x82f63b78;  // reflected Castagnoli polynomial

constexpr std::array<std::array<uint32_t, 256>, 8> make_tables() {
  std::array<std::array<uint32_t, 256>, 8> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i)
    for (size_t k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  return t;
}
constexpr auto tables = make_tables();

#if defined(__x86_64__)
bool has_sse42() noexcept {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & bit_SSE4_2) != 0;
}

// The CRC register after `len` zero bytes, starting from crc (slow; used
// only to build the tables below).
uint32_t shift_slow(uint32_t crc, size_t len) noexcept {
  while (len--) crc = (crc >> 8) ^ tables[0][crc & 0xff];
  return crc;
}

constexpr size_t block = 8 * 256;  // bytes per stream per round

// shift_slow(crc, block) is linear in crc, so it is the XOR of four table
// lookups, one per byte of crc.
struct shift_tables {
  std::array<std::array<uint32_t, 256>, 4> t{};
  shift_tables() {
    for (uint32_t k = 0; k < 4; ++k)
      for (uint32_t b = 0; b < 256; ++b) t[k][b] = shift_slow(b << (8 * k), block);
  }
  uint32_t operator()(uint32_t crc) const noexcept {
    return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
  }
};
const shift_tables shift_block;

__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(uint32_t crc, const uint8_t* p, size_t n) noexcept {
  uint64_t c0 = ~crc;
  // Three independent streams hide the crc32 instruction's 3-cycle latency;
  // R(s, A|B) = shift(R(s, A), |B|) ^ R(0, B) joins them.
  while (n >= 3 * block) {
    uint64_t c1 = 0, c2 = 0;
    const uint8_t* p1 = p + block;
    const uint8_t* p2 = p + 2 * block;
    for (size_t i = 0; i < block; i += 8) {
      uint64_t a, b, d;
      std::memcpy(&a, p + i, 8);
      std::memcpy(&b, p1 + i, 8);
      std::memcpy(&d, p2 + i, 8);
      c0 = _mm_crc32_u64(c0, a);
      c1 = _mm_crc32_u64(c1, b);
      c2 = _mm_crc32_u64(c2, d);
    }
    uint32_t combined = shift_block(static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c1);
    combined = shift_block(combined) ^ static_cast<uint32_t>(c2);
    c0 = combined;
    p += 3 * block;
    n -= 3 * block;
  }
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c0 = _mm_crc32_u64(c0, v);
    p += 8;
    n -= 8;
  }
  uint32_t c = static_cast<uint32_t>(c0);
  while (n--) c = _mm_crc32_u8(c, *p++);
  return ~c;
}
#endif

}  // namespace

uint32_t crc32c_portable(uint32_t crc, const void* data, size_t n) noexcept {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (n >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = tables[7][lo & 0xff] ^ tables[6][(lo >> 8) & 0xff] ^ tables[5][(lo >> 16) & 0xff] ^ tables[4][lo >> 24] ^
        tables[3][hi & 0xff] ^ tables[2][(hi >> 8) & 0xff] ^ tables[1][(hi >> 16) & 0xff] ^ tables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ tables[0][(c ^ *p++) & 0xff];
  return ~c;
}

bool crc32c_hardware_accelerated() noexcept {
#if defined(__x86_64__)
  static const bool yes = has_sse42();
  return yes;
#else
  return false;
#endif
}

uint32_t crc32c(uint32_t crc, const void* data, size_t size) noexcept {
#if defined(__x86_64__)
  if (crc32c_hardware_accelerated()) return crc32c_sse42(crc, static_cast<const uint8_t*>(data), size);
#endif
  return crc32c_portable(crc, data, size);
}

}  // namespace sluice::storage
