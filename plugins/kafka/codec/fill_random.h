// Test helper: fills every field of a generated message that is present at
// a version with a pseudo-random value, through the generated visit_fields.
// Nullable fields are sometimes null, tagged fields sometimes left at their
// default, arrays of structs are never empty (at the outer levels), records
// point into a static blob.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "sluice/kafka/wire.h"

namespace sluice::kafka::testing {

// splitmix64: deterministic across platforms.
class rng {
 public:
  explicit rng(uint64_t seed) : _s(seed) {}
  uint64_t next() {
    uint64_t z = (_s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(next() % n); }
  bool chance(uint32_t one_in) { return below(one_in) == 0; }

 private:
  uint64_t _s;
};

// 256 bytes that records_view fields point into.
inline const uint8_t* records_blob() {
  static const std::array<uint8_t, 256> blob = [] {
    std::array<uint8_t, 256> b{};
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 7 + 3);
    return b;
  }();
  return blob.data();
}

struct fill_options {
  bool tagged_defaults_sometimes = true;  // false: every tagged field keeps its default
  bool nulls = true;                      // false: nullable fields are never null
};

template <class T>
concept visitable = requires(T& t) { t.visit_fields(int16_t{0}, [](const char*, auto&, bool, bool) {}); };

class filler {
 public:
  filler(rng& g, int16_t version, fill_options opt, int depth = 0)
      : _g(g), _version(version), _opt(opt), _depth(depth) {}

  template <class T>
  void operator()(const char*, T& field, bool nullable, bool tagged) {
    if (tagged && (!_opt.tagged_defaults_sometimes || _g.chance(3))) return;
    fill(field, nullable);
  }

  template <class T>
  void fill(T& v, bool nullable) {
    if constexpr (std::is_same_v<T, bool>) {
      v = _g.chance(2);
    } else if constexpr (std::is_same_v<T, double>) {
      v = static_cast<double>(static_cast<int64_t>(_g.next() % 2000001) - 1000000) / 8.0;
    } else if constexpr (std::is_integral_v<T>) {
      v = static_cast<T>(_g.next());
    } else if constexpr (std::is_same_v<T, uuid>) {
      for (auto& b : v.bytes) b = static_cast<uint8_t>(_g.next());
    } else if constexpr (std::is_same_v<T, std::string>) {
      v.assign(_g.below(9), 'a');
      for (auto& c : v) c = static_cast<char>('a' + _g.below(26));
    } else if constexpr (std::is_same_v<T, std::vector<uint8_t>>) {
      v.resize(_g.below(9));
      for (auto& b : v) b = static_cast<uint8_t>(_g.next());
    } else if constexpr (std::is_same_v<T, records_view>) {
      if (nullable && _opt.nulls && _g.chance(4)) {
        v = records_view{};
      } else {
        const uint32_t off = _g.below(128);
        v = records_view::of(records_blob() + off, _g.below(128));
      }
    } else if constexpr (visitable<T>) {
      filler inner(_g, _version, _opt, _depth + 1);
      v.visit_fields(_version, inner);
    } else {
      fill_special(v, nullable);
    }
  }

 private:
  template <class T>
  void fill_special(std::optional<T>& v, bool nullable) {
    if (nullable && _opt.nulls && _g.chance(4)) {
      v.reset();
      return;
    }
    v = T{};  // not emplace(): see rd_struct in detail/field_codec.h
    fill(*v, false);
  }

  template <class T>
  void fill_special(std::vector<T>& v, bool) {
    uint32_t n = 0;
    if constexpr (visitable<T>) {
      n = _depth < 3 ? 1 + _g.below(3) : _g.below(2);
    } else {
      n = _g.below(4);
    }
    v.clear();
    v.resize(n);
    for (T& e : v) fill(e, false);
  }

  rng& _g;
  int16_t _version;
  fill_options _opt;
  int _depth;
};

template <class T>
void fill_random(T& m, int16_t version, rng& g, fill_options opt = {}) {
  m = T{};
  filler f(g, version, opt);
  m.visit_fields(version, f);
}

}  // namespace sluice::kafka::testing
