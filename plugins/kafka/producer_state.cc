#include "producer_state.h"

#include "record_batch.h"

#include <limits>

namespace sluice::kafka {

int32_t increment_sequence(int32_t seq, int32_t delta) noexcept {
  if (seq > std::numeric_limits<int32_t>::max() - delta) return delta - (std::numeric_limits<int32_t>::max() - seq) - 1;
  return seq + delta;
}

namespace {

bool in_sequence(int32_t last_seq, int32_t next_seq) {
  return next_seq == increment_sequence(last_seq, 1);  // INT32_MAX is followed by 0
}

}  // namespace

sequence_verdict producer_state_table::check(std::span<const producer_batch_info> batches) const {
  sequence_verdict v;
  // Later batches of the same request are checked against the state the
  // earlier ones would leave: a small copy of the producers involved.
  std::map<int64_t, producer_entry> pending;
  for (const auto& b : batches) {
    if (b.producer_id < 0) continue;
    auto pit = pending.find(b.producer_id);
    if (pit == pending.end()) {
      auto it = _producers.find(b.producer_id);
      pit = pending.emplace(b.producer_id, it == _producers.end() ? producer_entry{} : it->second).first;
    }
    producer_entry& e = pit->second;
    const std::string who = "producer " + std::to_string(b.producer_id);
    const bool known = e.epoch >= 0;
    if (known && b.producer_epoch < e.epoch) {
      v.error = error_code::invalid_producer_epoch;
      v.message = "Epoch of " + who + " is " + std::to_string(b.producer_epoch) +
                  ", which is smaller than the last seen epoch " + std::to_string(e.epoch);
      return v;
    }
    if (known && b.producer_epoch == e.epoch) {
      for (const auto& m : e.batches) {
        if (m.first_seq == b.first_seq && m.last_seq == b.last_seq) {
          // Kafka answers the whole request with the duplicate's offsets.
          v.duplicate = true;
          v.base_offset = m.base_offset;
          v.last_offset = m.last_offset;
          return v;
        }
      }
    }
    if (known && b.producer_epoch != e.epoch && b.first_seq != 0) {
      v.error = error_code::out_of_order_sequence_number;
      v.message = "Invalid sequence number for new epoch of " + who + ": " + std::to_string(b.producer_epoch) +
                  " (request epoch), " + std::to_string(b.first_seq) + " (seq. number), " +
                  std::to_string(e.epoch) + " (current producer epoch)";
      return v;
    }
    if (known && b.producer_epoch == e.epoch && !in_sequence(e.last_seq(), b.first_seq)) {
      v.error = error_code::out_of_order_sequence_number;
      v.message = "Out of order sequence number for " + who + " at epoch " + std::to_string(e.epoch) + ": " +
                  std::to_string(b.first_seq) + " (incoming seq. number), " + std::to_string(e.last_seq()) +
                  " (current end sequence number)";
      return v;
    }
    push(e, b, -1, -1);  // offsets unknown yet; only the sequences matter here
  }
  return v;
}

void producer_state_table::push(producer_entry& e, const producer_batch_info& b, int64_t base_offset,
                                int64_t timestamp) {
  if (b.producer_epoch != e.epoch) {
    e.epoch = b.producer_epoch;
    e.batches.clear();  // the sequences of an older epoch never match again
  }
  e.batches.push_back({b.first_seq, b.last_seq, base_offset,
                       base_offset < 0 ? -1 : base_offset + b.offset_count - 1, timestamp});
  while (e.batches.size() > batches_to_retain) e.batches.pop_front();
}

void producer_state_table::record(std::span<const producer_batch_info> batches, int64_t base_offset,
                                  int64_t append_time_ms) {
  for (const auto& b : batches) {
    if (b.producer_id >= 0)
      push(_producers[b.producer_id], b, base_offset, append_time_ms >= 0 ? append_time_ms : b.max_timestamp);
    base_offset += b.offset_count;
  }
}

void producer_state_table::replay(const producer_batch_info& b, int64_t base_offset) {
  if (b.producer_id < 0) return;
  producer_entry& e = _producers[b.producer_id];
  if (e.epoch >= 0 && b.producer_epoch < e.epoch) return;
  push(e, b, base_offset, b.max_timestamp);
}

producer_batch_info producer_batch_at(const uint8_t* p) noexcept {
  const storage::batch_header h = storage::decode_header(p);
  producer_batch_info b;
  b.producer_id = h.producer_id;
  b.producer_epoch = h.producer_epoch;
  b.first_seq = h.base_sequence;
  b.last_seq = increment_sequence(h.base_sequence, h.last_offset_delta);
  b.offset_count = h.last_offset_delta + 1;
  b.max_timestamp = h.max_timestamp;
  return b;
}

std::vector<producer_batch_info> producer_batches_of(std::span<const uint8_t> batches) {
  std::vector<producer_batch_info> out;
  size_t at = 0;
  while (at + storage::batch_header_bytes <= batches.size()) {
    const storage::batch_header h = storage::decode_header(batches.data() + at);
    if (h.batch_length <= 0) break;
    out.push_back(producer_batch_at(batches.data() + at));
    at += h.size_bytes();
  }
  return out;
}

}  // namespace sluice::kafka
