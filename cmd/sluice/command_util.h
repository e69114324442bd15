#pragma once
// Small pieces shared by the commands_*.cc files.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "args.h"
#include "kafka_client.h"

namespace sluice::cli {

inline option_spec dry_run_option() {
  return {"dry-run", 0, "", "validate only: the broker checks the request and changes nothing"};
}

// "all" (every partition of the topic) or "0,2,5"; each must exist in the topic.
std::vector<int32_t> select_partitions(const std::string& text, const topic_info& topic, const std::string& what);

// The partitions of a topic as topic_partition values.
std::vector<topic_partition> partitions_of(const topic_info& topic, const std::vector<int32_t>& ids);

struct context;

// Prints one item's failure ("cannot delete topic 'a': ...") to stderr and
// returns the command's exit code so far with it folded in: any failure
// other than "not found" makes it 1 (or 3), otherwise 4.
int report_item_failure(context& ctx, int rc, rd_kafka_resp_err_t err, const std::string& what,
                        const std::string& message);

// The JSON value of a cluster setting, typed from its entry in
// GET /v1/cluster_config/schema ({"type", "enum"?, "minimum"?, "maximum"?}).
// Bad values are usage errors naming the key.
nlohmann::json typed_setting_value(const std::string& key, const std::string& text, const nlohmann::json& schema);

}  // namespace sluice::cli
