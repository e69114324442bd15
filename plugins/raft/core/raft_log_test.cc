// raft_log and memory_log: terms and entries of multi-index entries, the
// stable/unstable split, truncation, backtracking by term, compaction.
#include "memory_log.h"
#include "raft_log.h"

#include <gtest/gtest.h>

namespace sluice::raft {
namespace {

log_index idx(uint64_t v) { return log_index(v); }
term_id tm(uint64_t v) { return term_id(v); }

entry ent(uint64_t term, uint64_t index, uint32_t count = 1, std::string data = "") {
  return entry{tm(term), idx(index), count, entry_type::normal, payload(std::move(data))};
}

// Stable: [1] t1, [2..4] t1, [5] t2, [6..10] t3.
memory_log sample() {
  memory_log log;
  log.append({ent(1, 1), ent(1, 2, 3), ent(2, 5), ent(3, 6, 5)});
  return log;
}

TEST(raft_log, terms_cover_every_index_of_an_entry) {
  memory_log log = sample();
  raft_log rl(log);
  EXPECT_EQ(rl.first_index(), idx(1));
  EXPECT_EQ(rl.last_index(), idx(10));
  EXPECT_EQ(rl.term(idx(0)).value(), tm(0));
  EXPECT_EQ(rl.term(idx(3)).value(), tm(1));
  EXPECT_EQ(rl.term(idx(5)).value(), tm(2));
  EXPECT_EQ(rl.term(idx(8)).value(), tm(3));
  EXPECT_EQ(rl.term(idx(11)).err().code, errc::unavailable);
  EXPECT_TRUE(rl.is_up_to_date(idx(10), tm(3)));
  EXPECT_FALSE(rl.is_up_to_date(idx(9), tm(3)));
  EXPECT_TRUE(rl.is_up_to_date(idx(1), tm(4)));
}

TEST(raft_log, entries_start_with_the_one_containing_lo_and_respect_bytes) {
  memory_log log = sample();
  raft_log rl(log);
  auto r = rl.entries(idx(3), idx(11), 1 << 20);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r.value().size(), 3u);
  EXPECT_EQ(r.value().front().index, idx(2));
  // The first entry always comes, even when larger than the limit.
  r = rl.entries(idx(6), idx(11), 1);
  ASSERT_EQ(r.value().size(), 1u);
  r = rl.entries(idx(1), idx(11), 2 * 32);
  EXPECT_EQ(r.value().size(), 2u);
  // hi excludes entries that start at or after it.
  r = rl.entries(idx(1), idx(5), 1 << 20);
  EXPECT_EQ(r.value().back().index, idx(2));
}

TEST(raft_log, unstable_entries_replace_a_stable_suffix) {
  memory_log log = sample();
  raft_log rl(log);
  rl.init(idx(4), idx(0));
  rl.truncate_and_append({ent(4, 5, 2), ent(4, 7)}, 0);
  EXPECT_TRUE(rl.unstable_truncates());
  EXPECT_EQ(rl.last_index(), idx(7));
  EXPECT_EQ(rl.term(idx(6)).value(), tm(4));
  EXPECT_EQ(rl.stable_match(), idx(4));
  auto r = rl.entries(idx(3), idx(8), 1 << 20);
  ASSERT_EQ(r.value().size(), 3u);  // [2..4] stable, [5..6] and [7] unstable
  EXPECT_EQ(r.value()[1].term, tm(4));
  // Truncating inside the unstable part keeps its prefix.
  rl.truncate_and_append({ent(5, 7, 4)}, 0);
  EXPECT_EQ(rl.unstable_entries().size(), 2u);
  EXPECT_EQ(rl.last_index(), idx(10));
  // The host persists; advance checks it did.
  log.append(rl.unstable_entries());
  rl.stable_to(std::nullopt, rl.unstable_entries());
  EXPECT_TRUE(rl.unstable_entries().empty());
  EXPECT_EQ(rl.stable_match(), idx(10));
  EXPECT_EQ(log.term(idx(8)).value(), tm(5));
}

TEST(raft_log, truncating_committed_entries_is_fatal) {
  memory_log log = sample();
  raft_log rl(log);
  rl.init(idx(5), idx(0));
  EXPECT_DEATH(rl.truncate_and_append({ent(4, 5)}, 0), "truncating a committed entry");
}

TEST(raft_log, find_conflict_by_term_searches_by_term) {
  memory_log log = sample();
  raft_log rl(log);
  // Largest index <= 10 whose term <= 2: 5.
  auto [i, t] = rl.find_conflict_by_term(idx(10), tm(2));
  EXPECT_EQ(i, idx(5));
  EXPECT_EQ(t, tm(2));
  std::tie(i, t) = rl.find_conflict_by_term(idx(8), tm(1));
  EXPECT_EQ(i, idx(4));
  std::tie(i, t) = rl.find_conflict_by_term(idx(8), tm(9));
  EXPECT_EQ(i, idx(8));
  std::tie(i, t) = rl.find_conflict_by_term(idx(8), tm(0));
  EXPECT_EQ(i, idx(0));
}

TEST(raft_log, find_conflict_detects_the_first_differing_entry) {
  memory_log log = sample();
  raft_log rl(log);
  EXPECT_EQ(rl.find_conflict({ent(2, 5), ent(3, 6, 5)}), 2u);
  EXPECT_EQ(rl.find_conflict({ent(2, 5), ent(4, 6, 2)}), 1u);
  EXPECT_EQ(rl.find_conflict({ent(3, 6, 5), ent(3, 11)}), 1u);
}

TEST(raft_log, compaction_keeps_term_and_membership_at_the_snapshot) {
  membership m{{node_id(1), node_id(2), node_id(3)}, {}};
  memory_log log(m);
  log.append({ent(1, 1), ent(1, 2, 3), ent(2, 5)});
  membership m2{{node_id(1), node_id(2)}, {}};
  log.append({entry{tm(2), idx(6), 1, entry_type::conf_change, payload(encode_membership(m2))}, ent(2, 7)});
  EXPECT_EQ(log.last_membership(idx(5))->members, m);
  EXPECT_EQ(log.last_membership(idx(7))->index, idx(6));
  log.compact(idx(4), payload(std::string("s")));
  EXPECT_EQ(log.first_index(), idx(5));
  EXPECT_EQ(log.term(idx(4)).value(), tm(1));
  EXPECT_EQ(log.term(idx(3)).err().code, errc::compacted);
  EXPECT_EQ(log.stored_snapshot().meta.members, m);
  log.compact(idx(6), payload(std::string("t")));
  EXPECT_EQ(log.stored_snapshot().meta.members, m2);
  EXPECT_EQ(log.last_membership(idx(7))->members, m2);
  raft_log rl(log);
  EXPECT_EQ(rl.entries(idx(5), idx(8), 100).err().code, errc::compacted);
  EXPECT_EQ(rl.entries(idx(7), idx(8), 100).value().size(), 1u);
}

TEST(raft_log, a_pending_snapshot_hides_the_stable_log) {
  memory_log log = sample();
  raft_log rl(log);
  snapshot s;
  s.meta.index = idx(20);
  s.meta.term = tm(7);
  rl.restore(s);
  EXPECT_EQ(rl.first_index(), idx(21));
  EXPECT_EQ(rl.last_index(), idx(20));
  EXPECT_EQ(rl.term(idx(20)).value(), tm(7));
  EXPECT_EQ(rl.term(idx(10)).err().code, errc::compacted);
  EXPECT_EQ(rl.committed(), idx(20));
  EXPECT_EQ(rl.stable_match(), idx(0));
  rl.truncate_and_append({ent(7, 21)}, 0);
  EXPECT_EQ(rl.last_index(), idx(21));
  log.install_snapshot(s);
  log.append(rl.unstable_entries());
  rl.stable_to(s, rl.unstable_entries());
  EXPECT_EQ(rl.stable_match(), idx(21));
  EXPECT_EQ(rl.applied(), idx(20));
}

}  // namespace
}  // namespace sluice::raft
