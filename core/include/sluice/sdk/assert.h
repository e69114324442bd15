// Always-on assertions. Invariants are checked in release builds too: a
// broken invariant in a broker is a data-loss bug, and crashing loudly with
// the location is better than serving wrong bytes.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace sluice::sdk::detail {
[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line,
                                     const char* msg) noexcept {
  std::fprintf(stderr, "sluice: assertion failed at %s:%d: %s%s%s\n", file, line, expr,
               msg ? " -- " : "", msg ? msg : "");
  std::fflush(stderr);
  std::abort();
}
}  // namespace sluice::sdk::detail

#define SLUICE_ASSERT(expr)                                                          \
  (__builtin_expect(static_cast<bool>(expr), 1)                                      \
       ? static_cast<void>(0)                                                        \
       : ::sluice::sdk::detail::assert_fail(#expr, __FILE__, __LINE__, nullptr))

#define SLUICE_ASSERT_MSG(expr, msg)                                                 \
  (__builtin_expect(static_cast<bool>(expr), 1)                                      \
       ? static_cast<void>(0)                                                        \
       : ::sluice::sdk::detail::assert_fail(#expr, __FILE__, __LINE__, (msg)))

#define SLUICE_PANIC(msg) ::sluice::sdk::detail::assert_fail("panic", __FILE__, __LINE__, (msg))
