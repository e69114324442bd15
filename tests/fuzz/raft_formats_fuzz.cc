// The raft plugin's own formats, read back from disk or from a peer's
// entries: the controller log's records (replayed at start), a partition's
// hard-state slots and membership records, and stored batches turned into
// Raft entries. None may
// crash or assert on any input; what they accept must re-encode the same.
#include "batch_codec.h"
#include "controller_records.h"
#include "hard_state_slot.h"
#include "record_batch.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

using namespace sluice::raft;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 4;
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  if (mode == 0) {
    membership m;
    m.voters = {node_id(1), node_id(2), node_id(3)};
    memory_log log(m);
    auto r = controller::replay(bytes, log, "controller.log");
    if (r && r.value().valid_bytes > bytes.size()) __builtin_trap();
  } else if (mode == 1) {
    auto d = partition::decode_hard_state_slot(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    if (d) {
      const std::string again = partition::encode_hard_state_slot(d->first, d->second);
      if (std::memcmp(again.data(), bytes.data(), 52) != 0) __builtin_trap();
    }
  } else if (mode == 3) {
    auto d = partition::decode_conf_records(bytes);
    if (d && !bytes.empty() && partition::encode_conf_records(d.value()) != bytes) __builtin_trap();
  } else {
    // As the storage hands it over: one whole batch whose header and CRC passed.
    sluice::storage::batch_header h;
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    if (sluice::storage::check_batch(p, bytes.size(), 1 << 20, &h) != sluice::storage::batch_check::ok) return 0;
    auto owner = std::make_shared<std::string>(bytes.substr(0, h.size_bytes()));
    auto e = partition::entry_from_batch(owner, reinterpret_cast<const uint8_t*>(owner->data()), owner->size());
    if (e && e.value().type != entry_type::normal && e.value().count == 1 && !e.value().index.is_zero()) {
      if (e.value().type == entry_type::conf_change && !decode_membership(e.value().data.view())) return 0;
      (void)partition::encode_control_batch(e.value());
    }
  }
  return 0;
}
