#!/usr/bin/python3
"""kafka-python (Debian's python3-kafka, pure Python) consumer groups against a Sluice broker, once per
assignor the installed version has: RangePartitionAssignor, RoundRobinPartitionAssignor and
StickyPartitionAssignor.

    /usr/bin/python3 kafka_python_groups_test.py [HOST:PORT]        (or $SLUICE_BOOTSTRAP)

Per assignor: records (acks=all) on a 4-partition topic; two KafkaConsumer threads of one group subscribe,
consume everything and commit synchronously. KafkaAdminClient:
  - describe_consumer_groups: Stable, protocol type "consumer", the assignor's name as protocol, both
    members with their client ids, and member assignments that cover every partition exactly once;
  - list_consumer_groups lists (group, "consumer");
  - list_consumer_group_offsets: the committed offsets equal the end offsets; after more records arrive
    with nobody consuming, lag = end offset - committed offset = the records added per partition;
  - after both members left (close(): LeaveGroup), the group is Empty with no members.
The union of consumed records is exactly what was produced (values checked).
"""

import sys
import threading

import clientlib as cl

try:
    import kafka
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
except ImportError as e:
    cl.missing_client(e, "python3-kafka")
ASSIGNORS = [RangePartitionAssignor, RoundRobinPartitionAssignor]
try:
    from kafka.coordinator.assignors.sticky.sticky_assignor import (StickyAssignorUserDataV1,
                                                                    StickyPartitionAssignor)
    from kafka.coordinator.protocol import ConsumerProtocolMemberMetadata
    ASSIGNORS.append(StickyPartitionAssignor)
except ImportError:
    print(f"SKIPPED StickyPartitionAssignor: kafka-python {kafka.__version__} does not have it", flush=True)

bs = cl.bootstrap()
PARTS = 4
PER_PARTITION = 150
MORE = 7  # records added per partition for the lag check


# Two kafka-python 2.0.2 bugs in StickyPartitionAssignor, not the broker's:
# - its state (member_assignment, generation) is kept in class attributes, so every consumer in a
#   process shares one "previous assignment", and it outlives the consumer;
# - metadata() encodes six.iteritems(...) (an iterator on Python 3), so the first rejoin after an
#   assignment raises TypeError "object of type 'dict_itemiterator' has no len()" from poll().
# Retrying cannot help (the class state stays set), so each member gets its own subclass whose
# metadata() encodes a list; the assignment algorithm and its wire format are kafka-python's own.
def own_sticky_assignor(base):
    class OwnSticky(base):
        member_assignment = None
        generation = base.DEFAULT_GENERATION_ID

        @classmethod
        def metadata(cls, topics):
            if cls.member_assignment is None:
                return super().metadata(topics)
            by_topic = {}
            for tp in cls.member_assignment:
                by_topic.setdefault(tp.topic, []).append(tp.partition)
            data = StickyAssignorUserDataV1(list(by_topic.items()), cls.generation)
            user_data = data.encode()  # a named Struct: its encode() holds only a weak reference
            return ConsumerProtocolMemberMetadata(cls.version, list(topics), user_data)
    return OwnSticky


class Member(threading.Thread):
    def __init__(self, name, group, topic, assignor):
        super().__init__(daemon=True)
        self.name_, self.got, self.error = name, [], None
        self.stopping = threading.Event()
        self.c = KafkaConsumer(bootstrap_servers=bs, group_id=group, client_id=name, enable_auto_commit=False,
                               auto_offset_reset="earliest", partition_assignment_strategy=[
                                   own_sticky_assignor(assignor) if assignor.name == "sticky" else assignor],
                               session_timeout_ms=6000, heartbeat_interval_ms=500, request_timeout_ms=30000)
        self.c.subscribe([topic])

    def run(self):
        try:
            while not self.stopping.is_set():
                batch = self.c.poll(timeout_ms=100)
                for tp, msgs in batch.items():
                    self.got += [(m.partition, m.offset, m.value) for m in msgs]
                if batch:
                    self.c.commit()  # synchronous: the positions reached
            self.c.close(autocommit=False)
        except Exception as e:
            self.error = f"{self.name_}: {type(e).__name__}: {e}"


def describe(adm, group):
    (g,) = adm.describe_consumer_groups([group])
    return g


def run_assignor(assignor):
    topic = cl.topic_name("kpgroups", assignor.name)
    group = cl.topic_name("kpgroups", assignor.name + "-group")
    adm = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=30000)
    try:
        adm.create_topics([NewTopic(topic, PARTS, 1)], timeout_ms=30000)
        prod = KafkaProducer(bootstrap_servers=bs, acks="all")
        produced = {}
        for i in range(PARTS * PER_PARTITION):
            p = i % PARTS
            v = b"%s/%d" % (topic.encode(), i)
            md = prod.send(topic, value=v, partition=p).get(60)
            produced[(md.partition, md.offset)] = v
        cl.check_eq(sorted(produced), [(p, o) for p in range(PARTS) for o in range(PER_PARTITION)],
                    "acknowledged (partition, offset)s")

        # kp2 joins after kp1 owns partitions, so kp1 rejoins with a previous assignment (for sticky:
        # user data the broker must carry to the leader unchanged).
        members = [Member(n, group, topic, assignor) for n in ("kp1", "kp2")]
        members[0].start()
        cl.wait_until(lambda: members[0].got or members[0].error,
                      f"{assignor.name}: kp1 alone consumes from its assignment", 30)
        members[1].start()

        def everything():
            errs = [m.error for m in members if m.error]
            cl.check(not errs, str(errs))
            return {(p, o) for m in members for p, o, _ in list(m.got)} >= set(produced)
        cl.wait_until(everything, f"{assignor.name}: both members together consumed all {len(produced)} records", 60)

        def stable():
            errs = [m.error for m in members if m.error]
            cl.check(not errs, str(errs))
            g = describe(adm, group)
            return g if g.state == "Stable" and len(g.members) == 2 else None
        g = cl.wait_until(stable, f"{assignor.name}: describe_consumer_groups shows 2 members, Stable", 30)
        cl.check_eq((g.error_code, g.protocol_type, g.protocol), (0, "consumer", assignor.name),
                    f"describe {group}: (error, protocol type, protocol)")
        cl.check_eq(sorted(mm.client_id for mm in g.members), ["kp1", "kp2"], "members' client ids")
        owned = []
        for mm in g.members:
            cl.check(mm.member_id.startswith(mm.client_id + "-"),
                     f"member id {mm.member_id!r}: Kafka names a member CLIENT_ID-UUID")
            owned += [(t, p) for t, ps in mm.member_assignment.assignment for p in ps]
        cl.check_eq(sorted(owned), [(topic, p) for p in range(PARTS)], "the members' assignments (describe)")
        cl.check((group, "consumer") in adm.list_consumer_groups(), f"list_consumer_groups lacks ({group}, consumer)")

        tps = [TopicPartition(topic, p) for p in range(PARTS)]
        probe = KafkaConsumer(bootstrap_servers=bs)  # KafkaConsumer is not thread-safe: not a member's
        ends = probe.end_offsets(tps)

        def committed_all():
            offs = adm.list_consumer_group_offsets(group)
            return offs if {tp: o.offset for tp, o in offs.items()} == ends else None
        cl.wait_until(committed_all, f"{assignor.name}: list_consumer_group_offsets == end offsets {ends}", 20)

        for m in members:
            m.stopping.set()
        for m in members:
            m.join(30)
            cl.check(not m.is_alive(), f"{m.name_}: close() did not return within 30 s")
            cl.check(m.error is None, m.error or "")
        g = cl.wait_until(lambda: (lambda g: g if g.state == "Empty" else None)(describe(adm, group)),
                          f"{assignor.name}: the group Empty after both members left", 20)
        cl.check_eq(len(g.members), 0, "members after both left")

        for i in range(PARTS * MORE):
            prod.send(topic, value=b"more", partition=i % PARTS).get(60)
        prod.close()
        committed = {tp: o.offset for tp, o in adm.list_consumer_group_offsets(group).items()}
        new_ends = probe.end_offsets(tps)
        probe.close()
        lag = {tp.partition: new_ends[tp] - committed[tp] for tp in tps}
        cl.check_eq(lag, {p: MORE for p in range(PARTS)}, "lag = end offset - committed offset")

        total = 0
        for m in members:
            for p, o, v in m.got:
                cl.check((p, o) in produced, f"consumed {topic}[{p}]@{o}, never produced")
                cl.check_bytes(v, produced[(p, o)], f"{topic}[{p}]@{o} value")
                total += 1
        return f"{len(produced)} records, {total - len(produced)} read twice (across the second join); lag {MORE} per partition after {MORE} more"
    finally:
        adm.close()


def main():
    steps = [("the broker advertises the group APIs", lambda: cl.require_group_coordinator(bs))]
    steps += [(f"{a.__name__} ({a.name}): 2 members, describe/list groups, committed offsets, lag",
               lambda a=a: run_assignor(a)) for a in ASSIGNORS]
    return cl.run_steps("kafka-python groups", steps)


if __name__ == "__main__":
    sys.exit(main())
