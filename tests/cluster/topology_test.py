#!/usr/bin/python3
"""Cluster metadata on three brokers (issue 8), with real clients:

- a topic of replication factor 1 spreads its partitions over the brokers, and every broker's
  Metadata names every partition's leader (brokers that hold no replica learn leaders from the
  leaders' announcements), so a client bootstrapped from any one broker produces to and reads back
  every partition;
- the admin views (/v1/topics, /v1/topics/{name}, /v1/partitions/{topic}/{p}, /v1/cluster/health)
  describe every partition on every broker (replicas, leader, leader epoch; the local log only where
  the broker holds a replica), and the health names a dead broker down;
- ListOffsets -3 (max timestamp) finds the record with the largest timestamp, also on a new leader;
- replication factor 4 on three brokers is refused with INVALID_REPLICATION_FACTOR, naming the count;
- topic creation and deletion keep working when the controller's leader is killed: the controller
  group elects another, and every broker's Metadata agrees afterwards;
- a broker restarted after topics changed while it was down catches up before it answers clients;
- a follower that fell behind the leader's log start (DeleteRecords while it was down, more data than
  the leader keeps in memory) catches up from the snapshot point and holds the same log end, every
  follower moves its log start to the leader's, and a new leader answers that log start;
- the controller compacts its log into snapshots (every 10 entries here): a broker down while 20 topics
  are created gets the snapshot installed when it returns, and a restarted broker rebuilds its
  metadata from its own snapshot;
- maintenance mode (PUT /v1/brokers/{id}/maintenance) drains a broker's leaderships while writes go on,
  and DELETE lets the preferred leaderships come back;
- a fourth broker outside the seed list joins (the controller's leader makes it a learner), registers,
  gets replicas of a new topic, and serves produce and fetch for the partitions it leads.
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as clusterlib  # noqa: E402

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


Failure, check = clusterlib.Failure, clusterlib.check


def create(c, name, partitions, rf, nodes=None):
    a = AdminClient({"bootstrap.servers": c.bootstrap(nodes), "socket.timeout.ms": 10000})
    f = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf)], request_timeout=20)[name]
    try:
        f.result(timeout=30)
        return None
    except Exception as e:  # the KafkaException carries the broker's error
        return e.args[0] if e.args else e


def create_retrying(c, name, partitions, rf, nodes, timeout=30.0):
    """create() until it succeeds (or the topic exists): a client that bootstrapped while a dead broker
    was still named controller waits for it until its request times out."""
    deadline = time.monotonic() + timeout
    while True:
        err = create(c, name, partitions, rf, nodes=nodes)
        if err is None or err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return None
        if time.monotonic() > deadline:
            return err
        time.sleep(0.5)


def leaders_from(c, node, topic, partitions):
    md = c.metadata(topic, nodes=[node], timeout=5.0)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return {p: t.partitions[p].leader for p in range(partitions) if p in t.partitions and t.partitions[p].error is None}


def produce_and_read_back(c, topic, partitions, count, via_produce, via_read):
    """count records round-robin over the partitions, acks=all through one broker; every acknowledged
    record read back from the start through another."""
    p = Producer({"bootstrap.servers": c.node(via_produce).kafka_address, "acks": "all", "enable.idempotence": True})
    acked = []
    for i in range(count):
        p.produce(topic, value=str(i).encode(), partition=i % partitions,
                  on_delivery=lambda e, m: acked.append((m.partition(), m.offset(), m.value())) if e is None else None)
    p.flush(30)
    check(len(acked) == count, f"{count} records acknowledged through broker {via_produce} ({len(acked)})")
    cons = Consumer({"bootstrap.servers": c.node(via_read).kafka_address, "group.id": f"read-{topic}",
                     "enable.partition.eof": True})
    cons.assign([TopicPartition(topic, q, 0) for q in range(partitions)])
    got, eof, deadline = set(), set(), time.monotonic() + 60
    while len(eof) < partitions and time.monotonic() < deadline:
        for m in cons.consume(500, 1.0):
            if m.error() is None:
                got.add((m.partition(), m.offset(), m.value()))
            elif m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
    cons.close()
    check(got == set(acked), f"every acknowledged record read back through broker {via_read} ({len(got)} of {len(acked)})")


def scenario(c):
    c.start()
    c.wait_brokers()

    # Replication factor 1: each partition on one broker, known to all.
    err = create(c, "rf1", 6, 1)
    check(err is None, f"create rf1 (6 partitions, replication factor 1): {err}")
    views = c._wait(lambda: (lambda v: v if all(x is not None and len(x) == 6 for x in v.values()) and
                             len({tuple(sorted(x.items())) for x in v.values()}) == 1 else None)(
        {n: leaders_from(c, n, "rf1", 6) for n in c.nodes}), "every broker names the same leader for all 6 partitions",
        30.0, interval=0.3)
    leaders = next(iter(views.values()))
    check(len(set(leaders.values())) == 3, f"rf1's partitions are spread over the three brokers: {leaders}")
    md = c.metadata("rf1", nodes=[1])
    check(all(len(md.topics["rf1"].partitions[p].replicas) == 1 for p in range(6)), "each rf1 partition has one replica")

    # Produce through one broker, read back through another.
    produce_and_read_back(c, "rf1", 6, 600, via_produce=1, via_read=3)
    admin_views(c, "rf1", 6, leaders)
    max_timestamp(c)

    # Too many replicas.
    err = create(c, "rf4", 1, 4)
    check(err is not None and err.code() == KafkaError.INVALID_REPLICATION_FACTOR and "3" in err.str(),
          f"replication factor 4 on 3 brokers refused: {err}")

    # Kill the controller's leader: metadata changes still commit.
    ctl = c.metadata().controller_id
    check(ctl in c.nodes, f"a controller is named ({ctl})")
    c.kill(ctl, signal.SIGKILL)
    others = [n for n in c.nodes if n != ctl]
    # The controller group's new leader (Metadata names a broker itself while it knows no leader).
    c._wait(lambda: all(c.admin_get(n, "/v1/raft/controller")[1]["leader"] in others for n in others),
            "a new controller", 30.0, 0.3)
    health = c._wait(lambda: (lambda h: h if ctl in h.get("nodes_down", []) and h["under_replicated_count"] > 0
                                        and h["controller_id"] in others else None)(
        c.admin_get(others[0], "/v1/cluster/health")[1]),
        f"broker {others[0]}'s health names broker {ctl} down and a new controller", 30.0, interval=0.5)
    check(not health["is_healthy"],
          f"/v1/cluster/health on broker {others[0]}: broker {ctl} down, {health['under_replicated_count']} "
          f"under-replicated partition(s), controller {health['controller_id']}")
    err = create_retrying(c, "after_kill", 3, 2, nodes=others)
    check(err is None, f"a topic is created with the old controller leader dead: {err}")
    a = AdminClient({"bootstrap.servers": c.bootstrap(others)})
    a.delete_topics(["rf1"], request_timeout=20)["rf1"].result(timeout=30)
    check(True, "rf1 deleted with the old controller leader dead")

    # The killed broker comes back and catches up before answering.
    c.restart(ctl)
    md = c.wait_brokers(via=[ctl])
    check("after_kill" in md.topics and "rf1" not in md.topics,
          f"the restarted broker {ctl} sees the changes made while it was down: {sorted(md.topics)}")

    behind_log_start(c, os.path.join(os.path.dirname(c.brokerd), "sluice"))
    maintenance(c)
    controller_snapshots(c)


def admin_views(c, topic, partitions, leaders):
    """The kafka plugin's admin views describe the whole cluster on every broker: each partition with its
    replicas, leader and leader epoch, and the local log only where the broker holds the replica."""
    views = {}
    for n in c.nodes:
        status, body = c.admin_get(n, f"/v1/topics/{topic}")
        check(status == 200, f"GET /v1/topics/{topic} on broker {n}: {status}")
        views[n] = {p["partition"]: p for p in body["partitions"]}
        check(sorted(views[n]) == list(range(partitions)), f"broker {n} lists every partition of {topic}")
        mine = [q for q in range(partitions) if leaders[q] == n]
        check(body["local_partitions"] == len(mine), f"broker {n} holds {len(mine)} of them: {body['local_partitions']}")
    for q in range(partitions):
        owner = leaders[q]
        held = views[owner][q]
        check(held["local"] and held["leader"] == owner and held["replicas"] == [owner] and held["isr"] == [owner]
              and held["role"] == "leader" and held["high_watermark"] > 0 and held["under_replicated"] is False,
              f"{topic}/{q} on its replica, broker {owner}: {held}")
        for n in c.nodes:
            if n == owner:
                continue
            # Also the single-partition route, on a broker that holds no replica of it (the ISR as the
            # leader announced it; null until its first announcement arrived).
            status, p = c.admin_get(n, f"/v1/partitions/{topic}/{q}")
            check(status == 200 and not p["local"] and p["leader"] == owner and p["leader_epoch"] == held["leader_epoch"]
                  and p["replicas"] == [owner] and p["high_watermark"] is None and p["isr"] in ([owner], None)
                  and p["error"] is None, f"{topic}/{q} on broker {n}, which holds no replica: {p}")
    md = c.metadata()

    def healthy(n):
        status, h = c.admin_get(n, "/v1/cluster/health")
        return h if status == 200 and h["is_healthy"] else None

    for n in c.nodes:
        h = c._wait(lambda: healthy(n), f"/v1/cluster/health on broker {n} healthy", 30.0, interval=0.5)
        check(h["all_nodes"] == sorted(c.nodes) and h["nodes_down"] == [] and h["leaderless_count"] == 0
              and h["controller_id"] == md.controller_id, f"/v1/cluster/health on broker {n}: {h}")
    status, topics = c.admin_get(1, "/v1/topics")
    check(status == 200 and any(t["name"] == topic and t["partition_count"] == partitions for t in topics),
          f"GET /v1/topics on broker 1 lists {topic}")


def max_timestamp(c):
    """ListOffsets with timestamp -3 (KIP-734): the record with the largest timestamp, read from the leader's log,
    before and after the leadership moves."""
    err = create(c, "maxts", 1, 3)
    check(err is None, f"create maxts (replication factor 3): {err}")
    leader = c.wait_leader("maxts", 0)
    base = 1_700_000_000_000
    stamps = [10, 50, 20, 90, 30, 40, 95, 60, 95, 10]  # the first 95 (index 6) is the answer
    p = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all", "linger.ms": 50})
    offsets = {}
    for i, ts in enumerate(stamps):
        p.produce("maxts", value=str(i).encode(), partition=0, timestamp=base + ts,
                  on_delivery=lambda e, m, i=i: offsets.__setitem__(i, m.offset()) if e is None else None)
        if i == 4:
            p.flush(30)  # two batches at least
    p.flush(30)
    check(len(offsets) == len(stamps), f"{len(stamps)} records with chosen timestamps acknowledged")
    def max_ts_offset():
        # A new client each time: librdkafka keeps sending offsets_for_times to the leader it cached.
        cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "maxts"})
        try:
            return cons.offsets_for_times([TopicPartition("maxts", 0, -3)], timeout=10)[0].offset
        finally:
            cons.close()

    got = max_ts_offset()
    check(got == offsets[6], f"ListOffsets -3 on leader {leader}: offset {got}, the record with the largest "
                             f"timestamp is at {offsets[6]}")
    target = next(n for n in c.nodes if n != leader)
    status, body = c.admin_request(leader, "POST", f"/v1/raft/groups/maxts/0/transfer_leadership?target={target}")
    check(status == 202, f"leadership of maxts/0 to broker {target}: {status} {body}")
    c._wait(lambda: all(c.leader("maxts", 0, nodes=[n]) == target for n in c.nodes), f"broker {target} leads maxts/0",
            30.0)
    got = c._wait(lambda: (lambda o: o if o >= 0 else None)(max_ts_offset()), "ListOffsets -3 answered", 30.0, 0.3)
    check(got == offsets[6], f"ListOffsets -3 on the new leader {target}: offset {got}")


def behind_log_start(c, sluice_cli):
    err = create(c, "behind", 1, 3)
    check(err is None, f"create behind (replication factor 3): {err}")
    leader = c.wait_leader("behind", 0)
    follower = next(n for n in c.nodes if n != leader)
    c.kill(follower, signal.SIGKILL)
    p = Producer({"bootstrap.servers": c.node(leader).kafka_address, "acks": "all", "linger.ms": 20})
    acked = [0]
    for i in range(60000):  # 6 MB: more than a group's tail cache (4 MiB)
        p.produce("behind", value=b"x" * 100, partition=0,
                  on_delivery=lambda e, m: acked.__setitem__(0, acked[0] + (e is None)))
        if i % 10000 == 0:
            p.poll(0)
    p.flush(60)
    check(acked[0] == 60000, f"60,000 records acknowledged with follower {follower} down ({acked[0]})")
    out = subprocess.run([sluice_cli, "--brokers", c.node(leader).kafka_address, "topic", "trim", "behind",
                          "--partition", "0", "--offset", "50000"], capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, f"DeleteRecords up to 50,000 on the leader: {out.stdout.strip()} {out.stderr.strip()}")
    c.restart(follower)

    def same_end():
        ends = []
        for n in c.nodes:
            status, body = c.admin_get(n, "/v1/raft/groups/behind/0")
            if status != 200:
                return None
            ends.append((body["log_end_offset"], body["commit_index"]))
        return ends if len(set(ends)) == 1 and ends[0][0] >= 60000 else None

    ends = c._wait(same_end, "every replica of behind/0 at the same log end and commit", 60.0, interval=0.5)
    check(True, f"follower {follower} caught up from behind the leader's log start: (end, commit) {ends[0]}")

    # Followers follow the leader's log start (announced once a second), so a new leader does not
    # serve the deleted records again.
    def starts():
        out = {}
        for n in c.nodes:
            status, body = c.admin_get(n, "/v1/raft/groups/behind/0")
            if status != 200:
                return None
            out[n] = body["log_start_offset"]
        return out

    # (The Raft log starts at the batch holding offset 50,000, on every replica.)
    c._wait(lambda: (lambda s: s if s and len(set(s.values())) == 1 and 0 < s[leader] <= 50000 else None)(starts()),
            "every replica of behind/0 at the leader's log start", 30.0, interval=0.5)
    check(True, f"every replica's Raft log starts at the batch holding 50,000: {starts()}")
    target = next(n for n in c.nodes if n not in (leader, follower))
    status, body = c.admin_request(leader, "POST", f"/v1/raft/groups/behind/0/transfer_leadership?target={target}")
    check(status == 202, f"leadership of behind/0 to broker {target}: {status} {body}")
    c._wait(lambda: all(c.leader("behind", 0, nodes=[n]) == target for n in c.nodes), f"broker {target} leads behind/0",
            30.0)
    cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "behind"})
    try:
        low, high = c._wait(lambda: cons.get_watermark_offsets(TopicPartition("behind", 0), timeout=5), "watermarks",
                            30.0, interval=0.5)
    finally:
        cons.close()
    check(low == 50000 and high >= 60000, f"the new leader {target} answers log start {low} (50,000) and end {high}")


def joining_broker(c):
    c.start()
    md = c.wait_brokers(timeout=90.0)
    check(sorted(md.brokers) == [1, 2, 3, 4], f"broker 4 (not a seed) joined: brokers {sorted(md.brokers)}")
    err = create(c, "four", 8, 3)
    check(err is None, f"create four (8 partitions, replication factor 3 over 4 brokers): {err}")
    leaders = c.wait_leaders("four", 8)
    md = c.metadata("four", nodes=[4])
    on4 = [p for p in range(8) if 4 in md.topics["four"].partitions[p].replicas]
    check(len(on4) >= 4, f"broker 4 holds replicas of four: partitions {on4}; leaders {leaders}")
    produce_and_read_back(c, "four", 8, 800, via_produce=4, via_read=1)


def maintenance(c):
    err = create(c, "maint", 6, 3)
    check(err is None, f"create maint (6 partitions, replication factor 3): {err}")
    c.wait_leaders("maint", 6)
    target = 1
    status, body = c.admin_put(target, f"/v1/brokers/{target}/maintenance")
    check(status == 200 and body.get("maintenance") is True, f"maintenance mode on for broker {target}: {status} {body}")

    def drained():
        st, b = c.admin_get(target, "/v1/raft/maintenance")
        return b if st == 200 and b.get("drained") else None

    body = c._wait(drained, f"broker {target} drained", 30.0, interval=0.3)
    check(body["leaderships"] == 0, f"broker {target} leads nothing in maintenance: {body}")
    md = c.metadata("maint", nodes=[2])
    check(all(md.topics["maint"].partitions[p].leader != target for p in range(6)),
          f"Metadata names no partition of maint led by broker {target}")
    produce_and_read_back(c, "maint", 6, 300, via_produce=2, via_read=3)
    status, body = c.admin_delete(target, f"/v1/brokers/{target}/maintenance")
    check(status == 200 and body.get("maintenance") is False, f"maintenance mode off: {status} {body}")

    def leads_again():
        st, b = c.admin_get(target, "/v1/raft/maintenance")
        return b if st == 200 and b.get("leaderships", 0) > 0 else None

    body = c._wait(leads_again, f"broker {target} leads its preferred partitions again", 30.0, interval=0.5)
    check(True, f"broker {target} leads {body['leaderships']} group(s) again")


def controller_snapshots(c):
    down = 3
    c.kill(down, signal.SIGKILL)
    up = [n for n in c.nodes if n != down]
    c._wait(lambda: all(c.admin_get(n, "/v1/raft/controller")[1]["leader"] in up for n in up), "a live controller",
            30.0, 0.3)
    for i in range(20):
        err = create_retrying(c, f"snap{i}", 1, 2, nodes=up)
        if err is not None:
            raise Failure(f"create snap{i}: {err}")
    check(True, "20 topics created with broker 3 down")
    compacted = [n for n in up if "log compacted into a snapshot" in open(c.node(n).log_path).read()]
    check(compacted, f"the controller's log was compacted on broker(s) {compacted}")
    c.restart(down)
    c.wait_brokers(via=[down])
    c._wait(lambda: all(f"snap{i}" in c.metadata(nodes=[down], timeout=3.0).topics for i in range(20)),
            f"broker {down} (down during the compaction) lists the 20 topics", 30.0, interval=0.5)
    check(True, f"broker {down} caught up from the controller's snapshot")
    c.restart(1)
    c.wait_brokers(via=[1])
    c._wait(lambda: all(f"snap{i}" in c.metadata(nodes=[1], timeout=3.0).topics for i in range(20)),
            "broker 1 lists the 20 topics after a restart", 30.0, interval=0.5)
    check(True, "a restarted broker rebuilt its metadata from its snapshot and log")


def main(argv):
    runs = [(dict(nodes=3, name="topology", raft_config={"controller_snapshot_entries": 10}), scenario),
            (dict(nodes=4, seeds=3, name="topology-join"), joining_broker)]
    return clusterlib.run_scenarios(__doc__, "topology_test", runs, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
