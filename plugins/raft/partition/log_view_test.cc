#include "log_view.h"

#include <gtest/gtest.h>

namespace sluice::raft::partition {
namespace {

membership three() {
  membership m;
  m.voters = {node_id(1), node_id(2), node_id(3)};
  return m;
}

entry make(uint64_t term, uint64_t index, uint32_t count, size_t bytes = 100) {
  return entry{term_id(term), log_index(index), count, entry_type::normal, payload(std::string(bytes, 'x'))};
}

TEST(log_view, terms_come_from_the_epoch_table) {
  log_view v(three(), 1 << 20);
  // Offsets 0..9 stored: epoch 1 from offset 0, epoch 3 from offset 5.
  v.reset(0, 10, {{term_id(1), log_index(1)}, {term_id(3), log_index(6)}}, term_id(0), hard_state{term_id(3)});
  EXPECT_EQ(v.first_index(), log_index(1));
  EXPECT_EQ(v.last_index(), log_index(10));
  EXPECT_EQ(v.term(log_index(0)).value(), term_id(0));
  EXPECT_EQ(v.term(log_index(1)).value(), term_id(1));
  EXPECT_EQ(v.term(log_index(5)).value(), term_id(1));
  EXPECT_EQ(v.term(log_index(6)).value(), term_id(3));
  EXPECT_EQ(v.term(log_index(10)).value(), term_id(3));
  EXPECT_FALSE(v.term(log_index(11)));
  EXPECT_EQ(v.initial_hard_state().term, term_id(3));
}

TEST(log_view, appended_entries_serve_followers_from_the_tail) {
  log_view v(three(), 1 << 20);
  v.reset(0, 0, {}, term_id(0), {});
  v.appended({make(2, 1, 3), make(2, 4, 1), make(4, 5, 2)});
  EXPECT_EQ(v.last_index(), log_index(6));
  EXPECT_EQ(v.term(log_index(5)).value(), term_id(4));
  auto e = v.entries(log_index(2), log_index(7), 1 << 20);
  ASSERT_TRUE(e);
  ASSERT_EQ(e.value().size(), 3u);  // starts with the entry containing index 2
  EXPECT_EQ(e.value().front().index, log_index(1));
  // max_bytes: at least one entry.
  auto one = v.entries(log_index(1), log_index(7), 1);
  ASSERT_TRUE(one);
  EXPECT_EQ(one.value().size(), 1u);
}

TEST(log_view, entries_below_the_tail_are_read_back) {
  log_view v(three(), 250);  // room for about two entries of 132 bytes
  v.reset(0, 0, {}, term_id(0), {});
  for (uint64_t i = 1; i <= 5; ++i) v.appended({make(1, i, 1)});
  auto miss = v.entries(log_index(1), log_index(6), 1 << 20);
  ASSERT_FALSE(miss);
  EXPECT_EQ(miss.err().code, make_error_code(errc::unavailable));
  ASSERT_TRUE(v.wanted_read());
  EXPECT_EQ(*v.wanted_read(), log_index(1));
  v.clear_wanted();
  v.fill_readback({make(1, 1, 1), make(1, 2, 1)});
  auto hit = v.entries(log_index(1), log_index(6), 1 << 20);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit.value().size(), 2u);
  ASSERT_TRUE(v.wanted_read());  // reads ahead
  EXPECT_EQ(*v.wanted_read(), log_index(3));
}

TEST(log_view, truncation_and_restore) {
  log_view v(three(), 1 << 20);
  v.reset(0, 0, {}, term_id(0), {});
  v.appended({make(1, 1, 2), make(2, 3, 2), make(2, 5, 1)});
  v.truncated(log_index(3));
  EXPECT_EQ(v.last_index(), log_index(2));
  EXPECT_EQ(v.term(log_index(2)).value(), term_id(1));
  EXPECT_FALSE(v.term(log_index(3)));
  v.appended({make(5, 3, 1)});
  EXPECT_EQ(v.term(log_index(3)).value(), term_id(5));

  snapshot_meta s;
  s.index = log_index(100);
  s.term = term_id(6);
  v.restored(s);
  EXPECT_EQ(v.first_index(), log_index(101));
  EXPECT_EQ(v.last_index(), log_index(100));
  EXPECT_EQ(v.term(log_index(100)).value(), term_id(6));
  EXPECT_FALSE(v.term(log_index(99)));
  EXPECT_EQ(v.snapshot_meta_of().index, log_index(100));
  EXPECT_EQ(v.snapshot_meta_of().term, term_id(6));
}

TEST(log_view, prefix_removal_keeps_the_term_before_the_start) {
  log_view v(three(), 1 << 20);
  v.reset(0, 0, {}, term_id(0), {});
  v.appended({make(1, 1, 5), make(2, 6, 5)});
  v.prefix_removed(5);  // offsets 0..4 gone: first index 6
  EXPECT_EQ(v.first_index(), log_index(6));
  EXPECT_EQ(v.term(log_index(5)).value(), term_id(1));
  EXPECT_FALSE(v.entries(log_index(5), log_index(11), 1 << 20));
}

TEST(log_view, the_visible_end_stops_before_trailing_control_entries) {
  log_view v(three(), 1 << 20);
  v.reset(0, 0, {}, term_id(0), {});
  v.appended({make(1, 1, 5), entry{term_id(2), log_index(6), 1, entry_type::noop, payload()},
              entry{term_id(3), log_index(7), 1, entry_type::noop, payload()}});
  EXPECT_EQ(v.visible_end(log_index(7)), log_index(5));  // both noops at the end are hidden
  EXPECT_EQ(v.visible_end(log_index(6)), log_index(5));
  EXPECT_EQ(v.visible_end(log_index(5)), log_index(5));
  v.appended({make(3, 8, 2)});
  EXPECT_EQ(v.visible_end(log_index(9)), log_index(9));  // data after them: everything is visible
  EXPECT_EQ(v.visible_end(log_index(7)), log_index(5));  // not committed past the noops yet
}

entry conf(uint64_t term, uint64_t index, membership m) {
  return entry{term_id(term), log_index(index), 1, entry_type::conf_change, payload(encode_membership(m))};
}

membership with_learner(uint64_t learner) {
  membership m = three();
  m.learners = {node_id(learner)};
  return m;
}

TEST(log_view, membership_follows_conf_change_entries) {
  log_view v(three(), 1 << 20);
  v.reset(0, 0, {}, term_id(0), {});
  EXPECT_FALSE(v.last_membership(log_index(0)));  // the bootstrap applies
  v.appended({make(1, 1, 2), conf(1, 3, with_learner(4)), make(1, 4, 1)});
  EXPECT_FALSE(v.last_membership(log_index(2)));
  ASSERT_TRUE(v.last_membership(log_index(4)));
  EXPECT_EQ(v.last_membership(log_index(4))->index, log_index(3));
  EXPECT_EQ(v.members(), with_learner(4));
  EXPECT_EQ(v.bootstrap(), three());
  // A conflicting suffix removed takes its membership change with it.
  v.truncated(log_index(3));
  EXPECT_EQ(v.members(), three());
  EXPECT_TRUE(v.confs().empty());
}

TEST(log_view, persisted_records_the_log_does_not_hold_are_dropped) {
  log_view v(three(), 1 << 20);
  // Offsets 0..9, all of term 2.
  v.reset(0, 10, {{term_id(2), log_index(1)}}, term_id(0), {});
  std::vector<conf_record> recs{{log_index(4), term_id(2), with_learner(4)},
                                {log_index(8), term_id(1), with_learner(5)},  // another term there: replaced
                                {log_index(12), term_id(2), three()}};        // never reached the log
  EXPECT_TRUE(v.set_confs(recs));
  ASSERT_EQ(v.confs().size(), 1u);
  EXPECT_EQ(v.members(), with_learner(4));
  EXPECT_FALSE(v.set_confs(v.confs()));  // unchanged
}

TEST(log_view, the_snapshot_carries_the_membership_before_the_log_start) {
  log_view v(three(), 1 << 20);
  v.reset(0, 0, {}, term_id(0), {});
  v.appended({conf(1, 1, with_learner(4)), make(1, 2, 5), conf(1, 7, with_learner(5)), make(1, 8, 3)});
  v.prefix_removed(8);  // the log starts at index 9
  EXPECT_EQ(v.snapshot_meta_of().index, log_index(8));
  EXPECT_EQ(v.snapshot_meta_of().members, with_learner(5));
  EXPECT_EQ(v.confs().size(), 1u);  // only the latest before the start stays
  snapshot_meta s{log_index(20), term_id(3), with_learner(6)};
  v.restored(s);
  EXPECT_EQ(v.members(), with_learner(6));
  EXPECT_EQ(v.snapshot_meta_of().members, with_learner(6));
}

}  // namespace
}  // namespace sluice::raft::partition
