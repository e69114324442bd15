#!/usr/bin/python3
"""Checks tests/cluster/cluster.py and the checker of failover_test.py without the raft plugin.

    /usr/bin/python3 tests/cluster/cluster_selftest.py [--build-dir build/debug]

With this build's real brokerd and the storage, kafka and admin_http plugins, as three independent
single-node brokers: start on free ports, Metadata and the admin API per node, SIGKILL and restart on
the same data directory and ports (a record written before the crash is read after it), a node started
from a thread that ends stays up, SIGSTOP/SIGCONT (a paused node answers nothing, then answers again),
a graceful stop exiting 0, a node dying behind the harness's back reported by name, the waits failing
with a message, and clean-up: brokers are gone after an exception in a `with` block, a SIGTERM and a
SIGKILL of the harness process, and an exit without close(); a sanitizer report in a log is a problem.
Then the YAML written for a raft cluster, failover_test.py failing at once and naming the missing raft
plugin, and the failover checker against histories with each anomaly planted.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cluster as cm  # noqa: E402
from cluster import Cluster, ClusterError  # noqa: E402

failures = []
passes = []
PLUGINS = ["storage", "kafka", "admin_http"]


def check(cond, what, detail=""):
    if cond:
        passes.append(what)
        print(f"ok: {what}", flush=True)
    else:
        failures.append(what)
        print(f"FAILED: {what}\n{detail}", file=sys.stderr, flush=True)
    return cond


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead for our purposes
    except OSError:
        return False


def all_dead(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def raises(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except ClusterError as e:
        return str(e)
    return None


def produce_and_read(c, node, topic, values):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": c.bootstrap([node]), "acks": "all", "log_level": 0})
    for v in values:
        p.produce(topic, value=v)
    left = p.flush(30)
    return left


def read_all(c, node, topic, n):
    from confluent_kafka import Consumer, TopicPartition
    cons = Consumer({"bootstrap.servers": c.bootstrap([node]), "group.id": "selftest", "log_level": 0,
                     "enable.auto.commit": False})
    cons.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        for m in cons.consume(100, timeout=0.5):
            if m.error() is None:
                got.append(m.value())
    cons.close()
    return got


def section_faults(args):
    print("== three independent brokers: start, faults, restart")
    c = Cluster(nodes=3, plugins=PLUGINS, build_dir=args.build_dir, brokerd=args.brokerd, plugin_dir=args.plugin_dir,
                work_dir=args.work_dir, name="selftest")
    with c:
        c.start()
        ports = {i: (n.kafka_port, n.admin_port) for i, n in c.nodes.items()}
        check(len({p for ps in ports.values() for p in ps}) == 6, "every node has its own Kafka and admin port",
              str(ports))
        check(all(n.raft_port is None for n in c.nodes.values()), "no raft port without the raft plugin")
        for i in c.nodes:
            md = c.metadata(nodes=[i])
            check(set(md.brokers) == {i} and md.controller_id == i, f"node {i} answers Metadata as broker {i}",
                  f"brokers {md.brokers}, controller {md.controller_id}")
            st, body = c.admin_get(i, "/v1/status/ready")
            check(st == 200, f"node {i}'s admin API answers", f"{st} {body}")
        cfg = open(c.nodes[2].config_path).read()
        for needle in ["  id: 2\n", f"  data_dir: {c.nodes[2].data_dir}\n", "  - name: storage\n",
                       f"          address: 127.0.0.1:{c.nodes[2].kafka_port}\n",
                       f"      listen: 127.0.0.1:{c.nodes[2].admin_port}\n", "      default_replication_factor: 1\n",
                       "      auto_create_topics_enable: false\n"]:
            check(needle in cfg, f"node 2's YAML has {needle.strip()!r}", cfg)

        # A record written to node 2 survives SIGKILL and restart (same data directory and ports).
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": c.bootstrap([2]), "log_level": 3})  # alive until result()
        admin.create_topics([NewTopic("keep", 1, 1)])["keep"].result(timeout=30)
        check(c.wait_leader("keep", 0, timeout=10) == 2, "wait_leader finds node 2 leading its own topic")
        check(produce_and_read(c, 2, "keep", [b"before-crash-1", b"before-crash-2"]) == 0, "records written to node 2")
        old_pid = c.nodes[2].pid
        rc = c.sigkill(2)
        check(rc == -signal.SIGKILL and not alive(old_pid), "sigkill: the process is gone", f"rc {rc}")
        check(not cm.port_accepts(ports[2][0]), "sigkill: its Kafka port is closed")
        check(c.available_nodes() == [1, 3], "available_nodes leaves the killed node out", str(c.available_nodes()))
        c.check_alive()
        check(True, "check_alive accepts a node the harness killed")
        check(f"pid {old_pid}, killed by SIGKILL" in c.nodes[2].describe(), "describe() says how the node ended",
              c.nodes[2].describe())

        # restart from a short-lived thread: the broker must outlive the thread (PR_SET_PDEATHSIG follows the
        # thread that forked, hence the spawner thread)
        th = threading.Thread(target=c.start_node, args=(2,))
        th.start()
        th.join()
        time.sleep(1.0)
        new_pid = c.nodes[2].pid
        check(new_pid != old_pid and alive(new_pid), "a node started from a thread that ended is still up")
        check((c.nodes[2].kafka_port, c.nodes[2].admin_port) == ports[2], "restart keeps the ports")
        got = read_all(c, 2, "keep", 2)
        check(got == [b"before-crash-1", b"before-crash-2"], "restart keeps the data directory", str(got))
        pid = c.restart(2)
        check(pid != new_pid and alive(pid), "restart() SIGKILLs a running node and starts it again")

        # SIGSTOP / SIGCONT
        c.pause(3)
        check(c.available_nodes() == [1, 2], "a paused node is not available", str(c.available_nodes()))
        check(cm.port_accepts(ports[3][0]), "a paused node's port still accepts TCP (the kernel's backlog)")
        t = time.monotonic()
        try:
            c.metadata(nodes=[3], timeout=2)
            answered = True
        except Exception:
            answered = False
        check(not answered and time.monotonic() - t < 10, "a paused node answers no Metadata")
        st, _ = c.admin_get(3, "/v1/status/ready", timeout=1)
        check(st is None, "a paused node answers no admin request")
        c.metadata()  # bootstrapped from the available nodes only: does not hang on node 3
        check(True, "metadata() skips the paused node")
        c.resume(3)
        check(set(c.metadata(nodes=[3]).brokers) == {3}, "a resumed node answers again")

        # graceful stop and start
        rc = c.stop(1)
        check(rc == 0 and not c.problems, "stop: SIGTERM, exit 0", f"rc {rc}, problems {c.problems}")
        c.start_node(1)
        check(c.nodes[1].available() and c.nodes[1].starts == 2, "start_node after stop")

        # waits fail with a message naming what they waited for
        msg = raises(c.wait_leader_change, "keep", 0, 2, timeout=1)
        check(msg is not None and "keep[0]" in msg and "still not true after 1 s" in msg,
              "a wait that times out says what it waited for", str(msg))
        msg = raises(c.wait_brokers, [1, 2, 3], timeout=1)  # independent brokers: each lists only itself
        check(msg is not None and "brokers [1, 2, 3]" in msg, "wait_brokers times out naming the brokers", str(msg))

        # a node dying behind the harness's back is named by the next wait
        victim = c.nodes[3].pid
        os.kill(victim, signal.SIGKILL)
        time.sleep(0.5)
        msg = raises(c.wait_leader, "keep", 0, timeout=5)
        check(msg is not None and "node 3" in msg and "without the harness asking" in msg,
              "a node killed by someone else is reported by name", str(msg))
        check(any("node 3" in p for p in c.problems), "... and recorded in problems", str(c.problems))
        c.problems.clear()
        c.start_node(3)
        pids = [n.pid for n in c.nodes.values()]
        base = c.base_dir
    check(all_dead(pids) and not os.path.exists(base), "leaving the block stops every node and removes the directory")
    check(not c.problems, "no problem at the end (every node exited 0 after SIGTERM, no sanitizer report)",
          str(c.problems))
    check(raises(c.kill, 1) is not None, "kill on a closed cluster's node is an error")


CHILD = r'''
import os, signal, sys, threading, time
sys.path.insert(0, %(here)r)
from cluster import Cluster, install_signal_handlers
mode = sys.argv[1]
install_signal_handlers()
c = Cluster(nodes=2, plugins=%(plugins)r, brokerd=%(brokerd)r, plugin_dir=%(plugin_dir)r, work_dir=%(work)r,
            name="child")
def started():
    with open(%(pidfile)r, "w") as f:
        f.write(" ".join(str(n.pid) for n in c.nodes.values()) + "\n" + c.base_dir + "\n")
    print("STARTED", flush=True)
if mode == "no-close":
    c.start(); c.pause(2); started(); sys.exit(0)
with c:
    c.start()
    c.pause(2)
    started()
    if mode == "exception":
        raise RuntimeError("the test failed")
    time.sleep(120)
'''


def section_cleanup(args):
    print("== clean-up when the harness fails, is interrupted or killed")
    root = tempfile.mkdtemp(prefix="cluster_selftest.", dir=args.work_dir)
    pidfile = os.path.join(root, "pids")
    script = os.path.join(root, "child.py")
    with open(script, "w") as f:
        f.write(CHILD % {"here": HERE, "plugins": PLUGINS, "brokerd": args.brokerd, "plugin_dir": args.plugin_dir,
                         "work": root, "pidfile": pidfile})

    def run(mode, sig=None, env=None):
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        p = subprocess.Popen([sys.executable, script, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True, env=dict(os.environ, **(env or {})))
        if sig is not None:
            deadline = time.monotonic() + 60
            while not os.path.exists(pidfile) and time.monotonic() < deadline and p.poll() is None:
                time.sleep(0.1)
            time.sleep(0.3)
            p.send_signal(sig)
        try:
            out, err = p.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        pids, base = [], None
        if os.path.exists(pidfile):
            lines = open(pidfile).read().split("\n")
            pids, base = [int(x) for x in lines[0].split()], lines[1]
        return p.returncode, out + err, pids, base

    rc, out, pids, base = run("exception")
    check(len(pids) == 2 and rc == 1 and "RuntimeError" in out, "child: an exception in the with block", out[-2000:])
    check(pids and all_dead(pids), "... every node is gone (a paused one too)", str(pids))
    check("broker logs (RuntimeError: the test failed)" in out and "--- node 1: last" in out
          and "--- node 2: last" in out, "... and every node's log tail is printed", out[-3000:])
    check(base and os.path.exists(os.path.join(base, "node1", "brokerd.log")),
          "... and the directory is kept for the post-mortem", str(base))

    rc, out, pids, base = run("sleep", signal.SIGTERM)
    check(len(pids) == 2 and all_dead(pids), "child: SIGTERM stops every node", out[-2000:])
    rc, out, pids, base = run("sleep", signal.SIGINT)
    check(len(pids) == 2 and all_dead(pids), "child: SIGINT stops every node", out[-2000:])
    rc, out, pids, base = run("sleep", signal.SIGKILL)
    check(len(pids) == 2 and all_dead(pids), "child: SIGKILL of the harness kills every node (PR_SET_PDEATHSIG)",
          out[-2000:])
    rc, out, pids, base = run("sleep", signal.SIGKILL, env={"SLUICE_CLUSTER_NO_SETPRIV": "1"})
    check(len(pids) == 2 and all_dead(pids), "... also with prctl in preexec_fn instead of setpriv", out[-2000:])
    rc, out, pids, base = run("no-close")
    check(len(pids) == 2 and rc == 0 and all_dead(pids), "child: exiting without close() stops every node (atexit)",
          out[-2000:])
    subprocess.run(["rm", "-rf", root])


def section_problems(args):
    print("== problems found at shutdown")
    c = Cluster(nodes=1, plugins=PLUGINS, build_dir=args.build_dir, brokerd=args.brokerd, plugin_dir=args.plugin_dir,
                work_dir=args.work_dir, name="selftest-problems")
    c.start()
    with open(c.nodes[1].log_path, "ab") as f:
        f.write(b"==1==ERROR: AddressSanitizer: heap-use-after-free on address 0x1 (planted by the self-test)\n")
    base = c.base_dir
    problems = c.close()
    check(any("sanitizer report" in p for p in problems), "a sanitizer report in a log is a problem", str(problems))
    check(os.path.exists(base), "the directory is kept when there is a problem")
    subprocess.run(["rm", "-rf", base])

    c = Cluster(nodes=1, plugins=PLUGINS, build_dir=args.build_dir, brokerd=args.brokerd, plugin_dir=args.plugin_dir,
                work_dir=args.work_dir, name="selftest-crash")
    try:
        with c:
            c.start()
            os.kill(c.nodes[1].pid, signal.SIGKILL)
            time.sleep(0.3)
        err = None
    except ClusterError as e:
        err = str(e)
    check(err is not None and "without the harness asking" in err,
          "a node that died unasked fails the with block at exit", str(err))
    subprocess.run(["rm", "-rf", c.base_dir])


def section_raft_config(args):
    print("== the YAML of a raft cluster")
    c = Cluster(nodes=3, build_dir=args.build_dir, brokerd=args.brokerd, plugin_dir=args.plugin_dir,
                work_dir=args.work_dir, name="selftest-yaml", election_timeout_ms=1500, heartbeat_interval_ms=150)
    c.prepare()
    n = c.nodes
    cfg = open(n[2].config_path).read()
    want = ["  id: 2\n", "  - name: storage\n  - name: raft\n    config:\n",
            f"      listen: 127.0.0.1:{n[2].raft_port}\n", "      cluster_id: local\n",
            "      seeds:\n" + "".join(f"        - {i}@127.0.0.1:{n[i].raft_port}\n" for i in (1, 2, 3)),
            "      election_timeout_ms: 1500\n", "      heartbeat_interval_ms: 150\n",
            "  - name: kafka\n", f"          address: 127.0.0.1:{n[2].kafka_port}\n",
            "      default_replication_factor: 3\n", "  - name: admin_http\n"]
    for w in want:
        check(w in cfg, f"raft cluster YAML has {w.strip()!r}", cfg)
    order = [cfg.index(f"  - name: {p}\n") for p in ("storage", "raft", "kafka", "admin_http")]
    check(order == sorted(order), "plugins in the order storage, raft, kafka, admin_http", cfg)
    check(len({x for m in n.values() for x in (m.kafka_port, m.raft_port, m.admin_port)}) == 9,
          "nine distinct ports")
    try:
        import yaml
        doc = yaml.safe_load(cfg)
        raft = [p for p in doc["plugins"] if p["name"] == "raft"][0]["config"]
        check(raft["seeds"] == [f"{i}@127.0.0.1:{n[i].raft_port}" for i in (1, 2, 3)], "the YAML parses", cfg)
    except ImportError:
        pass
    c.close()

    # failover_test.py fails at once, naming the plugin, when the raft plugin is not there
    plugins = tempfile.mkdtemp(prefix="plugins.", dir=args.work_dir)
    for name in PLUGINS:
        os.symlink(os.path.join(args.plugin_dir, f"libsluice_{name}.so"), os.path.join(plugins, f"libsluice_{name}.so"))
    t = time.monotonic()
    p = subprocess.run([sys.executable, os.path.join(HERE, "failover_test.py"), "--brokerd", args.brokerd,
                        "--plugin-dir", plugins, "--work-dir", args.work_dir], capture_output=True, text=True,
                       timeout=60)
    out = p.stdout + p.stderr
    check(p.returncode == 1 and "plugin 'raft' is not built" in out and "libsluice_raft.so" in out
          and time.monotonic() - t < 30, "failover_test without the raft plugin fails at once, naming it", out)
    subprocess.run(["rm", "-rf", plugins])


def section_checker():
    print("== the failover checker finds planted anomalies")
    import failover_test as ft

    class Msg:
        def __init__(self, p, o):
            self.p, self.o = p, o

        def partition(self):
            return self.p

        def offset(self):
            return self.o

    def history(n=12, parts=2):
        h = ft.History()
        for seq in range(n):
            r = ft.Rec(seq, f"run/{seq}".encode(), seq % parts, float(seq))
            h.sent(r)
            h.delivered(r, None, Msg(seq % parts, seq // parts))
        return h

    def log_of(h, parts=2):
        got = {p: [] for p in range(parts)}
        for r in sorted(h.acked(), key=lambda r: (r.partition, r.offset)):
            got[r.partition].append((r.offset, r.value))
        return got

    def failed_names(h, got):
        ch = ft.Checks(quiet=True)
        ft.check_history(ch, h, 2)
        ft.check_drain(ch, h, got, 2)
        return [name.split(":")[0] for name, _ in ch.failed]

    h = history()
    check(failed_names(h, log_of(h)) == [], "a clean history passes", str(failed_names(h, log_of(h))))
    got = log_of(h)
    del got[0][2]
    check(failed_names(h, got) == ["lost-write", "inconsistent-offsets"], "a missing acknowledged value: lost-write",
          str(failed_names(h, got)))
    got = log_of(h)
    got[1].append((99, b"run/3"))
    check("duplicate" in failed_names(h, got), "a value read twice: duplicate", str(failed_names(h, got)))
    got = log_of(h)
    got[0][1] = (got[0][1][0], b"run/10")
    got[0][5] = (got[0][5][0], b"run/2")
    check(failed_names(h, got) == ["inconsistent-offsets"], "two values swapped: inconsistent-offsets",
          str(failed_names(h, got)))
    got = log_of(h)
    got[1].append((50, b"never-sent"))
    check(failed_names(h, got) == ["phantom"], "a value never sent: phantom", str(failed_names(h, got)))
    got = log_of(h)
    got[1] = list(reversed(got[1]))
    check("nonmonotonic-poll (drain)" in failed_names(h, got), "offsets going back: nonmonotonic-poll",
          str(failed_names(h, got)))
    h2 = history()
    h2.acks[0][3].offset = 1
    check("nonmonotonic-send" in failed_names(h2, log_of(h2)), "acknowledgements out of offset order: "
          "nonmonotonic-send", str(failed_names(h2, log_of(h2))))
    h3 = history()
    extra = ft.Rec(100, b"run/100", 0, 1.0)
    h3.sent(extra)
    h3.delivered(extra, "KafkaError{_MSG_TIMED_OUT}", None)
    got = log_of(h3)
    got[0].append((60, b"run/100"))
    ch = ft.Checks(quiet=True)
    figures = ft.check_drain(ch, h3, got, 2)
    check(not ch.failed and figures["failed_but_present"] == 1,
          "a failed delivery whose value is in the log is allowed (indeterminate) and counted", str(ch.failed))

    class G:
        pass

    def group(reads, commits=(), read_backs=()):
        g = G()
        g.reads, g.commits, g.committed_reads = list(reads), list(commits), list(read_backs)
        g.assignments = [(0.0, 1, [0, 1])]
        return g

    def group_failed(h, g):
        ch = ft.Checks(quiet=True)
        ft.check_group(ch, g, h, 2)
        return [name.split(":")[0] for name, _ in ch.failed]

    h = history()
    reads = [(float(i), 1, r.partition, r.offset, r.value) for i, r in enumerate(sorted(h.acked(), key=lambda r: r.seq))]
    commits = [(1.0, 1.1, 0, 3, True, None), (2.0, 2.1, 0, 6, True, None)]
    backs = [(1.5, 1.6, {0: 3}), (3.0, 3.1, {0: 6})]
    check(group_failed(h, group(reads, commits, backs)) == [], "a clean group passes",
          str(group_failed(h, group(reads, commits, backs))))
    check(group_failed(h, group(reads, commits, [(1.5, 1.6, {0: 3}), (3.0, 3.1, {0: 2})])) ==
          ["nonmonotonic-commit", "lost-commit"], "a committed offset going back: nonmonotonic-commit and lost-commit",
          str(group_failed(h, group(reads, commits, [(1.5, 1.6, {0: 3}), (3.0, 3.1, {0: 2})]))))
    check(group_failed(h, group(reads, commits + [(4.0, 4.1, 0, 4, True, None)], backs)) == ["lost-commit"],
          "a successful commit below an earlier one: lost-commit")
    skipped = [x for x in reads if not (x[2] == 1 and x[3] == 2)]
    check(group_failed(h, group(skipped, commits, backs)) == ["unseen", "poll-skip (group)"],
          "an acknowledged offset skipped: unseen and poll-skip", str(group_failed(h, group(skipped, commits, backs))))
    again = reads + [(99.0, 1, 0, 0, b"run/0")]
    check(group_failed(h, group(again, commits, backs)) == ["nonmonotonic-poll (group)"],
          "going back within one assignment: nonmonotonic-poll")
    again = reads + [(99.0, 2, 0, 0, b"run/0")]
    check(group_failed(h, group(again, commits, backs)) == [], "re-reading after a new assignment is allowed")


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--build-dir", default=os.environ.get("SLUICE_BUILD_DIR") or os.path.join(cm.repo_root(), "build",
                                                                                             "debug"))
    p.add_argument("--brokerd")
    p.add_argument("--plugin-dir")
    p.add_argument("--work-dir")
    args = p.parse_args(argv)
    args.brokerd = os.path.abspath(args.brokerd or os.path.join(args.build_dir, "bin", "brokerd"))
    args.plugin_dir = os.path.abspath(args.plugin_dir or os.path.join(args.build_dir, "lib", "sluice", "plugins"))
    args.work_dir = os.path.abspath(args.work_dir or os.path.join(args.build_dir, "tests", "cluster"))
    os.makedirs(args.work_dir, exist_ok=True)
    missing = cm.missing_plugins(args.plugin_dir, PLUGINS)
    if not os.access(args.brokerd, os.X_OK) or missing:
        print(f"FAILED: the self-test needs brokerd ({args.brokerd}) and the plugins {PLUGINS}; missing: "
              f"{[m[1] for m in missing] or args.brokerd}", file=sys.stderr)
        return 1
    cm.install_signal_handlers()
    for section in (lambda: section_faults(args), lambda: section_cleanup(args), lambda: section_problems(args),
                    lambda: section_raft_config(args), section_checker):
        try:
            section()
        except Exception as e:
            import traceback
            traceback.print_exc()
            check(False, f"unexpected exception: {type(e).__name__}: {e}")
    if failures:
        print(f"cluster harness self-test: failed checks: {failures}", file=sys.stderr)
    print(f"{len(passes)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
