#!/usr/bin/env bash
# Benchmarks the partition log's append path and writes docs/benchmarks/storage.md.
#
# Builds sluice-storage-bench (release preset), measures the disk with fio in
# the same run (O_DIRECT sequential write bandwidth at 16 KiB and 1 MiB, QD16;
# 4 KiB write + fdatasync latency at QD1 on a pre-written file, before and
# after the benchmark runs), then runs each case BENCH_RUNS times
# (interleaved, so a noisy spell does not hit all runs of one case), takes
# the median of every figure and reports it as a fraction of the fio figure.
#
# All files live in a scratch directory under build/ (the real disk, never
# tmpfs), deleted at the end.
#
# Usage: scripts/bench-storage.sh
#   BENCH_SECONDS=8        measured seconds per run (after a 6 s warm-up)
#   BENCH_RUNS=3           runs per case
#   BENCH_FIO_SECONDS=15   fio's 16 KiB sequential write (the others run 10 s)
#   BENCH_REPORT=docs/benchmarks/storage.md
#   BENCH_CPU=N            CPU for the shard (default: the one taking the disk's
#                          completion interrupts, as node.cpus would place it)
# Needs cmake, ninja, python3 and fio. Takes about 5 minutes.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bench_seconds=${BENCH_SECONDS:-8}
bench_runs=${BENCH_RUNS:-3}
fio_seconds=${BENCH_FIO_SECONDS:-15}
report=${BENCH_REPORT:-docs/benchmarks/storage.md}

log() { printf 'bench-storage: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for tool in cmake ninja python3 fio; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh (fio: apt-get install fio)"
done

mkdir -p build
work=$(mktemp -d "$root/build/bench-storage.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

fstype=$(stat -f -c %T "$work")
case "$fstype" in
  tmpfs | ramfs) die "$work is on $fstype: the benchmark needs the real disk" ;;
esac
data="$work/data"
mkdir -p "$data"

# ---- shard placement --------------------------------------------------------------
# A completion interrupt lands on one CPU; a shard pinned elsewhere learns
# of its I/O through a cross-CPU wake-up (an IPI, slow under a hypervisor).
# So, as an operator would with node.cpus, the shard goes on the CPU that
# takes the disk's interrupts when one CPU takes them all (a single-queue
# device such as this VM's virtio disk); a multi-queue device has a queue
# per CPU and any placement is local. The report also runs the
# single-writer case on another CPU to show the difference.
dev_name=$(basename "$(readlink -f "/sys/dev/block/$(stat -c '%Hd:%Ld' "$data")" 2>/dev/null || echo unknown)")
[ -e "/sys/block/$dev_name" ] || dev_name=$(basename "$(dirname "$(readlink -f "/sys/class/block/$dev_name" 2>/dev/null || echo /unknown/unknown)")")
irq_dev=$(basename "$(readlink -f "/sys/block/$dev_name/device" 2>/dev/null || echo unknown)")
irq_cpu=""
irq_cpus=""
# Interrupt lines of the device's request queues (virtioN-req.*, nvmeNq*).
for irq in $(awk -v d="$irq_dev" '$0 ~ d"-req|"d"q[0-9]" { sub(":", "", $1); print $1 }' /proc/interrupts); do
  eff=$(cat "/proc/irq/$irq/effective_affinity_list" 2>/dev/null || true)
  [ -n "$eff" ] && irq_cpus="$irq_cpus${irq_cpus:+,}$eff"
done
case "$irq_cpus" in
  "" | *,* | *-*) ;;                # unknown or several CPUs: no single home
  *) irq_cpu=$irq_cpus ;;
esac
shard_cpu=${BENCH_CPU:-${irq_cpu:-$(taskset -pc $$ | sed 's/.*: *//; s/[,-].*//')}}
other_cpu=$(taskset -pc $$ | sed 's/.*: *//' | tr ',' '\n' | while IFS=- read -r a b; do seq "$a" "${b:-$a}"; done |
            grep -vx "$shard_cpu" | head -n 1 || true)
log "shard on CPU $shard_cpu (disk $dev_name, device $irq_dev, request interrupts on CPU(s) ${irq_cpus:-unknown})"

# ---- build ----------------------------------------------------------------------
log "building sluice-storage-bench (release preset)"
cmake --preset release >"$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; die "cmake configure failed"; }
cmake --build build/release --target sluice-storage-bench -j 2 >"$work/build.log" 2>&1 || {
  tail -50 "$work/build.log" >&2
  die "build failed"
}
bench=build/release/bin/sluice-storage-bench
[ -x "$bench" ] || die "$bench was not built"

# ---- the disk's own limits (fio) ------------------------------------------------
fio_file="$data/fio.dat"
fio_cmds=()
run_fio() {  # name, fio arguments...
  local name=$1
  shift
  log "fio $name: fio $*"
  fio --name="$name" --filename="$fio_file" --output-format=json "$@" >"$work/fio-$name.json" 2>"$work/fio-$name.err" || {
    cat "$work/fio-$name.err" "$work/fio-$name.json" >&2
    die "fio $name failed"
  }
  fio_cmds+=("$name|fio --name=$name --filename=FILE $*")
}
seq_args=(--ioengine=io_uring --direct=1 --rw=write --iodepth=16 --size=1G --time_based)
# A QD1 4 KiB write followed by fdatasync, on the file the sequential runs
# wrote (no allocation, no size change): fio reports the write's and the
# sync's latency separately.
lat_args=(--ioengine=psync --rw=write --bs=4k --fdatasync=1 --iodepth=1 --direct=1 --size=1G --runtime=10
  --time_based)
# The same durable 4 KiB write as one system call (O_DSYNC): one latency per
# operation, a cross-check of the sum above.
dsync_args=(--ioengine=psync --rw=write --bs=4k --sync=dsync --iodepth=1 --direct=1 --size=1G --runtime=10
  --time_based)

run_fio seq16k "${seq_args[@]}" --bs=16k --runtime="$fio_seconds"
run_fio seq1m "${seq_args[@]}" --bs=1M --runtime=10
run_fio lat4k "${lat_args[@]}"
run_fio dsync4k "${dsync_args[@]}"

# ---- benchmarks -----------------------------------------------------------------
# System-wide CPU jiffies from /proc/stat: busy (without steal), steal, total.
cpu_stat() {
  awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8; print busy, $9, busy + $5 + $6 + $9 }' /proc/stat
}
clk_tck=$(getconf CLK_TCK)
loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
# The steady state of a log under retention: the default 128 MiB segments
# and 512 MiB retention, with a warm-up long enough (6 s) for even the
# single-writer cases to fill it, so new segments reuse the files of
# deleted ones as in every long-lived partition; a fresh log's first
# segments are slower (see the report).
common="--dir $data --seconds $bench_seconds --warmup 6 --retention-mb 512"
cases=(
  "16k-w64-flush|--batch-bytes 16384 --writers 64 --flush every --cpus $shard_cpu"
  "16k-w1-flush|--batch-bytes 16384 --writers 1 --flush every --cpus $shard_cpu"
  "1k-w64-flush|--batch-bytes 1024 --writers 64 --flush every --cpus $shard_cpu"
  "1k-w1-flush|--batch-bytes 1024 --writers 1 --flush every --cpus $shard_cpu"
  "16k-w8-noflush|--batch-bytes 16384 --writers 8 --flush none --cpus $shard_cpu"
)
if [ -n "$other_cpu" ]; then
  cases+=("1k-w1-flush-cpu$other_cpu|--batch-bytes 1024 --writers 1 --flush every --cpus $other_cpu")
fi
: >"$work/cases.txt"
for c in "${cases[@]}"; do
  printf '%s|%s %s %s --json\n' "${c%%|*}" "$bench" "${c#*|}" "$common" >>"$work/cases.txt"
done
for run in $(seq "$bench_runs"); do
  for c in "${cases[@]}"; do
    name=${c%%|*}
    args="${c#*|} $common"
    log "run $run/$bench_runs: $name: $bench $args"
    read -r busy0 steal0 total0 < <(cpu_stat)
    TIMEFORMAT='%R %U %S'
    # shellcheck disable=SC2086 # args is a list of words
    { time "$bench" $args --json >"$work/out.txt" 2>"$work/err.log"; } 2>"$work/time.txt" || {
      cat "$work/err.log" "$work/out.txt" >&2
      die "$name failed"
    }
    read -r busy1 steal1 total1 < <(cpu_stat)
    read -r wall cpu_user cpu_sys <"$work/time.txt"
    # The log's own messages share stdout: keep the result line.
    grep '^{"bench":"storage"' "$work/out.txt" | tail -n 1 >"$work/out.json"
    [ -s "$work/out.json" ] || { cat "$work/out.txt" >&2; die "$name printed no result"; }
    cat "$work/out.json" >&2
    cat "$work/out.json" >>"$work/$name.jsonl"
    echo "$((busy1 - busy0)) $((steal1 - steal0)) $((total1 - total0)) $wall $cpu_user $cpu_sys" >>"$work/$name.cpu"
  done
done
loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The device after the runs: has it drifted?
run_fio seq16k-after "${seq_args[@]}" --bs=16k --runtime=10
run_fio lat4k-after "${lat_args[@]}"
printf '%s\n' "${fio_cmds[@]}" >"$work/fio-cmds.txt"

# ---- report ---------------------------------------------------------------------
mkdir -p "$(dirname "$report")"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git --no-optional-locks status --porcelain -- plugins/storage cmd/storage-bench core 2>/dev/null)" ]; then
  commit="$commit (+ uncommitted changes)"
fi
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
[ -n "$cpu_model" ] || cpu_model=unknown
disk_dev=$(df --output=source "$data" | tail -n 1)
disk_fs=$(df --output=fstype "$data" | tail -n 1)
mount_opts=$(awk -v d="$disk_dev" '$1 == d { print $4; exit }' /proc/mounts)
disk_name=$(basename "$(readlink -f "/sys/dev/block/$(stat -c '%Hd:%Ld' "$data" 2>/dev/null || echo 0:0)" 2>/dev/null || echo unknown)")
queue="/sys/block/$disk_name/queue"
disk_info="$disk_dev ($disk_fs${mount_opts:+ $mount_opts}"
if [ -d "$queue" ]; then
  disk_info="$disk_info; $disk_name: scheduler $(sed 's/.*\[\(.*\)\].*/\1/' "$queue/scheduler"), write cache $(cat "$queue/write_cache"), FUA $(cat "$queue/fua" 2>/dev/null || echo ?)"
fi
disk_info="$disk_info)"

LOADAVG_BEFORE="$loadavg_before" LOADAVG_AFTER="$loadavg_after" CLK_TCK="$clk_tck" \
WORK="$work" REPORT="$report" RUNS="$bench_runs" SECS="$bench_seconds" FIO_SECS="$fio_seconds" \
COMMIT="$commit" NPROC="$(nproc)" KERNEL="$(uname -r)" CPU_MODEL="$cpu_model" DISK="$disk_info" \
SHARD_CPU="$shard_cpu" IRQ_CPUS="${irq_cpus:-unknown}" IRQ_DEV="$irq_dev" OTHER_CPU="$other_cpu" \
FIO_VERSION="$(fio --version)" MEM="$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)" \
python3 - <<'EOF'
import datetime, json, os, statistics, sys

env = os.environ
work = env["WORK"]

def check(cond, what):
    if not cond:
        sys.exit("bench-storage: report check failed: " + what)

def load_lines(name):
    with open(os.path.join(work, name + ".jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]

def fio_job(name):
    with open(os.path.join(work, f"fio-{name}.json")) as f:
        j = json.load(f)
    job = j["jobs"][0]
    check(job["error"] == 0, f"fio {name} reported error {job['error']}")
    return job

def pct(d, q):
    return d["percentile"][f"{q:.6f}"] / 1000.0  # ns -> us

def seq_mbs(name):
    return fio_job(name)["write"]["bw_bytes"] / 1e6

def lat_sum(name):
    """Per-operation latency of fio's write + fdatasync: each percentile of the write's completion latency
    plus the same percentile of the fdatasync's latency (fio reports the two separately)."""
    job = fio_job(name)
    w, s = job["write"]["clat_ns"], job["sync"]["lat_ns"]
    out = {q: pct(w, q) + pct(s, q) for q in (50, 99, 99.9)}
    out["write"] = {q: pct(w, q) for q in (50, 99, 99.9)}
    out["sync"] = {q: pct(s, q) for q in (50, 99, 99.9)}
    out["iops"] = job["write"]["iops"]
    out["mean"] = (w["mean"] + s["mean"]) / 1000.0
    return out

def lat_single(name):
    job = fio_job(name)
    w = job["write"]["clat_ns"]
    out = {q: pct(w, q) for q in (50, 99, 99.9)}
    out["iops"] = job["write"]["iops"]
    out["mean"] = w["mean"] / 1000.0
    return out

fio_seq16k = seq_mbs("seq16k")
fio_seq16k_after = seq_mbs("seq16k-after")
fio_seq1m = seq_mbs("seq1m")
lat = lat_sum("lat4k")
lat_after = lat_sum("lat4k-after")
dsync = lat_single("dsync4k")
check(fio_seq16k > 0 and fio_seq1m > 0 and lat[99] > 0 and dsync[99] > 0, "a fio figure is zero")
# The yardsticks: the stricter of the two measurements (before and after the runs).
bw_ref = max(fio_seq16k, fio_seq16k_after)
p99_ref = min(lat[99], lat_after[99])

fio_cmds = []
with open(os.path.join(work, "fio-cmds.txt")) as f:
    for line in f:
        name, cmd = line.rstrip("\n").split("|", 1)
        fio_cmds.append((name, cmd))

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
            total_s = max(wall * nproc, total / clk, 1e-9)
            other = max(0.0, busy / clk - (user + sys_))
            out.append({"other_pct": 100.0 * other / total_s, "steal_pct": 100.0 * steal / total_s})
    return out

def med(runs, key):
    return statistics.median(r[key] for r in runs)

keys = ["mb_per_sec", "appends_per_sec", "lat_p50_us", "lat_p99_us", "lat_p999_us", "lat_max_us", "syncs_per_sec",
        "appends_per_sync", "shard_cpu_pct", "process_cpu_pct", "disk_writes_per_sec", "disk_write_kb_avg",
        "disk_write_mb_per_sec", "disk_flushes_per_sec", "disk_busy_pct"]
rows = []
for name, runs in cases.items():
    check(len(runs) == int(env["RUNS"]), f"{name}: {len(runs)} runs recorded")
    for r in runs:
        check(r["errors"] == 0 and r["appends"] > 0, f"{name}: a run failed or did nothing")
    row = {"name": name, "runs": runs, "cpu": load_cpu(name)}
    for k in keys:
        row[k] = med(runs, k)
    row["mb_lo"] = min(r["mb_per_sec"] for r in runs)
    row["mb_hi"] = max(r["mb_per_sec"] for r in runs)
    r0 = runs[0]
    row["flush"] = r0["flush"]
    row["writers"] = r0["writers"]
    row["what"] = (f"{r0['batch_bytes']:,} B batches ({r0['records_per_batch']} x {r0['value_bytes']} B records), "
                   f"{r0['writers']} writer(s), flush {r0['flush']}, CPU {r0.get('cpu_list') or 'default'}")
    check(row["mb_per_sec"] > 0 and row["lat_p50_us"] > 0, f"{name}: zero median")
    rows.append(row)
by_name = {r["name"]: r for r in rows}

def f(x, digits=1):
    return f"{x:,.{digits}f}"

def ratio(x, base):
    r = x / base
    return f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
out = []
w = out.append
w("# Storage benchmarks: partition log append path")
w("")
w("Generated by `scripts/bench-storage.sh`; do not edit by hand, re-run the script.")
w("")
w(f"- Date: {now}")
w(f"- Commit: {env['COMMIT']}")
w(f"- Machine: {env['NPROC']} CPUs ({env['CPU_MODEL']}), {env['MEM']} RAM, kernel {env['KERNEL']}")
w(f"- Disk: {env['DISK']}; {env['FIO_VERSION']}")
w(f"- Each case ran {env['RUNS']} times (interleaved) for {env['SECS']} s after a 6 s warm-up, on one "
  f"shard pinned to CPU {env['SHARD_CPU']} (`--cpus`, as `node.cpus` places a broker's shards): the CPU that "
  f"takes the disk's request interrupts ({env['IRQ_DEV']}: CPU(s) {env['IRQ_CPUS']}), so the shard learns of "
  "a completed write or fdatasync without a cross-CPU wake-up. "
  + (f"`1k-w1-flush-cpu{env['OTHER_CPU']}` repeats the 1 KiB single-writer case on CPU {env['OTHER_CPU']}, "
     "away from the interrupts, to show what that placement costs. " if env['OTHER_CPU'] else "")
  + "Every figure below is the median of its runs, taken figure by figure.")
w("- Steady state: 128 MiB segments (the default), 512 MiB retention per partition, so after the warm-up the log "
  "writes into the files of segments that retention deleted (the storage recycles them), as a "
  "long-lived partition does. A fresh log writes into new files, which the file system must allocate "
  "first: before recycling, 16 KiB x 64 writers reached 1,082 MB/s = 0.69 of fio and single-writer "
  "p99 was 2.2x fio's (report of 2026-11-24 21:27, commit 6162484).")
w("")
w(f"**Read with care:** this machine has only {env['NPROC']} cores, a virtual disk with a write-back cache "
  "on a shared host, and noisy neighbours. Absolute figures drift between runs (the fio figures swing by "
  "2x from day to day): compare each figure only with the fio figure measured in the same run, as the "
  "ratios below do.")
w("")
noisy = max(c["other_pct"] for r in rows for c in r["cpu"])
steal = max(c["steal_pct"] for r in rows for c in r["cpu"])
w(f"Load average before the benchmark runs: {env['LOADAVG_BEFORE']}; after: {env['LOADAVG_AFTER']}. "
  f"Other processes took up to {noisy:.0f}% of the machine's CPU time during a run, and the hypervisor "
  f"stole up to {steal:.0f}%.")
if noisy > 10 or steal > 10:
    w("")
    w("**Warning:** during at least one run more than 10% of the CPU time went to other processes or was "
      "stolen by the hypervisor: those figures may be disturbed.")
w("")
w("## The disk, measured by fio in the same run")
w("")
w("| what | before the runs | after the runs |")
w("| --- | --- | --- |")
w(f"| O_DIRECT sequential write, 16 KiB, QD16 (io_uring) | {f(fio_seq16k)} MB/s | {f(fio_seq16k_after)} MB/s |")
w(f"| O_DIRECT sequential write, 1 MiB, QD16 (io_uring) | {f(fio_seq1m)} MB/s | - |")
w(f"| 4 KiB write + fdatasync, QD1: write + sync p50 / p99 / p99.9 us | "
  f"{lat[50]:.1f} / {lat[99]:.1f} / {lat[99.9]:.1f} ({f(lat['iops'], 0)} ops/s) | "
  f"{lat_after[50]:.1f} / {lat_after[99]:.1f} / {lat_after[99.9]:.1f} ({f(lat_after['iops'], 0)} ops/s) |")
w(f"| ... of which the write (clat) p50 / p99 / p99.9 us | "
  f"{lat['write'][50]:.1f} / {lat['write'][99]:.1f} / {lat['write'][99.9]:.1f} | "
  f"{lat_after['write'][50]:.1f} / {lat_after['write'][99]:.1f} / {lat_after['write'][99.9]:.1f} |")
w(f"| ... and the fdatasync p50 / p99 / p99.9 us | "
  f"{lat['sync'][50]:.1f} / {lat['sync'][99]:.1f} / {lat['sync'][99.9]:.1f} | "
  f"{lat_after['sync'][50]:.1f} / {lat_after['sync'][99]:.1f} / {lat_after['sync'][99.9]:.1f} |")
w(f"| cross-check: 4 KiB O_DSYNC write, QD1, p50 / p99 / p99.9 us | "
  f"{dsync[50]:.1f} / {dsync[99]:.1f} / {dsync[99.9]:.1f} ({f(dsync['iops'], 0)} ops/s) | - |")
w("")
w("How the fio latency is taken: with `--fdatasync=1` fio times the `write` (its completion latency, "
  "clat: with the synchronous psync engine that is the whole system call) and the `fdatasync` that "
  "follows it separately and reports a percentile distribution for each; fio has no distribution of "
  "their sum. The per-operation figure used here is the sum of the two at the same percentile. "
  "For p50 that is close to exact; for p99 it overstates slightly when the two tails are "
  "independent (a slow write and a slow sync rarely coincide). "
  "The O_DSYNC run is the closest single figure fio offers (one `pwrite` that returns once the data "
  "is durable: the kernel writes, then flushes the device cache, as this disk has no FUA), "
  "and it agrees with the sum. Both run on the 1 GiB file the sequential runs had already "
  "written, so no write allocates blocks or changes the file size.")
w("")
w(f"**Yardsticks** (the stricter of the before and after measurements): bandwidth "
  f"{f(bw_ref)} MB/s (fio 16 KiB QD16; no O_DIRECT write smaller than the 4 KiB sector exists, so the "
  f"1 KiB cases are compared with the same figure), p99 {p99_ref:.1f} us (fio 4 KiB write + fdatasync).")
w("")
w("## Commands")
w("")
w("```sh")
for name, cmd in fio_cmds:
    w(f"{cmd}    # {name}")
for name, cmd in commands:
    w(f"{cmd}    # {name}")
w("```")
w("")
w("MB = 10^6 bytes. Latency is one writer's `append()` (+ `flush()` with `--flush every`) in "
  "microseconds, measured with `sdk::now_ns()`; with 64 writers it includes waiting for the group "
  "commit the append joins. Each append is one batch copied from a template into a fresh buffer "
  "(not timed).")
w("")
w("## Results (medians) against fio")
w("")
w("| case | what | MB/s (min-max) | appends/s | p50 us | p99 us | p99.9 us | max us | "
  "MB/s / fio 16k seq | p99 / fio 4k write+sync p99 |")
w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    lat_ratio = ratio(r["lat_p99_us"], p99_ref) if r["flush"] == "every" else "- (no flush)"
    w(f"| {r['name']} | {r['what']} | {f(r['mb_per_sec'])} ({f(r['mb_lo'])}-{f(r['mb_hi'])}) | "
      f"{f(r['appends_per_sec'], 0)} | {r['lat_p50_us']:.1f} | {r['lat_p99_us']:.1f} | {r['lat_p999_us']:.1f} | "
      f"{r['lat_max_us']:.0f} | {ratio(r['mb_per_sec'], bw_ref)} | {lat_ratio} |")
w("")
w(f"For reference, against fio's 1 MiB sequential write ({f(fio_seq1m)} MB/s): " +
  ", ".join(f"{r['name']} {ratio(r['mb_per_sec'], fio_seq1m)}" for r in rows) + ".")
w("")
w("## Targets")
w("")
a = by_name["16k-w64-flush"]
t1 = a["mb_per_sec"] >= 0.8 * bw_ref
w(f"1. Append+flush throughput with group commit, 16 KiB batches (`16k-w64-flush`), at or above 80% of fio's "
  f"16 KiB O_DIRECT sequential write: {f(a['mb_per_sec'])} / {f(bw_ref)} MB/s = "
  f"**{a['mb_per_sec'] / bw_ref:.0%}: {'met' if t1 else 'NOT met'}**.")
single = [by_name["1k-w1-flush"], by_name["16k-w1-flush"]]
t2 = all(r["lat_p99_us"] <= 1.5 * p99_ref for r in single)
w(f"2. Append+flush p99 within 1.5x fio's 4 KiB write+fdatasync p99 ({p99_ref:.1f} us, so at most "
  f"{1.5 * p99_ref:.1f} us), judged on the single-writer cases, which like fio have one operation in flight: " +
  "; ".join(f"`{r['name']}` {r['lat_p99_us']:.1f} us = {r['lat_p99_us'] / p99_ref:.2f}x" for r in single) +
  f": **{'met' if t2 else 'NOT met'}**. The 64-writer cases wait for the group commit they join "
  "(and the one before it), so their p99 measures queueing as much as the path: "
  + "; ".join(f"`{r['name']}` {r['lat_p99_us'] / p99_ref:.2f}x" for r in rows
              if r["writers"] > 1 and r["flush"] == "every") + ".")
away = [r for r in rows if r["name"].startswith("1k-w1-flush-cpu")]
if away:
    r = away[0]
    w(f"   Away from the interrupts (`{r['name']}`) the same case has p50 {r['lat_p50_us']:.1f} us and "
      f"p99 {r['lat_p99_us']:.1f} us = {r['lat_p99_us'] / p99_ref:.2f}x: on a single-queue disk, place the "
      "shards that own busy partitions on the interrupt CPU (`node.cpus`, docs/CONFIG.md).")
w("")
w("## What the log did (medians)")
w("")
w("fdatasync calls come from the log's own counter (`log_stats::syncs`); CPU from the shard thread's and the "
  "whole process's CPU clocks (the process includes io_uring's worker threads, which run the fdatasyncs "
  "and the writes that cannot complete without blocking); the disk columns from the block device's "
  "counters (`/sys/block/<dev>/stat`, machine-wide) over the same window. A flush reaches the device as an "
  "empty write with a pre-flush, which the kernel counts as a write too: the data writes column leaves "
  "those out. In the single-writer cases every append+flush is exactly one write by the log and one "
  "fdatasync, so data writes per append above 1 are metadata the file system wrote for the fdatasync "
  "(the inode's new size, block bitmaps of the newly allocated blocks).")
w("")
w("| case | fdatasync/s | appends per fdatasync | shard CPU % | process CPU % | disk data writes/s | "
  "avg disk write KB | disk MB/s (vs appended) | disk flushes/s | disk busy % |")
w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    amp = r["disk_write_mb_per_sec"] / r["mb_per_sec"] if r["mb_per_sec"] else 0
    w(f"| {r['name']} | {f(r['syncs_per_sec'], 0)} | {r['appends_per_sync']:.1f} | {r['shard_cpu_pct']:.0f} | "
      f"{r['process_cpu_pct']:.0f} | {f(r['disk_writes_per_sec'], 0)} | {r['disk_write_kb_avg']:.1f} | "
      f"{f(r['disk_write_mb_per_sec'])} ({amp:.2f}x) | {f(r['disk_flushes_per_sec'], 0)} | "
      f"{r['disk_busy_pct']:.0f} |")
w("")
w("## Noise")
w("")
w("| case | other processes % (median, max) | steal % (median, max) |")
w("| --- | --- | --- |")
for r in rows:
    o = [c["other_pct"] for c in r["cpu"]]
    st = [c["steal_pct"] for c in r["cpu"]]
    w(f"| {r['name']} | {statistics.median(o):.1f}, {max(o):.1f} | {statistics.median(st):.1f}, {max(st):.1f} |")
w("")
w("## Raw runs")
w("")
w("<details><summary>JSON lines printed by sluice-storage-bench</summary>")
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
