#!/usr/bin/python3
"""confluent-kafka-python (Debian's python3-confluent-kafka, on librdkafka) against a Sluice broker.

    /usr/bin/python3 confluent_kafka_test.py [HOST:PORT]        (or $SLUICE_BOOTSTRAP)

Checks AdminClient create_topics (configs, validate_only, TOPIC_ALREADY_EXISTS), list_topics (broker,
controller, cluster id, partitions), describe_configs, alter_configs, create_partitions, delete_topics;
a Producer with keys (null, empty, bytes), headers (duplicates, empty values, order), explicit timestamps
and every codec, with delivery reports whose offsets count 0, 1, 2, ... per partition; a Consumer using
assign() with TopicPartition offsets (beginning and absolute) that checks every byte, timestamp and
offset; offsets_for_times and get_watermark_offsets. Methods the installed version lacks
(delete_records, incremental_alter_configs in 1.7.0) are reported as skipped with the reason.
"""

import random
import sys

import clientlib as cl

try:
    import confluent_kafka as ck
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewPartitions, NewTopic
except ImportError as e:
    cl.missing_client(e, "python3-confluent-kafka")

bs, bid, advertised = cl.target()
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PER_CODEC = 800
topic = cl.topic_name("confluent", "main")
base_ts = cl.now_ms() - 10 * 60 * 1000
state = {}  # filled by the produce step: partition -> [record] in offset order
skipped = []


def admin():
    return AdminClient({"bootstrap.servers": bs, "socket.timeout.ms": 30000})


def error_code(exc):
    """The KafkaError code carried by a future's exception."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0].code()
    return None


def expect_error(fut, code, what):
    try:
        fut.result()
    except KafkaException as e:
        cl.check_eq(error_code(e), code, f"{what}: error ({e})")
        return
    cl.fail(f"{what}: succeeded, want error {KafkaError(code).name()}")


def wait_metadata(a, pred, what):
    """Polls list_topics() until pred(metadata) holds; returns that metadata."""
    def probe():
        md = a.list_topics(timeout=30)
        return (md,) if pred(md) else None
    return cl.wait_until(probe, f"{what} in list_topics()")[0]


def partitions_ready(md, t, n):
    tm = md.topics.get(t)
    return (tm is not None and tm.error is None and len(tm.partitions) == n
            and all(p.leader == bid and p.error is None for p in tm.partitions.values()))


def step_reachable():
    cl.require_reachable(bs)
    return f"confluent-kafka {ck.version()[0]}, librdkafka {ck.libversion()[0]}"


def step_create_topics():
    a = admin()
    futs = a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1,
                                     config={"retention.ms": "3600000", "cleanup.policy": "delete"})],
                           operation_timeout=30, request_timeout=60)
    futs[topic].result()
    md = wait_metadata(a, lambda md: partitions_ready(md, topic, 3), f"{topic} with 3 partitions")
    tm = md.topics[topic]
    for pid, p in sorted(tm.partitions.items()):
        cl.check_eq((p.id, p.leader, list(p.replicas), list(p.isrs)), (pid, bid, [bid], [bid]),
                    f"{topic}[{pid}] (id, leader, replicas, isrs)")

    expect_error(a.create_topics([NewTopic(topic, 3, 1)], request_timeout=60)[topic],
                 KafkaError.TOPIC_ALREADY_EXISTS, "creating it again")

    never = cl.topic_name("confluent", "validate-only")
    a.create_topics([NewTopic(never, 2, 1)], validate_only=True, request_timeout=60)[never].result()
    cl.check(never not in a.list_topics(timeout=30).topics, f"validate_only created {never}")


def step_list_topics():
    md = admin().list_topics(timeout=30)
    cl.check_eq({k: (b.id, f"{b.host}:{b.port}") for k, b in md.brokers.items()}, {bid: (bid, advertised)},
                "brokers (id, advertised host:port)")
    cl.check_eq(md.controller_id, bid, "controller id")
    cl.check_eq(md.orig_broker_id, bid, "the broker that answered")
    cl.check(isinstance(md.cluster_id, str) and md.cluster_id, f"cluster id: got {md.cluster_id!r}")
    cl.check(topic in md.topics, f"{topic} not listed")
    # A Producer's view of one topic, as a client asks before producing.
    tmd = Producer({"bootstrap.servers": bs}).list_topics(topic, timeout=30)
    cl.check_eq(sorted(tmd.topics[topic].partitions), [0, 1, 2], "partitions seen by a Producer")
    return f"cluster id {md.cluster_id}"


def describe(a, restype, name):
    res = ConfigResource(restype, name)
    return a.describe_configs([res], request_timeout=60)[res].result()


def step_configs():
    a = admin()
    cfg = describe(a, "topic", topic)
    cl.check("retention.ms" in cfg, f"describe_configs lacks retention.ms: {sorted(cfg)[:30]}")
    e = cfg["retention.ms"]
    source = getattr(e.source, "value", e.source)  # an int or a ConfigSource, depending on the version
    cl.check_eq((e.value, source, e.is_default), ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value, False),
                "retention.ms (value, source, is_default)")
    cl.check_eq(cfg.get("cleanup.policy") and cfg["cleanup.policy"].value, "delete", "cleanup.policy")

    res = ConfigResource("topic", topic, set_config={"retention.ms": "7200000"})
    a.alter_configs([res], request_timeout=60)[res].result()
    cl.check_eq(describe(a, "topic", topic)["retention.ms"].value, "7200000", "retention.ms after alter_configs")

    missing = ConfigResource("topic", cl.topic_name("confluent", "no-such-topic"))
    expect_error(a.describe_configs([missing], request_timeout=60)[missing], KafkaError.UNKNOWN_TOPIC_OR_PART,
                 "describe_configs of a missing topic")

    broker_cfg = describe(a, "broker", str(bid))
    cl.check(len(broker_cfg) > 0, f"describe_configs of broker {bid} returned nothing")

    if hasattr(a, "incremental_alter_configs"):
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
        res = ConfigResource("topic", topic, incremental_configs=[
            ConfigEntry("retention.ms", "10800000", incremental_operation=AlterConfigOpType.SET)])
        a.incremental_alter_configs([res])[res].result()
        cl.check_eq(describe(a, "topic", topic)["retention.ms"].value, "10800000",
                    "retention.ms after incremental_alter_configs")
        return "incremental_alter_configs checked"
    msg = (f"SKIPPED incremental_alter_configs: confluent-kafka {ck.version()[0]} has no "
           f"AdminClient.incremental_alter_configs (added in 2.2.0)")
    skipped.append(msg)
    print("   " + msg)
    return "incremental_alter_configs skipped"


def step_create_partitions():
    a = admin()
    a.create_partitions([NewPartitions(topic, 4)], operation_timeout=30, request_timeout=60)[topic].result()
    wait_metadata(a, lambda md: partitions_ready(md, topic, 4), f"{topic} with 4 partitions")
    expect_error(a.create_partitions([NewPartitions(topic, 2)], request_timeout=60)[topic],
                 KafkaError.INVALID_PARTITIONS, "shrinking to 2 partitions")


def make_records():
    r = random.Random("confluent")
    recs = []
    for codec in CODECS:
        for i in range(PER_CODEC):
            n = len(recs)
            key = None if i % 40 == 0 else b"" if i % 40 == 1 else f"k-{codec}-{i}-".encode() + r.randbytes(i % 9)
            value = None if i % 97 == 5 else cl.payload(f"confluent-{codec}", i, max_len=3000)
            # No null header values: Message.headers() in confluent-kafka < 1.8.2 drops a reference to None for
            # them and crashes the interpreter (confluent-kafka-python issue #1191); librdkafka_test and
            # kcat_test cover null header values.
            headers = None if i % 5 == 0 else [("seq", str(i).encode()), ("dup", b"a"), ("dup", b"b"),
                                               ("bin", r.randbytes(12)), ("empty", b"")]
            part = None if i % 4 == 3 else i % 4
            recs.append({"label": f"{codec}#{i}", "codec": codec, "key": key, "value": value,
                         "headers": headers, "ts": base_ts + n, "partition": part})
    return recs


def step_produce():
    recs = make_records()
    by_partition = {}
    for codec in CODECS:
        reports = []
        p = Producer({"bootstrap.servers": bs, "compression.type": codec, "acks": "all", "linger.ms": 5,
                      "message.timeout.ms": 60000, "batch.num.messages": 200})
        for rec in (x for x in recs if x["codec"] == codec):
            def on_delivery(err, msg, rec=rec):
                reports.append((rec, err, msg.partition(), msg.offset()))
            kwargs = {"key": rec["key"], "value": rec["value"], "timestamp": rec["ts"], "on_delivery": on_delivery}
            if rec["headers"] is not None:
                kwargs["headers"] = rec["headers"]
            if rec["partition"] is not None:
                kwargs["partition"] = rec["partition"]
            while True:
                try:
                    p.produce(topic, **kwargs)
                    break
                except BufferError:
                    p.poll(0.1)
            p.poll(0)
        left = p.flush(120)
        cl.check_eq(left, 0, f"{codec}: messages still queued after flush")
        cl.check_eq(len(reports), PER_CODEC, f"{codec}: delivery reports")
        for rec, err, part, off in reports:
            cl.check(err is None, f"{rec['label']}: delivery failed: {err}")
            if rec["partition"] is not None:
                cl.check_eq(part, rec["partition"], f"{rec['label']}: partition")
            lst = by_partition.setdefault(part, [])
            cl.check_eq(off, len(lst), f"{rec['label']}: delivery-report offset in partition {part}")
            rec["offset"] = off
            lst.append(rec)
    state["by_partition"] = by_partition
    return f"{len(recs)} records in partitions " + ", ".join(f"{k}: {len(v)}" for k, v in sorted(by_partition.items()))


def consumer():
    return Consumer({"bootstrap.servers": bs, "group.id": cl.topic_name("confluent", "assign-only"),
                     "enable.auto.commit": False, "enable.auto.offset.store": False, "enable.partition.eof": True,
                     "auto.offset.reset": "error", "check.crcs": True, "fetch.wait.max.ms": 100})


def consume(want, starts):
    """assign() each partition at starts[p] (an offset or OFFSET_BEGINNING); checks every record of want[p]."""
    c = consumer()
    c.assign([TopicPartition(topic, p, off) for p, off in sorted(starts.items())])
    cur = cl.Cursor(topic, want)
    while not cur.done():
        for m in c.consume(num_messages=500, timeout=1.0):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    cur.end_of_partition(m.partition(), m.offset())
                    continue
                cl.fail(f"consume error: {m.error()}")
            rec, at = cur.next(m.partition(), m.offset())
            cl.check_bytes(m.key(), rec["key"], f"{at}: key")
            cl.check_bytes(m.value(), rec["value"], f"{at}: value")
            cl.check_eq(m.headers(), rec["headers"], f"{at}: headers")
            cl.check_eq(m.timestamp(), (ck.TIMESTAMP_CREATE_TIME, rec["ts"]), f"{at}: (timestamp type, timestamp)")
    c.close()
    return cur.count()


def step_consume_from_beginning():
    bp = state["by_partition"]
    return f"{consume(bp, {p: ck.OFFSET_BEGINNING for p in bp})} records checked"


def step_consume_from_offsets():
    bp = state["by_partition"]
    starts = {p: len(v) // 2 for p, v in bp.items()}
    n = consume({p: bp[p][starts[p]:] for p in bp}, starts)
    return f"{n} records from the middle of each partition"


def step_offsets_for_times_and_watermarks():
    bp = state["by_partition"]
    c = consumer()
    for p, recs in sorted(bp.items()):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)
        cl.check_eq((lo, hi), (0, len(recs)), f"get_watermark_offsets of partition {p}")
        # One query per call: a ListOffsets request may name each partition only once.
        for ts, want in cl.timestamp_queries(recs, none=-1):
            tp = c.offsets_for_times([TopicPartition(topic, p, ts)], timeout=30)[0]
            cl.check(tp.error is None, f"offsets_for_times {p}/{ts}: {tp.error}")
            cl.check_offset_for_time(f"offsets_for_times partition {p} timestamp {ts}", tp.offset, want)
    c.close()


def step_delete_records():
    a = admin()
    if not hasattr(a, "delete_records"):
        msg = (f"SKIPPED delete_records: confluent-kafka {ck.version()[0]} has no AdminClient.delete_records "
               f"(added in 2.4.0); librdkafka_test covers DeleteRecords")
        skipped.append(msg)
        print("   " + msg)
        return "skipped"
    recs = state["by_partition"][0]
    futs = a.delete_records([TopicPartition(topic, 0, 100)], request_timeout=60)
    res = list(futs.values())[0].result()
    cl.check_eq(getattr(res, "low_watermark", getattr(res, "offset", None)), 100, "low watermark after delete")
    c = consumer()
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30, cached=False)
    c.close()
    cl.check_eq((lo, hi), (100, len(recs)), "watermarks after delete_records")
    consume({0: recs[100:]}, {0: ck.OFFSET_BEGINNING})


def step_delete_topics():
    a = admin()
    a.delete_topics([topic], operation_timeout=30, request_timeout=60)[topic].result()
    wait_metadata(a, lambda md: topic not in md.topics, f"deletion of {topic}")
    expect_error(a.delete_topics([topic], request_timeout=60)[topic], KafkaError.UNKNOWN_TOPIC_OR_PART,
                 "deleting it again")


if __name__ == "__main__":
    rc = cl.run_steps("confluent-kafka", [
        ("the broker is reachable", step_reachable),
        ("create_topics (configs, validate_only, already exists)", step_create_topics),
        ("list_topics", step_list_topics),
        ("describe_configs and alter_configs", step_configs),
        ("create_partitions", step_create_partitions),
        (f"produce {PER_CODEC} records with each codec", step_produce),
        ("consume from the beginning with assign()", step_consume_from_beginning),
        ("consume from absolute offsets with assign()", step_consume_from_offsets),
        ("offsets_for_times and get_watermark_offsets", step_offsets_for_times_and_watermarks),
        ("delete_records", step_delete_records),
        ("delete_topics", step_delete_topics),
    ])
    for s in skipped:
        print(s)
    sys.exit(rc)
