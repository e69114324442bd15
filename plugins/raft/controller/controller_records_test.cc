#include "controller_records.h"

#include <gtest/gtest.h>

namespace sluice::raft::controller {
namespace {

membership three() {
  membership m;
  m.voters = {node_id(1), node_id(2), node_id(3)};
  return m;
}

entry cmd(uint64_t term, uint64_t index, const std::string& s) {
  return entry{term_id(term), log_index(index), 1, entry_type::normal, payload(s)};
}

TEST(controller_records, replay_rebuilds_the_log) {
  std::string file = encode_hard_record(hard_state{term_id(2), node_id(1), log_index(0)});
  file += encode_entry_record(cmd(1, 1, "a"));
  file += encode_entry_record(cmd(1, 2, "b"));
  file += encode_entry_record(cmd(2, 2, "B"));  // a new leader replaced index 2
  file += encode_entry_record(entry{term_id(2), log_index(3), 1, entry_type::noop, payload()});
  memory_log log(three());
  auto r = replay(file, log, "controller.log");
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r.value().valid_bytes, file.size());
  EXPECT_EQ(r.value().records, 5u);
  EXPECT_EQ(log.last_index(), log_index(3));
  EXPECT_EQ(log.term(log_index(2)).value(), term_id(2));
  EXPECT_EQ(log.stored_entries()[1].data.view(), "B");
  EXPECT_EQ(log.initial_hard_state().vote, node_id(1));
}

TEST(controller_records, a_torn_tail_ends_the_log) {
  std::string file = encode_entry_record(cmd(1, 1, "a"));
  const size_t whole = file.size();
  file += encode_entry_record(cmd(1, 2, "bbbbbbbb"));
  for (size_t cut = whole; cut < file.size(); ++cut) {
    memory_log log(three());
    auto r = replay(std::string_view(file).substr(0, cut), log, "controller.log");
    ASSERT_TRUE(r);
    EXPECT_EQ(r.value().valid_bytes, whole);
    EXPECT_EQ(log.last_index(), log_index(1));
  }
  // A flipped byte in the last record fails its CRC: also a torn tail.
  std::string flipped = file;
  flipped.back() = static_cast<char>(flipped.back() ^ 1);
  memory_log log(three());
  auto r = replay(flipped, log, "controller.log");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().valid_bytes, whole);
}

TEST(controller_records, a_whole_record_that_does_not_fit_is_corruption) {
  std::string file = encode_entry_record(cmd(1, 1, "a")) + encode_entry_record(cmd(1, 5, "gap"));
  memory_log log(three());
  auto r = replay(file, log, "/data/raft/controller.log");
  ASSERT_FALSE(r);
  EXPECT_NE(r.err().message.find("/data/raft/controller.log is corrupt at byte"), std::string::npos);
  EXPECT_NE(r.err().message.find("does not continue the log"), std::string::npos);
}

TEST(controller_records, snapshots_restart_the_log) {
  snapshot s;
  s.meta.index = log_index(10);
  s.meta.term = term_id(3);
  s.meta.members = three();
  s.data = payload(std::string("state"));
  std::string file = encode_entry_record(cmd(1, 1, "a")) + encode_snapshot_record(s) + encode_entry_record(cmd(3, 11, "c"));
  memory_log log(three());
  auto r = replay(file, log, "controller.log");
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(log.first_index(), log_index(11));
  EXPECT_EQ(log.last_index(), log_index(11));
  EXPECT_EQ(log.stored_snapshot().data.view(), "state");
}

}  // namespace
}  // namespace sluice::raft::controller
