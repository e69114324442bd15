// result<T>: a value or an error, for operating paths that must not throw.
//
// An error carries a std::error_code from its module's category (so callers
// can branch on it) and a one-line message for people (so the operator
// learns which file, key or address is wrong and what to do).
#pragma once

#include <sluice/sdk/assert.h>

#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace sluice {

struct error {
  std::error_code code;
  std::string message;
};

inline error make_error(std::error_code code, std::string message) {
  return error{code, std::move(message)};
}
inline error make_errno_error(int err, std::string message) {
  return error{std::error_code(err, std::generic_category()), std::move(message)};
}

template <typename T>
class [[nodiscard]] result {
 public:
  result(T value) : _v(std::in_place_index<0>, std::move(value)) {}  // NOLINT(implicit)
  result(error e) : _v(std::in_place_index<1>, std::move(e)) {}     // NOLINT(implicit)

  bool has_value() const noexcept { return _v.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  T& value() & noexcept {
    SLUICE_ASSERT_MSG(has_value(), "result::value() on an error");
    return std::get<0>(_v);
  }
  T&& value() && noexcept {
    SLUICE_ASSERT_MSG(has_value(), "result::value() on an error");
    return std::get<0>(std::move(_v));
  }
  const error& err() const noexcept {
    SLUICE_ASSERT_MSG(!has_value(), "result::err() on a value");
    return std::get<1>(_v);
  }

 private:
  std::variant<T, error> _v;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() noexcept = default;
  result(error e) : _e(std::move(e)), _failed(true) {}  // NOLINT(implicit)

  bool has_value() const noexcept { return !_failed; }
  explicit operator bool() const noexcept { return has_value(); }
  const error& err() const noexcept {
    SLUICE_ASSERT_MSG(_failed, "result::err() on success");
    return _e;
  }

 private:
  error _e;
  bool _failed = false;
};

}  // namespace sluice
