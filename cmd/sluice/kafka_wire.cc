#include "kafka_wire.h"

#include "args.h"
#include "cli_error.h"
#include "net.h"

namespace sluice::cli {

namespace {

class writer {
 public:
  void int8(int8_t v) { _out.push_back(static_cast<char>(v)); }
  void int16(int16_t v) { big_endian(static_cast<uint16_t>(v), 2); }
  void int32(int32_t v) { big_endian(static_cast<uint32_t>(v), 4); }
  void string(std::string_view s) {
    int16(static_cast<int16_t>(s.size()));
    _out.append(s);
  }
  void nullable_string(const std::optional<std::string>& s) {
    if (!s) {
      int16(-1);
    } else {
      string(*s);
    }
  }
  std::string take_frame() {
    std::string frame;
    uint32_t size = static_cast<uint32_t>(_out.size());
    for (int shift = 24; shift >= 0; shift -= 8) {
      frame.push_back(static_cast<char>((size >> shift) & 0xff));
    }
    return frame + _out;
  }

 private:
  void big_endian(uint32_t v, int bytes) {
    for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
      _out.push_back(static_cast<char>((v >> shift) & 0xff));
    }
  }
  std::string _out;
};

class reader {
 public:
  explicit reader(std::string_view in) : _in(in) {}
  int8_t int8() { return static_cast<int8_t>(take(1)[0]); }
  int16_t int16() { return static_cast<int16_t>(big_endian(2)); }
  int32_t int32() { return static_cast<int32_t>(big_endian(4)); }
  std::optional<std::string> nullable_string() {
    int16_t len = int16();
    if (len < 0) {
      return std::nullopt;
    }
    return std::string(take(static_cast<size_t>(len)));
  }
  std::string string() {
    auto s = nullable_string();
    if (!s) {
      truncated("a null string where a string is required");
    }
    return *s;
  }

 private:
  [[noreturn]] void truncated(const std::string& why) {
    throw_failed("malformed IncrementalAlterConfigs response: " + why);
  }
  std::string_view take(size_t n) {
    if (_in.size() < n) {
      truncated("it ends early");
    }
    std::string_view out = _in.substr(0, n);
    _in.remove_prefix(n);
    return out;
  }
  uint32_t big_endian(size_t n) {
    uint32_t v = 0;
    for (char c : take(n)) {
      v = (v << 8) | static_cast<uint8_t>(c);
    }
    return v;
  }
  std::string_view _in;
};

}  // namespace

std::string encode_incremental_alter_configs(int32_t correlation_id, std::string_view client_id,
                                             std::string_view topic, std::span<const config_change> changes,
                                             bool validate_only) {
  writer w;
  // Request header v1.
  w.int16(incremental_alter_configs_key);
  w.int16(0);
  w.int32(correlation_id);
  w.string(client_id);
  // Body v0: one resource.
  w.int32(1);
  w.int8(resource_type_topic);
  w.string(topic);
  w.int32(static_cast<int32_t>(changes.size()));
  for (const config_change& c : changes) {
    w.string(c.name);
    w.int8(static_cast<int8_t>(c.operation));
    w.nullable_string(c.value);
  }
  w.int8(validate_only ? 1 : 0);
  return w.take_frame();
}

std::vector<alter_configs_result> decode_incremental_alter_configs(std::string_view body,
                                                                    int32_t expected_correlation_id) {
  reader r(body);
  int32_t correlation_id = r.int32();
  if (correlation_id != expected_correlation_id) {
    throw_failed("the broker answered IncrementalAlterConfigs with correlation id " +
                 std::to_string(correlation_id) + ", expected " + std::to_string(expected_correlation_id));
  }
  r.int32();  // throttle_time_ms
  int32_t count = r.int32();
  if (count < 0 || count > 100000) {
    throw_failed("malformed IncrementalAlterConfigs response: " + std::to_string(count) + " resources");
  }
  std::vector<alter_configs_result> results;
  for (int32_t i = 0; i < count; ++i) {
    alter_configs_result res;
    res.error_code = r.int16();
    res.error_message = r.nullable_string();
    res.resource_type = r.int8();
    res.resource_name = r.string();
    results.push_back(std::move(res));
  }
  return results;
}

std::vector<alter_configs_result> incremental_alter_configs(const settings& s, std::string_view topic,
                                                            std::span<const config_change> changes,
                                                            bool validate_only) {
  const deadline until = deadline_after_ms(s.timeout_ms);
  std::string errors;
  for (const std::string& item : split_list(s.brokers)) {
    host_port hp = parse_host_port(item, 9092, "--brokers");
    std::optional<tcp_connection> conn;
    try {
      conn.emplace(hp, until, "broker " + hp.to_string());
    } catch (const cli_error& e) {
      errors += std::string(errors.empty() ? "" : "; ") + e.what();
      continue;
    }
    constexpr int32_t correlation_id = 1;
    conn->send_all(encode_incremental_alter_configs(correlation_id, "sluice-cli", topic, changes, validate_only));
    std::string size_bytes = conn->receive_exactly(4);
    uint32_t size = 0;
    for (char c : size_bytes) {
      size = (size << 8) | static_cast<uint8_t>(c);
    }
    if (size > 64 * 1024 * 1024) {
      throw_failed("broker " + hp.to_string() + " answered IncrementalAlterConfigs with a " + std::to_string(size) +
                   "-byte frame");
    }
    return decode_incremental_alter_configs(conn->receive_exactly(size), correlation_id);
  }
  throw_unreachable(errors + " (brokers from " + s.brokers_source + ")");
}

}  // namespace sluice::cli
