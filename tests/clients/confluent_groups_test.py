#!/usr/bin/python3
"""confluent-kafka-python consumer groups against a Sluice broker, once per assignor: range, roundrobin and
cooperative-sticky (partition.assignment.strategy).

    /usr/bin/python3 confluent_groups_test.py [HOST:PORT]        (or $SLUICE_BOOTSTRAP)

Per assignor, a 6-partition topic gets records (acks=all) all along while consumer threads of one group join
and leave (close() sends LeaveGroup): 2 members, a third joins, the first leaves, a fourth joins. Checks:
  - the union of consumed records is exactly what was produced: every (partition, offset) with its value;
  - no gaps and no duplicates while a member owns a partition: from its assignment to its revocation a
    member reads consecutive offsets; a record is read twice only across a change of owner (a rebalance);
  - the assignments never overlap: a partition is owned by at most one member at a time (for
    cooperative-sticky, revocations are incremental: a member keeps the partitions it is not asked to give up);
  - AdminClient.list_groups (ListGroups + DescribeGroups): the group is Stable, protocol type "consumer", the
    assignor's name as protocol, the live members; after everyone left it is Empty with no members;
  - the committed offsets (OffsetFetch) equal the high watermarks after the drain.
"""

import sys
import threading
import time

import clientlib as cl

# librdkafka 2.0.2 with cooperative-sticky under member churn declares its
# assignment lost (on_lost) after the coordinator answers a heartbeat sent
# with generation -1 during CompletingRebalance with ILLEGAL_GENERATION
# (docs/CLIENTS.md, "Known broker gaps").
GAP_COOP_LOST = "cooperative-assignment-lost"

try:
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:
    cl.missing_client(e, "python3-confluent-kafka")

bs = cl.bootstrap()
PARTS = 6
ASSIGNORS = ["range", "roundrobin", "cooperative-sticky"]


class Member(threading.Thread):
    """A consumer thread: records (event, ...) in order: ("assign", set), ("revoke", set), ("msg", p, o, value)."""

    def __init__(self, name, group, topic, strategy, owners, lock):
        super().__init__(daemon=True)
        self.name_, self.topic, self.events, self.error = name, topic, [], None
        self.owners, self.lock = owners, lock  # partition -> member name, shared: checks overlaps
        self.stopping = threading.Event()
        self.owned = set()
        self.revoking = False  # commits in on_revoke run while the group is PreparingRebalance
        self.c = Consumer({"bootstrap.servers": bs, "group.id": group, "client.id": name,
                           "partition.assignment.strategy": strategy, "enable.auto.commit": False,
                           "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                           "heartbeat.interval.ms": 500, "max.poll.interval.ms": 10000})

    def on_assign(self, c, parts):
        ps = {tp.partition for tp in parts}
        with self.lock:
            for p in ps:
                if self.owners.get(p) not in (None, self.name_):
                    self.error = self.error or (f"{self.name_} was assigned partition {p} while "
                                                f"{self.owners[p]} still owns it")
                self.owners[p] = self.name_
        self.owned |= ps
        self.events.append(("assign", ps))

    def commit(self):
        """A synchronous commit of the positions reached. Kafka refuses commits during a rebalance
        (REBALANCE_IN_PROGRESS) and from an old generation; an application goes on (the next owner re-reads)."""
        try:
            self.c.commit(asynchronous=False)
        except KafkaException as e:
            code = e.args[0].code() if e.args and isinstance(e.args[0], KafkaError) else None
            if code not in (KafkaError._NO_OFFSET, KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
                            KafkaError.UNKNOWN_MEMBER_ID):
                self.events.append(("commit-error", str(e)))
            elif code != KafkaError._NO_OFFSET:
                self.events.append(("commit-refused", KafkaError(code).name(), self.revoking))

    def on_revoke(self, c, parts):
        ps = {tp.partition for tp in parts}
        if ps:
            self.revoking = True
            self.commit()
            self.revoking = False
        with self.lock:
            for p in ps:
                if self.owners.get(p) == self.name_:
                    del self.owners[p]
        self.owned -= ps
        self.events.append(("revoke", ps))

    def run(self):
        try:
            self.c.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke,
                             on_lost=self.on_revoke)
            n = 0
            while not self.stopping.is_set():
                m = self.c.poll(0.1)
                if m is None:
                    continue
                if m.error():
                    self.events.append(("error", str(m.error())))
                    continue
                self.events.append(("msg", m.partition(), m.offset(), m.value()))
                n += 1
                if n % 50 == 0:
                    self.commit()
            self.c.close()  # commits nothing by itself (auto commit off): revoke (on_revoke commits), LeaveGroup
        except Exception as e:  # reported by the test
            self.error = self.error or f"{self.name_}: {type(e).__name__}: {e}"


def produce_until(topic, stop, produced, errors):
    p = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 5, "message.timeout.ms": 60000})

    def dr(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            produced[(msg.partition(), msg.offset())] = msg.value()

    i = 0
    while not stop.is_set():
        for _ in range(6):
            p.produce(topic, value=b"%s/%d" % (topic.encode(), i), partition=i % PARTS, on_delivery=dr)
            i += 1
        p.poll(0)
        time.sleep(0.04)
    if p.flush(60):
        errors.append("records undelivered 60 s after the end")


def check_member_reads(m):
    """Within one ownership of a partition the offsets are consecutive; returns {partition: ownerships}."""
    last = {}
    for ev in m.events:
        if ev[0] == "assign":
            for p in ev[1]:
                last[p] = None
        elif ev[0] == "revoke":
            for p in ev[1]:
                last.pop(p, None)
        elif ev[0] == "msg":
            _, p, o, _v = ev
            cl.check(p in last, f"{m.name_}: a record of partition {p} (offset {o}) it does not own")
            if last[p] is not None and o != last[p] + 1:
                cl.fail(f"{m.name_}: partition {p}: offset {o} after {last[p]} while owning it "
                        f"({'a duplicate' if o <= last[p] else 'a gap'} without a rebalance)")
            last[p] = o


def list_group(a, group):
    gs = [g for g in a.list_groups(group, timeout=30) if g.id == group]
    return gs[0] if gs else None


def run_assignor(strategy):
    topic = cl.topic_name("cgroups", strategy)
    group = cl.topic_name("cgroups", strategy + "-group")
    a = AdminClient({"bootstrap.servers": bs})
    a.create_topics([NewTopic(topic, PARTS, 1)], request_timeout=60)[topic].result()
    cl.wait_until(lambda: len(a.list_topics(topic, timeout=30).topics[topic].partitions) == PARTS,
                  f"{topic} with {PARTS} partitions")
    owners, lock = {}, threading.Lock()
    produced, perr, stop = {}, [], threading.Event()
    prod = threading.Thread(target=produce_until, args=(topic, stop, produced, perr), daemon=True)
    members = []

    def join(name):
        m = Member(name, group, topic, strategy, owners, lock)
        members.append(m)
        m.start()
        return m

    def leave(m):
        m.stopping.set()
        m.join(30)
        cl.check(not m.is_alive(), f"{m.name_}: close() did not return within 30 s")

    def live():
        return [m for m in members if m.is_alive()]

    seen = {}

    def stable(n):
        """All n live members own partitions covering the topic, and list_groups says Stable with n members."""
        with lock:
            seen["owners"] = dict(owners)
        g = list_group(a, group)
        seen["group"] = g and (g.state, g.protocol, sorted((mm.client_id, mm.id) for mm in g.members))
        covered = sorted(seen["owners"]) == list(range(PARTS))
        return g if covered and g is not None and g.state == "Stable" and len(g.members) == n else None

    def wait_stable(n, what):
        try:
            return cl.wait_until(lambda: stable(n), what, 30)
        except cl.TestFailure as e:
            cl.fail(f"{e}: last seen: owners (partition: member) {seen.get('owners')}, list_groups (state, "
                    f"protocol, members) {seen.get('group')}; member events: " +
                    "; ".join(f"{m.name_} alive={m.is_alive()} error={m.error} {[ev for ev in m.events if ev[0] != 'msg'][-6:]}"
                              for m in members))

    prod.start()
    try:
        join("m1"), join("m2")
        wait_stable(2, f"{strategy}: 2 members Stable owning all {PARTS} partitions")
        join("m3")
        time.sleep(2)
        leave(members[0])
        time.sleep(1)
        join("m4")
        g = wait_stable(3, f"{strategy}: m2, m3, m4 Stable owning all partitions")
        cl.check_eq((g.protocol_type, g.protocol), ("consumer", strategy),
                    f"list_groups {group}: (protocol type, protocol)")
        cl.check_eq(sorted(mm.client_id for mm in g.members), ["m2", "m3", "m4"], "list_groups: members' client ids")
        cl.check(all(mm.id.startswith(mm.client_id + "-") for mm in g.members),
                 f"list_groups: member ids {[mm.id for mm in g.members]}: Kafka names a member CLIENT_ID-UUID")
        time.sleep(1)
    finally:
        stop.set()
        prod.join(90)
    cl.check(not perr, f"producer: {perr[:3]}")
    # Drain: every produced record consumed.
    deadline = time.monotonic() + 45
    while True:
        got = {(ev[1], ev[2]) for m in members for ev in list(m.events) if ev[0] == "msg"}
        missing = set(produced) - got
        errors = [m.error for m in members if m.error]
        cl.check(not errors, f"{strategy}: {errors}")
        if not missing:
            break
        cl.check(time.monotonic() < deadline, f"{strategy}: {len(missing)} of {len(produced)} records not consumed "
                                              f"within 45 s, e.g. {sorted(missing)[:5]}")
        time.sleep(0.3)
    for m in live():
        leave(m)
    errors = [m.error for m in members if m.error]
    cl.check(not errors, f"{strategy}: {errors}")

    total = 0
    assignment_lost = False
    for m in members:
        check_member_reads(m)
        for ev in m.events:
            if ev[0] == "msg":
                _, p, o, v = ev
                cl.check((p, o) in produced, f"{strategy}: consumed {topic}[{p}]@{o}, which was never produced")
                cl.check_bytes(v, produced[(p, o)], f"{strategy}: {topic}[{p}]@{o} value")
                total += 1
        errs = [ev for ev in m.events if ev[0] in ("error", "commit-error")]
        lost = [ev for ev in errs if ev[0] == "commit-error" and "_ASSIGNMENT_LOST" in ev[1]]
        if errs and len(lost) == len(errs) and strategy == "cooperative-sticky" and cl.known_gap(
                GAP_COOP_LOST, f"{m.name_}: {len(lost)} commit(s) after librdkafka declared its assignment lost"):
            assignment_lost = True
            continue
        cl.check(not errs, f"{strategy}: {m.name_}: {errs[:3]}")

    g = cl.wait_until(lambda: (lambda g: g if g and g.state == "Empty" else None)(list_group(a, group)),
                      f"{strategy}: list_groups shows {group} Empty after everyone left", 20)
    cl.check_eq(len(g.members), 0, f"{group}: members after everyone left")
    ends = {}
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False})
    try:
        for p in range(PARTS):
            ends[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
        committed = {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(PARTS)],
                                                                    timeout=30)}
    finally:
        c.close()
    if committed != ends and assignment_lost and all(committed.get(p, -1) <= ends[p] for p in ends) and cl.known_gap(
            GAP_COOP_LOST, f"committed {committed} short of {ends}: the lost members' last commits were refused"):
        return f"{len(produced)} records, {total - len(produced)} read twice across rebalances (assignment lost: known gap)"
    if committed != ends:
        refused = [(m.name_, ev[1]) for m in members for ev in m.events if ev[0] == "commit-refused" and ev[2]]
        cl.fail(f"{strategy}: committed offsets (OffsetFetch) {committed}, want the high watermarks {ends}: every "
                f"member commits its positions in on_revoke before it leaves or rejoins; {len(refused)} such commits "
                f"were refused: {refused[:6]} (Kafka refuses a current member's commit only in CompletingRebalance, "
                f"not in PreparingRebalance)")
    return f"{len(produced)} records, {total - len(produced)} read twice across rebalances"


def main():
    steps = [("the broker advertises the group APIs", lambda: cl.require_group_coordinator(bs))]
    steps += [(f"assignor {s}: members join and leave while records flow", lambda s=s: run_assignor(s))
              for s in ASSIGNORS]
    return cl.run_steps("confluent-kafka groups", steps)


if __name__ == "__main__":
    sys.exit(main())
