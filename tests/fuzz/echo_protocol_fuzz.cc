// libFuzzer target: the echo plugin's line framing and command parsing on
// arbitrary bytes, fed in arbitrary chunks as the network would.
#include "echo_protocol.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t max_line = 16 + data[0] % 64;
  sluice::echo::line_buffer buf(max_line);
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t seen = 0;
  while (!in.empty()) {
    const size_t chunk = 1 + static_cast<uint8_t>(in[0]) % 17;
    const std::string_view piece = in.substr(0, chunk);
    in.remove_prefix(piece.size());
    buf.append(piece);
    std::string_view line;
    while (buf.next(line)) {
      if (line.find('\n') != std::string_view::npos) std::abort();  // framing must split on every newline
      auto r = sluice::echo::parse_line(line);
      if (r.cmd == sluice::echo::command::unknown && r.arg.size() > 64) std::abort();
      seen += line.size() + 1;
    }
    (void)buf.overflowed();
  }
  if (seen > size) std::abort();
  return 0;
}
