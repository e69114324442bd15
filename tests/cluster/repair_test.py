#!/usr/bin/python3
"""A damaged replica repaired from its peers (issue 9): three brokers with
`verify_segments_on_open: true`, a topic of replication factor 3 with 64 KiB segments, an idempotent
acks=all load. A follower is SIGKILLed, one of its closed segments damaged on disk (a bit flipped in
one scenario, the file truncated in the other), and the follower restarted under the load:

- its broker logs the damage (file, offset) and the cut, and its group reports the repair;
- the replica catches up: its log end reaches the leader's, the repair ends (`repairing` false);
- leadership moves to it; a consumer reading from it gets every acknowledged record exactly once at
  its offset, with valid CRCs (librdkafka checks them), and nothing else: the damaged bytes were
  never served.
"""
import os
import random
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as clusterlib  # noqa: E402

from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

TOPIC = "repair"
SEED = 9

Failure, check = clusterlib.Failure, clusterlib.check


def group_on(c, node):
    st, body = c.admin_get(node, f"/v1/raft/groups/{TOPIC}/0")
    return body if st == 200 else None


def log_text(c, node):
    with open(c.node(node).log_path, errors="replace") as fh:
        return fh.read()


def scenario(c, how):
    rng = random.Random(SEED)
    c.start()
    c.wait_brokers()
    a = AdminClient({"bootstrap.servers": c.bootstrap()})
    a.create_topics([NewTopic(TOPIC, 1, 3, config={"segment.bytes": "65536"})])[TOPIC].result(30)
    leader = c.wait_leaders(TOPIC, 1)[0]
    follower = rng.choice(sorted(n for n in c.nodes if n != leader))

    acked, failed, stop = [], [], threading.Event()
    t = threading.Thread(target=clusterlib.produce_acked, args=(c.bootstrap(), TOPIC, stop, acked, failed),
                         kwargs=dict(value=lambda i: f"v{i:08d} ".encode() + b"x" * 200, pause_s=0.002), daemon=True)
    t.start()
    c._wait(lambda: len(c.closed_segments(follower, TOPIC).get(0, [])) >= 3 or None,
            f"node {follower} holds closed segments", 60.0, interval=0.3)

    # Damage a closed segment of the follower while it is down, then restart it under the load.
    c.sigkill(follower)
    what = c.corrupt_segment(follower, TOPIC, rng, how=how, partition=0)
    check(what is not None, f"node {follower}: {what}")
    before = len(log_text(c, follower))
    c.start_node(follower)
    text = c._wait(lambda: (lambda s: s if "cutting the log at offset" in s else None)(log_text(c, follower)[before:]),
                   f"node {follower} logs the damage and the cut", 30.0, interval=0.3)
    lines = [ln for ln in text.splitlines() if "cutting the log at offset" in ln or "not served until" in ln]
    damaged = os.path.basename(what.split(" of ", 1)[1].split(" (", 1)[0])
    check(any("not served until the log is repaired" in ln and damaged in ln for ln in lines),
          f"node {follower}'s storage names the damaged file {damaged} and the offset: {lines[:1]}")
    check(any("cutting the log at offset" in ln and "repairing it from the other replicas" in ln for ln in lines),
          f"node {follower}'s raft group cuts the log and repairs it: {lines[-1:]}")

    n = len(acked)
    c._wait(lambda: len(acked) > n + 300 or None, "writes go on during the repair", 60.0, interval=0.3)
    stop.set()
    t.join(180)

    def caught_up():
        groups = [group_on(c, x) for x in c.nodes]
        if any(g is None or g.get("failed") for g in groups):
            return None
        ends = {g["log_end_offset"] for g in groups}
        g = group_on(c, follower)
        return (ends, g) if len(ends) == 1 and not g.get("repairing") else None

    ends, g = c._wait(caught_up, f"node {follower} catches up and ends its repair", 90.0, interval=0.5)
    check(g.get("repair_until_offset") == -1, f"node {follower} repaired: log end {ends} on every replica")
    check(not failed or all("timed out" not in f.lower() for f in failed), f"no produce timed out ({failed[:3]})")

    # Leadership moves to the repaired replica; everything is read from it.
    cur = c.wait_leader(TOPIC, 0)
    if cur != follower:
        st, body = c.admin_request(cur, "POST", f"/v1/raft/groups/{TOPIC}/0/transfer_leadership?target={follower}",
                                   10.0)
        check(st in (200, 202), f"transfer to node {follower} accepted ({st} {body})")
    c._wait(lambda: c.leader(TOPIC, 0) == follower or None, f"node {follower} leads", 30.0, interval=0.3)
    check(True, f"node {follower} leads partition 0")

    got, errors, done = clusterlib.read_partition(c.bootstrap([follower]), TOPIC, "repair-drain", timeout=90.0,
                                                  config={"check.crcs": True})
    check(c.leader(TOPIC, 0) == follower, f"node {follower} still leads: the reads came from it")
    read = set(got)
    lost = [x for x in acked if x not in read]
    values = [v for _, v in got]
    produced = {v for _, v in acked}
    check(done, "read the partition to its end")
    check(not errors, f"no read errors, no CRC mismatch ({errors[:3]})")
    check(not lost, f"every acknowledged record read back at its offset ({len(lost)} lost of {len(acked)}: {lost[:3]})")
    check(len(values) == len(set(values)), f"no duplicates ({len(values) - len(set(values))})")
    strange = [v for v in values if not (v.startswith(b"v") and v.endswith(b"x" * 200))]
    check(not strange, f"nothing but produced records ({len(strange)} others: {strange[:2]})")
    unacked = len([v for v in values if v not in produced])
    check(True, f"{len(got)} records read, {len(acked)} acknowledged, {unacked} written but not acknowledged")


def main(argv):
    cfg = dict(nodes=3, storage_config={"verify_segments_on_open": True})
    return clusterlib.run_scenarios(__doc__, "repair_test",
                                    [(dict(cfg, name="repair-flip"), lambda c: scenario(c, "flip")),
                                     (dict(cfg, name="repair-truncate"), lambda c: scenario(c, "truncate"))], argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
