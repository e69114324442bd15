#include "command_util.h"

#include <algorithm>

#include "cli_error.h"
#include "command.h"

namespace sluice::cli {

std::vector<int32_t> select_partitions(const std::string& text, const topic_info& topic, const std::string& what) {
  if (text == "all") {
    return topic.partition_ids();
  }
  std::vector<int32_t> ids;
  for (const std::string& item : split_list(text)) {
    auto id = static_cast<int32_t>(parse_int(item, what, 0, INT32_MAX));
    if (id >= static_cast<int32_t>(topic.partitions.size())) {
      throw_not_found("partition " + std::to_string(id) + " of topic '" + topic.name + "' does not exist (it has " +
                      std::to_string(topic.partitions.size()) + " partitions)");
    }
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
      ids.push_back(id);
    }
  }
  if (ids.empty()) {
    throw_usage("bad value '" + text + "' for " + what + ": want a partition number, a list (0,2) or all");
  }
  return ids;
}

std::vector<topic_partition> partitions_of(const topic_info& topic, const std::vector<int32_t>& ids) {
  std::vector<topic_partition> out;
  for (int32_t id : ids) {
    out.push_back({topic.name, id});
  }
  return out;
}

int report_item_failure(context& ctx, int rc, rd_kafka_resp_err_t err, const std::string& what,
                        const std::string& message) {
  try {
    throw_kafka(err, what, message);
  } catch (const cli_error& e) {
    ctx.err << "sluice: " << e.what() << "\n";
    const int code = static_cast<int>(e.code());
    return rc == 0 || rc == static_cast<int>(exit_code::not_found) ? code : rc;
  }
}

}  // namespace sluice::cli
