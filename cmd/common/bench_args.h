// Command-line value parsing shared by the benchmark tools.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace sluice::bench {

// An unsigned decimal in [min, max]; false (out untouched) otherwise.
inline bool parse_u32(const char* s, uint32_t min, uint32_t max, uint32_t& out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || s[0] == '-' || v < min || v > max) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

// Seconds as a decimal in [min, 3600].
inline bool parse_seconds(const char* s, double min, double& out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s, &end);
  if (errno != 0 || *end != '\0' || !(v >= min) || v > 3600.0) return false;
  out = v;
  return true;
}

}  // namespace sluice::bench
