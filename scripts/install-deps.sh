#!/usr/bin/env bash
# Installs every Debian package that building, testing and running Sluice needs,
# and the npm packages of the kafkajs client test and the web console test (each
# pinned by its package-lock.json).
# Idempotent: packages already present are skipped, so re-running costs one dpkg query.
# Usage: scripts/install-deps.sh            (needs root, or sudo on PATH)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # libraries (Debian bookworm)
  libboost1.81-dev liburing-dev libspdlog-dev libfmt-dev
  libprotobuf-dev protobuf-compiler nlohmann-json3-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev
  # record batch codecs the kafka plugin decompresses to look inside batches
  zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
  # fuzzing (libFuzzer ships with clang 14)
  clang-14 libclang-rt-14-dev
  # tests and benchmarks
  python3 netcat-openbsd procps fio iperf3 curl
  gnuplot-nox  # the plots of scripts/bench.sh
  # the admin API test parses /metrics with Prometheus's own parser
  python3-prometheus-client
  # real Kafka clients for tests/clients (docs/CLIENTS.md); the Python ones run
  # on Debian's /usr/bin/python3, and snappy/lz4/zstandard give kafka-python its codecs
  kcat librdkafka-dev python3-confluent-kafka python3-kafka
  python3-snappy python3-lz4 python3-zstandard python3-crc32c
  # the web console test drives Debian's headless Chromium (tests/console)
  chromium
  # the power-loss filesystem of the reliability harness (tests/chaos/faultfs, docs/RELIABILITY.md)
  fuse3 libfuse3-dev
  # its network namespaces and network faults, clock jumps, and scripts/fuzz.sh's CPU accounting
  iproute2 iptables libfaketime time
)
# Node.js for the kafkajs test: any nodejs already on PATH (for example
# NodeSource's, which bundles npm) is kept; Debian's is installed otherwise.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm_ci DIR WHAT: installs exactly the versions in DIR/package-lock.json.
# Skipped (no network needed) when DIR/node_modules already holds them: npm
# writes its own copy of the lock file there, and it matches ours exactly
# when the install is complete.
npm_ci() {
  local dir="$1" what="$2"
  if node -e '
    const fs = require("fs");
    const want = JSON.parse(fs.readFileSync(process.argv[1] + "/package-lock.json")).packages;
    const have = JSON.parse(fs.readFileSync(process.argv[1] + "/node_modules/.package-lock.json")).packages;
    for (const [p, v] of Object.entries(want))
      if (p !== "" && (!have[p] || have[p].version !== v.version)) process.exit(1);
  ' "$dir" 2>/dev/null; then
    echo "install-deps: $what dependencies present"
  else
    echo "install-deps: npm ci in ${dir#$root/}"
    (cd "$dir" && npm ci --no-audit --no-fund --prefer-offline) || {
      echo "install-deps: npm ci failed in $dir (the $what needs it)" >&2; exit 1; }
  fi
}

# kafkajs for its client test; playwright-core for the web console test
# (tests/console), which drives /usr/bin/chromium and downloads no browser.
npm_ci "$root/tests/clients/kafkajs" "kafkajs client test"
npm_ci "$root/tests/console" "web console test"
