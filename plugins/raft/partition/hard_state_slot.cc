// The partition hard-state file's slot format (hard_state_file.h): pure,
// unit-tested and fuzzed.
#include "hard_state_slot.h"

#include "crc32c.h"

namespace sluice::raft::partition {

namespace {

constexpr uint32_t slot_magic = 0x53485253;  // "SRHS" read little-endian
// Version 1 without a repair gate (every slot written while none is set),
// version 2 with one: a broker that does not know gates reads a version-2
// slot as invalid, and no slot written without a gate changed.
constexpr uint32_t slot_version = 1;
constexpr uint32_t slot_version_gate = 2;
constexpr size_t slot_used = 4 + 4 + 8 * 5;  // magic, version, sequence, term, vote, snapshot index and term
constexpr size_t slot_used_gate = slot_used + 8 * 2;  // and the gate's index and term

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
  const bool gate = !s.gate_index.is_zero();
  SLUICE_ASSERT_MSG(gate || s.gate_term.is_zero(), "a gate term without a gate index");
  put32(out, slot_magic);
  put32(out, gate ? slot_version_gate : slot_version);
  put64(out, sequence);
  put64(out, s.term.value());
  put64(out, s.vote.value());
  put64(out, s.snapshot_index.value());
  put64(out, s.snapshot_term.value());
  if (gate) {
    put64(out, s.gate_index.value());
    put64(out, s.gate_term.value());
  }
  SLUICE_ASSERT(out.size() == (gate ? slot_used_gate : slot_used));
  put32(out, storage::crc32c(0, out.data(), out.size()));
  out.resize(hard_state_slot_bytes, '\0');
  return out;
}

std::optional<std::pair<persisted_state, uint64_t>> decode_hard_state_slot(const uint8_t* p, size_t len) {
  if (len < slot_used + 4 || get32(p) != slot_magic) return std::nullopt;
  const uint32_t version = get32(p + 4);
  if (version != slot_version && version != slot_version_gate) return std::nullopt;
  const size_t used = version == slot_version_gate ? slot_used_gate : slot_used;
  if (len < used + 4 || get32(p + used) != storage::crc32c(0, p, used)) return std::nullopt;
  persisted_state s;
  const uint64_t seq = get64(p + 8);
  s.term = term_id(get64(p + 16));
  s.vote = node_id(get64(p + 24));
  s.snapshot_index = log_index(get64(p + 32));
  s.snapshot_term = term_id(get64(p + 40));
  if (version == slot_version_gate) {
    s.gate_index = log_index(get64(p + 48));
    s.gate_term = term_id(get64(p + 56));
    if (s.gate_index.is_zero()) return std::nullopt;  // version 2 always holds a gate
  }
  return std::make_pair(s, seq);
}

namespace {
constexpr uint32_t conf_magic = 0x424d5253;  // "SRMB" read little-endian
constexpr uint32_t conf_version = 1;

error bad_conf(const std::string& why) { return make_raft_error(errc::invalid_argument, "membership records: " + why); }
}  // namespace

std::string encode_conf_records(const std::vector<conf_record>& recs) {
  std::string out;
  put32(out, conf_magic);
  put32(out, conf_version);
  put32(out, static_cast<uint32_t>(recs.size()));
  for (const conf_record& r : recs) {
    put64(out, r.index.value());
    put64(out, r.term.value());
    const std::string m = encode_membership(r.members);
    put32(out, static_cast<uint32_t>(m.size()));
    out += m;
  }
  put32(out, storage::crc32c(0, out.data(), out.size()));
  return out;
}

result<std::vector<conf_record>> decode_conf_records(std::string_view bytes) {
  std::vector<conf_record> out;
  if (bytes.empty()) return out;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.size() < 16) return bad_conf(std::to_string(bytes.size()) + " bytes, shorter than the header and CRC");
  if (get32(p) != conf_magic) return bad_conf("not a membership file (bad magic)");
  if (get32(p + 4) != conf_version) return bad_conf("unknown version " + std::to_string(get32(p + 4)));
  const size_t body = bytes.size() - 4;
  if (get32(p + body) != storage::crc32c(0, p, body)) return bad_conf("CRC mismatch (torn or corrupt)");
  const uint32_t count = get32(p + 8);
  size_t at = 12;
  for (uint32_t k = 0; k < count; ++k) {
    if (body - at < 20) return bad_conf("record " + std::to_string(k) + " is cut short");
    conf_record r;
    r.index = log_index(get64(p + at));
    r.term = term_id(get64(p + at + 8));
    const uint32_t len = get32(p + at + 16);
    at += 20;
    if (body - at < len) return bad_conf("record " + std::to_string(k) + "'s membership is cut short");
    auto m = decode_membership(bytes.substr(at, len));
    if (!m) return bad_conf("record " + std::to_string(k) + ": " + m.err().message);
    r.members = std::move(m.value());
    at += len;
    if (!out.empty() && out.back().index >= r.index) return bad_conf("record indexes do not ascend");
    out.push_back(std::move(r));
  }
  if (at != body) return bad_conf(std::to_string(body - at) + " bytes after the last record");
  return out;
}

}  // namespace sluice::raft::partition
