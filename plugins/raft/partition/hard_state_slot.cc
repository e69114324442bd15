// The partition hard-state file's slot format (hard_state_file.h): pure,
// unit-tested and fuzzed.
#include "hard_state_slot.h"

#include "crc32c.h"

namespace sluice::raft::partition {

namespace {

constexpr uint32_t slot_magic = 0x53485253;  // "SRHS" read little-endian
constexpr uint32_t slot_version = 1;
constexpr size_t slot_used = 4 + 4 + 8 * 5;  // magic, version, sequence, term, vote, snapshot index and term

void put32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}


}  // namespace

std::string encode_hard_state_slot(const persisted_state& s, uint64_t sequence) {
  std::string out;
  out.reserve(hard_state_slot_bytes);
  put32(out, slot_magic);
  put32(out, slot_version);
  put64(out, sequence);
  put64(out, s.term.value());
  put64(out, s.vote.value());
  put64(out, s.snapshot_index.value());
  put64(out, s.snapshot_term.value());
  SLUICE_ASSERT(out.size() == slot_used);
  put32(out, storage::crc32c(0, out.data(), out.size()));
  out.resize(hard_state_slot_bytes, '\0');
  return out;
}

std::optional<std::pair<persisted_state, uint64_t>> decode_hard_state_slot(const uint8_t* p, size_t len) {
  if (len < slot_used + 4) return std::nullopt;
  if (get32(p) != slot_magic || get32(p + 4) != slot_version) return std::nullopt;
  if (get32(p + slot_used) != storage::crc32c(0, p, slot_used)) return std::nullopt;
  persisted_state s;
  const uint64_t seq = get64(p + 8);
  s.term = term_id(get64(p + 16));
  s.vote = node_id(get64(p + 24));
  s.snapshot_index = log_index(get64(p + 32));
  s.snapshot_term = term_id(get64(p + 40));
  return std::make_pair(s, seq);
}

}  // namespace sluice::raft::partition
