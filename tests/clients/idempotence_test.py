#!/usr/bin/python3
"""An idempotent producer (librdkafka through confluent-kafka-python, enable.idempotence=true) against Sluice.

    /usr/bin/python3 idempotence_test.py [HOST:PORT]        (or $SLUICE_BOOTSTRAP)

The producer gets its producer id from InitProducerId, sends with sequence numbers and up to five requests in
flight per partition; every delivery report must succeed, offsets must run 0, 1, 2, ... per partition, and a
consumer must read back exactly the records produced, each once, in order.
"""

import sys

import clientlib as cl

try:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:
    cl.missing_client(e, "python3-confluent-kafka")

bs, _bid, _advertised = cl.target()
topic = cl.topic_name("idempotence", "main")
PARTITIONS = 3
COUNT = 3000
produced = {}  # partition -> [value] in offset order


def step_reachable():
    cl.require_reachable(bs)


def step_create_topic():
    a = AdminClient({"bootstrap.servers": bs})
    a.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(timeout=30)


def step_produce_idempotently():
    errors = []
    offsets = {}

    def report(err, m):
        if err is not None:
            errors.append(str(err))
        else:
            offsets.setdefault(m.partition(), []).append((m.offset(), m.value()))

    p = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "acks": "all",
                  "max.in.flight.requests.per.connection": 5, "linger.ms": 2, "batch.num.messages": 50})
    for i in range(COUNT):
        while True:
            try:
                p.produce(topic, value=f"record-{i}".encode(), partition=i % PARTITIONS, on_delivery=report)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(60)
    cl.check_eq(left, 0, "records still queued after flush")
    cl.check(not errors, f"delivery errors: {errors[:5]}")
    for part, got in offsets.items():
        got.sort()
        cl.check_eq([o for o, _ in got], list(range(len(got))), f"partition {part}: offsets")
        produced[part] = [v for _, v in got]
    cl.check_eq(sum(len(v) for v in produced.values()), COUNT, "delivered records")
    return f"{COUNT} records over {PARTITIONS} partitions"


def step_log_holds_each_record_once():
    c = Consumer({"bootstrap.servers": bs, "group.id": "unused", "enable.auto.commit": False})
    for part, values in produced.items():
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, part), timeout=30)
        cl.check_eq((lo, hi), (0, len(values)), f"partition {part}: watermarks")
    c.assign([TopicPartition(topic, p, 0) for p in produced])
    seen = {p: [] for p in produced}

    def done():
        for m in c.consume(500, timeout=1.0):
            cl.check(m.error() is None, f"consume: {m.error()}")
            seen[m.partition()].append(m.value())
        return all(len(seen[p]) >= len(v) for p, v in produced.items())

    cl.wait_until(done, "the consumer to read every record", timeout=60)
    c.close()
    for part, values in produced.items():
        cl.check_eq(seen[part], values, f"partition {part}: records read back")


if __name__ == "__main__":
    sys.exit(cl.run_steps("idempotence", [
        ("the broker is reachable", step_reachable),
        ("create the topic", step_create_topic),
        ("an idempotent producer delivers every record", step_produce_idempotently),
        ("the log holds each record exactly once", step_log_holds_each_record_once),
    ]))
