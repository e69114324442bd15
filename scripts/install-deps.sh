#!/usr/bin/env bash
# Installs every Debian package that building, testing and running Sluice needs.
# Idempotent: packages already present are skipped, so re-running costs one dpkg query.
# Usage: scripts/install-deps.sh            (needs root, or sudo on PATH)
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # libraries (Debian bookworm)
  libboost1.81-dev liburing-dev libspdlog-dev libfmt-dev
  libprotobuf-dev protobuf-compiler nlohmann-json3-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev
  # fuzzing (libFuzzer ships with clang 14)
  clang-14 libclang-rt-14-dev
  # tests and benchmarks
  python3 netcat-openbsd procps fio iperf3
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
