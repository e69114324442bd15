#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test:
#   1. the debug preset (AddressSanitizer + UndefinedBehaviorSanitizer): unit
#      and integration tests under CTest;
#   2. the fuzz preset (clang 14, libFuzzer): each fuzzer for a bounded time;
#   3. the release preset: what scripts/run.sh and scripts/cluster.sh build
#      (-O2 reports warnings, errors under -Werror, that -O1 does not).
# Usage: scripts/test.sh [extra ctest arguments, e.g. -R channel]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

jobs=$(nproc)
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# Paths relative to the checkout, so every clone shares the compiler cache.
export CCACHE_BASEDIR="$PWD"

echo "== build (debug: ASan + UBSan)"
cmake --preset debug >/dev/null
cmake --build build/debug -j "$jobs"

echo "== tests"
ctest --test-dir build/debug --output-on-failure -j "$jobs" "$@"

if [ $# -eq 0 ]; then
  echo "== fuzzers (clang 14 libFuzzer, bounded runs)"
  cmake --preset fuzz >/dev/null
  cmake --build build/fuzz -j "$jobs" --target config_fuzz echo_protocol_fuzz kafka_request_fuzz kafka_batch_fuzz admin_http_fuzz cluster_config_fuzz raft_rpc_fuzz raft_formats_fuzz storage_formats_fuzz
  ctest --test-dir build/fuzz --output-on-failure -L fuzz -j "$jobs"

  echo "== release build (the quickstart's and the cluster script's binaries)"
  cmake --preset release >/dev/null
  cmake --build build/release -j "$jobs" --target brokerd sluice
fi
