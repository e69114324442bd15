// The consumer protocol's embedded messages (ConsumerProtocolAssignment in
// proto/kafka/messages): the broker never needs them to run a group, only
// to show who reads what (admin API). Bytes come from clients: fuzzed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::kafka {

// The partitions a member was given, from its SyncGroup assignment (any
// version: the fields read here are in all of them); an empty assignment
// is an empty list; nullopt when bytes do not decode.
std::optional<std::vector<std::pair<std::string, int32_t>>> decode_consumer_assignment(const std::vector<uint8_t>& bytes);

}  // namespace sluice::kafka
