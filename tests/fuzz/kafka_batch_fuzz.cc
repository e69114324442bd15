// libFuzzer target: the kafka plugin's checks of produced record data
// (validate_produce_records) and the record-level timestamp search, over
// arbitrary bytes. Neither may read out of bounds, crash or loop; a batch
// they accept must be one the storage accepts too.
#include "batch_validation.h"
#include "record_batch.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  const kafka::batch_validation v = kafka::validate_produce_records({data, size}, 1 << 20);
  if (v.error == kafka::error_code::none) {
    // Everything accepted is a sequence of whole, CRC-valid v2 batches.
    size_t at = 0;
    int32_t batches = 0;
    while (at < size) {
      storage::batch_header h;
      if (storage::check_batch(data + at, size - at, SIZE_MAX, &h) != storage::batch_check::ok) std::abort();
      at += h.size_bytes();
      ++batches;
    }
    if (batches != v.batches) std::abort();
  }
  bool compressed = false;
  int64_t ts = 0;
  const int64_t offset = kafka::first_offset_at_or_after({data, size}, 1000, &compressed, &ts);
  if (offset >= 0 && ts < 1000) std::abort();
  return 0;
}
