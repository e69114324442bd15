#!/usr/bin/env bash
# The reliability harness (docs/RELIABILITY.md): builds what it needs, then runs one seeded run or a
# campaign of N runs of tests/chaos/chaos.py and writes the report (report.md, report.json,
# timeline-N.png) to --report (default build/chaos).
#
#   scripts/chaos.sh                              one run of 60 s, seed 1
#   scripts/chaos.sh --runs 100 --seed 1000       a campaign (about 90 s per run)
#   scripts/chaos.sh --kinds power-loss-all,pause --runs 10
#   scripts/chaos.sh --seed 1042 --runs 1         replay run 42 of the campaign above
#
# Needs root (network namespaces, iptables, FUSE); it says so and exits 77 where the kernel or the
# tools are missing. Brokers: the release build (SLUICE_BUILD_DIR, default build/release); the
# power-loss filesystem comes from the debug build. Environment: SLUICE_CHAOS_NO_BUILD=1 uses the
# binaries as they are. Every other argument goes to chaos.py (--help lists them).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
BUILD_DIR="${SLUICE_BUILD_DIR:-build/release}"
jobs="$(nproc)"
if [ "${SLUICE_CHAOS_NO_BUILD:-0}" != 1 ]; then
  scripts/install-deps.sh
  export CCACHE_BASEDIR="$root"
  preset="$(basename "$BUILD_DIR")"
  cmake --preset "$preset" >/dev/null
  cmake --build "$BUILD_DIR" -j "$jobs" --target cluster_test_deps
  cmake --preset debug >/dev/null
  cmake --build build/debug -j "$jobs" --target sluice-faultfs
fi
exec /usr/bin/python3 tests/chaos/chaos.py --build-dir "$BUILD_DIR" "$@"
