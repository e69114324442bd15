#!/usr/bin/env bash
# A local three-node Sluice cluster on one machine (docs/CLUSTER.md).
#
#   scripts/cluster.sh start    build a release brokerd if needed, write config/cluster/node{1,2,3}.yaml
#                               if missing, start the three nodes in the background, wait for their ports
#   scripts/cluster.sh status   each node's pid and addresses; the brokers and controller in Kafka Metadata
#   scripts/cluster.sh stop     SIGTERM each node this script started, wait until it has drained
#   scripts/cluster.sh config   (re)write the three YAML files from the template below
#
# Node N listens on 127.0.0.1: Kafka N9092, inter-broker RPC N9093, admin API N9644
# (19092, 29092, 39092, ...). Data in ./data/cluster/nodeN/, the log in ./data/cluster/nodeN.log,
# the pid in ./data/cluster/nodeN.pid. Everything is relative to the checkout.
#
# Environment: SLUICE_BUILD_DIR (default build/release); SLUICE_CLUSTER_NO_BUILD=1 uses the binaries
# as they are (no install-deps, no cmake).
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=(1 2 3)
BUILD_DIR="${SLUICE_BUILD_DIR:-build/release}"
BROKERD="$BUILD_DIR/bin/brokerd"
PLUGIN_DIR="$BUILD_DIR/lib/sluice/plugins"
CONFIG_DIR=config/cluster
DATA_DIR=data/cluster
STOP_TIMEOUT_S=40
START_TIMEOUT_S=60

kafka_port() { echo "${1}9092"; }
raft_port() { echo "${1}9093"; }
admin_port() { echo "${1}9644"; }
config_of() { echo "$CONFIG_DIR/node$1.yaml"; }
pidfile_of() { echo "$DATA_DIR/node$1.pid"; }
log_of() { echo "$DATA_DIR/node$1.log"; }

die() { echo "cluster.sh: $*" >&2; exit 1; }

write_config() {
  local n=$1 f
  f=$(config_of "$n")
  mkdir -p "$CONFIG_DIR"
  {
    cat <<EOF
# Node $n of the local three-node cluster of scripts/cluster.sh (docs/CLUSTER.md).
# Written by \`scripts/cluster.sh config\`. The three files differ only in node.id, node.data_dir
# and the three listen addresses; on three machines see "A cluster on several machines" in
# docs/CLUSTER.md for which keys change.
node:
  id: $n                             # unique in the cluster; never reused with an empty data_dir
  data_dir: ./$DATA_DIR/node$n    # relative to the directory brokerd starts in (the checkout)
  shards: 2                         # three brokers share this machine's CPUs
  pin_threads: false
  log_level: info

plugins:
  - name: storage

  # Replication: the controller group and one Raft group per partition.
  - name: raft
    config:
      listen: 127.0.0.1:$(raft_port "$n")            # inter-broker RPC (every shard, SO_REUSEPORT)
      # advertised_address: host$n:$(raft_port "$n")  # what other brokers dial, if different
      cluster_id: local                 # the same on every node
      seeds:                            # the controller's voters, node_id@host:port, the same on every node
EOF
    local m
    for m in "${NODES[@]}"; do
      echo "        - $m@127.0.0.1:$(raft_port "$m")"
    done
    cat <<EOF
      election_timeout_ms: 1000
      heartbeat_interval_ms: 100

  - name: kafka
    config:
      listeners:
        - name: PLAINTEXT
          address: 127.0.0.1:$(kafka_port "$n")
      default_replication_factor: 3

  - name: admin_http
    config:
      listen: 127.0.0.1:$(admin_port "$n")
EOF
  } >"$f.tmp"
  mv "$f.tmp" "$f"
  echo "wrote $f"
}

# The pid this script recorded for node N, if that process is still a brokerd on node N's config.
running_pid() {
  local n=$1 pid pf
  pf=$(pidfile_of "$n")
  [ -f "$pf" ] || return 1
  pid=$(cat "$pf")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  # Guard against a recycled pid: the process must be brokerd with this node's config.
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "brokerd.*--config $(config_of "$n")" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Kafka's port accepts and, with curl, the admin API says every shard listens.
node_ready() {
  port_open "$(kafka_port "$1")" || return 1
  if command -v curl >/dev/null; then
    curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$(admin_port "$1")/v1/status/ready" || return 1
  fi
}

build() {
  if [ "${SLUICE_CLUSTER_NO_BUILD:-0}" = 1 ]; then
    return
  fi
  scripts/install-deps.sh
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
  # Paths relative to the checkout, so every clone shares the compiler cache.
  export CCACHE_BASEDIR="$PWD"
  local preset
  preset=$(basename "$BUILD_DIR")
  [ -f "$BUILD_DIR/CMakeCache.txt" ] || cmake --preset "$preset" >/dev/null
  local targets=(brokerd sluice)
  # The raft plugin's target once plugins/raft builds it (issue 8).
  if cmake --build "$BUILD_DIR" --target help 2>/dev/null | grep -q '^sluice_plugin_raft:'; then
    targets+=(sluice_plugin_raft)
  fi
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${targets[@]}"
}

start() {
  build
  [ -x "$BROKERD" ] || die "no brokerd at $BROKERD: build it (scripts/run.sh or cmake --build $BUILD_DIR) or set SLUICE_BUILD_DIR"
  local p
  for p in storage raft kafka admin_http; do
    [ -f "$PLUGIN_DIR/libsluice_$p.so" ] ||
      die "plugin '$p' is not built: $PLUGIN_DIR/libsluice_$p.so does not exist$([ $p = raft ] && echo ' (the raft plugin, issue 8, is needed for a cluster)')"
  done
  mkdir -p "$DATA_DIR"
  local n pid
  for n in "${NODES[@]}"; do
    [ -f "$(config_of "$n")" ] || write_config "$n"
  done
  for n in "${NODES[@]}"; do
    if pid=$(running_pid "$n"); then
      echo "node $n is already running (pid $pid)"
      continue
    fi
    printf '\n=== cluster.sh: node %s starting at %s ===\n' "$n" "$(date '+%F %T')" >>"$(log_of "$n")"
    # setsid: the nodes outlive this shell and a Ctrl-C in it.
    setsid "$BROKERD" --config "$(config_of "$n")" </dev/null >>"$(log_of "$n")" 2>&1 &
    echo $! >"$(pidfile_of "$n")"
    echo "node $n: pid $!, Kafka 127.0.0.1:$(kafka_port "$n"), RPC 127.0.0.1:$(raft_port "$n"), admin http://127.0.0.1:$(admin_port "$n")/"
  done
  local deadline=$((SECONDS + START_TIMEOUT_S)) failed=0
  for n in "${NODES[@]}"; do
    until running_pid "$n" >/dev/null && node_ready "$n"; do
      if ! running_pid "$n" >/dev/null; then
        echo "cluster.sh: node $n exited during start-up; the end of $(log_of "$n"):" >&2
        tail -n 20 "$(log_of "$n")" >&2
        failed=1
        break
      fi
      if [ $SECONDS -ge $deadline ]; then
        echo "cluster.sh: node $n does not accept Kafka connections after ${START_TIMEOUT_S} s (log $(log_of "$n"))" >&2
        failed=1
        break
      fi
      sleep 0.2
    done
  done
  sleep 0.5  # a node whose port another process holds may exit just after that process answered
  for n in "${NODES[@]}"; do
    if [ $failed = 0 ] && ! running_pid "$n" >/dev/null; then
      echo "cluster.sh: node $n exited during start-up; the end of $(log_of "$n"):" >&2
      tail -n 20 "$(log_of "$n")" >&2
      failed=1
    fi
  done
  [ $failed = 0 ] || die "start failed; scripts/cluster.sh stop stops the nodes that did start"
  echo "cluster up: kcat -b 127.0.0.1:19092,127.0.0.1:29092,127.0.0.1:39092 -L"
}

stop() {
  local n pid stopped=()
  for n in "${NODES[@]}"; do
    if pid=$(running_pid "$n"); then
      kill -CONT "$pid" 2>/dev/null || true  # a SIGSTOPped node handles SIGTERM only once continued
      kill -TERM "$pid"
      stopped+=("$n:$pid")
    else
      echo "node $n is not running"
      rm -f "$(pidfile_of "$n")"
    fi
  done
  local entry deadline=$((SECONDS + STOP_TIMEOUT_S)) status=0
  for entry in "${stopped[@]}"; do
    n=${entry%%:*}
    pid=${entry#*:}
    while [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
      if [ $SECONDS -ge $deadline ]; then
        echo "cluster.sh: node $n (pid $pid) still runs ${STOP_TIMEOUT_S} s after SIGTERM; see $(log_of "$n")" >&2
        status=1
        continue 2
      fi
      sleep 0.2
    done
    rm -f "$(pidfile_of "$n")"
    echo "node $n stopped (pid $pid)"
  done
  return $status
}

status() {
  local n pid up=0 bootstrap=()
  for n in "${NODES[@]}"; do
    if pid=$(running_pid "$n"); then
      up=$((up + 1))
      bootstrap+=("127.0.0.1:$(kafka_port "$n")")
      local state=running
      [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = T ] && state="stopped (SIGSTOP)"
      echo "node $n: $state, pid $pid, Kafka 127.0.0.1:$(kafka_port "$n"), admin http://127.0.0.1:$(admin_port "$n")/"
    else
      echo "node $n: not running (config $(config_of "$n"), log $(log_of "$n"))"
    fi
  done
  if [ $up -gt 0 ] && command -v kcat >/dev/null; then
    echo "Kafka Metadata:"
    kcat -b "$(IFS=,; echo "${bootstrap[*]}")" -L -m 5 2>&1 | grep -E 'brokers:|broker [0-9]+ at' | sed 's/^/  /' || true
  fi
  [ $up -eq ${#NODES[@]} ]
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  config) for n in "${NODES[@]}"; do write_config "$n"; done ;;
  *)
    echo "usage: scripts/cluster.sh start|stop|status|config (see the comment at the top of this script)" >&2
    exit 2
    ;;
esac
