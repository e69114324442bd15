#!/usr/bin/python3
"""A by-hand check of the README's three-node cluster (not run by CTest; cluster_failover is the
automated one). From the checkout, with `scripts/cluster.sh start` running:

    /usr/bin/python3 tests/cluster/readme_failover.py [TOPIC]

creates TOPIC (3 partitions, replication factor 3), writes with an idempotent acks=all producer for
25 s, SIGKILLs the leader of partition 0 8 s in (its pid from data/cluster/nodeN.pid), prints the
longest gap between acknowledgements after the kill, restarts the node (`scripts/cluster.sh start`),
reads everything back, and exits 1 if an acknowledged value is missing, duplicated or at another
offset, or a send failed.
"""
import os
import signal
import subprocess
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = "127.0.0.1:19092,127.0.0.1:29092,127.0.0.1:39092"
PARTITIONS = 3
LOAD_S, KILL_AT_S = 25.0, 8.0


def longest_gap(since, times):
    times = sorted(t for t in times if t >= since)
    return max((b - a for a, b in zip([since] + times, times)), default=float("inf"))


def main(topic):
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(topic, PARTITIONS, 3)])[topic].result(30)
    time.sleep(3)
    acks, fails = [], []  # acks: (time, partition, offset, value)

    def delivered(err, m):
        if err is not None:
            fails.append(str(err))
        else:
            acks.append((time.monotonic(), m.partition(), m.offset(), m.value()))

    p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    start, sent, killed_at, leader = time.monotonic(), 0, None, None
    while time.monotonic() - start < LOAD_S:
        p.produce(topic, value=b"v%d" % sent, partition=sent % PARTITIONS, on_delivery=delivered)
        sent += 1
        p.poll(0)
        time.sleep(0.001)
        if killed_at is None and time.monotonic() - start > KILL_AT_S:
            leader = admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader
            with open(f"data/cluster/node{leader}.pid") as f:
                os.kill(int(f.read()), signal.SIGKILL)
            killed_at = time.monotonic()
    p.flush(60)
    print(f"SIGKILLed node {leader}, the leader of partition 0; sent {sent}, acknowledged {len(acks)}, "
          f"failed {len(fails)}")
    print(f"longest gap between acknowledgements after the kill: {longest_gap(killed_at, [a[0] for a in acks]):.2f} s; "
          f"on partition 0: {longest_gap(killed_at, [a[0] for a in acks if a[1] == 0]):.2f} s")

    subprocess.run(["scripts/cluster.sh", "start"], check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, SLUICE_CLUSTER_NO_BUILD="1"))
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"{topic}-check", "enable.partition.eof": True})
    c.assign([TopicPartition(topic, q, 0) for q in range(PARTITIONS)])
    read, eof, deadline = {}, set(), time.monotonic() + 60
    while len(eof) < PARTITIONS and time.monotonic() < deadline:
        for m in c.consume(1000, 1.0):
            if m.error() is None:
                read.setdefault(m.value(), []).append((m.partition(), m.offset()))
            elif m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
    c.close()
    lost = [v for _, part, off, v in acks if (part, off) not in read.get(v, [])]
    dups = sum(len(at) - 1 for at in read.values())
    print(f"read back {len(read)} values: {len(lost)} acknowledged ones missing or at another offset, "
          f"{dups} duplicated; every partition read to its end: {len(eof) == PARTITIONS}")
    return 1 if lost or dups or fails or len(eof) < PARTITIONS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "readme-failover"))
