#!/usr/bin/python3
"""Smoke run of the reliability harness: workload.py on a fresh 3-broker cluster (tests/cluster/cluster.py)
with one partition leader SIGKILLed half-way and restarted, then the drain and checker.py.

    /usr/bin/python3 tests/chaos/smoke_test.py [--build-dir build/debug] [--duration 30] [--seed 1] [--keep]

Exit status: the checker's (0: no lost-write, duplicate, inconsistent-offsets or phantom, and a complete
drain), or 1 if the cluster misbehaved (a broker died unasked, a sanitizer report, ...).
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "cluster"))

import checker  # noqa: E402
import cluster as clusterlib  # noqa: E402
import workload  # noqa: E402

def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir")
    ap.add_argument("--brokerd")
    ap.add_argument("--plugin-dir")
    ap.add_argument("--work-dir")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--down-s", type=float, default=5.0, help="how long the killed leader stays down")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--rate", type=float, default=workload.Config().rate, help="total records/s (0: unbounded)")
    ap.add_argument("--history", help="default: history.jsonl in the cluster's directory")
    ap.add_argument("--json", help="the checker's result as JSON")
    a = ap.parse_args(argv)
    clusterlib.install_signal_handlers()
    c = clusterlib.Cluster(nodes=3, build_dir=a.build_dir, brokerd=a.brokerd, plugin_dir=a.plugin_dir,
                           work_dir=a.work_dir, keep=a.keep, name="chaos-smoke")
    status = 1
    try:
        c.check_built()
        with c:
            c.start()
            c.wait_brokers()
            history = a.history or os.path.join(c.base_dir, "history.jsonl")
            cfg = workload.Config(bootstrap=c.bootstrap(), partitions=a.partitions, duration_s=a.duration,
                                  seed=a.seed, producers=a.producers, rate=a.rate,
                                  client_log=os.path.join(c.base_dir, "clients.log"))
            wl = workload.Workload(cfg).setup()
            killed = {}

            def nemesis(w, secs):
                if not killed and secs >= a.duration / 2 - a.down_s / 2:
                    leader = c.wait_leader(cfg.topic, 0)
                    w.note("kill", node=leader, signal="SIGKILL", why=f"leader of {cfg.topic}[0]")
                    c.sigkill(leader)
                    killed.update(node=leader, t=time.monotonic())
                elif killed and "restarted" not in killed and time.monotonic() - killed["t"] >= a.down_s:
                    w.note("restart", node=killed["node"])
                    c.start_node(killed["node"])
                    w.note("restarted", node=killed["node"])
                    killed["restarted"] = True

            def heal(w):
                if killed and "restarted" not in killed:
                    w.note("restart", node=killed["node"])
                    c.start_node(killed["node"])
                    killed["restarted"] = True
                c.wait_brokers(timeout=60)
                c.wait_leaders(cfg.topic, cfg.partitions, timeout=60)
                w.note("healed")

            wl.run(history, before_drain=heal, on_tick=nemesis)
            result = checker.check_file(history)
            print(checker.human(result), flush=True)
            if a.json:
                with open(a.json, "w") as f:
                    json.dump(result, f, indent=1)
            print(f"smoke: workload {json.dumps(wl.summary())}", flush=True)
            status = checker.exit_status(result)
            if status != 0:
                c.keep = True
        if c.problems:
            print(f"smoke: broker problems: {c.problems}", file=sys.stderr)
            status = 1
    except (clusterlib.ClusterError, workload.WorkloadError, checker.HistoryError) as e:
        print(f"smoke: FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        status = 1
    except KeyboardInterrupt as e:
        print(f"smoke: interrupted ({e})", file=sys.stderr, flush=True)
        status = 1
    print(f"chaos smoke: {'PASSED' if status == 0 else 'FAILED'}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
