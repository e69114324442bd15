#!/usr/bin/python3
"""Every sluice command against a real broker (cmd/sluice, docs/CLI.md).

    run_with_broker.py --plugins storage,kafka,admin_http -- cli_test.py --sluice build/.../bin/sluice

Checks each command's effect through the CLI itself (--json output parsed), the
documented exit codes (0, 1 with Kafka's error name, 2 for usage errors naming
the flag, 3 for unreachable brokers or admin API, 4 for unknown topics, groups
and settings), the admin API commands against the admin API (read with curl as
well), and the address resolution (flags, environment, profile file).
"""

import json
import os
import signal
import time

import clilib as cl
from clilib import check, check_eq, fail

cli = cl.Cli()
BROKER_ID = int(os.environ.get("SLUICE_BROKER_ID", "1"))
T = "cli-orders"  # the topic most tests share, created by test_topic_create


def test_help_and_usage_errors():
    out, _ = cli.run("--help")
    check("Exit codes:" in out and "topic" in out, f"sluice --help: {out[:500]}")
    out, _ = cli.run("consume", "--help")
    check("Examples:" in out and "--exit-at-end" in out, "sluice consume --help lacks examples or flags")
    _, err = cli.run("topic", "create", T, "--bogus", expect=2)
    check("--bogus" in err, f"the usage error does not name the flag: {err}")
    _, err = cli.run("topic", "nope", expect=2)
    check("nope" in err, f"the usage error does not name the command: {err}")
    _, err = cli.run("topic", "create", T, "-p", "many", expect=2)
    check("--partitions" in err and "many" in err, f"bad value error: {err}")
    _, err = cli.run("consume", T, "--offset", "yesterday", expect=2)
    check("--offset" in err, f"bad --offset error: {err}")


def test_topic_create():
    res = cli.json("topic", "create", T, "-p", "3", "-c", "retention.ms=86400000")
    check_eq(res, [{"name": T, "error": None, "message": None}], "topic create --json")
    # The same topic again: exit 1 with Kafka's error name.
    _, err = cli.run("topic", "create", T, expect=1)
    check("TOPIC_ALREADY_EXISTS" in err, f"creating an existing topic: {err}")
    # --dry-run creates nothing.
    out, _ = cli.run("topic", "create", "cli-dry", "-p", "2", "--dry-run")
    check("would create" in out, f"dry run output: {out}")
    names = [t["name"] for t in cli.json("topic", "list")]
    check("cli-dry" not in names, f"--dry-run created the topic: {names}")
    # Several at once, default partition count (the harness's num_partitions: 1).
    cli.run("topic", "create", "cli-a", "cli-b")


def test_topic_list():
    topics = {t["name"]: t for t in cli.json("topic", "list")}
    check(T in topics and "cli-a" in topics, f"topic list: {sorted(topics)}")
    check_eq(topics[T]["partition_count"], 3, "partitions of " + T)
    check_eq(topics[T]["replication_factor"], 1, "replication factor of " + T)
    check_eq(topics["cli-a"]["partition_count"], 1, "partitions of cli-a (the broker default)")
    check("__consumer_offsets" not in topics, "internal topics are listed without --internal")
    internal = {t["name"]: t for t in cli.json("topic", "list", "--internal")}
    check(internal.get("__consumer_offsets", {}).get("internal") is True, "topic list -i lacks __consumer_offsets")
    out, _ = cli.run("topic", "list")
    lines = out.splitlines()
    check(lines[0].split() == ["NAME", "PARTITIONS", "REPLICAS"], f"table header: {lines[0]!r}")
    check(any(line.split() == [T, "3", "1"] for line in lines), f"table row for {T}: {out}")


def test_topic_describe():
    d = cli.json("topic", "describe", T)
    check_eq(d["name"], T, "name")
    check_eq(len(d["partitions"]), 3, "partitions")
    for i, p in enumerate(d["partitions"]):
        check_eq(p["partition"], i, "partition number")
        check_eq(p["leader"], BROKER_ID, f"leader of partition {i}")
        check_eq(p["replicas"], [BROKER_ID], f"replicas of partition {i}")
        check_eq((p["log_start_offset"], p["high_watermark"]), (0, 0), f"offsets of empty partition {i}")
    configs = {c["name"]: c for c in d["configs"]}
    check_eq(configs.get("retention.ms", {}).get("value"), "86400000", "retention.ms set at creation")
    check_eq(configs["retention.ms"]["source"], "topic", "source of retention.ms")
    check("cleanup.policy" in configs, f"configs lack cleanup.policy: {sorted(configs)}")
    out, _ = cli.run("topic", "describe", T)
    check("HIGH-WATERMARK" in out and "retention.ms" in out, f"human describe: {out}")
    _, err = cli.run("topic", "describe", "cli-no-such-topic", expect=4)
    check("cli-no-such-topic" in err and "does not exist" in err, f"unknown topic message: {err}")


def test_produce_and_consume():
    lines = [f"k{i}:value {i}" for i in range(10)]
    res = cli.json("produce", T, "-p", "1", "--key-delimiter", ":", "-H", "source=cli", "-H", "n=1",
                   input="\n".join(lines) + "\n")
    check_eq(res["produced"], 10, "produced")
    check_eq(res["failed"], 0, "failed")
    check_eq([(r["partition"], r["offset"]) for r in res["records"]], [(1, i) for i in range(10)], "records")
    # --verbose names partition and offset for each record.
    out, _ = cli.run("produce", T, "-p", "2", "--key", "fixed", "--verbose", "--acks", "1", input="a\nb\n")
    check_eq(out.splitlines(), [f"produced to {T} partition 2 at offset 0", f"produced to {T} partition 2 at offset 1"],
             "produce --verbose")
    # --file, and a line without the delimiter has no key.
    path = os.path.join(cli.home.name, "records.txt")
    with open(path, "w") as f:
        f.write("nokey\nx:y\n")
    cli.run("produce", T, "-p", "0", "--file", path, "--key-delimiter", ":")

    recs = [json.loads(line) for line in cli.run("consume", T, "-p", "1", "-e", "--format", "json")[0].splitlines()]
    check_eq([(r["key"], r["value"], r["offset"]) for r in recs], [(f"k{i}", f"value {i}", i) for i in range(10)],
             "consumed partition 1")
    check_eq(recs[0]["headers"], [{"key": "source", "value": "cli"}, {"key": "n", "value": "1"}], "headers")
    check_eq(recs[0]["topic"], T, "topic")
    check(recs[0]["timestamp"] > 1_600_000_000_000, f"timestamp: {recs[0]['timestamp']}")
    recs = [json.loads(line) for line in cli.run("consume", T, "-p", "0", "-e", "--json")[0].splitlines()]
    check_eq([(r["key"], r["value"]) for r in recs], [(None, "nokey"), ("x", "y")], "partition 0 (--json)")

    # Raw values of every partition with --exit-at-end.
    out, _ = cli.run("consume", T, "-e")
    check_eq(sorted(out.splitlines()), sorted(["a", "b", "nokey", "y"] + [f"value {i}" for i in range(10)]),
             "consume -e (raw)")
    # Templates.
    out, _ = cli.run("consume", T, "-p", "2", "-e", "--format", "%k=%v@%p:%o")
    check_eq(out.splitlines(), ["fixed=a@2:0", "fixed=b@2:1"], "template")
    # -N from the end, N absolute, -n limit.
    out, _ = cli.run("consume", T, "-p", "1", "-e", "--offset", "-3", "--format", "%o")
    check_eq(out.splitlines(), ["7", "8", "9"], "--offset -3")
    out, _ = cli.run("consume", T, "-p", "1", "-e", "--offset", "8", "--format", "%o")
    check_eq(out.splitlines(), ["8", "9"], "--offset 8")
    out, _ = cli.run("consume", T, "-p", "1", "-n", "4", "--format", "%o")
    check_eq(out.splitlines(), ["0", "1", "2", "3"], "-n 4")
    out, _ = cli.run("consume", T, "-p", "1", "-e", "--offset", "latest")
    check_eq(out, "", "--offset latest -e")
    # --timestamp: records at or after it (all of them here), none for a time in the future.
    out, _ = cli.run("consume", T, "-p", "1", "-e", "--timestamp", str(recs[0]["timestamp"] - 60_000), "--format", "%o")
    check_eq(len(out.splitlines()), 10, "--timestamp before the records")
    out, _ = cli.run("consume", T, "-p", "1", "-e", "--timestamp", str(int(time.time() * 1000) + 3_600_000))
    check_eq(out, "", "--timestamp in the future")
    # Unknown topic and partition: exit 4.
    _, err = cli.run("consume", "cli-no-such-topic", "-e", expect=4)
    check("does not exist" in err, err)
    _, err = cli.run("consume", T, "-p", "7", "-e", expect=4)
    check("partition 7" in err, err)

    d = cli.json("topic", "describe", T)
    check_eq([p["high_watermark"] for p in d["partitions"]], [2, 10, 2], "high watermarks after producing")


def test_topic_alter_config():
    res = cli.json("topic", "alter-config", T, "--set", "retention.ms=3600000", "--set", "cleanup.policy=delete")
    check_eq(res["set"], {"retention.ms": "3600000", "cleanup.policy": "delete"}, "alter-config --json")
    configs = {c["name"]: c for c in cli.json("topic", "describe", T)["configs"]}
    check_eq((configs["retention.ms"]["value"], configs["retention.ms"]["source"]), ("3600000", "topic"),
             "retention.ms after --set")
    cli.run("topic", "alter-config", T, "--delete", "retention.ms")
    configs = {c["name"]: c for c in cli.json("topic", "describe", T)["configs"]}
    check(configs["retention.ms"]["source"] != "topic", f"retention.ms after --delete: {configs['retention.ms']}")
    check_eq(configs["cleanup.policy"]["source"], "topic", "the other override stays (incremental)")
    # --dry-run changes nothing.
    cli.run("topic", "alter-config", T, "--set", "retention.ms=1000", "--dry-run")
    configs = {c["name"]: c for c in cli.json("topic", "describe", T)["configs"]}
    check(configs["retention.ms"]["value"] != "1000", "--dry-run applied the change")
    _, err = cli.run("topic", "alter-config", T, "--set", "no.such.config=1", expect=1)
    check("INVALID_CONFIG" in err, f"unknown config: {err}")
    _, err = cli.run("topic", "alter-config", "cli-no-such-topic", "--set", "retention.ms=1", expect=4)
    _, err = cli.run("topic", "alter-config", T, expect=2)


def test_topic_add_partitions():
    cli.run("topic", "add-partitions", "cli-a", "--total", "4")
    check_eq(len(cli.json("topic", "describe", "cli-a")["partitions"]), 4, "partitions after add-partitions")
    _, err = cli.run("topic", "add-partitions", "cli-a", "--total", "2", expect=1)
    check("INVALID_PARTITIONS" in err, f"shrinking: {err}")
    cli.run("topic", "add-partitions", "cli-a", "--total", "4", expect=1)
    cli.run("topic", "add-partitions", "cli-a", expect=2)
    cli.run("topic", "add-partitions", "cli-no-such-topic", "--total", "3", expect=4)


def test_topic_trim():
    res = cli.json("topic", "trim", T, "-p", "1", "--offset", "4")
    check_eq(res["partitions"], [{"partition": 1, "log_start_offset": 4}], "trim --json")
    d = cli.json("topic", "describe", T)
    check_eq((d["partitions"][1]["log_start_offset"], d["partitions"][1]["high_watermark"]), (4, 10), "after trim")
    out, _ = cli.run("consume", T, "-p", "1", "-e", "--format", "%o")
    check_eq(out.splitlines()[0], "4", "first offset after trim")
    res = cli.json("topic", "trim", "cli-b", "-p", "all", "--offset", "end")
    check_eq(res["partitions"], [{"partition": 0, "log_start_offset": 0}], "trim an empty topic to its end")
    _, err = cli.run("topic", "trim", T, "-p", "1", "--offset", "99", expect=1)
    check("OFFSET_OUT_OF_RANGE" in err, f"trim past the end: {err}")
    cli.run("topic", "trim", T, "--offset", "1", expect=2)
    cli.run("topic", "trim", "cli-no-such-topic", "-p", "all", "--offset", "1", expect=4)


def test_groups():
    G = "cli-group"
    cli.run("produce", "cli-b", input="".join(f"r{i}\n" for i in range(6)))
    out, _ = cli.run("consume", "cli-b", "--group", G, "-n", "4")
    check_eq(out.splitlines(), [f"r{i}" for i in range(4)], "consume --group -n 4")
    groups = {g["group_id"]: g for g in cli.json("group", "list")}
    check_eq(groups.get(G, {}).get("state"), "Empty", "state of the group after the consumer left")
    d = cli.json("group", "describe", G)
    check_eq(d["state"], "Empty", "describe state")
    check_eq([(o["topic"], o["partition"], o["committed_offset"], o["high_watermark"], o["lag"]) for o in d["offsets"]],
             [("cli-b", 0, 4, 6, 2)], "offsets")
    check_eq(d["total_lag"], 2, "total lag")
    # The same group resumes from its committed offset.
    out, _ = cli.run("consume", "cli-b", "--group", G, "-e")
    check_eq(out.splitlines(), ["r4", "r5"], "second consume of the group")
    check_eq(cli.json("group", "describe", G)["total_lag"], 0, "lag after reading to the end")
    out, _ = cli.run("group", "describe", G)
    check("TOTAL-LAG" in out and "COMMITTED-OFFSET" in out, out)

    # seek: earliest, an offset, latest, a timestamp; --dry-run commits nothing.
    res = cli.json("group", "seek", G, "--topic", "cli-b", "--to", "earliest")
    check_eq(res["offsets"], [{"topic": "cli-b", "partition": 0, "offset": 0}], "seek earliest")
    check_eq(cli.json("group", "describe", G)["total_lag"], 6, "lag after seek earliest")
    cli.run("group", "seek", G, "--topic", "cli-b", "--to", "3")
    check_eq(cli.json("group", "describe", G)["offsets"][0]["committed_offset"], 3, "after seek 3")
    res = cli.json("group", "seek", G, "--topic", "cli-b", "--to", "latest", "--dry-run")
    check_eq(res["offsets"][0]["offset"], 6, "seek latest --dry-run")
    check_eq(cli.json("group", "describe", G)["offsets"][0]["committed_offset"], 3, "--dry-run committed")
    cli.run("group", "seek", G, "--topic", "cli-b", "--to", f"timestamp:{int(time.time() * 1000) + 3_600_000}")
    check_eq(cli.json("group", "describe", G)["offsets"][0]["committed_offset"], 6, "seek to a future timestamp")
    cli.run("group", "seek", G, "--topic", "cli-b", "--to", "timestamp:0")
    check_eq(cli.json("group", "describe", G)["offsets"][0]["committed_offset"], 0, "seek to timestamp 0")
    cli.run("group", "seek", G, "--topic", "cli-no-such-topic", "--to", "earliest", expect=4)
    cli.run("group", "seek", G, "--topic", "cli-b", "--to", "sometime", expect=2)
    cli.run("group", "seek", G, "--to", "earliest", expect=2)

    # A live member: seek and delete are refused (exit 1) until it leaves.
    live = cli.popen("consume", "cli-b", "--group", G)
    try:
        cl.wait_until(lambda: cli.json("group", "describe", G)["members"], "the background consumer joins")
        d = cli.json("group", "describe", G)
        check_eq(d["state"], "Stable", "state with a member")
        check_eq(d["offsets"][0]["member_id"], d["members"][0]["member_id"], "the partition's owner")
        _, err = cli.run("group", "seek", G, "--topic", "cli-b", "--to", "earliest", expect=1)
        check("stop its consumers" in err, err)
        _, err = cli.run("group", "delete", G, expect=1)
        check("NON_EMPTY_GROUP" in err, err)
    finally:
        live.send_signal(signal.SIGTERM)
        out, err = live.communicate(timeout=60)
    check_eq(live.returncode, 0, f"the background consumer's exit code after SIGTERM (stderr: {err.decode()[-500:]})")
    check_eq(out.decode().splitlines(), [f"r{i}" for i in range(6)], "the background consumer's output")
    check_eq(cli.json("group", "describe", G)["offsets"][0]["committed_offset"], 6, "committed at SIGTERM")

    res = cli.json("group", "delete", G)
    check_eq(res, [{"group_id": G, "error": None, "message": None}], "group delete --json")
    _, err = cli.run("group", "describe", G, expect=4)
    check("does not exist" in err, err)
    _, err = cli.run("group", "delete", G, expect=4)
    check("GROUP_ID_NOT_FOUND" in err, err)


def test_topic_delete():
    res = cli.json("topic", "delete", "cli-a")
    check_eq(res, [{"name": "cli-a", "error": None, "message": None}], "topic delete --json")
    names = [t["name"] for t in cli.json("topic", "list")]
    check("cli-a" not in names, f"deleted topic still listed: {names}")
    _, err = cli.run("topic", "delete", "cli-a", expect=4)
    check("UNKNOWN_TOPIC_OR_PARTITION" in err, err)


def test_cluster_info():
    info = cli.json("cluster", "info")
    check(isinstance(info["cluster_id"], str) and info["cluster_id"], f"cluster id: {info}")
    check_eq(info["controller_id"], BROKER_ID, "controller")
    host, port = cli.bootstrap.rsplit(":", 1)
    check_eq(info["brokers"], [{"node_id": BROKER_ID, "host": host, "port": int(port)}], "brokers")
    out, _ = cli.run("cluster", "info")
    check(info["cluster_id"] in out, out)


def test_admin_api_commands():
    health = cli.json("cluster", "health")
    check_eq(health, cl.curl_json(cli.admin + "/v1/cluster/health"), "cluster health vs curl")
    check(health["is_healthy"] is True, f"health: {health}")
    out, _ = cli.run("cluster", "health", "--exit-status")
    check("HEALTHY" in out and "yes" in out, out)

    brokers = cli.json("broker", "list")
    check_eq([b["node_id"] for b in brokers], [BROKER_ID], "broker list")
    out, _ = cli.run("broker", "list")
    check(out.splitlines()[0].split()[:3] == ["ID", "HOST", "PORT"], out)

    values = cli.json("cluster", "config", "get")
    check_eq(values, cl.curl_json(cli.admin + "/v1/cluster_config"), "cluster config get vs curl")
    schema = cl.curl_json(cli.admin + "/v1/cluster_config/schema")
    # An integer setting that can change at runtime: set it to another valid value and read it back.
    candidates = [k for k, s in sorted(schema.items()) if "int" in s.get("type", "")
                  and isinstance(values.get(k), int) and not s.get("needs_restart")]
    key = "log_retention_ms" if "log_retention_ms" in candidates else next(iter(candidates), None)
    check(key is not None, f"no integer setting in the schema: {schema}")
    new = values[key] + 1
    if "maximum" in schema[key] and new > schema[key]["maximum"]:
        new = values[key] - 1
    res = cli.json("cluster", "config", "set", key, str(new))
    # The PUT answer echoes the value as the broker stores it (a string today; GET is typed).
    check(res.get("applied") in ({key: new}, {key: str(new)}), f"cluster config set --json: {res}")
    check_eq(cli.json("cluster", "config", "get", key), {key: new}, "the value read back")
    out, _ = cli.run("cluster", "config", "get", key)
    check_eq(out.strip(), str(new), "cluster config get KEY")
    cli.run("cluster", "config", "set", key, str(values[key]), "--dry-run")
    check_eq(cli.json("cluster", "config", "get", key), {key: new}, "--dry-run applied the value")
    cli.run("cluster", "config", "set", key, str(values[key]))
    _, err = cli.run("cluster", "config", "set", key, "not-a-number", expect=2)
    check(key in err, err)
    _, err = cli.run("cluster", "config", "set", "cli_no_such_setting", "1", expect=2)
    check("cli_no_such_setting" in err, err)
    _, err = cli.run("cluster", "config", "get", "cli_no_such_setting", expect=4)
    check("cli_no_such_setting" in err, err)

    # A cluster setting the Kafka side obeys: without auto-creation, producing to a new topic is exit 4.
    if "auto_create_topics_enable" in schema:
        cli.run("cluster", "config", "set", "auto_create_topics_enable", "false")
        try:
            _, err = cli.run("produce", "cli-never-created", input="x\n", expect=4)
            check("cli-never-created" in err and "does not exist" in err, err)
        finally:
            cli.run("cluster", "config", "set", "auto_create_topics_enable", "true")
        cli.run("produce", "cli-auto-created", input="x\n")
        check_eq(len(cli.json("topic", "describe", "cli-auto-created")["partitions"]), 1, "auto-created topic")


def test_unreachable_exit_3():
    port = cl.free_port()
    _, err = cli.run("--brokers", f"127.0.0.1:{port}", "topic", "list", expect=3)
    check(f"127.0.0.1:{port}" in err, err)
    cli.run("--brokers", f"127.0.0.1:{port}", "produce", T, input="x\n", expect=3)
    cli.run("--brokers", f"127.0.0.1:{port}", "consume", T, "-e", expect=3)
    _, err = cli.run("--admin", f"http://127.0.0.1:{port}", "cluster", "health", expect=3)
    check(f"127.0.0.1:{port}" in err, err)
    cli.run("--admin", f"http://127.0.0.1:{port}", "broker", "list", expect=3)


def test_address_resolution():
    port = cl.free_port()
    profile = os.path.join(cli.home.name, "profile.yaml")
    with open(profile, "w") as f:
        f.write(f"brokers: {cli.bootstrap}\nadmin: {cli.admin}\n")
    bare = {k: v for k, v in cli.env.items() if not k.startswith("SLUICE_")}
    # The profile alone, then the default profile path under $HOME.
    cli.run("--profile", profile, "topic", "describe", T, env=bare)
    cli.run("cluster", "health", env=dict(bare, SLUICE_PROFILE=profile))
    os.makedirs(os.path.join(cli.home.name, ".config", "sluice"), exist_ok=True)
    os.replace(profile, os.path.join(cli.home.name, ".config", "sluice", "profile.yaml"))
    cli.run("topic", "describe", T, env=bare)
    # The environment wins over the profile, and flags over the environment.
    cli.run("topic", "describe", T, env=dict(bare, SLUICE_BROKERS=f"127.0.0.1:{port}"), expect=3)
    cli.run("--brokers", cli.bootstrap, "topic", "describe", T, env=dict(bare, SLUICE_BROKERS=f"127.0.0.1:{port}"))
    cli.run("cluster", "health", env=dict(bare, SLUICE_ADMIN=f"http://127.0.0.1:{port}"), expect=3)
    os.remove(os.path.join(cli.home.name, ".config", "sluice", "profile.yaml"))
    # A bad profile is a usage error naming the key.
    bad = os.path.join(cli.home.name, "bad.yaml")
    with open(bad, "w") as f:
        f.write("bootstrap: x\n")
    _, err = cli.run("--profile", bad, "topic", "list", expect=2)
    check("bootstrap" in err, err)


if __name__ == "__main__":
    raise SystemExit(cl.run_tests([
        ("help and usage errors (exit 2)", test_help_and_usage_errors),
        ("topic create (exit 1 for an existing topic)", test_topic_create),
        ("topic list", test_topic_list),
        ("topic describe (exit 4 for an unknown topic)", test_topic_describe),
        ("produce and consume", test_produce_and_consume),
        ("topic alter-config", test_topic_alter_config),
        ("topic add-partitions", test_topic_add_partitions),
        ("topic trim", test_topic_trim),
        ("group list, describe, seek, delete", test_groups),
        ("topic delete", test_topic_delete),
        ("cluster info", test_cluster_info),
        ("admin API: cluster health, broker list, cluster config", test_admin_api_commands),
        ("unreachable brokers and admin API (exit 3)", test_unreachable_exit_3),
        ("flags, environment, profile file", test_address_resolution),
    ]))
