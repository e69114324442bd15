// raft_node: elections, pre-vote, log replication and conflict resolution,
// commit rules, leadership transfer, membership changes, snapshots,
// check_quorum, back-pressure, restarts and the ready/advance contract.
#include "test_cluster.h"

namespace sluice::raft {
namespace {

using testing::idx;
using testing::n;
using testing::test_cluster;
using testing::tm;

std::vector<std::string> payloads(const std::vector<entry>& ents) {
  std::vector<std::string> out;
  for (const auto& e : ents) out.emplace_back(e.data.view());
  return out;
}

// Terms of every index the node's log holds, from first_index - 1.
std::vector<uint64_t> terms_of(raft_node& r) {
  std::vector<uint64_t> out;
  for (log_index i = r.first_index() - 1; i <= r.last_index(); i = i + 1) out.push_back(r.term_at(i).value().value());
  return out;
}

TEST(raft, single_node_elects_itself_and_commits_after_persisting) {
  test_cluster c(1);
  c.elect(1);
  EXPECT_EQ(c[1].term(), tm(1));
  // The proposal is committed only once the host reported it durable.
  auto r = c[1].propose(payload(std::string("a")));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value(), idx(2));  // 1 is the leader's no-op
  EXPECT_EQ(c[1].commit_index(), idx(1));
  ASSERT_TRUE(c[1].has_ready());
  auto rd = c[1].ready();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(rd.commit, idx(1));
  c.log(1).persist(rd);
  c[1].advance(rd);
  EXPECT_EQ(c[1].commit_index(), idx(2));
  c.process(1);
  EXPECT_EQ(payloads(c.node(1).applied), std::vector<std::string>{"a"});
}

TEST(raft, three_nodes_elect_one_leader_and_replicate) {
  test_cluster c(3);
  c.elect(1);
  EXPECT_EQ(c[2].leader(), n(1));
  EXPECT_EQ(c[3].leader(), n(1));
  EXPECT_EQ(c[2].current_role(), role::follower);
  c.propose(1, "x");
  c.propose(1, "y");
  c.tick_all(1);  // the heartbeat carries the final commit to followers
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ(payloads(c.node(id).applied), (std::vector<std::string>{"x", "y"})) << "node " << id;
    EXPECT_EQ(c[id].commit_index(), idx(3));
  }
}

TEST(raft, proposals_on_a_follower_name_the_leader) {
  test_cluster c(3);
  c.elect(2);
  auto r = c[1].propose(payload(std::string("x")));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.err().code, errc::not_leader);
  EXPECT_NE(r.err().message.find("node 2"), std::string::npos) << r.err().message;
}

TEST(raft, no_commit_without_a_majority) {
  test_cluster c(3);
  c.elect(1);
  c.isolate(2);
  c.isolate(3);
  const log_index i = c.propose(1, "lonely");
  EXPECT_LT(c[1].commit_index(), i);
  c.heal();
  c.tick(1, 2);
  EXPECT_GE(c[1].commit_index(), i);
}

TEST(raft, pre_vote_keeps_a_partitioned_node_from_inflating_its_term) {
  test_cluster c(3);
  c.elect(1);
  const term_id t = c[1].term();
  c.isolate(3);
  c.tick(3, 100);
  EXPECT_EQ(c[3].term(), t) << "pre-votes that fail never raise the term";
  EXPECT_EQ(c[3].current_role(), role::pre_candidate);
  c.heal();
  c.tick_all(3);
  EXPECT_EQ(c[1].current_role(), role::leader) << "the rejoining node does not depose the leader";
  EXPECT_EQ(c[1].term(), t);
  EXPECT_EQ(c[3].leader(), n(1));
}

TEST(raft, without_pre_vote_a_partitioned_node_inflates_its_term) {
  test_cluster c(3, 0, [](config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
  });
  c.elect(1);
  const term_id t = c[1].term();
  c.isolate(3);
  c.tick(3, 100);
  EXPECT_GT(c[3].term().value(), t.value() + 3);
}

TEST(raft, check_quorum_makes_an_isolated_leader_step_down) {
  test_cluster c(3);
  c.elect(1);
  c.isolate(1);
  // Heard-from flags are checked and cleared every election timeout: the
  // first check may still see activity from before the isolation.
  c.tick(1, 20);
  EXPECT_EQ(c[1].current_role(), role::follower);
  EXPECT_TRUE(c[1].leader().is_zero());
  // Meanwhile the others elect a new leader in a later term.
  c.force_elect(2);
  EXPECT_GT(c[2].term(), c[1].term());
}

TEST(raft, followers_in_lease_ignore_a_disruptive_candidate) {
  test_cluster c(3);
  c.elect(1);
  // Node 3 times out alone (say its clock runs fast) but 2 still hears node 1.
  c.block(1, 3);
  c.tick(3, 30);
  EXPECT_EQ(c[1].current_role(), role::leader);
  EXPECT_EQ(c[2].leader(), n(1));
}

TEST(raft, conflicting_uncommitted_entries_are_replaced) {
  test_cluster c(3);
  c.elect(1);
  c.propose(1, "committed");
  // Node 1 is cut off and appends entries nobody else gets.
  c.isolate(1);
  ASSERT_TRUE(c[1].propose(payload(std::string("lost-1"))).has_value());
  ASSERT_TRUE(c[1].propose(payload(std::string("lost-2")), 3).has_value());
  c.deliver_all();
  // Nodes 2 and 3 elect node 2, which appends its own entries.
  c.force_elect(2);
  c.propose(2, "kept-1");
  c.propose(2, "kept-2");
  c.propose(2, "kept-3");
  c.heal();
  std::optional<log_index> truncated_at;
  const log_index first_lost = c[1].last_index() - 3;  // "lost-1" (one index), then "lost-2" (three)
  c.observe([&](const message& m) {
    if (m.to == n(1) && m.type == message_type::append && !truncated_at && c[1].last_index() >= first_lost) {
      c[1].step(m);
      auto rd = c[1].ready();
      truncated_at = rd.truncate_from;
      c.handle(1, std::move(rd));
    }
  });
  c.tick(2, 3);
  ASSERT_TRUE(truncated_at.has_value());
  EXPECT_EQ(*truncated_at, first_lost) << "node 1's entries from its first uncommitted one on are replaced";
  EXPECT_EQ(c[1].current_role(), role::follower);
  EXPECT_EQ(terms_of(c[1]), terms_of(c[2]));
  EXPECT_EQ(terms_of(c[3]), terms_of(c[2]));
  EXPECT_EQ(c[1].commit_index(), c[2].commit_index());
  EXPECT_EQ(payloads(c.node(1).applied), (std::vector<std::string>{"committed", "kept-1", "kept-2", "kept-3"}));
}

TEST(raft, entries_spanning_several_indexes_replicate_and_backtrack) {
  test_cluster c(3);
  c.elect(1);
  const log_index a = c.propose(1, "batch-a", 5);
  const log_index b = c.propose(1, "batch-b", 3);
  EXPECT_EQ(b, a + 5);
  EXPECT_EQ(c[2].last_index(), b + 2);
  // Divergent batch boundaries: node 1 alone appends a 4-index batch, node 2
  // (the new leader) two 1-index entries and a 7-index one over the same range.
  c.isolate(1);
  ASSERT_TRUE(c[1].propose(payload(std::string("old")), 4).has_value());
  c.deliver_all();
  c.force_elect(2);
  c.propose(2, "new-1");
  c.propose(2, "new-2", 7);
  c.heal();
  c.tick(2, 3);
  EXPECT_EQ(terms_of(c[1]), terms_of(c[2]));
  EXPECT_EQ(c[1].last_index(), c[2].last_index());
  EXPECT_EQ(payloads(c.node(1).applied), (std::vector<std::string>{"batch-a", "batch-b", "new-1", "new-2"}));
}

TEST(raft, a_lagging_follower_catches_up_by_backtracking_over_terms) {
  test_cluster c(5);
  c.elect(1);
  c.isolate(5);
  for (int k = 0; k < 20; ++k) c.propose(1, "e" + std::to_string(k));
  // Several leader changes while node 5 is away.
  c.force_elect(2);
  for (int k = 0; k < 5; ++k) c.propose(2, "f" + std::to_string(k));
  c.force_elect(3);
  c.propose(3, "g");
  c.heal();
  size_t appends = 0;
  c.observe([&](const message& m) {
    if (m.type == message_type::append && m.to == n(5)) ++appends;
  });
  c.tick(3, 2);
  EXPECT_EQ(terms_of(c[5]), terms_of(c[3]));
  EXPECT_LT(appends, 10u) << "the hint skips whole terms";
}

// Raft figure 8: a leader never commits an entry of an earlier term by
// counting replicas; it commits it by committing an entry of its own term.
TEST(raft, only_entries_of_the_current_term_commit_by_counting) {
  test_cluster c(3);
  c.elect(1);
  c.drop_type(message_type::append_resp);  // node 1 never learns of the replicas
  const log_index old = c.propose(1, "old-term");
  c.drop_type(std::nullopt);
  EXPECT_LT(c[1].commit_index(), old);
  EXPECT_EQ(c[2].last_index(), old);
  // Node 2 campaigns; only node 3's vote reaches it.
  c.timeout_now(2);
  for (auto& m : c.take_queue()) {
    if (m.to == n(3)) c[3].step(m);
  }
  for (auto& m : c.take_queue()) {
    if (m.to == n(2)) c[2].step(m);
  }
  ASSERT_EQ(c[2].current_role(), role::leader);
  c.take_queue();  // node 2's appends are lost
  const log_index noop = c[2].last_index();
  ASSERT_EQ(noop, old + 1);
  // Node 3 claims to hold exactly the old-term entry.
  message ack;
  ack.type = message_type::append_resp;
  ack.from = n(3);
  ack.to = n(2);
  ack.term = c[2].term();
  ack.index = old;
  c[2].step(ack);
  c.process(2);
  EXPECT_LT(c[2].commit_index(), old) << "an old-term entry is not committed by counting";
  ack.index = noop;
  c[2].step(ack);
  c.process(2);
  EXPECT_EQ(c[2].commit_index(), noop) << "committing the no-op commits everything before it";
}

TEST(raft, leadership_transfer_to_an_up_to_date_follower) {
  test_cluster c(3);
  c.elect(1);
  c.propose(1, "x");
  const term_id t = c[1].term();
  ASSERT_TRUE(c[1].transfer_leadership(n(3)).has_value());
  c.deliver_all();
  EXPECT_EQ(c[3].current_role(), role::leader);
  EXPECT_EQ(c[3].term(), next_term(t));
  EXPECT_EQ(c[1].current_role(), role::follower);
  EXPECT_EQ(c[1].leader(), n(3));
}

TEST(raft, leadership_transfer_waits_for_a_lagging_target_and_blocks_proposals) {
  test_cluster c(3);
  c.elect(1);
  c.isolate(3);
  c.propose(1, "x");
  c.propose(1, "y");
  ASSERT_TRUE(c[1].transfer_leadership(n(3)).has_value());
  c.deliver_all();
  auto r = c[1].propose(payload(std::string("during")));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.err().code, errc::transfer_in_progress);
  c.heal();
  c.tick(1, 2);  // heartbeat -> response -> append -> caught up -> timeout_now
  EXPECT_EQ(c[3].current_role(), role::leader);
  EXPECT_EQ(c[3].last_index(), c[1].last_index());
}

TEST(raft, leadership_transfer_aborts_after_an_election_timeout) {
  test_cluster c(3);
  c.elect(1);
  c.isolate(3);
  ASSERT_TRUE(c[1].transfer_leadership(n(3)).has_value());
  c.tick(1, 10);
  EXPECT_TRUE(c[1].transferee().is_zero());
  EXPECT_TRUE(c[1].propose(payload(std::string("ok"))).has_value());
}

TEST(raft, membership_add_learner_promote_remove) {
  test_cluster c(4, 3);  // node 4 starts outside the group
  c.elect(1);
  c.propose(1, "before");
  auto r = c[1].propose_conf_change({conf_change_type::add_learner, n(4)});
  ASSERT_TRUE(r.has_value()) << r.err().message;
  c.deliver_all();
  c.tick(1, 2);
  EXPECT_TRUE(c[4].members().is_learner(n(4)));
  EXPECT_EQ(c[4].last_index(), c[1].last_index());
  EXPECT_EQ(payloads(c.node(4).applied), std::vector<std::string>{"before"});
  // A learner never campaigns.
  c.isolate(4);
  c.tick(4, 50);
  EXPECT_EQ(c[4].current_role(), role::follower);
  c.heal();
  ASSERT_TRUE(c[1].propose_conf_change({conf_change_type::promote, n(4)}).has_value());
  c.deliver_all();
  c.tick(1, 2);
  EXPECT_TRUE(c[1].members().is_voter(n(4)));
  EXPECT_EQ(c[1].members().quorum(), 3u);
  ASSERT_TRUE(c[1].propose_conf_change({conf_change_type::remove_voter, n(2)}).has_value());
  c.deliver_all();
  EXPECT_EQ(c[1].members().voters, (std::vector<node_id>{n(1), n(3), n(4)}));
  // Commits now need two of {1, 3, 4}: node 2's absence does not matter.
  c.isolate(2);
  const log_index i = c.propose(1, "after");
  EXPECT_GE(c[1].commit_index(), i);
}

TEST(raft, membership_changes_one_at_a_time) {
  test_cluster c(5, 3);
  c.elect(1);
  c.isolate(2);
  c.isolate(3);  // nothing commits
  ASSERT_TRUE(c[1].propose_conf_change({conf_change_type::add_learner, n(4)}).has_value());
  auto r = c[1].propose_conf_change({conf_change_type::add_learner, n(5)});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.err().code, errc::conf_change_pending);
  c.heal();
  c.tick(1, 2);
  EXPECT_TRUE(c[1].propose_conf_change({conf_change_type::add_learner, n(5)}).has_value());
  auto self = c[1].propose_conf_change({conf_change_type::remove_voter, n(1)});
  ASSERT_FALSE(self.has_value());
}

TEST(raft, a_new_configuration_takes_effect_when_appended) {
  test_cluster c(3);
  c.elect(1);
  c.isolate(2);
  c.isolate(3);
  ASSERT_TRUE(c[1].propose_conf_change({conf_change_type::remove_voter, n(3)}).has_value());
  // Uncommitted, yet the leader already counts with {1, 2}.
  EXPECT_EQ(c[1].members().voters, (std::vector<node_id>{n(1), n(2)}));
  c.deliver_all();
  // Node 2 gets it: the two of them commit without node 3.
  c.heal();
  c.isolate(3);
  c.tick(1, 2);
  const log_index i = c.propose(1, "two of two");
  EXPECT_GE(c[1].commit_index(), i);
}

TEST(raft, a_truncated_configuration_entry_is_rolled_back) {
  test_cluster c(4, 3);
  c.elect(1);
  c.propose(1, "x");
  c.isolate(1);
  ASSERT_TRUE(c[1].propose_conf_change({conf_change_type::add_learner, n(4)}).has_value());
  c.deliver_all();
  EXPECT_TRUE(c[1].members().is_learner(n(4)));
  c.force_elect(2);
  c.propose(2, "y");
  c.heal();
  c.tick(2, 3);
  EXPECT_FALSE(c[1].members().contains(n(4))) << "node 1's uncommitted change was replaced";
  EXPECT_EQ(c[1].members(), c[2].members());
}

TEST(raft, a_follower_behind_the_compacted_prefix_gets_a_snapshot) {
  test_cluster c(3);
  c.elect(1);
  c.isolate(3);
  for (int k = 0; k < 10; ++k) c.propose(1, "e" + std::to_string(k));
  // The leader's host compacts what it applied (Kafka: retention).
  const log_index applied = c[1].applied_index();
  c.log(1).compact(applied, payload(std::string("state@") + std::to_string(applied.value())));
  EXPECT_EQ(c[1].first_index(), applied + 1);
  c.heal();
  c.tick(1, 3);
  EXPECT_EQ(c.log(3).stored_snapshot().meta.index, applied);
  EXPECT_EQ(std::string(c.log(3).stored_snapshot().data.view()), "state@" + std::to_string(applied.value()));
  EXPECT_EQ(c.log(3).stored_snapshot().meta.members.voters.size(), 3u);
  EXPECT_EQ(c[3].last_index(), c[1].last_index());
  EXPECT_EQ(c[3].applied_index(), c[1].applied_index());
  c.propose(1, "after");
  c.tick(1, 1);
  EXPECT_EQ(payloads(c.node(3).applied), std::vector<std::string>{"after"});
}

TEST(raft, restart_keeps_what_was_persisted) {
  test_cluster c(3);
  c.elect(1);
  c.propose(1, "a");
  c.propose(1, "b");
  const term_id t = c[1].term();
  const log_index last = c[2].last_index();
  c.crash(2);
  c.start(2);
  EXPECT_EQ(c[2].term(), t);
  EXPECT_EQ(c[2].last_index(), last);
  EXPECT_EQ(c[2].current_role(), role::follower);
  c.tick(1, 2);
  EXPECT_EQ(c[2].commit_index(), c[1].commit_index());
}

// A node whose disk lost a suffix of its log (docs/RAFT.md, "Repairing a
// replica"): the host records the gate (its last entry before the loss),
// cuts, and restarts it.
static void lose_suffix(test_cluster& c, uint64_t id, log_index from) {
  memory_log& log = c.log(id);
  hard_state hs = log.initial_hard_state();
  hs.gate = repair_gate{log.last_index(), log.term(log.last_index()).value()};
  hs.commit = std::min(hs.commit, from - 1);
  log.set_hard_state(hs);
  log.lose_suffix(from);
}

TEST(raft, a_follower_that_lost_acknowledged_entries_catches_up_behind_its_gate) {
  test_cluster c(3);
  c.elect(1);
  const log_index b = c.propose(1, "a") + 1;
  c.propose(1, "b");
  c.propose(1, "c");
  c.tick(1, 2);  // the followers learn the commit
  const log_index last = c[1].last_index();
  ASSERT_EQ(c[2].commit_index(), last);
  // The leader's match for node 2 is `last`: its heartbeats carry that commit.
  c.crash(2);
  lose_suffix(c, 2, b);
  c.start(2);
  EXPECT_TRUE(c[2].status().gate.active());
  EXPECT_EQ(c[2].last_index(), b - 1);
  EXPECT_LE(c[2].commit_index(), b - 1);
  // A heartbeat with commit `last` reaches a log that ends before it: the
  // follower rejects it with its end, the leader lowers its match and
  // sends the rest.
  c.tick(1, 2);
  EXPECT_EQ(c[2].last_index(), last);
  EXPECT_EQ(c[2].commit_index(), c[1].commit_index());
  EXPECT_FALSE(c[2].status().gate.active());
  EXPECT_FALSE(c.log(2).initial_hard_state().gate.active()) << "the cleared gate is persisted";
  EXPECT_EQ(c[1].commit_index(), last) << "the commit index never goes back";
  // An ordinary voter again: it can lead.
  c.force_elect(2);
  c.propose(2, "d");
  EXPECT_EQ(c[1].last_index(), c[2].last_index());
}

TEST(raft, a_repairing_node_votes_only_for_a_log_that_covers_its_gate) {
  test_cluster c(3);
  c.elect(1);
  c.propose(1, "a");
  c.tick(1, 2);
  c.isolate(2);
  const log_index b = c.propose(1, "b");
  c.propose(1, "c");
  c.tick(1, 2);
  const log_index last = c[1].last_index();
  ASSERT_EQ(c[1].commit_index(), last);  // on nodes 1 and 3 only
  ASSERT_LT(c[2].last_index(), b);
  // Node 3 loses "b" and "c", which it acknowledged: without its gate it
  // would vote for node 2, whose log is as long as what it has left, and
  // node 2 would lead without two committed entries.
  c.crash(1);
  c.crash(3);
  lose_suffix(c, 3, b);
  c.start(3);
  c.heal();
  c.tick_all(60);
  EXPECT_NE(c[2].current_role(), role::leader);
  EXPECT_NE(c[3].current_role(), role::leader) << "a repairing node does not campaign";
  // The node that holds them wins node 3's vote, and node 3 catches up.
  c.start(1);
  c.elect(1);
  c.tick(1, 2);
  EXPECT_EQ(c[3].last_index(), c[1].last_index());
  EXPECT_FALSE(c[3].status().gate.active());
  EXPECT_EQ(c[2].last_index(), c[1].last_index());
  EXPECT_EQ(c[1].commit_index(), c[1].last_index());
}

TEST(raft, a_gate_the_log_already_reaches_is_cleared_at_start) {
  test_cluster c(3);
  c.elect(1);
  c.propose(1, "a");
  c.crash(2);
  memory_log& log = c.log(2);
  hard_state hs = log.initial_hard_state();
  hs.gate = repair_gate{log.last_index(), log.term(log.last_index()).value()};
  log.set_hard_state(hs);  // a crash after the gate, before the cut
  c.start(2);
  EXPECT_FALSE(c[2].status().gate.active());
  c.tick(1, 1);
  EXPECT_FALSE(c.log(2).initial_hard_state().gate.active());
}

TEST(raft, restart_with_entries_newer_than_the_hard_state_counts_the_vote_as_cast) {
  memory_log log(membership{{n(1), n(2), n(3)}, {}});
  log.append({entry{tm(4), idx(1), 1, entry_type::noop, payload()}});
  log.set_hard_state(hard_state{tm(3), n(2), idx(0)});  // the host crashed before writing term 4
  config cfg;
  cfg.self = n(1);
  raft_node r(cfg, log, 7);
  EXPECT_EQ(r.term(), tm(4));
  auto rd = r.ready();
  ASSERT_TRUE(rd.hard.has_value());
  EXPECT_EQ(rd.hard->vote, n(1));
  r.advance(rd);
  // It refuses to vote for anyone else in term 4.
  message v;
  v.type = message_type::vote;
  v.from = n(2);
  v.to = n(1);
  v.term = tm(4);
  v.index = idx(5);
  v.log_term = tm(4);
  r.step(v);
  rd = r.ready();
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_TRUE(rd.messages[0].reject);
  r.advance(rd);
}

TEST(raft, messages_of_a_ready_wait_for_advance_and_the_host_must_not_step_meanwhile) {
  test_cluster c(3);
  c.elect(1);
  ASSERT_TRUE(c[1].propose(payload(std::string("x"))).has_value());
  auto rd = c[1].ready();
  EXPECT_FALSE(c[1].has_ready());
  EXPECT_DEATH(c[1].tick(), "between ready\\(\\) and advance\\(\\)");
  c.log(1).persist(rd);
  c[1].advance(rd);
}

TEST(raft, a_leader_sends_appends_before_its_own_fsync_once_its_term_is_durable) {
  test_cluster c(3);
  c.elect(1);
  ASSERT_TRUE(c[1].propose(payload(std::string("x"))).has_value());
  auto rd = c[1].ready();
  ASSERT_EQ(rd.entries.size(), 1u);
  ASSERT_EQ(rd.early_messages.size(), 2u);
  EXPECT_EQ(rd.early_messages[0].type, message_type::append);
  EXPECT_TRUE(rd.messages.empty());
  // Followers answer at once; the leader still commits only after advance().
  for (auto& m : rd.early_messages) c[m.to.value()].step(m);
  c.process(2);
  c.process(3);
  auto answers = c.take_queue();  // node 1 cannot take them before advance()
  EXPECT_LT(c[1].commit_index(), c[1].last_index());
  c.log(1).persist(rd);
  c[1].advance(rd);
  for (auto& m : answers) {
    if (m.to == n(1)) c[1].step(m);
  }
  EXPECT_EQ(c[1].commit_index(), c[1].last_index());
}

TEST(raft, a_new_single_voter_leader_with_a_learner_waits_for_its_term_to_be_durable) {
  test_cluster c(2, 1);
  c.elect(1);
  ASSERT_TRUE(c[1].propose_conf_change({conf_change_type::add_learner, n(2)}).has_value());
  c.deliver_all();
  c.tick(1, 2);
  ASSERT_TRUE(c[2].members().is_learner(n(2)));
  // Node 1 restarts and wins a new term within one step: its appends to the
  // learner wait for the ready that makes the term durable.
  c.crash(1);
  c.start(1);
  for (int k = 0; k < 40 && c[1].current_role() != role::leader; ++k) c[1].tick();
  ASSERT_EQ(c[1].current_role(), role::leader);
  auto rd = c[1].ready();
  ASSERT_TRUE(rd.hard.has_value());
  EXPECT_TRUE(rd.early_messages.empty());
  EXPECT_FALSE(rd.messages.empty());
  c.log(1).persist(rd);
  c[1].advance(rd);
}

TEST(raft, back_pressure_bounds_appends_in_flight_to_a_silent_follower) {
  test_cluster c(3, 0, [](config& cfg) {
    cfg.inflight_appends_max = 4;
    cfg.append_bytes_max = 64;
  });
  c.elect(1);
  c.propose(1, "warm");  // follower 3 is in replicate state now
  c.block(3, 1);         // its acknowledgements are lost
  size_t appends = 0;
  c.observe([&](const message& m) {
    if (m.type == message_type::append && m.to == n(3) && !m.entries.empty()) ++appends;
  });
  for (int k = 0; k < 50; ++k) c.propose(1, std::string(40, 'p'));
  EXPECT_EQ(appends, 4u);
  auto st = c[1].status();
  for (const auto& f : st.followers) {
    if (f.id == n(3)) {
      EXPECT_EQ(f.state, progress_state::replicate);
      EXPECT_EQ(f.inflight, 4u);
    }
  }
  c.heal();
  c.tick(1, 5);
  EXPECT_EQ(c[3].last_index(), c[1].last_index());
}

TEST(raft, append_bytes_max_splits_appends_but_sends_at_least_one_entry) {
  test_cluster c(2, 0, [](config& cfg) { cfg.append_bytes_max = 100; });
  c.elect(1);
  c.isolate(2);
  for (int k = 0; k < 3; ++k) c.propose(1, std::string(150, 'b'));
  c.heal();
  size_t max_entries = 0;
  c.observe([&](const message& m) {
    if (m.type == message_type::append) max_entries = std::max(max_entries, m.entries.size());
  });
  c.tick(1, 3);
  EXPECT_EQ(max_entries, 1u);
  EXPECT_EQ(c[2].last_index(), c[1].last_index());
}

// A log_reader whose entries can be made unavailable (a host reading from disk).
class flaky_reader final : public log_reader {
 public:
  explicit flaky_reader(const memory_log& inner) : _inner(inner) {}
  bool unavailable = false;
  hard_state initial_hard_state() const override { return _inner.initial_hard_state(); }
  log_index first_index() const override { return _inner.first_index(); }
  log_index last_index() const override { return _inner.last_index(); }
  result<term_id> term(log_index i) const override { return _inner.term(i); }
  result<std::vector<entry>> entries(log_index lo, log_index hi, uint64_t max) const override {
    if (unavailable) return make_raft_error(errc::unavailable, "not in memory");
    return _inner.entries(lo, hi, max);
  }
  snapshot_meta snapshot_meta_of() const override { return _inner.snapshot_meta_of(); }
  result<snapshot> current_snapshot() const override { return _inner.current_snapshot(); }
  std::optional<membership_record> last_membership(log_index at) const override {
    return _inner.last_membership(at);
  }

 private:
  const memory_log& _inner;
};

TEST(raft, unavailable_entries_are_retried_on_tick) {
  membership m{{n(1), n(2)}, {}};
  memory_log l1(m), l2(m);
  flaky_reader reader(l1);
  config c1;
  c1.self = n(1);
  config c2;
  c2.self = n(2);
  raft_node r1(c1, reader, 1), r2(c2, l2, 2);
  std::vector<message> net;
  auto pump = [&](bool drop_appends) {
    for (int round = 0; round < 1000; ++round) {
      for (auto* p : {&r1, &r2}) {
        while (p->has_ready()) {
          auto rd = p->ready();
          (p == &r1 ? l1 : l2).persist(rd);
          for (auto* list : {&rd.early_messages, &rd.messages}) {
            for (auto& msg : *list) {
              if (!(drop_appends && msg.type == message_type::append)) net.push_back(msg);
            }
          }
          p->advance(rd);
        }
      }
      if (net.empty()) return;
      message msg = net.front();
      net.erase(net.begin());
      (msg.to == n(1) ? r1 : r2).step(msg);
    }
  };
  for (int k = 0; k < 40 && r1.current_role() != role::leader; ++k) {
    r1.tick();
    pump(false);
  }
  ASSERT_EQ(r1.current_role(), role::leader);
  // Node 2 misses the proposal; by the time it asks for it, the entry is
  // only in the stable log, which cannot be read right now.
  ASSERT_TRUE(r1.propose(payload(std::string("x"))).has_value());
  pump(true);
  const log_index target = r1.last_index();
  reader.unavailable = true;
  for (int k = 0; k < 3; ++k) {
    r1.tick();
    pump(false);
  }
  EXPECT_LT(r2.last_index(), target);
  reader.unavailable = false;
  for (int k = 0; k < 3; ++k) {
    r1.tick();
    pump(false);
  }
  EXPECT_EQ(r2.last_index(), target);
  EXPECT_EQ(r1.commit_index(), target);
}

TEST(raft, invalid_messages_are_dropped) {
  test_cluster c(3);
  c.elect(1);
  message m;
  m.type = message_type::append;
  m.from = n(2);
  m.to = n(1);
  m.term = tm(0);
  c[1].step(m);  // no term
  m.term = c[1].term();
  m.to = n(3);
  c[1].step(m);  // not for us
  m.to = n(1);
  m.index = idx(3);
  m.entries.push_back(entry{c[1].term(), idx(9), 1, entry_type::normal, payload()});
  c[1].step(m);  // a gap
  EXPECT_EQ(c[1].dropped_messages(), 3u);
  EXPECT_EQ(c[1].current_role(), role::leader);
}

TEST(raft, a_deposed_leader_learns_the_new_term_from_a_stale_append_answer) {
  test_cluster c(3);
  c.elect(1);
  c.isolate(1);
  c.force_elect(2);
  c.heal();
  c.tick(1, 1);  // node 1's heartbeat reaches nodes in term 2, which answer with it
  EXPECT_EQ(c[1].current_role(), role::follower);
  EXPECT_EQ(c[1].term(), c[2].term());
}

TEST(raft, read_index_confirms_leadership_with_a_quorum) {
  test_cluster c(3);
  c.elect(1);
  auto r = c[2].read_index(7);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.err().code, errc::not_leader);
  c.propose(1, "x");
  const log_index commit = c[1].commit_index();
  ASSERT_TRUE(c[1].read_index(7).has_value());
  // The heartbeat round goes out with the ready; the answers confirm the read.
  std::vector<read_state> reads;
  for (auto& m : c.take_queue()) c[m.to.value()].step(m);
  for (int k = 0; k < 3; ++k) {
    for (auto& m : c.take_queue()) {
      c[m.to.value()].step(m);
    }
    if (c[1].has_ready()) {
      auto rd = c[1].ready();
      reads.insert(reads.end(), rd.read_states.begin(), rd.read_states.end());
      c.log(1).persist(rd);
      c[1].advance(rd);
    }
  }
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].request_id, 7u);
  EXPECT_EQ(reads[0].index, commit);
}

TEST(raft, read_index_without_a_quorum_never_confirms) {
  test_cluster c(3);
  c.elect(1);
  c.isolate(1);
  ASSERT_TRUE(c[1].read_index(1).has_value());
  size_t confirmed = 0;
  for (int k = 0; k < 30; ++k) {
    c[1].tick();
    while (c[1].has_ready()) {
      auto rd = c[1].ready();
      confirmed += rd.read_states.size();
      c.log(1).persist(rd);
      c[1].advance(rd);
    }
  }
  EXPECT_EQ(confirmed, 0u);
  EXPECT_NE(c[1].current_role(), role::leader) << "check_quorum deposed it; the read was dropped";
}

TEST(raft, read_index_waits_for_the_leaders_first_commit) {
  test_cluster c(3);
  c.isolate(2);
  c.isolate(3);
  c.timeout_now(1);
  for (auto& m : c.take_queue()) {
    if (m.type == message_type::vote) c[m.to.value()].step(m);
  }
  for (auto& m : c.take_queue()) {
    if (m.to == n(1)) c[1].step(m);
  }
  ASSERT_EQ(c[1].current_role(), role::leader);
  auto r = c[1].read_index(1);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.err().code, errc::unavailable);
}

TEST(raft, read_index_on_a_single_voter_is_immediate) {
  test_cluster c(1);
  c.elect(1);
  ASSERT_TRUE(c[1].read_index(3).has_value());
  auto rd = c[1].ready();
  ASSERT_EQ(rd.read_states.size(), 1u);
  EXPECT_EQ(rd.read_states[0].index, c[1].commit_index());
  c.log(1).persist(rd);
  c[1].advance(rd);
}

TEST(raft, membership_encoding_round_trips_and_rejects_garbage) {
  membership m{{n(1), n(5), n(9)}, {n(7)}};
  auto d = decode_membership(encode_membership(m));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d.value(), m);
  std::string bytes = encode_membership(m);
  EXPECT_FALSE(decode_membership(bytes.substr(0, bytes.size() - 1)).has_value());
  EXPECT_FALSE(decode_membership(bytes + "x").has_value());
  EXPECT_FALSE(decode_membership("").has_value());
  EXPECT_FALSE(decode_membership(encode_membership(membership{{n(2), n(1)}, {}})).has_value());
  EXPECT_FALSE(decode_membership(encode_membership(membership{{n(1)}, {n(1)}})).has_value());
}

}  // namespace
}  // namespace sluice::raft
