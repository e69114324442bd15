#include "sluice/kafka/wire.h"

#include <cstring>
#include <limits>

#include "sluice/sdk/assert.h"

namespace sluice::kafka {

bool records_view::operator==(const records_view& o) const noexcept {
  if (is_null != o.is_null) return false;
  if (is_null) return true;
  return size == o.size && (size == 0 || std::memcmp(data, o.data, size) == 0);
}

const char* to_string(errc e) noexcept {
  switch (e) {
    case errc::ok: return "ok";
    case errc::truncated: return "truncated";
    case errc::invalid_length: return "invalid length";
    case errc::invalid_varint: return "invalid varint";
    case errc::null_not_allowed: return "null not allowed";
    case errc::unsupported_version: return "unsupported version";
    case errc::unknown_api_key: return "unknown api key";
    case errc::invalid_tagged_field: return "invalid tagged field";
  }
  return "unknown";
}

// ---- reader: context ---------------------------------------------------------

void reader::push() noexcept {
  SLUICE_ASSERT_MSG(_depth + 1u < max_depth, "kafka reader: message nesting too deep");
  ++_depth;
  _frames[_depth] = {nullptr, -1};
}

void reader::pop() noexcept {
  SLUICE_ASSERT(_depth > 0);
  --_depth;
}

std::string reader::path() const {
  std::string p;
  for (size_t i = 0; i <= _depth; ++i) {
    if (_frames[i].name == nullptr) break;
    if (!p.empty()) p += '.';
    p += _frames[i].name;
    if (_frames[i].index >= 0) {
      p += '[';
      p += std::to_string(_frames[i].index);
      p += ']';
    }
  }
  return p;
}

bool reader::fail(errc e, std::string_view detail) {
  if (_error != errc::ok) return false;
  _error = e;
  if (_root != nullptr) {
    _message += _root;
    _message += " v";
    _message += std::to_string(_version);
    _message += ": ";
  }
  std::string p = path();
  if (!p.empty()) {
    _message += p;
    _message += ": ";
  }
  _message += detail;
  return false;
}

bool reader::need(size_t n, const char* what) {
  if (_error != errc::ok) return false;
  if (n <= remaining()) return true;
  return fail(errc::truncated, std::string(what) + " needs " + std::to_string(n) +
                                   " bytes, " + std::to_string(remaining()) + " remaining");
}

bool reader::check_length(int64_t len, const char* what) {
  if (len < 0) {
    return fail(errc::invalid_length, std::string(what) + " length " + std::to_string(len) +
                                          " is negative");
  }
  if (static_cast<uint64_t>(len) > remaining()) {
    return fail(errc::truncated, std::string(what) + " length " + std::to_string(len) +
                                     " exceeds remaining " + std::to_string(remaining()) +
                                     " bytes");
  }
  return true;
}

// ---- reader: fixed width -----------------------------------------------------

namespace {
uint64_t load_be(const uint8_t* p, unsigned n) noexcept {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}
}  // namespace

bool reader::read_int8(int8_t& v) noexcept {
  if (!need(1, "int8")) return false;
  v = static_cast<int8_t>(_data[_pos]);
  _pos += 1;
  return true;
}

bool reader::read_int16(int16_t& v) noexcept {
  if (!need(2, "int16")) return false;
  v = static_cast<int16_t>(load_be(_data.data() + _pos, 2));
  _pos += 2;
  return true;
}

bool reader::read_int32(int32_t& v) noexcept {
  if (!need(4, "int32")) return false;
  v = static_cast<int32_t>(load_be(_data.data() + _pos, 4));
  _pos += 4;
  return true;
}

bool reader::read_int64(int64_t& v) noexcept {
  if (!need(8, "int64")) return false;
  v = static_cast<int64_t>(load_be(_data.data() + _pos, 8));
  _pos += 8;
  return true;
}

bool reader::read_uint16(uint16_t& v) noexcept {
  if (!need(2, "uint16")) return false;
  v = static_cast<uint16_t>(load_be(_data.data() + _pos, 2));
  _pos += 2;
  return true;
}

bool reader::read_uint32(uint32_t& v) noexcept {
  if (!need(4, "uint32")) return false;
  v = static_cast<uint32_t>(load_be(_data.data() + _pos, 4));
  _pos += 4;
  return true;
}

bool reader::read_float64(double& v) noexcept {
  if (!need(8, "float64")) return false;
  const uint64_t bits = load_be(_data.data() + _pos, 8);
  std::memcpy(&v, &bits, sizeof v);
  _pos += 8;
  return true;
}

bool reader::read_bool(bool& v) noexcept {
  if (!need(1, "bool")) return false;
  v = _data[_pos] != 0;
  _pos += 1;
  return true;
}

bool reader::read_uuid(uuid& v) noexcept {
  if (!need(16, "uuid")) return false;
  std::memcpy(v.bytes.data(), _data.data() + _pos, 16);
  _pos += 16;
  return true;
}

// ---- reader: varints ---------------------------------------------------------

namespace {
// Reads an unsigned LEB128 value of at most max_bytes bytes.
bool read_uleb(std::span<const uint8_t> d, size_t& pos, unsigned max_bytes, uint64_t& out,
               bool& truncated) noexcept {
  uint64_t v = 0;
  for (unsigned i = 0; i < max_bytes; ++i) {
    if (pos + i >= d.size()) {
      truncated = true;
      return false;
    }
    const uint8_t b = d[pos + i];
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      pos += i + 1;
      out = v;
      return true;
    }
  }
  truncated = false;
  return false;
}
}  // namespace

bool reader::read_unsigned_varint(uint32_t& v) noexcept {
  if (_error != errc::ok) return false;
  uint64_t x = 0;
  bool truncated = false;
  if (!read_uleb(_data, _pos, 5, x, truncated) || x > std::numeric_limits<uint32_t>::max()) {
    return truncated ? fail(errc::truncated, "unsigned varint is truncated")
                     : fail(errc::invalid_varint, "unsigned varint is longer than 5 bytes");
  }
  v = static_cast<uint32_t>(x);
  return true;
}

bool reader::read_varint(int32_t& v) noexcept {
  if (_error != errc::ok) return false;
  uint64_t x = 0;
  bool truncated = false;
  if (!read_uleb(_data, _pos, 5, x, truncated) || x > std::numeric_limits<uint32_t>::max()) {
    return truncated ? fail(errc::truncated, "varint is truncated")
                     : fail(errc::invalid_varint, "varint is longer than 5 bytes");
  }
  const auto u = static_cast<uint32_t>(x);
  v = static_cast<int32_t>((u >> 1) ^ (~(u & 1) + 1));
  return true;
}

bool reader::read_varlong(int64_t& v) noexcept {
  if (_error != errc::ok) return false;
  uint64_t x = 0;
  bool truncated = false;
  if (!read_uleb(_data, _pos, 10, x, truncated)) {
    return truncated ? fail(errc::truncated, "varlong is truncated")
                     : fail(errc::invalid_varint, "varlong is longer than 10 bytes");
  }
  v = static_cast<int64_t>((x >> 1) ^ (~(x & 1) + 1));
  return true;
}

// ---- reader: lengths, strings, bytes -----------------------------------------

namespace {
// Reads a string/bytes length: int16 or int32 (classic) or uvarint - 1
// (compact). -1 means null.
bool read_len(reader& r, bool compact, bool int16_len, int64_t& len) noexcept {
  if (compact) {
    uint32_t u = 0;
    if (!r.read_unsigned_varint(u)) return false;
    len = static_cast<int64_t>(u) - 1;
    return true;
  }
  if (int16_len) {
    int16_t n = 0;
    if (!r.read_int16(n)) return false;
    len = n;
    return true;
  }
  int32_t n = 0;
  if (!r.read_int32(n)) return false;
  len = n;
  return true;
}
}  // namespace

bool reader::read_string_view(std::string_view& v, bool* is_null, bool compact) noexcept {
  int64_t len = 0;
  if (!read_len(*this, compact, true, len)) return false;
  if (len == -1) {
    if (is_null == nullptr) return fail(errc::null_not_allowed, "null string in a non-nullable field");
    *is_null = true;
    v = {};
    return true;
  }
  if (!check_length(len, "string")) return false;
  v = std::string_view(reinterpret_cast<const char*>(_data.data() + _pos), static_cast<size_t>(len));
  _pos += static_cast<size_t>(len);
  if (is_null != nullptr) *is_null = false;
  return true;
}

bool reader::read_string(std::string& v, bool compact) {
  std::string_view sv;
  if (!read_string_view(sv, nullptr, compact)) return false;
  v.assign(sv);
  return true;
}

bool reader::read_nullable_string(std::optional<std::string>& v, bool compact) {
  std::string_view sv;
  bool is_null = false;
  if (!read_string_view(sv, &is_null, compact)) return false;
  if (is_null) {
    v.reset();
  } else {
    v.emplace(sv);
  }
  return true;
}

namespace {
bool read_bytes_span(reader& r, std::span<const uint8_t>& out, bool& is_null, bool compact,
                     const char* what) noexcept {
  int64_t len = 0;
  if (!read_len(r, compact, false, len)) return false;
  if (len == -1) {
    is_null = true;
    out = {};
    return true;
  }
  is_null = false;
  if (len < 0 || static_cast<uint64_t>(len) > r.remaining()) {
    return r.fail(len < 0 ? errc::invalid_length : errc::truncated,
                  std::string(what) + " length " + std::to_string(len) +
                      (len < 0 ? " is negative"
                               : " exceeds remaining " + std::to_string(r.remaining()) + " bytes"));
  }
  out = r.remaining_bytes().first(static_cast<size_t>(len));
  return r.skip(static_cast<size_t>(len));
}
}  // namespace

bool reader::read_bytes(std::vector<uint8_t>& v, bool compact) {
  std::span<const uint8_t> s;
  bool is_null = false;
  if (!read_bytes_span(*this, s, is_null, compact, "bytes")) return false;
  if (is_null) return fail(errc::null_not_allowed, "null bytes in a non-nullable field");
  v.assign(s.begin(), s.end());
  return true;
}

bool reader::read_nullable_bytes(std::optional<std::vector<uint8_t>>& v, bool compact) {
  std::span<const uint8_t> s;
  bool is_null = false;
  if (!read_bytes_span(*this, s, is_null, compact, "bytes")) return false;
  if (is_null) {
    v.reset();
  } else {
    v.emplace(s.begin(), s.end());
  }
  return true;
}

bool reader::read_records(records_view& v, bool compact) noexcept {
  std::span<const uint8_t> s;
  bool is_null = false;
  if (!read_bytes_span(*this, s, is_null, compact, "records")) return false;
  v.data = is_null ? nullptr : s.data();
  v.size = s.size();
  v.is_null = is_null;
  return true;
}

bool reader::read_array_length(int32_t& n, bool compact, bool nullable) noexcept {
  int64_t len = 0;
  if (compact) {
    uint32_t u = 0;
    if (!read_unsigned_varint(u)) return false;
    len = static_cast<int64_t>(u) - 1;
  } else {
    int32_t x = 0;
    if (!read_int32(x)) return false;
    len = x;
  }
  if (len == -1) {
    if (!nullable) return fail(errc::null_not_allowed, "null array in a non-nullable field");
    n = -1;
    return true;
  }
  if (len < 0) {
    return fail(errc::invalid_length, "array length " + std::to_string(len) + " is negative");
  }
  if (static_cast<uint64_t>(len) > remaining()) {
    return fail(errc::truncated, "array length " + std::to_string(len) + " exceeds remaining " +
                                     std::to_string(remaining()) + " bytes");
  }
  n = static_cast<int32_t>(len);
  return true;
}

bool reader::skip(size_t n) noexcept {
  if (!need(n, "skipped field")) return false;
  _pos += n;
  return true;
}

bool reader::skip_tagged_fields() noexcept {
  uint32_t count = 0;
  if (!read_unsigned_varint(count)) return false;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t tag = 0;
    uint32_t size = 0;
    if (!read_unsigned_varint(tag) || !read_unsigned_varint(size) || !skip(size)) return false;
  }
  return true;
}

// ---- writer ------------------------------------------------------------------

uint8_t* writer::grow(size_t n) {
  const size_t off = _buf.size();
  _buf.resize(off + n);
  if (!_segments.empty() && _segments.back().external == nullptr &&
      _segments.back().offset + _segments.back().len == off) {
    _segments.back().len += n;
  } else {
    _segments.push_back({nullptr, off, n});
  }
  _size += n;
  return _buf.data() + off;
}

void writer::put_u8(uint8_t v) { *grow(1) = v; }

void writer::put_be(uint64_t v, unsigned n) {
  uint8_t* p = grow(n);
  for (unsigned i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
}

void writer::write_float64(double v) {
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  put_be(bits, 8);
}

void writer::write_unsigned_varint(uint32_t v) {
  uint8_t tmp[5];
  unsigned n = 0;
  while (v >= 0x80) {
    tmp[n++] = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  tmp[n++] = static_cast<uint8_t>(v);
  write_raw(tmp, n);
}

void writer::write_varint(int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  write_unsigned_varint((u << 1) ^ static_cast<uint32_t>(v >> 31));
}

void writer::write_varlong(int64_t v) {
  const auto u = static_cast<uint64_t>(v);
  uint64_t z = (u << 1) ^ static_cast<uint64_t>(v >> 63);
  uint8_t tmp[10];
  unsigned n = 0;
  while (z >= 0x80) {
    tmp[n++] = static_cast<uint8_t>(z | 0x80);
    z >>= 7;
  }
  tmp[n++] = static_cast<uint8_t>(z);
  write_raw(tmp, n);
}

void writer::write_string(std::string_view v, bool compact) {
  SLUICE_ASSERT_MSG(v.size() <= static_cast<size_t>(std::numeric_limits<int16_t>::max()) ||
                        (compact && v.size() < std::numeric_limits<uint32_t>::max()),
                    "kafka string too long for its length prefix");
  if (compact) {
    write_unsigned_varint(static_cast<uint32_t>(v.size() + 1));
  } else {
    write_int16(static_cast<int16_t>(v.size()));
  }
  write_raw(v.data(), v.size());
}

void writer::write_null_string(bool compact) {
  if (compact) {
    write_unsigned_varint(0);
  } else {
    write_int16(-1);
  }
}

void writer::write_bytes(std::span<const uint8_t> v, bool compact) {
  SLUICE_ASSERT_MSG(v.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                    "kafka bytes too long for their length prefix");
  if (compact) {
    write_unsigned_varint(static_cast<uint32_t>(v.size() + 1));
  } else {
    write_int32(static_cast<int32_t>(v.size()));
  }
  write_raw(v.data(), v.size());
}

void writer::write_null_bytes(bool compact) {
  if (compact) {
    write_unsigned_varint(0);
  } else {
    write_int32(-1);
  }
}

void writer::write_records(const records_view& v, bool compact) {
  if (v.is_null) {
    write_null_bytes(compact);
    return;
  }
  SLUICE_ASSERT_MSG(v.size < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                    "kafka records too long for their length prefix");
  if (compact) {
    write_unsigned_varint(static_cast<uint32_t>(v.size + 1));
  } else {
    write_int32(static_cast<int32_t>(v.size));
  }
  append_external(v.data, v.size);
}

void writer::write_array_length(int32_t n, bool compact) {
  SLUICE_ASSERT(n >= -1);
  if (compact) {
    write_unsigned_varint(static_cast<uint32_t>(n + 1));
  } else {
    write_int32(n);
  }
}

void writer::write_raw(const void* p, size_t n) {
  if (n == 0) return;
  std::memcpy(grow(n), p, n);
}

void writer::append_external(const uint8_t* p, size_t n) {
  if (n == 0) return;
  SLUICE_ASSERT(p != nullptr);
  _segments.push_back({p, 0, n});
  _size += n;
}

void writer::append(const writer& other) {
  for (const segment& s : other._segments) {
    if (s.external != nullptr) {
      append_external(s.external, s.len);
    } else {
      write_raw(other._buf.data() + s.offset, s.len);
    }
  }
}

patch_position writer::reserve_int32() {
  const size_t off = _buf.size();
  put_be(0, 4);
  return {off};
}

void writer::patch_int32(patch_position at, int32_t v) {
  SLUICE_ASSERT(at.offset + 4 <= _buf.size());
  const auto u = static_cast<uint32_t>(v);
  for (unsigned i = 0; i < 4; ++i) _buf[at.offset + i] = static_cast<uint8_t>(u >> (8 * (3 - i)));
}

void writer::append_iovecs(std::vector<iovec>& out) const {
  out.reserve(out.size() + _segments.size());
  for (const segment& s : _segments) {
    const uint8_t* p = s.external != nullptr ? s.external : _buf.data() + s.offset;
    out.push_back({const_cast<uint8_t*>(p), s.len});
  }
}

std::vector<iovec> writer::iovecs() const {
  std::vector<iovec> out;
  append_iovecs(out);
  return out;
}

std::vector<uint8_t> writer::flatten() const {
  std::vector<uint8_t> out;
  out.reserve(_size);
  for (const segment& s : _segments) {
    const uint8_t* p = s.external != nullptr ? s.external : _buf.data() + s.offset;
    out.insert(out.end(), p, p + s.len);
  }
  return out;
}

void writer::clear() noexcept {
  _buf.clear();
  _segments.clear();
  _size = 0;
}

}  // namespace sluice::kafka
