// Kafka wire primitives: a bounds-checked reader over one received buffer
// and a writer that produces a list of chunks for a gathered send.
//
// Thread safety: none; a reader or writer belongs to one shard's request.
//
// reader: every read checks the remaining length first. The first failure
// records an error code and a message naming what was being read
// ("produce_request v9: topic_data[0].name: string length 70000 exceeds
// remaining 12 bytes"); every later read fails at once without moving.
// Nothing throws; the reader never reads outside its span.
//
// writer: encodes into its own growing storage, except for chunks added with
// append_external (record batches), which are referenced, not copied. The
// caller keeps those bytes alive until the send completes. iovecs() gives the
// segments in order; flatten() copies everything into one vector (tests).
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::kafka {

// A 128-bit Kafka UUID (topic ids, directory ids). All zero is Kafka's
// "zero uuid", which is also the default value.
struct uuid {
  std::array<uint8_t, 16> bytes{};
  bool operator==(const uuid&) const = default;
};

// Record data ("records" fields): a non-owning view. Decoding points into the
// reader's input buffer, so the view is valid only while that buffer lives;
// encoding writes the length prefix and then references the bytes with
// writer::append_external (no copy). Null (is_null) is encoded as length -1.
// operator== compares nullness and content, not addresses.
struct records_view {
  const uint8_t* data = nullptr;
  size_t size = 0;
  bool is_null = true;

  static records_view of(const uint8_t* p, size_t n) noexcept { return {p, n, false}; }
  std::span<const uint8_t> bytes() const noexcept { return {data, size}; }
  bool operator==(const records_view& o) const noexcept;
};

enum class errc : uint8_t {
  ok = 0,
  truncated,            // fewer bytes than the field needs
  invalid_length,       // negative or oversized length / element count
  invalid_varint,       // varint longer than its type allows
  null_not_allowed,     // null in a field that is not nullable at this version
  unsupported_version,  // version outside the message's valid range
  unknown_api_key,      // no such API
  invalid_tagged_field, // tagged field whose size does not match its content
};
const char* to_string(errc e) noexcept;

class reader {
 public:
  explicit reader(std::span<const uint8_t> data) noexcept : _data(data) {}
  reader(const uint8_t* data, size_t size) noexcept : _data(data, size) {}
  // The reader keeps a view: refuse temporaries that would dangle.
  explicit reader(std::vector<uint8_t>&&) = delete;

  bool ok() const noexcept { return _error == errc::ok; }
  errc error() const noexcept { return _error; }
  // Empty while ok(); otherwise the description of the first failure.
  const std::string& error_message() const noexcept { return _message; }

  size_t position() const noexcept { return _pos; }
  size_t remaining() const noexcept { return _data.size() - _pos; }
  bool at_end() const noexcept { return _pos == _data.size(); }
  std::span<const uint8_t> remaining_bytes() const noexcept { return _data.subspan(_pos); }

  // Fixed width, big endian. On failure the output is left unchanged.
  bool read_int8(int8_t& v) noexcept;
  bool read_int16(int16_t& v) noexcept;
  bool read_int32(int32_t& v) noexcept;
  bool read_int64(int64_t& v) noexcept;
  bool read_uint16(uint16_t& v) noexcept;
  bool read_uint32(uint32_t& v) noexcept;
  bool read_float64(double& v) noexcept;
  bool read_bool(bool& v) noexcept;  // any non-zero byte is true
  bool read_uuid(uuid& v) noexcept;
  // Variable length: zigzag varint/varlong, unsigned varint (<= 5 bytes).
  bool read_varint(int32_t& v) noexcept;
  bool read_varlong(int64_t& v) noexcept;
  bool read_unsigned_varint(uint32_t& v) noexcept;

  // Strings and bytes: int16 / int32 length (-1 = null) or, when compact,
  // unsigned varint length + 1 (0 = null). The non-nullable forms fail on
  // null with errc::null_not_allowed.
  bool read_string(std::string& v, bool compact);
  bool read_nullable_string(std::optional<std::string>& v, bool compact);
  bool read_bytes(std::vector<uint8_t>& v, bool compact);
  bool read_nullable_bytes(std::optional<std::vector<uint8_t>>& v, bool compact);
  // Zero-copy: the view points into the input buffer. Null is reported as
  // is_null (records) or as a false *is_null (string view).
  bool read_string_view(std::string_view& v, bool* is_null, bool compact) noexcept;
  bool read_records(records_view& v, bool compact) noexcept;
  // Array element count: int32 or compact (unsigned varint + 1). Null comes
  // back as -1 and is an error unless nullable. A count larger than the
  // remaining bytes is an error (every element takes at least one byte).
  bool read_array_length(int32_t& n, bool compact, bool nullable) noexcept;
  // A tagged-field section where every tag is unknown: skipped.
  bool skip_tagged_fields() noexcept;
  bool skip(size_t n) noexcept;

  // Records a failure (if none yet) and returns false.
  bool fail(errc e, std::string_view detail);

  // Error context, maintained by the generated code. A path is a stack of
  // frames, each a field name and an optional array index.
  void begin_message(const char* name, int16_t version) noexcept {
    _root = name;
    _version = version;
    _depth = 0;
    _frames[0] = {nullptr, -1};
  }
  reader& at(const char* field) noexcept {
    _frames[_depth] = {field, -1};
    return *this;
  }
  void set_index(int32_t i) noexcept { _frames[_depth].index = i; }
  void push() noexcept;
  void pop() noexcept;
  // The current path, e.g. "topic_data[0].name" (for diagnostics).
  std::string path() const;

  static constexpr size_t max_depth = 16;

 private:
  struct frame {
    const char* name;
    int32_t index;
  };
  bool need(size_t n, const char* what);
  bool check_length(int64_t len, const char* what);

  std::span<const uint8_t> _data;
  size_t _pos = 0;
  errc _error = errc::ok;
  std::string _message;
  const char* _root = nullptr;
  int16_t _version = -1;
  uint8_t _depth = 0;
  std::array<frame, max_depth> _frames{};
};

// Where writer::reserve_int32 left room for a value patched later.
struct patch_position {
  size_t offset;
};

class writer {
 public:
  writer() = default;

  void write_int8(int8_t v) { put_u8(static_cast<uint8_t>(v)); }
  void write_int16(int16_t v) { put_be(static_cast<uint16_t>(v), 2); }
  void write_int32(int32_t v) { put_be(static_cast<uint32_t>(v), 4); }
  void write_int64(int64_t v) { put_be(static_cast<uint64_t>(v), 8); }
  void write_uint16(uint16_t v) { put_be(v, 2); }
  void write_uint32(uint32_t v) { put_be(v, 4); }
  void write_float64(double v);
  void write_bool(bool v) { put_u8(v ? 1 : 0); }
  void write_uuid(const uuid& v) { write_raw(v.bytes.data(), v.bytes.size()); }
  void write_varint(int32_t v);
  void write_varlong(int64_t v);
  void write_unsigned_varint(uint32_t v);

  void write_string(std::string_view v, bool compact);
  void write_null_string(bool compact);
  void write_bytes(std::span<const uint8_t> v, bool compact);
  void write_null_bytes(bool compact);
  // Length prefix (-1 when null) followed by the bytes as an external chunk.
  void write_records(const records_view& v, bool compact);
  // Element count; -1 writes null.
  void write_array_length(int32_t n, bool compact);

  // Copies n bytes into the writer's own storage.
  void write_raw(const void* p, size_t n);
  // References n bytes without copying; they must outlive every use of
  // iovecs()/flatten() results and the send itself.
  void append_external(const uint8_t* p, size_t n);
  // Appends another writer's output: its own bytes are copied, its external
  // chunks stay external.
  void append(const writer& other);

  // Leaves four bytes to fill in later (frame or size prefixes).
  patch_position reserve_int32();
  void patch_int32(patch_position at, int32_t v);

  // Total bytes written, external chunks included.
  size_t size() const noexcept { return _size; }
  size_t segment_count() const noexcept { return _segments.size(); }
  // The output as segments in order, ready for sendmsg/io_uring writev.
  // Pointers into the writer's storage stay valid until the next write.
  std::vector<iovec> iovecs() const;
  void append_iovecs(std::vector<iovec>& out) const;
  std::vector<uint8_t> flatten() const;
  void clear() noexcept;

 private:
  struct segment {
    const uint8_t* external;  // nullptr: bytes are _buf[offset, offset + len)
    size_t offset;
    size_t len;
  };
  void put_u8(uint8_t v);
  void put_be(uint64_t v, unsigned n);
  uint8_t* grow(size_t n);

  std::vector<uint8_t> _buf;
  std::vector<segment> _segments;
  size_t _size = 0;
};

}  // namespace sluice::kafka
