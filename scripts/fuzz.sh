#!/usr/bin/env bash
# Longer fuzzing campaigns than the bounded runs in scripts/test.sh (docs/RELIABILITY.md, "Fuzzing").
# Usage: scripts/fuzz.sh [seconds per fuzzer, default 600] [fuzzer ...]   (default: every fuzzer)
# New corpus entries go to build/fuzz/corpus/<corpus>/, crashes to build/fuzz/crashes/<fuzzer>/, each
# fuzzer's log to build/fuzz/logs/<fuzzer>.log. At the end it prints, per fuzzer: executions,
# executions per second, coverage (libFuzzer's cov: edges and ft: features), corpus size and
# crashes, and the CPU seconds it used; the exit status is 1 if any fuzzer found a crash.
# SLUICE_FUZZ_JOBS=N runs N fuzzers at once (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true
all="config:config_fuzz echo:echo_protocol_fuzz kafka_request:kafka_request_fuzz kafka_batch:kafka_batch_fuzz
admin_http:admin_http_fuzz cluster_config:cluster_config_fuzz raft_rpc:raft_rpc_fuzz raft_formats:raft_formats_fuzz
storage_formats:storage_formats_fuzz"
pick=()
for f in $all; do
  if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx "${f##*:}"; then pick+=("$f"); fi
done
scripts/install-deps.sh >/dev/null
cmake --preset fuzz >/dev/null
targets=()
for f in "${pick[@]}"; do targets+=("${f##*:}"); done
cmake --build build/fuzz --target "${targets[@]}"
mkdir -p build/fuzz/logs
parallel="${SLUICE_FUZZ_JOBS:-1}"

# One fuzzer; its summary line goes to build/fuzz/logs/<fuzzer>.summary. CPU time (user + system, from
# GNU time) is what a campaign's length is judged by: on a shared machine wall time overstates it.
run_one() {
  local corpus="${1%%:*}" bin="${1##*:}"
  mkdir -p "build/fuzz/corpus/$corpus" "build/fuzz/crashes/$bin"
  local log="build/fuzz/logs/$bin.log" times="build/fuzz/logs/$bin.time"
  echo "== $bin: $seconds s"
  local rc=0
  (cd build/fuzz && /usr/bin/time -f '%U %S' -o "logs/$bin.time" "./bin/$bin" -max_total_time="$seconds" \
      -timeout=10 -rss_limit_mb=2048 -artifact_prefix="crashes/$bin/" "corpus/$corpus" \
      "../../tests/fuzz/corpus/$corpus") >"$log" 2>&1 || rc=$?
  local runs execs secs last cov ft corp crashes per_s cpu
  runs="$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | awk '{print $2, $5}')"
  execs="${runs%% *}" secs="${runs##* }"
  last="$(grep -E '^#[0-9]+' "$log" | tail -1)"
  cov="$(echo "$last" | grep -o 'cov: [0-9]*' | awk '{print $2}')"
  ft="$(echo "$last" | grep -o 'ft: [0-9]*' | awk '{print $2}')"
  corp="$(ls "build/fuzz/corpus/$corpus" | wc -l)"
  crashes="$(ls "build/fuzz/crashes/$bin" | wc -l)"
  [ "$rc" -ne 0 ] && crashes=$((crashes > 0 ? crashes : 1))
  per_s="-"
  [ -n "$execs" ] && [ -n "$secs" ] && [ "$secs" -gt 0 ] && per_s=$((execs / secs))
  cpu="$(tail -1 "$times" 2>/dev/null | awk 'NF == 2 {printf "%.0f", $1 + $2}')"
  printf '%-22s %12s %10s %8s %8s %8s %8s %8s\n' "$bin" "${execs:--}" "$per_s" "${cpu:--}" "${cov:--}" \
    "${ft:--}" "$corp" "$crashes" >"build/fuzz/logs/$bin.summary"
}

running=0
for f in "${pick[@]}"; do
  rm -f "build/fuzz/logs/${f##*:}.summary"
  run_one "$f" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true
printf '\n%-22s %12s %10s %8s %8s %8s %8s %8s\n' fuzzer executions exec/s cpu_s cov ft corpus crashes
crashed=0
for f in "${pick[@]}"; do
  line="$(cat "build/fuzz/logs/${f##*:}.summary" 2>/dev/null || printf '%-22s (no summary: see its log)' "${f##*:}")"
  echo "$line"
  crashes="$(echo "$line" | awk '{print $NF}')"
  case "$crashes" in ''|*[!0-9]*) crashed=1 ;; 0) ;; *) crashed=1 ;; esac
done
exit "$crashed"
