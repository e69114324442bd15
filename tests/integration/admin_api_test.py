#!/usr/bin/python3
"""The admin REST API against a real brokerd, with real Kafka traffic from confluent-kafka (librdkafka):
brokers, cluster health, topics, partitions, groups with lag (checked against the client's own committed
offsets and watermarks), cluster_config (schema, validation errors naming keys, live effect, persistence
across a restart), loggers, plugins, node_config, /metrics per topic and per group (Prometheus's parser),
and authentication (bearer token and basic).

    admin_api_test.py BROKERD PLUGIN_DIR
"""

import base64
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from adminlib import Broker, check, failures, get_json, request

brokerd, plugin_dir = sys.argv[1], sys.argv[2]


def produce(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(n):
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i)
    check(p.flush(30) == 0, f"{n} records produced to {topic}")


def consume_and_commit(bootstrap, topic, group, n):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got = 0
    next_offset = {p: 0 for p in range(3)}
    deadline = time.time() + 60
    while got < n and time.time() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        got += 1
        next_offset[m.partition()] = m.offset() + 1
    # Every partition gets a commit, 0 where nothing was read, so every one has a lag.
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in next_offset.items()], asynchronous=False)
    check(got == n, f"group {group} consumed {n} records (got {got})")
    return c


def test_topics_and_groups(b):
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    fs = admin.create_topics([NewTopic("orders", num_partitions=3, replication_factor=1)])
    fs["orders"].result(30)
    produce(b.bootstrap, "orders", 30)
    c = consume_and_commit(b.bootstrap, "orders", "billing", 20)

    brokers = get_json(b.port, "/v1/brokers")
    check(isinstance(brokers, list) and len(brokers) == 1, f"one broker: {brokers}")
    br = brokers[0]
    check(br["node_id"] == 0 and br["port"] == b.kafka_port and br["host"] == "127.0.0.1", f"broker address: {br}")
    check(br["shards"] == 2 and br["version"] and br["uptime_ms"] >= 0 and br["is_alive"], f"broker facts: {br}")
    check({"storage", "kafka", "admin_http"} <= set(br["plugins"]), f"broker plugins: {br['plugins']}")
    check(get_json(b.port, "/v1/brokers/0")["node_id"] == 0, "/v1/brokers/0")
    check(request(b.port, "/v1/brokers/9")[0] == 404, "unknown broker id: 404")
    check(request(b.port, "/v1/brokers/x")[0] == 400, "non-numeric broker id: 400")

    health = get_json(b.port, "/v1/cluster/health")
    check(health["is_healthy"] and health["nodes_down"] == [] and health["leaderless_count"] == 0, f"health: {health}")

    topics = {t["name"]: t for t in get_json(b.port, "/v1/topics")}
    check("orders" in topics and topics["orders"]["partition_count"] == 3 and topics["orders"]["messages"] == 30,
          f"/v1/topics: {topics.get('orders')}")
    check(topics.get("__consumer_offsets", {}).get("internal") is True, "the offsets topic is internal")
    t = get_json(b.port, "/v1/topics/orders")
    check(len(t["partitions"]) == 3 and sum(p["high_watermark"] for p in t["partitions"]) == 30,
          f"/v1/topics/orders partitions: {t['partitions']}")
    check(all(p["leader"] == 0 and p["replicas"] == [0] and p["size_bytes"] > 0 for p in t["partitions"]
              if p["high_watermark"] > 0), "partition leaders, replicas and sizes")
    configs = {cfg["name"]: cfg for cfg in t["configs"]}
    check(configs.get("retention.ms", {}).get("source") == "default", f"topic configs: {configs.get('retention.ms')}")
    status, _, body = request(b.port, "/v1/topics/nope")
    check(status == 404 and json.loads(body)["code"] == 404, f"unknown topic: {status} {body!r}")

    # Watermarks as the client sees them, per partition.
    hw = {}
    for p in range(3):
        lo, hi = c.get_watermark_offsets(TopicPartition("orders", p), timeout=10)
        hw[p] = hi
        part = get_json(b.port, f"/v1/partitions/orders/{p}")
        check(part["high_watermark"] == hi and part["log_start_offset"] == lo and part["topic"] == "orders",
              f"/v1/partitions/orders/{p} agrees with the client's watermarks ({lo}, {hi}): {part}")
    check(request(b.port, "/v1/partitions/orders/3")[0] == 404, "partition out of range: 404")
    check(request(b.port, "/v1/partitions/orders/x")[0] == 400, "non-numeric partition: 400")

    committed = {tp.partition: tp.offset for tp in c.committed([TopicPartition("orders", p) for p in range(3)],
                                                                 timeout=10)}
    groups = {g["group_id"]: g for g in get_json(b.port, "/v1/groups")}
    check("billing" in groups and groups["billing"]["protocol_type"] == "consumer", f"/v1/groups: {groups}")
    g = get_json(b.port, "/v1/groups/billing")
    check(g["state"] == "Stable" and len(g["members"]) == 1, f"group state and members: {g['state']} {g['members']}")
    assigned = {(a["topic"], a["partition"]) for a in g["members"][0]["assignments"]} if g["members"] else set()
    check(assigned == {("orders", 0), ("orders", 1), ("orders", 2)}, f"the member's assignment: {assigned}")
    rows = {o["partition"]: o for o in g["offsets"] if o["topic"] == "orders"}
    total = 0
    for p in range(3):
        row = rows.get(p)
        want_committed = committed[p] if committed[p] >= 0 else None
        if not check(row is not None, f"group offsets row for orders-{p}"):
            continue
        check(row["committed_offset"] == want_committed and row["high_watermark"] == hw[p],
              f"orders-{p}: committed {row['committed_offset']} vs client {want_committed}, hw {row['high_watermark']}"
              f" vs {hw[p]}")
        want_lag = hw[p] - want_committed if want_committed is not None else None
        check(row["lag"] == want_lag, f"orders-{p} lag {row['lag']}, expected {want_lag}")
        total += want_lag or 0
    check(g["total_lag"] == total == 10, f"total lag {g['total_lag']} (expected {total} == 10)")
    check(request(b.port, "/v1/groups/nope")[0] == 404, "unknown group: 404")
    # Group ids may hold '/': an encoded one stays inside its path segment.
    consume_and_commit(b.bootstrap, "orders", "team/a", 5).close()
    g = get_json(b.port, "/v1/groups/team%2Fa")
    check(g is not None and g["group_id"] == "team/a", f"/v1/groups/team%2Fa: {g}")

    # The same lag through /metrics, read by Prometheus's parser.
    status, _, body = request(b.port, "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    lag = families.get("sluice_kafka_group_lag")
    values = {(s.labels["group"], s.labels["topic"]): s.value for s in lag.samples} if lag else {}
    check(values.get(("billing", "orders")) == 10, f"sluice_kafka_group_lag{{group=billing,topic=orders}}: {values}")
    bytes_in = families.get("sluice_kafka_topic_bytes_in")
    records = {s.labels["topic"]: s.value for s in families["sluice_kafka_topic_records_in"].samples
               if s.name.endswith("_total")} if "sluice_kafka_topic_records_in" in families else {}
    check(bytes_in is not None and records.get("orders") == 30, f"records in per topic: {records}")
    out = families.get("sluice_kafka_topic_bytes_out")
    check(out is not None and any(s.labels.get("topic") == "orders" and s.value > 0 for s in out.samples),
          "bytes out per topic")
    # The core's per-shard loop metrics and storage's latency histograms.
    for name in ("sluice_core_reactor_busy_us", "sluice_core_io_submissions", "sluice_core_io_completions",
                 "sluice_core_channel_messages"):
        fam = families.get(name)
        shards = {s.labels.get("shard"): s.value for s in fam.samples} if fam else {}
        check(fam is not None and fam.type == "counter" and set(shards) == {"0", "1"} and sum(shards.values()) > 0,
              f"{name} per shard: {shards}")
    depth = families.get("sluice_core_channel_queue_depth")
    check(depth is not None and depth.type == "gauge", "channel queue depth gauge")
    for name in ("sluice_storage_flush_latency_us", "sluice_storage_read_latency_us"):
        fam = families.get(name)
        count = [s.value for s in fam.samples if s.name.endswith("_count")] if fam else []
        check(fam is not None and fam.type == "histogram" and count and count[0] > 0, f"{name} recorded: {count}")
    errors = families.get("sluice_kafka_request_errors")
    check(errors is not None and any(s.labels.get("api") == "Produce" for s in errors.samples),
          "errors per API are exposed")
    c.close()


def test_cluster_config(b):
    values = get_json(b.port, "/v1/cluster_config")
    schema = get_json(b.port, "/v1/cluster_config/schema")
    check(set(values) == set(schema), f"schema covers every setting: {set(values) ^ set(schema)}")
    for k, s in schema.items():
        check({"type", "default", "needs_restart", "description"} <= set(s), f"schema of {k}: {s}")
    check(schema["num_partitions"]["needs_restart"] is False and schema["max_request_bytes"]["needs_restart"],
          "schema says which settings need a restart")

    status, _, body = request(b.port, "/v1/cluster_config", "PUT",
                              {"upsert": {"num_partitions": 0, "nope": 1, "log_cleanup_policy": "shred"}})
    err = json.loads(body)
    check(status == 400 and set(err.get("errors", {})) == {"num_partitions", "nope", "log_cleanup_policy"}
          and "num_partitions" in err["message"], f"validation errors name every bad key: {status} {err}")
    check(get_json(b.port, "/v1/cluster_config") == values, "nothing applied from a refused PUT")
    status, _, body = request(b.port, "/v1/cluster_config", "PUT", b"{not json")
    check(status == 400 and json.loads(body)["code"] == 400, f"malformed JSON: {status} {body!r}")
    status, _, body = request(b.port, "/v1/cluster_config?dry_run=true", "PUT", {"upsert": {"num_partitions": 5}})
    check(status == 200 and json.loads(body)["dry_run"] is True, f"dry run: {status} {body!r}")
    check(get_json(b.port, "/v1/cluster_config")["num_partitions"] == values["num_partitions"], "dry run applies nothing")

    status, _, body = request(b.port, "/v1/cluster_config", "PUT",
                              {"upsert": {"num_partitions": 4, "log_retention_ms": 3600000,
                                          "max_request_bytes": "2000000"}})
    res = json.loads(body)
    check(status == 200 and res["restart_required"] == ["max_request_bytes"], f"PUT: {status} {res}")
    check(res["applied"] == {"num_partitions": 4, "log_retention_ms": 3600000, "max_request_bytes": 2000000},
          f"applied values are typed like GET's: {res['applied']}")
    # Live: the next auto-created topic gets 4 partitions; topic defaults follow the cluster value.
    produce(b.bootstrap, "auto-four", 1)
    check(get_json(b.port, "/v1/topics/auto-four")["partition_count"] == 4, "num_partitions applies without restart")
    configs = {cfg["name"]: cfg for cfg in get_json(b.port, "/v1/topics/orders")["configs"]}
    check(configs["retention.ms"] == {"name": "retention.ms", "value": "3600000", "source": "cluster"},
          f"retention.ms from the cluster setting: {configs['retention.ms']}")

    # Persisted: a restart keeps the values.
    b.stop()
    b.start()
    after = get_json(b.port, "/v1/cluster_config")
    check(after["num_partitions"] == 4 and after["log_retention_ms"] == 3600000 and after["max_request_bytes"] == 2000000,
          f"cluster_config survives a restart: {after}")
    status, _, body = request(b.port, "/v1/cluster_config", "PUT", {"remove": ["num_partitions", "log_retention_ms"]})
    check(status == 200, f"remove: {status} {body!r}")
    after = get_json(b.port, "/v1/cluster_config")
    check(after["num_partitions"] == values["num_partitions"] and after["log_retention_ms"] == values["log_retention_ms"],
          f"removed settings are back to the YAML's: {after}")


def test_host_routes(b):
    loggers = {l["name"]: l["level"] for l in get_json(b.port, "/v1/loggers")}
    check({"sluice", "storage", "kafka", "admin_http"} <= set(loggers), f"loggers: {loggers}")
    status, _, body = request(b.port, "/v1/loggers/kafka", "PUT", {"level": "debug"})
    check(status == 200 and json.loads(body) == {"name": "kafka", "level": "debug"}, f"PUT logger: {status} {body!r}")
    check(get_json(b.port, "/v1/loggers/kafka")["level"] == "debug", "the level changed")
    check(request(b.port, "/v1/loggers/nope", "PUT", {"level": "info"})[0] == 404, "unknown logger: 404")
    check(request(b.port, "/v1/loggers/kafka", "PUT", {"level": "loud"})[0] == 400, "unknown level: 400")
    check(request(b.port, "/v1/loggers/kafka", "PUT", b"[")[0] == 400, "malformed logger body: 400")
    request(b.port, "/v1/loggers/kafka", "PUT", {"level": "info"})

    plugins = {p["name"]: p for p in get_json(b.port, "/v1/plugins")}
    check(list(plugins) == ["storage", "kafka", "admin_http"], f"plugins in load order: {list(plugins)}")
    check(all(p["abi_version"].startswith("1.") and p["version"] for p in plugins.values()), "plugin versions")
    check("GET /v1/topics" in plugins["kafka"]["routes"] and "kafka.admin" in plugins["kafka"]["services"],
          f"kafka's routes and services: {plugins['kafka']['routes']} {plugins['kafka']['services']}")
    check(plugins["kafka"]["dependencies"] == ["storage"], "dependencies")

    nc = get_json(b.port, "/v1/node_config")
    check(nc["node"]["shards"] == 2 and [p["name"] for p in nc["plugins"]] == ["storage", "kafka", "admin_http"],
          f"node_config: {nc}")
    status, headers, body = request(b.port, "/v1/topics", "DELETE")
    check(status == 405 and "GET" in headers.get("Allow", ""), f"DELETE /v1/topics: {status} {headers.get('Allow')}")


def test_auth():
    b = Broker(brokerd, plugin_dir, admin_yaml="      auth:\n        bearer_token: s3cret-token\n"
                                               "        basic: { username: ops, password: pa55 }\n")
    try:
        check(request(b.port, "/v1/status/ready")[0] == 200, "probes stay open with auth on")
        status, headers, body = request(b.port, "/v1/topics")
        check(status == 401 and "WWW-Authenticate" in headers and json.loads(body)["code"] == 401,
              f"no credentials: {status} {body!r}")
        check(request(b.port, "/metrics")[0] == 401, "/metrics needs credentials too")
        check(request(b.port, "/v1/topics", headers={"Authorization": "Bearer s3cret-token"})[0] == 200, "bearer")
        check(request(b.port, "/v1/topics", headers={"Authorization": "Bearer wrong"})[0] == 401, "wrong bearer")
        basic = base64.b64encode(b"ops:pa55").decode()
        check(request(b.port, "/v1/topics", headers={"Authorization": "Basic " + basic})[0] == 200, "basic")
        bad = base64.b64encode(b"ops:nope").decode()
        check(request(b.port, "/v1/topics", headers={"Authorization": "Basic " + bad})[0] == 401, "wrong password")
        nc = get_json(b.port, "/v1/node_config", headers={"Authorization": "Bearer s3cret-token"})
        text = json.dumps(nc)
        check("s3cret-token" not in text and "pa55" not in text and "[redacted]" in text,
              "node_config redacts the secrets")
    finally:
        b.close()


def main():
    b = Broker(brokerd, plugin_dir)
    try:
        if b.port is None:
            return
        test_topics_and_groups(b)
        test_host_routes(b)
        test_cluster_config(b)
    finally:
        b.close()
    test_auth()


if __name__ == "__main__":
    main()
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)
