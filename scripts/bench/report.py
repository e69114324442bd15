#!/usr/bin/env python3
"""Writes the Markdown report and the PNG plots of scripts/bench.sh.

Reads the scratch directory $WORK that bench.sh filled (fio-*.json,
iperf3.json, res/NAME.RUN.json from sluice-bench, res/f.RUN.json,
res/e.RUN.rss0, cmds.txt, fio-cmds.txt) and the environment bench.sh
passes (REPORT, RUNS, QUICK, COMMIT, ...). Every figure is the median of
its runs, taken figure by figure, and is given as a ratio to the machine
limit measured in the same run. Plots: gnuplot (pngcairo), from .dat files
written next to the report's PNGs and then deleted. Standard library only.
"""

import datetime
import glob
import json
import os
import statistics
import subprocess
import sys

env = os.environ
work = env["WORK"]
report = env["REPORT"]
plot_dir = os.path.dirname(os.path.abspath(report))


def check(cond, what):
    if not cond:
        sys.exit("bench: report check failed: " + what)


# ---- inputs -----------------------------------------------------------------------------

def fio_job(name):
    with open(os.path.join(work, f"fio-{name}.json")) as f:
        job = json.load(f)["jobs"][0]
    check(job["error"] == 0, f"fio {name} reported error {job['error']}")
    return job


def pct(d, q):
    return d["percentile"][f"{q:.6f}"] / 1000.0  # ns -> us


fio_write = fio_job("seqwrite-1m")["write"]["bw_bytes"] / 1e6
fio_read = fio_job("seqread-1m")["read"]["bw_bytes"] / 1e6
lat_job = fio_job("lat4k")
# fio times the write and the fdatasync separately; the operation is their sum at each percentile
# (as in docs/benchmarks/storage.md: close to exact at p50, slightly high at p99).
lat = {q: pct(lat_job["write"]["clat_ns"], q) + pct(lat_job["sync"]["lat_ns"], q) for q in (50, 99, 99.9)}
with open(os.path.join(work, "iperf3.json")) as f:
    loopback = json.load(f)["end"]["sum_received"]["bits_per_second"] / 8 / 1e6
check(fio_write > 0 and fio_read > 0 and lat[99] > 0 and loopback > 0, "a machine limit is zero")


def load(name):
    runs = []
    for path in sorted(glob.glob(os.path.join(work, "res", f"{name}.*.json"))):
        with open(path) as f:
            r = json.load(f)
        check(r.get("ok", True), f"{path}: the run failed: {r.get('first_error', '?')}")
        runs.append(r)
    check(runs, f"no results for {name}")
    return runs


def get(r, path, default=None):
    for k in path.split("."):
        if not isinstance(r, dict) or k not in r:
            return default
        r = r[k]
    return r


def med(runs, path):
    vals = [get(r, path) for r in runs if get(r, path) is not None]
    return statistics.median(vals) if vals else None


def median_run(runs, path):
    """The run whose figure is the median (for the per-second plots)."""
    ordered = sorted(runs, key=lambda r: get(r, path, 0))
    return ordered[(len(ordered) - 1) // 2]


names = ["a1", "a16", "c", "b", "d", "e", "mock-a1", "mock-c", "mock-b"]
res = {n: load(n) for n in names}
sweep = [(int(p), load(f"sweep-{p}")[0]) for p in env["SWEEP"].split()]
d_write = load("d-write")[0]
f_runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(work, "res", "f.*.json")))]
e_rss0 = [int(open(p).read()) for p in sorted(glob.glob(os.path.join(work, "res", "e.*.rss0")))]
check(f_runs and e_rss0, "no results for (e) or (f)")


def cmds(name):
    out = []
    with open(os.path.join(work, name)) as f:
        for line in f:
            k, c = line.rstrip("\n").split("|", 1)
            out.append((k, c))
    return out


# ---- formatting -------------------------------------------------------------------------

def f(x, digits=1):
    return "-" if x is None else f"{x:,.{digits}f}"


def ratio(x, base):
    if x is None or not base:
        return "-"
    r = x / base
    return f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"


def mib(kb):
    return None if kb is None else kb / 1024.0


now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
out = []
w = out.append
quick = env["QUICK"] == "1"

# ---- derived figures ----------------------------------------------------------------------
a1_mb, a16_mb = med(res["a1"], "produce.mb_per_sec"), med(res["a16"], "produce.mb_per_sec")
mock_a_mb = med(res["mock-a1"], "produce.mb_per_sec")
c_rps, mock_c_rps = med(res["c"], "produce.records_per_sec"), med(res["mock-c"], "produce.records_per_sec")
b_p99, b_p999 = med(res["b"], "produce.ack_latency_us.p99"), med(res["b"], "produce.ack_latency_us.p99_9")
b_p9999 = med(res["b"], "produce.ack_latency_us.p99_99")
d_mb = med(res["d"], "consume.mb_per_sec")
e_rss = [get(r, "watched.rss_kb_end") for r in res["e"]]
e_per_part_kb = statistics.median((rss - r0) / 1000.0 for rss, r0 in zip(e_rss, e_rss0))
f_rss_mib = statistics.median(r["rss_kb"] for r in f_runs) / 1024.0
f_cpu_pct = statistics.median(100.0 * r["cpu_seconds"] / r["idle_seconds"] for r in f_runs)
f_per_topic_kb = statistics.median((r["rss_kb"] - r["rss0_kb"]) / 100.0 for r in f_runs)

# (a): 80% of fio at the batch size, or within 10% of the client's own ceiling when that is lower.
a_client_bound = mock_a_mb < fio_write
a_goal = 0.9 * mock_a_mb if a_client_bound else 0.8 * fio_write
a_bound_text = (f"the client's ceiling applies ({f(mock_a_mb)} MB/s with the mock cluster < fio's {f(fio_write)} MB/s): "
                f"goal 90% of it, {f(a_goal)} MB/s" if a_client_bound else
                f"the disk applies (fio {f(fio_write)} MB/s <= the client's ceiling {f(mock_a_mb)} MB/s): "
                f"goal 80% of fio, {f(a_goal)} MB/s")


def met(ok):
    return "**met**" if ok else "**not met**"


targets = [
    ("(a) 1 KiB, acks=all, 1 partition, MB/s", f(a1_mb), f"{ratio(a1_mb, fio_write)} of fio; "
     f"{ratio(a1_mb, mock_a_mb)} of the client", a1_mb >= a_goal),
    ("(a) 1 KiB, acks=all, 16 partitions, MB/s", f(a16_mb), f"{ratio(a16_mb, fio_write)} of fio; "
     f"{ratio(a16_mb, mock_a_mb)} of the client", a16_mb >= a_goal),
    ("(b) produce ack p99 at 50% load, us (goal <= 2x fio 4 KiB write+fdatasync p99)", f(b_p99),
     f"{ratio(b_p99, lat[99])}x", b_p99 <= 2 * lat[99]),
    ("(b) produce ack p99.9 at 50% load, us (goal <= 4x)", f(b_p999), f"{ratio(b_p999, lat[99])}x",
     b_p999 <= 4 * lat[99]),
    ("(b) produce ack p99.99 at 50% load, us (reported)", f(b_p9999), f"{ratio(b_p9999, lat[99])}x", None),
    ("(d) cold catch-up read, MB/s (goal >= 70% of fio sequential read)", f(d_mb), ratio(d_mb, fio_read),
     d_mb >= 0.7 * fio_read),
    ("(f) idle broker with 100 topics, RSS MiB (goal < 100)", f(f_rss_mib), ratio(f_rss_mib, 100), f_rss_mib < 100),
    ("(f) idle broker with 100 topics, CPU % of a core (goal < 1)", f(f_cpu_pct, 2), ratio(f_cpu_pct, 1),
     f_cpu_pct < 1),
]

# ---- the report -------------------------------------------------------------------------------
w("# Broker benchmarks: throughput, tail latency and footprint against the machine's limits")
w("")
w("Generated by `scripts/bench.sh" + (" --quick" if quick else "") + "`; do not edit by hand, re-run the script. "
  "docs/PERFORMANCE.md explains the workloads, the tool and where the time goes.")
w("")
if quick:
    w("**A --quick run:** windows of a few seconds, one run per workload, "
      f"{env['CATCHUP_GIB']} GiB for (d): a smoke test of the suite, not figures to quote.")
    w("")
w(f"- Date: {now}; the run took {int(env['ELAPSED']) // 60} min {int(env['ELAPSED']) % 60} s")
w(f"- Commit: {env['COMMIT']}")
w(f"- Machine: {env['NPROC']} CPUs ({env['CPU_MODEL']}), {env['MEM']} RAM, kernel {env['KERNEL']}")
w(f"- Disk: {env['DISK']}; {env['FIO_VERSION']}")
w(f"- Broker: one brokerd with the storage and kafka plugins, one shard pinned to CPU {env['BROKER_CPU']} "
  f"(the disk's request interrupts go to CPU(s) {env['IRQ_CPUS']}), a fresh data directory for every run "
  f"({env['BROKER_STARTS']} starts); the client (sluice-bench, librdkafka {get(res['a1'][0], 'librdkafka', '2.0.2')}) "
  "is not pinned and shares the 2 CPUs with it.")
w(f"- Every workload ran {env['RUNS']} time(s); every figure is the median of its runs, figure by figure.")
w("")
noise = [get(r, "noise.other_pct", 0) for n in names for r in res[n]]
steal = [get(r, "noise.steal_pct", 0) for n in names for r in res[n]]
w(f"Load average before: {env['LOADAVG_BEFORE']}; after: {env['LOADAVG_AFTER']}. Other processes took "
  f"{statistics.median(noise):.0f}% (median; max {max(noise):.0f}%) of the machine's CPU time during the runs, and "
  f"the hypervisor stole up to {max(steal):.0f}%.")
if max(noise) > 10 or max(steal) > 10:
    w("")
    w("**Warning:** in at least one run more than 10% of the CPU time went to other processes or was stolen: "
      "those figures may be disturbed (see the last table).")
w("")
w("## The machine, measured in the same run")
w("")
w("| limit | value | how |")
w("| --- | --- | --- |")
w(f"| O_DIRECT sequential write, 1 MiB (the workloads' batch.size), QD16 | {f(fio_write)} MB/s | fio, io_uring |")
w(f"| 4 KiB write + fdatasync, QD1, p50 / p99 / p99.9 | {f(lat[50])} / {f(lat[99])} / {f(lat[99.9])} us | "
  "fio psync `--fdatasync=1` on a pre-written file: write clat + sync latency at each percentile |")
w(f"| O_DIRECT sequential read, 1 MiB, QD16 | {f(fio_read)} MB/s | fio, io_uring |")
w(f"| loopback TCP, one stream | {f(loopback)} MB/s | iperf3 |")
w(f"| librdkafka producer, 1 KiB records, acks=all, against its mock cluster | {f(mock_a_mb)} MB/s, "
  f"{f(med(res['mock-a1'], 'produce.records_per_sec'), 0)} records/s | sluice-bench --mock --produce-only |")
w(f"| librdkafka producer, 100 B records, against its mock cluster | {f(mock_c_rps, 0)} records/s | "
  "sluice-bench --mock --produce-only |")
w("")
w("## Targets (issue 7)")
w("")
w(f"(a)'s bound: {a_bound_text}. (b) compares with fio's 4 KiB write+fdatasync p99, {f(lat[99])} us. "
  f"(d) with fio's sequential read, {f(fio_read)} MB/s.")
w("")
w("| target | measured (median) | ratio | verdict |")
w("| --- | --- | --- | --- |")
for name, value, r, ok in targets:
    w(f"| {name} | {value} | {r} | {'reported' if ok is None else met(ok)} |")
w("")


def lat_cells(r_list, path):
    return " / ".join(f(med(r_list, f"{path}.{q}"), 0) for q in ("p50", "p99", "p99_9", "p99_99", "max"))


w("## Results")
w("")
w("MB = 10^6 bytes of record values. Latencies in microseconds as p50 / p99 / p99.9 / p99.99 / max. The produce "
  "acknowledgement latency runs from the `rd_kafka_produce` call to the delivery report, so at max rate it is "
  "mostly the time a record waits in the client's queue; end-to-end runs from the same send time to the "
  "consumer's poll returning the record. Broker CPU is utime+stime over the measured window in cores "
  "(1.0 = one CPU busy), RSS and peak RSS (VmHWM) at its end.")
w("")
w("| workload | records/s | MB/s | ratio to the limit | produce ack latency, us | end-to-end latency, us | "
  "broker CPU (cores) | client CPU (cores) | broker RSS / peak MiB |")
w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def row(label, name, tp, limit_text):
    r = res[name]
    e2e = lat_cells(r, "consume.e2e_latency_us") if get(r[0], "consume.e2e_latency_us") else "-"
    ack = lat_cells(r, "produce.ack_latency_us") if get(r[0], "produce.ack_latency_us") else "-"
    w(f"| {label} | {f(med(r, tp + '.records_per_sec'), 0)} | {f(med(r, tp + '.mb_per_sec'))} | {limit_text} | "
      f"{ack} | {e2e} | {f(med(r, 'watched.cores'), 2)} | {f(med(r, 'client_cpu.cores'), 2)} | "
      f"{f(mib(med(r, 'watched.rss_kb_end')), 0)} / {f(mib(med(r, 'watched.hwm_kb')), 0)} |")


row("(a) 1 KiB, 1 partition, max rate", "a1", "produce",
    f"{ratio(a1_mb, fio_write)} of fio write; {ratio(a1_mb, mock_a_mb)} of the client")
row("(a) 1 KiB, 16 partitions, max rate", "a16", "produce",
    f"{ratio(a16_mb, fio_write)} of fio write; {ratio(a16_mb, mock_a_mb)} of the client")
row("(b) 1 KiB, 1 partition, 50% of (a), 1 consumer", "b", "produce",
    f"p99 {ratio(b_p99, lat[99])}x, p99.9 {ratio(b_p999, lat[99])}x fio's 4 KiB sync p99")
row("(c) 100 B, 1 partition, max rate", "c", "produce",
    f"{ratio(c_rps, mock_c_rps)} of the client's records/s")
row(f"(d) catch-up read of {env['CATCHUP_GIB']} GiB, cold", "d", "consume", f"{ratio(d_mb, fio_read)} of fio read")
row("(e) 1,000 partitions, 10 records/s each, 1 consumer", "e", "produce", "-")
row("client ceiling: (a)'s producer, mock cluster", "mock-a1", "produce", f"{ratio(mock_a_mb, loopback)} of loopback")
row("client ceiling: (c)'s producer, mock cluster", "mock-c", "produce", "-")
row("client floor: (b)'s producer at the same rate, mock cluster", "mock-b", "produce", "-")
w("")
w(f"(b) ran at {int(float(env['RATE_B'])):,} records/s (half of (a)'s 1-partition median) with linger.ms=1. "
  f"Its client floor, the same producer against the mock cluster, has ack p99 "
  f"{f(med(res['mock-b'], 'produce.ack_latency_us.p99'), 0)} us: that much of (b)'s latency is the client's.")
w("")
w(f"(d): {env['CATCHUP_GIB']} GiB written first by one producer at "
  f"{f(get(d_write, 'produce.mb_per_sec'))} MB/s (1 partition, retention.bytes=-1); then, for each run, the broker "
  f"was restarted on that data (its batch cache empty) and the page cache dropped: {env['DROP_CACHES']}. "
  "One consumer reads from the earliest offset to the end offset seen at its start "
  "(max.partition.fetch.bytes 16 MiB, fetch.max.bytes 64 MiB).")
w("")
w(f"(e): memory per partition = (broker RSS at the end of the window - RSS of the fresh broker) / 1,000 = "
  f"**{f(e_per_part_kb, 0)} KiB** (median); broker RSS {f(mib(med(res['e'], 'watched.rss_kb_end')), 0)} MiB.")
w("")
w(f"(f): {len(f_runs)} run(s) of a fresh broker, 100 topics of 1 partition created, 5 s to settle, then "
  f"{f_runs[0]['idle_seconds']} s idle: RSS {f(f_rss_mib)} MiB, CPU {f(f_cpu_pct, 2)}% of a core, "
  f"{f(f_per_topic_kb, 0)} KiB per idle topic over the fresh broker's "
  f"{f(statistics.median(r['rss0_kb'] for r in f_runs) / 1024.0)} MiB.")
w("")

# ---- plots ----------------------------------------------------------------------------------
os.makedirs(plot_dir, exist_ok=True)
b_run = median_run(res["b"], "produce.ack_latency_us.p99")
dat = []


def write_dat(name, rows):
    path = os.path.join(plot_dir, name)
    with open(path, "w") as fh:
        for r in rows:
            fh.write(" ".join(str(x) for x in r) + "\n")
    dat.append(path)
    return path


per_sec = get(b_run, "produce.per_second", [])
e2e_sec = {p["t"]: p.get("latency_us", {}) for p in get(b_run, "consume.per_second", [])}
lat_rows = []
for p in per_sec:
    l = p.get("latency_us")
    if not l:
        continue
    e = e2e_sec.get(p["t"], {})
    lat_rows.append((p["t"], l["p50"], l["p99"], l["p99_9"], l["max"], e.get("p99", "NaN")))
lat_dat = write_dat("latency-over-time.dat", lat_rows)
curve_rows = []
for pct_, r in sweep:
    a = get(r, "produce.ack_latency_us")
    e = get(r, "consume.e2e_latency_us", {})
    curve_rows.append((get(r, "produce.mb_per_sec"), a["p50"], a["p99"], a["p99_9"], e.get("p99", "NaN"), pct_))
curve_dat = write_dat("throughput-latency.dat", curve_rows)
tp_rows = []
runs_tp = {n: median_run(res[n], "produce.mb_per_sec") for n in ("a1", "a16")}
for i, p in enumerate(get(runs_tp["a1"], "produce.per_second", [])):
    q = get(runs_tp["a16"], "produce.per_second", [])
    tp_rows.append((p["t"], p["mb"], q[i]["mb"] if i < len(q) else "NaN"))
tp_dat = write_dat("throughput-over-time.dat", tp_rows)


def plot(png, title, xlabel, ylabel, dat_path, series, extra=()):
    """gnuplot commands for one PNG: series are (column, style, title) of dat_path; extra are whole plot items."""
    items = [f'"{dat_path if i == 0 else ""}" using 1:{col} with {style} title "{t}"'
             for i, (col, style, t) in enumerate(series)] + list(extra)
    return "\n".join([f'set output "{plot_dir}/{png}"', f'set title "{title}"', f'set xlabel "{xlabel}"',
                       f'set ylabel "{ylabel}"', "plot " + ", \\\n     ".join(items)])


per_second_x = "second of the measured window"
gp = "\n".join([
    'set terminal pngcairo size 800,440 font ",10"', "set grid", "set key below", "set logscale y",
    plot("latency-over-time.png",
         f"(b) acks=all at 50% of max ({int(float(env['RATE_B'])):,} records/s): latency per second",
         per_second_x, "microseconds (log)", lat_dat,
         [(2, "linespoints", "ack p50"), (3, "linespoints", "ack p99"), (4, "linespoints", "ack p99.9"),
          (5, "lines", "ack max"), (6, "linespoints", "end-to-end p99")],
         [f'{2 * lat[99]:.1f} with lines dashtype 2 title "goal: 2x fio 4 KiB sync p99"']),
    plot("throughput-latency.png",
         "Throughput versus latency, 1 KiB records, acks=all, 1 partition, offered load "
         f"{env['SWEEP'].replace(' ', '/')}% of max", "acknowledged MB/s", "microseconds (log)", curve_dat,
         [(2, "linespoints", "ack p50"), (3, "linespoints", "ack p99"), (4, "linespoints", "ack p99.9"),
          (5, "linespoints", "end-to-end p99")]),
    "unset logscale y", "set yrange [0:*]",
    plot("throughput-over-time.png",
         f"(a) max throughput, 1 KiB records, acks=all: MB/s per second (fio 1 MiB write: {fio_write:,.0f} MB/s)",
         per_second_x, "MB/s", tp_dat, [(2, "linespoints", "1 partition"), (3, "linespoints", "16 partitions")],
         [f'{fio_write:.1f} with lines dashtype 2 title "fio O_DIRECT write 1 MiB"']),
]) + "\n"
subprocess.run(["gnuplot"], input=gp, text=True, check=True)
for p in dat:
    os.remove(p)

w("## Plots")
w("")
w("![latency over time](latency-over-time.png)")
w("")
w("![throughput versus latency](throughput-latency.png)")
w("")
w("![throughput over time](throughput-over-time.png)")
w("")
w("Throughput versus latency (one run per offered load, with a consumer):")
w("")
w("| offered load | records/s | MB/s | produce ack p50 / p99 / p99.9 / p99.99 / max us | end-to-end p99 us | "
  "broker CPU (cores) |")
w("| --- | --- | --- | --- | --- | --- |")
for pct_, r in sweep:
    a = get(r, "produce.ack_latency_us")
    w(f"| {pct_}% | {f(get(r, 'produce.records_per_sec'), 0)} | {f(get(r, 'produce.mb_per_sec'))} | "
      f"{' / '.join(f(a[q], 0) for q in ('p50', 'p99', 'p99_9', 'p99_99', 'max'))} | "
      f"{f(get(r, 'consume.e2e_latency_us.p99'), 0)} | {f(get(r, 'watched.cores'), 2)} |")
w("")
w("## Commands")
w("")
w("Each sluice-bench command also got `--bootstrap 127.0.0.1:PORT --name NAME --watch-pid BROKER --out FILE`.")
w("")
w("```sh")
for k, c in cmds("fio-cmds.txt"):
    w(f"{c}    # {k}")
for k, c in cmds("cmds.txt"):
    w(f"{c}    # {k}")
w("```")
w("")
w("## Noise and raw figures")
w("")
w("| workload | run | records/s | MB/s | ack p99 us | e2e p99 us | broker cores | client cores | "
  "other processes % | steal % |")
w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for n in names + [f"sweep-{p}" for p, _ in sweep] + ["d-write"]:
    for i, r in enumerate(load(n)):
        tp = "consume" if n == "d" else "produce"
        w(f"| {n} | {i + 1} | {f(get(r, tp + '.records_per_sec'), 0)} | {f(get(r, tp + '.mb_per_sec'))} | "
          f"{f(get(r, 'produce.ack_latency_us.p99'), 0)} | {f(get(r, 'consume.e2e_latency_us.p99'), 0)} | "
          f"{f(get(r, 'watched.cores'), 2)} | {f(get(r, 'client_cpu.cores'), 2)} | "
          f"{f(get(r, 'noise.other_pct'))} | {f(get(r, 'noise.steal_pct'))} |")
w("")

with open(report, "w") as fh:
    fh.write("\n".join(out))
print("\n".join(out[:60]))
