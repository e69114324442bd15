#!/usr/bin/env bash
# Installs what is missing, builds a release brokerd (with its plugins) and the
# `sluice` CLI, and runs a single-node broker in the foreground on the default
# configuration (config/sluice.yaml).
# Ctrl-C (SIGINT) or SIGTERM drains it and exits 0.
# Usage: scripts/run.sh [brokerd arguments, default: --config config/sluice.yaml]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# Paths relative to the checkout, so every clone shares the compiler cache.
export CCACHE_BASEDIR="$PWD"
cmake --preset release >/dev/null
cmake --build build/release -j "$(nproc)" --target brokerd sluice

if [ $# -eq 0 ]; then
  set -- --config config/sluice.yaml
fi
exec build/release/bin/brokerd "$@"
