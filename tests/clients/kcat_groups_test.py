#!/usr/bin/python3
"""kcat's balanced consumer (`kcat -G GROUP TOPIC`, a librdkafka consumer group) against a Sluice broker.

    /usr/bin/python3 kcat_groups_test.py [HOST:PORT]        (or $SLUICE_BOOTSTRAP; $KCAT picks kcat)

Records go to a 3-partition topic (kcat -P, acks=all); two `kcat -G` members of one group then read it and
their output together holds every record exactly as produced (no record missing; values byte for byte).
kcat commits offsets as it goes (auto commit); once both members stopped, a third `kcat -G` of the same
group reads only the records produced after that, from the committed offsets.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

import clientlib as cl

bs = cl.bootstrap()
KCAT = os.environ.get("KCAT", "kcat")
PARTS = 3
topic = cl.topic_name("kcatgroups", "main")
group = cl.topic_name("kcatgroups", "group")
FMT = "%p %o %s\\n"  # values are ASCII without spaces or newlines


def produce(lines_by_partition):
    for p, lines in lines_by_partition.items():
        r = subprocess.run([KCAT, "-b", bs, "-P", "-t", topic, "-p", str(p), "-X", "acks=all",
                            "-X", "message.timeout.ms=30000"], input="".join(v + "\n" for v in lines),
                           capture_output=True, text=True, timeout=60)
        cl.check(r.returncode == 0, f"kcat -P -p {p}: exit {r.returncode}: {r.stderr[-500:]}")


def start_member(out):
    # -G: balanced consumer; the session and heartbeat settings make a rebalance quick.
    return subprocess.Popen([KCAT, "-b", bs, "-G", group, "-f", FMT, "-u",
                             "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000",
                             "-X", "heartbeat.interval.ms=500", "-X", "auto.commit.interval.ms=200",
                             topic], stdout=out, stderr=subprocess.PIPE, text=True)


def read_lines(paths):
    got = []
    for path in paths:
        with open(path) as f:
            for ln in f:
                m = re.fullmatch(r"(\d+) (\d+) (\S*)\n", ln)
                if m:
                    got.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return got


def stop(procs):
    for p in procs:
        p.terminate()  # kcat commits and leaves the group on SIGTERM
    errs = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            cl.fail(f"kcat -G did not exit within 30 s of SIGTERM: {err[-500:]}")
        errs.append(err)
    return errs


def consume_until(paths, want, what, timeout=60):
    def done():
        got = {(p, o): v for p, o, v in read_lines(paths)}
        return got if set(want) <= set(got) else None
    got = cl.wait_until(done, what, timeout, 0.3)
    for k, v in want.items():
        cl.check_eq(got[k], v, f"{topic}[{k[0]}]@{k[1]} value")
    return got


def step_setup():
    cl.require_group_coordinator(bs)
    r = subprocess.run([KCAT, "-V"], capture_output=True, text=True)
    # A topic with 3 partitions: kcat cannot create topics; auto-creation makes 1, so use the admin API.
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bs})
    a.create_topics([NewTopic(topic, PARTS, 1)], request_timeout=60)[topic].result()
    cl.wait_until(lambda: len(a.list_topics(topic, timeout=30).topics[topic].partitions) == PARTS,
                  f"{topic} with {PARTS} partitions")
    return r.stdout.splitlines()[0] if r.stdout else ""


def step_two_members():
    want = {(p, o): f"p{p}-r{o}" for p in range(PARTS) for o in range(200)}
    produce({p: [want[(p, o)] for o in range(200)] for p in range(PARTS)})
    d = tempfile.mkdtemp(prefix="kcatgroups.", dir=os.path.dirname(os.environ.get("SLUICE_BROKER_LOG", "")) or None)
    paths = [os.path.join(d, f"member{i}.out") for i in range(2)]
    outs = [open(p, "w") for p in paths]
    procs = [start_member(outs[0])]
    time.sleep(1)
    procs.append(start_member(outs[1]))
    try:
        got = consume_until(paths, want, "2 kcat -G members read every record")
    finally:
        errs = stop(procs)
        for o in outs:
            o.close()
    per_member = [len(read_lines([p])) for p in paths]
    state["dir"] = d
    return f"{len(want)} records, {sum(per_member) - len(want)} read twice, per member {per_member}; " \
           f"{sum(e.count('%') for e in errs)} kcat log lines"


def step_resume_from_commit():
    new = {(p, o): f"p{p}-late{o}" for p in range(PARTS) for o in range(200, 230)}
    produce({p: [new[(p, o)] for o in range(200, 230)] for p in range(PARTS)})
    path = os.path.join(state["dir"], "member3.out")
    with open(path, "w") as out:
        proc = start_member(out)
        try:
            consume_until([path], new, "a third kcat -G member reads the new records")
            time.sleep(1)  # anything else it would read (a committed offset gone backwards) shows up by now
        finally:
            stop([proc])
    old = [(p, o) for p, o, _ in read_lines([path]) if o < 200]
    cl.check(not old, f"the member after the commit re-read {len(old)} committed records, e.g. {old[:5]} "
                      f"(OffsetFetch did not return the committed offsets?)")
    return f"{len(new)} new records, nothing before the committed offsets"


state = {}


def main():
    return cl.run_steps("kcat groups", [
        (f"group APIs; create {topic} with {PARTS} partitions", step_setup),
        ("two kcat -G members read everything", step_two_members),
        ("a new member resumes from the committed offsets", step_resume_from_commit),
    ])


if __name__ == "__main__":
    sys.exit(main())
