#include "compression.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <memory>

namespace sluice::kafka {
namespace {

std::string too_large(size_t max_out) { return "output larger than " + std::to_string(max_out) + " bytes"; }

std::string gunzip(std::span<const uint8_t> in, std::vector<uint8_t>& out, size_t max_out) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 32) != Z_OK) return "gzip: cannot initialise zlib";  // gzip or zlib header
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  std::string err;
  uint8_t chunk[64 * 1024];
  for (;;) {
    z.next_out = chunk;
    z.avail_out = sizeof(chunk);
    const int rc = inflate(&z, Z_NO_FLUSH);
    const size_t n = sizeof(chunk) - z.avail_out;
    if (out.size() + n > max_out) {
      err = too_large(max_out);
      break;
    }
    out.insert(out.end(), chunk, chunk + n);
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members are legal.
      if (z.avail_in == 0) break;
      if (inflateReset(&z) != Z_OK) {
        err = "gzip: cannot reset";
        break;
      }
      continue;
    }
    if (rc != Z_OK) {
      err = std::string("gzip: ") + (z.msg ? z.msg : "corrupt data");
      break;
    }
    if (z.avail_in == 0 && n == 0) {
      err = "gzip: truncated";
      break;
    }
  }
  inflateEnd(&z);
  return err;
}

std::string unsnappy_block(const uint8_t* p, size_t n, std::vector<uint8_t>& out, size_t max_out) {
  size_t len = 0;
  if (snappy_uncompressed_length(reinterpret_cast<const char*>(p), n, &len) != SNAPPY_OK)
    return "snappy: corrupt block";
  if (out.size() + len > max_out) return too_large(max_out);
  const size_t at = out.size();
  out.resize(at + len);
  if (snappy_uncompress(reinterpret_cast<const char*>(p), n, reinterpret_cast<char*>(out.data() + at), &len) !=
      SNAPPY_OK)
    return "snappy: corrupt block";
  out.resize(at + len);
  return {};
}

// Raw snappy, or the xerial framing Java clients write: an 8-byte magic,
// two 4-byte versions, then blocks of [4-byte big-endian length][snappy].
std::string unsnappy(std::span<const uint8_t> in, std::vector<uint8_t>& out, size_t max_out) {
  static const uint8_t magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
  if (in.size() < 16 || std::memcmp(in.data(), magic, 8) != 0) return unsnappy_block(in.data(), in.size(), out, max_out);
  size_t at = 16;
  while (at < in.size()) {
    if (in.size() - at < 4) return "snappy: truncated block length";
    const uint32_t n = uint32_t{in[at]} << 24 | uint32_t{in[at + 1]} << 16 | uint32_t{in[at + 2]} << 8 | in[at + 3];
    at += 4;
    if (n > in.size() - at) return "snappy: block longer than the data";
    if (std::string err = unsnappy_block(in.data() + at, n, out, max_out); !err.empty()) return err;
    at += n;
  }
  return {};
}

std::string unlz4(std::span<const uint8_t> in, std::vector<uint8_t>& out, size_t max_out) {
  LZ4F_dctx* ctx = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION))) return "lz4: cannot create a context";
  std::unique_ptr<LZ4F_dctx, decltype(&LZ4F_freeDecompressionContext)> guard(ctx, &LZ4F_freeDecompressionContext);
  size_t at = 0;
  uint8_t chunk[64 * 1024];
  for (;;) {
    size_t in_n = in.size() - at, out_n = sizeof(chunk);
    const size_t hint = LZ4F_decompress(ctx, chunk, &out_n, in.data() + at, &in_n, nullptr);
    if (LZ4F_isError(hint)) return std::string("lz4: ") + LZ4F_getErrorName(hint);
    at += in_n;
    if (out.size() + out_n > max_out) return too_large(max_out);
    out.insert(out.end(), chunk, chunk + out_n);
    if (hint == 0) return {};                     // frame complete
    if (in_n == 0 && out_n == 0) return "lz4: truncated frame";
  }
}

std::string unzstd(std::span<const uint8_t> in, std::vector<uint8_t>& out, size_t max_out) {
  std::unique_ptr<ZSTD_DStream, decltype(&ZSTD_freeDStream)> ds(ZSTD_createDStream(), &ZSTD_freeDStream);
  if (!ds) return "zstd: cannot create a stream";
  ZSTD_inBuffer src{in.data(), in.size(), 0};
  uint8_t chunk[64 * 1024];
  for (;;) {
    ZSTD_outBuffer dst{chunk, sizeof(chunk), 0};
    const size_t rc = ZSTD_decompressStream(ds.get(), &dst, &src);
    if (ZSTD_isError(rc)) return std::string("zstd: ") + ZSTD_getErrorName(rc);
    if (out.size() + dst.pos > max_out) return too_large(max_out);
    out.insert(out.end(), chunk, chunk + dst.pos);
    if (rc == 0 && src.pos == src.size) return {};
    if (src.pos == src.size && dst.pos < dst.size) return rc == 0 ? std::string() : "zstd: truncated frame";
  }
}

}  // namespace

std::string decompress(int codec, std::span<const uint8_t> in, std::vector<uint8_t>& out, size_t max_out) {
  switch (codec) {
    case 1: return gunzip(in, out, max_out);
    case 2: return unsnappy(in, out, max_out);
    case 3: return unlz4(in, out, max_out);
    case 4: return unzstd(in, out, max_out);
    default: return "unknown codec " + std::to_string(codec);
  }
}

}  // namespace sluice::kafka
