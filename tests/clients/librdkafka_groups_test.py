#!/usr/bin/python3
"""A consumer group of three librdkafka consumer processes (group_consumer) reads a 3-partition topic while
members are SIGKILLed and restarted and the broker is restarted and SIGKILLed, and a producer (librdkafka,
through confluent-kafka, acks=all) produces all along.

    run_with_broker.py -- /usr/bin/python3 librdkafka_groups_test.py --consumer build/.../group_consumer

Proves (issue 5, item 4, Done-when):
  - every acknowledged record (partition, offset from its delivery report) was consumed at least once,
    and every offset below the high watermark too (records a producer retry duplicated included);
  - committed offsets never go backwards: OffsetFetch polled every 200 ms all along (through a consumer
    of the same group that never joins it) shows per partition a non-decreasing sequence, across member
    kills, rebalances and broker restarts;
  - after the drain, the committed offsets equal the high watermarks, and they survive a broker restart
    (SIGTERM) and a broker crash (SIGKILL): OffsetFetch answers the same offsets afterwards.
Member 0 is a static member (group.instance.id, KIP-345); 1 and 2 are dynamic (KIP-394 member ids).
"""

import glob
import os
import subprocess
import sys
import tempfile
import threading
import time

import clientlib as cl

try:
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:
    cl.missing_client(e, "python3-confluent-kafka")

def consumer_binary():
    """--consumer PATH (taken out of argv before cl.bootstrap() looks for the address), else $SLUICE_GROUP_CONSUMER."""
    if "--consumer" in sys.argv:
        i = sys.argv.index("--consumer")
        path = sys.argv[i + 1]
        del sys.argv[i:i + 2]
        return path
    return os.environ.get("SLUICE_GROUP_CONSUMER", "group_consumer")


GC = consumer_binary()
bs = cl.bootstrap()
PARTS = 3
topic = cl.topic_name("rdgroups", "main")
group = cl.topic_name("rdgroups", "group")


logdir = tempfile.mkdtemp(prefix="rdgroups.", dir=os.path.dirname(os.environ.get("SLUICE_BROKER_LOG", "")) or None)
state = {"produced": {p: set() for p in range(PARTS)}, "members": {}, "observed": {p: [] for p in range(PARTS)},
         "backwards": [], "fetch_errors": 0, "stop": threading.Event()}


class Member:
    """One group_consumer process; a restart appends to the same log file."""

    def __init__(self, idx):
        self.idx = idx
        self.log = os.path.join(logdir, f"member{idx}.log")
        self.instance = "static-m0" if idx == 0 else ""
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        with open(self.log, "a") as f:
            f.write(f"S start {self.starts}\n")
        err = open(self.log + ".stderr", "ab")
        self.proc = subprocess.Popen([GC, bs, group, topic, self.log, self.instance], stdin=subprocess.DEVNULL,
                                     stdout=err, stderr=err)
        err.close()

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def lines(self):
        with open(self.log) as f:
            return [ln.rstrip("\n") for ln in f if ln.endswith("\n")]

    def current_assignment(self):
        """The partitions of the latest assignment of the running incarnation (None if revoked/none)."""
        cur = None
        for ln in self.lines():
            if ln.startswith("S ") or ln == "R":
                cur = None
            elif ln.startswith("A"):
                cur = {int(x) for x in ln[2:].split(",") if x}
        return cur


def consumed():
    got = {p: set() for p in range(PARTS)}
    for m in state["members"].values():
        for ln in m.lines():
            if ln.startswith("C "):
                _, p, o = ln.split()
                got[int(p)].add(int(o))
    return got


def member_tails():
    out = []
    for m in state["members"].values():
        ls = m.lines()
        errs = [ln for ln in ls if ln.startswith("E ")]
        out.append(f"member {m.idx} ({m.starts} starts, {len(errs)} error lines; last lines: "
                   f"{[ln for ln in ls if not ln.startswith('C ')][-6:]}; errors: {errs[-3:]})")
    return "\n  ".join(out)


def admin():
    return AdminClient({"bootstrap.servers": bs, "socket.timeout.ms": 30000})


def step_reachable():
    return cl.require_group_coordinator(bs, keys=range(8, 15))  # what a librdkafka member uses


def step_create():
    a = admin()
    a.create_topics([NewTopic(topic, num_partitions=PARTS, replication_factor=1)], request_timeout=60)[topic].result()
    cl.wait_until(lambda: len(a.list_topics(topic, timeout=30).topics[topic].partitions) == PARTS,
                  f"{topic} with {PARTS} partitions")


def producer_loop(errors):
    p = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 5, "message.timeout.ms": 60000,
                  "reconnect.backoff.max.ms": 500})

    def dr(err, msg):
        if err is not None:
            errors.append(f"delivery failed: {err}")
        else:
            state["produced"][msg.partition()].add(msg.offset())

    i = 0
    while not state["produce_stop"].is_set():
        for _ in range(10):
            try:
                p.produce(topic, value=b"r%d" % i, partition=i % PARTS, on_delivery=dr)
            except BufferError:
                p.poll(0.1)
            i += 1
        p.poll(0)
        time.sleep(0.05)  # about 200 records a second
    left = p.flush(90)
    if left:
        errors.append(f"{left} records still undelivered 90 s after the producer stopped")
    state["sent"] = i


def committed_now(c):
    tps = c.committed([TopicPartition(topic, p) for p in range(PARTS)], timeout=5)
    return {tp.partition: tp.offset for tp in tps if tp.error is None}


def poller_loop():
    """OffsetFetch every 200 ms through a consumer of the group that never subscribes (so never joins)."""
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False,
                  "reconnect.backoff.max.ms": 500})
    last = {}
    while not state["stop"].is_set():
        try:
            now = committed_now(c)
        except KafkaException:
            state["fetch_errors"] += 1  # the broker is restarting
            time.sleep(0.2)
            continue
        t = time.monotonic()
        for p, off in now.items():
            if off < 0:  # no committed offset (yet): OffsetFetch answers -1
                if p in last:
                    state["backwards"].append(f"partition {p}: committed {last[p]} then none (-1) at {t:.1f}")
                continue
            if p in last and off < last[p]:
                state["backwards"].append(f"partition {p}: committed offset went from {last[p]} to {off}")
            if p not in last or off != last[p]:
                state["observed"][p].append(off)
            last[p] = max(off, last.get(p, off))
        time.sleep(0.2)
    c.close()


def hwm(c):
    return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1] for p in range(PARTS)}


def step_group_with_kills():
    members = state["members"]
    t0 = time.monotonic()
    for i in range(3):
        members[i] = Member(i)
        members[i].start()
    state["produce_stop"] = threading.Event()
    perrors = []
    producer = threading.Thread(target=producer_loop, args=(perrors,), daemon=True)
    poller = threading.Thread(target=poller_loop, daemon=True)
    producer.start()
    poller.start()

    def all_assigned():
        parts = [m.current_assignment() for m in members.values()]
        return all(x is not None for x in parts) and sorted(p for x in parts for p in x) == list(range(PARTS))

    deadline = time.monotonic() + 30
    while not all_assigned():
        for m in members.values():
            cl.check(m.proc.poll() is None, f"member {m.idx} exited with status {m.proc.returncode} "
                                            f"(stderr in {m.log}.stderr)")
        if time.monotonic() > deadline:
            cl.fail(f"the 3 members were not assigned {PARTS} partitions between them within 30 s "
                    f"(FindCoordinator/JoinGroup/SyncGroup):\n  {member_tails()}")
        time.sleep(0.2)
    t_assigned = time.monotonic()
    events = []

    # Members are SIGKILLed (no LeaveGroup, no last commit) and restarted while records flow; the kills
    # overlap the rebalances they cause. Member 0 is static: its restart must take its place back.
    for victim in (1, 2, 0):
        time.sleep(2)
        members[victim].kill()
        events.append(f"SIGKILL member {victim}")
        time.sleep(1)
        members[victim].start()
    time.sleep(3)
    pid = cl.broker_control("restart")
    events.append(f"broker restarted (SIGTERM), new pid {pid}")
    time.sleep(5)
    pid = cl.broker_control("kill")
    events.append(f"broker SIGKILLed and restarted, new pid {pid}")
    time.sleep(4)
    state["produce_stop"].set()
    producer.join(120)
    cl.check(not perrors, f"producer: {perrors[:3]}")

    c = Consumer({"bootstrap.servers": bs, "group.id": group + "-probe", "enable.auto.commit": False})
    ends = hwm(c)
    c.close()
    produced = state["produced"]
    for p in range(PARTS):
        cl.check(produced[p] and max(produced[p]) < ends[p],
                 f"partition {p}: acknowledged offsets up to {max(produced[p], default=None)} but the high "
                 f"watermark is {ends[p]} (acks=all records lost by a broker restart/crash?)")

    # Drain: every offset below the high watermark consumed and committed.
    deadline = time.monotonic() + 60
    while True:
        got = consumed()
        last = {p: (state["observed"][p] or [None])[-1] for p in range(PARTS)}
        missing = {p: sorted(set(range(ends[p])) - got[p]) for p in range(PARTS)}
        if not any(missing.values()) and all(last[p] == ends[p] for p in range(PARTS)):
            break
        for m in members.values():
            cl.check(m.proc.poll() is None, f"member {m.idx} exited with status {m.proc.returncode}")
        if time.monotonic() > deadline:
            cl.fail("within 60 s of the end of production: " +
                    "; ".join(f"partition {p}: {len(missing[p])} of {ends[p]} offsets never consumed "
                              f"(first {missing[p][:5]}), committed {last[p]}" for p in range(PARTS)) +
                    f"\n  {member_tails()}")
        time.sleep(0.3)

    for m in members.values():
        m.proc.terminate()
    for m in members.values():
        try:
            rc = m.proc.wait(30)
        except subprocess.TimeoutExpired:
            m.kill()
            cl.fail(f"member {m.idx} did not close within 30 s of SIGTERM")
        cl.check_eq(rc, 0, f"member {m.idx} exit status after SIGTERM")
    state["stop"].set()
    poller.join(30)

    cl.check(not state["backwards"], "committed offsets went backwards: " + "; ".join(state["backwards"][:5]))
    for p in range(PARTS):
        cl.check(produced[p] <= got[p], f"partition {p}: acknowledged but never consumed: "
                                        f"{sorted(produced[p] - got[p])[:10]}")
        extra = {o for o in got[p] if o >= ends[p]}
        cl.check(not extra, f"partition {p}: consumed offsets past the high watermark {ends[p]}: {sorted(extra)[:5]}")
    state["ends"] = ends
    commits = sum(1 for m in members.values() for ln in m.lines() if ln.startswith("K "))
    dups = sum(1 for m in members.values() for ln in m.lines() if ln.startswith("C ")) - sum(ends.values())
    return (f"{sum(ends.values())} records ({state['sent']} sent), {dups} redelivered, {commits} acknowledged "
            f"commits, {sum(len(v) for v in state['observed'].values())} committed-offset changes seen, "
            f"{state['fetch_errors']} OffsetFetch failures while the broker restarted; "
            f"first assignment after {t_assigned - t0:.1f} s; events: {', '.join(events)}")


def step_offsets_survive_restarts():
    want = {p: state["ends"][p] for p in range(PARTS)}
    for how in ("restart", "kill"):
        cl.broker_control(how)
        c = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False})
        try:
            got = cl.wait_until(lambda: _try_committed(c), f"OffsetFetch after the broker {how}", timeout=30)
        finally:
            c.close()
        cl.check_eq(got, want, f"committed offsets of {group} after a broker {how} (OffsetFetch)")
    return f"{want} after a SIGTERM restart and a SIGKILL"


def _try_committed(c):
    try:
        got = committed_now(c)
    except KafkaException:
        return None
    return got if len(got) == PARTS else None


def main():
    if not os.access(GC, os.X_OK) and not any(os.access(os.path.join(d, GC), os.X_OK)
                                              for d in os.environ.get("PATH", "").split(":")):
        print(f"FAILED: no group_consumer program at {GC!r} (build the group_consumer target; pass --consumer)",
              file=sys.stderr)
        return 1
    try:
        return cl.run_steps("librdkafka groups", [
            ("the broker advertises the group APIs", step_reachable),
            (f"create {topic} with {PARTS} partitions", step_create),
            ("3 group_consumer processes, SIGKILLed and restarted, broker restarted and SIGKILLed", step_group_with_kills),
            ("committed offsets survive a broker restart and a broker SIGKILL", step_offsets_survive_restarts),
        ])
    finally:
        state["stop"].set()
        if "produce_stop" in state:
            state["produce_stop"].set()
        for m in state["members"].values():
            if m.proc and m.proc.poll() is None:
                m.kill()
        print(f"member logs in {logdir}: {sorted(glob.glob(os.path.join(logdir, '*.log')))}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
