#include "consumer_protocol.h"

namespace sluice::kafka {

std::optional<std::vector<std::pair<std::string, int32_t>>> decode_consumer_assignment(const std::vector<uint8_t>& bytes) {
  // version int16, [topic string (int16 length), [partition int32]], user data (ignored).
  size_t pos = 0;
  auto need = [&](size_t n) { return pos + n <= bytes.size(); };
  auto i16 = [&]() { int16_t v = static_cast<int16_t>((bytes[pos] << 8) | bytes[pos + 1]); pos += 2; return v; };
  auto i32 = [&]() {
    uint32_t v = (uint32_t{bytes[pos]} << 24) | (uint32_t{bytes[pos + 1]} << 16) | (uint32_t{bytes[pos + 2]} << 8) | bytes[pos + 3];
    pos += 4;
    return static_cast<int32_t>(v);
  };
  std::vector<std::pair<std::string, int32_t>> out;
  if (bytes.empty()) return out;  // a member with nothing assigned
  if (!need(2) || i16() < 0 || !need(4)) return std::nullopt;
  const int32_t topics = i32();
  if (topics < 0 || static_cast<size_t>(topics) > bytes.size()) return std::nullopt;
  for (int32_t t = 0; t < topics; ++t) {
    if (!need(2)) return std::nullopt;
    const int16_t len = i16();
    if (len < 0 || !need(static_cast<size_t>(len))) return std::nullopt;
    std::string name(reinterpret_cast<const char*>(bytes.data() + pos), static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
    if (!need(4)) return std::nullopt;
    const int32_t n = i32();
    if (n < 0 || !need(static_cast<size_t>(n) * 4)) return std::nullopt;
    for (int32_t i = 0; i < n; ++i) out.emplace_back(name, i32());
  }
  return out;
}

}  // namespace sluice::kafka
