// libFuzzer target: the raft plugin's inter-broker RPC frames
// (plugins/raft/rpc/codec.h) over arbitrary bytes. The input is a received
// byte stream, fed to frame_reader in pieces of varying sizes; each frame
// it yields is decoded. Neither may read out of bounds, crash or loop.
// Every decoded payload must point into the received bytes, and a decoded
// frame must survive re-encoding: encode, decode, encode gives the same
// bytes. The input as a whole is also decoded as one frame body.
#include "codec.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace {

using namespace sluice::raft;
using namespace sluice::raft::rpc;

void check_payload(const payload& p, const char* lo, const char* hi) {
  const std::string_view v = p.view();
  if (v.empty()) return;
  if (v.data() < lo || v.data() + v.size() > hi) std::abort();
}

void check(const decoded_frame& f, const char* lo, const char* hi) {
  for (const group_message& gm : f.messages) {
    for (const entry& e : gm.msg.entries) {
      if (e.count == 0) std::abort();
      check_payload(e.data, lo, hi);
    }
    if (gm.msg.snap) check_payload(gm.msg.snap->data, lo, hi);
  }
  // Re-encoding is stable: decode(encode(f)) encodes to the same bytes.
  const std::string first = f.hello ? encode_hello(*f.hello).to_string() : encode_frame(f.messages, f.apps).to_string();
  auto again = decode_frame(std::make_shared<const std::vector<char>>(first.begin(), first.end()), frame_bytes_limit);
  if (!again) std::abort();
  const decoded_frame& g = again.value();
  if (g.hello.has_value() != f.hello.has_value() || g.messages.size() != f.messages.size() ||
      g.apps.size() != f.apps.size()) {
    std::abort();
  }
  const std::string second = g.hello ? encode_hello(*g.hello).to_string() : encode_frame(g.messages, g.apps).to_string();
  if (first != second) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* in = reinterpret_cast<const char*>(data);
  // As a stream of frames, received in pieces.
  {
    frame_reader reader(1 << 20, 256);
    std::vector<std::shared_ptr<const void>> keep;  // frames stay valid after the reader moved on
    static constexpr size_t pieces[] = {1, 7, 64, 300, 4096};
    size_t at = 0;
    for (size_t k = 0; at < size; ++k) {
      std::span<char> room = reader.prepare();
      if (room.empty()) std::abort();
      const size_t n = std::min({room.size(), size - at, pieces[(k + size) % 5]});
      std::memcpy(room.data(), in + at, n);
      reader.commit(n);
      at += n;
      bool failed = false;
      for (;;) {
        auto next = reader.next();
        if (!next) {
          failed = true;
          break;
        }
        if (!next.value()) break;
        const frame_view& v = *next.value();
        auto frame = decode_frame(v);
        if (frame) check(frame.value(), v.data, v.data + v.size);
        keep.push_back(v.owner);
      }
      if (failed) break;
    }
  }
  // As one frame body.
  {
    auto owner = std::make_shared<const std::vector<char>>(in, in + size);
    auto frame = decode_frame(frame_view{owner, owner->data(), owner->size()});
    if (frame) check(frame.value(), owner->data(), owner->data() + owner->size());
  }
  return 0;
}
