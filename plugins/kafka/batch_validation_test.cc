// Kafka-level validation of produced batches and the record-level
// timestamp lookup.
#include "batch_validation.h"
#include "compression.h"

#include "crc32c.h"
#include "record_batch.h"

#include <gtest/gtest.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <string>

namespace sluice::kafka {
namespace {

std::span<const uint8_t> bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// Recomputes the CRC after a test edits bytes inside it.
void fix_crc(std::string& b) {
  const uint32_t crc = storage::crc32c(0, reinterpret_cast<const uint8_t*>(b.data()) + storage::batch_crc_start,
                                       b.size() - storage::batch_crc_start);
  storage::write_be32(reinterpret_cast<uint8_t*>(b.data()) + 17, static_cast<int32_t>(crc));
}

TEST(batch_validation, accepts_well_formed_batches_and_counts_them) {
  std::string two = storage::make_test_batch(5, 10, 1000) + storage::make_test_batch(3, 10, 2000);
  const batch_validation v = validate_produce_records(bytes(two), 1 << 20);
  EXPECT_EQ(v.error, error_code::none) << v.message;
  EXPECT_EQ(v.batches, 2);
  EXPECT_EQ(v.records, 8);
  EXPECT_EQ(v.max_timestamp, 2002);
}

TEST(batch_validation, names_what_is_wrong) {
  std::string b = storage::make_test_batch(4, 10, 1000);
  std::string crc = b;
  crc[crc.size() - 1] ^= 1;
  EXPECT_EQ(validate_produce_records(bytes(crc), 1 << 20).error, error_code::corrupt_message);
  EXPECT_NE(validate_produce_records(bytes(crc), 1 << 20).message.find("CRC"), std::string::npos);
  // The produce path leaves the CRC to the storage's append (one pass)...
  std::string crc_field = b;
  crc_field[17] ^= 1;  // the stored CRC itself: the records still parse
  EXPECT_EQ(validate_produce_records(bytes(crc_field), 1 << 20, false).error, error_code::none);
  EXPECT_EQ(validate_produce_records(bytes(crc_field), 1 << 20).error, error_code::corrupt_message);
  // ...but a batch whose records do not parse is checked, and named corrupt first, as Kafka does.
  EXPECT_EQ(validate_produce_records(bytes(crc), 1 << 20, false).error, error_code::corrupt_message);

  EXPECT_EQ(validate_produce_records(bytes(b), 32).error, error_code::message_too_large);
  EXPECT_EQ(validate_produce_records(bytes(b.substr(0, b.size() - 3)), 1 << 20).error, error_code::corrupt_message);
  EXPECT_EQ(validate_produce_records({}, 1 << 20).error, error_code::invalid_record);

  std::string magic1 = b;
  magic1[16] = 1;
  EXPECT_EQ(validate_produce_records(bytes(magic1), 1 << 20).error, error_code::unsupported_for_message_format);

  // A record whose offset delta breaks the 0, 1, 2... sequence (valid CRC).
  std::string seq = b;
  // First record: length varint, attributes, timestamp delta (0 -> 1 byte),
  // offset delta at byte 3 of the record.
  const size_t first = storage::batch_header_bytes;
  seq[first + 3] = 2 * 7;  // zigzag 7
  fix_crc(seq);
  const batch_validation v = validate_produce_records(bytes(seq), 1 << 20);
  EXPECT_EQ(v.error, error_code::invalid_record) << v.message;
  EXPECT_NE(v.message.find("consecutive"), std::string::npos) << v.message;
}

TEST(batch_validation, finds_the_first_record_at_or_after_a_timestamp) {
  const std::string b = storage::make_test_batch(10, 4, 5000);  // timestamps 5000..5009
  bool compressed = true;
  int64_t ts = 0;
  EXPECT_EQ(first_offset_at_or_after(bytes(b), 5004, &compressed, &ts), 4);
  EXPECT_FALSE(compressed);
  EXPECT_EQ(ts, 5004);
  EXPECT_EQ(first_offset_at_or_after(bytes(b), 1, &compressed, &ts), 0);
  EXPECT_EQ(first_offset_at_or_after(bytes(b), 6000, &compressed, &ts), -1);
}

// The uncompressed batch b re-encoded with codec (1 gzip/zlib, 2 snappy,
// 3 lz4, 4 zstd; 5 = snappy in the xerial framing Java clients write).
std::string compress_batch(const std::string& b, int codec) {
  const std::string body = b.substr(storage::batch_header_bytes);
  std::string packed;
  if (codec == 1) {
    uLongf n = compressBound(body.size());
    packed.resize(n);
    compress2(reinterpret_cast<Bytef*>(packed.data()), &n, reinterpret_cast<const Bytef*>(body.data()), body.size(), 6);
    packed.resize(n);
  } else if (codec == 2 || codec == 5) {
    size_t n = snappy_max_compressed_length(body.size());
    std::string block(n, '\0');
    snappy_compress(body.data(), body.size(), block.data(), &n);
    block.resize(n);
    if (codec == 2) {
      packed = block;
    } else {
      packed = std::string("\x82SNAPPY\0", 8) + std::string("\0\0\0\1\0\0\0\1", 8);
      const uint32_t len = static_cast<uint32_t>(block.size());
      for (int s = 24; s >= 0; s -= 8) packed.push_back(static_cast<char>(len >> s));
      packed += block;
    }
  } else if (codec == 3) {
    packed.resize(LZ4F_compressFrameBound(body.size(), nullptr));
    packed.resize(LZ4F_compressFrame(packed.data(), packed.size(), body.data(), body.size(), nullptr));
  } else if (codec == 4) {
    packed.resize(ZSTD_compressBound(body.size()));
    packed.resize(ZSTD_compress(packed.data(), packed.size(), body.data(), body.size(), 3));
  }
  std::string out = b.substr(0, storage::batch_header_bytes) + packed;
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  storage::write_be32(p + 8, static_cast<int32_t>(out.size() - storage::batch_length_field_end));
  storage::write_be16(p + 21, static_cast<int16_t>(codec == 5 ? 2 : codec));
  fix_crc(out);
  return out;
}

TEST(batch_validation, finds_the_record_inside_compressed_batches) {
  const std::string plain = storage::make_test_batch(50, 30, 7000);  // timestamps 7000..7049
  for (int codec : {1, 2, 3, 4, 5}) {
    const std::string b = compress_batch(plain, codec);
    EXPECT_EQ(validate_produce_records(bytes(b), 1 << 20).error, error_code::none) << codec;
    bool compressed = false;
    int64_t ts = 0;
    EXPECT_EQ(first_offset_at_or_after(bytes(b), 7031, &compressed, &ts), 31) << "codec " << codec;
    EXPECT_TRUE(compressed);
    EXPECT_EQ(ts, 7031);
  }
}

TEST(compression, hostile_input_is_an_error_not_a_crash_or_a_bomb) {
  std::vector<uint8_t> out;
  const uint8_t junk[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  for (int codec : {1, 2, 3, 4}) {
    out.clear();
    EXPECT_NE(decompress(codec, junk, out, 1 << 20), "") << codec;
  }
  EXPECT_NE(decompress(7, junk, out, 1 << 20).find("unknown codec"), std::string::npos);
  // 1 MiB of zeros compresses to a few bytes; a 64 KiB cap refuses it.
  const std::string zeros(1 << 20, '\0');
  std::string packed(ZSTD_compressBound(zeros.size()), '\0');
  packed.resize(ZSTD_compress(packed.data(), packed.size(), zeros.data(), zeros.size(), 3));
  out.clear();
  EXPECT_NE(decompress(4, {reinterpret_cast<const uint8_t*>(packed.data()), packed.size()}, out, 64 << 10)
                .find("output larger than"),
            std::string::npos);
}

TEST(batch_validation, log_append_time_restamps_and_keeps_the_crc_valid) {
  std::string b = storage::make_test_batch(3, 10, 1000) + storage::make_test_batch(2, 10, 2000);
  stamp_log_append_time({reinterpret_cast<uint8_t*>(b.data()), b.size()}, 123456789);
  const batch_validation v = validate_produce_records(bytes(b), 1 << 20);
  EXPECT_EQ(v.error, error_code::none) << v.message;
  EXPECT_EQ(v.max_timestamp, 123456789);
  const storage::batch_header h = storage::decode_header(reinterpret_cast<const uint8_t*>(b.data()));
  EXPECT_TRUE(h.attributes & 0x08);
}

}  // namespace
}  // namespace sluice::kafka
