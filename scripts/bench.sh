#!/usr/bin/env bash
# The broker's benchmark suite (issue 7): runs sluice-bench's standard
# workloads against a fresh single-node brokerd, next to the machine's own
# limits measured in the same run, and writes a Markdown report with plots.
#
# 1. Builds brokerd, the storage and kafka plugins and sluice-bench (release preset, build/release).
# 2. Measures the machine: fio O_DIRECT sequential write at the workloads'
#    batch size (1 MiB, QD16), 4 KiB write + fdatasync latency (QD1, on a
#    pre-written file), O_DIRECT sequential read (1 MiB, QD16), and loopback
#    TCP bandwidth (iperf3).
# 3. Measures the client's own ceiling: sluice-bench --mock (librdkafka's
#    in-process mock cluster, no broker) with the settings of (a), (b) and (c).
# 4. Runs the standard workloads, each on a fresh broker and data directory
#    (one shard on the CPU that takes the disk's interrupts, as node.cpus
#    would place it; the client is not pinned):
#      (a) max throughput, 1 KiB records, acks=all, 1 and 16 partitions
#      (b) tail latency at 50% of (a)'s 1-partition throughput, acks=all, with a consumer
#          (plus a sweep of offered loads for the throughput-versus-latency curve)
#      (c) 100-byte records at max rate
#      (d) catch-up read of data written earlier, cold: broker restarted and the page cache dropped
#      (e) 1,000 partitions at a low rate each: memory per partition
#      (f) idle broker with 100 topics: RSS and CPU
#    recording the broker's CPU time (utime+stime) and memory (VmRSS, VmHWM)
#    over each measured window (sluice-bench --watch-pid).
# 5. Writes the report (median of BENCH_RUNS runs per workload; every figure
#    also as a ratio to its machine limit) and the PNG plots (gnuplot).
#
# Usage: scripts/bench.sh [--quick] [--runs N] [--report FILE]
#   --quick        a smoke run: short windows, 512 MiB for (d), one run each (< 3 minutes)
#   --runs N       runs per workload (default 3, --quick 1; BENCH_RUNS)
#   --report FILE  the Markdown report (default docs/benchmarks/perf/report.md;
#                  the PNGs go beside it; BENCH_REPORT)
#   BENCH_JOBS=N   build jobs (default: all CPUs)
#   BENCH_CPU=N    the broker's CPU (default: the disk's interrupt CPU)
#   BENCH_CATCHUP_GIB=N  data written for (d) (default 5, --quick 0.5)
#   BENCH_KEEP_WORK=1    keep the scratch directory's results and logs (not the data)
# Needs cmake, ninja, python3, fio, iperf3, gnuplot (scripts/install-deps.sh).
# Takes about 30 minutes (--quick: under 3). Scratch files live under build/
# (the real disk) and are deleted at the end, the data of (d) included.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/bench/common.sh"
bench_init bench

quick=0
runs=${BENCH_RUNS:-}
report=${BENCH_REPORT:-docs/benchmarks/perf/report.md}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --report) report=${2:?--report needs a file}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
if [ "$quick" = 1 ]; then
  runs=${runs:-1}
  warmup=1 secs=3 sweep_secs=2 idle_secs=10 fio_secs=3 fio_size=512M
  catchup_gib=${BENCH_CATCHUP_GIB:-0.5}
  sweep="25 50 100"
else
  runs=${runs:-3}
  warmup=10 secs=30 sweep_secs=15 idle_secs=30 fio_secs=15 fio_size=2G
  catchup_gib=${BENCH_CATCHUP_GIB:-5}
  sweep="10 25 50 75 90 100"
fi
case "$runs" in '' | *[!0-9]* | 0) die "--runs needs a positive number" ;; esac

bench_require cmake ninja python3 fio iperf3 gnuplot
bench_workdir bench
broker_pid=""
cleanup() {
  if [ -n "$broker_pid" ]; then kill -KILL "$broker_pid" 2>/dev/null || true; fi
  if [ "${BENCH_KEEP_WORK:-0}" = 1 ]; then
    rm -rf "$work/broker/data" "$work/fio.dat"
    log "kept $work (results and logs; re-run the report with scripts/bench/report.py and the environment it needs)"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/res" "$work/logs"
start_time=$(date +%s)
loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)

bench_irq_cpu "$work"
broker_cpu=${BENCH_CPU:-${irq_cpu:-$(taskset -pc $$ | sed 's/.*: *//; s/[,-].*//')}}
log "broker shard on CPU $broker_cpu (disk $dev_name, request interrupts on CPU(s) ${irq_cpus:-unknown})"

bench_build_release brokerd sluice_plugin_storage sluice_plugin_kafka sluice-bench
bin=build/release/bin
plugins=$root/build/release/lib/sluice/plugins
bench=$bin/sluice-bench

# ---- the machine's limits ------------------------------------------------------------
fio_file="$work/fio.dat"
bench_fio seqwrite-1m "$fio_file" --ioengine=io_uring --direct=1 --rw=write --bs=1M --iodepth=16 --size="$fio_size" \
  --runtime="$fio_secs" --time_based
# QD1 4 KiB write + fdatasync on the file just written (no allocation, no size change).
bench_fio lat4k "$fio_file" --ioengine=psync --rw=write --bs=4k --fdatasync=1 --iodepth=1 --direct=1 \
  --size="$fio_size" --runtime="$fio_secs" --time_based
bench_fio seqread-1m "$fio_file" --ioengine=io_uring --direct=1 --rw=read --bs=1M --iodepth=16 --size="$fio_size" \
  --runtime="$fio_secs" --time_based
rm -f "$fio_file"
iperf_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
iperf3 -s -1 -p "$iperf_port" >"$work/logs/iperf3-server.log" 2>&1 &
iperf_server=$!
sleep 0.5
log "iperf3 -c 127.0.0.1 -t $fio_secs (loopback)"
iperf3 -c 127.0.0.1 -p "$iperf_port" -t "$fio_secs" -J >"$work/iperf3.json" || die "iperf3 failed"
wait "$iperf_server" 2>/dev/null || true
echo "iperf3|iperf3 -s -1 -p PORT & iperf3 -c 127.0.0.1 -p PORT -t $fio_secs -J" >>"$work/fio-cmds.txt"

# ---- the broker ------------------------------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
broker_dir="$work/broker"
mkdir -p "$broker_dir"
# Retention keeps the max-throughput runs' disk use bounded: 512 MiB per
# partition in 128 MiB segments, checked every second; (d)'s topic keeps everything.
cat >"$broker_dir/sluice.yaml" <<EOF
# Written by scripts/bench.sh
node:
  id: 1
  data_dir: $broker_dir/data
  cpus: [$broker_cpu]
  plugin_dir: $plugins
plugins:
  - name: storage
    config:
      retention_check_interval_ms: 1000
  - name: kafka
    config:
      listeners:
        - name: PLAINTEXT
          address: 127.0.0.1:$port
      auto_create_topics_enable: false
      group_initial_rebalance_delay_ms: 0
      log_segment_bytes: 134217728
      log_retention_bytes: 536870912
EOF
broker_starts=0

# broker_start [keep]: a new brokerd on a fresh data directory (keep: the
# same data as before); sets broker_pid and broker_rss0_kb (VmRSS once ready).
broker_start() {
  [ "${1:-}" = keep ] || rm -rf "$broker_dir/data"
  broker_starts=$((broker_starts + 1))
  "$bin/brokerd" --config "$broker_dir/sluice.yaml" >>"$work/logs/brokerd.log" 2>&1 &
  broker_pid=$!
  local deadline=$((SECONDS + 60))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 "$broker_pid" 2>/dev/null || { tail -30 "$work/logs/brokerd.log" >&2; die "brokerd exited at start"; }
    [ $SECONDS -lt $deadline ] || die "brokerd does not accept connections on port $port after 60 s"
    sleep 0.1
  done
  sleep 1  # the storage opens __consumer_offsets after the listener
  broker_rss0_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$broker_pid/status")
}

# broker_stop: SIGTERM, and the broker must exit 0 within 40 s.
broker_stop() {
  [ -n "$broker_pid" ] || return 0
  kill -TERM "$broker_pid"
  local i status=0
  for i in $(seq 400); do
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$broker_pid" 2>/dev/null; then
    kill -KILL "$broker_pid"
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
    die "brokerd did not stop within 40 s of SIGTERM"
  fi
  wait "$broker_pid" || status=$?
  broker_pid=""
  [ "$status" = 0 ] || { tail -30 "$work/logs/brokerd.log" >&2; die "brokerd exited with status $status"; }
}

# broker_proc: "cpu_seconds vmrss_kb vmhwm_kb" of the running broker.
broker_proc() {
  local ticks
  ticks=$(sed 's/.*) //' "/proc/$broker_pid/stat" | awk '{print $12 + $13}')
  echo "$(awk -v t="$ticks" -v h="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / h}')" \
    "$(awk '/^VmRSS/ {print $2}' "/proc/$broker_pid/status")" "$(awk '/^VmHWM/ {print $2}' "/proc/$broker_pid/status")"
}

# bench_run NAME RUN ARG...: one sluice-bench run; its JSON result goes to
# res/NAME.RUN.json, with "noise": the share of the machine's CPU time that
# neither the client nor the broker used during the whole run, and the share
# the hypervisor stole.
bench_run() {
  local name=$1 run=$2
  shift 2
  local out="$work/res/$name.$run.json" watch=() bcpu0=0 bcpu1=0
  [ -n "$broker_pid" ] && watch=(--watch-pid "$broker_pid")
  grep -q "^$name|" "$work/cmds.txt" 2>/dev/null || echo "$name|sluice-bench $*" >>"$work/cmds.txt"
  log "run $run: $name: sluice-bench $*"
  local busy0 steal0 total0 busy1 steal1 total1 wall user sys
  [ -n "$broker_pid" ] && read -r bcpu0 _ _ < <(broker_proc)
  read -r busy0 steal0 total0 < <(bench_cpu_stat)
  TIMEFORMAT='%R %U %S'
  { time "$bench" --bootstrap "127.0.0.1:$port" --name "$name" "$@" "${watch[@]}" --out "$out.tmp" \
    >>"$work/logs/$name.$run.log" 2>&1; } 2>"$work/time.txt" ||
    { tail -30 "$work/logs/$name.$run.log" >&2; die "$name run $run failed"; }
  read -r busy1 steal1 total1 < <(bench_cpu_stat)
  [ -n "$broker_pid" ] && read -r bcpu1 _ _ < <(broker_proc)
  read -r wall user sys <"$work/time.txt"
  python3 - "$out.tmp" "$out" "$((busy1 - busy0))" "$((steal1 - steal0))" "$((total1 - total0))" \
    "$(getconf CLK_TCK)" "$wall" "$user" "$sys" "$bcpu0" "$bcpu1" "$(nproc)" <<'EOF2'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
busy, steal, total, hz, wall, user, sys_, b0, b1, n = map(float, sys.argv[3:])
r = json.load(open(src))
total_s = max(wall * n, total / hz, 1e-9)
other = max(0.0, busy / hz - (user + sys_) - (b1 - b0))
r["noise"] = {"other_pct": round(100 * other / total_s, 1), "steal_pct": round(100 * steal / hz / total_s, 1),
              "client_cpu_s": round(user + sys_, 2), "broker_cpu_s": round(b1 - b0, 2), "wall_s": wall}
json.dump(r, open(dst, "w"))
EOF2
  rm -f "$out.tmp"
  tail -3 "$work/logs/$name.$run.log" >&2
}

median_of() {  # median_of JSONPATH FILE...: the median of a number in result files
  python3 - "$@" <<'EOF'
import json, statistics, sys
path, files = sys.argv[1].split("."), sys.argv[2:]
vals = []
for f in files:
    v = json.load(open(f))
    for k in path:
        v = v[k]
    vals.append(v)
print(statistics.median(vals))
EOF
}

producer_a=(--record-size 1024 --acks all --linger-ms 5 --batch-size 1048576 --producers 1)
producer_b=(--record-size 1024 --acks all --linger-ms 1 --batch-size 1048576 --producers 1)
producer_c=(--record-size 100 --acks all --linger-ms 5 --batch-size 1048576 --producers 1)
times=(--warmup "$warmup" --duration "$secs")

# ---- (a) and (c): max throughput, and the client's ceiling ---------------------------------
# The ceilings (no broker running) are interleaved with the broker runs, so a
# noisy spell on the shared machine hits both alike.
for run in $(seq "$runs"); do
  bench_run mock-a1 "$run" --mock --produce-only --topic a1 "${producer_a[@]}" "${times[@]}"
  bench_run mock-c "$run" --mock --produce-only --topic c "${producer_c[@]}" "${times[@]}"
  broker_start
  bench_run a1 "$run" --produce-only --topic a1 --partitions 1 "${producer_a[@]}" "${times[@]}"
  broker_stop
  broker_start
  bench_run a16 "$run" --produce-only --topic a16 --partitions 16 --key-distribution round-robin \
    "${producer_a[@]}" "${times[@]}"
  broker_stop
  broker_start
  bench_run c "$run" --produce-only --topic c --partitions 1 "${producer_c[@]}" "${times[@]}"
  broker_stop
done

# ---- (b): tail latency at 50% of (a), and the throughput-latency curve -----------------------
max_rate=$(median_of produce.records_per_sec "$work"/res/a1.*.json)
rate_b=$(python3 -c "print(max(1, round($max_rate * 0.5)))")
log "(a) 1 partition: median $max_rate records/s; (b) runs at $rate_b records/s"
for run in $(seq "$runs"); do
  broker_start
  bench_run b "$run" --topic b --partitions 1 --rate "$rate_b" --consumers 1 "${producer_b[@]}" "${times[@]}"
  broker_stop
  bench_run mock-b "$run" --mock --produce-only --topic b --rate "$rate_b" "${producer_b[@]}" "${times[@]}"
done
for pct in $sweep; do
  rate=$(python3 -c "print(max(1, round($max_rate * $pct / 100)))")
  broker_start
  bench_run "sweep-$pct" 1 --topic sweep --partitions 1 --rate "$rate" --consumers 1 "${producer_b[@]}" \
    --warmup "$warmup" --duration "$sweep_secs"
  broker_stop
done

# ---- (d): catch-up read, cold --------------------------------------------------------------
catchup_bytes=$(python3 -c "print(int($catchup_gib * 2**30))")
broker_start
bench_run d-write 1 --produce-only --topic d --partitions 1 --topic-config retention.bytes=-1 "${producer_a[@]}" \
  --produce-bytes "$catchup_bytes" --warmup 0 --duration 3600
broker_stop
drop_caches="no (cannot write /proc/sys/vm/drop_caches)"
for run in $(seq "$runs"); do
  # Cold: a new broker process (empty batch cache) and, where allowed, an empty page cache.
  sync
  if echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then drop_caches=yes; fi
  broker_start keep
  bench_run d "$run" --consume-only --topic d --no-create-topics --consumer-group - --consumers 1 \
    --consumer-config max.partition.fetch.bytes=16777216 --consumer-config fetch.max.bytes=67108864 \
    --warmup 0 --duration 3600
  broker_stop
done
rm -rf "$broker_dir/data"

# ---- (e): 1,000 partitions at a low rate ---------------------------------------------------
for run in $(seq "$runs"); do
  broker_start
  echo "$broker_rss0_kb" >"$work/res/e.$run.rss0"
  bench_run e "$run" --topic e --partitions 1000 --rate 10000 --key-distribution round-robin --consumers 1 \
    "${producer_b[@]}" "${times[@]}"
  broker_stop
done

# ---- (f): idle footprint with 100 topics --------------------------------------------------
for run in $(seq "$runs"); do
  broker_start
  rss0=$broker_rss0_kb
  "$bench" --bootstrap "127.0.0.1:$port" --create-only --topics 100 --topic f >>"$work/logs/f.$run.log" 2>&1 ||
    die "(f): creating 100 topics failed"
  grep -q "^f|" "$work/cmds.txt" 2>/dev/null || echo "f|sluice-bench --create-only --topics 100 --topic f" >>"$work/cmds.txt"
  sleep 5  # settle
  read -r cpu0 _ _ < <(broker_proc)
  log "run $run: f: idle for $idle_secs s with 100 topics"
  sleep "$idle_secs"
  read -r cpu1 rss hwm < <(broker_proc)
  echo "{\"rss0_kb\": $rss0, \"rss_kb\": $rss, \"hwm_kb\": $hwm, \"cpu_seconds\": $(python3 -c "print($cpu1 - $cpu0)"), \"idle_seconds\": $idle_secs}" \
    >"$work/res/f.$run.json"
  cat "$work/res/f.$run.json" >&2
  broker_stop
done

loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report -----------------------------------------------------------------------------
bench_machine "$work"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git --no-optional-locks status --porcelain -- core plugins cmd/brokerd cmd/sluice-bench 2>/dev/null)" ]; then
  commit="$commit (+ uncommitted changes)"
fi
WORK="$work" REPORT="$report" RUNS="$runs" QUICK="$quick" COMMIT="$commit" BROKER_CPU="$broker_cpu" \
IRQ_CPUS="${irq_cpus:-unknown}" LOADAVG_BEFORE="$loadavg_before" LOADAVG_AFTER="$loadavg_after" \
DROP_CACHES="$drop_caches" CATCHUP_GIB="$catchup_gib" RATE_B="$rate_b" SWEEP="$sweep" \
ELAPSED="$(($(date +%s) - start_time))" FIO_VERSION="$(fio --version)" BROKER_STARTS="$broker_starts" \
  python3 "$root/scripts/bench/report.py"
log "wrote $report and its plots in $(dirname "$report")"
