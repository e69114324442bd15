#!/usr/bin/python3
"""provenance.py against a real broker: the producer id, epoch and sequence it reads from the batch
headers are the ones librdkafka's idempotent producers sent; a plain producer's records have none.
Run through run_with_broker.py (CTest: chaos_provenance)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "clients"))
import clientlib as cl  # noqa: E402
import provenance  # noqa: E402

try:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:
    cl.missing_client(e, "python3-confluent-kafka")

bs = cl.bootstrap()


def produce(topic, values, idempotent):
    p = Producer({"bootstrap.servers": bs, "enable.idempotence": idempotent, "acks": "all", "linger.ms": 0})
    offsets = []

    def done(err, msg):
        cl.check(err is None, f"delivery of {msg.value()!r}: {err}")
        offsets.append(msg.offset())
    for v in values:
        p.produce(topic, value=v, partition=0, on_delivery=done)
        p.flush(30)  # one record per batch: each its own sequence
    return offsets


def scenario():
    topic = cl.topic_name("provenance", "batches")
    admin = AdminClient({"bootstrap.servers": bs})  # kept alive until the result is in
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    first = produce(topic, [b"a0", b"a1", b"a2"], True)
    plain = produce(topic, [b"plain"], False)
    second = produce(topic, [b"b0", b"b1"], True)
    cl.check_eq(first + plain + second, [0, 1, 2, 3, 4, 5], "offsets")
    prov = provenance.fetch(bs, topic, [(0, o) for o in range(6)])
    cl.check_eq(sorted(prov), [(0, o) for o in (0, 1, 2, 4, 5)], "positions written by idempotent producers")
    pid_a, pid_b = prov[(0, 0)][0], prov[(0, 4)][0]
    cl.check(pid_a >= 0 and pid_b >= 0 and pid_a != pid_b, f"producer ids {pid_a}, {pid_b}: two producers")
    cl.check_eq([prov[(0, o)] for o in (0, 1, 2, 4, 5)],
                [(pid_a, 0, 0), (pid_a, 0, 1), (pid_a, 0, 2), (pid_b, 0, 0), (pid_b, 0, 1)],
                "(producer id, epoch, sequence) per record")
    return f"producers {pid_a} and {pid_b}"


if __name__ == "__main__":
    sys.exit(cl.run_steps("provenance", [("idempotent and plain batches read back", scenario)]))
