#!/usr/bin/python3
"""The reliability harness (issue 9, docs/RELIABILITY.md): seeded runs of three brokers, each in its own
network namespace and (when available) on its own power-loss filesystem, under the workload of
workload.py while faults.py injects faults; checker.py then checks every run's history.

    sudo /usr/bin/python3 tests/chaos/chaos.py --seed 1 --runs 10 --duration 60 --report build/chaos
    scripts/chaos.sh ...                      (the same, after building what it needs)

One run: a fresh cluster, a fresh topic (6 partitions, replication factor 3), load for --duration
seconds with faults one after another from the run's seed (seed + run number), every fault healed
10 s before the end, then a drain of every partition and the checker. Per run it records the faults
(kind, targets, injection and heal times), the checker's counts, every partition's unavailability
windows (no acknowledged write for more than 1 s) and the recovery time after each heal (until every
partition acknowledged a write again; inconclusive when the next fault starts first). The campaign report (report.md, report.json, timeline-N.png)
goes to --report. Exit status: 0 when no run found lost, duplicated, inconsistent or phantom records
and every partition recovered within --recovery-limit seconds of each heal; 1 otherwise; 77 when the
machine cannot run the harness (the reason is printed).
"""
import argparse
import bisect
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
sys.path.insert(0, os.path.join(HERE, "faultfs"))
import cluster as clusterlib  # noqa: E402
import faultfslib  # noqa: E402
import faults as faultlib  # noqa: E402
import netns  # noqa: E402
import provenance  # noqa: E402

UNAVAILABLE_GAP_S = 1.0
MIN_CALM_S = 3.0  # between a heal and the next injection, whatever the schedule says
LOAD_AFTER_HEAL_S = 5.0  # a fault heals at least this long before the load ends, to measure its recovery


# ---- the power-loss filesystem ------------------------------------------------------------------------
# Each node's data directory on sluice-faultfs (faultfs/faultfslib.py): writes reach the backing
# directory only when fsynced; drop() discards the rest, as a power loss would.

def find_faultfs(build_dir):
    if faultfslib.skip_reason():
        return None
    for d in (build_dir, os.path.join(HERE, "..", "..", "build", "debug")):
        cand = os.path.join(d, "bin", "sluice-faultfs")
        if os.access(cand, os.X_OK):
            return os.path.abspath(cand)
    return None


# ---- one run ------------------------------------------------------------------------------------------

def analyse(history_path, faults, partitions):
    """From the history's acknowledgements, in one read: each partition's unavailability windows, the
    recovery after each heal, the number of acks, and acks per second (for the timeline plot)."""
    import workload  # noqa: E402
    acks = {p: [] for p in range(partitions)}
    load_end_ns = None  # the last send: the load stops there
    with workload.open_history(history_path, "r") as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("f") == "send":
                if ev.get("type") == "ok":
                    acks.setdefault(ev["partition"], []).append(ev["t"])
                elif ev.get("type") == "invoke":
                    load_end_ns = ev["t"] if load_end_ns is None else max(load_end_ns, ev["t"])
    windows = {}
    for p, ts in acks.items():
        ts.sort()
        w = [(a, b) for a, b in zip(ts, ts[1:]) if b - a > UNAVAILABLE_GAP_S * 1e9]
        windows[p] = [{"from_ns": a, "seconds": round((b - a) / 1e9, 3)} for a, b in w]
    recovery = []
    for i, f in enumerate(faults):
        if f.healed_at is None:
            continue
        heal_ns = int(f.healed_at * 1e9)
        if load_end_ns is not None and heal_ns >= load_end_ns:
            # Healed after the load stopped (its injection ran long): nothing to measure; the drain
            # still has to read every partition.
            recovery.append({"kind": f.kind, "seconds": None, "after_load": True})
            continue
        # Measured until the next fault starts or the load stops: a recovery cut short is censored (only
        # known to exceed the time it had), not charged to this fault.
        nxt = next((g.injected_at for g in faults[i + 1:] if g.injected_at is not None), None)
        ends = [x for x in (int(nxt * 1e9) if nxt is not None else None, load_end_ns) if x is not None]
        end_ns = min(ends) if ends else None
        later = [ts[j] for ts in acks.values() for j in [bisect.bisect_left(ts, heal_ns)]
                 if j < len(ts) and (end_ns is None or ts[j] < end_ns)]
        done = len(later) == len(acks)  # every partition acknowledged a write after the heal
        if done and later:
            recovery.append({"kind": f.kind, "seconds": round(max((t - heal_ns) / 1e9 for t in later), 3)})
        elif end_ns is not None:
            recovery.append({"kind": f.kind, "seconds": None, "censored_after_s": round((end_ns - heal_ns) / 1e9, 3)})
        else:
            recovery.append({"kind": f.kind, "seconds": None})
    first = min((ts[0] for ts in acks.values() if ts), default=None)
    per_s = []
    if first is not None:
        for ts in acks.values():
            for t in ts:
                k = int((t - first) / 1e9)
                per_s.extend([0] * (k + 1 - len(per_s)))
                per_s[k] += 1
    timeline = {"first_ack_ns": first, "acks_per_second": per_s}
    return windows, recovery, sum(len(v) for v in acks.values()), timeline


def one_run(a, run_no, seed, out_dir, faultfs_bin):
    import workload  # noqa: E402
    rng = random.Random(seed)
    run_dir = os.path.join(out_dir, f"run-{run_no:03d}")
    os.makedirs(run_dir, exist_ok=True)
    timeline = []
    t0 = time.monotonic()

    def log(msg):
        line = f"[{time.monotonic() - t0:7.2f} s] {msg}"
        timeline.append(line)
        print(f"run {run_no} (seed {seed}): {line}", flush=True)

    network = None
    mounts = {}
    clock_files = {}
    result = {"run": run_no, "seed": seed}
    net_ctx = netns.Network(3, net=a.net) if not a.no_netns else None
    try:
        if net_ctx is not None:
            network = net_ctx.__enter__()
        kinds = [k for k in faultlib.available_kinds(network, faultfs=faultfs_bin is not None)
                 if not a.kinds or k in a.kinds]
        plan = faultlib.schedule(rng, kinds, a.duration)
        result["planned"] = [f.kind for f in plan]

        def setup(node):
            if network is not None:
                node.host = network.ip(node.id)
                node.prefix = network.exec_prefix(node.id)
            clock = os.path.join(run_dir, f"clock{node.id}")
            with open(clock, "w") as fh:
                fh.write("+0s\n")
            clock_files[node.id] = clock
            if os.path.exists(faultlib.FAKETIME_LIB):
                node.env = faultlib.faketime_env(clock)
            if faultfs_bin is not None and node.id not in mounts:
                fs = faultfslib.FaultFS(faultfs_bin, node.dir, backing=os.path.join(node.dir, "backing"),
                                        mnt=node.data_dir)
                fs.mount()
                mounts[node.id] = fs

        c = clusterlib.Cluster(nodes=3, name=f"chaos-{run_no}", brokerd=a.brokerd, plugin_dir=a.plugin_dir,
                               work_dir=run_dir, node_setup=setup,
                               storage_config={"fault_injection": True, "verify_segments_on_open": True},
                               out=open(os.path.join(run_dir, "cluster.log"), "w"))
        with c:
            c.start()
            c.wait_brokers()
            cfg = workload.Config(bootstrap=c.bootstrap(), partitions=a.partitions, duration_s=a.duration,
                                  seed=seed, rate=a.rate, client_log=os.path.join(run_dir, "clients.log"),
                                  producer_debug=a.producer_debug, max_in_flight=a.max_in_flight)
            wl = workload.Workload(cfg, out=open(os.path.join(run_dir, "workload.log"), "w"))
            wl.setup()
            inj = faultlib.Injector(c, cfg.topic, a.partitions, rng, log, network=network, faultfs=mounts,
                                    clock_files=clock_files)
            stop = threading.Event()
            started = time.monotonic()

            def nemesis():
                healed = 0.0
                for f in plan:
                    # At the planned time, but never sooner than MIN_CALM_S after the last heal: a fault
                    # whose injection ran late (a rolling restart takes seconds) must not overlap the next.
                    at = max(started + f.start_s, healed + MIN_CALM_S)
                    heal_by = started + a.duration - LOAD_AFTER_HEAL_S
                    if at + f.duration_s > heal_by:
                        log(f"skip {f.kind}: earlier faults ran late, it could not heal {LOAD_AFTER_HEAL_S} s "
                            f"before the load ends")
                        f.note = "skipped: no time left to measure its recovery"
                        continue
                    if stop.wait(max(0.0, at - time.monotonic())):
                        return
                    try:
                        inj.inject(f)
                        wl.note("inject", kind=f.kind, targets=f.targets)
                    except Exception as e:  # noqa: BLE001 - a fault that cannot be injected is logged
                        log(f"inject {f.kind} failed: {type(e).__name__}: {e}")
                        f.note = f"failed: {e}"
                    # A slow injection (a rolling restart) eats into the hold, not into the time left.
                    stop.wait(max(0.0, min(f.duration_s, heal_by - time.monotonic())))
                    try:
                        inj.heal(f)
                        wl.note("heal", kind=f.kind, targets=f.targets)
                    except Exception as e:  # noqa: BLE001
                        log(f"heal {f.kind} failed: {type(e).__name__}: {e}")
                    healed = time.monotonic()

            th = threading.Thread(target=nemesis, daemon=True)
            th.start()
            history = os.path.join(run_dir, "history.jsonl.gz")

            def before_drain(_wl):
                stop.set()
                th.join(60)
                inj.heal_all()
                c.wait_leaders(cfg.topic, a.partitions, timeout=60.0)

            summary = wl.run(history, before_drain=before_drain)
            status, checked = workload.run_check(history, out_json=os.path.join(run_dir, "check.json"))
            dup_positions = checked["info"]["duplicate_positions"]
            if dup_positions:
                # Which producer epoch and sequence wrote each copy: a broker duplicate (one sequence
                # twice) or a client's re-send under a bumped epoch. Read while the cluster still runs.
                prov = provenance.fetch(c.bootstrap(), cfg.topic, dup_positions)
                with open(os.path.join(run_dir, "provenance.json"), "w") as fh:
                    json.dump(provenance.to_json(prov), fh)
                log(f"provenance of {len(dup_positions)} duplicate position(s): {len(prov)} written by "
                    f"idempotent producers; checking again with it")
                status, checked = workload.run_check(history, out_json=os.path.join(run_dir, "check.json"),
                                                     provenance=prov)
            if status != 0 or a.keep:
                c.keep = True  # the brokers' logs and data (faultfs backing directories) for the post-mortem
            windows, recovery, n_acks, ack_timeline = analyse(history, plan, a.partitions)
            result.update({"ack_timeline": ack_timeline, "status": status, "summary": summary, "check": checked, "faults": [f.as_json() for f in plan],
                           "fault_counts": inj.counts, "unavailability": windows, "recovery": recovery,
                           "acks": n_acks, "problems": list(c.problems)})
    except netns.NetError as e:
        result.update({"status": 2, "error": str(e)})
    except Exception as e:  # noqa: BLE001 - the run failed; the campaign goes on and reports it
        result.update({"status": 1, "error": f"{type(e).__name__}: {e}"})
    finally:
        for fs in mounts.values():
            fs.unmount()
        if net_ctx is not None:
            net_ctx.__exit__(None, None, None)
        result["seconds"] = round(time.monotonic() - t0, 1)
        result["timeline"] = timeline
        with open(os.path.join(run_dir, "result.json"), "w") as fh:
            json.dump(result, fh, indent=1, default=str)
    return result


# ---- the campaign ---------------------------------------------------------------------------------------

ANOMALIES = ["lost-write", "duplicate", "inconsistent-offsets", "phantom"]


def anomaly_count(check, name):
    a = (check or {}).get("anomalies", {}).get(name)
    if isinstance(a, dict):
        return a.get("count", 0)
    return a or 0


def report(a, results, out_dir, wall_s):
    total = {"runs": len(results), "acks": sum(r.get("acks", 0) for r in results), "wall_seconds": round(wall_s, 1)}
    kinds = {}
    for r in results:
        for k, n in (r.get("fault_counts") or {}).items():
            kinds[k] = kinds.get(k, 0) + n
    anomalies = {n: sum(anomaly_count(r.get("check"), n) for r in results) for n in ANOMALIES}
    resent = sum(anomaly_count(r.get("check"), "resent-after-epoch-bump") for r in results)
    all_recov = [x for r in results for x in r.get("recovery", [])]
    # Censored: the next fault began before every partition recovered. Inconclusive while the time it had
    # is under the limit; a partition that stayed silent for the whole limit fails the campaign.
    censored = [x["censored_after_s"] for x in all_recov if x.get("censored_after_s") is not None]
    after_load = sum(1 for x in all_recov if x.get("after_load"))
    recov = [x["seconds"] for x in all_recov if x.get("censored_after_s") is None and not x.get("after_load")]
    unknown = None in recov or any(t > a.recovery_limit for t in censored)
    worst = None if unknown else max(recov, default=0.0)
    failed = [r["run"] for r in results if r.get("status") not in (0,)]
    ok = not failed and all(v == 0 for v in anomalies.values()) and worst is not None and worst <= a.recovery_limit
    out = {"command": " ".join(sys.argv), "totals": total, "faults": kinds, "anomalies": anomalies,
           "resent_after_epoch_bump": resent,
           "worst_recovery_s": worst, "failed_runs": failed, "ok": ok, "runs": results}
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
    lines = [f"# Chaos campaign: {'PASSED' if ok else 'FAILED'}", "",
             f"Command: `{out['command']}`", "",
             f"- runs: {total['runs']} ({total['wall_seconds']} s wall), acknowledged records: {total['acks']}",
             "- faults injected: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
             "- anomalies: " + ", ".join(f"{k} {v}" for k, v in anomalies.items()),
             f"- records the clients sent again under a bumped producer epoch (second copies, not broker "
             f"duplicates; docs/RELIABILITY.md): {resent}",
             f"- worst recovery after a heal: {worst} s (limit {a.recovery_limit} s); "
             f"{len(censored)} recovery(ies) cut short by the next fault or the end of the load (inconclusive), "
             f"{after_load} fault(s) healed after the load ended (not measured)",
             f"- failed runs: {failed or 'none'}", "",
             "| run | seed | status | acks | faults | lost | dup | incons. | phantom | worst recovery (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rec = [x["seconds"] for x in r.get("recovery", []) if x.get("censored_after_s") is None and not x.get("after_load")]
        lines.append(f"| {r['run']} | {r['seed']} | {r.get('status')} {r.get('error', '')} | {r.get('acks', 0)} | "
                     f"{', '.join(f['kind'] for f in r.get('faults', []))} | "
                     + " | ".join(str(anomaly_count(r.get("check"), n)) for n in ANOMALIES)
                     + f" | {max(rec) if rec and None not in rec else rec} |")
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    plot(results, out_dir)
    print("\n".join(lines[:9]), flush=True)
    return ok


def plot(results, out_dir):
    """timeline-N.png per run: acknowledged records per second, fault spans shaded (gnuplot)."""
    if shutil.which("gnuplot") is None:
        return
    for r in results:
        run_dir = os.path.join(out_dir, f"run-{r['run']:03d}")
        tl = r.get("ack_timeline") or {}
        if not tl.get("acks_per_second"):
            continue
        t0 = tl["first_ack_ns"]
        data = os.path.join(run_dir, "acks.dat")
        with open(data, "w") as f:
            for sec, n in enumerate(tl["acks_per_second"]):
                f.write(f"{sec} {n}\n")
        rects = []
        for i, fl in enumerate(r.get("faults", [])):
            if fl.get("injected_at") and fl.get("healed_at"):
                a0 = fl["injected_at"] * 1e9 - t0
                a1 = fl["healed_at"] * 1e9 - t0
                rects.append(f'set object {i + 1} rect from {a0 / 1e9:.2f},graph 0 to {a1 / 1e9:.2f},graph 1 '
                             f'fc rgb "#ffcccc" fs solid 0.5 behind\n'
                             f'set label {i + 1} "{fl["kind"]}" at {a0 / 1e9:.2f},graph 0.95 font ",7"\n')
        script = (f'set terminal png size 1000,300\nset output "{out_dir}/timeline-{r["run"]}.png"\n'
                  f'set title "run {r["run"]} (seed {r["seed"]}): acknowledged records per second; faults shaded"\n'
                  f'set xlabel "s"\nset ylabel "acks/s"\n' + "".join(rects) +
                  f'plot "{data}" using 1:2 with lines notitle\n')
        subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load per run")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--rate", type=float, default=3000.0, help="records/s over all producers")
    ap.add_argument("--kinds", help="comma-separated fault kinds (default: every available one)")
    ap.add_argument("--report", default=os.path.join(HERE, "..", "..", "build", "chaos"))
    ap.add_argument("--build-dir", default=os.environ.get("SLUICE_BUILD_DIR") or
                    os.path.join(HERE, "..", "..", "build", "release"))
    ap.add_argument("--brokerd")
    ap.add_argument("--plugin-dir")
    ap.add_argument("--net", type=int, default=77, help="the 10.N.0.0/24 network of the namespaces")
    ap.add_argument("--no-netns", action="store_true", help="loopback only (no network faults)")
    ap.add_argument("--no-faultfs", action="store_true")
    ap.add_argument("--recovery-limit", type=float, default=10.0)
    ap.add_argument("--keep", action="store_true",
                    help="keep every run's brokers' logs and data in its run directory, not only a failed run's")
    ap.add_argument("--max-in-flight", type=int, default=1,
                    help="produce requests in flight per connection (above 1, librdkafka 2.0.2's epoch bumps "
                    "duplicate records: see workload.Config.max_in_flight)")
    ap.add_argument("--producer-debug", help="librdkafka debug contexts for the producers, logged to each "
                    "run's clients.log (e.g. eos,msg: sequence numbers, epoch bumps)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="runs at once, each in its own process on its own network (--net, --net + 1, ...)")
    ap.add_argument("--only-run", type=int, help=argparse.SUPPRESS)  # one run of a --jobs campaign
    a = ap.parse_args(argv)
    clusterlib.install_signal_handlers()  # SIGTERM/SIGINT: brokers stopped, mounts and namespaces removed
    if a.jobs < 1 or a.net + a.jobs - 1 > 254:
        ap.error(f"--jobs {a.jobs} with --net {a.net}: need 1 <= jobs and net + jobs - 1 <= 254")
    a.kinds = set(a.kinds.split(",")) if a.kinds else None
    if a.kinds:
        unknown = a.kinds - set(faultlib.ALL_KINDS)
        if unknown:
            ap.error(f"unknown fault kind(s) {sorted(unknown)}; known: {', '.join(faultlib.ALL_KINDS)}")
    a.build_dir = os.path.abspath(a.build_dir)
    a.brokerd = a.brokerd or os.path.join(a.build_dir, "bin", "brokerd")
    a.plugin_dir = a.plugin_dir or os.path.join(a.build_dir, "lib", "sluice", "plugins")
    if not a.no_netns:
        why = netns.check()
        if why:
            print(f"chaos: cannot run: {why} (or pass --no-netns for a loopback-only campaign)", file=sys.stderr)
            return 77
    faultfs_bin = None if a.no_faultfs else find_faultfs(a.build_dir)
    if faultfs_bin is None and not a.no_faultfs:
        print("chaos: sluice-faultfs (or /dev/fuse, fusermount3) not found: no power-loss faults", flush=True)
    out_dir = os.path.abspath(a.report)
    os.makedirs(out_dir, exist_ok=True)
    if a.only_run is not None:
        r = one_run(a, a.only_run, a.seed + a.only_run, out_dir, faultfs_bin)
        return {0: 0, 2: 77}.get(r.get("status"), 1)
    t0 = time.monotonic()
    if a.jobs == 1:
        results = []
        for i in range(a.runs):
            results.append(one_run(a, i, a.seed + i, out_dir, faultfs_bin))
            if results[-1].get("status") == 2:
                print(f"chaos: cannot run: {results[-1].get('error')}", file=sys.stderr)
                return 77
    else:
        results = run_parallel(a, argv, out_dir)
        if results is None:
            return 77
    ok = report(a, results, out_dir, time.monotonic() - t0)
    print_failures(results, out_dir)
    print(f"chaos: report in {out_dir}/report.md", flush=True)
    return 0 if ok else 1


def run_parallel(a, argv, out_dir):
    """--jobs N: each run in a process of its own (its own interpreter, so the runs' workloads do not
    share a GIL), at most N at once, each slot on its own network. Returns the runs' results in run
    order, or None when the machine cannot run the harness."""
    free_nets = list(range(a.net, a.net + a.jobs))
    running = {}  # Popen -> (run number, net)
    results = {}
    cannot = None
    next_run = 0
    try:
        while next_run < a.runs or running:
            while next_run < a.runs and free_nets and cannot is None:
                net = free_nets.pop(0)
                cmd = [sys.executable, os.path.abspath(__file__)] + list(argv) + [
                    "--jobs", "1", "--only-run", str(next_run), "--net", str(net), "--report", out_dir]
                running[subprocess.Popen(cmd)] = (next_run, net)
                next_run += 1
            time.sleep(0.5)
            for proc in [p for p in running if p.poll() is not None]:
                run_no, net = running.pop(proc)
                free_nets.append(net)
                path = os.path.join(out_dir, f"run-{run_no:03d}", "result.json")
                try:
                    with open(path) as fh:
                        results[run_no] = json.load(fh)
                except (OSError, ValueError) as e:
                    results[run_no] = {"run": run_no, "seed": a.seed + run_no, "status": 1,
                                       "error": f"the run's process exited with status {proc.returncode} "
                                                f"and left no result ({e})"}
                if proc.returncode == 77:
                    cannot = results[run_no].get("error", "see the run's output")
    finally:
        for proc in running:  # interrupted: the runs clean up on SIGTERM (cluster.py's handlers)
            proc.terminate()
        for proc in running:
            proc.wait()
    if cannot is not None:
        print(f"chaos: cannot run: {cannot}", file=sys.stderr)
        return None
    return [results[i] for i in sorted(results)]


def print_failures(results, out_dir, tail_lines=80):
    """For each failed run: its error and the tail of its cluster log (fault timeline, broker states and
    log tails), so that a CI log alone explains the failure."""
    for r in results:
        if r.get("status") == 0:
            continue
        print(f"\n== run {r['run']} (seed {r['seed']}) failed: {r.get('error') or 'see its check.json'}")
        path = os.path.join(out_dir, f"run-{r['run']:03d}", "cluster.log")
        if os.path.exists(path):
            with open(path, errors="replace") as fh:
                lines = fh.readlines()
            print(f"-- last {min(tail_lines, len(lines))} lines of {path}:")
            sys.stdout.write("".join(lines[-tail_lines:]))
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
