// CRC32C (Castagnoli), as Kafka's record batch v2 uses it: SSE4.2 crc32
// instructions with three interleaved streams when the CPU has them, a
// table-driven fallback otherwise. Thread-safe (pure functions).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::storage {

// Extends crc (0 for a fresh checksum) over data.
uint32_t crc32c(uint32_t crc, const void* data, size_t size) noexcept;

// The portable implementation, exposed to test the accelerated one.
uint32_t crc32c_portable(uint32_t crc, const void* data, size_t size) noexcept;

bool crc32c_hardware_accelerated() noexcept;

}  // namespace sluice::storage
