#!/usr/bin/env bash
# Benchmarks the core executor and writes docs/benchmarks/core.md.
#
# Builds sluice-core-bench (release preset), measures this machine's own
# limits in the same run (loopback TCP bandwidth with iperf3, loopback
# 100-byte ping-pong RTT with blocking Python sockets), then runs each
# benchmark BENCH_RUNS times (interleaved, so a noisy spell does not hit all
# runs of one case), takes the median of every figure and reports it next to
# the machine limit measured alongside.
#
# Usage: scripts/bench-core.sh
#   BENCH_SECONDS=10  measured seconds per run (after a 1 s warm-up)
#   BENCH_RUNS=3      runs per case
#   BENCH_SHARDS=2    shards
#   BENCH_REPORT=docs/benchmarks/core.md
# Needs cmake, ninja, python3 and iperf3 (scripts/install-deps.sh).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bench_seconds=${BENCH_SECONDS:-10}
bench_runs=${BENCH_RUNS:-3}
shards=${BENCH_SHARDS:-2}
report=${BENCH_REPORT:-docs/benchmarks/core.md}

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-core.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in ${pids[@]+"${pids[@]}"}; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf 'bench-core: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for tool in cmake ninja python3 iperf3; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh"
done

# ---- build ----------------------------------------------------------------------
log "building sluice-core-bench (release preset)"
cmake --preset release >"$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; die "cmake configure failed"; }
cmake --build build/release --target sluice-core-bench -j 2 >"$work/build.log" 2>&1 || {
  tail -50 "$work/build.log" >&2
  die "build failed"
}
bench=build/release/bin/sluice-core-bench
[ -x "$bench" ] || die "$bench was not built"

# ---- machine limits -------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
listening() {  # is anyone listening on 127.0.0.1:$1 (TCP)?
  local hex
  hex=$(printf '%04X' "$1")
  grep -q " 0100007F:$hex 00000000:0000 0A " /proc/net/tcp
}

port=$(free_port)
log "iperf3: loopback bandwidth, 1 stream, 10 s (127.0.0.1:$port)"
iperf3 -s -1 -B 127.0.0.1 -p "$port" >"$work/iperf3-server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  listening "$port" && break
  sleep 0.05
done
listening "$port" || { cat "$work/iperf3-server.log" >&2; die "iperf3 server did not start"; }
iperf3 -c 127.0.0.1 -p "$port" -P 1 -t 10 -J >"$work/iperf3.json" 2>"$work/iperf3-client.log" || {
  cat "$work/iperf3-client.log" "$work/iperf3.json" >&2
  die "iperf3 client failed"
}
wait "${pids[-1]}" 2>/dev/null || true

cat >"$work/pingpong.py" <<'EOF'
# Blocking sockets, TCP_NODELAY, a forked echo server: the plain-socket RTT
# floor of this machine (includes two Python interpreter turns per RTT).
# Mode "free": the scheduler places both processes (often on one CPU, where
# a wake-up needs no inter-processor interrupt); "split": client and server
# pinned to the first two allowed CPUs, as the benchmark's pinned shards are.
import json, math, os, socket, sys, time

mode = sys.argv[1]
cpus = sorted(os.sched_getaffinity(0))
if mode == "split" and len(cpus) < 2:
    print(json.dumps({"skipped": "fewer than 2 CPUs"}))
    sys.exit(0)

SIZE, ROUNDS, WARMUP = 100, 20000, 1000

def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed")
        buf += chunk
    return bytes(buf)

lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lsock.bind(("127.0.0.1", 0))
lsock.listen(1)
port = lsock.getsockname()[1]
pid = os.fork()
if pid == 0:
    if mode == "split":
        os.sched_setaffinity(0, {cpus[1]})
    conn, _ = lsock.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            conn.sendall(recv_exact(conn, SIZE))
    except (EOFError, ConnectionError):
        pass
    os._exit(0)
lsock.close()
if mode == "split":
    os.sched_setaffinity(0, {cpus[0]})
c = socket.create_connection(("127.0.0.1", port))
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
msg = b"p" * SIZE
samples = []
now = time.perf_counter_ns
for i in range(WARMUP + ROUNDS):
    t0 = now()
    c.sendall(msg)
    recv_exact(c, SIZE)
    t1 = now()
    if i >= WARMUP:
        samples.append(t1 - t0)
c.close()
os.waitpid(pid, 0)
samples.sort()
def q(p):  # nearest-rank percentile, in microseconds
    return samples[min(len(samples) - 1, max(0, math.ceil(len(samples) * p) - 1))] / 1000.0
print(json.dumps({"size": SIZE, "round_trips": ROUNDS, "p50_us": q(0.50), "p99_us": q(0.99),
                  "mean_us": sum(samples) / len(samples) / 1000.0}))
EOF
# Three times each, interleaved: on an idle VM this swings from run to run.
for run in 1 2 3; do
  log "python: loopback 100-byte ping-pong, 20000 round trips, scheduler-placed ($run/3)"
  python3 "$work/pingpong.py" free >>"$work/pingpong.jsonl"
  log "python: the same, client and server pinned to two different CPUs ($run/3)"
  python3 "$work/pingpong.py" split >>"$work/pingpong-split.jsonl"
done

# ---- benchmarks -----------------------------------------------------------------
# System-wide CPU jiffies from /proc/stat: busy (without steal), steal, total.
# With the benchmark's own CPU time they tell how much else ran meanwhile
# (approximately: the kernel's accounting is tick-sampled).
cpu_stat() {
  awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8; print busy, $9, busy + $5 + $6 + $9 }' /proc/stat
}
clk_tck=$(getconf CLK_TCK)
loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
cases=(
  "channel-c1|channel --shards $shards --seconds $bench_seconds --concurrency 1"
  "channel-c1-nopin|channel --shards $shards --seconds $bench_seconds --concurrency 1 --no-pin"
  "channel-c64|channel --shards $shards --seconds $bench_seconds --concurrency 64"
  "echo-64x100|echo --shards $shards --seconds $bench_seconds --connections 64 --size 100"
  "echo-16x16k|echo --shards $shards --seconds $bench_seconds --connections 16 --size 16384"
)
: >"$work/cases.txt"
for c in "${cases[@]}"; do
  printf '%s|%s %s --json\n' "${c%%|*}" "$bench" "${c#*|}" >>"$work/cases.txt"
done
for run in $(seq "$bench_runs"); do
  for c in "${cases[@]}"; do
    name=${c%%|*}
    args=${c#*|}
    log "run $run/$bench_runs: $name: $bench $args"
    read -r busy0 steal0 total0 < <(cpu_stat)
    TIMEFORMAT='%R %U %S'
    # shellcheck disable=SC2086 # args is a list of words
    { time "$bench" $args --json >"$work/out.json" 2>"$work/err.log"; } 2>"$work/time.txt" || {
      cat "$work/err.log" "$work/out.json" >&2
      die "$name failed"
    }
    read -r busy1 steal1 total1 < <(cpu_stat)
    read -r wall cpu_user cpu_sys <"$work/time.txt"
    cat "$work/out.json" >&2
    tail -n 1 "$work/out.json" >>"$work/$name.jsonl"
    echo "$((busy1 - busy0)) $((steal1 - steal0)) $((total1 - total0)) $wall $cpu_user $cpu_sys" >>"$work/$name.cpu"
  done
done

# ---- report ---------------------------------------------------------------------
mkdir -p "$(dirname "$report")"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git --no-optional-locks status --porcelain -- core cmd/core-bench 2>/dev/null)" ]; then commit="$commit (+ uncommitted changes)"; fi
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
[ -n "$cpu_model" ] || cpu_model=unknown

LOADAVG_BEFORE="$loadavg_before" LOADAVG_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)" CLK_TCK="$clk_tck" \
WORK="$work" REPORT="$report" RUNS="$bench_runs" SECS="$bench_seconds" SHARDS="$shards" \
COMMIT="$commit" NPROC="$(nproc)" KERNEL="$(uname -r)" CPU_MODEL="$cpu_model" \
MEM="$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)" \
python3 - <<'EOF'
import datetime, json, os, statistics, sys

env = os.environ
work = env["WORK"]

def load_lines(name):
    with open(os.path.join(work, name + ".jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]

with open(os.path.join(work, "iperf3.json")) as f:
    iperf = json.load(f)
iperf_bps = iperf["end"]["sum_received"]["bits_per_second"]
iperf_mbs = iperf_bps / 8 / 1e6
def load_pingpong(name):
    """Median p50 and p99 over the runs, and each run's p50."""
    runs = [r for r in load_lines(name) if "skipped" not in r]
    if not runs:
        return None
    return {"p50_us": statistics.median(r["p50_us"] for r in runs),
            "p99_us": statistics.median(r["p99_us"] for r in runs),
            "p50s": ", ".join(f"{r['p50_us']:.1f}" for r in runs)}

pp = load_pingpong("pingpong")
pps = load_pingpong("pingpong-split")

cases = {}
commands = []
with open(os.path.join(work, "cases.txt")) as f:
    for line in f:
        name, cmd = line.rstrip("\n").split("|", 1)
        commands.append((name, cmd))
        cases[name] = load_lines(name)

clk = float(env["CLK_TCK"])
nproc = int(env["NPROC"])

def load_cpu(name):
    """Per run: % of the machine's CPU time used by other processes, and % stolen by the hypervisor."""
    out = []
    with open(os.path.join(work, name + ".cpu")) as f:
        for line in f:
            busy, steal, total, wall, user, sys_ = (float(x) for x in line.split())
            # Wall time x CPUs: /proc/stat's total lags behind on an idle VM.
            total_s = max(wall * nproc, total / clk, 1e-9)
            other = max(0.0, busy / clk - (user + sys_))
            out.append({"other_pct": 100.0 * other / total_s, "steal_pct": 100.0 * steal / total_s,
                        "bench_cpu_s": user + sys_})
    return out

def med(runs, key):
    return statistics.median(r[key] for r in runs)

def spread(runs, key):
    vals = [r[key] for r in runs]
    return min(vals), max(vals)

def check(cond, what):
    if not cond:
        sys.exit("bench-core: report check failed: " + what)

check(iperf_mbs > 0, "iperf3 bandwidth is zero")
check(pp is not None and pp["p50_us"] > 0, "ping-pong RTT is zero")

rows = []
for name, runs in cases.items():
    check(len(runs) == int(env["RUNS"]), f"{name}: {len(runs)} runs recorded")
    for r in runs:
        check(r["errors"] == 0 and r["round_trips"] > 0, f"{name}: a run failed or did nothing")
    rate_key = "msgs_per_sec" if runs[0]["bench"] == "channel" else "round_trips_per_sec"
    row = {
        "name": name,
        "bench": runs[0]["bench"],
        "runs": runs,
        "rate": med(runs, rate_key),
        "rate_spread": spread(runs, rate_key),
        "mbs": med(runs, "mb_per_sec") if "mb_per_sec" in runs[0] else None,
        "p50": med(runs, "rtt_p50_us"),
        "p99": med(runs, "rtt_p99_us"),
        "p999": med(runs, "rtt_p999_us"),
        "mean": med(runs, "rtt_mean_us"),
        "cpu": load_cpu(name),
    }
    if runs[0]["bench"] == "channel":
        row["what"] = (f"channel, {runs[0]['shards']} shards x {runs[0]['concurrency']} caller(s), "
                       f"{runs[0]['payload']} B")
        row["inflight"] = runs[0]["shards"] * runs[0]["concurrency"]
    else:
        row["what"] = (f"TCP echo, {runs[0]['connections']} conns x {runs[0]['size']} B, "
                       f"{runs[0]['shards']} shards")
        row["inflight"] = runs[0]["connections"]
    check(row["rate"] > 0 and row["p50"] > 0, f"{name}: zero median")
    rows.append(row)

def f(x, digits=1):
    return f"{x:,.{digits}f}"

def ratio(x, base):
    r = x / base
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
out = []
w = out.append
w("# Core executor benchmarks")
w("")
w("Generated by `scripts/bench-core.sh`; do not edit by hand, re-run the script.")
w("")
w(f"- Date: {now}")
w(f"- Commit: {env['COMMIT']}")
w(f"- Machine: {env['NPROC']} CPUs ({env['CPU_MODEL']}), {env['MEM']} RAM, kernel {env['KERNEL']}")
w(f"- Each case ran {env['RUNS']} times (interleaved) for {env['SECS']} s after a 1 s warm-up; "
  "every figure below is the median of its runs, taken figure by figure.")
w("")
w(f"**Read with care:** this machine has only {env['NPROC']} cores and is shared with other "
  "tenants (noisy neighbours, virtualized timers and wake-ups). The load generators run on the "
  "same shards as the code under test (the channel callers on the shards they measure, the echo "
  "clients as coroutines next to the echo server), so the client load and the broker share the "
  "CPUs: the figures are a lower bound for the executor and a regression baseline for this "
  "machine, not a capacity statement. Compare runs from the same machine only.")
w("")
noisy = max(c["other_pct"] for r in rows for c in r["cpu"])
steal = max(c["steal_pct"] for r in rows for c in r["cpu"])
w(f"Load average before the benchmark runs: {env['LOADAVG_BEFORE']}; after: {env['LOADAVG_AFTER']}. "
  f"Other processes took up to {noisy:.0f}% of the machine's CPU time during a run, and the hypervisor "
  f"stole up to {steal:.0f}% (per-run figures below).")
if noisy > 10 or steal > 10:
    w("")
    w("**Warning:** during at least one run more than 10% of the CPU time went to other processes or was "
      "stolen by the hypervisor, so its figures are disturbed (usually slower; cross-CPU wake-ups can get "
      "faster, as busy CPUs do not halt): re-run on a quiet machine before comparing.")
w("")
w("## Machine limits (measured in the same run)")
w("")
w("| limit | tool | result |")
w("| --- | --- | --- |")
w(f"| loopback TCP bandwidth | `iperf3 -c 127.0.0.1 -P 1 -t 10` (one stream) | "
  f"{iperf_bps / 1e9:.2f} Gbit/s = {f(iperf_mbs)} MB/s |")
w(f"| loopback 100 B ping-pong RTT | blocking Python sockets, TCP_NODELAY, 20,000 round trips, "
  f"median of 3 runs | p50 {pp['p50_us']:.1f} us, p99 {pp['p99_us']:.1f} us (p50 of each run: {pp['p50s']}) |")
if pps:
    w(f"| the same, across CPUs | client and server pinned to two different CPUs, median of 3 runs | "
      f"p50 {pps['p50_us']:.1f} us, p99 {pps['p99_us']:.1f} us (p50 of each run: {pps['p50s']}) |")
w("")
w("The Python ping-pong is a blocking, one-connection baseline: each round trip includes two "
  "kernel wake-ups (client and server processes) and some interpreter time, so it is a "
  "conservative floor for a loopback round trip, not the best a C program could do. Left to the "
  "scheduler the two processes may share a CPU (a wake-up then needs no inter-processor interrupt); "
  "pinned apart, every wake-up crosses CPUs (an "
  "inter-processor interrupt, costly in a VM), which is what two pinned shards pay when one wakes "
  "the other: compare `channel-c1` (pinned) with `channel-c1-nopin`. In this VM an idle CPU halts "
  "and waking it goes through the hypervisor, so a ping-pong on an idle machine can be several "
  "times slower than on a busy one: the baseline swings between runs, which is why it is measured "
  "in the same run as the benchmarks.")
w("")
w("## Commands")
w("")
w("```sh")
for name, cmd in commands:
    w(f"{cmd}    # {name}")
w("```")
w("")
w("MB = 10^6 bytes. Channel round trips carry the payload both ways; echo MB/s counts the "
  "bytes echoed in one direction. Latencies are round trips measured with `sdk::now_ns()` "
  "around each call (one outstanding per caller or connection, so with many in flight they "
  "include queueing behind the others).")
w("")
w("## Results (medians)")
w("")
w("| case | what | round trips/s (min-max) | MB/s | RTT p50 us | RTT p99 us | RTT p99.9 us | RTT mean us |")
w("| --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    lo, hi = r["rate_spread"]
    mbs = f(r["mbs"]) if r["mbs"] is not None else "-"
    w(f"| {r['name']} | {r['what']} | {f(r['rate'], 0)} ({f(lo, 0)}-{f(hi, 0)}) | {mbs} | "
      f"{r['p50']:.1f} | {r['p99']:.1f} | {r['p999']:.1f} | {r['mean']:.1f} |")
w("")
w("## Against the machine limits")
w("")
w(f"Echo MB/s against the iperf3 single-stream loopback bandwidth ({f(iperf_mbs)} MB/s); RTTs against "
  f"the Python 100 B ping-pong (p50 {pp['p50_us']:.1f} us, p99 {pp['p99_us']:.1f} us): below 1.00x is "
  "faster than the baseline. Cases with many round trips in flight queue behind each other, so their "
  "RTT ratio measures load, not the path.")
w("")
split_hdr = " RTT p50 vs cross-CPU ping-pong p50 |" if pps else ""
w("| case | in flight | MB/s vs iperf3 | RTT p50 vs ping-pong p50 | RTT p99 vs ping-pong p99 |" + split_hdr)
w("| --- | --- | --- | --- | --- |" + (" --- |" if pps else ""))
for r in rows:
    bw = ratio(r["mbs"], iperf_mbs) if r["mbs"] is not None else "-"
    split = f" {ratio(r['p50'], pps['p50_us'])} |" if pps else ""
    w(f"| {r['name']} | {r['inflight']} | {bw} | {ratio(r['p50'], pp['p50_us'])} | "
      f"{ratio(r['p99'], pp['p99_us'])} |" + split)
w("")
w("## Noise")
w("")
w("Per case, over its runs: the share of the machine's CPU time (all cores) that other processes used "
  "while the benchmark ran, the share the hypervisor stole, and the benchmark's own CPU seconds.")
w("")
w("| case | other processes % (median, max) | steal % (median, max) | benchmark CPU s (median) |")
w("| --- | --- | --- | --- |")
for r in rows:
    o = [c["other_pct"] for c in r["cpu"]]
    st = [c["steal_pct"] for c in r["cpu"]]
    b = [c["bench_cpu_s"] for c in r["cpu"]]
    w(f"| {r['name']} | {statistics.median(o):.1f}, {max(o):.1f} | {statistics.median(st):.1f}, {max(st):.1f} | "
      f"{statistics.median(b):.1f} |")
w("")
w("## Raw runs")
w("")
w("<details><summary>JSON lines printed by sluice-core-bench</summary>")
w("")
w("```json")
for r in rows:
    for run in r["runs"]:
        w(json.dumps(run, separators=(",", ":")))
w("```")
w("")
w("</details>")
w("")

with open(env["REPORT"], "w") as fh:
    fh.write("\n".join(out))
print("\n".join(out))
EOF
log "wrote $report"
