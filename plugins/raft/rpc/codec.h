// The frame codec of the raft plugin's inter-broker RPC (docs/RAFT.md,
// "Inter-broker RPC"): pure C++, no I/O, no coroutines, no SDK runtime, so
// it is unit-tested and fuzzed on its own.
//
// A frame on the wire:
//
//   u32 frame_len      little-endian: the bytes after this field
//   u32 header_len     little-endian
//   header             a protobuf sluice.raft.wire.Frame (proto/sluice/raft.proto)
//   data section       frame_len - 4 - header_len raw bytes
//
// Entry and snapshot payloads (Kafka record batches) are never re-encoded:
// the encoder appends them to the data section by reference (the frame's
// iovecs point at the caller's payloads) and the header names them by
// (data_offset, data_len); the decoder builds payloads that point into the
// received frame, kept alive by the frame's owner. Heartbeats and heartbeat
// answers of many groups travel in compact columns (wire.Heartbeats).
//
// Decoding validates everything (lengths, references, enum ranges, counts,
// memberships) and answers an error naming what is wrong; it never asserts
// on input bytes. Encoding asserts on what only a caller bug produces (a
// frame above 4 GiB).
//
// Thread-safety: none; values may move between threads.
#pragma once

#include "types.h"

#include <sluice/sdk/result.h>

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace sluice::raft::rpc {

using group_id = uint64_t;  // a Raft group; 0 is the controller

inline constexpr uint32_t protocol_version = 1;
inline constexpr size_t length_field_bytes = 4;
// The largest frame_bytes_max a caller may choose (and protobuf's limit).
inline constexpr size_t frame_bytes_limit = size_t{1} << 30;

// ---- errors ---------------------------------------------------------------

enum class errc {
  frame_too_large = 1,  // the length field is above the caller's maximum
  malformed,            // lengths that do not add up, or a header that is not a Frame
  invalid,              // a field out of range, a reference outside the data section...
};
const std::error_category& rpc_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), rpc_category()}; }

// ---- messages -----------------------------------------------------------------

// The first frame of a connection, from the connecting side.
struct hello_message {
  std::string cluster_id;
  node_id node;    // the sender
  uint32_t shard = 0;
  uint32_t version = protocol_version;
  node_id target;  // whom the sender meant to reach
};

// The raft plugin's own traffic; opaque to the RPC layer.
struct app_message {
  uint32_t kind = 0;
  uint64_t request_id = 0;
  bool is_response = false;
  std::string payload;
};

struct group_message {
  group_id group = 0;
  message msg;
};

// True when every field is equal, payload bytes included.
bool same_message(const message& a, const message& b);

// ---- encoding ----------------------------------------------------------------

// An encoded frame: the length fields and header in one owned string, then
// the data section as references to the payloads (shared, not copied).
class encoded_frame {
 public:
  // Bytes on the wire, length field included.
  size_t size() const noexcept { return _head.size() + _data_bytes; }
  size_t data_bytes() const noexcept { return _data_bytes; }
  // Appends the frame's iovecs: the head, then the payloads in order
  // (payloads adjacent in memory share one iovec). They point into this
  // object and into the payloads it holds, which move with it: re-read them
  // after moving the frame.
  void append_iovecs(std::vector<iovec>& out) const;
  // A contiguous copy (tests and the fuzzer).
  std::string to_string() const;

 private:
  friend class frame_encoder;
  std::string _head;
  std::vector<payload> _data;
  size_t _data_bytes = 0;
};

encoded_frame encode_hello(const hello_message& h);
// A frame with these messages (compacting the heartbeats) and app messages.
encoded_frame encode_frame(std::span<const group_message> messages, std::span<const app_message> apps = {});

// Upper bounds of what one message adds to a frame (header and data), and
// of a frame's own bytes: a frame of messages m1..mn and apps a1..ak is at
// most frame_bytes_bound + sum(message_bytes_bound(mi)) + sum(app_bytes_bound(ai)).
inline constexpr size_t frame_bytes_bound = 64;
size_t message_bytes_bound(const message& m) noexcept;
size_t app_bytes_bound(const app_message& a) noexcept;

// ---- decoding ----------------------------------------------------------------

// A frame's bytes after its length field, and what keeps them alive.
struct frame_view {
  std::shared_ptr<const void> owner;
  const char* data = nullptr;
  size_t size = 0;  // frame_len
};

struct decoded_frame {
  std::optional<hello_message> hello;  // a hello frame carries nothing else
  std::vector<group_message> messages;  // full messages in order, then the compact heartbeats
  std::vector<app_message> apps;
};

// Decodes one frame body. Entry and snapshot payloads point into
// body.data and share body.owner.
result<decoded_frame> decode_frame(const frame_view& body);
// Decodes a buffer that holds exactly one whole frame, length field included.
result<decoded_frame> decode_frame(std::shared_ptr<const std::vector<char>> frame, size_t frame_bytes_max);

// Finds frame boundaries in a received byte stream. Receive into prepare(),
// commit() what arrived, then take frames with next() until it answers
// nothing. Bytes are received into chunks of chunk_bytes (or one frame's
// size if larger); a frame is handed out in place, its view sharing the
// chunk, so a chunk lives as long as any payload decoded from it. Only the
// start of a frame that straddles two chunks is copied.
class frame_reader {
 public:
  explicit frame_reader(size_t frame_bytes_max, size_t chunk_bytes = 64 * 1024);

  // Where to receive next; never empty.
  std::span<char> prepare();
  // n bytes were received at the start of prepare()'s span.
  void commit(size_t n);
  // The next whole frame, nothing when more bytes are needed, or an error
  // (frame_too_large, malformed) after which the stream is unusable.
  result<std::optional<frame_view>> next();
  size_t buffered() const noexcept { return _end - _begin; }

 private:
  size_t pending_frame_bytes() const noexcept;

  size_t _frame_bytes_max;
  size_t _chunk_bytes;
  std::shared_ptr<char[]> _chunk;
  size_t _capacity = 0;
  size_t _begin = 0;  // the first byte not handed out
  size_t _end = 0;    // the end of received bytes
};

}  // namespace sluice::raft::rpc

template <>
struct std::is_error_code_enum<sluice::raft::rpc::errc> : std::true_type {};
