// Shared helpers for the generated message codecs (gen_codecs.py). Only the
// generated .cc files include this; message headers do not.
//
// The generated code is one line per field calling these: rd/wr for fixed
// width types, rd_str/wr_str, rd_bytes/wr_bytes, rd_records/wr_records,
// rd_array/wr_array (elements of any type, structs recurse through their own
// encode/decode), rd_struct/wr_struct and the tagged-field section helpers.
// "nullable" is the field's nullability at the version being coded.
#pragma once

#include <algorithm>
#include <concepts>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "sluice/kafka/wire.h"

namespace sluice::kafka::detail {

// ---- fixed width ---------------------------------------------------------------
inline bool rd(reader& r, int8_t& v) { return r.read_int8(v); }
inline bool rd(reader& r, int16_t& v) { return r.read_int16(v); }
inline bool rd(reader& r, int32_t& v) { return r.read_int32(v); }
inline bool rd(reader& r, int64_t& v) { return r.read_int64(v); }
inline bool rd(reader& r, uint16_t& v) { return r.read_uint16(v); }
inline bool rd(reader& r, uint32_t& v) { return r.read_uint32(v); }
inline bool rd(reader& r, double& v) { return r.read_float64(v); }
inline bool rd(reader& r, bool& v) { return r.read_bool(v); }
inline bool rd(reader& r, uuid& v) { return r.read_uuid(v); }
inline void wr(writer& w, int8_t v) { w.write_int8(v); }
inline void wr(writer& w, int16_t v) { w.write_int16(v); }
inline void wr(writer& w, int32_t v) { w.write_int32(v); }
inline void wr(writer& w, int64_t v) { w.write_int64(v); }
inline void wr(writer& w, uint16_t v) { w.write_uint16(v); }
inline void wr(writer& w, uint32_t v) { w.write_uint32(v); }
inline void wr(writer& w, double v) { w.write_float64(v); }
inline void wr(writer& w, bool v) { w.write_bool(v); }
inline void wr(writer& w, const uuid& v) { w.write_uuid(v); }

// ---- strings, bytes, records (out of line in field_codec.cc) -------------------
bool rd_str(reader& r, std::string& v, bool compact);
bool rd_str(reader& r, std::optional<std::string>& v, bool compact, bool nullable);
void wr_str(writer& w, const std::string& v, bool compact);
// A null value at a version where the field is not nullable is written as "".
void wr_str(writer& w, const std::optional<std::string>& v, bool compact, bool nullable);
bool rd_bytes(reader& r, std::vector<uint8_t>& v, bool compact);
bool rd_bytes(reader& r, std::optional<std::vector<uint8_t>>& v, bool compact, bool nullable);
void wr_bytes(writer& w, const std::vector<uint8_t>& v, bool compact);
void wr_bytes(writer& w, const std::optional<std::vector<uint8_t>>& v, bool compact,
              bool nullable);
bool rd_records(reader& r, records_view& v, bool compact, bool nullable);
// Null records at a version where they are not nullable are written as empty.
void wr_records(writer& w, const records_view& v, bool compact, bool nullable);

// ---- structs -------------------------------------------------------------------
template <class T>
concept codec_struct = requires(T& t, const T& c, reader& r, writer& w, int16_t v) {
  { t.decode(r, v) } -> std::same_as<bool>;
  c.encode(w, v);
};

// A nested struct: its fields get their own level in the error path.
template <codec_struct T>
bool rd_struct(reader& r, T& v, int16_t version) {
  r.push();
  const bool ok = v.decode(r, version);
  r.pop();
  return ok;
}

// Nullable struct: an int8 marker, -1 for null, 1 followed by the struct.
// (v = T{} rather than v.emplace(): clang decides whether a nested struct
// with default member initializers is default constructible while its
// enclosing message is still incomplete, and remembers "no".)
template <codec_struct T>
bool rd_struct(reader& r, std::optional<T>& v, int16_t version, bool nullable) {
  if (nullable) {
    int8_t marker = 0;
    if (!r.read_int8(marker)) return false;
    if (marker < 0) {
      v.reset();
      return true;
    }
  }
  v = T{};
  return rd_struct(r, *v, version);
}

template <codec_struct T>
void wr_struct(writer& w, const T& v, int16_t version) {
  v.encode(w, version);
}

template <codec_struct T>
void wr_struct(writer& w, const std::optional<T>& v, int16_t version, bool nullable) {
  if (nullable) {
    w.write_int8(v ? 1 : -1);
    if (v) v->encode(w, version);
    return;
  }
  if (v) {
    v->encode(w, version);
  } else {
    T{}.encode(w, version);
  }
}

// ---- arrays --------------------------------------------------------------------
template <class T>
bool rd_elem(reader& r, T& v, bool compact, int16_t version) {
  if constexpr (std::is_same_v<T, std::string>) {
    (void)version;
    return rd_str(r, v, compact);
  } else if constexpr (codec_struct<T>) {
    (void)compact;
    return rd_struct(r, v, version);
  } else {
    (void)compact;
    (void)version;
    return rd(r, v);
  }
}

template <class T>
void wr_elem(writer& w, const T& v, bool compact, int16_t version) {
  if constexpr (std::is_same_v<T, std::string>) {
    (void)version;
    wr_str(w, v, compact);
  } else if constexpr (codec_struct<T>) {
    (void)compact;
    v.encode(w, version);
  } else {
    (void)compact;
    (void)version;
    wr(w, v);
  }
}

template <class T>
bool rd_elems(reader& r, std::vector<T>& out, int32_t n, bool compact, int16_t version) {
  out.clear();
  // The count is bounded by the remaining bytes, but an element can be much
  // larger in memory than on the wire: grow as elements actually arrive.
  out.reserve(std::min<size_t>(static_cast<size_t>(n), 64));
  for (int32_t i = 0; i < n; ++i) {
    r.set_index(i);
    if (!rd_elem(r, out.emplace_back(), compact, version)) return false;
  }
  return true;
}

template <class T>
bool rd_array(reader& r, std::vector<T>& out, bool compact, int16_t version) {
  int32_t n = 0;
  return r.read_array_length(n, compact, false) && rd_elems(r, out, n, compact, version);
}

template <class T>
bool rd_array(reader& r, std::optional<std::vector<T>>& out, bool compact, bool nullable,
              int16_t version) {
  int32_t n = 0;
  if (!r.read_array_length(n, compact, nullable)) return false;
  if (n < 0) {
    out.reset();
    return true;
  }
  return rd_elems(r, out.emplace(), n, compact, version);
}

template <class T>
void wr_array(writer& w, const std::vector<T>& v, bool compact, int16_t version) {
  w.write_array_length(static_cast<int32_t>(v.size()), compact);
  for (const T& e : v) wr_elem(w, e, compact, version);
}

// A null array at a version where it is not nullable is written as empty.
template <class T>
void wr_array(writer& w, const std::optional<std::vector<T>>& v, bool compact, bool nullable,
              int16_t version) {
  if (!v) {
    w.write_array_length(nullable ? -1 : 0, compact);
    return;
  }
  wr_array(w, *v, compact, version);
}

// ---- tagged fields -------------------------------------------------------------
bool tagged_size_error(reader& r, uint32_t tag, uint32_t size);

// Reads a tagged-field section. on_tag(tag) decodes a known tag and returns
// 1 (ok) or 0 (failed), or returns -1 for a tag it does not know at this
// version, which is skipped. A known field must use exactly its declared size.
template <class F>
bool rd_tagged_fields(reader& r, F&& on_tag) {
  uint32_t count = 0;
  if (!r.at("_tagged_fields").read_unsigned_varint(count)) return false;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t tag = 0;
    uint32_t size = 0;
    if (!r.at("_tagged_fields").read_unsigned_varint(tag) || !r.read_unsigned_varint(size)) {
      return false;
    }
    if (size > r.remaining()) return tagged_size_error(r, tag, size);
    const size_t start = r.position();
    const int res = on_tag(tag);
    if (res == 0) return false;
    if (res < 0) {
      if (!r.skip(size)) return false;
    } else if (r.position() - start != size) {
      return tagged_size_error(r, tag, size);
    }
  }
  return true;
}
// Writes one tagged field: tag, size, then the value that write(scratch)
// produces.
template <class F>
void wr_tagged(writer& w, uint32_t tag, F&& write) {
  writer scratch;
  write(scratch);
  w.write_unsigned_varint(tag);
  w.write_unsigned_varint(static_cast<uint32_t>(scratch.size()));
  w.append(scratch);
}

}  // namespace sluice::kafka::detail
