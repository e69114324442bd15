#!/usr/bin/env bash
# Longer fuzzing campaigns than the bounded runs in scripts/test.sh.
# Usage: scripts/fuzz.sh [seconds per fuzzer, default 600]
# New corpus entries go to build/fuzz/corpus/<fuzzer>/; crashes to build/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
scripts/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build build/fuzz --target config_fuzz echo_protocol_fuzz kafka_request_fuzz kafka_batch_fuzz admin_http_fuzz cluster_config_fuzz raft_rpc_fuzz raft_formats_fuzz
for f in config:config_fuzz echo:echo_protocol_fuzz kafka_request:kafka_request_fuzz kafka_batch:kafka_batch_fuzz admin_http:admin_http_fuzz cluster_config:cluster_config_fuzz raft_rpc:raft_rpc_fuzz raft_formats:raft_formats_fuzz storage_formats:storage_formats_fuzz; do
  corpus="${f%%:*}" bin="${f##*:}"
  mkdir -p "build/fuzz/corpus/$corpus"
  (cd build/fuzz && "./bin/$bin" -max_total_time="$seconds" -timeout=10 "corpus/$corpus" "../../tests/fuzz/corpus/$corpus")
done
