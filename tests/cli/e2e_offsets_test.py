#!/usr/bin/python3
"""The end-to-end agreement test of issue 6: the CLI and the admin API agree on a group's offsets.

    run_with_broker.py --plugins storage,kafka,admin_http -- e2e_offsets_test.py --sluice build/.../bin/sluice

1. `sluice topic create` a topic with 3 partitions;
2. `sluice produce` N records (keyed, so every partition gets some);
3. `sluice consume --group G -n K`, which commits before it returns;
4. `sluice group describe G --json` and `curl $SLUICE_ADMIN/v1/groups/G` must agree, per partition, on the
   committed offset, the high watermark and the lag; the total lag is N - K on both, and the committed
   offsets add up to K. The high watermarks also agree with `sluice topic describe` and
   `curl $SLUICE_ADMIN/v1/topics/T`.
Then a second round (produce M more, consume L more) must agree again, with total lag N + M - K - L.
"""

import clilib as cl
from clilib import check, check_eq

cli = cl.Cli()
TOPIC, GROUP = "e2e-orders", "e2e-billing"
N, K = 90, 37
M, L = 30, 50


def per_partition(offsets, what):
    out = {}
    for o in offsets:
        key = (o["topic"], o["partition"])
        check(key not in out, f"{what}: partition {key} listed twice")
        out[key] = (o["committed_offset"], o["high_watermark"], o["lag"])
    return out


def produce(count, start):
    lines = "".join(f"key-{i}:record {i}\n" for i in range(start, start + count))
    res = cli.json("produce", TOPIC, "--key-delimiter", ":", input=lines)
    check_eq((res["produced"], res["failed"]), (count, 0), "produce")
    return res


def agree(produced, consumed, round_name):
    ours = cli.json("group", "describe", GROUP)
    theirs = cl.curl_json(f"{cli.admin}/v1/groups/{GROUP}")
    mine = per_partition(ours["offsets"], "sluice group describe")
    admin = per_partition(theirs["offsets"], "GET /v1/groups")
    print(f"{round_name}: sluice {sorted(mine.items())}\n{round_name}: admin  {sorted(admin.items())}", flush=True)
    check_eq(sorted(mine), sorted(admin), f"{round_name}: partitions with offsets (sluice vs admin API)")
    for key in sorted(mine):
        check_eq(mine[key], admin[key], f"{round_name}: (committed, high watermark, lag) of {key} (sluice vs admin)")
    check_eq(sorted(mine), [(TOPIC, p) for p in range(3)], f"{round_name}: every partition has a committed offset")
    check_eq(ours["total_lag"], produced - consumed, f"{round_name}: sluice's total lag")
    check_eq(theirs["total_lag"], produced - consumed, f"{round_name}: the admin API's total lag")
    check_eq(sum(c for c, _, _ in mine.values()), consumed, f"{round_name}: committed offsets add up to the records read")
    check_eq(ours["state"], theirs["state"], f"{round_name}: group state")
    check_eq(ours["state"], "Empty", f"{round_name}: group state after the consumer left")

    # The high watermarks are the topic's, on both sides.
    described = {p["partition"]: p["high_watermark"] for p in cli.json("topic", "describe", TOPIC)["partitions"]}
    admin_topic = {p["partition"]: p["high_watermark"] for p in cl.curl_json(f"{cli.admin}/v1/topics/{TOPIC}")["partitions"]}
    check_eq(described, admin_topic, f"{round_name}: high watermarks (sluice topic describe vs GET /v1/topics)")
    check_eq({p: hw for (_, p), (_, hw, _) in mine.items()}, described, f"{round_name}: group vs topic high watermarks")
    check_eq(sum(described.values()), produced, f"{round_name}: records in the topic")


def main():
    check_eq(cli.json("topic", "create", TOPIC, "-p", "3"), [{"name": TOPIC, "error": None, "message": None}],
             "topic create")
    res = produce(N, 0)
    counts = {}
    for r in res["records"]:
        counts[r["partition"]] = counts.get(r["partition"], 0) + 1
    check_eq(sorted(counts), [0, 1, 2], f"keys spread over every partition ({counts})")

    out, _ = cli.run("consume", TOPIC, "--group", GROUP, "-n", K)
    check_eq(len(out.splitlines()), K, "records printed by consume -n")
    agree(N, K, "round 1")

    produce(M, N)
    out, _ = cli.run("consume", TOPIC, "--group", GROUP, "-n", L)
    check_eq(len(out.splitlines()), L, "records printed by the second consume -n")
    agree(N + M, K + L, "round 2")
    return 0


if __name__ == "__main__":
    raise SystemExit(cl.run_tests([("sluice and the admin API agree on a group's offsets", main)]))
