#include "sluice/kafka/detail/field_codec.h"

namespace sluice::kafka::detail {

bool rd_str(reader& r, std::string& v, bool compact) { return r.read_string(v, compact); }

bool rd_str(reader& r, std::optional<std::string>& v, bool compact, bool nullable) {
  if (!nullable) return r.read_string(v.emplace(), compact);
  return r.read_nullable_string(v, compact);
}

void wr_str(writer& w, const std::string& v, bool compact) { w.write_string(v, compact); }

void wr_str(writer& w, const std::optional<std::string>& v, bool compact, bool nullable) {
  if (v) {
    w.write_string(*v, compact);
  } else if (nullable) {
    w.write_null_string(compact);
  } else {
    w.write_string({}, compact);
  }
}

bool rd_bytes(reader& r, std::vector<uint8_t>& v, bool compact) { return r.read_bytes(v, compact); }

bool rd_bytes(reader& r, std::optional<std::vector<uint8_t>>& v, bool compact, bool nullable) {
  if (!nullable) return r.read_bytes(v.emplace(), compact);
  return r.read_nullable_bytes(v, compact);
}

void wr_bytes(writer& w, const std::vector<uint8_t>& v, bool compact) { w.write_bytes(v, compact); }

void wr_bytes(writer& w, const std::optional<std::vector<uint8_t>>& v, bool compact,
              bool nullable) {
  if (v) {
    w.write_bytes(*v, compact);
  } else if (nullable) {
    w.write_null_bytes(compact);
  } else {
    w.write_bytes({}, compact);
  }
}

bool rd_records(reader& r, records_view& v, bool compact, bool nullable) {
  if (!r.read_records(v, compact)) return false;
  if (v.is_null && !nullable) return r.fail(errc::null_not_allowed, "null records in a non-nullable field");
  return true;
}

void wr_records(writer& w, const records_view& v, bool compact, bool nullable) {
  if (v.is_null && !nullable) {
    w.write_bytes({}, compact);
    return;
  }
  w.write_records(v, compact);
}

bool tagged_size_error(reader& r, uint32_t tag, uint32_t size) {
  return r.fail(errc::invalid_tagged_field, "tagged field " + std::to_string(tag) + " declares " +
                                                std::to_string(size) +
                                                " bytes, which does not match its content or the remaining " +
                                                std::to_string(r.remaining()) + " bytes");
}

}  // namespace sluice::kafka::detail
