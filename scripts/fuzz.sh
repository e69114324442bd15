#!/usr/bin/env bash
# Longer fuzzing campaigns than the bounded runs in scripts/test.sh (docs/RELIABILITY.md, "Fuzzing").
# Usage: scripts/fuzz.sh [seconds per fuzzer, default 600] [fuzzer ...]   (default: every fuzzer)
# New corpus entries go to build/fuzz/corpus/<corpus>/, crashes to build/fuzz/crashes/<fuzzer>/, each
# fuzzer's log to build/fuzz/logs/<fuzzer>.log. At the end it prints, per fuzzer: executions,
# executions per second, coverage (libFuzzer's cov: edges and ft: features), corpus size and
# crashes; the exit status is 1 if any fuzzer found a crash.
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
summary=()
crashed=0
for f in "${pick[@]}"; do
  corpus="${f%%:*}" bin="${f##*:}"
  mkdir -p "build/fuzz/corpus/$corpus" "build/fuzz/crashes/$bin"
  log="build/fuzz/logs/$bin.log"
  echo "== $bin: $seconds s"
  rc=0
  (cd build/fuzz && "./bin/$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="crashes/$bin/" "corpus/$corpus" "../../tests/fuzz/corpus/$corpus") >"$log" 2>&1 || rc=$?
  runs="$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | awk '{print $2, $5}')"
  execs="${runs%% *}" secs="${runs##* }"
  last="$(grep -E '^#[0-9]+' "$log" | tail -1)"
  cov="$(echo "$last" | grep -o 'cov: [0-9]*' | awk '{print $2}')"
  ft="$(echo "$last" | grep -o 'ft: [0-9]*' | awk '{print $2}')"
  corp="$(ls "build/fuzz/corpus/$corpus" | wc -l)"
  crashes="$(ls "build/fuzz/crashes/$bin" | wc -l)"
  [ "$rc" -ne 0 ] && crashes=$((crashes > 0 ? crashes : 1))
  [ "$crashes" -gt 0 ] && crashed=1
  per_s="-"
  [ -n "$execs" ] && [ -n "$secs" ] && [ "$secs" -gt 0 ] && per_s=$((execs / secs))
  summary+=("$(printf '%-22s %12s %10s %8s %8s %8s %8s' "$bin" "${execs:--}" "$per_s" "${cov:--}" "${ft:--}" "$corp" "$crashes")")
done
printf '\n%-22s %12s %10s %8s %8s %8s %8s\n' fuzzer executions exec/s cov ft corpus crashes
printf '%s\n' "${summary[@]}"
exit "$crashed"
