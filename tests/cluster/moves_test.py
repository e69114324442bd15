#!/usr/bin/python3
"""Moving replicas (issue 8) on four, then five brokers, under a steady acks=all load, with real clients:

- CreateTopics and CreatePartitions place replicas as the client asks (an unknown broker is refused with
  INVALID_REPLICA_ASSIGNMENT);
- a topic of replication factor 3 is created on the first three brokers; a fourth joins (it is not a
  seed), and POST /v1/cluster/rebalance moves replicas onto it: the partitions' leaders add it as a
  learner, promote it once it holds what is committed, then remove the replica it replaces, and report
  the move done to the controller; Metadata then lists three replicas per partition, some on broker 4;
- PUT /v1/brokers/1/decommission moves every replica off broker 1 (leaderships on it are handed over
  first); GET .../decommission reports it finished, no partition lists broker 1, and broker 1 holds no
  group and no partition data any more; a move onto a decommissioned broker is refused;
- DELETE .../decommission (recommission) and an explicit move
  (POST /v1/partitions/{topic}/{partition}/replicas) put a replica back on broker 1;
- a move survives the SIGKILL of the partition's leader half-way;
- kafkajs moves a partition through Kafka's AlterPartitionReassignments and watches it in
  ListPartitionReassignments (reassign_kafkajs.js);
- a dead broker is decommissioned: broker 2 (a seed) is SIGKILLed and decommissioned; replicas whose
  groups keep a majority without it move to the live brokers, the two-replica partitions wait for it;
  once it is back they move too and it removes what it no longer holds; a new broker 5 then gets a
  share through a rebalance;
- through all of it an idempotent producer keeps writing with acks=all: every acknowledged record is
  read back exactly once, at the offset it was acknowledged with, in offset order.
"""
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as clusterlib  # noqa: E402

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic  # noqa: E402

TOPIC = "moving"
NODE = shutil.which("node") or "node"
PARTITIONS = 6


Failure, check = clusterlib.Failure, clusterlib.check


class Load:
    """An idempotent acks=all producer writing unique values round-robin until stopped."""

    def __init__(self, c, rate=200):
        self.c, self.rate = c, rate
        self.acked, self.failed, self.sent = [], [], 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        p = Producer({"bootstrap.servers": self.c.bootstrap(), "acks": "all", "enable.idempotence": True,
                      "linger.ms": 5, "message.timeout.ms": 120000})

        def done(err, m):
            if err is None:
                self.acked.append((m.partition(), m.offset(), m.value()))
            else:
                self.failed.append(str(err))

        i = 0
        while not self.stop.is_set():
            p.produce(TOPIC, value=f"v{i}".encode(), partition=i % PARTITIONS, on_delivery=done)
            i += 1
            self.sent = i
            p.poll(0)
            time.sleep(1.0 / self.rate)
        left = p.flush(120)
        if left:
            self.failed.append(f"{left} record(s) still in flight after 120 s")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(180)


def replicas(c, nodes=None):
    md = c.metadata(TOPIC, nodes=nodes, timeout=5.0)
    t = md.topics.get(TOPIC)
    if t is None or t.error is not None:
        return None
    return {p: sorted(t.partitions[p].replicas) for p in range(PARTITIONS)}


def wait_moves_done(c, via, what, timeout=90.0):
    def done():
        st, body = c.admin_get(via, "/v1/cluster/moves")
        return True if st == 200 and body == [] else None

    c._wait(done, f"{what}: no move in flight", timeout, interval=0.5)
    check(True, f"{what}: every move finished")


def groups_on(c, node):
    st, body = c.admin_get(node, "/v1/raft/groups")
    if st != 200:
        raise Failure(f"GET /v1/raft/groups on node {node}: {st} {body}")
    return {g["partition"]: g for g in body if g.get("topic") == TOPIC}


def isr_gaps(c, want):
    """Partitions of TOPIC whose ISR in some live broker's Metadata differs from want(replicas)."""
    out = []
    for n in c.available_nodes():
        md = c.metadata(TOPIC, nodes=[n], timeout=5.0)
        for p, pm in md.topics[TOPIC].partitions.items():
            if sorted(pm.isrs) != sorted(want(pm.replicas)):
                out.append((n, p, pm.replicas, pm.isrs))
    return out


def wait_isr(c, want, what):
    try:
        c._wait(lambda: not isr_gaps(c, want) or None, what, 20.0, interval=0.5)
    except clusterlib.ClusterError:
        raise Failure(f"{what}: (broker, partition, replicas, isr) differing: {isr_gaps(c, want)}")
    check(True, what)


def partition_files(c, node, topics):
    """The files of `topics`' replicas in node's data directory: the storage's segments and indexes
    (storage/<topic>/<partition>_<revision>/) and the raft plugin's .state and .members files
    (raft/partitions/<topic>-<partition>-<revision>.*)."""
    data = c.node(node).data_dir
    out = []
    for t in topics:
        for d, _, files in os.walk(os.path.join(data, "storage", t)):
            out += [os.path.join(d, f) for f in files]
        raft = os.path.join(data, "raft", "partitions")
        if os.path.isdir(raft):
            out += [os.path.join(raft, f) for f in os.listdir(raft) if f.startswith(t + "-")]
    return out


def wait_voters_match(c, holders):
    """Every replica's group on every broker has the assigned voters and no learner."""
    def ok():
        for node in holders:
            for p, g in groups_on(c, node).items():
                if g["moving"] or g["learners"] or sorted(g["replicas"]) != sorted(g["assigned"]):
                    return None
        return True

    c._wait(ok, "every group's voters equal its assignment", 60.0, interval=0.5)


def scenario(c):
    c.start(only=[1, 2, 3])
    c.wait_brokers(ids=[1, 2, 3])
    a = AdminClient({"bootstrap.servers": c.bootstrap([1, 2, 3])})
    a.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=3)])[TOPIC].result(30)
    c.wait_leaders(TOPIC, PARTITIONS)
    check(all(r == [1, 2, 3] for r in replicas(c, [1, 2, 3]).values()), "the topic is on brokers 1, 2 and 3")
    explicit_assignments(c, a)

    with Load(c) as load:
        time.sleep(3)
        # A fourth broker joins; the rebalance moves replicas onto it.
        c.start_node(4)
        c.wait_brokers(ids=[1, 2, 3, 4])
        st, body = c.admin_post(2, "/v1/cluster/rebalance")
        check(st == 200 and body.get("moves_started", 0) >= 4, f"rebalance started moves onto broker 4: {st} {body}")
        wait_moves_done(c, 2, "rebalance")
        reps = replicas(c)
        on4 = [p for p, r in reps.items() if 4 in r]
        check(all(len(r) == 3 for r in reps.values()) and len(on4) >= 4,
              f"3 replicas per partition, broker 4 holds {len(on4)} of them: {reps}")
        wait_voters_match(c, [1, 2, 3, 4])
        check(set(groups_on(c, 4)) == set(on4), f"broker 4 runs the groups of partitions {on4}")

        # Decommission broker 1.
        check(partition_files(c, 1, [TOPIC]), "broker 1 holds files of the topic's replicas")
        st, body = c.admin_put(3, "/v1/brokers/1/decommission")
        check(st == 200 and body.get("decommissioned") is True, f"decommission broker 1: {st} {body}")

        def finished():
            s, b = c.admin_get(3, "/v1/brokers/1/decommission")
            return b if s == 200 and b.get("finished") else None

        body = c._wait(finished, "broker 1 decommissioned", 90.0, interval=0.5)
        check(body["replicas_left"] == 0, f"no replica left on broker 1: {body}")
        reps = replicas(c)
        check(all(1 not in r and len(r) == 3 for r in reps.values()), f"no partition lists broker 1: {reps}")
        c._wait(lambda: groups_on(c, 1) == {} or None, "broker 1 stops its groups", 30.0, interval=0.5)
        c._wait(lambda: not partition_files(c, 1, [TOPIC]) or None, "broker 1 removes the partitions' data", 30.0,
                interval=0.5)
        check(True, "broker 1 removed the partitions' data")
        st, body = c.admin_post(3, f"/v1/partitions/{TOPIC}/0/replicas", [1, 2, 3])
        check(st == 400 and "decommissioned" in str(body), f"a move onto decommissioned broker 1 is refused: {st} {body}")

        # Recommission, then move partition 0 back onto broker 1, killing its leader half-way.
        st, body = c.admin_delete(3, "/v1/brokers/1/decommission")
        check(st == 200 and body.get("decommissioned") is False, f"recommission broker 1: {st} {body}")
        before = replicas(c)[0]
        target = [1] + [r for r in before if r != before[0]][:2]
        st, body = c.admin_post(3, f"/v1/partitions/{TOPIC}/0/replicas", {"replicas": target})
        check(st == 200 and sorted(body.get("replicas", [])) == sorted(target),
              f"move {TOPIC}/0 from {before} to {target}: {st} {body}")
        leader = c.wait_leader(TOPIC, 0)
        c.sigkill(leader)
        c.event(f"SIGKILLed node {leader}, the leader of {TOPIC}/0, during its move")
        time.sleep(2)
        c.start_node(leader)
        wait_moves_done(c, 3, f"move of {TOPIC}/0 with its leader killed")
        check(replicas(c)[0] == sorted(target), f"{TOPIC}/0 is on {sorted(target)}")
        wait_voters_match(c, [1, 2, 3, 4])

        # Every broker names a leader for every partition (kafkajs refuses a Metadata answer with one missing).
        def leaderless():
            out = []
            for n in c.available_nodes():
                md = c.metadata(nodes=[n], timeout=5.0)
                for name, t in md.topics.items():
                    out += [(n, name, p) for p, pm in t.partitions.items() if pm.error is not None or pm.leader < 0]
            return out

        try:
            c._wait(lambda: not leaderless() or None, "every broker names every partition's leader", 30.0, interval=0.5)
        except clusterlib.ClusterError:
            raise Failure(f"partitions without a leader (broker, topic, partition): {leaderless()}")
        check(True, "every broker names a leader for every partition")

        # Kafka's own API (KIP-455) through kafkajs: AlterPartitionReassignments, watched in
        # ListPartitionReassignments until done.
        before = replicas(c)[1]
        spare = [n for n in (1, 2, 3, 4) if n not in before][0]
        target = [spare] + before[1:]
        js = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reassign_kafkajs.js")
        r = subprocess.run([NODE, js, c.bootstrap(), TOPIC, "1", ",".join(map(str, target))],
                           capture_output=True, text=True, timeout=150)
        check(r.returncode == 0, f"kafkajs moved {TOPIC}/1 from {before} to {target}: {r.stdout.strip()} "
                                 f"{r.stderr.strip()[-2000:]}")
        check(replicas(c)[1] == sorted(target), f"{TOPIC}/1 is on {sorted(target)}")
        replace_dead_broker(c)
        time.sleep(2)

    check(not load.failed, f"no produce failed ({load.failed[:3]})")
    check(len(load.acked) == load.sent, f"{len(load.acked)} of {load.sent} records acknowledged")
    drain(c, load.acked)


def replace_dead_broker(c):
    """Broker 2 (a seed, so also a controller voter) dies: decommissioning it moves its replicas to the
    live brokers wherever a group keeps a majority without it. The "placed" partitions have two replicas,
    so those with one on broker 2 have no majority left: their moves wait until broker 2 is back, then
    finish, and broker 2 removes what it no longer holds. A new broker 5 then takes a share through a
    rebalance."""
    check(partition_files(c, 2, [TOPIC, "placed"]), "broker 2 holds files of both topics' replicas")
    wait_isr(c, lambda reps: reps, "every broker's Metadata lists every replica in sync")
    c.sigkill(2)
    c.event("SIGKILLed broker 2, then decommission it while it is down")
    # Kafka's ISR: the leaders stop counting broker 2 once they have not heard from it for an
    # election timeout, and every broker's Metadata says so (leaders announce it once a second).
    wait_isr(c, lambda reps: [r for r in reps if r != 2], "Metadata drops dead broker 2 from every ISR")
    st, body = c.admin_put(3, "/v1/brokers/2/decommission")
    check(st == 200 and body.get("decommissioned") is True, f"decommission dead broker 2: {st} {body}")
    stuck = {("placed", 0), ("placed", 2), ("placed", 3)}  # two replicas, one of them on broker 2

    def only_stuck_left():
        s, b = c.admin_get(3, "/v1/brokers/2/decommission")
        left = {(p["topic"], p["partition"]) for p in b.get("partitions", [])} if s == 200 else None
        return b if left == stuck else None

    body = c._wait(only_stuck_left, "every replica of dead broker 2 with a majority elsewhere moved", 90.0,
                   interval=0.5)
    check(body["replicas_left"] == 3 and not body["finished"],
          f"only the partitions that lost their majority wait for broker 2: {body}")
    reps = replicas(c)
    check(all(2 not in r and len(r) == 3 for r in reps.values()), f"no partition of {TOPIC} lists broker 2: {reps}")
    # The controller's leader hears from every broker: its health names broker 2 down.
    controller = c.admin_get(3, "/v1/raft/controller")[1].get("leader", 3)
    st, body = c.admin_get(controller, "/v1/cluster/health")
    check(st == 200 and 2 in body.get("nodes_down", []) and not body.get("nodes_unknown"),
          f"the controller's leader (broker {controller}) names broker 2 down: {st} {body}")

    c.start_node(2)

    def finished():
        s, b = c.admin_get(3, "/v1/brokers/2/decommission")
        return b if s == 200 and b.get("finished") else None

    body = c._wait(finished, "broker 2 decommissioned once back", 90.0, interval=0.5)
    check(body["replicas_left"] == 0, f"no replica left on broker 2: {body}")
    c._wait(lambda: not [g for g in c.admin_get(2, "/v1/raft/groups")[1] if g.get("topic") != "__consumer_offsets"]
            or None, "broker 2 runs no partition group", 30.0, interval=0.5)
    c._wait(lambda: not partition_files(c, 2, [TOPIC, "placed"]) or None, "broker 2 removes the partitions' data",
            30.0, interval=0.5)
    check(True, "broker 2, back after its decommission, holds nothing of either topic")
    # Retired (decommissioned, holding nothing): clients no longer see it, as Kafka lists no
    # unregistered broker; it can go away for good.
    c._wait(lambda: all(2 not in c.metadata(nodes=[n]).brokers for n in (1, 2, 3, 4)) or None,
            "no broker's Metadata lists retired broker 2", 10.0, interval=0.5)
    check(True, "no broker's Metadata lists retired broker 2, not even its own")
    c.sigkill(2)
    c.event("SIGKILLed retired broker 2 for good")

    c.start_node(5)
    c.wait_brokers(ids=[1, 3, 4, 5], via=[3])
    st, body = c.admin_post(3, "/v1/cluster/rebalance")
    check(st == 200 and body.get("moves_started", 0) >= 1, f"rebalance onto new broker 5: {st} {body}")
    wait_moves_done(c, 3, "rebalance onto broker 5")
    reps = replicas(c)
    on5 = [p for p, r in reps.items() if 5 in r]
    check(on5 and all(2 not in r and len(r) == 3 for r in reps.values()),
          f"broker 5 holds replicas of {TOPIC} partitions {on5}, broker 2 none: {reps}")
    wait_voters_match(c, [1, 3, 4, 5])
    wait_isr(c, lambda reps: reps, "after the moves every replica is in sync again")

    def healthy():
        leader = c.admin_get(3, "/v1/raft/controller")[1].get("leader", 3)
        st, body = c.admin_get(leader, "/v1/cluster/health")
        return body if st == 200 and body.get("is_healthy") else None

    body = c._wait(healthy, "the cluster health without retired broker 2", 20.0, interval=0.5)
    check(body["all_nodes"] == [1, 3, 4, 5], f"healthy, retired broker 2 left out: {body}")


def explicit_assignments(c, a):
    """CreateTopics and CreatePartitions with the client's replica lists."""
    want = [[1, 2], [3, 1], [2, 3]]
    a.create_topics([NewTopic("placed", 3, replica_assignment=want)])["placed"].result(30)
    md = c.metadata("placed", nodes=[2])
    got = [md.topics["placed"].partitions[p].replicas for p in range(3)]
    check(got == want, f"CreateTopics places replicas as asked: {got}")
    a.create_partitions([NewPartitions("placed", 4, replica_assignment=[[3, 2]])])["placed"].result(30)
    c.wait_leaders("placed", 4)
    md = c.metadata("placed", nodes=[1])
    check(md.topics["placed"].partitions[3].replicas == [3, 2],
          f"CreatePartitions places the new partition as asked: {md.topics['placed'].partitions[3].replicas}")
    try:
        a.create_topics([NewTopic("misplaced", 1, replica_assignment=[[1, 9]])])["misplaced"].result(30)
        raise Failure("CreateTopics on unknown broker 9 succeeded")
    except Exception as e:  # KafkaException
        err = e.args[0] if e.args else None
        check(err is not None and err.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT,
              f"CreateTopics on unknown broker 9 is refused: {err}")


def drain(c, acked):
    cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "moves-drain", "enable.partition.eof": True,
                     "enable.auto.commit": False})
    cons.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    got, eof, deadline = {}, set(), time.monotonic() + 90
    while len(eof) < PARTITIONS and time.monotonic() < deadline:
        for m in cons.consume(1000, 1.0):
            if m.error() is None:
                got.setdefault(m.partition(), []).append((m.offset(), m.value()))
            elif m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
    cons.close()
    check(len(eof) == PARTITIONS, f"read every partition to its end ({sorted(eof)})")
    read = {(p, o, v) for p, msgs in got.items() for o, v in msgs}
    values = [v for msgs in got.values() for _, v in msgs]
    lost = [a for a in acked if a not in read]
    dups = len(values) - len(set(values))
    sent = {v for _, _, v in acked}
    phantom = [v for v in values if v not in sent]
    # Offsets ascend; they skip the control batches (a new leader's noop, membership changes).
    unordered = [p for p, msgs in got.items() if any(a[0] >= b[0] for a, b in zip(msgs, msgs[1:]))]
    check(not lost, f"every acknowledged record read back at its offset ({len(lost)} lost: {lost[:3]})")
    check(dups == 0 and not phantom, f"no duplicate and no unsent value ({dups} duplicates, {len(phantom)} phantoms)")
    check(not unordered, f"offsets ascend in every partition ({unordered})")
    check(True, f"{len(acked)} acknowledged records read back exactly once")


def main(argv):
    def runs(a):
        global NODE
        NODE = a.node or NODE
        return [(dict(nodes=5, seeds=3, name="moves"), scenario)]

    return clusterlib.run_scenarios(
        __doc__, "moves_test", runs, argv,
        add_args=lambda ap: ap.add_argument("--node", help="the node.js binary for the kafkajs step"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
